using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Cloudlets.Lab.Agents;
using Cloudlets.Lab.Guests;
using Cloudlets.Lab.Ownership;
using Cloudlets.Lab.Processes;
using Cloudlets.Probing.Commands;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Lab;

// The lab's broker and agents (CloudletLabOptions.Agents): mosquitto inside the edge namespace, one
// cloudlets-agent per site inside the site's namespace. Each is started detached (its own session, its output
// in a log file), proven by its program and namespace, and recorded as the lab's own (host 0: it belongs to
// no host), so the teardown ends exactly these; and the faults the tests inject (an agent killed, the broker
// restarted).
public sealed partial class CloudletLab
{
    private const string BrokerRole = "mosquitto";
    private const string AgentRolePrefix = "agent ";
    private LabBroker? _broker;
    private LabAgentOptions? _agentOptions;
    private int _brokerPort;

    /// <summary>The lab's broker, or null when it was started without agents (see <see cref="CloudletLabOptions.Agents"/>).</summary>
    public LabBroker? Broker => _broker;

    /// <summary>The agents the lab recorded that are alive now, by site.</summary>
    public IReadOnlyList<LabAgent> Agents
    {
        get
        {
            lock (_stateLock)
            {
                return [.. _processes.Where(p => p.Role.StartsWith(AgentRolePrefix, StringComparison.Ordinal) && p.Identity.IsAlive())
                    .Select(p => new LabAgent(p.Role[AgentRolePrefix.Length..], p.Pid))
                    .OrderBy(a => a.Site, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>
    /// A TCP socket made inside the edge namespace, where the broker listens: give it to the MQTT client of a
    /// controller that runs outside the lab (<c>MqttBrokerOptions.SocketFactory = lab.CreateBrokerSocket</c>).
    /// </summary>
    public Socket CreateBrokerSocket(AddressFamily addressFamily) =>
        NetworkNamespace.Run(Edge.Namespace, () => new Socket(addressFamily, SocketType.Stream, ProtocolType.Tcp));

    private async Task StartBrokerAndAgentsAsync(LabAgentOptions options, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(_paths.LabFolder(Name), "broker");
        Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        MosquittoFiles.Write(folder, Edge.Address, options.BrokerPort, _sites.Select(s => s.Name), _hosts);
        _brokerPort = options.BrokerPort;
        _agentOptions = options with { DotnetHost = options.DotnetHost ?? DefaultDotnetHost() };
        _broker = NewBroker(options.BrokerPort);
        if (_sites.Count > 1)
        {
            // The broker answers the later sites on-link, as the hosts do.
            await RunCheckedAsync(CommandLine.Of("ip", "-n", Edge.Namespace, "route", "add", Plan.SitesNetwork, "dev", LabNaming.EdgeInterface), cancellationToken).ConfigureAwait(false);
        }

        SaveState();
        await StartBrokerAsync(cancellationToken).ConfigureAwait(false);
        EnterPhase(LabPhases.Broker);
        foreach (var site in _sites)
        {
            await StartAgentAsync(site.Name, cancellationToken).ConfigureAwait(false);
        }

        EnterPhase(LabPhases.Agents);
    }

    /// <summary>The state file's record of the broker and the agents' settings (null without agents).</summary>
    private LabStateBroker? BrokerState() => _agentOptions is { } o
        ? new LabStateBroker(_brokerPort, o.AgentAssembly, o.DotnetHost, (int)o.Period.TotalMilliseconds, (int)Math.Ceiling(o.ProbeTimeout.TotalMilliseconds))
        : null;

    private void RestoreBroker(LabStateBroker? state)
    {
        if (state is null)
        {
            return;
        }

        _brokerPort = state.Port;
        _agentOptions = new LabAgentOptions
        {
            AgentAssembly = state.AgentAssembly,
            DotnetHost = state.DotnetHost,
            Period = TimeSpan.FromMilliseconds(state.PeriodMs),
            ProbeTimeout = TimeSpan.FromMilliseconds(state.ProbeTimeoutMs),
            BrokerPort = state.Port,
        };
        _broker = NewBroker(state.Port);
    }

    private LabBroker NewBroker(int port)
    {
        var folder = Path.Combine(_paths.LabFolder(Name), "broker");
        return new LabBroker(
            new Uri(string.Create(CultureInfo.InvariantCulture, $"mqtt://{Edge.Address}:{port}")), Edge.Namespace, LabBroker.ControllerUser,
            MosquittoFiles.PasswordFile(folder, LabBroker.ControllerUser), folder);
    }

    /// <summary>Starts the broker (when it is not running as recorded) and waits until it accepts connections on <see cref="LabBroker.Url"/>.</summary>
    /// <exception cref="InvalidOperationException">The lab has no broker.</exception>
    /// <exception cref="LabException">mosquitto did not start or does not listen.</exception>
    public async Task StartBrokerAsync(CancellationToken cancellationToken = default)
    {
        var broker = _broker ?? throw NoBroker();
        if (RecordedLabProcess(BrokerRole) is not null)
        {
            return;
        }

        var mosquitto = LabPrerequisites.FindProgram("mosquitto") ?? throw new LabPrerequisiteException("The lab's broker needs mosquitto (apt-get install mosquitto).");
        await SpawnAsync(BrokerRole, Edge.Namespace, broker.Log, mosquitto, ["-c", MosquittoFiles.ConfigFile(broker.Folder)], cancellationToken).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        while (!await BrokerAcceptsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(10) || RecordedLabProcess(BrokerRole) is null)
            {
                throw new LabException($"The lab's mosquitto does not accept connections on {broker.Url}: {Tail(broker.Log)}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the broker (SIGTERM, then SIGKILL after 5 s); the agents keep running and reconnect when it is back.</summary>
    /// <exception cref="InvalidOperationException">The lab has no broker.</exception>
    /// <exception cref="LabException">It did not end.</exception>
    public async Task StopBrokerAsync(CancellationToken cancellationToken = default)
    {
        _ = _broker ?? throw NoBroker();
        if (RecordedLabProcess(BrokerRole) is { } mosquitto && !await LabProcess.EndAsync(mosquitto, TimeSpan.FromSeconds(5), killAtOnce: false, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"The lab's mosquitto (pid {mosquitto.Pid}) did not end.");
        }
    }

    /// <summary>Stops the broker and starts it again (a fresh broker: no session or subscription survives).</summary>
    public async Task RestartBrokerAsync(CancellationToken cancellationToken = default)
    {
        await StopBrokerAsync(cancellationToken).ConfigureAwait(false);
        await StartBrokerAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts the agent of a site (when it is not running as recorded): <c>dotnet cloudlets-agent.dll</c> inside the
    /// site's namespace, probing every host by ICMP and publishing as the site's vantage point with the site's credentials.
    /// </summary>
    /// <exception cref="InvalidOperationException">The lab has no broker.</exception>
    /// <exception cref="LabException">The agent did not start.</exception>
    public async Task StartAgentAsync(string siteName, CancellationToken cancellationToken = default)
    {
        var broker = _broker ?? throw NoBroker();
        var options = _agentOptions ?? throw NoBroker();
        var site = GetSite(siteName);
        if (RecordedLabProcess(AgentRolePrefix + site.Name) is not null)
        {
            return;
        }

        var dotnet = options.DotnetHost ?? DefaultDotnetHost() ?? throw new LabPrerequisiteException("The lab's agents need the dotnet host: none runs this process and none is on the lab's search path.");
        string[] arguments =
        [
            options.AgentAssembly,
            "--vantage-point", site.Name,
            "--broker", broker.Url.ToString().TrimEnd('/'),
            "--targets", MosquittoFiles.TargetsFile(broker.Folder),
            "--username", site.Name,
            "--password-file", broker.CredentialsFileFor(site.Name),
            "--period", ((int)options.Period.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            "--timeout", ((int)Math.Ceiling(options.ProbeTimeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture),
        ];
        await SpawnAsync(AgentRolePrefix + site.Name, site.Namespace, broker.AgentLogFor(site.Name), dotnet, arguments, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Kills (SIGKILL) the agent of a site, the one the lab recorded: its samples stop at once.</summary>
    /// <exception cref="LabException">No agent of the lab runs at that site, or it did not end.</exception>
    public async Task KillAgentAsync(string siteName, CancellationToken cancellationToken = default)
    {
        var site = GetSite(siteName);
        var agent = RecordedLabProcess(AgentRolePrefix + site.Name) ?? throw new LabException($"No agent of the lab runs at {site.Name}.");
        if (!await LabProcess.EndAsync(agent, TimeSpan.FromSeconds(5), killAtOnce: true, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"The agent of {site.Name} (pid {agent.Pid}) did not end.");
        }
    }

    /// <summary>
    /// Runs <paramref name="program"/> detached inside <paramref name="ns"/> (its output appended to <paramref name="log"/>),
    /// waits until the pid runs that program inside that namespace, and records it as the lab's own.
    /// </summary>
    private async Task SpawnAsync(string role, string ns, string log, string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var script = Path.Combine(_paths.LabFolder(Name), "lab-spawn.sh");
        if (!File.Exists(script))
        {
            await File.WriteAllTextAsync(script, GuestImage.ReadAsset("lab-spawn.sh"), cancellationToken).ConfigureAwait(false);
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var setsid = LabPrerequisites.FindProgram("setsid") ?? throw new LabPrerequisiteException("The lab needs setsid (util-linux).");
        var ip = LabPrerequisites.FindProgram("ip") ?? throw new LabPrerequisiteException("The lab needs ip (iproute2).");
        var expected = LabOwnership.RealPath(program) ?? throw new LabPrerequisiteException($"{program} does not exist.");
        var inode = NamespaceInodeOf(ns);
        if (inode == 0)
        {
            throw new LabException($"The namespace {ns} is not the one lab {Name} created.");
        }

        var result = await RunCheckedAsync(CommandLine.Of(script, [log, setsid, ip, "netns", "exec", ns, program, .. arguments]), cancellationToken).ConfigureAwait(false);
        if (!int.TryParse(result.StandardOutput.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            throw new LabException($"lab-spawn.sh printed no pid for {role}: '{result.StandardOutput.Trim()}'.");
        }

        // setsid and ip netns exec exec in turn: the pid runs the program once they are done.
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(10))
        {
            if (ProcessIdentity.Capture(pid) is { } identity && identity.Executable == expected && LabProcess.NetNamespaceInode(pid) == inode)
            {
                Record(LabOwnedProcess.From(0, role, identity));
                return;
            }

            if (!LabProcess.IsAlive(pid))
            {
                break;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        throw new LabException($"The lab's {role} (pid {pid}) did not start as {expected} in {ns}: {Tail(log)}");
    }

    /// <summary>A lab-wide process (host 0) the lab recorded in <paramref name="role"/>, still alive as recorded; null otherwise.</summary>
    private ProcessIdentity? RecordedLabProcess(string role)
    {
        LabOwnedProcess? recorded;
        lock (_stateLock)
        {
            recorded = _processes.LastOrDefault(p => p.Host == 0 && p.Role == role);
        }

        return recorded?.Identity is { } identity && identity.IsAlive() ? identity : null;
    }

    private async Task<bool> BrokerAcceptsAsync(CancellationToken cancellationToken)
    {
        using var socket = CreateBrokerSocket(AddressFamily.InterNetwork);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(Edge.Address, _brokerPort), timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    /// <summary>The dotnet host running this process, or the one on the lab's search path; null when there is none.</summary>
    private static string? DefaultDotnetHost() =>
        Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : LabPrerequisites.FindProgram("dotnet");

    private static string Tail(string log) =>
        File.Exists(log) ? string.Join(" | ", File.ReadLines(log).TakeLast(5)) : "(no log)";

    private InvalidOperationException NoBroker() => new($"The lab {Name} has no broker and agents (build it with WithAgents).");
}
