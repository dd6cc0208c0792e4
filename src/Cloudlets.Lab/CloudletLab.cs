using System.Diagnostics;
using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Lab;

/// <summary>
/// A cloudlet lab on one Linux machine: N libvirt hosts and one edge device, each in its own
/// network namespace on a private switch, and busybox guests that can live-migrate between the
/// hosts. Build it with <see cref="CloudletLabBuilder"/>, await <see cref="StartAsync"/>, dispose it
/// to tear everything down. See <see cref="LabNaming"/> for the topology.
/// </summary>
/// <remarks>
/// <para>
/// Management happens from the edge namespace (nothing in the root namespace has a lab address):
/// <c>ip netns exec NAME-edge virsh -c qemu+tcp://198.18.K.11/system …</c>, or in-process from a
/// thread inside the edge namespace (see <c>Cloudlets.Probing.Linux.NetworkNamespace</c>).
/// </para>
/// <para>
/// Ownership: the lab records in its state file every namespace it creates (name, then inode) and
/// every process it starts (pid, start time, program path), and its teardown removes exactly those
/// and the lab daemons inside its own namespaces, nothing else (see <see cref="LabTeardownReport"/>).
/// The files of this class: this one (life cycle and state), <c>CloudletLab.Topology.cs</c> (namespaces
/// and daemons), <c>CloudletLab.Guests.cs</c>, <c>CloudletLab.Hosts.cs</c> (commands on hosts, faults).
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed partial class CloudletLab : IAsyncDisposable
{
    private readonly CloudletLabOptions _options;
    private readonly ILogger _logger;
    private readonly ICommandRunner _runner;
    private readonly LabPaths _paths;
    private readonly List<LabGuest> _guests = [];
    private readonly Dictionary<string, TimeSpan> _boots = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _stateLock = new();
    private readonly List<LabOwnedNamespace> _namespaces = [];
    private readonly List<LabOwnedProcess> _processes = [];
    private List<LabHost> _hosts = [];
    private List<LabSite> _sites = [];
    private List<LabStateHost> _stateHosts = [];
    private LabAddressPlan? _plan;
    private LabEdge? _edge;
    private GuestImageFiles? _image;
    private GuestImageFiles? _netemImage;
    private TimeSpan _startup;
    private string _phase = "starting";
    private bool _started;
    private bool _owns;
    private bool _transient;
    private int _owner;
    private ulong _ownerStartTime;
    private bool _disposed;

    internal CloudletLab(CloudletLabOptions options, ILogger logger, ICommandRunner runner)
    {
        _options = options;
        _logger = logger;
        _runner = runner;
        _paths = new LabPaths(options.StateRoot);
    }

    /// <summary>The lab name.</summary>
    public string Name => _options.Name;

    /// <summary>The settings.</summary>
    public CloudletLabOptions Options => _options;

    /// <summary>The address plan (valid after start).</summary>
    public LabAddressPlan Plan => _plan ?? throw NotStarted();

    /// <summary>The edge device (valid after start).</summary>
    public LabEdge Edge => _edge ?? throw NotStarted();

    /// <summary>The sites, site-1 (the edge) first (valid after start).</summary>
    public IReadOnlyList<LabSite> Sites => _started ? _sites : throw NotStarted();

    /// <summary>The site called <paramref name="siteName"/>; throws <see cref="LabConfigurationException"/> when there is none.</summary>
    public LabSite GetSite(string siteName) =>
        Sites.FirstOrDefault(s => s.Name == siteName) ?? throw new LabConfigurationException($"The lab {Name} has no site '{siteName}' (it has {string.Join(", ", _sites.Select(s => s.Name))}).");

    /// <summary>The hosts, cloudlet-1 first (valid after start).</summary>
    public IReadOnlyList<LabHost> Hosts => _started ? _hosts : throw NotStarted();

    /// <summary>The guests started so far.</summary>
    public IReadOnlyList<LabGuest> Guests => [.. _guests];

    /// <summary>Start-up and boot times (for people; not a benchmark).</summary>
    public LabTimings Timings => new(_startup, new Dictionary<string, TimeSpan>(_boots));

    /// <summary>The host called <paramref name="hostName"/>; throws <see cref="LabConfigurationException"/> when there is none.</summary>
    public LabHost GetHost(string hostName) =>
        Hosts.FirstOrDefault(h => h.Name == hostName) ?? throw new LabConfigurationException($"The lab {Name} has no host '{hostName}' (it has {string.Join(", ", _hosts.Select(h => h.Name))}).");

    /// <summary>The guest called <paramref name="guestName"/>; throws <see cref="LabConfigurationException"/> when there is none.</summary>
    public LabGuest GetGuest(string guestName) =>
        _guests.FirstOrDefault(g => g.Name == guestName) ?? throw new LabConfigurationException($"The lab {Name} has no guest '{guestName}'.");

    /// <summary>The switch namespace (<c>NAME-sw</c>): bridge <c>sw0</c> with one veth port per member (<c>edge</c>, <c>h1</c>, <c>h2</c>, …).</summary>
    public string SwitchNamespace => LabNaming.SwitchNamespace(Name);

    /// <summary>The namespaces this lab recorded as its own (name and inode).</summary>
    public IReadOnlyList<LabOwnedNamespace> OwnedNamespaces
    {
        get
        {
            lock (_stateLock)
            {
                return [.. _namespaces];
            }
        }
    }

    /// <summary>The processes this lab recorded as its own (daemons, and each guest's first QEMU), with their start times.</summary>
    public IReadOnlyList<LabOwnedProcess> OwnedProcesses
    {
        get
        {
            lock (_stateLock)
            {
                return [.. _processes];
            }
        }
    }

    /// <summary>The phase recorded in the state file of this lab (<c>starting</c>, <c>ready</c>), or null.</summary>
    public string? RecordedPhase => _paths.TryReadState(Name)?.Phase;

    /// <summary>
    /// Checks the prerequisites and that nothing else holds the lab's name, removes what an earlier
    /// run of a lab with this name left behind (only what that run recorded as its own), creates
    /// the namespaces, starts virtlogd and libvirtd on every host, waits until each libvirtd answers
    /// on its URI from the edge, then starts the configured guests.
    /// </summary>
    /// <exception cref="LabPrerequisiteException">Something the lab needs is missing (nothing was created).</exception>
    /// <exception cref="LabConflictException">
    /// A lab of this name is running or its owner process is alive, or a namespace with one of the
    /// lab's names exists that the lab did not create (nothing was changed).
    /// </exception>
    /// <exception cref="LabException">A step failed; what was created has been removed again.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_started)
        {
            throw new InvalidOperationException($"The lab {Name} has started already.");
        }

        LabPrerequisites.EnsureAvailable(_options.CacheFolder, _options.Transport);
        ThrowIfNameIsHeld();
        var clock = Stopwatch.GetTimestamp();
        _owns = true;
        await RemoveOrphansAsync(cancellationToken).ConfigureAwait(false);
        // A stray mount reference elsewhere does not stop a new run; namespaces, folders and processes do.
        var leftovers = (await LabTeardown.RunAsync(Name, _paths, _logger, leftoversExpected: true, cancellationToken).ConfigureAwait(false)).Leftovers
            .Where(l => !l.StartsWith("mount ", StringComparison.Ordinal))
            .ToList();
        if (leftovers.Count > 0)
        {
            throw new LabException($"Cannot start lab {Name}: an earlier run left things that could not be removed: {string.Join("; ", leftovers)}");
        }

        try
        {
            await CreateAsync(cancellationToken).ConfigureAwait(false);
            if (_options.Agents is { } agents)
            {
                await StartBrokerAndAgentsAsync(agents, cancellationToken).ConfigureAwait(false);
            }

            _startup = Stopwatch.GetElapsedTime(clock);
            LabLog.Ready(_logger, Name, _startup);
            foreach (var host in _options.GuestsOn)
            {
                await StartGuestAsync(host, _options.GuestOptions, cancellationToken).ConfigureAwait(false);
            }

            // Recorded only now: a run killed while its guests boot is a crashed start, not a running lab.
            EnterPhase(LabPhases.Ready, LabPhases.Ready);
        }
        catch
        {
            await LabTeardown.RunAsync(Name, _paths, _logger, leftoversExpected: false, CancellationToken.None).ConfigureAwait(false);
            _started = false;
            throw;
        }
    }

    /// <summary>Refuses a start over anything that holds the lab's name (see <see cref="StartAsync"/>), before anything changes.</summary>
    private void ThrowIfNameIsHeld()
    {
        var state = _paths.TryReadState(Name);
        if (state is not null && state.Owner > 0 && LabProcess.IsSameProcessAlive(state.Owner, state.OwnerStartTime))
        {
            var who = state.Owner == Environment.ProcessId ? "this process" : $"the live process {state.Owner}";
            throw new LabConflictException($"Lab {Name} ({state.Hosts.Count} hosts, {state.Phase}) belongs to {who}: stop it there, or choose another lab name. Nothing was changed.");
        }

        if (state is { Phase: LabPhases.Ready } && state.Processes.Count(p => p.Role == "libvirtd" && p.Identity.IsAlive()) == state.Hosts.Count && state.Hosts.Count > 0)
        {
            throw new LabConflictException(
                $"Lab {Name} is up with {state.Hosts.Count} hosts and {state.Guests.Count} guests: tear it down first (cloudlets-lab down --name {Name}, or CloudletLab.DownAsync). Nothing was changed.");
        }

        var wanted = Enumerable.Range(1, _options.Hosts).Select(i => LabNaming.HostNamespace(Name, i))
            .Concat(Enumerable.Range(1, _options.Sites).Select(s => LabNaming.SiteNamespace(Name, s)))
            .Append(LabNaming.SwitchNamespace(Name));
        var clashes = LabTeardown.ClassifyNamespaces(Name, state).Foreign.Intersect(wanted).ToList();
        if (clashes.Count > 0)
        {
            throw new LabConflictException(
                $"Lab {Name} cannot start: the network namespace(s) {string.Join(", ", clashes)} exist and were not created by this lab; remove them or choose another lab name. Nothing was changed.");
        }
    }

    /// <summary>
    /// Tears the lab down now (what <see cref="DisposeAsync"/> does for a lab this object started,
    /// unless it keeps running) and checks that nothing is left.
    /// </summary>
    /// <exception cref="LabException">Something of the lab is still there afterwards (the message lists it).</exception>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var report = await LabTeardown.RunAsync(Name, _paths, _logger, leftoversExpected: false, cancellationToken).ConfigureAwait(false);
        _started = false;
        if (report.Leftovers.Count > 0)
        {
            throw new LabException($"The lab {Name} left behind: {string.Join("; ", report.Leftovers)}");
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        // Only a lab this object started is torn down: an unstarted or attached one may belong to another process.
        if (_owns && !_options.KeepRunningOnDispose)
        {
            await LabTeardown.RunAsync(Name, _paths, _logger, leftoversExpected: false, CancellationToken.None).ConfigureAwait(false);
        }

        _gate.Dispose();
    }

    /// <summary>
    /// Opens a lab another process started, from its state file (the returned object keeps the lab
    /// running on dispose). Null when no lab of that name has a state.
    /// </summary>
    public static CloudletLab? Attach(string name, string? stateRoot = null, ILogger? logger = null)
    {
        LabNaming.ValidateLabName(name);
        var paths = new LabPaths(stateRoot ?? LabPaths.DefaultRoot);
        var state = paths.TryReadState(name);
        if (state is null)
        {
            return null;
        }

        var lab = new CloudletLab(new CloudletLabOptions { Name = name, Hosts = Math.Max(1, state.Hosts.Count), Sites = Math.Max(1, state.Sites.Count), StateRoot = paths.Root, KeepRunningOnDispose = true, Transport = state.TransportKind }, logger ?? NullLogger.Instance, LocalCommandRunner.Instance);
        lab.Restore(state);
        return lab;
    }

    private void Restore(LabState state)
    {
        _transient = state.Transient;
        _owner = state.Owner;
        _ownerStartTime = state.OwnerStartTime;
        _phase = state.Phase;
        _plan = new LabAddressPlan(state.Subnet);
        _stateHosts = [.. state.Hosts];
        _hosts = [.. state.Hosts.Select(h => NewHost(h.Index))];
        _edge = new LabEdge(LabNaming.EdgeNamespace(Name), _plan.Edge);
        _sites = [.. Enumerable.Range(1, Math.Max(1, state.Sites.Count)).Select(NewSite)];
        _guests.AddRange(state.Guests.Select(g => new LabGuest(LabNaming.GuestName(g.Index), g.Index, g.InitialHost, _plan.Guest(g.Index), _plan.GuestMac(g.Index), GuestImage.ServicePort) { NetemHost = g.NetemHost }));
        _namespaces.AddRange(state.Namespaces);
        _processes.AddRange(state.Processes);
        RestoreBroker(state.Broker);
        _started = true;
    }

    private LabHost NewHost(int index) =>
        new(LabNaming.HostName(index), index, Plan.Host(index), LabNaming.HostNamespace(Name, index), LabNaming.HostBridge, _paths.HostFolder(Name, index))
        {
            Transport = _options.Transport,
            ClientPkiFolder = LabSasl.UsesTls(_options.Transport) ? _paths.ClientPkiFolder(Name) : null,
            SaslAuthFile = _options.Transport == LabTransport.TlsSasl ? LabSasl.AuthFile(_paths, Name) : null,
            SaslPasswordFile = _options.Transport == LabTransport.TlsSasl ? LabSasl.PasswordFile(_paths, Name) : null,
            SshKeyFile = _options.Transport == LabTransport.Ssh ? LabSsh.KeyFile(_paths, Name) : null,
            SshKnownHostsFile = _options.Transport == LabTransport.Ssh ? LabSsh.KnownHostsFile(_paths, Name) : null,
        };

    private LabSite NewSite(int index) =>
        new(LabNaming.SiteName(index), index, LabNaming.SiteNamespace(Name, index), Plan.Site(index), LabNaming.SwitchPortForSite(index));

    /// <summary>Whether every host's libvirtd answers now (one try each).</summary>
    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default)
    {
        foreach (var host in Hosts)
        {
            if (NamespaceInodeOf(host.Namespace) == 0 || !(await _runner.RunAsync(Virsh(host, "version"), cancellationToken).ConfigureAwait(false)).Succeeded)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Removes what a lab of this name recorded as its own (the namespaces it created, the processes
    /// it started and the lab daemons inside its namespaces, its folder and subnet claim), whether it
    /// was stopped cleanly or killed mid-way. Objects with the lab's names that it did not create
    /// are left alone and listed in the report.
    /// </summary>
    public static Task<LabTeardownReport> DownAsync(string name, string? stateRoot = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        LabNaming.ValidateLabName(name);
        return LabTeardown.RunAsync(name, new LabPaths(stateRoot ?? LabPaths.DefaultRoot), logger ?? NullLogger.Instance, leftoversExpected: false, cancellationToken);
    }

    /// <summary>
    /// What exists on the machine under a lab's names (a read-only check): named network namespaces
    /// with its names (whoever made them), its folder, subnet claims, mounts that mention it in any
    /// process's mount table, and live processes its state records. Empty when nothing is left.
    /// </summary>
    public static IReadOnlyList<string> FindLeftovers(string name, string? stateRoot = null) =>
        LabLeftovers.Find(name, new LabPaths(stateRoot ?? LabPaths.DefaultRoot));

    /// <summary>
    /// Removes transient labs (see <see cref="LabState.Transient"/>) whose owning process is gone:
    /// what a killed test run leaves behind under a unique name nobody will use again.
    /// </summary>
    private async Task RemoveOrphansAsync(CancellationToken cancellationToken)
    {
        foreach (var other in _paths.KnownLabs().Where(n => n != Name))
        {
            var state = _paths.TryReadState(other);
            if (state is { Transient: true } && !LabProcess.IsSameProcessAlive(state.Owner, state.OwnerStartTime))
            {
                LabLog.RemovingOrphan(_logger, other, state.Owner);
                _ = await LabTeardown.RunAsync(other, _paths, _logger, leftoversExpected: true, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Records a phase in the state file, then tells the observer (so a process killed there has recorded what the phase made).</summary>
    private void EnterPhase(string phase, string? recordedPhase = null)
    {
        if (recordedPhase is not null)
        {
            _phase = recordedPhase;
        }

        SaveState();
        LabLog.Phase(_logger, Name, phase);
        _options.PhaseObserver?.Invoke(phase);
    }

    private void SaveState()
    {
        lock (_stateLock)
        {
            _paths.WriteState(new LabState
            {
                Name = Name,
                Subnet = Plan.Subnet,
                Phase = _phase,
                Transient = _transient,
                Owner = _owner,
                OwnerStartTime = _ownerStartTime,
                Hosts = _stateHosts,
                Sites = [.. _sites.Select(site => new LabStateSite(site.Index, site.Name, site.Namespace, site.Address.ToString()))],
                Transport = LabState.TransportName(_options.Transport),
                Guests = [.. _guests.Select(g => new LabStateGuest(g.Index, g.InitialHost) { NetemHost = g.NetemHost })],
                Namespaces = [.. _namespaces],
                Processes = [.. _processes],
                Broker = BrokerState(),
            });
        }
    }

    private void Record(LabOwnedProcess process)
    {
        lock (_stateLock)
        {
            _processes.RemoveAll(p => p.Host == process.Host && p.Role == process.Role);
            _processes.Add(process);
        }

        SaveState();
    }

    private async Task<CommandResult> RunCheckedAsync(CommandLine command, CancellationToken cancellationToken)
    {
        LabLog.Running(_logger, Name, command);
        var result = await _runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
        return result.Succeeded ? result : throw new CommandException(result);
    }

    private InvalidOperationException NotStarted() => new($"The lab {Name} has not started (call StartAsync).");
}
