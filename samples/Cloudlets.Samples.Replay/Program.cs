using System.CommandLine;
using System.Globalization;
using System.Text;
using Cloudlets.Core.Decisions;
using Cloudlets.Samples;
using Cloudlets.Samples.Replay;
using Cloudlets.Simulation;

var fleetOption = new Option<FileInfo>("--fleet") { Description = "The fleet file (JSON, version 1).", Required = true };
var traceOption = new Option<FileInfo>("--trace") { Description = "The latency trace (CSV, version 1).", Required = true };
var policyOption = new Option<FileInfo?>("--policy") { Description = "Options of the default policy (JSON); without it, the defaults." };
var jsonOption = new Option<FileInfo?>("--json") { Description = "Also write the report as JSON to this file." };

const string Description = """
    cloudlets-replay: replays a latency trace against the default migration policy in virtual time, and compares its
    cost with the offline optimum and the never / always-nearest / myopic baselines. 'table' does so for every trace of
    a folder; 'generate' writes a synthetic fleet and trace from a mobility model.

    Needs no root: it touches no host and sends nothing; it reads and writes files only.

    Exit codes:
      0  done (also --help and --version)
      1  failed unexpectedly (the exception is printed)
      2  bad command line, or a fleet, trace or policy file that cannot be read or is not valid, or an output file
         that cannot be written
    """;
const string Synopsis = "usage: cloudlets-replay --fleet FLEET.json --trace TRACE.csv [--policy POLICY.json] [--json OUT.json]\n" +
    "       cloudlets-replay table FOLDER [--policy POLICY.json]\n" +
    "       cloudlets-replay generate --model MODEL --out PREFIX [--seed N] [--duration S] [--step S]";

var root = new RootCommand(Description)
{
    fleetOption, traceOption, policyOption, jsonOption,
};
root.SetAction(result => Run(() =>
{
    var (timeline, policy, options) = Load(result.GetRequiredValue(fleetOption), result.GetRequiredValue(traceOption), result.GetValue(policyOption));
    var comparison = Comparison.Run(timeline, policy, "default", options);
    Console.Out.Write(Report.Text(comparison));
    if (result.GetValue(jsonOption) is { } json)
    {
        File.WriteAllText(json.FullName, Comparison.ToJson(comparison));
    }
}));

var setArgument = new Argument<DirectoryInfo>("folder") { Description = "A folder of NAME.fleet.json + NAME.trace.csv pairs." };
var table = new Command("table", "Runs every trace of a folder and prints one Markdown table: trace, policy, cost, ratio to the optimum, migrations.") { setArgument, policyOption };
table.SetAction(result => Run(() =>
{
    var folder = result.GetRequiredValue(setArgument);
    var rows = new List<PolicyComparison>();
    var names = new List<string>();
    foreach (var fleet in folder.GetFiles("*.fleet.json").OrderBy(f => f.Name, StringComparer.Ordinal))
    {
        var name = fleet.Name[..^".fleet.json".Length];
        var trace = new FileInfo(Path.Combine(folder.FullName, name + ".trace.csv"));
        var (timeline, policy, options) = Load(fleet, trace, result.GetValue(policyOption));
        rows.Add(Comparison.Run(timeline, policy, "default", options));
        names.Add(name);
    }

    Console.Out.Write(Report.Table(names, rows));
}));

var modelOption = new Option<MobilityModel>("--model") { Description = "The mobility model.", Required = true };
var seedOption = new Option<int>("--seed") { Description = "The seed (the same seed gives the same files).", DefaultValueFactory = _ => 1 };
var outOption = new Option<string>("--out") { Description = "The output prefix: writes PREFIX.fleet.json and PREFIX.trace.csv.", Required = true };
var durationOption = new Option<double>("--duration") { Description = "Seconds of trace.", DefaultValueFactory = _ => 3600 };
var stepOption = new Option<double>("--step") { Description = "Seconds between probe rounds.", DefaultValueFactory = _ => 5 };
var generate = new Command("generate", "Writes a synthetic fleet and trace from a mobility model (users on a grid of cells with cloudlets at some cells; RTT from distance plus jitter and loss).")
{
    modelOption, seedOption, outOption, durationOption, stepOption,
};
generate.SetAction(result => Run(() =>
{
    var generated = TraceGenerator.Generate(result.GetValue(modelOption), result.GetValue(seedOption), result.GetValue(durationOption), result.GetValue(stepOption));
    var prefix = result.GetRequiredValue(outOption);
    File.WriteAllText(prefix + ".fleet.json", FleetJson.Write(generated.Fleet));
    using var writer = new StreamWriter(prefix + ".trace.csv", append: false, new UTF8Encoding(false));
    TraceCsv.Write(writer, generated.Trace);
    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {prefix}.fleet.json ({generated.Fleet.Vms.Count} VMs, {generated.Fleet.Hosts.Count} hosts) and {prefix}.trace.csv ({generated.Trace.Samples.Count} samples)"));
}));

root.Subcommands.Add(table);
root.Subcommands.Add(generate);
return await SampleCommandLine.InvokeAsync(root, "cloudlets-replay", args, Synopsis);

static (TraceTimeline Timeline, IMigrationPolicy Policy, ReplayOptions Options) Load(FileInfo fleetFile, FileInfo traceFile, FileInfo? policyFile)
{
    var fleet = FleetJson.Read(fleetFile.FullName);
    var trace = TraceCsv.Read(traceFile.FullName);
    var timeline = new TraceTimeline(fleet, trace);
    var file = policyFile is null ? new PolicyFile() : PolicyFile.Read(policyFile.FullName);
    if (file.Policy.MigrationPenaltyMsSeconds == 0)
    {
        // The operator's cost model says what a migration costs; the policy weighs its moves with it.
        file.Policy.MigrationPenaltyMsSeconds = fleet.Cost.MigrationPenaltyMsSeconds;
    }

    return (timeline, new LowestLatencyPolicy(file.Policy), new ReplayOptions { SampleWindow = file.SampleWindow });
}

static int Run(Action action)
{
    try
    {
        action();
        return 0;
    }
    catch (Exception ex) when (ex is FleetFormatException or TraceFormatException or InvalidDataException or IOException or Cloudlets.Core.Options.OptionsValidationException)
    {
        Console.Error.WriteLine("cloudlets-replay: " + ex.Message);
        return 2;
    }
}
