// The demonstration and the lab it drives run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
