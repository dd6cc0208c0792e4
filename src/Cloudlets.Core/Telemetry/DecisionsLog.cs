using Microsoft.Extensions.Logging;

namespace Cloudlets.Core.Telemetry;

/// <summary>Source-generated log messages of the decision pipeline and the executor (event ids 6000–6299, see <see cref="CloudletsTelemetry"/>).</summary>
internal static partial class DecisionsLog
{
    // 6000–6099: decisions.
    [LoggerMessage(EventId = 6000, EventName = "Decision", Level = LogLevel.Debug,
        Message = "VM {Vm}: {Kind} ({Reason}). {Explanation}")]
    public static partial void Decision(ILogger logger, string vm, Decisions.DecisionKind kind, Decisions.DecisionReason reason, string explanation);

    [LoggerMessage(EventId = 6001, EventName = "MoveDecided", Level = LogLevel.Information,
        Message = "VM {Vm}: move from {Source} to {Destination}. {Explanation}")]
    public static partial void MoveDecided(ILogger logger, string vm, string? source, string? destination, string explanation);

    [LoggerMessage(EventId = 6002, EventName = "EvaluationFailed", Level = LogLevel.Error,
        Message = "An evaluation failed; the pipeline keeps running and tries again in the next window.")]
    public static partial void EvaluationFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6003, EventName = "PipelineStarted", Level = LogLevel.Information,
        Message = "Migration pipeline started in {Mode} mode: {Vms} VMs, {Hosts} hosts, a window every {Interval}.")]
    public static partial void PipelineStarted(ILogger logger, Pipeline.PipelineMode mode, int vms, int hosts, TimeSpan interval);

    [LoggerMessage(EventId = 6004, EventName = "SampleStreamFailed", Level = LogLevel.Error,
        Message = "The latency sample stream failed; without samples every host becomes stale and no decision is made.")]
    public static partial void SampleStreamFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6005, EventName = "PipelineStopping", Level = LogLevel.Information,
        Message = "Migration pipeline stopping: no new move starts; running migrations may finish for up to {DrainTimeout}.")]
    public static partial void PipelineStopping(ILogger logger, TimeSpan drainTimeout);

    [LoggerMessage(EventId = 6006, EventName = "PipelineStopped", Level = LogLevel.Information,
        Message = "Migration pipeline stopped.")]
    public static partial void PipelineStopped(ILogger logger);

    [LoggerMessage(EventId = 6007, EventName = "OwnedDisposeFailed", Level = LogLevel.Warning,
        Message = "Disposing {Resource}, which the pipeline owned, failed; the rest is still disposed.")]
    public static partial void OwnedDisposeFailed(ILogger logger, string resource, Exception exception);

    // 6100–6199: executor.
    [LoggerMessage(EventId = 6100, EventName = "MigrationStarted", Level = LogLevel.Information,
        Message = "Migrating VM {Vm} from {Source} to {Destination}.")]
    public static partial void MigrationStarted(ILogger logger, string vm, string source, string destination);

    [LoggerMessage(EventId = 6101, EventName = "MigrationSucceeded", Level = LogLevel.Information,
        Message = "VM {Vm} moved from {Source} to {Destination} in {Duration}.")]
    public static partial void MigrationSucceeded(ILogger logger, string vm, string source, string destination, TimeSpan duration);

    [LoggerMessage(EventId = 6102, EventName = "MigrationFailed", Level = LogLevel.Warning,
        Message = "Migration of VM {Vm} from {Source} to {Destination} failed; the VM stays on the source.")]
    public static partial void MigrationFailed(ILogger logger, string vm, string source, string destination, Exception exception);

    [LoggerMessage(EventId = 6103, EventName = "MigrationAborted", Level = LogLevel.Warning,
        Message = "Migration of VM {Vm} from {Source} to {Destination} aborted: {Cause}.")]
    public static partial void MigrationAborted(ILogger logger, string vm, string source, string destination, Pipeline.MigrationAbortCause cause);

    [LoggerMessage(EventId = 6104, EventName = "HostBackedOff", Level = LogLevel.Warning,
        Message = "Host {Host} is backed off until {Until} after {Failures} consecutive failed migrations.")]
    public static partial void HostBackedOff(ILogger logger, string host, DateTimeOffset until, int failures);

    [LoggerMessage(EventId = 6105, EventName = "ImprovementChecked", Level = LogLevel.Information,
        Message = "VM {Vm} on {Destination}: latency {Verdict} (before {BeforeMs} ms, after {AfterMs} ms).")]
    public static partial void ImprovementChecked(ILogger logger, string vm, string destination, Pipeline.ImprovementVerdict verdict, double? beforeMs, double? afterMs);

    [LoggerMessage(EventId = 6106, EventName = "MigrationRejected", Level = LogLevel.Debug,
        Message = "Migration of VM {Vm} to {Destination} not started: {Reason}")]
    public static partial void MigrationRejected(ILogger logger, string vm, string destination, string reason);

    [LoggerMessage(EventId = 6107, EventName = "ImprovementCheckFailed", Level = LogLevel.Warning,
        Message = "The latency check after moving VM {Vm} failed.")]
    public static partial void ImprovementCheckFailed(ILogger logger, string vm, Exception exception);

    // 6200–6299: hosts and placement.
    [LoggerMessage(EventId = 6108, EventName = "StopAbortingMigrations", Level = LogLevel.Warning,
        Message = "{Count} migration(s) still running when the stop's drain of {DrainTimeout} ended (or the stop was cancelled): aborting them; each VM stays on its source.")]
    public static partial void StopAbortingMigrations(ILogger logger, int count, TimeSpan drainTimeout);

    [LoggerMessage(EventId = 6200, EventName = "HostUnavailable", Level = LogLevel.Warning,
        Message = "Host {Host} does not answer; it leaves the candidates until it answers again.")]
    public static partial void HostUnavailable(ILogger logger, string host, Exception? exception);

    [LoggerMessage(EventId = 6201, EventName = "HostAvailable", Level = LogLevel.Information,
        Message = "Host {Host} answers again; it is a candidate again.")]
    public static partial void HostAvailable(ILogger logger, string host);

    [LoggerMessage(EventId = 6202, EventName = "HostEventSeen", Level = LogLevel.Debug,
        Message = "Host {Host}: {Event}; placement is read again now.")]
    public static partial void HostEventSeen(ILogger logger, string host, Hypervisors.HostEvent @event);

    [LoggerMessage(EventId = 6203, EventName = "HostEventsFailed", Level = LogLevel.Warning,
        Message = "Host {Host}: its event stream failed; placement changes made outside the pipeline are seen only at the periodic refresh.")]
    public static partial void HostEventsFailed(ILogger logger, string host, Exception exception);

    [LoggerMessage(EventId = 6109, EventName = "MigrationSkipped", Level = LogLevel.Information,
        Message = "Migration of VM {Vm} from {Source} to {Destination} skipped before it started: {Reason}")]
    public static partial void MigrationSkipped(ILogger logger, string vm, string source, string destination, string reason);

    [LoggerMessage(EventId = 6110, EventName = "MigrationFoundUnderWay", Level = LogLevel.Information,
        Message = "Migration of VM {Vm} from {Source} to {Destination} is under way, started by another instance (seen from {Evidence}): it counts against the limits and the VM is not moved until it ends.")]
    public static partial void MigrationFoundUnderWay(ILogger logger, string vm, string source, string destination, string evidence);

    [LoggerMessage(EventId = 6111, EventName = "MigrationElsewhereEnded", Level = LogLevel.Information,
        Message = "Migration of VM {Vm} from {Source} to {Destination}, started by another instance, ended: {Outcome}.")]
    public static partial void MigrationElsewhereEnded(ILogger logger, string vm, string source, string destination, Pipeline.MigrationOutcomeKind outcome);

    // 6400–6499: placement rules and operator actions.
    [LoggerMessage(EventId = 6400, EventName = "PlacementRulesChanged", Level = LogLevel.Information,
        Message = "Placement rules: {Action} {Subject} by {RequestedBy}: {Explanation}")]
    public static partial void PlacementRulesChanged(ILogger logger, Pipeline.PlacementAction action, string? subject, string? requestedBy, string explanation);

    [LoggerMessage(EventId = 6401, EventName = "MoveNowStarted", Level = LogLevel.Information,
        Message = "Operator move of VM {Vm} to {Host} by {RequestedBy} started.")]
    public static partial void MoveNowStarted(ILogger logger, string vm, string host, string? requestedBy);

    [LoggerMessage(EventId = 6402, EventName = "MoveNowRefused", Level = LogLevel.Information,
        Message = "Operator move of VM {Vm} to {Host} by {RequestedBy} refused ({Refusal}): {Explanation}")]
    public static partial void MoveNowRefused(ILogger logger, string vm, string host, string? requestedBy, Pipeline.MoveNowRefusal refusal, string explanation);
}
