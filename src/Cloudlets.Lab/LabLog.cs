using Microsoft.Extensions.Logging;

namespace Cloudlets.Lab;

/// <summary>The lab's log messages (event ids 5000-5099).</summary>
internal static partial class LabLog
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Lab {Lab}: starting {Hosts} hosts on 198.18.{Subnet}.0/24")]
    public static partial void Starting(ILogger logger, string lab, int hosts, int subnet);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Lab {Lab}: every libvirtd answers after {Elapsed}")]
    public static partial void Ready(ILogger logger, string lab, TimeSpan elapsed);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Lab {Lab}: guest {Guest} on {Host} answers at {Address} after {Elapsed}")]
    public static partial void GuestUp(ILogger logger, string lab, string guest, string host, System.Net.IPAddress address, TimeSpan elapsed);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "Lab {Lab}: removing leftovers of an earlier run")]
    public static partial void CleaningLeftovers(ILogger logger, string lab);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Lab {Lab}: ending {Program} (pid {Pid})")]
    public static partial void Ending(ILogger logger, string lab, string program, int pid);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Warning, Message = "Lab {Lab}: {Program} (pid {Pid}) did not end")]
    public static partial void DidNotEnd(ILogger logger, string lab, string program, int pid);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Information, Message = "Lab {Lab}: torn down")]
    public static partial void TornDown(ILogger logger, string lab);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Warning, Message = "Lab {Lab}: left behind after teardown: {Leftovers}")]
    public static partial void Leftovers(ILogger logger, string lab, string leftovers);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Warning, Message = "Lab {Lab}: removing it, an orphan: its owner process {Owner} ended without tearing it down")]
    public static partial void RemovingOrphan(ILogger logger, string lab, int owner);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "Lab {Lab}: left alone: {What}")]
    public static partial void LeftAlone(ILogger logger, string lab, string what);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "Lab {Lab}: phase {Phase}")]
    public static partial void Phase(ILogger logger, string lab, string phase);

    [LoggerMessage(EventId = 5020, Level = LogLevel.Information, Message = "Lab {Lab}: host-to-host links capped at {MiBps} MiB/s (none: uncapped)")]
    public static partial void HostLinksCapped(ILogger logger, string lab, int? mibps);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Debug, Message = "Lab {Lab}: {Command}")]
    public static partial void Running(ILogger logger, string lab, Cloudlets.Probing.Commands.CommandLine command);
}
