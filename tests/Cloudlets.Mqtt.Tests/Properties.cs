// The broker and agent tests start Linux processes and use the shared Linux-only test helpers.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
