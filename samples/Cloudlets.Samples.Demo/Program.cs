// cloudlets-demo: the original edge demonstration on one machine. A lab of an edge device and
// three cloudlets, one guest VM, the delays 300 / 20 / 20 ms toward the users, and the pipeline in
// automatic mode: the VM live-migrates to the host with the lowest latency to its users.
//   cloudlets-demo [--scenario FILE] [--json PATH] [--plot PATH] [--keep] [--name NAME] [--plain]
using Cloudlets.Lab;
using Cloudlets.Samples.Demo;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

const string Usage = """
    usage: cloudlets-demo [--scenario FILE] [--json PATH] [--plot PATH] [--keep] [--name NAME] [--plain]
      --scenario FILE  a JSON list of timed delay changes (default: the bundled scenarios/two-acts.json;
                       scenarios/static.json is the original demonstration alone)
      --json PATH      write the run's summary as JSON
      --plot PATH      write an SVG chart of the RTT to each host and to the VM, migrations marked
      --keep           leave the lab up at the end (tear it down later with: cloudlets-lab down --name NAME)
      --name NAME      the lab's name (default: demo)
      --plain          print one line a second instead of redrawing the screen
    """;

if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine("The demonstration runs on Linux only.");
    return 3;
}

DemoOptions options;
Scenario scenario;
try
{
    options = DemoOptions.Parse(args);
    if (options.Help)
    {
        Console.WriteLine(Usage);
        return 0;
    }

    var scenarioPath = options.ScenarioPath ?? Path.Combine(AppContext.BaseDirectory, "scenarios", "two-acts.json");
    scenario = Scenario.Load(scenarioPath);
    DemoRun.ValidateHosts(scenario, DemoRun.HostCount);
}
catch (FormatException ex)
{
    Console.Error.WriteLine(ex.Message + Environment.NewLine + Usage);
    return 2;
}
catch (IOException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops the run and tears the lab down; a second one is the default (exit).
    if (!cancel.IsCancellationRequested)
    {
        e.Cancel = true;
        Console.Error.WriteLine("stopping: tearing the lab down…");
        cancel.Cancel();
    }
};

try
{
    return await new DemoRun(options, scenario).RunAsync(cancel.Token);
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
