using System.Diagnostics;
using System.Globalization;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;
using Cloudlets.Libvirt;
using Cloudlets.Netem;

namespace Cloudlets.Samples.Demo;

/// <summary>One run of the demonstration: lab up, delays on, the pipeline in automatic mode, a live view, a summary.</summary>
internal sealed class DemoRun(DemoOptions options, Scenario scenario)
{
    /// <summary>The original demonstration's three cloudlets (plus the edge device: four machines).</summary>
    public const int HostCount = 3;

    private const string VantagePoint = "edge";
    private const string VmSeries = "vm";
    private static readonly TimeSpan ProbePeriod = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(1500);

    /// <summary>How long a stopped run may take to ask the hosts where the VM is, for its summary.</summary>
    private static readonly TimeSpan StopSummaryBound = TimeSpan.FromSeconds(15);

    /// <summary>How long the RTT is averaged for the summary's "measured" and "after" figures.</summary>
    private const double SummaryWindowSeconds = 10;

    private readonly Stopwatch _clock = new();
    private readonly Recorder _recorder = new();
    private readonly ConsoleView _view = new(options.Plain);
    private readonly Dictionary<string, double> _injected = new(StringComparer.Ordinal);
    private readonly List<double> _migrationEnds = [];
    private readonly bool[] _fired = new bool[scenario.Steps.Count];
    private readonly Lock _gate = new();
    private string? _currentHost;
    private string? _stepLabel;
    private double? _firstMigrationStart;
    private double? _firstStepAt;
    private string? _lastDecision;
    private (string From, string To, MigrationProgress Progress)? _migration;

    // The distinct intermediate fractions the bar showed for the running migration (to a tenth of a per cent),
    // reported per migration in the summary, so a run shows whether the bar moved or only jumped from 0 to done.
    private readonly HashSet<double> _progressFractions = [];

    private double Now => _clock.Elapsed.TotalSeconds;

    /// <summary>Throws <see cref="FormatException"/> when the scenario names a host the lab will not have.</summary>
    public static void ValidateHosts(Scenario scenario, int hostCount)
    {
        foreach (var name in scenario.HostNames)
        {
            if (!LabNaming.TryParseHostName(name, out var index) || index > hostCount)
            {
                throw new FormatException($"The scenario names '{name}', but the lab's hosts are cloudlet-1 … cloudlet-{hostCount}.");
            }
        }
    }

    /// <summary>
    /// The demonstration's policy timing: a move is confirmed over 3 one-second windows and a VM stays
    /// at least 20 s where it went; the defaults are meant for production fleets. A replay of the
    /// demo's journal builds its policy from these.
    /// </summary>
    internal static LowestLatencyPolicyOptions PolicyOptions() => new()
    {
        ConfirmationWindows = 3,
        Cooldown = TimeSpan.FromSeconds(20),
        MaxSampleAge = TimeSpan.FromSeconds(5),
    };

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"cloudlets-demo: {scenario.Description}");
        Console.WriteLine($"building lab '{options.Name}': an edge device and {HostCount} cloudlets, a guest on {scenario.GuestOn} …");
        var lab = new CloudletLabBuilder()
            .WithName(options.Name)
            .WithHosts(HostCount)
            .WithGuestOn(scenario.GuestOn)
            .WithKeepRunningOnDispose(options.Keep)
            .Build();

        INetemShaper? shaper = null;
        // The pipeline owns the hosts and the prober once built; until then "owned" holds what a
        // failure must release.
        var owned = new List<IAsyncDisposable>();
        var hosts = new List<IHypervisorHost>();
        MigrationPipeline? pipeline = null;
        PipelineJournal? journal = null;
        var subscriptions = new List<IDisposable>();
        var exitCode = 4;
        LabGuest? guest = null;
        try
        {
            await lab.StartAsync(cancellationToken);
            guest = lab.Guests[0];
            var boot = lab.Timings.GuestBoots.TryGetValue(guest.Name, out var b) ? b.TotalSeconds : double.NaN;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"lab up in {lab.Timings.Startup.TotalSeconds:0.0} s; guest {guest.Name} booted on {guest.InitialHost} in {boot:0.0} s at {guest.Address}"));

            shaper = await NetemShaperFactory.CreateAsync(cancellationToken: cancellationToken);
            Console.WriteLine($"shaping with {shaper.Capabilities.Backend}: {shaper.Capabilities.Reason}");

            foreach (var h in lab.Hosts)
            {
                // The lab's hosts are reachable only inside the lab: connect from the edge namespace.
                var host = await LibvirtHypervisorHost.ConnectAsync(
                    new LibvirtHostOptions { Name = h.Name, Uri = h.Uri, NetworkNamespace = lab.Edge.Namespace },
                    cancellationToken: cancellationToken);
                var observed = new ProgressObservingHost(host, (_, p) => OnProgress(p));
                owned.Add(observed);
                hosts.Add(observed);
            }

            var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = VantagePoint, NetworkNamespace = lab.Edge.Namespace });
            owned.Add(prober);
            var vmTarget = new ProbeTarget(VmSeries, guest.Address);
            ProbeTarget[] targets = [.. lab.Hosts.Select(h => new ProbeTarget(h.Name, h.Address)), vmTarget];
            var samples = prober.Observe(targets, ProbePeriod, ProbeTimeout, TaskPoolScheduler.Default).Publish();

            _currentHost = guest.InitialHost;
            _clock.Start();
            await FireDueStepsAsync(lab, shaper, cancellationToken);

            var policy = new LowestLatencyPolicy(PolicyOptions());
            if (options.JournalPath is { } journalPath)
            {
                journal = new PipelineJournal(new StreamWriter(journalPath, append: false, new System.Text.UTF8Encoding(false)));
            }

            var builder = new MigrationPipelineBuilder()
                .WithSamples(samples)
                .Owns(prober)
                .WithPolicy(policy)
                .AddVm(new VmDefinition(guest.Name, [new VmUser(VantagePoint)]))
                .Configure(o =>
                {
                    o.Mode = PipelineMode.Automatic;
                    o.EvaluationInterval = TimeSpan.FromSeconds(1);
                    o.PlacementRefreshInterval = TimeSpan.FromSeconds(2);
                    o.SampleWindow = 6;
                    o.Executor.ImprovementCheckDelay = TimeSpan.FromSeconds(5);
                    o.Executor.CompletionTimeout = TimeSpan.FromMinutes(3);
                    // The idle guest's memory crosses in 0.3-0.4 s (the rest of a migration is preparing the
                    // destination and handing over): a bar that is to move needs a sample every 50 ms (over the
                    // 300 ms path to cloudlet-1, six polls in flight give one answer per 50 ms).
                    o.Executor.Migration = new MigrationOptions { ProgressInterval = TimeSpan.FromMilliseconds(50) };
                });
            if (journal is not null)
            {
                builder.WithJournal(journal);
            }

            for (var i = 0; i < hosts.Count; i++)
            {
                builder.AddHost(hosts[i], lab.Hosts[i].Name, lab.Hosts[i].MigrationUri);
            }

            pipeline = builder.Build();
            owned.Clear(); // the pipeline owns them now
            subscriptions.Add(samples.Subscribe(s => _recorder.AddRtt(Now, s.Target.Name, s.Status == ProbeStatus.Ok ? s.RoundTripTime?.TotalMilliseconds : null)));
            subscriptions.Add(pipeline.Decisions.Subscribe(OnDecision));
            subscriptions.Add(pipeline.Outcomes.Subscribe(OnOutcome));
            subscriptions.Add(samples.Connect());
            await pipeline.StartAsync(cancellationToken);

            var completed = await LoopAsync(lab, shaper, cancellationToken);
            var summary = await SummarizeAsync(lab, guest, cancellationToken);
            Report(summary, guest.Name);
            exitCode = completed ? 0 : 4;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            exitCode = 130;
            if (guest is not null && _clock.IsRunning)
            {
                // Ctrl+C or SIGTERM: what was measured so far still gets its summary, plot and CSV; then the lab goes.
                Console.WriteLine("stopped early: the summary of what was measured so far");
                using var bound = new CancellationTokenSource(StopSummaryBound);
                Report(await SummarizeAsync(lab, guest, bound.Token), guest.Name);
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
                await pipeline.DisposeAsync(); // and with it the hosts and the prober
            }

            journal?.Dispose(); // after the pipeline: it writes until it stops
            if (options.JournalPath is { } written && journal is not null)
            {
                Console.WriteLine($"journal: {written} ({journal.LineCount} lines)");
            }

            foreach (var o in owned)
            {
                await o.DisposeAsync();
            }

            await LabTeardown.DisposeAsync(lab, shaper, options);
        }

        return exitCode;
    }

    /// <summary>Redraws the view every second and fires scenario steps; true when the scenario completed.</summary>
    private async Task<bool> LoopAsync(CloudletLab lab, INetemShaper shaper, CancellationToken cancellationToken)
    {
        // The live display runs while the scenario does; the summary is printed below its last frame.
        await using var view = _view;
        await view.StartAsync();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            await FireDueStepsAsync(lab, shaper, cancellationToken);
            _view.Render(Snapshot(lab));
            bool done;
            lock (_gate)
            {
                done = _fired.All(f => f) && _migrationEnds.Count >= scenario.ExpectedMigrations &&
                       Now - _migrationEnds[^1] >= scenario.SettleSeconds;
            }

            if (done)
            {
                return true;
            }

            if (Now >= scenario.MaxSeconds)
            {
                _view.Print($"the scenario did not complete within {scenario.MaxSeconds} s");
                return false;
            }
        }

        return false;
    }

    private async Task FireDueStepsAsync(CloudletLab lab, INetemShaper shaper, CancellationToken cancellationToken)
    {
        for (var i = 0; i < scenario.Steps.Count; i++)
        {
            var step = scenario.Steps[i];
            bool due;
            lock (_gate)
            {
                due = !_fired[i] && (step.AtSeconds is { } at
                    ? Now >= at
                    : _migrationEnds.Count >= step.AfterMigrations && Now - _migrationEnds[step.AfterMigrations!.Value - 1] >= step.AfterSeconds);
            }

            if (!due)
            {
                continue;
            }

            var firedAt = Now;
            foreach (var (host, ms) in step.DelaysMs)
            {
                _injected[host] = ms;
            }

            await lab.ShapeAsync(
                shaper,
                [.. _injected.Where(kv => kv.Value > 0).Select(kv => (kv.Key, TimeSpan.FromMilliseconds(kv.Value)))],
                cancellationToken);
            lock (_gate)
            {
                _fired[i] = true;
                _stepLabel = step.Label;
                _firstStepAt ??= firedAt;
            }

            _recorder.AddStep(firedAt, step.Label);
            _view.Print(string.Create(CultureInfo.InvariantCulture, $"t={firedAt:0}s scenario: {step.Label}"));
        }
    }

    private void OnProgress(MigrationProgress progress)
    {
        (string From, string To, MigrationProgress)? migration;
        lock (_gate)
        {
            if (_migration is { } m)
            {
                _migration = (m.From, m.To, progress);
                if (progress.CompletedFraction is > 0 and < 1 and var fraction)
                {
                    _progressFractions.Add(Math.Round(fraction, 3));
                }
            }

            migration = _migration;
        }

        if (migration is { } running)
        {
            _view.MigrationProgress(running.From, running.To, progress);
        }
    }

    private void OnDecision(MigrationDecision decision)
    {
        var text = $"{decision.Kind} {decision.VmName}: {decision.Explanation}";
        lock (_gate)
        {
            if (decision.CurrentHost is { } placed)
            {
                // The pipeline reads placement from the hosts, so it is the first to see a hand-over.
                _currentHost = placed;
            }

            if (decision.IsMove && decision.CurrentHost is { } from && decision.TargetHost is { } to)
            {
                _firstMigrationStart ??= Now;
                _migration = (from, to, new MigrationProgress(TimeSpan.Zero, null, null, null, null, null, null, null));
                _progressFractions.Clear();
            }

            if (text == _lastDecision)
            {
                return;
            }

            _lastDecision = text;
        }

        AddEvent(string.Create(CultureInfo.InvariantCulture, $"t={Now,4:0}s {text}"));
    }

    /// <summary>A decision or an outcome: kept for the redrawn view, and printed at once in plain mode.</summary>
    private void AddEvent(string text)
    {
        _recorder.AddDecision(text);
        _view.Event(text);
    }

    private void OnOutcome(MigrationOutcome outcome)
    {
        // The outcome arrives after the improvement check; place the migration where it really ran.
        var now = Now;
        var wallNow = DateTimeOffset.UtcNow;
        var started = now - (wallNow - outcome.StartedAt).TotalSeconds;
        var ended = now - (wallNow - outcome.FinishedAt).TotalSeconds;
        int progressValues;
        lock (_gate)
        {
            progressValues = _progressFractions.Count;
        }

        _recorder.AddMigration(new MigrationRecord(
            outcome.Source,
            outcome.Destination,
            started,
            ended,
            outcome.Result?.TotalTime.TotalMilliseconds ?? outcome.Duration.TotalMilliseconds,
            outcome.Result?.Downtime?.TotalMilliseconds,
            outcome.Kind.ToString().ToLowerInvariant(),
            outcome.Error?.Message,
            progressValues));
        lock (_gate)
        {
            _migration = null;
            if (outcome.Kind == MigrationOutcomeKind.Succeeded)
            {
                _currentHost = outcome.Destination;
                _migrationEnds.Add(ended);
            }
        }

        _view.MigrationEnded(outcome.Kind == MigrationOutcomeKind.Succeeded);
        var downtime = outcome.Result?.Downtime is { } d ? string.Create(CultureInfo.InvariantCulture, $", downtime {d.TotalMilliseconds:0} ms") : "";
        var error = outcome.Error is { } e ? $" ({e.Message})" : "";
        AddEvent(string.Create(CultureInfo.InvariantCulture,
            $"t={ended,4:0}s migration {outcome.Source} → {outcome.Destination}: {outcome.Kind} in {outcome.Duration.TotalSeconds:0.0} s{downtime}{error}"));
    }

    private ViewState Snapshot(CloudletLab lab)
    {
        var now = Now;
        var recent = Math.Max(0, now - 3);
        lock (_gate)
        {
            return new ViewState(
                now,
                lab.Guests[0].Name,
                _currentHost,
                [.. lab.Hosts.Select(h => (h.Name, _injected.GetValueOrDefault(h.Name), _recorder.MedianRtt(h.Name, recent, now + 1)))],
                _recorder.MedianRtt(VmSeries, recent, now + 1),
                _recorder.RecentDecisions(6),
                _migration,
                _stepLabel);
        }
    }

    private async Task<Summary> SummarizeAsync(CloudletLab lab, LabGuest guest, CancellationToken cancellationToken)
    {
        var end = Now;
        // The host the VM really is on, asked of the hosts, not taken from this process's memory. A stopped run
        // asks within a bound; past it the summary says the host is not known.
        string? finalHost;
        try
        {
            finalHost = (await lab.FindGuestHostAsync(guest, cancellationToken))?.Name;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            finalHost = null;
        }
        double? before = null;
        lock (_gate)
        {
            if (_firstMigrationStart is { } start && _firstStepAt is { } shaped)
            {
                // Once the delays are on and before the first move: the VM on its initial host.
                before = _recorder.MedianRtt(VmSeries, Math.Max(shaped + 1, start - SummaryWindowSeconds), start);
            }
        }

        return new Summary(
            guest.Name,
            guest.InitialHost,
            finalHost,
            [.. lab.Hosts.Select(h => new SummaryHost(h.Name, _injected.GetValueOrDefault(h.Name), Round(_recorder.MedianRtt(h.Name, end - SummaryWindowSeconds, end + 1))))],
            [.. _recorder.Migrations.Select(m => new SummaryMigration(m.From, m.To, Round(m.TotalMs), Round(m.DowntimeMs), m.Outcome, m.Error, m.ProgressValues))],
            new SummaryServiceRtt(Round(before), Round(_recorder.MedianRtt(VmSeries, end - SummaryWindowSeconds, end + 1))));
    }

    private void Report(Summary summary, string vmName)
    {
        Console.WriteLine();
        Console.WriteLine($"VM {summary.Vm}: started on {summary.InitialHost}, ended on {summary.FinalHost ?? "?"}, {summary.Migrations.Count} migration(s)");
        foreach (var m in summary.Migrations)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {m.From} → {m.To}: {m.Outcome}, total {m.TotalMs:0} ms, downtime {m.DowntimeMs:0} ms{(m.Error is { } e ? " (" + e + ")" : "")}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  RTT from the edge to the VM: before {summary.ServiceRttMs.Before:0.0} ms, after {summary.ServiceRttMs.After:0.0} ms"));
        if (options.JsonPath is { } json)
        {
            File.WriteAllText(json, summary.ToJson());
            Console.WriteLine($"summary: {json}");
        }

        if (options.PlotPath is { } plot)
        {
            File.WriteAllText(plot, SvgPlot.Render(_recorder, [.. summary.Hosts.Select(h => h.Name)], vmName, Now));
            Console.WriteLine($"plot: {plot}");
        }

        if (options.CsvPath is { } csv)
        {
            using (var writer = new StreamWriter(csv, append: false, new System.Text.UTF8Encoding(false)))
            {
                SeriesCsv.Write(writer, _recorder.Points);
            }

            Console.WriteLine($"series: {csv}");
        }
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 2) : null;
}
