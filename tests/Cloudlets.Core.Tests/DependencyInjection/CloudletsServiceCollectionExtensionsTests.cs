using System.Net;
using System.Reactive.Subjects;
using Cloudlets.Core.DependencyInjection;
using Cloudlets.Core.Pipeline;
using Cloudlets.Core.Probing;
using Cloudlets.Core.Tests.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Cloudlets.Core.Tests.DependencyInjection;

/// <summary>Against a real <see cref="IHost"/> (Microsoft.Extensions.Hosting), the pipeline in virtual time through the registered <see cref="TimeProvider"/>.</summary>
public class CloudletsServiceCollectionExtensionsTests
{
    private static readonly Dictionary<string, string?> Automatic = new()
    {
        ["Cloudlets:Pipeline:Mode"] = "Automatic",
        ["Cloudlets:Pipeline:EvaluationInterval"] = "00:00:05",
        ["Cloudlets:Pipeline:SampleWindow"] = "5",
        ["Cloudlets:Pipeline:StopTimeout"] = "00:10:00",
        ["Cloudlets:Pipeline:Executor:ImprovementCheckDelay"] = "00:00:00",
        ["Cloudlets:Pipeline:Executor:ProgressTimeout"] = "00:10:00", // the fake reports no progress
        ["Cloudlets:Policy:ConfirmationWindows"] = "2",
        ["Cloudlets:Policy:Cooldown"] = "00:01:00",
    };

    private sealed class Rig
    {
        public FakeTimeProvider Clock { get; } = VirtualClock.Create();
        public Subject<LatencySample> Samples { get; } = new();
        public FakeHypervisorHost A { get; } = new("a") { MigrationMode = FakeMigrationMode.Manual };
        public FakeHypervisorHost B { get; } = new("b");

        public IHost Build(IDictionary<string, string?> settings)
        {
            A.AddVm("vm");
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(settings);
            builder.Services.AddSingleton<TimeProvider>(Clock);
            builder.Services.AddCloudlets(builder.Configuration.GetSection("Cloudlets"), (_, pipeline) => pipeline
                .WithSamples(Samples)
                .AddHost(A, "a")
                .AddHost(B, "b")
                .AddVm("vm", "edge"));
            return builder.Build();
        }

        /// <summary>a is 300 ms away, b 20 ms: one probe per host per second.</summary>
        public void Replay(TimeSpan duration)
        {
            for (var t = TimeSpan.Zero; t < duration; t += TimeSpan.FromSeconds(1))
            {
                foreach (var (host, ms) in new[] { ("a", 300), ("b", 20) })
                {
                    Samples.OnNext(new LatencySample("edge", new ProbeTarget(host, IPAddress.Loopback), Clock.GetUtcNow(), TimeSpan.FromMilliseconds(ms), ProbeStatus.Ok));
                }

                Clock.Step(TimeSpan.FromSeconds(1));
            }
        }
    }

    [Test]
    public async Task AddCloudlets_HostStopsDuringAMigration_MigrationFinishesThenThePipelineStops()
    {
        var rig = new Rig();
        using var host = rig.Build(Automatic);
        var pipeline = host.Services.GetRequiredService<MigrationPipeline>();
        var outcomes = new List<MigrationOutcome>();
        pipeline.Outcomes.Subscribe(outcomes.Add);

        await host.StartAsync();
        rig.Replay(TimeSpan.FromSeconds(30));
        Assert.That(rig.A.Pending, Has.Count.EqualTo(1), "the pipeline, started by the host, began the move to b");

        var stopping = host.StopAsync();
        rig.Replay(TimeSpan.FromSeconds(10));
        Assert.That(stopping.IsCompleted, Is.False, "the host's stop waits for the running migration");

        rig.A.Pending[0].Succeed();
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.A.Pending[0].WasCancelled, Is.False, "a graceful stop does not abort the running migration");
            Assert.That(outcomes.Select(o => (o.Kind, o.Destination)), Is.EqualTo(new[] { (MigrationOutcomeKind.Succeeded, "b") }));
            Assert.That(rig.B.Vms.Select(v => v.Name), Is.EqualTo(new[] { "vm" }));
            Assert.That(rig.A.Migrations, Has.Count.EqualTo(1), "no move after the stop");
        }
    }

    [Test]
    public async Task AddCloudlets_HostDisposed_PipelineAndOwnedHostsDisposed()
    {
        var rig = new Rig();
        var host = rig.Build(Automatic);
        await host.StartAsync();
        await host.StopAsync();
        host.Dispose();
        Assert.That((rig.A.Disposed, rig.B.Disposed), Is.EqualTo((true, true)));
    }

    [Test]
    [Category("BadInput")]
    public async Task AddCloudlets_InvalidConfiguration_HostStartFailsListingEveryErrorWithItsPath()
    {
        var rig = new Rig();
        var settings = new Dictionary<string, string?>(Automatic)
        {
            ["Cloudlets:Pipeline:EvaluationInterval"] = "00:00:00",
            ["Cloudlets:Pipeline:Executor:MaxConcurrentPerHost"] = "0",
        };
        using var host = rig.Build(settings);

        var error = Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error!.Failures, Has.Some.StartsWith("Pipeline.EvaluationInterval: "));
            Assert.That(error.Failures, Has.Some.StartsWith("Pipeline.Executor.MaxConcurrentPerHost: "));
            Assert.That(rig.A.Migrations, Is.Empty);
        }
    }

    [Test]
    public void AddCloudlets_Resolved_OneSingletonPipelineWithTheBoundOptions()
    {
        var rig = new Rig();
        using var host = rig.Build(Automatic);
        var pipeline = host.Services.GetRequiredService<MigrationPipeline>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.Services.GetRequiredService<MigrationPipeline>(), Is.SameAs(pipeline));
            Assert.That(pipeline.Mode, Is.EqualTo(PipelineMode.Automatic));
            Assert.That(host.Services.GetServices<IHostedService>().OfType<CloudletsPipelineService>().Count(), Is.EqualTo(1));
        }
    }

    [Test]
    public void AddCloudlets_RulesInConfiguration_PipelineStartsWithThemAndIsThePlacementControl()
    {
        var rig = new Rig();
        using var host = rig.Build(new Dictionary<string, string?>(Automatic) { ["Cloudlets:Rules:DrainedHosts:0"] = "b", ["Cloudlets:Rules:PinnedVms:0"] = "vm" });
        var control = host.Services.GetRequiredService<IPlacementControl>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(control, Is.SameAs(host.Services.GetRequiredService<MigrationPipeline>()));
            Assert.That(control.Rules.DrainedHosts, Is.EqualTo(new[] { "b" }));
            Assert.That(control.Rules.IsPinned("vm"), Is.True);
        }
    }

    [Test]
    [Category("BadInput")]
    public void AddCloudlets_RulesNameUnknownHost_BuildingThePipelineListsTheError()
    {
        var rig = new Rig();
        using var host = rig.Build(new Dictionary<string, string?>(Automatic) { ["Cloudlets:Rules:DrainedHosts:0"] = "zz" });
        var e = Assert.Throws<Cloudlets.Core.Options.OptionsValidationException>(() => host.Services.GetRequiredService<MigrationPipeline>())!;
        Assert.That(e.Errors.Select(x => x.Path), Is.EqualTo(new[] { "DrainedHosts[0]" }));
    }
}
