using System.Net;
using System.Reactive.Subjects;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Core.Tests.Pipeline;

/// <summary>
/// A fleet of fake hosts around the REAL pipeline in virtual time: a latency trace is replayed one
/// probe per host per second from the vantage point "edge", and every decision and outcome is kept.
/// </summary>
public sealed class TraceFleet : IAsyncDisposable
{
    public const string Edge = "edge";
    private readonly Subject<LatencySample> _samples = new();
    private readonly Dictionary<string, ProbeTarget> _targets = [];

    private TraceFleet(FakeTimeProvider clock, FakeHypervisorHost[] hosts)
    {
        Clock = clock;
        Hosts = hosts.ToDictionary(h => h.Name);
        foreach (var h in hosts)
        {
            _targets[h.Name] = new ProbeTarget(h.Name, IPAddress.Loopback);
        }
    }

    public FakeTimeProvider Clock { get; }
    public Dictionary<string, FakeHypervisorHost> Hosts { get; }
    public MigrationPipeline Pipeline { get; private set; } = null!;
    public List<MigrationDecision> Decisions { get; } = [];
    public List<MigrationOutcome> Outcomes { get; } = [];
    public IEnumerable<MigrationDecision> Moves => Decisions.Where(d => d.IsMove);
    public TimeSpan Elapsed => Clock.GetUtcNow() - VirtualClock.Epoch;

    /// <summary>
    /// Hosts a, b, c (or the given names); the VM "vm" of 256 MiB on the first host; one user "edge".
    /// <paramref name="arrange"/> sets the hosts up before the pipeline starts and reads them; <paramref name="build"/>
    /// adds to the builder (rules, a start gate) before it builds.
    /// </summary>
    public static TraceFleet Start(
        PipelineMode mode,
        Action<LowestLatencyPolicyOptions>? policy = null,
        Action<MigrationPipelineOptions>? options = null,
        IReadOnlyList<string>? extraVms = null,
        Action<IReadOnlyDictionary<string, FakeHypervisorHost>>? arrange = null,
        Action<MigrationPipelineBuilder>? build = null,
        params string[] hosts)
    {
        var clock = VirtualClock.Create();
        var fakes = (hosts.Length == 0 ? ["a", "b", "c"] : hosts).Select(n => new FakeHypervisorHost(n)).ToArray();
        fakes[0].AddVm("vm");
        var fleet = new TraceFleet(clock, fakes);
        var policyOptions = new LowestLatencyPolicyOptions { ConfirmationWindows = 3, Cooldown = TimeSpan.FromSeconds(60) };
        policy?.Invoke(policyOptions);
        var builder = new MigrationPipelineBuilder()
            .WithSamples(fleet._samples)
            .WithTimeProvider(clock)
            .WithPolicy(new LowestLatencyPolicy(policyOptions))
            .AddVm("vm", Edge)
            .Configure(o =>
            {
                o.Mode = mode;
                o.EvaluationInterval = TimeSpan.FromSeconds(5);
                o.PlacementRefreshInterval = TimeSpan.FromSeconds(15);
                o.SampleWindow = 5;
                options?.Invoke(o);
            });
        foreach (var h in fakes)
        {
            builder.AddHost(h, h.Name);
        }

        foreach (var vm in extraVms ?? [])
        {
            builder.AddVm(vm, Edge);
        }

        build?.Invoke(builder);
        fleet.Pipeline = builder.Build();
        fleet.Pipeline.Decisions.Subscribe(fleet.Decisions.Add);
        fleet.Pipeline.Outcomes.Subscribe(fleet.Outcomes.Add);
        arrange?.Invoke(fleet.Hosts); // before the start: its first read of the hosts runs at once
        fleet.Pipeline.StartAsync().GetAwaiter().GetResult(); // starts synchronously
        return fleet;
    }

    /// <summary>
    /// Replays a trace for a duration: every second, for every host, the trace gives the round trip
    /// in ms at that moment (elapsed since the start): a number, NaN for a lost probe, or null for no probe at all.
    /// </summary>
    public void Replay(TimeSpan duration, Func<TimeSpan, string, double?> trace)
    {
        var end = Elapsed + duration;
        while (Elapsed < end)
        {
            foreach (var host in Hosts.Keys)
            {
                if (trace(Elapsed, host) is not { } ms)
                {
                    continue;
                }

                var lost = double.IsNaN(ms);
                _samples.OnNext(new LatencySample(
                    Edge,
                    _targets[host],
                    Clock.GetUtcNow(),
                    lost ? null : TimeSpan.FromMilliseconds(ms),
                    lost ? ProbeStatus.Timeout : ProbeStatus.Ok));
            }

            Clock.Step(TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>Moves a VM between the fakes behind the pipeline's back (as <c>virsh migrate</c> would), without any event.</summary>
    public void MoveOutside(string vm, string from, string to)
    {
        var info = Hosts[from].Vms.Single(v => v.Name == vm);
        Hosts[from].Remove(vm);
        Hosts[to].Add(info);
    }

    /// <summary>Where the fakes say the VM runs.</summary>
    public string? VmHost => Hosts.Values.SingleOrDefault(h => h.Vms.Any(v => v.Name == "vm"))?.Name;

    public int MigrationCalls => Hosts.Values.Sum(h => h.Migrations.Count);

    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync();
        _samples.Dispose();
    }
}
