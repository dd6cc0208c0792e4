using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;

namespace Cloudlets.Lab.Guests;

/// <summary>The longest gaps between two answers of a guest, and how many answers came, while a monitor ran.</summary>
/// <param name="LongestPingGap">Between two ping replies (pings every 10 ms).</param>
/// <param name="LongestRequestGap">Between two answered requests of the guest's TCP service (one connection each, back to back).</param>
/// <param name="Pings">Ping replies.</param>
/// <param name="Requests">Answered requests.</param>
public sealed record GuestInterruption(TimeSpan LongestPingGap, TimeSpan LongestRequestGap, int Pings, int Requests);

/// <summary>
/// What the users of a migrating guest feel, measured from the lab's edge: pings every 10 ms and TCP requests
/// to the guest's service back to back, while one migration runs; the longest gap between two answers of each.
/// Owns a prober (its sockets and threads) until disposed.
/// </summary>
/// <remarks>
/// A gap starts at the last answer before the pause and ends at the first one after it, so it includes what
/// QEMU's downtime does not: the destination's network announcing the guest, and the probe's own spacing
/// (up to 10 ms for pings; one request's round trip for TCP). Both loops are bounded by the stop token and by
/// <see cref="MaxDuration"/>.
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed class GuestInterruptionMonitor : IAsyncDisposable
{
    /// <summary>The longest a monitor runs: a migration in the lab takes seconds to minutes.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMinutes(10);

    private static readonly TimeSpan PingPeriod = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stop = new(MaxDuration);
    private readonly Lock _gate = new();
    private readonly List<long> _pingAnswers = [];
    private readonly List<long> _requestAnswers = [];
    private readonly IcmpProber _prober;
    private readonly Task _pings;
    private readonly Task _requests;

    private GuestInterruptionMonitor(CloudletLab lab, LabGuest guest)
    {
        _prober = IcmpProber.Create(new IcmpProberOptions { VantagePoint = "edge", NetworkNamespace = lab.Edge.Namespace });
        var schedule = new ProbeSchedule((int)(MaxDuration / PingPeriod), PingPeriod, TimeSpan.Zero, PingTimeout);
        _pings = _prober.RunAsync([new ProbeTarget(guest.Name, guest.Address)], schedule, OnPing, _stop.Token);
        _requests = RequestLoopAsync(lab.CreateGuestClient(guest), _stop.Token);
    }

    /// <summary>Starts pinging and requesting; returns once the guest has answered both, so a gap is one the migration made.</summary>
    public static async Task<GuestInterruptionMonitor> StartAsync(CloudletLab lab, LabGuest guest)
    {
        ArgumentNullException.ThrowIfNull(lab);
        ArgumentNullException.ThrowIfNull(guest);
        var monitor = new GuestInterruptionMonitor(lab, guest);
        var waited = Stopwatch.StartNew();
        while (!monitor.AnsweredBoth() && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        return monitor.AnsweredBoth()
            ? monitor
            : throw new TimeoutException($"{guest.Name} did not answer pings and requests from the edge within 10 s before the migration.");
    }

    /// <summary>Stops both loops and returns the longest gaps between answers.</summary>
    public async Task<GuestInterruption> StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Quietly(_pings).ConfigureAwait(false);
        await Quietly(_requests).ConfigureAwait(false);
        lock (_gate)
        {
            return new GuestInterruption(LongestGap(_pingAnswers), LongestGap(_requestAnswers), _pingAnswers.Count, _requestAnswers.Count);
        }
    }

    /// <summary>Stops both loops (if still running) and closes the prober.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Quietly(_pings).ConfigureAwait(false);
        await Quietly(_requests).ConfigureAwait(false);
        await _prober.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>The longest time between two consecutive answers (the list holds arrival timestamps).</summary>
    internal static TimeSpan LongestGap(List<long> answers)
    {
        answers.Sort();
        var longest = 0L;
        for (var i = 1; i < answers.Count; i++)
        {
            longest = Math.Max(longest, answers[i] - answers[i - 1]);
        }

        return TimeSpan.FromSeconds(longest / (double)Stopwatch.Frequency);
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private bool AnsweredBoth()
    {
        lock (_gate)
        {
            return _pingAnswers.Count > 0 && _requestAnswers.Count > 0;
        }
    }

    private void OnPing(LatencySample sample)
    {
        if (sample.Status == ProbeStatus.Ok)
        {
            // The reply's arrival: the callback runs as it comes (a timed-out probe is reported late, and not here).
            lock (_gate)
            {
                _pingAnswers.Add(Stopwatch.GetTimestamp());
            }
        }
    }

    private async Task RequestLoopAsync(LabGuestClient client, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await client.ReadAsync(RequestTimeout, stop).ConfigureAwait(false);
                lock (_gate)
                {
                    _requestAnswers.Add(Stopwatch.GetTimestamp());
                }
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException or FormatException)
            {
                // Unanswered while the guest is paused or moving: that is the gap being measured. Retry at once,
                // after a breath so a refused connection does not spin.
                await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }
}
