using Microsoft.Extensions.Logging;

namespace Cloudlets.Netem;

/// <summary>Log messages of Cloudlets.Netem (event ids 5000–5099).</summary>
internal static partial class NetemLog
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Error, Message = "The NFQUEUE delayer of namespace {Namespace} stopped; traffic now passes undelayed (--queue-bypass)")]
    public static partial void DelayerFailed(ILogger logger, string @namespace, Exception exception);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Shaping {Owner} with {Backend}: {Count} commands")]
    public static partial void Applying(ILogger logger, string owner, string backend, int count);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Debug, Message = "Running {Command}")]
    public static partial void Running(ILogger logger, Cloudlets.Probing.Commands.CommandLine command);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "Cleared {Owner} with {Backend}: {Count} commands")]
    public static partial void Cleared(ILogger logger, string owner, string backend, int count);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "Applying {Owner} failed; removing what was applied")]
    public static partial void RollingBack(ILogger logger, string owner, Exception exception);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Information, Message = "Shaping backend {Backend} chosen: {Reason}")]
    public static partial void BackendChosen(ILogger logger, string backend, string reason);
}
