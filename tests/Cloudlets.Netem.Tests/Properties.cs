// The shapers under test drive Linux kernel objects (netns, iptables, NFQUEUE, tc).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
