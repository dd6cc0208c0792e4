using System.Reactive.Linq;
using System.Reactive.Subjects;
using Cloudlets.Core.Options;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Core.Election;

/// <summary>
/// A candidate of an <see cref="InMemoryElectionStore"/>: the same rules as the etcd election (a lease
/// kept alive every <see cref="LeaderElectionOptions.EffectiveKeepAliveInterval"/>, the key taken only
/// when free, leadership lost when the lease ends or the key goes, a fencing check against the
/// store), in one process, for unit tests of logic that depends on leadership.
/// </summary>
/// <remarks>Ownership: the candidate owns its lease and timer, not the store.</remarks>
public sealed class InMemoryLeaderElection : ILeaderElection
{
    private readonly InMemoryElectionStore _store;
    private readonly LeaderElectionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BehaviorSubject<LeadershipState> _states;
    private ITimer? _keepAlive;
    private long? _lease;
    private DateTimeOffset _leaseDeadline;
    private bool _started;
    private bool _stopped;
    private bool _disposed;

    /// <summary>Creates a candidate, validating the options once.</summary>
    /// <param name="store">The shared store (not owned).</param>
    /// <param name="options">The options, copied.</param>
    /// <param name="logger">Where to log (event ids 6300–6349), or <see langword="null"/>.</param>
    /// <exception cref="OptionsValidationException">An option is invalid.</exception>
    public InMemoryLeaderElection(InMemoryElectionStore store, LeaderElectionOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Clone();
        OptionsErrors.ValidateAndThrow(_options);
        _store = store;
        _time = store.TimeProvider;
        _logger = logger ?? NullLogger.Instance;
        _states = new BehaviorSubject<LeadershipState>(LeadershipState.Initial(_options.Election, _options.CandidateId, _time.GetUtcNow()));
    }

    /// <inheritdoc />
    public string Election => _options.Election;

    /// <inheritdoc />
    public string CandidateId => _options.CandidateId;

    /// <inheritdoc />
    public LeadershipState Current => _states.Value;

    /// <inheritdoc />
    public IObservable<LeadershipState> States => _states.AsObservable();

    /// <inheritdoc />
    public ValueTask StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_store.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started)
            {
                throw new InvalidOperationException($"The election '{Election}' of candidate '{CandidateId}' was started before.");
            }

            _started = true;
            _store.KeyReleased += OnKeyReleased;
            var interval = _options.EffectiveKeepAliveInterval;
            _keepAlive = _time.CreateTimer(_ => Tick(), null, interval, interval);
            Tick();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask ResignAsync(CancellationToken cancellationToken = default)
    {
        lock (_store.Gate)
        {
            Stop(LeadershipReason.Resigned);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> ConfirmLeadershipAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromResult(false);
        }

        lock (_store.Gate)
        {
            var state = Current;
            if (_stopped || !state.IsLeader || _lease is not { } lease || state.Revision is not { } revision)
            {
                return ValueTask.FromResult(false);
            }

            if (_time.GetUtcNow() >= _leaseDeadline)
            {
                LoseLease("the lease's TTL passed since its last keepalive");
                return ValueTask.FromResult(false);
            }

            bool confirmed;
            try
            {
                confirmed = _store.Confirm(Election, CandidateId, lease, revision);
            }
            catch (TimeoutException)
            {
                ElectionLog.ConfirmUnreachable(_logger, Election, CandidateId);
                return ValueTask.FromResult(false);
            }

            if (!confirmed)
            {
                Publish(state with { Role = LeadershipRole.Follower, Since = _time.GetUtcNow(), Reason = LeadershipReason.ConfirmationFailed, LeaderId = _store.LeaderOf(Election), Detail = "the store no longer holds this term" });
            }

            return ValueTask.FromResult(confirmed);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (_store.Gate)
        {
            if (_disposed)
            {
                return ValueTask.CompletedTask;
            }

            Stop(LeadershipReason.Resigned);
            _disposed = true;
            _states.OnCompleted();
        }

        _states.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Stop(LeadershipReason reason)
    {
        if (_stopped || _disposed)
        {
            return;
        }

        _stopped = true;
        _keepAlive?.Dispose();
        _store.KeyReleased -= OnKeyReleased;
        if (_lease is { } lease)
        {
            try
            {
                _store.Revoke(CandidateId, lease);
            }
            catch (TimeoutException)
            {
                // Unreachable: the lease expires on its own after its TTL.
            }
            catch (ObjectDisposedException)
            {
                // The store is gone with every lease it had.
            }
        }

        _lease = null;
        Publish(Current with { Role = LeadershipRole.Follower, LeaseId = null, Since = _time.GetUtcNow(), Reason = reason, Detail = null });
    }

    private void Tick()
    {
        lock (_store.Gate)
        {
            if (_stopped)
            {
                return;
            }

            var now = _time.GetUtcNow();
            try
            {
                if (_lease is { } lease)
                {
                    if (_store.KeepAlive(CandidateId, lease))
                    {
                        _leaseDeadline = now + _options.LeaseTtl;
                    }
                    else
                    {
                        LoseLease("the store no longer knows the lease");
                    }
                }

                if (_lease is null)
                {
                    _lease = _store.Grant(CandidateId, _options.LeaseTtl);
                    _leaseDeadline = now + _options.LeaseTtl;
                }

                Campaign();
            }
            catch (TimeoutException e)
            {
                if (_lease is not null && now >= _leaseDeadline)
                {
                    LoseLease("the lease's TTL passed without a keepalive reaching the store");
                }
                else if (!Current.IsLeader && Current.Reason != LeadershipReason.StoreUnavailable)
                {
                    Publish(Current with { Since = now, Reason = LeadershipReason.StoreUnavailable, Detail = e.Message });
                }
            }
        }
    }

    private void Campaign()
    {
        if (_stopped || Current.IsLeader || _lease is not { } lease)
        {
            return;
        }

        var (acquired, leaderId, revision) = _store.TryAcquire(Election, CandidateId, lease);
        var now = _time.GetUtcNow();
        if (acquired)
        {
            Publish(new LeadershipState(Election, CandidateId, LeadershipRole.Leader, lease, revision, CandidateId, now, LeadershipReason.Elected));
        }
        else if (Current.LeaderId != leaderId || Current.LeaseId != lease || Current.Reason == LeadershipReason.StoreUnavailable)
        {
            Publish(new LeadershipState(Election, CandidateId, LeadershipRole.Follower, lease, revision, leaderId, now, LeadershipReason.LeaderObserved));
        }
    }

    private void LoseLease(string detail)
    {
        _lease = null;
        Publish(Current with { Role = LeadershipRole.Follower, LeaseId = null, LeaderId = Current.IsLeader ? null : Current.LeaderId, Since = _time.GetUtcNow(), Reason = LeadershipReason.LeaseLost, Detail = detail });
    }

    private void OnKeyReleased(string election, long leaseId, LeadershipReason reason)
    {
        if (!string.Equals(election, Election, StringComparison.Ordinal) || _stopped)
        {
            return;
        }

        if (Current.IsLeader && Current.LeaseId == leaseId)
        {
            if (reason == LeadershipReason.KeyLost)
            {
                Publish(Current with { Role = LeadershipRole.Follower, LeaderId = null, Since = _time.GetUtcNow(), Reason = LeadershipReason.KeyLost, Detail = "the election key was deleted" });
            }
            else
            {
                LoseLease("the lease was revoked or expired in the store");
            }
        }

        if (_lease is { } mine && !_store.IsLeaseAlive(mine))
        {
            _lease = null;
        }

        try
        {
            Campaign();
        }
        catch (TimeoutException)
        {
            // Cut off: the next keepalive tick notices and reports it.
        }
    }

    private void Publish(LeadershipState state)
    {
        if (_disposed)
        {
            return;
        }

        var previous = _states.Value;
        _states.OnNext(state);
        if (previous.Role != state.Role)
        {
            ElectionLog.RoleChanged(_logger, state.Election, state.CandidateId, state.Role, state.Reason, state.LeaseId, state.Revision);
        }
    }
}
