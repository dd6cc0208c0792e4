using System.Globalization;
using System.Text.Json;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Agents;
using Cloudlets.Lab.Shaping;
using Cloudlets.Libvirt;
using Cloudlets.Mqtt;
using Cloudlets.Netem;

namespace Cloudlets.Samples.Demo;

/// <summary>
/// One run of the fleet scenario: a lab of cloudlets and sites with the lab's mosquitto broker and a cloudlets-agent
/// per site, every sample read from the broker (<see cref="MqttLatencySampleSource"/>, the pipeline's only sample
/// source), the pipeline in automatic mode, and acts that change the latency matrix; each act holds until the VMs
/// settled on its best feasible hosts (<see cref="FleetAssignment"/>). Prints one line per act, decision and outcome.
/// </summary>
internal sealed class FleetRun(DemoOptions options, FleetScenario scenario)
{
    private static readonly TimeSpan AgentPeriod = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(500);

    /// <summary>The guests' vCPUs (the lab's guest domain has one).</summary>
    private const int GuestVCpus = 1;

    private readonly Lock _gate = new();
    private readonly DateTimeOffset _start = DateTimeOffset.UtcNow;
    private readonly Dictionary<string, string> _host = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<FleetMigration>> _migrations = new(StringComparer.Ordinal);
    private readonly List<(string Vm, string Host, double From, double? To)> _residencies = [];
    private readonly HashSet<string> _inFlight = new(StringComparer.Ordinal);

    // For the plot: the newest RTT from each site to each host (NaN: the last probe was lost), and the series.
    private readonly Dictionary<(string Site, string Host), double> _latest = [];
    private readonly Recorder _recorder = new();

    // The hosts' connections (owned by the pipeline once it is built), read at the end of each act.
    private readonly List<(string Name, IHypervisorHost Host)> _hosts = [];
    private double _lastActivity;

    private double Now => (DateTimeOffset.UtcNow - _start).TotalSeconds;

    private double At(DateTimeOffset time) => (time - _start).TotalSeconds;

    /// <summary>
    /// The policy's timing for the fleet: a move is confirmed over 3 one-second windows and a VM stays at least 10 s
    /// where it went (short, so that acts can follow each other quickly).
    /// </summary>
    internal static LowestLatencyPolicyOptions PolicyOptions() => new()
    {
        ConfirmationWindows = 3,
        Cooldown = TimeSpan.FromSeconds(10),
        MaxSampleAge = TimeSpan.FromSeconds(5),
    };

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"cloudlets-demo (fleet): {scenario.Description}");
        var builder = new CloudletLabBuilder()
            .WithName(options.Name)
            .WithHosts(scenario.Hosts)
            .WithSites(scenario.Sites)
            .WithKeepRunningOnDispose(options.Keep)
            .WithAgents(new LabAgentOptions { AgentAssembly = Path.Combine(AppContext.BaseDirectory, "cloudlets-agent.dll"), Period = AgentPeriod });
        foreach (var vm in scenario.Vms)
        {
            builder.WithGuestOn(vm.InitialHost);
        }

        var lab = builder.Build();
        INetemShaper? shaper = null;
        MqttLatencySampleSource? source = null;
        MigrationPipeline? pipeline = null;
        var hosts = new List<IHypervisorHost>();
        var subscriptions = new List<IDisposable>();
        var acts = new List<FleetActSummary>();
        var exitCode = 1;
        int capacity = 0;
        try
        {
            Console.WriteLine($"building lab '{options.Name}': {scenario.Hosts} cloudlets, {scenario.Sites} sites, a broker and an agent per site, {scenario.Vms.Count} guests …");
            await lab.StartAsync(cancellationToken);
            var broker = lab.Broker ?? throw new LabConfigurationException("The lab started no broker.");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lab up in {lab.Timings.Startup.TotalSeconds:0.0} s; broker {broker.Url}; agents {string.Join(", ", lab.Agents.Select(a => a.Site))}"));

            shaper = await NetemShaperFactory.CreateAsync(cancellationToken: cancellationToken);
            Console.WriteLine($"shaping with {shaper.Capabilities.Backend}: {shaper.Capabilities.Reason}");

            source = MqttLatencySampleSource.Start(new MqttSampleSourceOptions
            {
                Broker = new MqttBrokerOptions
                {
                    Broker = broker.Url,
                    Username = broker.Username,
                    Password = File.ReadLines(broker.CredentialsFile).First(),
                    SocketFactory = lab.CreateBrokerSocket, // the broker is inside the lab: connect from the edge namespace
                },
            });
            await source.WaitConnectedAsync(cancellationToken);

            var pipelineBuilder = new MigrationPipelineBuilder()
                .WithSamples(source.Samples) // the only sample source: every sample came through the broker
                .WithPolicy(new LowestLatencyPolicy(PolicyOptions()))
                .Configure(o =>
                {
                    o.Mode = PipelineMode.Automatic;
                    o.VCpuOvercommit = scenario.VCpuOvercommit;
                    o.EvaluationInterval = TimeSpan.FromSeconds(1);
                    o.PlacementRefreshInterval = TimeSpan.FromSeconds(2);
                    o.SampleWindow = 6;
                    o.Executor.ImprovementCheckDelay = TimeSpan.FromSeconds(2);
                    o.Executor.CompletionTimeout = TimeSpan.FromMinutes(3);
                });
            for (var v = 0; v < scenario.Vms.Count; v++)
            {
                var guest = lab.Guests[v];
                pipelineBuilder.AddVm(new VmDefinition(guest.Name, [.. scenario.Vms[v].Users.Select(u => new VmUser(u.Site, u.Weight))]));
                _host[guest.Name] = guest.InitialHost;
                _migrations[guest.Name] = [];
                _residencies.Add((guest.Name, guest.InitialHost, 0, null));
            }

            foreach (var h in lab.Hosts)
            {
                hosts.Add(await LibvirtHypervisorHost.ConnectAsync(
                    new LibvirtHostOptions { Name = h.Name, Uri = h.Uri, NetworkNamespace = lab.Edge.Namespace },
                    cancellationToken: cancellationToken));
            }

            // The capacity the pipeline works with (MigrationPipeline.FreeVCpus): floor(CPUs × overcommit) vCPUs per host.
            var cpus = new List<int>();
            foreach (var h in hosts)
            {
                cpus.Add((await h.GetInfoAsync(cancellationToken)).Cpus);
            }

            capacity = cpus.Min(c => (int)Math.Floor(c * scenario.VCpuOvercommit)) / GuestVCpus;
            Console.WriteLine($"capacity: the hosts report {string.Join("/", cpus)} CPUs; overcommit {scenario.VCpuOvercommit.ToString(CultureInfo.InvariantCulture)} → {capacity} guest(s) of {GuestVCpus} vCPU per host");
            if (scenario.Vms.GroupBy(v => v.InitialHost).Any(g => g.Count() > capacity))
            {
                throw new LabConfigurationException($"The scenario's initial placement puts more than {capacity} VMs on a host, the capacity of this machine's hosts.");
            }

            for (var i = 0; i < hosts.Count; i++)
            {
                _hosts.Add((lab.Hosts[i].Name, hosts[i]));
                pipelineBuilder.AddHost(hosts[i], lab.Hosts[i].Name, lab.Hosts[i].MigrationUri);
            }

            pipeline = pipelineBuilder.Build();
            hosts.Clear(); // the pipeline owns them now
            subscriptions.Add(pipeline.Decisions.Subscribe(OnDecision));
            subscriptions.Add(pipeline.Outcomes.Subscribe(OnOutcome));
            subscriptions.Add(source.Samples.Subscribe(OnSample));
            await pipeline.StartAsync(cancellationToken);

            var completed = true;
            foreach (var act in scenario.Acts)
            {
                var summary = await RunActAsync(lab, shaper, act, capacity, cancellationToken);
                acts.Add(summary);
                completed &= summary.Completed;
            }

            var result = await SummarizeAsync(lab, source, acts, capacity, cancellationToken);
            Report(result);
            var allSucceeded = result.Vms.SelectMany(v => v.Migrations).All(m => m.Outcome == "succeeded");
            exitCode = completed && allSucceeded && result.Vms.All(v => v.FinalHost == v.BestFeasibleHost) ? 0 : 4;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            exitCode = 130;
            if (source is not null && acts.Count > 0)
            {
                using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                Report(await SummarizeAsync(lab, source, acts, capacity, bound.Token));
            }
        }
        finally
        {
            foreach (var s in subscriptions)
            {
                s.Dispose();
            }

            if (pipeline is not null)
            {
                await pipeline.DisposeAsync();
            }

            foreach (var h in hosts)
            {
                await h.DisposeAsync();
            }

            if (source is not null)
            {
                await source.DisposeAsync();
            }

            await LabTeardown.DisposeAsync(lab, shaper, options);
        }

        return exitCode;
    }

    /// <summary>Applies the act's matrix and waits until the VMs rest on its best feasible hosts for the settle time, or the act's time is up.</summary>
    private async Task<FleetActSummary> RunActAsync(CloudletLab lab, INetemShaper shaper, FleetAct act, int capacity, CancellationToken cancellationToken)
    {
        var (best, cost, optima) = FleetAssignment.Best(scenario.Vms, act, scenario.Hosts, capacity);
        var bestHosts = best.Select(h => LabNaming.HostName(h + 1)).ToArray();
        var started = Now;
        await lab.ShapeMatrixAsync(shaper, [.. act.DelaysMs.SelectMany(row => row.Value.Select((ms, h) => new LabSiteDelay(row.Key, LabNaming.HostName(h + 1), TimeSpan.FromMilliseconds(ms))))], cancellationToken);
        Console.Write(MatrixView(act, scenario.Hosts));
        _recorder.AddStep(started, act.Label);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"t={started,5:0.0}s act '{act.Label}': best feasible {string.Join(", ", lab.Guests.Select((g, i) => $"{g.Name}→{bestHosts[i]}"))} (total {cost:0.#} ms, {optima} optimal assignment(s))"));
        lock (_gate)
        {
            _lastActivity = Now;
        }

        using var timer = new PeriodicTimer(Tick);
        var completed = false;
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            RecordUsersLatency(lab);
            lock (_gate)
            {
                var settled = _inFlight.Count == 0 && lab.Guests.Take(scenario.Vms.Count).Select((g, i) => _host[g.Name] == bestHosts[i]).All(b => b);
                if (settled && Now - _lastActivity >= scenario.SettleSeconds)
                {
                    completed = true;
                    break;
                }
            }

            if (Now - started >= scenario.ActMaxSeconds)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"t={Now,5:0.0}s act '{act.Label}' did not settle within {scenario.ActMaxSeconds} s"));
                break;
            }
        }

        // Where the VMs run, asked of the hosts (all at once: the act's length should not include slow reads).
        var running = await Task.WhenAll(_hosts.Select(async h =>
            (h.Name, Vms: (await h.Host.ListVmsAsync(cancellationToken)).Where(v => v.State == VmState.Running).Select(v => v.Name).ToList())));
        var placement = lab.Guests.Take(scenario.Vms.Count).ToDictionary(
            g => g.Name,
            g => running.Where(r => r.Vms.Contains(g.Name)).Select(r => r.Name).ToList() is [var one] ? one : null, // null: nowhere, or on two hosts
            StringComparer.Ordinal);

        Console.Write(PlacementView(placement, scenario.Hosts, capacity));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"t={Now,5:0.0}s act '{act.Label}' {(completed ? "settled" : "ended unsettled")} after {Now - started:0.0} s: {string.Join(", ", placement.Select(p => $"{p.Key} on {p.Value ?? "?"}"))}"));
        return new FleetActSummary(
            act.Label,
            Math.Round(started, 1),
            Math.Round(Now - started, 1),
            completed,
            optima,
            [.. lab.Guests.Take(scenario.Vms.Count).Select((g, i) => new FleetActVm(g.Name, bestHosts[i], NearestHost(scenario.Vms[i], act), placement[g.Name]))]);
    }

    /// <summary>The host with the VM's least cost in the act, capacity aside (the lowest index among equals).</summary>
    private string NearestHost(FleetVm vm, FleetAct act)
    {
        var costs = Enumerable.Range(0, scenario.Hosts).Select(h => FleetAssignment.Cost(vm, act, h)).ToList();
        return LabNaming.HostName(costs.IndexOf(costs.Min()) + 1);
    }

    /// <summary>The act's latency matrix as a table: a row per site, a column per host (one-way delay, ms).</summary>
    internal static string MatrixView(FleetAct act, int hosts)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"  {"delay ms",-8}");
        for (var h = 1; h <= hosts; h++)
        {
            text.Append(CultureInfo.InvariantCulture, $" {LabNaming.HostName(h),11}");
        }

        text.AppendLine();
        foreach (var (site, row) in act.DelaysMs.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"  {site,-8}");
            foreach (var ms in row)
            {
                text.Append(CultureInfo.InvariantCulture, $" {ms,11:0.#}");
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    /// <summary>Each host's VMs (as the hosts reported them) against its capacity.</summary>
    internal static string PlacementView(IReadOnlyDictionary<string, string?> placement, int hosts, int capacity)
    {
        var text = new System.Text.StringBuilder();
        for (var h = 1; h <= hosts; h++)
        {
            var name = LabNaming.HostName(h);
            var vms = placement.Where(p => p.Value == name).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
            text.AppendLine(CultureInfo.InvariantCulture, $"  {name,-11} {vms.Count}/{capacity} {string.Join(" ", vms)}");
        }

        if (placement.Where(p => p.Value is null).Select(p => p.Key).ToList() is { Count: > 0 } lost)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  not on exactly one host: {string.Join(" ", lost)}");
        }

        return text.ToString();
    }

    private void OnSample(LatencySample sample)
    {
        lock (_gate)
        {
            _latest[(sample.VantagePoint, sample.Target.Name)] = sample.Status == ProbeStatus.Ok && sample.RoundTripTime is { } rtt ? rtt.TotalMilliseconds : double.NaN;
        }
    }

    /// <summary>
    /// One point per VM for the plot: its users' weighted mean of the newest RTT from their sites to the host it runs
    /// on (none while a site's newest probe to it was lost, or none came yet): the latency its users have now.
    /// </summary>
    private void RecordUsersLatency(CloudletLab lab)
    {
        var now = Now;
        lock (_gate)
        {
            for (var v = 0; v < scenario.Vms.Count; v++)
            {
                var name = lab.Guests[v].Name;
                var host = _host[name];
                double sum = 0, weights = 0;
                var known = true;
                foreach (var user in scenario.Vms[v].Users)
                {
                    if (!_latest.TryGetValue((user.Site, host), out var ms) || double.IsNaN(ms))
                    {
                        known = false;
                        break;
                    }

                    sum += user.Weight * ms;
                    weights += user.Weight;
                }

                _recorder.AddRtt(now, name, known && weights > 0 ? sum / weights : null);
            }
        }
    }

    private void OnDecision(MigrationDecision decision)
    {
        if (!decision.IsMove)
        {
            return;
        }

        lock (_gate)
        {
            _inFlight.Add(decision.VmName);
            _lastActivity = Now;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"t={Now,5:0.0}s {decision.Kind} {decision.VmName}: {decision.Explanation}"));
    }

    private void OnOutcome(MigrationOutcome outcome)
    {
        var kind = outcome.Kind.ToString().ToLowerInvariant();
        lock (_gate)
        {
            _inFlight.Remove(outcome.VmName);
            _lastActivity = Now;
            if (outcome.Kind == MigrationOutcomeKind.Skipped)
            {
                return;
            }

            _migrations[outcome.VmName].Add(new FleetMigration(
                outcome.Source,
                outcome.Destination,
                Round(outcome.Result?.TotalTime.TotalMilliseconds ?? outcome.Duration.TotalMilliseconds),
                Round(outcome.Result?.Downtime?.TotalMilliseconds),
                kind));

            // Residencies for peakVms: the VM counts on the destination from the migration's start, and on the source
            // until its end (on both while it moves); a failed one was on the destination only while it ran.
            var (started, finished) = (At(outcome.StartedAt), At(outcome.FinishedAt));
            _recorder.AddMigration(new MigrationRecord(outcome.Source, outcome.Destination, started, finished, outcome.Result?.TotalTime.TotalMilliseconds, outcome.Result?.Downtime?.TotalMilliseconds, kind, outcome.Error?.Message, 0));
            if (outcome.Kind == MigrationOutcomeKind.Succeeded)
            {
                var open = _residencies.FindLastIndex(r => r.Vm == outcome.VmName && r.To is null);
                if (open >= 0)
                {
                    _residencies[open] = _residencies[open] with { To = finished };
                }

                _residencies.Add((outcome.VmName, outcome.Destination, started, null));
                _host[outcome.VmName] = outcome.Destination;
            }
            else if (outcome.Destination.Length > 0)
            {
                _residencies.Add((outcome.VmName, outcome.Destination, started, finished));
            }
        }

        var downtime = outcome.Result?.Downtime is { } d ? string.Create(CultureInfo.InvariantCulture, $", downtime {d.TotalMilliseconds:0} ms") : "";
        var error = outcome.Error is { } e ? $" ({e.Message})" : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"t={Now,5:0.0}s migration {outcome.VmName} {outcome.Source} → {outcome.Destination}: {kind} in {outcome.Duration.TotalSeconds:0.0} s{downtime}{error}"));
    }

    private async Task<FleetSummary> SummarizeAsync(CloudletLab lab, MqttLatencySampleSource source, List<FleetActSummary> acts, int capacity, CancellationToken cancellationToken)
    {
        var lastAct = scenario.Acts[acts.Count - 1];
        var (best, _, _) = FleetAssignment.Best(scenario.Vms, lastAct, scenario.Hosts, capacity);
        var vms = new List<FleetSummaryVm>();
        for (var v = 0; v < scenario.Vms.Count; v++)
        {
            var guest = lab.Guests[v];
            string? final;
            try
            {
                final = (await lab.FindGuestHostAsync(guest, cancellationToken))?.Name; // asked of the hosts
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                final = null;
            }

            lock (_gate)
            {
                vms.Add(new FleetSummaryVm(guest.Name, guest.InitialHost, final, LabNaming.HostName(best[v] + 1), [.. _migrations[guest.Name]]));
            }
        }

        Dictionary<string, int> peaks;
        lock (_gate)
        {
            var end = Now;
            peaks = FleetAssignment.PeakVms(_residencies.Select(r => (r.Host, r.From, r.To ?? end)));
        }

        var counters = source.Counters;
        return new FleetSummary(
            vms,
            [.. lab.Hosts.Select(h => new FleetSummaryHost(h.Name, capacity, peaks.GetValueOrDefault(h.Name)))],
            new FleetTransport(
                lab.Broker?.Url.ToString() ?? "",
                counters.Samples,
                counters.Malformed + counters.Foreign + counters.Duplicates + counters.MissedMessages,
                counters.Messages),
            acts);
    }

    private void Report(FleetSummary summary)
    {
        Console.WriteLine();
        foreach (var vm in summary.Vms)
        {
            Console.WriteLine($"VM {vm.Name}: {vm.InitialHost} → {vm.FinalHost ?? "?"} (best feasible {vm.BestFeasibleHost}), {vm.Migrations.Count} migration(s)");
            foreach (var m in vm.Migrations)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {m.From} → {m.To}: {m.Outcome}, total {m.TotalMs:0} ms, downtime {m.DowntimeMs:0} ms"));
            }
        }

        Console.WriteLine($"hosts: {string.Join(", ", summary.Hosts.Select(h => $"{h.Name} peak {h.PeakVms}/{h.CapacityVms}"))}");
        Console.WriteLine($"transport: {summary.Transport.Broker}: {summary.Transport.SamplesReceived} samples received in {summary.Transport.Messages} messages, {summary.Transport.SamplesDropped} dropped");
        if (options.JsonPath is { } json)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(summary, FleetSummary.Json));
            Console.WriteLine($"summary: {json}");
        }

        if (options.PlotPath is { } plot)
        {
            File.WriteAllText(plot, SvgPlot.Render(_recorder, [.. summary.Vms.Select(v => v.Name)], vmName: null, Now, "Each VM's users: weighted RTT from their sites to the VM's host (ms)"));
            Console.WriteLine($"plot: {plot}");
        }
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 1) : null;
}

/// <summary>The fleet run's <c>--json</c> summary.</summary>
internal sealed record FleetSummary(IReadOnlyList<FleetSummaryVm> Vms, IReadOnlyList<FleetSummaryHost> Hosts, FleetTransport Transport, IReadOnlyList<FleetActSummary> Acts)
{
    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };
}

internal sealed record FleetSummaryVm(string Name, string InitialHost, string? FinalHost, string BestFeasibleHost, IReadOnlyList<FleetMigration> Migrations);

internal sealed record FleetMigration(string From, string To, double? TotalMs, double? DowntimeMs, string Outcome);

internal sealed record FleetSummaryHost(string Name, int CapacityVms, int PeakVms);

/// <summary>
/// The broker and the source's counters: samples received; dropped = messages dropped (malformed, foreign,
/// duplicate) plus messages missed (sequence gaps), counted in messages since a dropped message's samples are unknown.
/// </summary>
internal sealed record FleetTransport(string Broker, long SamplesReceived, long SamplesDropped, long Messages);

internal sealed record FleetActSummary(string Label, double StartedAtSeconds, double Seconds, bool Completed, int OptimalAssignments, IReadOnlyList<FleetActVm> Vms);

internal sealed record FleetActVm(string Name, string BestFeasibleHost, string NearestHost, string? Host);
