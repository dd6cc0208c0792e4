using System.Diagnostics;
using System.Globalization;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab;

// The lab's topology: the switch, the edge and the hosts' namespaces, and the hosts' daemons, each
// recorded in the state file as the lab's own as soon as it exists.
public sealed partial class CloudletLab
{
    private async Task CreateAsync(CancellationToken cancellationToken)
    {
        var subnet = _paths.ClaimSubnet(Name);
        _plan = new LabAddressPlan(subnet);
        LabLog.Starting(_logger, Name, _options.Hosts, subnet);
        _stateHosts = [.. Enumerable.Range(1, _options.Hosts).Select(i => new LabStateHost(i, Guid.NewGuid().ToString()))];
        _hosts = [.. _stateHosts.Select(h => NewHost(h.Index))];
        _edge = new LabEdge(LabNaming.EdgeNamespace(Name), _plan.Edge);
        _sites = [.. Enumerable.Range(1, _options.Sites).Select(NewSite)];
        _started = true;
        _transient = !_options.KeepRunningOnDispose;
        _owner = Environment.ProcessId;
        _ownerStartTime = LabProcess.StartTime(_owner);
        EnterPhase(LabPhases.Claimed, "starting");

        var script = Path.Combine(_paths.LabFolder(Name), "lab-host.sh");
        await File.WriteAllTextAsync(script, GuestImage.ReadAsset("lab-host.sh"), cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        // The switch and the edge.
        var sw = LabNaming.SwitchNamespace(Name);
        await CreateNamespaceAsync(sw, cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "add", LabNaming.SwitchBridge, "type", "bridge"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", LabNaming.SwitchBridge, "up"), cancellationToken).ConfigureAwait(false);
        EnterPhase(LabPhases.Switch);
        foreach (var site in _sites)
        {
            await CreateSiteAsync(site, cancellationToken).ConfigureAwait(false);
            EnterPhase(site.Index == 1 ? LabPhases.Edge : LabPhases.Site(site.Index));
        }

        if (LabSasl.UsesTls(_options.Transport))
        {
            LabPki.Create(_paths, Name, _hosts, DateTimeOffset.UtcNow);
            if (_options.Transport == LabTransport.TlsSasl)
            {
                await CreateSaslCredentialsAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        else if (_options.Transport == LabTransport.Ssh)
        {
            await CreateSshCredentialsAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var (host, state) in _hosts.Zip(_stateHosts))
        {
            await CreateNamespaceAsync(host.Namespace, cancellationToken).ConfigureAwait(false);
            await AttachToSwitchAsync(LabNaming.SwitchPortForHost(host.Index), host.Namespace, LabNaming.HostUplink, cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "add", host.Bridge, "address", Plan.HostBridgeMac(host.Index), "type", "bridge"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", LabNaming.HostUplink, "master", host.Bridge, "up"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "addr", "add", LabAddressPlan.WithPrefix(host.Address), "dev", host.Bridge), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", host.Bridge, "up"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
            if (_sites.Count > 1)
            {
                // The sites after the first have their own subnets on the same switch: reached on-link, no router.
                await RunCheckedAsync(CommandLine.Of("ip", "-n", host.Namespace, "route", "add", _plan.SitesNetwork, "dev", host.Bridge), cancellationToken).ConfigureAwait(false);
            }

            LabHostConfiguration.Write(host, state);
            EnterPhase(LabPhases.HostNamespace(host.Index));
            await RunCheckedAsync(
                CommandLine.Of("unshare", "--mount", "--uts", "--propagation", "private", "--", script, "start", host.Folder, host.Name).InNamespace(host.Namespace),
                cancellationToken).ConfigureAwait(false);
            EnterPhase(LabPhases.HostDaemons(host.Index));
        }

        await Task.WhenAll(_hosts.Select(h => WaitForLibvirtdAsync(h, _options.ReadyTimeout, cancellationToken))).ConfigureAwait(false);
        foreach (var host in _hosts)
        {
            RecordDaemon(host, "virtlogd");
            RecordDaemon(host, "libvirtd");
            if (host.Transport == LabTransport.Ssh)
            {
                // libvirtd answered through this sshd (the URI is an SSH one), so its pid file is written.
                RecordDaemon(host, "sshd");
            }
        }

        EnterPhase(LabPhases.DaemonsReady);
    }

    /// <summary>
    /// A site: its namespace on its switch port and its address. The first is the edge, on the hosts' /24; each
    /// later one has its own /28 and an on-link route to the hosts' /24.
    /// </summary>
    private async Task CreateSiteAsync(LabSite site, CancellationToken cancellationToken)
    {
        await CreateNamespaceAsync(site.Namespace, cancellationToken).ConfigureAwait(false);
        await AttachToSwitchAsync(site.SwitchPort, site.Namespace, LabNaming.EdgeInterface, cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", site.Namespace, "addr", "add", Plan.SiteWithPrefix(site.Index), "dev", LabNaming.EdgeInterface), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", site.Namespace, "link", "set", LabNaming.EdgeInterface, "up"), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", site.Namespace, "link", "set", "lo", "up"), cancellationToken).ConfigureAwait(false);
        if (site.Index > 1)
        {
            await RunCheckedAsync(CommandLine.Of("ip", "-n", site.Namespace, "route", "add", Plan.HostsNetwork, "dev", LabNaming.EdgeInterface), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Creates a named network namespace as the lab's own: the name must be free; it is announced in
    /// the state file before <c>ip netns add</c> and its inode recorded right after.
    /// </summary>
    private async Task CreateNamespaceAsync(string ns, CancellationToken cancellationToken)
    {
        if (LabOwnership.NamespaceInode(ns) != 0)
        {
            throw new LabConflictException($"The network namespace {ns} exists and was not created by lab {Name}.");
        }

        lock (_stateLock)
        {
            _namespaces.Add(new LabOwnedNamespace(ns, 0));
        }

        SaveState();
        try
        {
            await RunCheckedAsync(CommandLine.Of("ip", "netns", "add", ns), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Somebody else's namespace may have taken the name meanwhile: it is not the lab's.
            lock (_stateLock)
            {
                _namespaces.RemoveAll(n => n.Name == ns);
            }

            SaveState();
            throw;
        }

        var inode = LabOwnership.NamespaceInode(ns);
        lock (_stateLock)
        {
            _namespaces.RemoveAll(n => n.Name == ns);
            _namespaces.Add(new LabOwnedNamespace(ns, inode));
        }

        SaveState();
    }

    /// <summary>The recorded inode of one of the lab's namespaces, when the namespace of that name is still that one; 0 otherwise.</summary>
    private ulong NamespaceInodeOf(string ns)
    {
        LabOwnedNamespace? recorded;
        lock (_stateLock)
        {
            recorded = _namespaces.FirstOrDefault(n => n.Name == ns);
        }

        return recorded is { Inode: not 0 } && LabOwnership.NamespaceInode(ns) == recorded.Inode ? recorded.Inode : 0;
    }

    private async Task AttachToSwitchAsync(string port, string memberNamespace, string memberInterface, CancellationToken cancellationToken)
    {
        var sw = LabNaming.SwitchNamespace(Name);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", memberInterface, "netns", memberNamespace), cancellationToken).ConfigureAwait(false);
        await RunCheckedAsync(CommandLine.Of("ip", "-n", sw, "link", "set", port, "master", LabNaming.SwitchBridge, "up"), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records a host daemon from its pid file, once it is proven the lab's (see <see cref="ProveHostProcess"/>).</summary>
    private void RecordDaemon(LabHost host, string program)
    {
        var pid = LabProcess.ReadPidFile(Path.Combine(host.Folder, "run", program + ".pid"));
        var identity = ProveHostProcess(host, pid, program)
            ?? throw new LabException($"The {program} of {host.Name} (pid file: {pid}) is not a {program} inside the lab's namespace {host.Namespace}.");
        Record(LabOwnedProcess.From(host.Index, program, identity));
    }

    /// <summary>
    /// The identity of <paramref name="pid"/> when it is proven to be a lab process of the host: it runs
    /// the lab's <paramref name="program"/> by its canonical path and lives in the host's network
    /// namespace, the one the lab created. Null otherwise (gone, reused, another program, elsewhere).
    /// </summary>
    private ProcessIdentity? ProveHostProcess(LabHost host, int pid, string program)
    {
        var inode = NamespaceInodeOf(host.Namespace);
        var identity = ProcessIdentity.Capture(pid);
        return identity is not null && inode != 0 && identity.Executable == LabOwnership.ProgramPath(program) && LabProcess.NetNamespaceInode(pid) == inode &&
               identity.IsAlive()
            ? identity
            : null;
    }

    /// <summary>A host daemon the lab recorded, still alive as recorded; null when it is gone (or its pid now belongs to another process).</summary>
    private ProcessIdentity? RecordedDaemon(LabHost host, string role)
    {
        LabOwnedProcess? recorded;
        lock (_stateLock)
        {
            recorded = _processes.LastOrDefault(p => p.Host == host.Index && p.Role == role);
        }

        return recorded?.Identity is { } identity && identity.IsAlive() ? identity : null;
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
        throw new LabException(string.Create(CultureInfo.InvariantCulture, $"libvirtd of {host.Name} did not answer on {host.Uri} within {within.TotalSeconds:0} s: {last?.StandardError.Trim()} {tail}").Trim());
    }
}
