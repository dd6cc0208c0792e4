// cloudlets-netem: tcset/tcshow/tcdel over the Cloudlets shapers.
//   cloudlets-netem set DEV --delay TIME [--jitter TIME] [--loss PERCENT] [--to CIDR]... [--netns NAME] [SSH]
//   cloudlets-netem show DEV [--json] [--netns NAME] [SSH]
//   cloudlets-netem del DEV [--netns NAME] [SSH]
// `cloudlets-netem --help` says the rest: the backends, holding, and the exit codes.
using System.Runtime.InteropServices;
using Cloudlets.Samples;
using Cloudlets.Samples.Netem;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// SIGINT and SIGTERM end a holding "set" the same clean way: it clears what it applied and exits 0.
using var cancel = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

var commands = new NetemCommands();
foreach (var verb in commands.Verbs)
{
    verb.SetAction((result, _) => RunVerbAsync(commands, result, cancel.Token));
}

return await SampleCommandLine.InvokeAsync(commands.Root, NetemTool.Name, args, NetemCommands.Synopsis);

// The first signal stops the command cleanly; a second one is the default (the process ends at once).
void Stop(PosixSignalContext context)
{
    if (!cancel.IsCancellationRequested)
    {
        context.Cancel = true;
        cancel.Cancel();
    }
}

static async Task<int> RunVerbAsync(NetemCommands commands, System.CommandLine.ParseResult result, CancellationToken stop)
{
    NetemCommandLine line;
    try
    {
        line = NetemCommandLine.From(commands, result);
    }
    catch (FormatException ex)
    {
        await SampleCommandLine.WriteUsageErrorAsync(Console.Error, NetemTool.Name, [ex.Message], NetemCommands.Synopsis);
        return SampleCommandLine.UsageError;
    }

    return await NetemTool.RunAsync(line, Console.Out, Console.Error, stop);
}
