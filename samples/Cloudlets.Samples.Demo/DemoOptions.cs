using System.CommandLine;

namespace Cloudlets.Samples.Demo;

/// <summary>The command line of <c>cloudlets-demo</c>.</summary>
internal sealed record DemoOptions
{
    /// <summary>The short usage printed after a usage error (the whole story is in <c>--help</c>).</summary>
    public const string Synopsis = "usage: cloudlets-demo [--scenario FILE] [--json PATH] [--plot PATH] [--csv PATH] [--journal PATH] [--keep] [--name NAME] [--plain]";

    public string? ScenarioPath { get; init; }

    public string? JsonPath { get; init; }

    public string? PlotPath { get; init; }

    public string? CsvPath { get; init; }

    public string? JournalPath { get; init; }

    public bool Keep { get; init; }

    public bool Plain { get; init; }

    public string Name { get; init; } = "demo";

    /// <summary>Parses and checks the arguments (no help or version here: <see cref="DemoCommands"/> serves those).</summary>
    /// <exception cref="FormatException">The arguments are not valid.</exception>
    public static DemoOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var commands = new DemoCommands();
        return From(commands, SampleCommandLine.ParseOrThrow(commands.Root, args));
    }

    /// <summary>Reads and checks a parse of <see cref="DemoCommands"/> that had no syntax errors.</summary>
    /// <exception cref="FormatException">The arguments are not valid.</exception>
    public static DemoOptions From(DemoCommands commands, ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentNullException.ThrowIfNull(result);
        var options = new DemoOptions
        {
            ScenarioPath = result.GetValue(commands.Scenario),
            JsonPath = result.GetValue(commands.Json),
            PlotPath = result.GetValue(commands.Plot),
            CsvPath = result.GetValue(commands.Csv),
            JournalPath = result.GetValue(commands.Journal),
            Keep = result.GetValue(commands.Keep),
            Plain = result.GetValue(commands.Plain),
            Name = result.GetValue(commands.Name) ?? "demo",
        };

        if (options.PlotPath is { } plot && !plot.EndsWith(".svg", StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"--plot writes SVG: give a path ending in .svg (not '{plot}').");
        }

        // The lab validates the name too, but only after this process has done work; check early.
        if (!Cloudlets.Lab.LabNaming.IsValidLabName(options.Name))
        {
            throw new FormatException($"'{options.Name}' is not a valid lab name.");
        }

        return options;
    }
}

/// <summary>The command tree of <c>cloudlets-demo</c> (System.CommandLine); <see cref="DemoOptions.From"/> reads a parse.</summary>
internal sealed class DemoCommands
{
    private const string Description = """
        cloudlets-demo: the original edge demonstration on one machine. A lab of an edge device and three cloudlets
        (network namespaces, each with its own libvirtd), one guest VM, the delays of a scenario toward the users (by
        default 300 / 20 / 20 ms, then changed), and the pipeline in automatic mode: the VM live-migrates to the host
        with the lowest latency to its users. On a terminal the view is redrawn; with --plain or redirected output it
        prints one line a second and each decision and migration outcome. At the end it prints a summary, and writes the
        JSON, plot and CSV asked for; then it tears the lab down (unless --keep). Ctrl+C or SIGTERM ends it early the same
        way: the summary, plot and CSV of what was measured so far are written, then the lab is torn down.

        Needs root: the lab creates network namespaces, veth pairs and iptables rules, and runs libvirtd and QEMU.

        Exit codes:
          0  the scenario completed: every step fired, the expected migrations succeeded and the VM settled
          1  the lab or the run failed
          2  bad command line or scenario (nothing was started)
          3  prerequisites missing (not root, no libvirtd, QEMU or iptables; not Linux)
          4  the scenario did not complete within its time limit (the summary says where the VM is)
          130  stopped by Ctrl+C or SIGTERM (the summary, plot and CSV are written and the lab is torn down all the same)
        """;

    /// <summary>Builds the tree (no action set).</summary>
    public DemoCommands()
    {
        Scenario = new Option<string?>("--scenario") { Description = "A JSON list of timed delay changes (default: the bundled scenarios/two-acts.json; scenarios/static.json is the original demonstration alone), or a fleet scenario (\"kind\": \"fleet\", e.g. scenarios/fleet.json: many VMs, sites and the lab's MQTT broker; --plot, --csv and --journal do not apply to it).", HelpName = "FILE" };
        Json = new Option<string?>("--json") { Description = "Write the run's summary as JSON.", HelpName = "PATH" };
        Plot = new Option<string?>("--plot") { Description = "Write an SVG chart of the RTT to each host and to the VM, migrations marked.", HelpName = "PATH" };
        Csv = new Option<string?>("--csv") { Description = "Write every probe as CSV: seconds,series,rtt_ms (the series are the hosts and vm; the RTT is empty when the probe was lost).", HelpName = "PATH" };
        Journal = new Option<string?>("--journal") { Description = "Write the pipeline's journal (every sample it took, what each evaluation read from the hosts, and every decision) as JSON lines, to replay with PipelineJournal.Replay.", HelpName = "PATH" };
        Keep = new Option<bool>("--keep") { Description = "Leave the lab up at the end (tear it down later with: cloudlets-lab down --name NAME)." };
        Name = new Option<string>("--name") { Description = "The lab's name.", HelpName = "NAME", DefaultValueFactory = _ => "demo" };
        Plain = new Option<bool>("--plain") { Description = "Print one line a second instead of redrawing the screen (the default when the output is not a terminal)." };
        Root = new RootCommand(Description) { Scenario, Json, Plot, Csv, Journal, Keep, Name, Plain };
    }

    /// <summary>The root command (<c>--help</c>, <c>--version</c> and the options).</summary>
    public RootCommand Root { get; }

    public Option<string?> Scenario { get; }

    public Option<string?> Json { get; }

    public Option<string?> Plot { get; }

    public Option<string?> Csv { get; }

    public Option<string?> Journal { get; }

    public Option<bool> Keep { get; }

    public Option<string> Name { get; }

    public Option<bool> Plain { get; }
}
