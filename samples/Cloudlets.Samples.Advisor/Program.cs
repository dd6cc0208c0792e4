// cloudlets-advisor: the migration pipeline against real KVM hosts described in a JSON file,
// advisory by default.
//   cloudlets-advisor CONFIG.json [--duration SECONDS] [--apply] [--validate]
// `cloudlets-advisor --help` says the rest, with the exit codes.
using System.Runtime.InteropServices;
using Cloudlets.Samples.Advisor;

// Probing inside network namespaces and the libvirt native layer are Linux-only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// Ctrl+C and SIGTERM (systemctl stop, kill) stop the run the same clean way; a second signal ends it at once.
using var cancel = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

return await AdvisorProgram.RunAsync(args, Console.Out, Console.Error, cancel.Token);

void Stop(PosixSignalContext context)
{
    if (!cancel.IsCancellationRequested)
    {
        context.Cancel = true;
        cancel.Cancel();
    }
}
