using Cloudlets.Core.Probing;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Probing;

/// <summary>Log messages of the probers; event ids 4000 to 4099.</summary>
internal static partial class ProbingLog
{
    [LoggerMessage(EventId = 4000, EventName = "IcmpProberOpened", Level = LogLevel.Information,
        Message = "ICMP prober '{VantagePoint}' opened {SocketKind} sockets (IPv6 {IPv6}, kernel receive timestamps {KernelTimestamps}, identifier {Identifier}, namespace {NetworkNamespace})")]
    public static partial void IcmpProberOpened(ILogger logger, string vantagePoint, Icmp.IcmpSocketKind socketKind, bool iPv6, bool kernelTimestamps, ushort identifier, string networkNamespace);

    [LoggerMessage(EventId = 4001, EventName = "IcmpIPv6Unavailable", Level = LogLevel.Warning,
        Message = "ICMP prober '{VantagePoint}' cannot probe IPv6 targets: {Reason}")]
    public static partial void IcmpIPv6Unavailable(ILogger logger, string vantagePoint, string reason);

    [LoggerMessage(EventId = 4002, EventName = "IcmpRunFinished", Level = LogLevel.Debug,
        Message = "ICMP prober '{VantagePoint}' finished a run of {Probes} probes to {Targets} targets; totals so far: {Counters}")]
    public static partial void IcmpRunFinished(ILogger logger, string vantagePoint, long probes, int targets, Icmp.IcmpProberCounters counters);
}
