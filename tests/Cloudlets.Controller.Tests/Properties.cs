// The controller, its probes and the libvirt layer run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
