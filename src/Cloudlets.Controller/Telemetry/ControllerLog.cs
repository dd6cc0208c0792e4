using Cloudlets.Core.Election;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Controller.Telemetry;

/// <summary>Source-generated log messages of the controller (event ids 9000–9099).</summary>
internal static partial class ControllerLog
{
    [LoggerMessage(EventId = 9000, EventName = "ControllerStarted", Level = LogLevel.Information,
        Message = "Controller started in {Mode} mode: {Hosts} hosts, {Vms} VMs.")]
    public static partial void Started(ILogger logger, PipelineMode mode, int hosts, int vms);

    [LoggerMessage(EventId = 9001, EventName = "HostConnected", Level = LogLevel.Information,
        Message = "Connected to host {Host} ({Uri}).")]
    public static partial void HostConnected(ILogger logger, string host, string uri);

    [LoggerMessage(EventId = 9002, EventName = "ControllerStopping", Level = LogLevel.Information,
        Message = "Controller stopping: no new move starts; migrations under way may finish for up to {StopTimeout}.")]
    public static partial void Stopping(ILogger logger, TimeSpan stopTimeout);

    [LoggerMessage(EventId = 9003, EventName = "ControllerStopped", Level = LogLevel.Information,
        Message = "Controller stopped (exit code {ExitCode}).")]
    public static partial void Stopped(ILogger logger, int exitCode);

    [LoggerMessage(EventId = 9004, EventName = "SamplesFailed", Level = LogLevel.Critical,
        Message = "The latency samples failed; without them nothing can be decided: the controller stops.")]
    public static partial void SamplesFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 9010, EventName = "OperatorAction", Level = LogLevel.Information,
        Message = "Operator {Action} {Subject} from {Remote}: {Result}. {Explanation}")]
    public static partial void OperatorAction(ILogger logger, string action, string? subject, string? remote, string result, string explanation);

    [LoggerMessage(EventId = 9011, EventName = "OperatorRefused", Level = LogLevel.Warning,
        Message = "Operator call {Method} {Path} from {Remote} refused ({Status}): {Reason}")]
    public static partial void OperatorUnauthorized(ILogger logger, string method, string path, string? remote, int status, string reason);

    [LoggerMessage(EventId = 9020, EventName = "ConfigurationReloaded", Level = LogLevel.Information,
        Message = "Configuration reloaded: applied {Applied}; needs a restart: {RestartNeeded}.")]
    public static partial void ConfigurationReloaded(ILogger logger, string applied, string restartNeeded);

    [LoggerMessage(EventId = 9021, EventName = "ConfigurationReloadInvalid", Level = LogLevel.Error,
        Message = "The reloaded configuration is invalid and was not applied: {Errors}")]
    public static partial void ConfigurationReloadInvalid(ILogger logger, string errors);

    [LoggerMessage(EventId = 9030, EventName = "LeadershipAcquired", Level = LogLevel.Information,
        Message = "This controller ({Candidate}) leads region {Region} now (lease {LeaseId}, term {Term}): it may migrate.")]
    public static partial void LeadershipAcquired(ILogger logger, string candidate, string region, long? leaseId, long? term);

    [LoggerMessage(EventId = 9031, EventName = "LeadershipLost", Level = LogLevel.Warning,
        Message = "This controller ({Candidate}) no longer leads region {Region} ({Reason}: {Detail}); it stays advisory until elected again.")]
    public static partial void LeadershipLost(ILogger logger, string candidate, string region, LeadershipReason reason, string? detail);

    [LoggerMessage(EventId = 9032, EventName = "LeaderObserved", Level = LogLevel.Information,
        Message = "Region {Region}: {Leader} leads; this controller ({Candidate}) follows ({Reason}).")]
    public static partial void Following(ILogger logger, string region, string? leader, string candidate, LeadershipReason reason);
}
