using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.Versioning;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>What every secured transport's lab test checks the same way (TLS, SSH): connect from the edge, and a live migration there and back with the guest read throughout.</summary>
[SupportedOSPlatform("linux")]
internal static class TransportLabChecks
{
    /// <summary>Connects to a lab host from the edge namespace with <paramref name="uri"/>.</summary>
    public static Task<LibvirtHypervisorHost> ConnectAsync(CloudletLab lab, Uri uri, string name, ILibvirtCredentialProvider? credentials = null) =>
        LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions
        {
            Name = name,
            Uri = uri,
            NetworkNamespace = lab.Edge.Namespace,
            DomainType = "qemu",
            Credentials = credentials,
        });

    /// <summary>
    /// Over the lab's own URIs: lists <paramref name="from"/>, watches <paramref name="to"/>'s events, migrates the
    /// lab's first guest to <paramref name="to"/> and back while reading it every 200 ms, and asserts that it was
    /// listed, resumed by migration on <paramref name="to"/>, answered from the same boot throughout and ended on
    /// <paramref name="from"/> alone. Returns both migrations and the longest gap between answers, for the record.
    /// </summary>
    public static async Task<(MigrationResult There, MigrationResult Back, TimeSpan LongestGap)> MigrateThereAndBackAsync(CloudletLab lab, string from, string to, string transport, ILibvirtCredentialProvider? credentials = null)
    {
        var guest = lab.Guests[0];
        await using var h1 = await ConnectAsync(lab, lab.GetHost(from).Uri, from, credentials);
        await using var h2 = await ConnectAsync(lab, lab.GetHost(to).Uri, to, credentials);
        var listed = await h1.ListVmsAsync();
        var events = new ConcurrentQueue<VmLifecycleEvent>();
        using var subscription = h2.Events.Subscribe(e =>
        {
            if (e is VmLifecycleEvent l)
            {
                events.Enqueue(l);
            }
        });

        var client = lab.CreateGuestClient(guest);
        var before = await client.WaitForAnswerAsync(TimeSpan.FromSeconds(30));
        using var stopReading = new CancellationTokenSource();
        var reader = ReadUntilStoppedAsync(client, stopReading.Token);

        var there = await h1.MigrateAsync(guest.Name, MigrationDestination.Of(h2, lab.GetHost(to).MigrationUri), new MigrationOptions { BandwidthMiBps = 64 });
        var onH2 = await h2.TryGetVmAsync(guest.Name);
        var back = await h2.MigrateAsync(guest.Name, MigrationDestination.Of(h1, lab.GetHost(from).MigrationUri), new MigrationOptions { BandwidthMiBps = 64 });
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stopReading.CancelAsync();
        var (reads, longestGap, bootIds) = await reader;
        var after = await client.WaitForAnswerAsync(TimeSpan.FromSeconds(20));

        TestContext.Out.WriteLine($"over {transport}: there {there.TotalTime.TotalMilliseconds:0} ms (downtime {there.Downtime?.TotalMilliseconds} ms), back {back.TotalTime.TotalMilliseconds:0} ms (downtime {back.Downtime?.TotalMilliseconds} ms); {reads} guest reads, longest gap {longestGap.TotalMilliseconds:0} ms");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(listed.Select(v => v.Name), Does.Contain(guest.Name), $"listed over {transport}");
            Assert.That((there.Source, there.Destination), Is.EqualTo((from, to)));
            Assert.That(onH2?.State, Is.EqualTo(VmState.Running), $"the guest ran on {to} after the first migration");
            Assert.That((back.Source, back.Destination), Is.EqualTo((to, from)));
            Assert.That(events.Any(e => e.Lifecycle == VmLifecycle.Resumed && e.ByMigration), Is.True, $"{to}'s event stream, over {transport}, saw the migrated guest resume");
            Assert.That(bootIds, Is.EqualTo(new[] { before.BootId }), "every answer during both migrations came from the same boot");
            Assert.That(after.BootId, Is.EqualTo(before.BootId));
            Assert.That(reads, Is.GreaterThan(10), "the guest was read throughout");
            // Generous: the guest is paused for its downtime (tens of ms) on a noisy 2-core machine.
            Assert.That(longestGap, Is.LessThan(TimeSpan.FromSeconds(10)), "the guest kept answering through both migrations");
            Assert.That((await h1.TryGetVmAsync(guest.Name))?.State, Is.EqualTo(VmState.Running));
            Assert.That(await h2.TryGetVmAsync(guest.Name), Is.Null, $"no copy left on {to}");
        }

        return (there, back, longestGap);
    }

    /// <summary>Reads the guest's state service every 200 ms until stopped: how many reads, the longest gap between answers, and the boot ids seen.</summary>
    public static async Task<(int Reads, TimeSpan LongestGap, string[] BootIds)> ReadUntilStoppedAsync(LabGuestClient client, CancellationToken stop)
    {
        var boots = new HashSet<string>(StringComparer.Ordinal);
        var reads = 0;
        var longest = TimeSpan.Zero;
        var lastAnswer = Stopwatch.GetTimestamp();
        for (var i = 0; i < 3000 && !stop.IsCancellationRequested; i++)
        {
            try
            {
                var reading = await client.ReadAsync(TimeSpan.FromSeconds(2), stop);
                boots.Add(reading.BootId);
                reads++;
                var gap = Stopwatch.GetElapsedTime(lastAnswer);
                longest = gap > longest ? gap : longest;
                lastAnswer = Stopwatch.GetTimestamp();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // a read that fails during the downtime is what the gap measures
            catch (Exception)
#pragma warning restore CA1031
            {
            }

            try
            {
                await Task.Delay(200, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return (reads, longest, [.. boots]);
    }
}
