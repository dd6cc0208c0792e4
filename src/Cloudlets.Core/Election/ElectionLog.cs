using Microsoft.Extensions.Logging;

namespace Cloudlets.Core.Election;

/// <summary>Log messages of the in-memory election (event ids 6300–6349; Cloudlets.Etcd uses 7000–7099).</summary>
internal static partial class ElectionLog
{
    [LoggerMessage(EventId = 6300, EventName = "RoleChanged", Level = LogLevel.Information,
        Message = "Election {Election}: candidate {CandidateId} is now {Role} ({Reason}; lease {LeaseId}, revision {Revision})")]
    public static partial void RoleChanged(ILogger logger, string election, string candidateId, LeadershipRole role, LeadershipReason reason, long? leaseId, long? revision);

    [LoggerMessage(EventId = 6301, EventName = "ConfirmUnreachable", Level = LogLevel.Warning,
        Message = "Election {Election}: candidate {CandidateId} could not confirm its leadership (store unreachable); answering no")]
    public static partial void ConfirmUnreachable(ILogger logger, string election, string candidateId);
}
