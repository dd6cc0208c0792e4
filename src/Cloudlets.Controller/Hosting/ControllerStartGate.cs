using System.Collections.Concurrent;
using Cloudlets.Controller.Audit;
using Cloudlets.Core.Election;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Controller.Hosting;

/// <summary>
/// The executor's start gate in the controller, asked right before each migration calls its source
/// host: with an election, the fencing check first (<see cref="LeadershipStartGate"/>: the leader
/// re-confirms its lease and term in etcd; a no skips the move); then, for a start it lets through,
/// the audit log's <c>migration.started</c> record. So a record is written only for a migration the
/// executor really starts, never for a decision the executor held back or a move the fence skipped.
/// Ownership: owns neither the election nor the audit log.
/// </summary>
internal sealed class ControllerStartGate : IMigrationStartGate
{
    private readonly LeadershipStartGate? _fence;
    private readonly ILeaderElection? _election;
    private readonly AuditLog _audit;
    private readonly ConcurrentDictionary<string, string?> _operatorMoves = new(StringComparer.Ordinal);

    public ControllerStartGate(ILeaderElection? election, AuditLog audit)
    {
        _election = election;
        _fence = election is null ? null : new LeadershipStartGate(election);
        _audit = audit;
    }

    /// <summary>Marks the VM's next start as an operator's move (the API calls this before handing the move to the pipeline).</summary>
    public void NoteOperatorMove(string vm, string? requestedBy) => _operatorMoves[vm] = requestedBy;

    /// <summary>Clears the mark once the operator's call returned (its start, if any, consumed it already).</summary>
    public void ForgetOperatorMove(string vm) => _operatorMoves.TryRemove(vm, out _);

    public async ValueTask<MigrationStartVerdict> CheckAsync(MigrationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_fence is not null)
        {
            var verdict = await _fence.CheckAsync(request, cancellationToken).ConfigureAwait(false);
            if (!verdict.Allowed)
            {
                return verdict;
            }
        }

        var byOperator = _operatorMoves.TryRemove(request.VmName, out var requestedBy);
        _audit.MigrationStarted(
            request.VmName, request.Source.Name, request.Destination.Name,
            byOperator ? "operator" : "policy", byOperator ? requestedBy : null, _election?.Current);
        return MigrationStartVerdict.Allow;
    }
}
