using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem.Tc;

namespace Cloudlets.Netem.Tests.Tc;

public sealed class TcNetemShaperTests
{
    private string lockDirectory = null!;

    [SetUp]
    public void SetUp() => lockDirectory = Directory.CreateTempSubdirectory("netem-locks-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(lockDirectory, recursive: true);

    private TcNetemShaper Shaper(ICommandRunner runner) => new(runner, options: new TcNetemShaperOptions { OwnerLockDirectory = lockDirectory });

    /// <summary>
    /// A scripted kernel with state: qdiscs replaced at the root of eth0 show up in <c>tc -j qdisc show</c>
    /// until deleted, and the handle record follows mkdir/rmdir, so a rollback can be checked.
    /// </summary>
    private sealed class ScriptedKernel(bool netem, string foreignQdiscs = "")
    {
        private readonly List<string> roots = [];
        private readonly List<string> records = [];

        public CommandResult? Answer(CommandLine c)
        {
            var argv = string.Join(' ', [c.Program, .. c.Arguments]);
            if (argv == "ip -j netns list") { return RecordingRunner.Ok(c, ""); }
            if (argv.StartsWith("find ", StringComparison.Ordinal)) { return RecordingRunner.Ok(c, string.Concat(records.Select(r => r + "\n"))); }
            if (argv.StartsWith("mkdir ", StringComparison.Ordinal) && c.Arguments[0] != "-p" && c.Arguments[0].Count(ch => ch == '/') == 5) { records.Add(c.Arguments[0]); }
            if (argv.StartsWith("rmdir ", StringComparison.Ordinal)) { records.Remove(c.Arguments[0]); }
            if (argv == "tc -j qdisc show") { return RecordingRunner.Ok(c, "[" + string.Join(',', roots.Append(foreignQdiscs).Where(r => r.Length > 0)) + "]"); }
            if (argv.StartsWith("ip -j link show", StringComparison.Ordinal) || argv.StartsWith("tc -j filter show", StringComparison.Ordinal)) { return RecordingRunner.Ok(c, "[]"); }
            if (!netem && c.Arguments.Contains("netem")) { return RecordingRunner.Fail(c, "Error: Specified qdisc kind is unknown.\n"); }
            if (argv.StartsWith("tc qdisc replace dev eth0 root handle ", StringComparison.Ordinal))
            {
                var handle = c.Arguments[6];
                roots.Add("{\"kind\":\"" + c.Arguments[7] + "\",\"handle\":\"" + handle + "\",\"dev\":\"eth0\",\"root\":true,\"options\":{}}");
            }

            if (argv == "tc qdisc del dev eth0 root") { roots.Clear(); }
            return null;
        }
    }

    [Test]
    public async Task ApplyAsync_KernelWithoutNetem_ThrowsNamingTheOptionAndRemovesWhatItBuilt()
    {
        var kernel = new ScriptedKernel(netem: false);
        var runner = new RecordingRunner(kernel.Answer);
        await using var shaper = Shaper(runner);
        var plan = new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(System.Net.IPAddress.Parse("198.19.200.1")))]);

        var ex = Assert.ThrowsAsync<NetemUnavailableException>(() => shaper.ApplyAsync(plan));
        var mutations = runner.Mutations.Select(c => string.Join(' ', [c.Program, .. c.Arguments])).ToList();
        var h = OwnerNames.Hex(OwnerNames.PreferredHandle("demo"));
        var netemAt = mutations.FindIndex(m => m.Contains(" netem ", StringComparison.Ordinal));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Message, Does.Contain("CONFIG_NET_SCH_NETEM"));
            Assert.That(mutations, Has.Member($"tc qdisc replace dev eth0 root handle {h}: htb"), "the HTB root went in first");
            Assert.That(netemAt, Is.GreaterThan(0), "then the netem leaf failed");
            Assert.That(mutations.Skip(netemAt + 1), Is.EqualTo(new[] { "tc qdisc del dev eth0 root", $"rmdir {TcHandleRecord.DefaultDirectory}/{h}/demo {TcHandleRecord.DefaultDirectory}/{h}" }),
                "the rollback removed the HTB root it built and gave the handle back");
            Assert.That((await shaper.ShowAsync("demo")).IsEmpty, Is.True);
        }
    }

    [Test]
    public async Task ApplyAsync_InvalidInterface_RunsNothing()
    {
        var runner = new RecordingRunner(new ScriptedKernel(netem: true).Answer);
        await using var shaper = Shaper(runner);
        Assert.ThrowsAsync<ShapingValidationException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0;reboot", Impairment.FromDelay(20))])));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_Ipv6Match_IsUnsupportedAndRunsNothing()
    {
        var runner = new RecordingRunner(new ScriptedKernel(netem: true).Answer);
        await using var shaper = Shaper(runner);
        var ex = Assert.ThrowsAsync<UnsupportedImpairmentException>(() => shaper.ApplyAsync(new ShapingPlan("demo",
            [ShapingRule.Egress("eth0", Impairment.FromDelay(20), TrafficMatch.To(System.Net.IPAddress.Parse("fd00::1")))])));
        Assert.That(ex!.Missing, Is.EqualTo(ShapingFeatures.Ipv6));
        Assert.That(runner.Commands, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_ForeignRoot_RunsNoMutation()
    {
        var runner = new RecordingRunner(new ScriptedKernel(netem: true, """{"kind":"tbf","handle":"1:","dev":"eth0","root":true,"options":{}}""").Answer);
        await using var shaper = Shaper(runner);
        Assert.ThrowsAsync<ForeignQdiscException>(() => shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20))])));
        Assert.That(runner.Mutations, Is.Empty);
    }

    [Test]
    public async Task ApplyAsync_WithNetem_ClaimsTheHandleAndRunsTheRootNetem()
    {
        var runner = new RecordingRunner(new ScriptedKernel(netem: true).Answer);
        await using var shaper = Shaper(runner);
        await shaper.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]));
        var h = OwnerNames.Hex(OwnerNames.PreferredHandle("demo"));
        const string dir = TcHandleRecord.DefaultDirectory;
        Assert.That(runner.Mutations.Select(c => string.Join(' ', [c.Program, .. c.Arguments])), Is.EqualTo(new[]
        {
            $"mkdir -p {dir}",
            $"mkdir {dir}/{h}",
            $"mkdir {dir}/{h}/demo",
            $"tc qdisc replace dev eth0 root handle {h}: netem limit 1000 delay 300ms",
        }));
    }

    [Test]
    public async Task ApplyAsync_SecondShaperOfTheSameOwner_ThrowsBeforeAnyCommand()
    {
        var runner = new RecordingRunner(new ScriptedKernel(netem: true).Answer);
        await using var first = Shaper(runner);
        await first.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(300))]));
        var secondRunner = new RecordingRunner(new ScriptedKernel(netem: true).Answer);
        await using var second = Shaper(secondRunner);
        var ex = Assert.ThrowsAsync<ShapingOwnerInUseException>(() => second.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20))])));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Holder, Does.Contain("pid " + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(secondRunner.Commands, Is.Empty);
        }

        await first.ClearAsync("demo");
        Assert.DoesNotThrowAsync(() => second.ApplyAsync(new ShapingPlan("demo", [ShapingRule.Egress("eth0", Impairment.FromDelay(20))])), "cleared: the owner is free");
    }

    [TestCase("")]
    [TestCase("relative/dir")]
    [TestCase("/run/../etc")]
    [TestCase("/run/with space")]
    public void Constructor_BadDirectory_ThrowsListingEveryError(string directory)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => _ = new TcNetemShaper(new RecordingRunner(), options: new TcNetemShaperOptions { OwnerLockDirectory = directory, HandleRecordDirectory = directory }));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "OwnerLockDirectory", "HandleRecordDirectory" }));
    }
}
