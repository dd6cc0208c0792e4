// cloudlets-advisor: the migration pipeline against real KVM hosts described in a JSON file,
// advisory by default.
//   cloudlets-advisor CONFIG.json [--duration SECONDS] [--apply] [--validate]
using Cloudlets.Samples.Advisor;

// Probing inside network namespaces and the libvirt native layer are Linux-only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

return await AdvisorProgram.RunAsync(args, Console.Out, Console.Error, cancel.Token);
