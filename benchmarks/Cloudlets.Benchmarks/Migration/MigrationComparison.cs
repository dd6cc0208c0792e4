using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.Lab.Guests;
using Cloudlets.Libvirt;

namespace Cloudlets.Benchmarks.Migration;

/// <summary>
/// Migration through the library against <c>virsh migrate --live --p2p</c> in one lab run, on the
/// same guest between the same two hosts: several runs each, alternating tool and direction, then
/// medians of total time and downtime and their ratios (library / virsh).
/// </summary>
/// <remarks>
/// Both tools use the same flags (live, peer-to-peer, persist on the destination, explicit
/// migration URI, no bandwidth cap). Total time is wall time around the whole call: the library's
/// <c>MigrateAsync</c> (pre-flight, migration, result) on an open connection, and the virsh
/// process (started from the lab's edge namespace, so it includes virsh's own connect).
/// Downtime is the hypervisor's figure: the library's result (the job-completed event), and
/// <c>virsh domjobinfo --completed</c> on the source for virsh. With <c>--progress-ms N</c> the
/// library's call also listens for progress every N ms, as the pipeline's executor always does (its
/// job-statistics polling then runs next to QEMU's migration thread); without it, nobody listens.
/// During every run, for both tools, the edge pings the guest every 10 ms and requests its TCP service
/// back to back (<see cref="GuestInterruptionMonitor"/>): the longest gap in each is the interruption users feel.
/// The JSON gives p50 and p99 of every figure per tool, the mean downtime, and every run's figures.
/// </remarks>
public static partial class MigrationComparison
{
    private const string H1 = "cloudlet-1";
    private const string H2 = "cloudlet-2";

    /// <summary>
    /// Runs the comparison. Arguments: <c>--json</c> (one JSON object on stdout), <c>--runs N</c> (per tool; the default is 5),
    /// <c>--progress-ms N</c> (the library listens for progress every N ms, 10 to 600000; the default is not to listen).
    /// </summary>
    /// <returns>0 on success, 2 when the lab cannot run here, 1 when a migration failed.</returns>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (!OperatingSystem.IsLinux())
        {
            await Console.Error.WriteLineAsync("The migration comparison needs a Linux lab.").ConfigureAwait(false);
            return 2;
        }

        return await RunOnLinuxAsync(args).ConfigureAwait(false);
    }

    [SupportedOSPlatform("linux")]
    private static async Task<int> RunOnLinuxAsync(string[] args)
    {
        var json = args.Contains("--json");
        var runs = 5;
        var runsAt = Array.IndexOf(args, "--runs");
        if (runsAt >= 0 && (runsAt + 1 >= args.Length || !int.TryParse(args[runsAt + 1], CultureInfo.InvariantCulture, out runs) || runs is < 1 or > 50))
        {
            await Console.Error.WriteLineAsync("--runs takes a number from 1 to 50.").ConfigureAwait(false);
            return 2;
        }

        var progressMs = 0;
        var progressAt = Array.IndexOf(args, "--progress-ms");
        if (progressAt >= 0 && (progressAt + 1 >= args.Length || !int.TryParse(args[progressAt + 1], CultureInfo.InvariantCulture, out progressMs) || progressMs is < 10 or > 600_000))
        {
            await Console.Error.WriteLineAsync("--progress-ms takes a number of milliseconds from 10 to 600000.").ConfigureAwait(false);
            return 2;
        }

        var missing = LabPrerequisites.FindMissing();
        if (missing.Count > 0)
        {
            await Console.Error.WriteLineAsync(LabPrerequisites.Describe(missing)).ConfigureAwait(false);
            return 2;
        }

        var name = "lvb-" + RandomNumberGenerator.GetInt32(0, 0x1000000).ToString("x6", CultureInfo.InvariantCulture);
        await using var lab = new CloudletLabBuilder().WithName(name).WithHosts(2).WithGuestOn(H1).Build();
        Console.Error.WriteLine($"starting lab {name} (2 hosts, one guest)...");
        await lab.StartAsync().ConfigureAwait(false);
        var guest = lab.Guests[0];
        await using var h1 = await ConnectAsync(lab, H1).ConfigureAwait(false);
        await using var h2 = await ConnectAsync(lab, H2).ConfigureAwait(false);
        var guestMemoryMiB = ((await h1.TryGetVmAsync(guest.Name).ConfigureAwait(false))?.MaxMemoryBytes ?? 0) / (1024 * 1024);
        var hosts = new Dictionary<string, LibvirtHypervisorHost>(StringComparer.Ordinal) { [H1] = h1, [H2] = h2 };

        var library = new List<RunSample>();
        var virsh = new List<RunSample>();
        var from = H1;
        try
        {
            // Alternate which tool goes first, so each tool migrates in both directions equally often.
            for (var run = 0; run < runs; run++)
            {
                for (var step = 0; step < 2; step++)
                {
                    var to = from == H1 ? H2 : H1;
                    var useLibrary = (run + step) % 2 == 0;
                    await using var monitor = await GuestInterruptionMonitor.StartAsync(lab, guest).ConfigureAwait(false);
                    var (totalMs, downtimeMs) = useLibrary
                        ? await LibraryAsync(hosts[from], hosts[to], guest, lab.GetHost(to), progressMs).ConfigureAwait(false)
                        : await VirshAsync(lab, guest, from, to).ConfigureAwait(false);
                    var interruption = await monitor.StopAsync().ConfigureAwait(false);
                    var (pingGapMs, requestGapMs) = (interruption.LongestPingGap.TotalMilliseconds, interruption.LongestRequestGap.TotalMilliseconds);
                    var sample = new RunSample(totalMs, downtimeMs, pingGapMs, requestGapMs);
                    (useLibrary ? library : virsh).Add(sample);
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {run + 1} {(useLibrary ? "library" : "virsh  ")} {from} -> {to}: total {sample.TotalMs:0} ms, downtime {sample.DowntimeMs?.ToString("0", CultureInfo.InvariantCulture) ?? "?"} ms, longest gap from the edge: pings {pingGapMs:0} ms, requests {requestGapMs:0} ms"));
                    await lab.CreateGuestClient(guest).WaitForAnswerAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
                    from = to;
                }
            }
        }
        catch (Exception ex) when (ex is HypervisorException or CommandException or TimeoutException)
        {
            await Console.Error.WriteLineAsync($"migration comparison failed: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        var libraryTotal = Median(library.Select(s => s.TotalMs));
        var virshTotal = Median(virsh.Select(s => s.TotalMs));
        var libraryDowntime = Median(library.Where(s => s.DowntimeMs is not null).Select(s => s.DowntimeMs!.Value));
        var virshDowntime = Median(virsh.Where(s => s.DowntimeMs is not null).Select(s => s.DowntimeMs!.Value));
        var libraryMeanDowntime = Mean(library.Where(s => s.DowntimeMs is not null).Select(s => s.DowntimeMs!.Value));
        var virshMeanDowntime = Mean(virsh.Where(s => s.DowntimeMs is not null).Select(s => s.DowntimeMs!.Value));
        var report = new Dictionary<string, object?>
        {
            ["libraryTotalMs"] = Math.Round(libraryTotal, 1),
            ["virshTotalMs"] = Math.Round(virshTotal, 1),
            ["libraryDowntimeMs"] = Math.Round(libraryDowntime, 1),
            ["virshDowntimeMs"] = Math.Round(virshDowntime, 1),
            ["ratioTotal"] = Math.Round(libraryTotal / virshTotal, 3),
            ["ratioDowntime"] = Math.Round(libraryDowntime / virshDowntime, 3),
            ["ratioMeanDowntime"] = Math.Round(libraryMeanDowntime / virshMeanDowntime, 3),
            ["library"] = Distribution(library),
            ["virsh"] = Distribution(virsh),
            ["runs"] = runs,
            ["libraryProgressMs"] = progressMs == 0 ? null : progressMs,
            ["guestMemoryMiB"] = guestMemoryMiB,
            ["libraryTotalsMs"] = library.Select(s => Math.Round(s.TotalMs, 1)).ToArray(),
            ["virshTotalsMs"] = virsh.Select(s => Math.Round(s.TotalMs, 1)).ToArray(),
            ["libraryDowntimesMs"] = library.Select(s => s.DowntimeMs).ToArray(),
            ["virshDowntimesMs"] = virsh.Select(s => s.DowntimeMs).ToArray(),
            ["libraryPingGapsMs"] = library.Select(s => Math.Round(s.PingGapMs, 1)).ToArray(),
            ["virshPingGapsMs"] = virsh.Select(s => Math.Round(s.PingGapMs, 1)).ToArray(),
            ["libraryRequestGapsMs"] = library.Select(s => Math.Round(s.RequestGapMs, 1)).ToArray(),
            ["virshRequestGapsMs"] = virsh.Select(s => Math.Round(s.RequestGapMs, 1)).ToArray(),
        };
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(report));
        }
        else
        {
            Console.WriteLine($"medians over {runs} runs each: total library {libraryTotal:0} ms vs virsh {virshTotal:0} ms (ratio {libraryTotal / virshTotal:0.000}); " +
                $"downtime library {libraryDowntime:0} ms vs virsh {virshDowntime:0} ms (ratio {libraryDowntime / virshDowntime:0.000})");
        }

        return 0;
    }

    [SupportedOSPlatform("linux")]
    private static Task<LibvirtHypervisorHost> ConnectAsync(CloudletLab lab, string hostName)
    {
        var host = lab.GetHost(hostName);
        return LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions { Name = host.Name, Uri = host.Uri, NetworkNamespace = lab.Edge.Namespace });
    }

    [SupportedOSPlatform("linux")]
    private static async Task<(double TotalMs, double? DowntimeMs)> LibraryAsync(LibvirtHypervisorHost from, LibvirtHypervisorHost to, LabGuest guest, LabHost destination, int progressMs)
    {
        var samples = 0;
        var progress = progressMs == 0 ? null : new CountingProgress(() => Interlocked.Increment(ref samples));
        var options = progressMs == 0 ? new MigrationOptions() : new MigrationOptions { ProgressInterval = TimeSpan.FromMilliseconds(progressMs) };
        var started = Stopwatch.GetTimestamp();
        var result = await from.MigrateAsync(
            guest.Name,
            MigrationDestination.Of(to, destination.MigrationUri),
            options,
            new LibvirtMigrationOptions { UndefineSource = false },
            progress).ConfigureAwait(false);
        var total = Stopwatch.GetElapsedTime(started);
        Console.Error.WriteLine($"  library: migrate call {result.TotalTime.TotalMilliseconds:0} ms of {total.TotalMilliseconds:0} ms{(progress is null ? string.Empty : $", {samples} progress samples")}");
        return (total.TotalMilliseconds, result.Downtime?.TotalMilliseconds);
    }

    [SupportedOSPlatform("linux")]
    private static async Task<(double TotalMs, double? DowntimeMs)> VirshAsync(CloudletLab lab, LabGuest guest, string fromHost, string toHost)
    {
        var from = lab.GetHost(fromHost);
        var to = lab.GetHost(toHost);
        var migrate = lab.Virsh(from, "migrate", "--live", "--p2p", "--persistent", guest.Name, to.Uri.ToString(), "--migrateuri", to.MigrationUri.ToString());
        var started = Stopwatch.GetTimestamp();
        await LocalCommandRunner.Instance.RunCheckedAsync(migrate).ConfigureAwait(false);
        var total = Stopwatch.GetElapsedTime(started);
        var info = await LocalCommandRunner.Instance.RunAsync(lab.Virsh(from, "domjobinfo", "--completed", guest.Name)).ConfigureAwait(false);
        var match = DowntimePattern().Match(info.StandardOutput);
        double? downtime = match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        return (total.TotalMilliseconds, downtime);
    }

    /// <summary>p50 and p99 (nearest rank: with 15 runs, p99 is the worst run) of each figure, and the mean downtime.</summary>
    private static Dictionary<string, object?> Distribution(List<RunSample> runs)
    {
        var downtimes = runs.Where(s => s.DowntimeMs is not null).Select(s => s.DowntimeMs!.Value).ToList();
        return new Dictionary<string, object?>
        {
            ["totalMs"] = Percentiles(runs.Select(s => s.TotalMs)),
            ["downtimeMs"] = Percentiles(downtimes),
            ["meanDowntimeMs"] = Math.Round(Mean(downtimes), 1),
            ["pingGapMs"] = Percentiles(runs.Select(s => s.PingGapMs)),
            ["requestGapMs"] = Percentiles(runs.Select(s => s.RequestGapMs)),
        };
    }

    private static Dictionary<string, double> Percentiles(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return new Dictionary<string, double>
        {
            ["p50"] = Math.Round(Median(sorted), 1),
            ["p99"] = sorted.Length == 0 ? double.NaN : Math.Round(sorted[Math.Clamp((int)Math.Ceiling(0.99 * sorted.Length) - 1, 0, sorted.Length - 1)], 1),
        };
    }

    private static double Mean(IEnumerable<double> values)
    {
        var list = values.ToList();
        return list.Count == 0 ? double.NaN : list.Average();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>One migration: wall time of the call, QEMU's downtime, and the longest gaps the edge saw.</summary>
    private sealed record RunSample(double TotalMs, double? DowntimeMs, double PingGapMs, double RequestGapMs);

    private sealed class CountingProgress(Action onSample) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => onSample();
    }

    // "Total downtime:   110 ms" (not "Expected downtime" nor "Downtime w/o network").
    [GeneratedRegex(@"^Total downtime:\s+(\d+)\s*ms", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex DowntimePattern();
}
