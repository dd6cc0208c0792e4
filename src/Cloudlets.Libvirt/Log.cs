using Microsoft.Extensions.Logging;

namespace Cloudlets.Libvirt;

/// <summary>Log messages of the libvirt host (event ids 3000-3099 connection, 3100-3199 VMs, 3200-3299 migration).</summary>
internal static partial class Log
{
    [LoggerMessage(3000, LogLevel.Information, "Host {Host}: connected to {Uri} (keepalive {KeepAlive})")]
    public static partial void Connected(ILogger logger, string host, string uri, bool keepAlive);

    [LoggerMessage(3001, LogLevel.Warning, "Host {Host}: connection lost ({Reason}); reconnecting")]
    public static partial void ConnectionLost(ILogger logger, string host, string reason);

    [LoggerMessage(3002, LogLevel.Warning, "Host {Host}: reconnect attempt {Attempt} failed; next in {Delay}")]
    public static partial void ReconnectFailed(ILogger logger, string host, int attempt, TimeSpan delay, Exception exception);

    [LoggerMessage(3003, LogLevel.Information, "Host {Host}: reconnected after {Attempt} attempt(s)")]
    public static partial void Reconnected(ILogger logger, string host, int attempt);

    [LoggerMessage(3004, LogLevel.Warning, "Host {Host}: the connection still had {References} libvirt reference(s) when closed")]
    public static partial void LeakedReferences(ILogger logger, string host, int references);

    [LoggerMessage(3005, LogLevel.Warning, "Host {Host}: an event subscriber threw")]
    public static partial void SubscriberFailed(ILogger logger, string host, Exception exception);

    [LoggerMessage(3100, LogLevel.Information, "Host {Host}: {Action} VM {Vm}")]
    public static partial void VmAction(ILogger logger, string host, string action, string vm);

    [LoggerMessage(3200, LogLevel.Information, "Migrating {Vm} from {Source} to {Destination} ({Mode}, flags 0x{Flags:x})")]
    public static partial void MigrationStarting(ILogger logger, string vm, string source, string destination, string mode, uint flags);

    [LoggerMessage(3201, LogLevel.Information, "Migrated {Vm} from {Source} to {Destination} in {Total} (downtime {Downtime})")]
    public static partial void MigrationDone(ILogger logger, string vm, string source, string destination, TimeSpan total, TimeSpan? downtime);

    [LoggerMessage(3202, LogLevel.Warning, "Migration of {Vm} from {Source} to {Destination} failed; checking where the VM is")]
    public static partial void MigrationFailed(ILogger logger, string vm, string source, string destination, Exception exception);

    [LoggerMessage(3203, LogLevel.Information, "Aborting the migration of {Vm} on {Source}")]
    public static partial void MigrationAborting(ILogger logger, string vm, string source);

    [LoggerMessage(3204, LogLevel.Warning, "Removed the paused incoming copy of {Vm} on {Destination}: {Source} runs the VM")]
    public static partial void RemovedIncomingCopy(ILogger logger, string vm, string source, string destination);

    [LoggerMessage(3205, LogLevel.Error, "{Vm} is not running on {Source} after a failed migration; the copy on {Destination} ({State}) is left untouched")]
    public static partial void LeftDestinationCopy(ILogger logger, string vm, string source, string destination, string state);

    [LoggerMessage(3206, LogLevel.Warning, "Progress sampling of {Vm} failed")]
    public static partial void ProgressFailed(ILogger logger, string vm, Exception exception);

    [LoggerMessage(3213, LogLevel.Debug, "Job of {Vm}: answered in {RoundTripMs:0.0} ms, type {JobType}, processed {Processed}, remaining {Remaining}, total {Total} bytes")]
    public static partial void ProgressSampled(ILogger logger, string vm, double roundTripMs, int jobType, long? processed, long? remaining, long? total);

    [LoggerMessage(3207, LogLevel.Warning, "Resumed {Vm} on {Source}: the migration left it paused and the destination has no copy")]
    public static partial void ResumedSource(ILogger logger, string vm, string source);

    [LoggerMessage(3208, LogLevel.Information, "Recovery of {Vm}: {Source} shows {SourceState}, {Destination} shows {DestinationState}; rule {Rule}")]
    public static partial void RecoveryObserved(ILogger logger, string vm, string source, string sourceState, string destination, string destinationState, string rule);

    [LoggerMessage(3209, LogLevel.Critical, "ALARM: {Vm} runs on both {Source} and {Destination} after a failed migration; nothing was touched, an operator must choose the copy to keep")]
    public static partial void BothRunning(ILogger logger, string vm, string source, string destination);

    [LoggerMessage(3210, LogLevel.Error, "The migration of {Vm} from {Source} to {Destination} was cancelled but the abort was not confirmed within {Timeout}; where the VM runs is unknown")]
    public static partial void AbortUnconfirmed(ILogger logger, string vm, string source, string destination, TimeSpan timeout);

    [LoggerMessage(3211, LogLevel.Information, "Convergence control of {Vm} on {Source}: {Action} ({Cause}; max downtime {MaxDowntime})")]
    public static partial void ConvergenceStep(ILogger logger, string vm, string source, string action, string cause, TimeSpan? maxDowntime);

    [LoggerMessage(3212, LogLevel.Warning, "Convergence control of {Vm} on {Source}: {Action} failed")]
    public static partial void ConvergenceStepFailed(ILogger logger, string vm, string source, string action, Exception exception);
}
