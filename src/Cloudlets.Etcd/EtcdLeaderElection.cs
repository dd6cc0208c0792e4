using System.Diagnostics;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Election;
using Cloudlets.Core.Options;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Mvccpb;

namespace Cloudlets.Etcd;

/// <summary>
/// A candidate in a leader election on etcd. The election key is
/// <c>{KeyPrefix}{election}</c> (by default <c>/cloudlets/v1/elections/{region}</c>); the leader is the
/// candidate whose lease holds it.
/// </summary>
/// <remarks>
/// <para>
/// How it works: the candidate grants itself a lease of <see cref="LeaderElectionOptions.LeaseTtl"/> and
/// keeps it alive every <see cref="LeaderElectionOptions.EffectiveKeepAliveInterval"/>. It campaigns with
/// one transaction: if the key's create revision is 0 (no key), put the key with its candidate id under
/// its lease; else read it. The winner's term is the create revision of the key. Followers watch the
/// key and campaign again when it is deleted (its holder resigned or its lease expired).
/// </para>
/// <para>
/// Loss is observed three ways: a keepalive answered with TTL 0 (the lease expired or was revoked),
/// no keepalive acknowledged for the TTL (counted from when the last acknowledged keepalive was sent,
/// so the candidate gives up no later than etcd does; a partition or a pause), and the key deleted or
/// taken over (watch).
/// </para>
/// <para>
/// Fencing (<see cref="ConfirmLeadershipAsync"/>): one transaction comparing the key's create revision
/// with this candidate's term and the key's lease with this candidate's lease, answered within
/// <see cref="EtcdLeaderElectionOptions.RequestTimeout"/> and before the lease's local deadline.
/// </para>
/// <para>Ownership: owns its gRPC channels, its lease and its background tasks; disposing resigns
/// (revokes the lease, bounded by the request timeout) and closes the channels.</para>
/// </remarks>
public sealed class EtcdLeaderElection : ILeaderElection
{
    private readonly EtcdLeaderElectionOptions _options;
    private readonly LeaderElectionOptions _election;
    private readonly EtcdConnection _connection;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ByteString _key;
    private readonly ByteString _value;
    private readonly BehaviorSubject<LeadershipState> _states;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private LeaseTerm? _lease;
    private Task? _campaign;
    private bool _started;
    private bool _resigned;
    private bool _disposed;

    private EtcdLeaderElection(EtcdLeaderElectionOptions options, TimeProvider timeProvider, ILogger logger)
    {
        _options = options;
        _election = options.Election;
        _time = timeProvider;
        _logger = logger;
        _key = ByteString.CopyFromUtf8(options.Key);
        _value = ByteString.CopyFromUtf8(_election.CandidateId);
        _connection = new EtcdConnection(options);
        _states = new BehaviorSubject<LeadershipState>(LeadershipState.Initial(_election.Election, _election.CandidateId, _time.GetUtcNow()));
    }

    /// <summary>Builds a candidate (validating the options once); nothing connects until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The options, copied.</param>
    /// <param name="timeProvider">The clock for keepalives, deadlines, backoff and state stamps; <see langword="null"/> for the system clock.</param>
    /// <param name="logger">Where to log (event ids 7000–7099), or <see langword="null"/>.</param>
    /// <exception cref="OptionsValidationException">An option is invalid (every error is listed).</exception>
    public static EtcdLeaderElection Create(EtcdLeaderElectionOptions options, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var copy = options.Clone();
        OptionsErrors.ValidateAndThrow(copy);
        var election = new EtcdLeaderElection(copy, timeProvider ?? TimeProvider.System, logger ?? NullLogger.Instance);
        if (copy.Username is not null && copy.Endpoints.Any(e => e.StartsWith("http://", StringComparison.OrdinalIgnoreCase)))
        {
            EtcdLog.InsecurePassword(election._logger, copy.Election.Election);
        }

        return election;
    }

    /// <inheritdoc />
    public string Election => _election.Election;

    /// <inheritdoc />
    public string CandidateId => _election.CandidateId;

    /// <summary>The election key in etcd.</summary>
    public string Key => _options.Key;

    /// <inheritdoc />
    public LeadershipState Current => _states.Value;

    /// <inheritdoc />
    public IObservable<LeadershipState> States => _states.AsObservable();

    /// <inheritdoc />
    public ValueTask StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started || _resigned)
            {
                throw new InvalidOperationException($"The election '{Election}' of candidate '{CandidateId}' was started before.");
            }

            _started = true;
            _campaign = Task.Run(() => CampaignLoopAsync(_stop.Token), CancellationToken.None);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask ResignAsync(CancellationToken cancellationToken = default)
    {
        Task? campaign;
        lock (_gate)
        {
            if (_resigned || _disposed)
            {
                return;
            }

            _resigned = true;
            campaign = _campaign;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (campaign is not null)
        {
            await campaign.ConfigureAwait(false);
        }

        LeaseTerm? lease;
        lock (_gate)
        {
            lease = _lease;
            _lease = null;
        }

        if (lease is not null)
        {
            await lease.StopAsync().ConfigureAwait(false);
            await RevokeAsync(lease.Id, cancellationToken).ConfigureAwait(false);
        }

        Publish(Current with { Role = LeadershipRole.Follower, LeaseId = null, LeaderId = Current.IsLeader ? null : Current.LeaderId, Since = _time.GetUtcNow(), Reason = LeadershipReason.Resigned, Detail = null });
    }

    /// <inheritdoc />
    public async ValueTask<bool> ConfirmLeadershipAsync(CancellationToken cancellationToken = default)
    {
        var confirmed = await ConfirmCoreAsync(cancellationToken).ConfigureAwait(false);
        EtcdTelemetry.Confirmations.Add(1, new TagList { { EtcdTelemetry.Tags.Election, Election }, { EtcdTelemetry.Tags.Confirmed, confirmed ? "true" : "false" } });
        return confirmed;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
        }

        await ResignAsync(CancellationToken.None).ConfigureAwait(false);
        lock (_gate)
        {
            _disposed = true;
        }

        _states.OnCompleted();
        _connection.Dispose();
        _stop.Dispose();
    }

    private async ValueTask<bool> ConfirmCoreAsync(CancellationToken cancellationToken)
    {
        LeaseTerm? lease;
        LeadershipState state;
        lock (_gate)
        {
            lease = _lease;
            state = Current;
        }

        if (_resigned || !state.IsLeader || lease is null || lease.IsLost || state.LeaseId != lease.Id || state.Revision is not { } revision)
        {
            return false;
        }

        if (_time.GetUtcNow() >= lease.Deadline)
        {
            LoseLease(lease, "no keepalive was acknowledged within the TTL");
            return false;
        }

        var request = new TxnRequest
        {
            Compare =
            {
                new Compare { Key = _key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = revision },
                new Compare { Key = _key, Target = Compare.Types.CompareTarget.Lease, Result = Compare.Types.CompareResult.Equal, Lease = lease.Id },
            },
            Failure = { new RequestOp { RequestRange = new RangeRequest { Key = _key } } },
        };
        TxnResponse response;
        try
        {
            var headers = await _connection.HeadersAsync(cancellationToken).ConfigureAwait(false);
            response = await _connection.KV.TxnAsync(request, headers, _connection.Deadline(), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (EtcdConnection.IsStoreFailure(e))
        {
            _connection.OnFailure(e);
            EtcdLog.ConfirmFailed(_logger, Election, CandidateId, revision, lease.Id, "etcd did not answer: " + EtcdConnection.Describe(e));
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        if (!response.Succeeded)
        {
            var holder = response.Responses.FirstOrDefault()?.ResponseRange?.Kvs.FirstOrDefault();
            EtcdLog.ConfirmFailed(_logger, Election, CandidateId, revision, lease.Id, holder is null ? "the key is gone" : $"the key is held by {holder.Value.ToStringUtf8()} (lease {holder.Lease}, revision {holder.CreateRevision})");
            lock (_gate)
            {
                if (Current.IsLeader && Current.Revision == revision && Current.LeaseId == lease.Id)
                {
                    Publish(Current with
                    {
                        Role = LeadershipRole.Follower, LeaderId = holder?.Value.ToStringUtf8(), Revision = holder?.CreateRevision,
                        Since = _time.GetUtcNow(), Reason = LeadershipReason.ConfirmationFailed, Detail = "the fencing transaction failed",
                    });
                }
            }

            return false;
        }

        // The answer counts only if it came while the lease was surely alive.
        return !lease.IsLost && _time.GetUtcNow() < lease.Deadline;
    }

    private async Task CampaignLoopAsync(CancellationToken stop)
    {
        var backoff = _election.RetryInitialBackoff;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var lease = await EnsureLeaseAsync(stop).ConfigureAwait(false);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, lease.Lost);
                await CampaignOnceAsync(lease, linked.Token).ConfigureAwait(false);
                backoff = _election.RetryInitialBackoff;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (OperationCanceledException)
            {
                // The lease was lost (already published); campaign again with a new one.
            }
            catch (Exception e) when (EtcdConnection.IsStoreFailure(e))
            {
                _connection.OnFailure(e);
                EtcdLog.StoreFailed(_logger, Election, _connection.Endpoint, e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name, backoff, e);
                if (!Current.IsLeader && Current.Reason != LeadershipReason.StoreUnavailable)
                {
                    Publish(Current with { Since = _time.GetUtcNow(), Reason = LeadershipReason.StoreUnavailable, Detail = EtcdConnection.Describe(e) });
                }

                try
                {
                    await Task.Delay(backoff, _time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _election.RetryMaxBackoff.Ticks));
            }
        }
    }

    private async Task<LeaseTerm> EnsureLeaseAsync(CancellationToken stop)
    {
        lock (_gate)
        {
            if (_lease is { IsLost: false } current)
            {
                return current;
            }
        }

        var sent = _time.GetUtcNow();
        var headers = await _connection.HeadersAsync(stop).ConfigureAwait(false);
        var granted = await _connection.Lease.LeaseGrantAsync(
            new LeaseGrantRequest { TTL = (long)_election.LeaseTtl.TotalSeconds }, headers, _connection.Deadline(), stop).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(granted.Error))
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "etcd refused the lease: " + granted.Error));
        }

        var lease = new LeaseTerm(granted.ID, sent + TimeSpan.FromSeconds(granted.TTL));
        EtcdLog.LeaseGranted(_logger, Election, CandidateId, granted.ID, granted.TTL, _connection.Endpoint);
        lock (_gate)
        {
            _lease = lease;
        }

        lease.KeepAlive = Task.Run(() => KeepAliveLoopAsync(lease), CancellationToken.None);
        return lease;
    }

    private async Task CampaignOnceAsync(LeaseTerm lease, CancellationToken cancellationToken)
    {
        var request = new TxnRequest
        {
            Compare = { new Compare { Key = _key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
            Success = { new RequestOp { RequestPut = new PutRequest { Key = _key, Value = _value, Lease = lease.Id } } },
            Failure = { new RequestOp { RequestRange = new RangeRequest { Key = _key } } },
        };
        var headers = await _connection.HeadersAsync(cancellationToken).ConfigureAwait(false);
        var response = await _connection.KV.TxnAsync(request, headers, _connection.Deadline(), cancellationToken).ConfigureAwait(false);
        long holderLease;
        long term;
        if (response.Succeeded)
        {
            holderLease = lease.Id;
            term = response.Header.Revision;
        }
        else
        {
            var holder = response.Responses[0].ResponseRange.Kvs.FirstOrDefault();
            if (holder is null)
            {
                return; // Deleted between the compare and the read: campaign again.
            }

            holderLease = holder.Lease;
            term = holder.CreateRevision;
            if (holderLease != lease.Id)
            {
                PublishIfChanged(new LeadershipState(Election, CandidateId, LeadershipRole.Follower, lease.Id, term, holder.Value.ToStringUtf8(), _time.GetUtcNow(), LeadershipReason.LeaderObserved));
            }
        }

        if (holderLease == lease.Id)
        {
            PublishIfChanged(new LeadershipState(Election, CandidateId, LeadershipRole.Leader, lease.Id, term, CandidateId, _time.GetUtcNow(), LeadershipReason.Elected));
        }

        await WaitForKeyChangeAsync(holderLease, term, response.Header.Revision + 1, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            if (Current.IsLeader && Current.LeaseId == lease.Id && !lease.IsLost)
            {
                Publish(Current with { Role = LeadershipRole.Follower, LeaderId = null, Since = _time.GetUtcNow(), Reason = LeadershipReason.KeyLost, Detail = "the election key was deleted or overwritten" });
            }
        }
    }

    /// <summary>Returns when the key is deleted or no longer held by <paramref name="holderLease"/> at <paramref name="term"/>.</summary>
    private async Task WaitForKeyChangeAsync(long holderLease, long term, long fromRevision, CancellationToken cancellationToken)
    {
        var headers = await _connection.HeadersAsync(cancellationToken).ConfigureAwait(false);
        using var call = _connection.Watch.Watch(headers, cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(
            new WatchRequest { CreateRequest = new WatchCreateRequest { Key = _key, StartRevision = fromRevision } }, cancellationToken).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var response = call.ResponseStream.Current;
            if (response.Canceled || response.CompactRevision > 0)
            {
                return; // The watch cannot continue from there: read the key again.
            }

            foreach (var change in response.Events)
            {
                if (change.Type == Event.Types.EventType.Delete || change.Kv.Lease != holderLease || change.Kv.CreateRevision != term)
                {
                    return;
                }
            }
        }
    }

    private async Task KeepAliveLoopAsync(LeaseTerm lease)
    {
        var interval = _election.EffectiveKeepAliveInterval;
        AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse>? call = null;
        try
        {
            while (!lease.IsLost)
            {
                var untilDeadline = lease.Deadline - _time.GetUtcNow();
                var wait = untilDeadline < interval ? untilDeadline : interval;
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _time, lease.Lost).ConfigureAwait(false);
                }

                if (_time.GetUtcNow() >= lease.Deadline)
                {
                    LoseLease(lease, "no keepalive was acknowledged within the TTL (etcd unreachable, or this process was paused)");
                    return;
                }

                var sent = _time.GetUtcNow();
                var timeout = lease.Deadline - sent;
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(lease.Lost);
                attempt.CancelAfter(timeout < _options.RequestTimeout ? timeout : _options.RequestTimeout);
                try
                {
                    if (call is null)
                    {
                        var headers = await _connection.HeadersAsync(attempt.Token).ConfigureAwait(false);
                        call = _connection.Lease.LeaseKeepAlive(headers, cancellationToken: lease.Lost);
                    }

                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = lease.Id }, attempt.Token).ConfigureAwait(false);
                    if (!await call.ResponseStream.MoveNext(attempt.Token).ConfigureAwait(false))
                    {
                        throw new RpcException(new Status(StatusCode.Unavailable, "etcd closed the keepalive stream"));
                    }

                    var answer = call.ResponseStream.Current;
                    if (answer.TTL <= 0)
                    {
                        LoseLease(lease, "etcd answered the keepalive with TTL 0 (the lease expired or was revoked)");
                        return;
                    }

                    lease.Deadline = sent + TimeSpan.FromSeconds(answer.TTL);
                }
                catch (Exception e) when ((EtcdConnection.IsStoreFailure(e) || e is OperationCanceledException) && !lease.IsLost)
                {
                    if (e is not OperationCanceledException)
                    {
                        _connection.OnFailure(e);
                    }

                    EtcdLog.KeepAliveFailed(_logger, Election, lease.Id, lease.Deadline, e);
                    call?.Dispose();
                    call = null;
                }
            }
        }
        catch (Exception e) when (lease.IsLost && (e is OperationCanceledException || EtcdConnection.IsStoreFailure(e)))
        {
            // Stopped: the lease was lost or the candidate resigned; a call torn down with it may end
            // as a cancellation or as a transport failure, and neither matters any more.
        }
        finally
        {
            call?.Dispose();
        }
    }

    private void LoseLease(LeaseTerm lease, string detail)
    {
        lock (_gate)
        {
            if (!lease.MarkLost())
            {
                return;
            }

            EtcdLog.LeaseLost(_logger, Election, CandidateId, lease.Id, detail);
            if (ReferenceEquals(_lease, lease))
            {
                _lease = null;
            }

            if (Current.LeaseId == lease.Id)
            {
                Publish(Current with { Role = LeadershipRole.Follower, LeaseId = null, LeaderId = Current.IsLeader ? null : Current.LeaderId, Since = _time.GetUtcNow(), Reason = LeadershipReason.LeaseLost, Detail = detail });
            }
        }

        // Best effort: if etcd still has the lease (the candidate only doubted it), revoking it frees
        // the key at once for the others instead of at the lease's expiry.
        _ = RevokeAsync(lease.Id, CancellationToken.None);
    }

    private async Task RevokeAsync(long leaseId, CancellationToken cancellationToken)
    {
        try
        {
            var headers = await _connection.HeadersAsync(cancellationToken).ConfigureAwait(false);
            await _connection.Lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, headers, _connection.Deadline(), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (EtcdConnection.IsStoreFailure(e) || e is OperationCanceledException or ObjectDisposedException)
        {
            EtcdLog.RevokeFailed(_logger, Election, leaseId, e);
        }
    }

    private void PublishIfChanged(LeadershipState state)
    {
        lock (_gate)
        {
            var current = Current;
            if (current.Role == state.Role && current.LeaseId == state.LeaseId && current.Revision == state.Revision
                && current.LeaderId == state.LeaderId && current.Reason != LeadershipReason.StoreUnavailable)
            {
                return;
            }

            Publish(state);
        }
    }

    private void Publish(LeadershipState state)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var previous = _states.Value;
            _states.OnNext(state);
            if (previous.Role != state.Role || previous.Reason != state.Reason)
            {
                EtcdLog.RoleChanged(_logger, state.Election, state.CandidateId, state.Role, state.Reason, state.LeaseId, state.Revision, state.LeaderId, state.Detail);
            }

            if (previous.Role != state.Role)
            {
                EtcdTelemetry.Transitions.Add(1, new TagList
                {
                    { EtcdTelemetry.Tags.Election, state.Election },
                    { EtcdTelemetry.Tags.Role, state.IsLeader ? "leader" : "follower" },
                    { EtcdTelemetry.Tags.Reason, state.Reason.ToString() },
                });
            }
        }
    }

    /// <summary>One lease: its id, until when it is surely alive, and a token cancelled when it is lost.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "The source has no timer to release; linked tokens of running calls may still observe it.")]
    private sealed class LeaseTerm(long id, DateTimeOffset deadline)
    {
        private readonly CancellationTokenSource _lost = new();
        private long _deadlineTicks = deadline.UtcTicks;
        private int _isLost;

        public long Id { get; } = id;

        public DateTimeOffset Deadline
        {
            get => new(Interlocked.Read(ref _deadlineTicks), TimeSpan.Zero);
            set => Interlocked.Exchange(ref _deadlineTicks, value.UtcTicks);
        }

        public bool IsLost => Volatile.Read(ref _isLost) != 0;

        public CancellationToken Lost => _lost.Token;

        public Task? KeepAlive { get; set; }

        public bool MarkLost()
        {
            if (Interlocked.Exchange(ref _isLost, 1) != 0)
            {
                return false;
            }

            _lost.Cancel();
            return true;
        }

        public async Task StopAsync()
        {
            MarkLost();
            if (KeepAlive is { } task)
            {
                await task.ConfigureAwait(false);
            }
        }
    }
}
