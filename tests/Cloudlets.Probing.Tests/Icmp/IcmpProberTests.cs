// Expected values written inline read better than hoisted fields in tests.
#pragma warning disable CA1861

using System.Collections.Concurrent;
using System.Net;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.TestUtils;

namespace Cloudlets.Probing.Tests.Icmp;

/// <summary>Real ICMP to loopback addresses only. Raw sockets need root, hence the Lab category.</summary>
[Category("Lab")]
public class IcmpProberTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    private static void RequireRoot()
    {
        // The test assembly runs anywhere; the gate (and the prober) only on Linux.
        if (OperatingSystem.IsLinux())
        {
            LabGate.RequireRoot("Raw ICMP sockets");
        }
        else
        {
            Assert.Ignore("The ICMP prober needs Linux.");
        }
    }

    private static ProbeTarget[] LoopbackTargets(int count)
        => [.. Enumerable.Range(1, count).Select(i => new ProbeTarget($"lo{i}", IPAddress.Parse($"127.0.1.{i}")))];

    [Test]
    public async Task ProbeAsync_Loopback_ReturnsOkWithPositiveRoundTrip()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = "test", SocketKind = IcmpSocketKind.Raw });

        var sample = await prober.ProbeAsync(new ProbeTarget("lo", IPAddress.Loopback), Timeout);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(prober.SocketKind, Is.EqualTo(IcmpSocketKind.Raw));
            Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Ok));
            Assert.That(sample.RoundTripTime, Is.GreaterThan(TimeSpan.Zero).And.LessThan(Timeout));
            Assert.That(sample.VantagePoint, Is.EqualTo("test"));
        }
    }

    [Test]
    public async Task ProbeAsync_IPv6Loopback_ReturnsOk()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create();
        if (!prober.SupportsIPv6)
        {
            Assert.Ignore("IPv6 is not available on this machine.");
        }

        var sample = await prober.ProbeAsync(new ProbeTarget("lo6", IPAddress.IPv6Loopback), Timeout);

        Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Ok));
    }

    [Test]
    public async Task RunAsync_ManyLoopbackTargets_EveryProbeAnsweredOnce()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create();
        var targets = LoopbackTargets(32);
        var samples = new ConcurrentBag<LatencySample>();

        await prober.RunAsync(targets, new ProbeSchedule(10, TimeSpan.FromMilliseconds(1), TimeSpan.Zero, Timeout), samples.Add);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(samples, Has.Count.EqualTo(320));
            Assert.That(samples.Select(s => s.Status), Is.All.EqualTo(ProbeStatus.Ok));
            Assert.That(samples.GroupBy(s => s.Target).Select(g => g.Count()), Is.All.EqualTo(10));
            Assert.That(prober.Counters.Matched, Is.EqualTo(320));
            Assert.That(prober.Counters.Duplicates, Is.Zero);
        }
    }

    [Test]
    public async Task RunAsync_TwoProbersAtOnce_EachCountsOnlyItsOwnReplies()
    {
        RequireRoot();
        await using var first = IcmpProber.Create(new IcmpProberOptions { Identifier = 1000 });
        await using var second = IcmpProber.Create(new IcmpProberOptions { Identifier = 2000 });
        var targets = LoopbackTargets(8);
        var schedule = new ProbeSchedule(20, TimeSpan.FromMilliseconds(1), TimeSpan.Zero, Timeout);
        var a = new ConcurrentBag<LatencySample>();
        var b = new ConcurrentBag<LatencySample>();

        await Task.WhenAll(first.RunAsync(targets, schedule, a.Add), second.RunAsync(targets, schedule, b.Add));
        // A run ends with its own last reply; the other prober's last replies may still wait in the socket.
        SpinWait.SpinUntil(() => first.Counters.Foreign >= 160 && second.Counters.Foreign >= 160, TimeSpan.FromSeconds(5));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Has.Count.EqualTo(160));
            Assert.That(b, Has.Count.EqualTo(160));
            Assert.That(first.Counters.Matched, Is.EqualTo(160));
            Assert.That(second.Counters.Matched, Is.EqualTo(160));
            // Raw sockets see every echo reply on the machine: the other prober's ones were seen and refused.
            Assert.That(first.Counters.Foreign, Is.GreaterThanOrEqualTo(160));
            Assert.That(second.Counters.Foreign, Is.GreaterThanOrEqualTo(160));
        }
    }

    [Category("BadInput")]
    [Test]
    public async Task RunAsync_IPv4MappedTarget_ThrowsBeforeSending()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create();
        var samples = new List<LatencySample>();

        Assert.That(() => prober.RunAsync([new ProbeTarget("mapped", IPAddress.Parse("::ffff:127.0.0.1"))], new ProbeSchedule(1, TimeSpan.FromSeconds(1), TimeSpan.Zero, Timeout), samples.Add),
            Throws.ArgumentException.With.Message.Contains("127.0.0.1"));
        Assert.That(prober.Counters.Matched, Is.Zero);
    }

    [Test]
    public async Task RunAsync_Cancelled_StopsAndDeliversNothingMore()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create();
        using var cancellation = new CancellationTokenSource();
        var samples = new ConcurrentBag<LatencySample>();
        var run = prober.RunAsync(LoopbackTargets(2), new ProbeSchedule(1000, TimeSpan.FromMilliseconds(50), TimeSpan.Zero, Timeout), samples.Add, cancellation.Token);

        await Task.Delay(200);
        await cancellation.CancelAsync();

        Assert.That(async () => await run, Throws.InstanceOf<OperationCanceledException>());
        var count = samples.Count;
        await Task.Delay(200);
        Assert.That(samples, Has.Count.EqualTo(count).And.Count.LessThan(2000));
    }

    // CI once saw a cancelled run complete normally: the sender saw the token, stopped, and its last
    // probes were answered before the token's callback cancelled the run. Repeated, with probes 1 ms
    // apart, so the sender is usually between two sends (polling the token) when the cancel comes.
    [Test]
    public async Task RunAsync_CancelledMidRunManyTimes_EveryRunThrowsCancelled()
    {
        RequireRoot();
        await using var prober = IcmpProber.Create();
        var completedNormally = 0;
        for (var attempt = 0; attempt < 500; attempt++)
        {
            using var cancellation = new CancellationTokenSource();
            var delivered = 0;
            var run = prober.RunAsync(LoopbackTargets(1), new ProbeSchedule(10_000, TimeSpan.FromMilliseconds(1), TimeSpan.Zero, Timeout), _ => Interlocked.Increment(ref delivered), cancellation.Token);
            SpinWait.SpinUntil(() => Volatile.Read(ref delivered) >= 1 + (attempt % 3), TimeSpan.FromSeconds(5));
            if (attempt % 2 == 0)
            {
                await cancellation.CancelAsync();
            }
            else
            {
                cancellation.Cancel();
            }

            try
            {
                await run.WaitAsync(TimeSpan.FromSeconds(10));
                completedNormally++;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Assert.That(completedNormally, Is.Zero, "runs that completed as if all 10,000 rounds were sent");
    }

    [Test]
    public async Task DisposeAsync_ProbePending_FailsItInsteadOfHanging()
    {
        RequireRoot();
        var name = $"cloudlets-probe-dispose-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        try
        {
            await runner.RunCheckedAsync(CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(name));
            // Echo replies off in this namespace only: the probe stays pending until its (long) timeout.
            await runner.RunCheckedAsync(CommandLine.Of("sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=1").InNamespace(name));
            var prober = IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = name });
            var pending = prober.ProbeAsync(new ProbeTarget("silent", IPAddress.Loopback), TimeSpan.FromMinutes(1)).AsTask();
            await Task.Delay(50);

            await prober.DisposeAsync();

            Assert.That(async () => await pending.WaitAsync(TimeSpan.FromSeconds(5)), Throws.InstanceOf<ObjectDisposedException>());
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [Test]
    public async Task ProbeAsync_TargetIgnoresEcho_ReturnsTimeoutAfterTheTimeout()
    {
        RequireRoot();
        var name = $"cloudlets-probe-silent-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        try
        {
            await runner.RunCheckedAsync(CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(name));
            await runner.RunCheckedAsync(CommandLine.Of("sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=1").InNamespace(name));
            await using var prober = IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = name });
            var timeout = TimeSpan.FromMilliseconds(200);
            var started = System.Diagnostics.Stopwatch.StartNew();

            var sample = await prober.ProbeAsync(new ProbeTarget("silent", IPAddress.Loopback), timeout);

            using (Assert.EnterMultipleScope())
            {
                Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Timeout));
                Assert.That(sample.RoundTripTime, Is.Null);
                Assert.That(started.Elapsed, Is.GreaterThanOrEqualTo(timeout));
                Assert.That(prober.Counters.TimedOut, Is.EqualTo(1));
            }
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [TestCase("0 2147483647", true)]
    [TestCase("1 0", false)]
    public async Task Create_DatagramSocketInNamespaceWithPingGroupRange_OpensExactlyWhenRootsGroupIsInRange(string range, bool opens)
    {
        // net.ipv4.ping_group_range is per network namespace: set it in a test namespace so that each
        // case has one expected outcome (the old test accepted either and could not fail).
        RequireRoot();
        var name = $"cloudlets-probe-dgram-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        try
        {
            await runner.RunCheckedAsync(CommandLine.Of("sysctl", "-w", "net.ipv4.ping_group_range=" + range).InNamespace(name));
            var options = new IcmpProberOptions { SocketKind = IcmpSocketKind.Datagram, NetworkNamespace = name, EnableIPv6 = false };
            if (opens)
            {
                await using var prober = IcmpProber.Create(options);
                Assert.That(prober.SocketKind, Is.EqualTo(IcmpSocketKind.Datagram));
            }
            else
            {
                Assert.That(() => IcmpProber.Create(options), Throws.TypeOf<IcmpUnavailableException>().With.Message.Contains("ping_group_range").And.Message.Contains("'1 0'"));
            }
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [Test]
    public async Task ProbeAsync_ConcurrentPingInTheSameNamespace_EveryProbeCompletes()
    {
        // Issue 11: `cloudlets-lab shape --for 120` awaited a probe that never completed while `ping`
        // ran in the edge namespace. Two real pings flood the namespace's loopback with foreign echo
        // traffic while single probes (as the lab sample sends them) run one after another, some with
        // a token cancelled at once or soon. Every probe must end: a reply, a timeout or a cancellation.
        RequireRoot();
        var name = $"cloudlets-probe-foreign-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        var pings = new List<System.Diagnostics.Process>();
        try
        {
            await runner.RunCheckedAsync(CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(name));
            foreach (var target in new[] { "127.0.0.1", "127.0.0.2" })
            {
                pings.Add(StartPing(name, target, "0.001"));
            }

            await using var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = "edge", NetworkNamespace = name });
            var targets = new[] { new ProbeTarget("a", IPAddress.Parse("127.0.0.1")), new ProbeTarget("b", IPAddress.Parse("127.0.0.2")) };
            const int Probes = 4000;
            var hung = new List<int>();
            var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < Probes && hung.Count < 3; i++)
            {
                using var cts = new CancellationTokenSource();
                if (i % 10 == 9)
                {
                    cts.CancelAfter(TimeSpan.FromTicks(i % 3 * 5_000));
                }

                var probe = prober.ProbeAsync(targets[i % 2], TimeSpan.FromMilliseconds(500), cts.Token).AsTask();
                if (await Task.WhenAny(probe, Task.Delay(TimeSpan.FromSeconds(5))) != probe)
                {
                    hung.Add(i);
                    continue;
                }

                var outcome = probe.Status == TaskStatus.RanToCompletion ? probe.Result.Status.ToString() : probe.Status.ToString();
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }

            await TestContext.Progress.WriteLineAsync($"outcomes: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}; counters: {prober.Counters}");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(hung, Is.Empty, "probes that neither answered, timed out nor were cancelled within 5 s");
                Assert.That(prober.Counters.Foreign, Is.GreaterThan(0), "the pings' replies reached the prober's socket");
                Assert.That(outcomes.GetValueOrDefault(nameof(ProbeStatus.Ok)), Is.GreaterThan(Probes / 2));
            }
        }
        finally
        {
            await StopPingsAsync(pings);
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [TestCase(IcmpSocketKind.Datagram)]
    [TestCase(IcmpSocketKind.Raw)]
    public async Task ProbeAsync_SendBufferFullUnderConcurrentPing_EveryProbeStillCompletes(IcmpSocketKind kind)
    {
        // Issue 11: a probe must end (reply, timeout or cancellation) whatever the path below it does.
        // Here the only way out of the prober's namespace is a veth whose queue drains at 8 bit/s, so the
        // probes' packets stay queued and charged to the socket until its send buffer is full, while a
        // real ping floods the same namespace's loopback with foreign ICMP. A datagram socket's sendto
        // then blocks in the kernel (until a queued packet leaves, about 100 s here), on the caller's
        // thread, before ProbeAsync can even look at its timeout or token; a raw socket answers ENOBUFS.
        // Every probe must still end within 5 s, and some must end as Error (the buffer did fill).
        RequireRoot();
        var near = $"cloudlets-probe-slow-{Environment.ProcessId}";
        var far = $"cloudlets-probe-far-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        var pings = new List<System.Diagnostics.Process>();
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", near));
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", far));
        try
        {
            foreach (var command in new[]
            {
                CommandLine.Of("ip", "link", "add", "slow0", "type", "veth", "peer", "name", "slow1", "address", "02:00:c6:13:fe:02", "netns", far).InNamespace(near),
                CommandLine.Of("ip", "address", "add", "198.19.254.1/30", "dev", "slow0").InNamespace(near),
                CommandLine.Of("ip", "link", "set", "slow0", "up").InNamespace(near),
                // A permanent neighbour entry: no ARP, so every probe goes straight into the slow queue.
                CommandLine.Of("ip", "neigh", "add", "198.19.254.2", "lladdr", "02:00:c6:13:fe:02", "dev", "slow0", "nud", "permanent").InNamespace(near),
                CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(near),
                CommandLine.Of("ip", "address", "add", "198.19.254.2/30", "dev", "slow1").InNamespace(far),
                CommandLine.Of("ip", "link", "set", "slow1", "up").InNamespace(far),
                CommandLine.Of("tc", "qdisc", "add", "dev", "slow0", "root", "handle", "1:", "htb", "default", "1").InNamespace(near),
                CommandLine.Of("tc", "class", "add", "dev", "slow0", "parent", "1:", "classid", "1:1", "htb", "rate", "8bit", "ceil", "8bit", "burst", "1", "cburst", "1").InNamespace(near),
                CommandLine.Of("tc", "qdisc", "add", "dev", "slow0", "parent", "1:1", "handle", "10:", "pfifo", "limit", "100000").InNamespace(near),
                CommandLine.Of("sysctl", "-w", "net.ipv4.ping_group_range=0 0").InNamespace(near),
            })
            {
                await runner.RunCheckedAsync(command);
            }

            pings.Add(StartPing(near, "127.0.0.1", "0.002"));
            await using var prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = "edge", NetworkNamespace = near, SocketKind = kind, EnableIPv6 = false });
            var target = new ProbeTarget("far", IPAddress.Parse("198.19.254.2"));
            var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
            int? hung = null;
            for (var i = 0; i < 2000 && hung is null && outcomes.GetValueOrDefault(nameof(ProbeStatus.Error)) < 20; i++)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
                // On a thread-pool thread: a sendto that blocks must block that thread, not the test.
                var probe = Task.Run(() => prober.ProbeAsync(target, TimeSpan.FromMilliseconds(10), cts.Token).AsTask());
                if (await Task.WhenAny(probe, Task.Delay(TimeSpan.FromSeconds(5))) != probe)
                {
                    hung = i;
                    break;
                }

                var outcome = probe.Status == TaskStatus.RanToCompletion ? probe.Result.Status.ToString() : probe.Status.ToString();
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }

            await TestContext.Progress.WriteLineAsync($"{kind}: outcomes {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}; hung at {hung?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}; counters {prober.Counters}");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(hung, Is.Null, "a probe that neither answered, timed out nor was cancelled within 5 s");
                Assert.That(outcomes.GetValueOrDefault(nameof(ProbeStatus.Error)), Is.GreaterThan(0), "the send buffer filled (else this test proves nothing)");
                Assert.That(outcomes.GetValueOrDefault(nameof(ProbeStatus.Timeout)), Is.GreaterThan(0), "queued probes timed out");
            }
        }
        finally
        {
            await StopPingsAsync(pings);
            // Deleting the namespaces frees the queued packets, which also releases a sendto blocked on them.
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", far));
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", near));
        }
    }

    private static System.Diagnostics.Process StartPing(string networkNamespace, string target, string interval)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(CommandPath.Resolve("ip"))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "netns", "exec", networkNamespace, CommandPath.Resolve("ping"), "-q", "-i", interval, target })
        {
            psi.ArgumentList.Add(a);
        }

        return System.Diagnostics.Process.Start(psi)!;
    }

    private static async Task StopPingsAsync(List<System.Diagnostics.Process> pings)
    {
        foreach (var p in pings)
        {
            // Started by this test: ended by its own handle.
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            p.Dispose();
        }
    }

    [Category("BadInput")]
    [Test]
    public void Create_MissingNetworkNamespace_ThrowsIOException()
    {
        RequireRoot();

        Assert.That(() => IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = "cloudlets-no-such-netns" }), Throws.InstanceOf<IOException>());
    }

    [Test]
    public async Task ProbeAsync_InsideOwnNetworkNamespace_ProbesThatNamespacesLoopback()
    {
        RequireRoot();
        var name = $"cloudlets-probe-test-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        try
        {
            // A fresh namespace's loopback is down: first the probe must fail, then, once it is up, succeed.
            await using (var down = IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = name }))
            {
                var unanswered = await down.ProbeAsync(new ProbeTarget("lo", IPAddress.Loopback), TimeSpan.FromMilliseconds(300));
                Assert.That(unanswered.Status, Is.Not.EqualTo(ProbeStatus.Ok));
            }

            await runner.RunCheckedAsync(CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(name));
            await using var prober = IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = name });

            var sample = await prober.ProbeAsync(new ProbeTarget("lo", IPAddress.Loopback), Timeout);

            Assert.That(sample.Status, Is.EqualTo(ProbeStatus.Ok));
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [Test]
    public async Task RunAsync_DatagramSocketInOwnNamespace_MatchesRepliesWithoutRawSockets()
    {
        RequireRoot();
        var name = $"cloudlets-probe-dgram-{Environment.ProcessId}";
        var runner = LocalCommandRunner.Instance;
        await runner.RunCheckedAsync(CommandLine.Of("ip", "netns", "add", name));
        try
        {
            await runner.RunCheckedAsync(CommandLine.Of("ip", "link", "set", "lo", "up").InNamespace(name));
            // ping_group_range is per namespace: allow unprivileged ICMP sockets for root's group here only.
            await runner.RunCheckedAsync(CommandLine.Of("sysctl", "-w", "net.ipv4.ping_group_range=0 0").InNamespace(name));
            await using var prober = IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = name, SocketKind = IcmpSocketKind.Datagram });
            var samples = new ConcurrentBag<LatencySample>();

            await prober.RunAsync(LoopbackTargets(4), new ProbeSchedule(5, TimeSpan.FromMilliseconds(1), TimeSpan.Zero, Timeout), samples.Add);

            using (Assert.EnterMultipleScope())
            {
                Assert.That(prober.SocketKind, Is.EqualTo(IcmpSocketKind.Datagram));
                Assert.That(samples, Has.Count.EqualTo(20));
                Assert.That(samples.Select(s => s.Status), Is.All.EqualTo(ProbeStatus.Ok));
            }
        }
        finally
        {
            await runner.RunAsync(CommandLine.Of("ip", "netns", "delete", name));
        }
    }

    [Category("BadInput")]
    [TestCase(4)]
    [TestCase(2000)]
    public void Create_PayloadOutOfRange_Throws(int payload)
        => Assert.That(() => IcmpProber.Create(new IcmpProberOptions { PayloadSize = payload }), Throws.TypeOf<OptionsValidationException>().With.Property("Errors").One.Property("Path").EqualTo("PayloadSize"));

    [Category("BadInput")]
    [TestCase(-1)]
    [TestCase(11)]
    public void Create_ReceiveGatherTimeOutOfRange_Throws(int milliseconds)
        => Assert.That(() => IcmpProber.Create(new IcmpProberOptions { ReceiveGatherTime = TimeSpan.FromMilliseconds(milliseconds) }), Throws.TypeOf<OptionsValidationException>().With.Property("Errors").One.Property("Path").EqualTo("ReceiveGatherTime"));

    [Category("BadInput")]
    [Test]
    public void Create_InvalidNamespaceName_Throws()
        => Assert.That(() => IcmpProber.Create(new IcmpProberOptions { NetworkNamespace = "../etc" }), Throws.TypeOf<OptionsValidationException>().With.Property("Errors").One.Property("Path").EqualTo("NetworkNamespace"));
}
