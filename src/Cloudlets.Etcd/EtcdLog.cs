using Cloudlets.Core.Election;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Etcd;

/// <summary>Log messages of Cloudlets.Etcd (event ids 7000–7099).</summary>
internal static partial class EtcdLog
{
    [LoggerMessage(EventId = 7000, EventName = "RoleChanged", Level = LogLevel.Information,
        Message = "Election {Election}: candidate {CandidateId} is now {Role} ({Reason}; lease {LeaseId}, revision {Revision}, leader {LeaderId}) {Detail}")]
    public static partial void RoleChanged(ILogger logger, string election, string candidateId, LeadershipRole role, LeadershipReason reason, long? leaseId, long? revision, string? leaderId, string? detail);

    [LoggerMessage(EventId = 7001, EventName = "LeaseGranted", Level = LogLevel.Debug,
        Message = "Election {Election}: candidate {CandidateId} holds lease {LeaseId} (TTL {TtlSeconds} s) from {Endpoint}")]
    public static partial void LeaseGranted(ILogger logger, string election, string candidateId, long leaseId, long ttlSeconds, string endpoint);

    [LoggerMessage(EventId = 7002, EventName = "KeepAliveFailed", Level = LogLevel.Warning,
        Message = "Election {Election}: a keepalive of lease {LeaseId} failed; the lease is in doubt until {Deadline:O}")]
    public static partial void KeepAliveFailed(ILogger logger, string election, long leaseId, DateTimeOffset deadline, Exception exception);

    [LoggerMessage(EventId = 7003, EventName = "LeaseLost", Level = LogLevel.Warning,
        Message = "Election {Election}: lease {LeaseId} of candidate {CandidateId} is lost: {Detail}")]
    public static partial void LeaseLost(ILogger logger, string election, string candidateId, long leaseId, string detail);

    [LoggerMessage(EventId = 7004, EventName = "StoreFailed", Level = LogLevel.Warning,
        Message = "Election {Election}: etcd at {Endpoint} failed ({Status}); trying again in {Backoff}")]
    public static partial void StoreFailed(ILogger logger, string election, string endpoint, string status, TimeSpan backoff, Exception exception);

    [LoggerMessage(EventId = 7005, EventName = "ConfirmFailed", Level = LogLevel.Warning,
        Message = "Election {Election}: candidate {CandidateId} could not confirm term {Revision} (lease {LeaseId}): {Detail}")]
    public static partial void ConfirmFailed(ILogger logger, string election, string candidateId, long revision, long leaseId, string detail);

    [LoggerMessage(EventId = 7006, EventName = "ResignFailed", Level = LogLevel.Warning,
        Message = "Election {Election}: revoking lease {LeaseId} failed; it expires on its own after its TTL")]
    public static partial void RevokeFailed(ILogger logger, string election, long leaseId, Exception exception);

    [LoggerMessage(EventId = 7007, EventName = "InsecurePassword", Level = LogLevel.Warning,
        Message = "Election {Election}: etcd credentials are sent over http:// without TLS")]
    public static partial void InsecurePassword(ILogger logger, string election);
}
