using System.Diagnostics;
using System.Net;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab;

// The lab's guests: start, find, read, migrate with virsh.
public sealed partial class CloudletLab
{
    /// <summary>
    /// Defines and starts a new guest on <paramref name="hostName"/> through <c>virsh</c> (from the
    /// edge) and waits until its service answers from the edge. The guest image is built and cached
    /// on first use.
    /// </summary>
    public Task<LabGuest> StartGuestAsync(string hostName, CancellationToken cancellationToken = default) =>
        StartGuestAsync(hostName, LabGuestOptions.Default, cancellationToken);

    /// <summary>
    /// As <see cref="StartGuestAsync(string, CancellationToken)"/>, with <paramref name="options"/> (for
    /// example a guest that dirties memory at a chosen rate, to make a migration converge slowly or not at all).
    /// </summary>
    /// <exception cref="LabConfigurationException">Invalid options: nothing was created.</exception>
    public async Task<LabGuest> StartGuestAsync(string hostName, LabGuestOptions options, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        var host = GetHost(hostName);
        LabGuest guest;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_guests.Count >= LabNaming.MaxGuests)
            {
                throw new LabConfigurationException($"A lab has at most {LabNaming.MaxGuests} guests.");
            }

            if (options.NetemHost)
            {
                _netemImage ??= await GuestImage.EnsureAsync(_options.CacheFolder, _runner, netemHost: true, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _image ??= await GuestImage.EnsureAsync(_options.CacheFolder, _runner, cancellationToken).ConfigureAwait(false);
            }

            var index = _guests.Count + 1;
            guest = new LabGuest(LabNaming.GuestName(index), index, host.Name, Plan.Guest(index), Plan.GuestMac(index), GuestImage.ServicePort) { NetemHost = options.NetemHost };
            _guests.Add(guest);
            SaveState();
        }
        finally
        {
            _gate.Release();
        }

        var image = options.NetemHost ? await NetemGuestImageAsync(guest, host, _netemImage!, cancellationToken).ConfigureAwait(false) : _image!;
        var xmlFile = Path.Combine(_paths.LabFolder(Name), guest.Name + ".xml");
        await File.WriteAllTextAsync(xmlFile, GuestDomain.Xml(guest.Name, image, LabAddressPlan.WithPrefix(guest.Address), guest.Mac, host.Bridge, guest.ServicePort, _sites.Count > 1 ? Plan.SitesNetwork : null, options.DirtyRateMiBps, acpi: options.NetemHost), cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.GetTimestamp();
        await VirshAsync(host, ["define", xmlFile], cancellationToken).ConfigureAwait(false);
        EnterPhase(LabPhases.GuestDefined(guest.Index));
        await VirshAsync(host, ["start", guest.Name], cancellationToken).ConfigureAwait(false);
        var qemuPid = LabProcess.ReadPidFile(Path.Combine(host.Folder, "run", "libvirt", "qemu", guest.Name + ".pid"));
        if (ProveHostProcess(host, qemuPid, "qemu-system-x86_64") is { } qemu)
        {
            Record(LabOwnedProcess.From(host.Index, "qemu " + guest.Name, qemu));
        }

        EnterPhase(LabPhases.GuestStarted(guest.Index));
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
        EnterPhase(LabPhases.GuestAnswering(guest.Index));
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

    /// <summary>The hosts where a guest is running now (asked of every libvirtd): exactly one when all is well.</summary>
    public async Task<IReadOnlyList<LabHost>> FindGuestCopiesAsync(LabGuest guest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var running = new List<LabHost>();
        foreach (var host in Hosts)
        {
            var result = await _runner.RunAsync(Virsh(host, "domstate", guest.Name), cancellationToken).ConfigureAwait(false);
            if (result.Succeeded && result.StandardOutput.Trim() == "running")
            {
                running.Add(host);
            }
        }

        return running;
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

        return new LabStatus(Name, Edge, Hosts, guests) { Sites = Sites, Broker = Broker, Agents = Broker is null ? [] : Agents, NetemGuests = NetemGuests };
    }

    /// <summary>
    /// Live-migrates a guest with <c>virsh migrate --live --p2p --persistent --undefinesource</c> and an
    /// explicit migration URI (the destination's host name does not resolve in the lab). For
    /// comparisons and tests; the library's own migration lives in Cloudlets.Libvirt.
    /// </summary>
    public Task<CommandResult> MigrateWithVirshAsync(LabGuest guest, string fromHost, string toHost, CancellationToken cancellationToken = default) =>
        MigrateWithVirshAsync(guest, fromHost, toHost, bandwidthMiBPerSecond: 0, cancellationToken);

    /// <summary>
    /// As <see cref="MigrateWithVirshAsync(LabGuest, string, string, CancellationToken)"/>, with the
    /// migration's bandwidth limited to <paramref name="bandwidthMiBPerSecond"/> MiB/s (0: unlimited),
    /// for example to keep a migration running long enough to inject a fault into it.
    /// </summary>
    public Task<CommandResult> MigrateWithVirshAsync(LabGuest guest, string fromHost, string toHost, int bandwidthMiBPerSecond, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentOutOfRangeException.ThrowIfNegative(bandwidthMiBPerSecond);
        var from = GetHost(fromHost);
        var to = GetHost(toHost);
        if (from == to)
        {
            throw new LabConfigurationException($"{guest.Name} cannot migrate from {fromHost} to itself.");
        }

        IEnumerable<string> bandwidth = bandwidthMiBPerSecond > 0 ? ["--bandwidth", bandwidthMiBPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture)] : [];
        return VirshAsync(from, ["migrate", "--live", "--p2p", "--persistent", "--undefinesource", .. bandwidth, guest.Name, to.Uri.ToString(), "--migrateuri", to.MigrationUri.ToString()], cancellationToken);
    }
}
