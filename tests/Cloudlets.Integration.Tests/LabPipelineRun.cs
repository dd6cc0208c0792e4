using System.Diagnostics;
using System.Globalization;
using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Runtime.Versioning;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Lab;
using Cloudlets.Libvirt;

namespace Cloudlets.Integration.Tests;

/// <summary>
/// The real pipeline in automatic mode on a started lab, the demonstration's way: libvirt hosts
/// reached from the edge, the library's ICMP prober in the edge namespace probing every host and the
/// guest, and a recorder of every sample, decision and outcome for the test to assert on.
/// Connect the hosts first (<see cref="ConnectHostsAsync"/>), then <see cref="Start"/>.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class LabPipelineRun : IAsyncDisposable
{
    public const string VantagePoint = "edge";
    public const string VmTarget = "vm";

    private static readonly TimeSpan ProbePeriod = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(1500);

    private readonly CloudletLab _lab;
    private readonly LabGuest _guest;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private readonly List<(double At, MigrationDecision Decision)> _decisions = [];
    private readonly List<(double At, MigrationOutcome Outcome)> _outcomes = [];
    private readonly List<(double At, LatencySample Sample)> _samples = [];
    private readonly List<ProgressObservingHost> _hosts = [];
    private readonly List<IDisposable> _subscriptions = [];
    private IcmpProber? _prober;
    private MigrationPipeline? _pipeline;

    public LabPipelineRun(CloudletLab lab, LabGuest guest)
    {
        _lab = lab;
        _guest = guest;
    }

    /// <summary>Called with each progress sample of a migration the executor runs (on the reporting thread).</summary>
    public Action<string, MigrationProgress>? OnProgress { get; set; }

    /// <summary>Seconds since this run was created.</summary>
    public double Now => _clock.Elapsed.TotalSeconds;

    public IReadOnlyList<ProgressObservingHost> Hosts => _hosts;

    public IReadOnlyList<(double At, MigrationDecision Decision)> Decisions
    {
        get
        {
            lock (_gate)
            {
                return [.. _decisions];
            }
        }
    }

    public IReadOnlyList<(double At, MigrationOutcome Outcome)> Outcomes
    {
        get
        {
            lock (_gate)
            {
                return [.. _outcomes];
            }
        }
    }

    /// <summary>Connects to every host of the lab from the edge, with fast keepalive and reconnects.</summary>
    public async Task ConnectHostsAsync(CancellationToken cancellationToken)
    {
        foreach (var h in _lab.Hosts)
        {
            var host = await LibvirtHypervisorHost.ConnectAsync(
                new LibvirtHostOptions
                {
                    Name = h.Name,
                    Uri = h.Uri,
                    NetworkNamespace = _lab.Edge.Namespace,
                    KeepAliveInterval = TimeSpan.FromSeconds(1),
                    KeepAliveCount = 2,
                    ReconnectInitialDelay = TimeSpan.FromMilliseconds(250),
                    ReconnectMaxDelay = TimeSpan.FromSeconds(1),
                },
                cancellationToken: cancellationToken);
            _hosts.Add(new ProgressObservingHost(host, (vm, p) => OnProgress?.Invoke(vm, p)));
        }
    }

    /// <summary>Builds the pipeline in automatic mode and starts it, with the probes.</summary>
    public void Start(LowestLatencyPolicyOptions policyOptions, Action<MigrationPipelineOptions> configure)
    {
        if (_hosts.Count != _lab.Hosts.Count)
        {
            throw new InvalidOperationException("Connect the hosts first.");
        }

        _prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = VantagePoint, NetworkNamespace = _lab.Edge.Namespace });
        var vmTarget = new ProbeTarget(VmTarget, _guest.Address);
        ProbeTarget[] targets = [.. _lab.Hosts.Select(h => new ProbeTarget(h.Name, h.Address)), vmTarget];
        var samples = _prober.Observe(targets, ProbePeriod, ProbeTimeout, TaskPoolScheduler.Default).Publish();

        var builder = new MigrationPipelineBuilder()
            .WithSamples(samples)
            .Owns(_prober)
            .WithPolicy(new LowestLatencyPolicy(policyOptions))
            .AddVm(new VmDefinition(_guest.Name, [new VmUser(VantagePoint)]))
            .Configure(o =>
            {
                o.Mode = PipelineMode.Automatic;
                o.EvaluationInterval = TimeSpan.FromSeconds(1);
                o.PlacementRefreshInterval = TimeSpan.FromSeconds(1);
                o.HostTimeout = TimeSpan.FromSeconds(3);
                o.SampleWindow = 6;
                o.Executor.ImprovementCheckDelay = TimeSpan.FromSeconds(3);
                o.Executor.CompletionTimeout = TimeSpan.FromMinutes(2);
                configure(o);
            });
        for (var i = 0; i < _hosts.Count; i++)
        {
            builder.AddHost(_hosts[i], _lab.Hosts[i].Name, _lab.Hosts[i].MigrationUri);
        }

        _pipeline = builder.Build();
        _subscriptions.Add(samples.Subscribe(s =>
        {
            lock (_gate)
            {
                _samples.Add((Now, s));
            }
        }));
        _subscriptions.Add(_pipeline.Decisions.Subscribe(d =>
        {
            lock (_gate)
            {
                _decisions.Add((Now, d));
            }
        }));
        _subscriptions.Add(_pipeline.Outcomes.Subscribe(o =>
        {
            lock (_gate)
            {
                _outcomes.Add((Now, o));
            }

            TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  t={Now:0.0}s outcome {o.Source} -> {o.Destination}: {o.Kind} ({o.AbortCause}) in {o.Duration.TotalSeconds:0.0} s {o.Error?.GetType().Name}: {o.Error?.Message}"));
        }));
        _subscriptions.Add(samples.Connect());
        _pipeline.StartAsync().GetAwaiter().GetResult(); // starts synchronously
    }

    /// <summary>The median RTT in ms of the answered samples to a probe target received in [from, to) seconds; NaN when none.</summary>
    public double MedianRttMs(string target, double from, double to)
    {
        double[] rtts;
        lock (_gate)
        {
            rtts = [.. _samples
                .Where(s => s.At >= from && s.At < to && s.Sample.Target.Name == target && s.Sample.Status == ProbeStatus.Ok)
                .Select(s => s.Sample.RoundTripTime!.Value.TotalMilliseconds)
                .Order()];
        }

        return rtts.Length == 0 ? double.NaN
            : rtts.Length % 2 == 1 ? rtts[rtts.Length / 2]
            : (rtts[(rtts.Length / 2) - 1] + rtts[rtts.Length / 2]) / 2;
    }

    /// <summary>Polls (every 100 ms) until <paramref name="condition"/> holds; false after <paramref name="within"/>.</summary>
    public static async Task<bool> WaitUntilAsync(Func<bool> condition, TimeSpan within, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        while (!condition())
        {
            if (Stopwatch.GetElapsedTime(started) >= within)
            {
                return false;
            }

            await Task.Delay(100, cancellationToken);
        }

        return true;
    }

    /// <summary>Writes every distinct decision (and when it first appeared) to the test output.</summary>
    public void Dump()
    {
        string? last = null;
        foreach (var (at, d) in Decisions)
        {
            var candidates = string.Join(", ", d.Candidates.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Host}={c.Status}/{c.ScoreMs:0}")));
            var text = $"{d.Kind}/{d.Reason} on {d.CurrentHost} -> {d.TargetHost} [{candidates}]";
            if (text != last)
            {
                TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  t={at,5:0.0}s {text}"));
                last = text;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _subscriptions)
        {
            s.Dispose();
        }

        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync(); // it owns the hosts and the prober
            return;
        }

        foreach (var h in _hosts)
        {
            await h.DisposeAsync();
        }
    }
}
