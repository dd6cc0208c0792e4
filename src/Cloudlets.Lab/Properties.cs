// The lab is made of Linux namespaces, libvirtd and QEMU: every type of it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
