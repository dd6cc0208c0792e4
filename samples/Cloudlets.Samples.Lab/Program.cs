// cloudlets-lab: bring a cloudlet lab up, show it, tear it down.
//   cloudlets-lab up --hosts N [--guest-on HOST]... [--name NAME] [--cache FOLDER]
//   cloudlets-lab status [--json] [--name NAME]
//   cloudlets-lab down [--name NAME]
using System.Globalization;
using Cloudlets.Lab;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

const string Usage = """
    usage: cloudlets-lab up --hosts N [--guest-on HOST]... [--name NAME] [--cache FOLDER]
           cloudlets-lab status [--json] [--name NAME]
           cloudlets-lab down [--name NAME]
    --cache is the guest image cache (default /var/cache/cloudlets-lab; it holds the kernel .deb).
    The default name is "cloudlets"; hosts are cloudlet-1 .. cloudlet-N (N at most 8).
    "up" on a healthy lab of the same name and host count changes nothing; "down" it first to
    reshape it. "up" after a crashed or killed run removes that run's leftovers first.
    CLOUDLETS_LAB_LOG=information (or debug) logs what the lab does to stderr.
    """;

if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine("The cloudlet lab runs on Linux only.");
    return 3;
}

// CLOUDLETS_LAB_LOG=debug|information shows what the lab does on stderr.
var logger = new StderrLogger(Environment.GetEnvironmentVariable("CLOUDLETS_LAB_LOG")?.ToUpperInvariant() switch
{
    "DEBUG" => Microsoft.Extensions.Logging.LogLevel.Debug,
    "INFORMATION" => Microsoft.Extensions.Logging.LogLevel.Information,
    _ => Microsoft.Extensions.Logging.LogLevel.Warning,
});
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

try
{
    var parsed = LabCommandLine.Parse(args);
    return parsed.Verb switch
    {
        "up" => await UpAsync(parsed, logger, cancel.Token),
        "status" => await StatusAsync(parsed, cancel.Token),
        "down" => await DownAsync(parsed, logger, cancel.Token),
        _ => Fail(Usage),
    };
}
catch (LabConfigurationException ex)
{
    return Fail(ex.Message + Environment.NewLine + Usage, 2);
}
catch (FormatException ex)
{
    return Fail(ex.Message + Environment.NewLine + Usage, 2);
}
catch (LabPrerequisiteException ex)
{
    return Fail(ex.Message, 3);
}
catch (LabException ex)
{
    return Fail(ex.Message, 1);
}
catch (Cloudlets.Core.Commands.CommandException ex)
{
    return Fail(ex.Message, 1);
}
catch (OperationCanceledException)
{
    return Fail("cancelled", 130);
}

static int Fail(string message, int code = 2)
{
    Console.Error.WriteLine(message);
    return code;
}

static async Task<int> UpAsync(LabCommandLine options, StderrLogger logger, CancellationToken ct)
{
    var builder = new CloudletLabBuilder().WithName(options.Name).WithHosts(options.Hosts).WithKeepRunningOnDispose().WithLogger(logger);
    if (options.CacheFolder is not null)
    {
        builder.WithCacheFolder(options.CacheFolder);
    }

    foreach (var host in options.GuestsOn)
    {
        builder.WithGuestOn(host);
    }

    // Validate everything before looking at what runs.
    var lab = builder.Build();
    await using (var existing = CloudletLab.Attach(options.Name))
    {
        if (existing is not null && existing.RecordedPhase == "ready" && existing.Hosts.Count == options.Hosts && await existing.IsHealthyAsync(ct))
        {
            Console.WriteLine($"lab {options.Name} is already up:");
            Console.WriteLine((await existing.GetStatusAsync(ct)).ToString());
            await lab.DisposeAsync();
            return 0;
        }
    }

    await using (lab)
    {
        await lab.StartAsync(ct);
        var timings = lab.Timings;
        Console.WriteLine((await lab.GetStatusAsync(ct)).ToString());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lab start-up time: {timings.Startup.TotalSeconds:0.00} s ({options.Hosts} hosts, until every libvirtd answered)"));
        foreach (var (guest, boot) in timings.GuestBoots.OrderBy(b => b.Key, StringComparer.Ordinal))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"guest boot time: {guest} {boot.TotalSeconds:0.00} s (virsh start until its service answered from the edge)"));
        }
    }

    return 0;
}

static async Task<int> StatusAsync(LabCommandLine options, CancellationToken ct)
{
    await using var lab = CloudletLab.Attach(options.Name);
    if (lab is null)
    {
        return Fail($"no lab named {options.Name} is up", 1);
    }

    var status = await lab.GetStatusAsync(ct);
    Console.WriteLine(options.Json ? status.ToJson() : status.ToString());
    return 0;
}

static async Task<int> DownAsync(LabCommandLine options, StderrLogger logger, CancellationToken ct)
{
    var leftovers = await CloudletLab.DownAsync(options.Name, logger: logger, cancellationToken: ct);
    if (leftovers.Count > 0)
    {
        return Fail($"lab {options.Name}: left behind:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", leftovers), 1);
    }

    Console.WriteLine($"lab {options.Name} is down");
    return 0;
}

/// <summary>The parsed command line.</summary>
internal sealed record LabCommandLine(string Verb, string Name, int Hosts, IReadOnlyList<string> GuestsOn, bool Json, string? CacheFolder)
{
    public static LabCommandLine Parse(string[] args)
    {
        if (args.Length == 0)
        {
            throw new FormatException("no command given");
        }

        var verb = args[0];
        var name = "cloudlets";
        var hosts = 3;
        var guests = new List<string>();
        var json = false;
        string? cache = null;
        for (var i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--name":
                    name = Value();
                    break;
                case "--hosts" when verb == "up":
                    var text = Value();
                    hosts = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"--hosts takes a number, not '{text}'");
                    break;
                case "--guest-on" when verb == "up":
                    guests.Add(Value());
                    break;
                case "--cache" when verb == "up":
                    cache = Value();
                    break;
                case "--json" when verb == "status":
                    json = true;
                    break;
                default:
                    throw new FormatException($"unknown option '{args[i]}' for '{verb}'");
            }
        }

        LabNaming.ValidateLabName(name);
        return new LabCommandLine(verb, name, hosts, guests, json, cache);
    }
}
