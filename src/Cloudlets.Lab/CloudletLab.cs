using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text;
using Cloudlets.Core.Commands;
using Cloudlets.Lab.Guests;
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
/// Management happens from the edge namespace (nothing in the root namespace has a lab address):
/// <c>ip netns exec NAME-edge virsh -c qemu+tcp://198.18.K.11/system …</c>, or in-process from a
/// thread inside the edge namespace (see <c>Cloudlets.Core.Linux.NetworkNamespace</c>).
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed class CloudletLab : IAsyncDisposable
{
    private readonly CloudletLabOptions _options;
    private readonly ILogger _logger;
    private readonly ICommandRunner _runner;
    private readonly LabPaths _paths;
    private readonly List<LabGuest> _guests = [];
    private readonly Dictionary<string, TimeSpan> _boots = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private List<LabHost> _hosts = [];
    private List<LabStateHost> _stateHosts = [];
    private LabAddressPlan? _plan;
    private LabEdge? _edge;
    private GuestImageFiles? _image;
    private TimeSpan _startup;
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

    /// <summary>
    /// Checks the prerequisites, removes what an earlier run of a lab with this name left behind,
    /// creates the namespaces, starts virtlogd and libvirtd on every host, waits until each libvirtd
    /// answers on its URI from the edge, then starts the configured guests.
    /// </summary>
    /// <exception cref="LabPrerequisiteException">Something the lab needs is missing (nothing was created).</exception>
    /// <exception cref="LabException">A step failed; what was created has been removed again.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_started)
        {
            throw new InvalidOperationException($"The lab {Name} has started already.");
        }

        LabPrerequisites.EnsureAvailable(_options.CacheFolder);
        var clock = Stopwatch.GetTimestamp();
        _owns = true;
        await RemoveOrphansAsync(cancellationToken).ConfigureAwait(false);
        // A stray mount reference elsewhere does not stop a new run; namespaces, folders and processes do.
        var leftovers = (await CleanupAsync(Name, _paths, _logger, leftoversExpected: true, cancellationToken).ConfigureAwait(false))
            .Where(l => !l.StartsWith("mount ", StringComparison.Ordinal))
            .ToList();
        if (leftovers.Count > 0)
        {
            throw new LabException($"Cannot start lab {Name}: an earlier run left things that could not be removed: {string.Join("; ", leftovers)}");
        }

        try
        {
            await CreateAsync(cancellationToken).ConfigureAwait(false);
            _startup = Stopwatch.GetElapsedTime(clock);
            LabLog.Ready(_logger, Name, _startup);
            foreach (var host in _options.GuestsOn)
            {
                await StartGuestAsync(host, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await CleanupAsync(Name, _paths, _logger, leftoversExpected: false, CancellationToken.None).ConfigureAwait(false);
            _started = false;
            throw;
        }
    }

    private async Task CreateAsync(CancellationToken cancellationToken)
    {
        var subnet = _paths.ClaimSubnet(Name);
        _plan = new LabAddressPlan(subnet);
        LabLog.Starting(_logger, Name, _options.Hosts, subnet);
        _stateHosts = [.. Enumerable.Range(1, _options.Hosts).Select(i => new LabStateHost(i, Guid.NewGuid().ToString()))];
        _hosts = [.. _stateHosts.Select(h => new LabHost(LabNaming.HostName(h.Index), h.Index, _plan.Host(h.Index), LabNaming.HostNamespace(Name, h.Index), LabNaming.HostBridge, _paths.HostFolder(Name, h.Index)))];
        _edge = new LabEdge(LabNaming.EdgeNamespace(Name), _plan.Edge);
        _started = true;
        _transient = !_options.KeepRunningOnDispose;
        _owner = Environment.ProcessId;
        _ownerStartTime = LabProcess.StartTime(_owner);
        SaveState("starting");

        var script = Path.Combine(_paths.LabFolder(Name), "lab-host.sh");
        await File.WriteAllTextAsync(script, GuestImage.ReadAsset("lab-host.sh"), cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        // The switch and the edge.
        var sw = LabNaming.SwitchNamespace(Name);
        await RunCheckedAsync(CommandLine.Of("ip", "netns", "add", sw), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "add", LabNaming.SwitchBridge, "type", "bridge"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", LabNaming.SwitchBridge, "up"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "netns", "add", _edge.Namespace), cancellationToken).ConfigureAwait(false);
        await AttachToSwitchAsync(LabNaming.SwitchPortForEdge, _edge.Namespace, LabNaming.EdgeInterface, cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", _edge.Namespace, "addr", "add", LabAddressPlan.WithPrefix(_edge.Address), "dev", LabNaming.EdgeInterface), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", _edge.Namespace, "link", "set", LabNaming.EdgeInterface, "up"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", _edge.Namespace, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);

        foreach (var (host, state) in _hosts.Zip(_stateHosts))
        {
            await RunCheckedAsync(CommandLine.Of("ip", "netns", "add", host.Namespace), cancellationToken).ConfigureAwait(false);
            await AttachToSwitchAsync(LabNaming.SwitchPortForHost(host.Index), host.Namespace, LabNaming.HostUplink, cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "add", host.Bridge, "type", "bridge"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", LabNaming.HostUplink, "master", host.Bridge, "up"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "addr", "add", LabAddressPlan.WithPrefix(host.Address), "dev", host.Bridge), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", host.Bridge, "up"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
            WriteHostConfiguration(host, state);
            await RunCheckedAsync(
                CommandLine.Of("unshare", "--mount", "--uts", "--propagation", "private", "--", script, "start", host.Folder, host.Name).InNamespace(host.Namespace),
                cancellationToken).ConfigureAwait(false);
        }

        await Task.WhenAll(_hosts.Select(h => WaitForLibvirtdAsync(h, _options.ReadyTimeout, cancellationToken))).ConfigureAwait(false);
        SaveState("ready");
    }

    private async Task AttachToSwitchAsync(string port, string memberNamespace, string memberInterface, CancellationToken cancellationToken)
    {
        var sw = LabNaming.SwitchNamespace(Name);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", memberInterface, "netns", memberNamespace), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", port, "master", LabNaming.SwitchBridge, "up"), cancellationToken).ConfigureAwait(false);
    }

    private static void WriteHostConfiguration(LabHost host, LabStateHost state)
    {
        foreach (var sub in new[] { "etc", "lib", "log", "log/qemu", "run" })
        {
            Directory.CreateDirectory(Path.Combine(host.Folder, sub));
        }

        // TCP without authentication is acceptable only because the address lives inside the lab's own namespaces.
        File.WriteAllText(Path.Combine(host.Folder, "etc", "libvirtd.conf"), $"""
            listen_tls = 0
            listen_tcp = 1
            auth_tcp = "none"
            host_uuid = "{state.HostUuid}"
            log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
            """ + "\n");
        // No cgroups: the hosts share the machine's cgroup tree, where two libvirtds would pick the same names.
        File.WriteAllText(Path.Combine(host.Folder, "etc", "qemu.conf"), """
            user = "root"
            group = "root"
            security_driver = "none"
            dynamic_ownership = 0
            remember_owner = 0
            cgroup_controllers = [ ]
            """ + "\n");
        File.WriteAllText(Path.Combine(host.Folder, "etc", "virtlogd.conf"), "log_outputs = \"3:file:/var/log/libvirt/virtlogd.log\"\n");
    }

    private async Task WaitForLibvirtdAsync(LabHost host, TimeSpan within, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        CommandResult? last = null;
        while (Stopwatch.GetElapsedTime(started) < within)
        {
            last = await _runner.RunAsync(Virsh(host, "version"), cancellationToken).ConfigureAwait(false);
            if (last.Succeeded)
            {
                return;
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }

        var log = Path.Combine(host.Folder, "log", "daemons.log");
        var tail = File.Exists(log) ? string.Join(Environment.NewLine, File.ReadLines(log).TakeLast(10)) : "";
        throw new LabException($"libvirtd of {host.Name} did not answer on {host.Uri} within {within.TotalSeconds:0} s: {last?.StandardError.Trim()} {tail}".Trim());
    }

    /// <summary>
    /// Defines and starts a new guest on <paramref name="hostName"/> through <c>virsh</c> (from the
    /// edge) and waits until its service answers from the edge. The guest image is built and cached
    /// on first use.
    /// </summary>
    public async Task<LabGuest> StartGuestAsync(string hostName, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var host = GetHost(hostName);
        LabGuest guest;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_guests.Count >= LabNaming.MaxGuests)
            {
                throw new LabConfigurationException($"A lab has at most {LabNaming.MaxGuests} guests.");
            }

            _image ??= await GuestImage.EnsureAsync(_options.CacheFolder, _runner, cancellationToken).ConfigureAwait(false);
            var index = _guests.Count + 1;
            guest = new LabGuest(LabNaming.GuestName(index), index, host.Name, Plan.Guest(index), Plan.GuestMac(index), GuestImage.ServicePort);
            _guests.Add(guest);
            SaveState("ready");
        }
        finally
        {
            _gate.Release();
        }

        var xmlFile = Path.Combine(_paths.LabFolder(Name), guest.Name + ".xml");
        await File.WriteAllTextAsync(xmlFile, GuestDomain.Xml(guest.Name, _image, LabAddressPlan.WithPrefix(guest.Address), guest.Mac, host.Bridge, guest.ServicePort), cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.GetTimestamp();
        await VirshAsync(host, ["define", xmlFile], cancellationToken).ConfigureAwait(false);
        await VirshAsync(host, ["start", guest.Name], cancellationToken).ConfigureAwait(false);
        try
        {
            await CreateGuestClient(guest).WaitForAnswerAsync(_options.BootTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            var console = Path.Combine(host.Folder, "log", "qemu", guest.Name + ".console.log");
            var tail = File.Exists(console) ? string.Join(Environment.NewLine, File.ReadLines(console).TakeLast(15)) : "(no console log)";
            throw new LabException($"Guest {guest.Name} on {host.Name} did not answer: {ex.Message}{Environment.NewLine}{tail}", ex);
        }

        var boot = Stopwatch.GetElapsedTime(clock);
        lock (_boots)
        {
            _boots[guest.Name] = boot;
        }

        LabLog.GuestUp(_logger, Name, guest.Name, host.Name, guest.Address, boot);
        return guest;
    }

    /// <summary>A client that reads the guest's state service from the edge namespace.</summary>
    public LabGuestClient CreateGuestClient(LabGuest guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        return new LabGuestClient(Edge.Namespace, guest.Address, guest.ServicePort);
    }

    /// <summary>Whether <paramref name="address"/> answers one ICMP echo from the edge within a second (busybox ping, a prerequisite anyway).</summary>
    public async Task<bool> PingFromEdgeAsync(IPAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        var result = await _runner.RunAsync(CommandLine.Of(GuestImage.BusyboxPath, "ping", "-q", "-c", "1", "-W", "1", address.ToString()).InNamespace(Edge.Namespace), cancellationToken).ConfigureAwait(false);
        return result.Succeeded;
    }

    /// <summary>The <c>virsh -c URI ARGS</c> command for a host, run from the edge namespace.</summary>
    public CommandLine Virsh(LabHost host, params IEnumerable<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(host);
        return CommandLine.Of("virsh", ["-q", "-c", host.Uri.ToString(), .. arguments]).InNamespace(Edge.Namespace);
    }

    /// <summary>Runs <c>virsh</c> against a host from the edge; throws <see cref="CommandException"/> unless it succeeds.</summary>
    public Task<CommandResult> VirshAsync(LabHost host, IEnumerable<string> arguments, CancellationToken cancellationToken = default) =>
        RunCheckedAsync(Virsh(host, arguments), cancellationToken);

    /// <summary>Runs a command inside a network namespace (for example <see cref="LabEdge.Namespace"/>); a non-zero exit is returned, not thrown.</summary>
    public Task<CommandResult> RunInNamespaceAsync(string networkNamespace, CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        Cloudlets.Core.Linux.NetworkNamespace.ValidateName(networkNamespace);
        return _runner.RunAsync(command.InNamespace(networkNamespace), cancellationToken);
    }

    /// <summary>
    /// Runs a command inside a host's network, mount and UTS namespaces (it sees the host's private
    /// /run and /etc/libvirt), entered through the host's virtlogd; a non-zero exit is returned.
    /// </summary>
    public Task<CommandResult> RunOnHostAsync(string hostName, CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var host = GetHost(hostName);
        var pid = GetProcesses(hostName).Virtlogd;
        if (!LabProcess.IsRunning(pid, "virtlogd"))
        {
            throw new LabException($"The virtlogd of {host.Name} is not running, so its namespaces cannot be entered.");
        }

        return _runner.RunAsync(CommandLine.Of("nsenter", ["--target", pid.ToString(CultureInfo.InvariantCulture), "--mount", "--uts", "--net", "--", command.Program, .. command.Arguments]), cancellationToken);
    }

    /// <summary>The pids recorded in a host's pid files (virtlogd, libvirtd, and QEMU per running domain).</summary>
    public LabHostProcesses GetProcesses(string hostName)
    {
        var host = GetHost(hostName);
        return ReadProcesses(host.Folder);
    }

    private static LabHostProcesses ReadProcesses(string hostFolder)
    {
        var qemu = new Dictionary<string, int>(StringComparer.Ordinal);
        var qemuRun = Path.Combine(hostFolder, "run", "libvirt", "qemu");
        if (Directory.Exists(qemuRun))
        {
            foreach (var file in Directory.EnumerateFiles(qemuRun, "*.pid").Where(f => Path.GetFileName(f) != "driver.pid"))
            {
                var pid = LabProcess.ReadPidFile(file);
                if (pid > 0)
                {
                    qemu[Path.GetFileNameWithoutExtension(file)] = pid;
                }
            }
        }

        return new LabHostProcesses(
            LabProcess.ReadPidFile(Path.Combine(hostFolder, "run", "virtlogd.pid")),
            LabProcess.ReadPidFile(Path.Combine(hostFolder, "run", "libvirtd.pid")),
            qemu);
    }

    /// <summary>Kills (SIGKILL) a host's libvirtd by its recorded pid; its guests keep running.</summary>
    public async Task KillLibvirtdAsync(string hostName, CancellationToken cancellationToken = default)
    {
        var pid = GetProcesses(hostName).Libvirtd;
        if (!await LabProcess.EndAsync(pid, "libvirtd", TimeSpan.FromSeconds(5), killAtOnce: true, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"libvirtd of {hostName} (pid {pid}) did not end.");
        }
    }

    /// <summary>Starts a host's libvirtd again (inside the host's namespaces) and waits until it answers.</summary>
    public async Task RestartLibvirtdAsync(string hostName, CancellationToken cancellationToken = default)
    {
        var host = GetHost(hostName);
        var processes = GetProcesses(hostName);
        if (LabProcess.IsRunning(processes.Libvirtd, "libvirtd"))
        {
            await KillLibvirtdAsync(hostName, cancellationToken).ConfigureAwait(false);
        }

        if (!LabProcess.IsRunning(processes.Virtlogd, "virtlogd"))
        {
            throw new LabException($"The virtlogd of {host.Name} is not running, so libvirtd cannot be started in its namespaces.");
        }

        var script = Path.Combine(_paths.LabFolder(Name), "lab-host.sh");
        await RunCheckedAsync(CommandLine.Of(script, "libvirtd", host.Folder, processes.Virtlogd.ToString(CultureInfo.InvariantCulture)), cancellationToken).ConfigureAwait(false);
        await WaitForLibvirtdAsync(host, _options.ReadyTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Kills (SIGKILL) the QEMU process of a domain on a host, by its recorded pid.</summary>
    public async Task KillQemuAsync(string hostName, string domainName, CancellationToken cancellationToken = default)
    {
        if (!GetProcesses(hostName).Qemu.TryGetValue(domainName, out var pid))
        {
            throw new LabException($"No QEMU pid is recorded for {domainName} on {hostName}.");
        }

        if (!await LabProcess.EndAsync(pid, "qemu-system-x86_64", TimeSpan.FromSeconds(5), killAtOnce: true, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"QEMU of {domainName} on {hostName} (pid {pid}) did not end.");
        }
    }

    /// <summary>The host where a guest is running now (asked of every libvirtd), or null when none runs it.</summary>
    public async Task<LabHost?> FindGuestHostAsync(LabGuest guest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        foreach (var host in Hosts)
        {
            var result = await _runner.RunAsync(Virsh(host, "domstate", guest.Name), cancellationToken).ConfigureAwait(false);
            if (result.Succeeded && result.StandardOutput.Trim() == "running")
            {
                return host;
            }
        }

        return null;
    }

    /// <summary>The lab's edge, hosts, and the host each guest runs on now (asked of every libvirtd).</summary>
    public async Task<LabStatus> GetStatusAsync(CancellationToken cancellationToken = default)
    {
        var guests = new List<LabGuestStatus>();
        foreach (var guest in Guests)
        {
            var host = await FindGuestHostAsync(guest, cancellationToken).ConfigureAwait(false);
            guests.Add(new LabGuestStatus(guest.Name, host?.Name, guest.Address));
        }

        return new LabStatus(Name, Edge, Hosts, guests);
    }

    /// <summary>
    /// Live-migrates a guest with <c>virsh migrate --live --p2p --persistent --undefinesource</c> and an
    /// explicit migration URI (the destination's host name does not resolve in the lab). For
    /// comparisons and tests; the library's own migration lives in Cloudlets.Libvirt.
    /// </summary>
    public Task<CommandResult> MigrateWithVirshAsync(LabGuest guest, string fromHost, string toHost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var from = GetHost(fromHost);
        var to = GetHost(toHost);
        return VirshAsync(from, ["migrate", "--live", "--p2p", "--persistent", "--undefinesource", guest.Name, to.Uri.ToString(), "--migrateuri", to.MigrationUri.ToString()], cancellationToken);
    }

    /// <summary>
    /// Tears the lab down now (what <see cref="DisposeAsync"/> does for a lab this object started,
    /// unless it keeps running) and checks that nothing is left.
    /// </summary>
    /// <exception cref="LabException">Something of the lab is still there afterwards (the message lists it).</exception>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var leftovers = await CleanupAsync(Name, _paths, _logger, leftoversExpected: false, cancellationToken).ConfigureAwait(false);
        _started = false;
        if (leftovers.Count > 0)
        {
            throw new LabException($"The lab {Name} left behind: {string.Join("; ", leftovers)}");
        }
    }

    /// <summary>The switch namespace (<c>NAME-sw</c>): bridge <c>sw0</c> with one veth port per member (<c>edge</c>, <c>h1</c>, <c>h2</c>, …).</summary>
    public string SwitchNamespace => LabNaming.SwitchNamespace(Name);

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
            await CleanupAsync(Name, _paths, _logger, leftoversExpected: false, CancellationToken.None).ConfigureAwait(false);
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

        var lab = new CloudletLab(new CloudletLabOptions { Name = name, Hosts = Math.Max(1, state.Hosts.Count), StateRoot = paths.Root, KeepRunningOnDispose = true }, logger ?? NullLogger.Instance, LocalCommandRunner.Instance);
        lab.Restore(state);
        return lab;
    }

    private void Restore(LabState state)
    {
        _transient = state.Transient;
        _owner = state.Owner;
        _ownerStartTime = state.OwnerStartTime;
        _plan = new LabAddressPlan(state.Subnet);
        _stateHosts = [.. state.Hosts];
        _hosts = [.. state.Hosts.Select(h => new LabHost(LabNaming.HostName(h.Index), h.Index, _plan.Host(h.Index), LabNaming.HostNamespace(Name, h.Index), LabNaming.HostBridge, _paths.HostFolder(Name, h.Index)))];
        _edge = new LabEdge(LabNaming.EdgeNamespace(Name), _plan.Edge);
        _guests.AddRange(state.Guests.Select(g => new LabGuest(LabNaming.GuestName(g.Index), g.Index, g.InitialHost, _plan.Guest(g.Index), _plan.GuestMac(g.Index), GuestImage.ServicePort)));
        _started = true;
    }

    /// <summary>The phase recorded in the state file of this lab (<c>starting</c>, <c>ready</c>), or null.</summary>
    public string? RecordedPhase => _paths.TryReadState(Name)?.Phase;

    /// <summary>Whether every host's libvirtd answers now (one try each).</summary>
    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default)
    {
        foreach (var host in Hosts)
        {
            if (!NetworkNamespaceExists(host.Namespace) || !(await _runner.RunAsync(Virsh(host, "version"), cancellationToken).ConfigureAwait(false)).Succeeded)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Removes everything a lab of this name may have left (processes by their recorded pids,
    /// namespaces, folders, its subnet claim), whether it was stopped cleanly or killed mid-way.
    /// Returns what could not be removed (empty when all is gone).
    /// </summary>
    public static Task<IReadOnlyList<string>> DownAsync(string name, string? stateRoot = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        LabNaming.ValidateLabName(name);
        return CleanupAsync(name, new LabPaths(stateRoot ?? LabPaths.DefaultRoot), logger ?? NullLogger.Instance, leftoversExpected: false, cancellationToken);
    }

    private static async Task<IReadOnlyList<string>> CleanupAsync(string name, LabPaths paths, ILogger logger, bool leftoversExpected, CancellationToken cancellationToken)
    {
        var folder = paths.LabFolder(name);
        var namespaces = LabNaming.AllNamespaces(name).Where(NetworkNamespaceExists).ToList();
        if (!Directory.Exists(folder) && namespaces.Count == 0 && paths.SubnetsClaimedBy(name).Count == 0)
        {
            return [];
        }

        if (leftoversExpected)
        {
            LabLog.CleaningLeftovers(logger, name);
        }

        // Processes: QEMU first, then libvirtd, then virtlogd, each by its recorded pid.
        var hostFolders = Enumerable.Range(1, LabNaming.MaxHosts).Select(i => paths.HostFolder(name, i)).Where(Directory.Exists).ToList();
        var recorded = hostFolders.Select(ReadProcesses).ToList();
        var stale = await FindDaemonsInNamespacesAsync(name, cancellationToken).ConfigureAwait(false);
        foreach (var (program, pids) in new[]
                 {
                     ("qemu-system-x86_64", recorded.SelectMany(r => r.Qemu.Values).Concat(stale.Where(s => s.Program == "qemu-system-x86_64").Select(s => s.Pid))),
                     ("libvirtd", recorded.Select(r => r.Libvirtd).Concat(stale.Where(s => s.Program == "libvirtd").Select(s => s.Pid))),
                     ("virtlogd", recorded.Select(r => r.Virtlogd).Concat(stale.Where(s => s.Program == "virtlogd").Select(s => s.Pid))),
                 })
        {
            var ending = pids.Distinct().Where(p => LabProcess.IsRunning(p, program)).ToList();
            foreach (var pid in ending)
            {
                LabLog.Ending(logger, name, program, pid);
            }

            var results = await Task.WhenAll(ending.Select(pid => LabProcess.EndAsync(pid, program, TimeSpan.FromSeconds(5), killAtOnce: program == "qemu-system-x86_64", cancellationToken))).ConfigureAwait(false);
            foreach (var (pid, ended) in ending.Zip(results))
            {
                if (!ended)
                {
                    LabLog.DidNotEnd(logger, name, program, pid);
                }
            }
        }

        foreach (var ns in namespaces)
        {
            _ = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ip", "netns", "delete", ns), cancellationToken).ConfigureAwait(false);
        }

        if (Directory.Exists(folder))
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Reported as a leftover below.
            }
        }

        foreach (var k in paths.SubnetsClaimedBy(name))
        {
            File.Delete(paths.SubnetClaim(k));
        }

        var leftovers = FindLeftovers(name, paths.Root, recorded);
        if (leftovers.Count > 0)
        {
            LabLog.Leftovers(logger, name, string.Join("; ", leftovers));
        }
        else
        {
            LabLog.TornDown(logger, name);
        }

        return leftovers;
    }

    /// <summary>
    /// What of a lab of this name exists on the machine: named network namespaces, its folder,
    /// subnet claims, mounts that mention it in any process's mount table, and live lab daemons in
    /// its namespaces. Empty when nothing is left.
    /// </summary>
    public static IReadOnlyList<string> FindLeftovers(string name, string? stateRoot = null) =>
        FindLeftovers(name, stateRoot ?? LabPaths.DefaultRoot, []);

    private static List<string> FindLeftovers(string name, string root, IReadOnlyList<LabHostProcesses> recorded)
    {
        LabNaming.ValidateLabName(name);
        var paths = new LabPaths(root);
        var leftovers = new List<string>();
        leftovers.AddRange(LabNaming.AllNamespaces(name).Where(NetworkNamespaceExists).Select(ns => "network namespace " + ns));
        if (Directory.Exists(paths.LabFolder(name)))
        {
            leftovers.Add("folder " + paths.LabFolder(name));
        }

        leftovers.AddRange(paths.SubnetsClaimedBy(name).Select(k => "subnet claim " + paths.SubnetClaim(k)));
        foreach (var r in recorded)
        {
            foreach (var (program, pid) in r.Qemu.Values.Select(p => ("qemu-system-x86_64", p)).Append(("libvirtd", r.Libvirtd)).Append(("virtlogd", r.Virtlogd)))
            {
                // A dying multi-threaded daemon has no readable exe link but is still there.
                if (LabProcess.IsRunning(pid, program) || (LabProcess.IsAlive(pid) && LabProcess.ExecutableName(pid) is null))
                {
                    leftovers.Add($"process {program} {pid}");
                }
            }
        }

        leftovers.AddRange(FindMounts(name, root).Select(m => "mount " + m));
        return leftovers;
    }

    /// <summary>Mount table lines (of any process) that belong to a lab: its host folders, or its named namespaces.</summary>
    internal static IReadOnlyList<string> FindMounts(string name, string root)
    {
        var folderMarker = "/labs/" + name + "/";
        var netnsMarker = "/netns/" + name + "-";
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var proc in EnumerateProcesses())
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{proc}/mountinfo"))
                {
                    if (line.Contains(folderMarker, StringComparison.Ordinal) || line.Contains(netnsMarker + "sw ", StringComparison.Ordinal) ||
                        line.Contains(netnsMarker + "edge ", StringComparison.Ordinal) || IsHostNetnsMount(line, netnsMarker))
                    {
                        found.Add($"pid {proc}: {line}");
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }

        _ = root;
        return [.. found];
    }

    private static bool IsHostNetnsMount(string line, string netnsMarker)
    {
        var at = line.IndexOf(netnsMarker + "h", StringComparison.Ordinal);
        if (at < 0)
        {
            return false;
        }

        var rest = line.AsSpan(at + netnsMarker.Length + 1);
        var digits = 0;
        while (digits < rest.Length && char.IsAsciiDigit(rest[digits]))
        {
            digits++;
        }

        return digits > 0 && (digits == rest.Length || rest[digits] == ' ');
    }

    private static IEnumerable<int> EnumerateProcesses() =>
        Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0);

    /// <summary>Lab daemons (QEMU, libvirtd, virtlogd) found inside the lab's host namespaces, for runs that died before writing pid files.</summary>
    private static async Task<List<(string Program, int Pid)>> FindDaemonsInNamespacesAsync(string name, CancellationToken cancellationToken)
    {
        var inodes = new HashSet<ulong>();
        foreach (var ns in LabNaming.AllNamespaces(name).Where(NetworkNamespaceExists))
        {
            var inode = await NamespaceInodeAsync(Path.Combine(Cloudlets.Core.Linux.NetworkNamespace.NamedNamespaceFolder, ns), cancellationToken).ConfigureAwait(false);
            if (inode != 0)
            {
                inodes.Add(inode);
            }
        }

        var found = new List<(string, int)>();
        if (inodes.Count == 0)
        {
            return found;
        }

        foreach (var pid in EnumerateProcesses())
        {
            var program = LabProcess.ExecutableName(pid);
            if (program is "qemu-system-x86_64" or "libvirtd" or "virtlogd" &&
                TryNetnsInode(pid, out var inode) && inodes.Contains(inode))
            {
                found.Add((program, pid));
            }
        }

        return found;
    }

    private static bool TryNetnsInode(int pid, out ulong inode)
    {
        inode = 0;
        try
        {
            // The link reads "net:[INODE]".
            var target = new FileInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/ns/net").LinkTarget;
            if (target is null || !target.StartsWith("net:[", StringComparison.Ordinal))
            {
                return false;
            }

            return ulong.TryParse(target.AsSpan(5, target.Length - 6), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The inode of the namespace a named-namespace file refers to (what /proc/PID/ns/net shows as net:[INODE]); 0 when unknown.</summary>
    private static async Task<ulong> NamespaceInodeAsync(string path, CancellationToken cancellationToken)
    {
        var result = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("stat", "-L", "-c", "%i", path), cancellationToken).ConfigureAwait(false);
        return result.Succeeded && ulong.TryParse(result.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var inode) ? inode : 0;
    }

    private static bool NetworkNamespaceExists(string ns) => Cloudlets.Core.Linux.NetworkNamespace.Exists(ns);

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
                _ = await CleanupAsync(other, _paths, _logger, leftoversExpected: true, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void SaveState(string phase)
    {
        _paths.WriteState(new LabState
        {
            Name = Name,
            Subnet = Plan.Subnet,
            Phase = phase,
            Transient = _transient,
            Owner = _owner,
            OwnerStartTime = _ownerStartTime,
            Hosts = _stateHosts,
            Guests = [.. _guests.Select(g => new LabStateGuest(g.Index, g.InitialHost))],
        });
    }

    private async Task<CommandResult> RunCheckedAsync(CommandLine command, CancellationToken cancellationToken)
    {
        LabLog.Running(_logger, Name, command);
        var result = await _runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
        return result.Succeeded ? result : throw new CommandException(result);
    }

    private InvalidOperationException NotStarted() => new($"The lab {Name} has not started (call StartAsync).");
}
