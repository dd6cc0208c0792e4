using System.Net;

namespace Cloudlets.Core.Probing;

/// <summary>The outcome of one probe.</summary>
public enum ProbeStatus
{
    /// <summary>A matching reply arrived in time; the sample has a round-trip time.</summary>
    Ok,
    /// <summary>No reply arrived before the timeout.</summary>
    Timeout,
    /// <summary>The network said the target cannot be reached (ICMP unreachable, connection refused, no route).</summary>
    Unreachable,
    /// <summary>The probe could not be sent or read.</summary>
    Error,
}

/// <summary>What a probe measures: a named endpoint (an address, and a port for TCP probes).</summary>
/// <param name="Name">A stable name for the target (a host name, or the address as text).</param>
/// <param name="Address">The address probed.</param>
/// <param name="Port">The TCP port for connect probes; <see langword="null"/> for ICMP.</param>
public sealed record ProbeTarget(string Name, IPAddress Address, int? Port = null)
{
    /// <inheritdoc />
    public override string ToString() => Port is { } p ? $"{Name} ({Address}:{p})" : $"{Name} ({Address})";
}

/// <summary>
/// One measured round trip from a vantage point to a target. A timeout or a loss is data:
/// <see cref="RoundTripTime"/> is <see langword="null"/> unless <see cref="Status"/> is <see cref="ProbeStatus.Ok"/>; never 0 ms.
/// </summary>
/// <param name="VantagePoint">Where the probe was sent from (a user, an edge device).</param>
/// <param name="Target">What was probed.</param>
/// <param name="SentAt">When the probe was sent.</param>
/// <param name="RoundTripTime">The measured round-trip time, only for <see cref="ProbeStatus.Ok"/>.</param>
/// <param name="Status">The outcome.</param>
public readonly record struct LatencySample(
    string VantagePoint,
    ProbeTarget Target,
    DateTimeOffset SentAt,
    TimeSpan? RoundTripTime,
    ProbeStatus Status);

/// <summary>Measures round-trip time from one vantage point.</summary>
public interface ILatencyProbe : IAsyncDisposable
{
    /// <summary>The vantage point every sample of this probe is stamped with.</summary>
    string VantagePoint { get; }

    /// <summary>Sends one probe and waits for its reply or its timeout. Loss and timeouts are returned as samples, not thrown.</summary>
    ValueTask<LatencySample> ProbeAsync(ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken = default);
}
