using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Core.Election;

/// <summary>
/// A host whose migrations start only while this instance leads: right before each migration starts,
/// it asks the election to confirm (<see cref="ILeaderElection.ConfirmLeadershipAsync"/>, the fencing
/// check) and refuses with <see cref="LeadershipLostException"/> — before anything happens on the host —
/// when the answer is no. Every other call is forwarded unchanged, so a follower's pipeline stays warm
/// (placement, capacity, samples, decisions) and only its moves are refused.
/// </summary>
/// <remarks>
/// Give the executor the fenced hosts as sources; a refused move is reported as a
/// <see cref="Pipeline.MigrationOutcomeKind.Skipped"/> outcome with a <see cref="LeadershipLostException"/>
/// (not a failure: no host is backed off). <see cref="LeadershipStartGate"/> makes the same check inside
/// the executor, before the host is called. Ownership: like the other host decorators it owns
/// <see cref="Inner"/> (disposing disposes it), never the election.
/// </remarks>
public sealed class LeadershipFencedHost : IHypervisorHost
{
    private readonly ILeaderElection _election;
    private int _refused;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The real host (owned).</param>
    /// <param name="election">The election that must confirm each migration (not owned).</param>
    public LeadershipFencedHost(IHypervisorHost inner, ILeaderElection election)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _election = election ?? throw new ArgumentNullException(nameof(election));
    }

    /// <summary>The real host.</summary>
    public IHypervisorHost Inner { get; }

    /// <summary>How many migrations were refused because the election did not confirm.</summary>
    public int MigrationsRefused => Volatile.Read(ref _refused);

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public Uri Uri => Inner.Uri;

    /// <inheritdoc />
    public HostConnectionState ConnectionState => Inner.ConnectionState;

    /// <inheritdoc />
    public IObservable<HostEvent> Events => Inner.Events;

    /// <inheritdoc />
    public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) => Inner.GetInfoAsync(cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) => Inner.ListVmsAsync(cancellationToken);

    /// <inheritdoc />
    public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.TryGetVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => Inner.DefineVmAsync(spec, cancellationToken);

    /// <inheritdoc />
    public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.StartVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.DestroyVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => Inner.UndefineVmAsync(vmName, cancellationToken);

    /// <inheritdoc />
    /// <exception cref="LeadershipLostException">The election did not confirm this instance's leadership; nothing was started.</exception>
    public async Task<MigrationResult> MigrateAsync(
        string vmName,
        MigrationDestination destination,
        MigrationOptions options,
        IProgress<MigrationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var state = _election.Current;
        if (!await _election.ConfirmLeadershipAsync(cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Increment(ref _refused);
            throw new LeadershipLostException(_election.Election, _election.CandidateId, state.LeaderId, vmName, Name, destination.Name);
        }

        return await Inner.MigrateAsync(vmName, destination, options, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Inner.DisposeAsync();
}

/// <summary>
/// A migration was not started because this instance does not lead its election (or could not confirm
/// that it does: the fencing check said no). Nothing happened on the hosts; the VM stays where it is.
/// </summary>
public sealed class LeadershipLostException : MigrationNotStartedException
{
    /// <summary>Creates the exception.</summary>
    public LeadershipLostException()
        : this("A migration was not started: this instance does not lead its election.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public LeadershipLostException(string message)
        : base(message)
    {
        Election = CandidateId = VmName = SourceHost = DestinationHost = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    public LeadershipLostException(string message, Exception innerException)
        : base(message, innerException)
    {
        Election = CandidateId = VmName = SourceHost = DestinationHost = string.Empty;
    }

    /// <summary>Creates the exception for a refused migration.</summary>
    public LeadershipLostException(string election, string candidateId, string? leaderId, string vmName, string sourceHost, string destinationHost)
        : base(
            $"VM '{vmName}' was not migrated from '{sourceHost}' to '{destinationHost}': candidate '{candidateId}' does not lead election '{election}'"
            + (leaderId is null || leaderId == candidateId ? " (its leadership could not be confirmed)" : $" ('{leaderId}' does)") + "; nothing was started and the VM stays on its source.")
    {
        Election = election;
        CandidateId = candidateId;
        LeaderId = leaderId;
        VmName = vmName;
        SourceHost = sourceHost;
        DestinationHost = destinationHost;
    }

    /// <summary>The election (region).</summary>
    public string Election { get; }

    /// <summary>This instance's candidate id.</summary>
    public string CandidateId { get; }

    /// <summary>Who this instance believed led, or <see langword="null"/>.</summary>
    public string? LeaderId { get; }

    /// <summary>The VM that was not moved.</summary>
    public string VmName { get; }

    /// <summary>The source host.</summary>
    public string SourceHost { get; }

    /// <summary>The destination host.</summary>
    public string DestinationHost { get; }

    /// <inheritdoc />
    public override bool IsTransient => false;
}
