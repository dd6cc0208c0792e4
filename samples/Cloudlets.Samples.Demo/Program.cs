// cloudlets-demo: the original edge demonstration on one machine. A lab of an edge device and
// three cloudlets, one guest VM, the delays 300 / 20 / 20 ms toward the users, and the pipeline in
// automatic mode: the VM live-migrates to the host with the lowest latency to its users.
//   cloudlets-demo [--scenario FILE] [--json PATH] [--plot PATH] [--keep] [--name NAME] [--plain]
// `cloudlets-demo --help` says the rest, with the exit codes.
using System.Runtime.InteropServices;
using Cloudlets.Lab;
using Cloudlets.Samples;
using Cloudlets.Samples.Demo;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine("The demonstration runs on Linux only.");
    return 3;
}

// The first Ctrl+C or SIGTERM stops the run and tears the lab down; a second one is the default (exit at once).
using var cancel = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

var commands = new DemoCommands();
commands.Root.SetAction((result, _) => RunAsync(commands, result, cancel.Token));
return await SampleCommandLine.InvokeAsync(commands.Root, "cloudlets-demo", args, DemoOptions.Synopsis);

void Stop(PosixSignalContext context)
{
    if (!cancel.IsCancellationRequested)
    {
        context.Cancel = true;
        Console.Error.WriteLine("stopping: tearing the lab down…");
        cancel.Cancel();
    }
}

static async Task<int> RunAsync(DemoCommands commands, System.CommandLine.ParseResult result, CancellationToken cancellationToken)
{
    DemoOptions options;
    Scenario? scenario = null;
    FleetScenario? fleet = null;
    try
    {
        options = DemoOptions.From(commands, result);
        var scenarioPath = options.ScenarioPath ?? Path.Combine(AppContext.BaseDirectory, "scenarios", "two-acts.json");
        if (FleetScenario.IsFleet(scenarioPath))
        {
            // "kind": "fleet": many VMs, sites and the broker (FleetRun); otherwise the single-VM demonstration.
            fleet = FleetScenario.Load(scenarioPath);
            if (options.CsvPath is not null || options.JournalPath is not null)
            {
                throw new FormatException("--csv and --journal are not written for a fleet scenario (its summary is --json, its plot --plot).");
            }
        }
        else
        {
            scenario = Scenario.Load(scenarioPath);
            DemoRun.ValidateHosts(scenario, DemoRun.HostCount);
        }
    }
    catch (FormatException ex)
    {
        await SampleCommandLine.WriteUsageErrorAsync(Console.Error, "cloudlets-demo", [ex.Message], DemoOptions.Synopsis);
        return SampleCommandLine.UsageError;
    }
    catch (IOException ex)
    {
        Console.Error.WriteLine(ex.Message);
        return SampleCommandLine.UsageError;
    }

    try
    {
        return fleet is not null
            ? await new FleetRun(options, fleet).RunAsync(cancellationToken)
            : await new DemoRun(options, scenario!).RunAsync(cancellationToken);
    }
    catch (LabPrerequisiteException ex)
    {
        Console.Error.WriteLine(ex.Message);
        return 3;
    }
    catch (LabException ex)
    {
        Console.Error.WriteLine(ex.Message);
        return 1;
    }
}
