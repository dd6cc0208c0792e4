// The helpers drive Linux namespaces through Cloudlets.Lab, which runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
