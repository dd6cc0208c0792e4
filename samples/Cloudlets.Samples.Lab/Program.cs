// cloudlets-lab: bring a cloudlet lab up, show it, tear it down.
//   cloudlets-lab up --hosts N [--sites M] [--guest-on HOST]... [--name NAME] [--cache FOLDER] [--transport tcp|tls|ssh|tls-sasl] [--dirty-rate MIBPS] [--netem-guest] [--agents [--agent DLL]]
//   cloudlets-lab status [--json] [--name NAME]
//   cloudlets-lab down [--name NAME]
//   cloudlets-lab shape HOST DELAY [HOST DELAY]... [--for SECONDS] [--name NAME]
//   cloudlets-lab shape --matrix FILE [--for SECONDS] [--name NAME]
//   cloudlets-lab clear [--name NAME]
//   cloudlets-lab migrate GUEST HOST [--bandwidth MIBS] [--name NAME]
//   cloudlets-lab cap MIBPS|off [--name NAME]
// `cloudlets-lab --help` (and `cloudlets-lab VERB --help`) says the rest, with the exit codes.
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Cloudlets.Samples;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.Samples.Lab;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

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

// Ctrl+C and SIGTERM (systemctl stop, kill) end a command the same clean way: "shape" clears its delays.
using var cancel = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

var commands = new LabCommands();
foreach (var verb in commands.Verbs)
{
    verb.SetAction((result, _) => RunVerbAsync(commands, result, logger, cancel.Token));
}

return await SampleCommandLine.InvokeAsync(commands.Root, "cloudlets-lab", args, LabCommandLine.Synopsis);

// The first signal stops the command cleanly; a second one is the default (the process ends at once).
void Stop(PosixSignalContext context)
{
    if (!cancel.IsCancellationRequested)
    {
        context.Cancel = true;
        cancel.Cancel();
    }
}

static async Task<int> RunVerbAsync(LabCommands commands, System.CommandLine.ParseResult result, StderrLogger logger, CancellationToken cancellationToken)
{
    try
    {
        var parsed = LabCommandLine.From(commands, result);
        return parsed.Verb switch
        {
            "up" => await UpAsync(parsed, logger, cancellationToken),
            "status" => await StatusAsync(parsed, cancellationToken),
            "down" => await DownAsync(parsed, logger, cancellationToken),
            "shape" => await ShapeAsync(parsed, cancellationToken),
            "clear" => await ClearAsync(parsed, cancellationToken),
            "migrate" => await MigrateAsync(parsed, cancellationToken),
            "cap" => await CapAsync(parsed, cancellationToken),
            _ => UsageError($"unknown command '{parsed.Verb}'"),
        };
    }
    catch (LabConfigurationException ex)
    {
        return UsageError(ex.Message);
    }
    catch (FormatException ex)
    {
        return UsageError(ex.Message);
    }
    catch (ShapingValidationException ex)
    {
        return UsageError(ex.Message);
    }
    catch (LabPrerequisiteException ex)
    {
        return Fail(ex.Message, 3);
    }
    catch (LabConflictException ex)
    {
        return Fail(ex.Message, 4);
    }
    catch (LabException ex)
    {
        return Fail(ex.Message, 1);
    }
    catch (ShapingException ex)
    {
        return Fail(ex.Message, 1);
    }
    catch (Cloudlets.Probing.Commands.CommandException ex)
    {
        return Fail(ex.Message, 1);
    }
    catch (OperationCanceledException)
    {
        return Fail("cancelled", 130);
    }
}

// A usage error found after the syntax (a bad delay, host or name): the same shape as System.CommandLine's.
static int UsageError(string message)
{
    SampleCommandLine.WriteUsageErrorAsync(Console.Error, "cloudlets-lab", [message], LabCommandLine.Synopsis).GetAwaiter().GetResult();
    return SampleCommandLine.UsageError;
}

// The fault-injection hook: the command stops at the named phase until it is killed.
static void Reached(string phase)
{
    if (Environment.GetEnvironmentVariable("CLOUDLETS_LAB_HOLD_AT") == phase)
    {
        Console.WriteLine($"holding at phase {phase}");
        Console.Out.Flush();
        Thread.Sleep(Timeout.Infinite);
    }
}

static int Fail(string message, int code = 2)
{
    Console.Error.WriteLine(message);
    return code;
}

static async Task<int> UpAsync(LabCommandLine options, StderrLogger logger, CancellationToken ct)
{
    var builder = new CloudletLabBuilder().WithName(options.Name).WithHosts(options.Hosts).WithSites(options.Sites).WithTransport(options.Transport).WithGuestOptions(new LabGuestOptions { DirtyRateMiBps = options.DirtyRate, NetemHost = options.NetemGuest }).WithKeepRunningOnDispose().WithLogger(logger).WithPhaseObserver(Reached);
    if (options.CacheFolder is not null)
    {
        builder.WithCacheFolder(options.CacheFolder);
    }

    if (options.AgentAssembly is { } agent)
    {
        builder.WithAgents(new Cloudlets.Lab.Agents.LabAgentOptions { AgentAssembly = agent });
    }

    foreach (var host in options.GuestsOn.Count == 0 && options.NetemGuest ? ["cloudlet-1"] : options.GuestsOn)
    {
        builder.WithGuestOn(host);
    }

    // Validate everything before looking at what runs.
    var lab = builder.Build();
    await using (var existing = CloudletLab.Attach(options.Name))
    {
        if (existing is not null && existing.RecordedPhase == "ready" && existing.Hosts.Count == options.Hosts && existing.Sites.Count == options.Sites && existing.Options.Transport == options.Transport && (existing.Broker is not null) == (options.AgentAssembly is not null) && (existing.NetemGuests.Count > 0) == options.NetemGuest && await existing.IsHealthyAsync(ct))
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
    var report = await CloudletLab.DownAsync(options.Name, logger: logger, cancellationToken: ct);
    foreach (var item in report.LeftAlone)
    {
        Console.Error.WriteLine($"lab {options.Name}: left alone, not the lab's: {item}");
    }

    if (report.Leftovers.Count > 0)
    {
        return Fail($"lab {options.Name}: left behind:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", report.Leftovers), 1);
    }

    Console.WriteLine($"lab {options.Name} is down");
    return 0;
}

static async Task<int> ShapeAsync(LabCommandLine options, CancellationToken ct)
{
    await using var lab = CloudletLab.Attach(options.Name);
    if (lab is null)
    {
        return Fail($"no lab named {options.Name} is up", 1);
    }

    // Zero means unshaped. Building the plan validates every host (and site) against this lab before anything runs.
    (string Host, TimeSpan Delay)[] delays = [.. options.Delays.Where(d => d.Delay > TimeSpan.Zero)];
    _ = options.Matrix is { } matrix ? lab.ShapingPlanFor(matrix) : lab.ShapingPlanFor(options.Delays);

    await using var shaper = await NetemShaperFactory.CreateAsync(cancellationToken: ct);
    Console.WriteLine($"lab {lab.Name}: shaping with {shaper.Capabilities.Backend} ({shaper.Capabilities.Reason})");
    using var hold = CancellationTokenSource.CreateLinkedTokenSource(ct);
    var applied = new TaskCompletionSource<ShapingState>(TaskCreationOptions.RunContinuationsAsynchronously);
    Reached("shape-applying");
    var holding = options.Matrix is { } held
        ? lab.HoldMatrixShapingAsync(shaper, held, state => applied.TrySetResult(state), hold.Token)
        : lab.HoldShapingAsync(shaper, delays, state => applied.TrySetResult(state), hold.Token);
    if (await Task.WhenAny(applied.Task, holding) == holding)
    {
        await holding; // failed (or cancelled) before the delays were in place
        return 1;
    }

    // "--for N" holds the delays for N seconds once they are in place: the clock starts after the
    // apply, which alone can take longer than a short hold on a loaded machine.
    if (options.HoldFor is { } holdFor)
    {
        hold.CancelAfter(holdFor);
    }

    PrintState(await applied.Task);
    Reached("shape-applied");
    Console.WriteLine(options.HoldFor is { } f
        ? string.Create(CultureInfo.InvariantCulture, $"holding for {f.TotalSeconds:0.#} s (Ctrl+C ends it sooner) …")
        : "holding until Ctrl+C …");

    // What the edge (with a matrix: every site) measures now, then again every 10 s while the delays are held.
    var vantages = options.Matrix is null ? [lab.Sites[0]] : lab.Sites;
    var probers = vantages.Select(site => (Site: site, Prober: IcmpProber.Create(new IcmpProberOptions { VantagePoint = site.Name, NetworkNamespace = site.Namespace }))).ToList();
    try
    {
        var injected = options.Matrix is { } m
            ? m.ToDictionary(d => (d.Site, d.Host), d => d.Delay)
            : options.Delays.ToDictionary(d => (lab.Sites[0].Name, d.Host), d => d.Delay);
        while (!hold.IsCancellationRequested)
        {
            foreach (var (site, prober) in probers)
            {
                foreach (var host in lab.Hosts)
                {
                    var rtt = await MeasureMedianRttAsync(prober, new ProbeTarget(host.Name, host.Address), hold.Token);
                    var delay = injected.GetValueOrDefault((site.Name, host.Name));
                    var from = options.Matrix is null ? "" : $"{site.Name,-7} -> ";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {from}{host.Name,-10} {host.Address,-14} injected {delay.TotalMilliseconds,6:0.#} ms   measured RTT {(rtt is { } r ? $"{r:0.00} ms" : "-"),10}"));
                }
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(10), hold.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }
    finally
    {
        foreach (var (_, prober) in probers)
        {
            await prober.DisposeAsync();
        }
    }

    await holding;
    Console.WriteLine($"lab {lab.Name}: shaping cleared");
    return 0;
}

static async Task<double?> MeasureMedianRttAsync(IcmpProber prober, ProbeTarget target, CancellationToken ct)
{
    // Five probes, one at a time: enough for a median, bounded at about 5 × (delay + 2 s).
    var rtts = new List<double>();
    for (var i = 0; i < 5 && !ct.IsCancellationRequested; i++)
    {
        try
        {
            var sample = await prober.ProbeAsync(target, Impairment.MaxDelay + TimeSpan.FromSeconds(2), ct);
            if (sample.Status == ProbeStatus.Ok && sample.RoundTripTime is { } rtt)
            {
                rtts.Add(rtt.TotalMilliseconds);
            }
        }
        catch (OperationCanceledException)
        {
            break;
        }
    }

    rtts.Sort();
    return rtts.Count == 0 ? null : rtts[rtts.Count / 2];
}

static void PrintState(ShapingState state)
{
    Console.WriteLine($"applied ({state.Backend}, owner {state.Owner}), read back from the kernel:");
    if (state.Rules.Count == 0)
    {
        Console.WriteLine("  no rules: every host is unshaped");
    }

    foreach (var rule in state.Rules)
    {
        var health = rule.Health is { } h ? $", queue {h.QueueNumber}: {h.QueueTotal} waiting, {h.QueueDropped + h.UserDropped} dropped" : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {rule.Name,-10} {rule.Direction} {rule.NetworkNamespace}/{rule.Interface}: delay {rule.Impairment.Delay.TotalMilliseconds:0.#} ms{health}"));
    }
}

static async Task<int> MigrateAsync(LabCommandLine options, CancellationToken ct)
{
    await using var lab = CloudletLab.Attach(options.Name);
    if (lab is null)
    {
        return Fail($"no lab named {options.Name} is up", 1);
    }

    var guest = lab.GetGuest(options.Guest!);
    var to = lab.GetHost(options.To!);
    var from = await lab.FindGuestHostAsync(guest, ct);
    if (from is null)
    {
        return Fail($"lab {lab.Name}: {guest.Name} runs on no host", 1);
    }

    if (from == to)
    {
        return Fail($"lab {lab.Name}: {guest.Name} runs on {to.Name} already", 2);
    }

    Reached("migrate-started");
    var clock = System.Diagnostics.Stopwatch.StartNew();
    var migration = lab.MigrateWithVirshAsync(guest, from.Name, to.Name, options.Bandwidth, ct);
    // Tell the phase when the source reports the job running (bounded by the migration itself).
    while (!migration.IsCompleted)
    {
        var job = await Cloudlets.Probing.Commands.LocalCommandRunner.Instance.RunAsync(lab.Virsh(from, "domjobinfo", guest.Name), ct);
        if (job.Succeeded && job.StandardOutput.Contains("Job type:", StringComparison.Ordinal) && !job.StandardOutput.Contains("None", StringComparison.Ordinal))
        {
            Reached("migrate-running");
            break;
        }

        await Task.WhenAny(migration, Task.Delay(50, ct));
    }

    await migration;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lab {lab.Name}: {guest.Name} migrated {from.Name} -> {to.Name} in {clock.Elapsed.TotalSeconds:0.00} s"));
    return 0;
}

static async Task<int> CapAsync(LabCommandLine options, CancellationToken ct)
{
    await using var lab = CloudletLab.Attach(options.Name);
    if (lab is null)
    {
        return Fail($"no lab named {options.Name} is up", 1);
    }

    await lab.CapHostLinksAsync(options.LinkCapMiBps, ct);
    Console.WriteLine(options.LinkCapMiBps is { } cap
        ? string.Create(CultureInfo.InvariantCulture, $"lab {lab.Name}: host-to-host links capped at {cap} MiB/s")
        : $"lab {lab.Name}: host-to-host links uncapped");
    return 0;
}

static async Task<int> ClearAsync(LabCommandLine options, CancellationToken ct)
{
    await using var lab = CloudletLab.Attach(options.Name);
    if (lab is null)
    {
        // A lab that is down has no namespaces, so no rules of its own either.
        Console.WriteLine($"no lab named {options.Name} is up: nothing to clear");
        return 0;
    }

    await using var shaper = await NetemShaperFactory.CreateAsync(cancellationToken: ct);
    await lab.ClearShapingAsync(shaper, ct);
    var left = await lab.ShowShapingAsync(shaper, ct);
    if (!left.IsEmpty)
    {
        return Fail($"lab {lab.Name}: after clearing, the kernel still holds:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", left.Objects.Select(o => $"{o.NetworkNamespace} {o.Kind} {o.Location}")), 1);
    }

    Console.WriteLine($"lab {lab.Name}: shaping cleared ({shaper.Capabilities.Backend})");
    return 0;
}
