// cloudlets-controller: the Cloudlets controller as a service. See --help for the options and exit codes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

return await Cloudlets.Controller.Tool.ControllerCommand.RunAsync(args);
