using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Guests;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Lab;

/// <summary>The validated settings of a lab (made by <see cref="CloudletLabBuilder"/>).</summary>
public sealed record CloudletLabOptions
{
    /// <summary>The lab name. The default is <c>cloudlets</c>.</summary>
    public string Name { get; init; } = "cloudlets";

    /// <summary>The number of hosts, 1–<see cref="LabNaming.MaxHosts"/>. The default is 3.</summary>
    public int Hosts { get; init; } = 3;

    /// <summary>
    /// The number of sites (edge namespaces where users are), 1–<see cref="LabNaming.MaxSites"/>. The
    /// default is 1: the edge alone, as before there were sites. See <see cref="LabNaming"/> for their addresses.
    /// </summary>
    public int Sites { get; init; } = 1;

    /// <summary>Hosts to start one guest on each during <see cref="CloudletLab.StartAsync"/>, in order. The default is none.</summary>
    public IReadOnlyList<string> GuestsOn { get; init; } = [];

    /// <summary>How the guests of <see cref="GuestsOn"/> behave (for example a dirty rate). The default is <see cref="LabGuestOptions.Default"/>.</summary>
    public LabGuestOptions GuestOptions { get; init; } = LabGuestOptions.Default;

    /// <summary>The state root. The default is <see cref="LabPaths.DefaultRoot"/>.</summary>
    public string StateRoot { get; init; } = LabPaths.DefaultRoot;

    /// <summary>The guest image cache. The default is <see cref="GuestImage.DefaultCacheFolder"/>.</summary>
    public string CacheFolder { get; init; } = GuestImage.DefaultCacheFolder;

    /// <summary>
    /// How long to wait for every libvirtd to answer. The default is 90 seconds (the first start on
    /// a machine probes QEMU's capabilities, several seconds on a busy 2-core machine).
    /// </summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>How long to wait for a guest's service to answer after <c>virsh start</c>. The default is 120 seconds.</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Whether disposing leaves the lab running (for the console sample's <c>up</c>). The default is false.</summary>
    public bool KeepRunningOnDispose { get; init; }

    /// <summary>How the hosts' libvirt daemons are reached. The default is <see cref="LabTransport.Tcp"/>.</summary>
    public LabTransport Transport { get; init; } = LabTransport.Tcp;

    /// <summary>
    /// The broker and an agent per site, started after the daemons (see <see cref="Agents.LabAgentOptions"/>). The default is
    /// none: no broker, no agents.
    /// </summary>
    public Agents.LabAgentOptions? Agents { get; init; }

    /// <summary>
    /// Called synchronously as the lab passes each phase of its start (see <see cref="LabPhases"/>),
    /// after the state file records what the phase created. For progress displays and for
    /// fault-injection tests that stop the process at a phase. The default is none.
    /// </summary>
    public Action<string>? PhaseObserver { get; init; }
}

/// <summary>The phases of <see cref="CloudletLab.StartAsync"/>, in order, as given to <see cref="CloudletLabOptions.PhaseObserver"/>.</summary>
public static class LabPhases
{
    /// <summary>The subnet is claimed and the state file written; nothing else exists yet.</summary>
    public const string Claimed = "claimed";

    /// <summary>The switch namespace exists.</summary>
    public const string Switch = "switch";

    /// <summary>The edge namespace exists and is wired to the switch.</summary>
    public const string Edge = "edge";

    /// <summary>Site S's namespace (S ≥ 2; site-1 is the edge) exists and is wired to the switch.</summary>
    public static string Site(int index) => "site-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Host N's namespace exists and is wired (its daemons are not started yet).</summary>
    public static string HostNamespace(int index) => "host-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-namespace";

    /// <summary>Host N's virtlogd and libvirtd were started (they are not recorded yet).</summary>
    public static string HostDaemons(int index) => "host-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-daemons";

    /// <summary>Every libvirtd answers and every daemon is recorded (the configured guests are not started yet).</summary>
    public const string DaemonsReady = "daemons-ready";

    /// <summary>With agents: the broker runs, is recorded and accepts connections (no agent yet).</summary>
    public const string Broker = "broker";

    /// <summary>With agents: every site's agent runs and is recorded.</summary>
    public const string Agents = "agents";

    /// <summary>The lab is up: every configured guest answers. Only now does the state file say <c>ready</c>.</summary>
    public const string Ready = "ready";

    /// <summary>Guest I is defined on its host (not started).</summary>
    public static string GuestDefined(int index) => "guest-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-defined";

    /// <summary>Guest I's QEMU runs and is recorded (the guest has not answered yet).</summary>
    public static string GuestStarted(int index) => "guest-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-started";

    /// <summary>Guest I answers from the edge.</summary>
    public static string GuestAnswering(int index) => "guest-" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-answering";
}

/// <summary>
/// Builds a <see cref="CloudletLab"/>: <c>new CloudletLabBuilder().WithName("t1").WithHosts(3).WithGuestOn("cloudlet-1").Build()</c>.
/// Everything is validated by <see cref="Build"/>, before anything is created. A builder builds once.
/// </summary>
public sealed class CloudletLabBuilder
{
    private CloudletLabOptions _options = new();
    private ILogger _logger = NullLogger.Instance;
    private ICommandRunner _runner = LocalCommandRunner.Instance;
    private bool _built;

    /// <summary>Sets the lab name (1–24 lowercase letters, digits, '-'; it prefixes every namespace).</summary>
    public CloudletLabBuilder WithName(string name) => Set(_options with { Name = name });

    /// <summary>Sets the host count (1–<see cref="LabNaming.MaxHosts"/>).</summary>
    public CloudletLabBuilder WithHosts(int count) => Set(_options with { Hosts = count });

    /// <summary>Starts a guest on this host (<c>cloudlet-N</c>) during start; call again for more guests.</summary>
    public CloudletLabBuilder WithGuestOn(string hostName) => Set(_options with { GuestsOn = [.. _options.GuestsOn, hostName] });

    /// <summary>Sets <see cref="CloudletLabOptions.GuestOptions"/> (checked by <see cref="Build"/>).</summary>
    public CloudletLabBuilder WithGuestOptions(LabGuestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Set(_options with { GuestOptions = options });
    }

    /// <summary>Sets the state root folder.</summary>
    public CloudletLabBuilder WithStateRoot(string folder) => Set(_options with { StateRoot = folder });

    /// <summary>Sets the guest image cache folder (not under /run).</summary>
    public CloudletLabBuilder WithCacheFolder(string folder) => Set(_options with { CacheFolder = folder });

    /// <summary>Sets how long to wait for the daemons.</summary>
    public CloudletLabBuilder WithReadyTimeout(TimeSpan timeout) => Set(_options with { ReadyTimeout = timeout });

    /// <summary>Sets how long to wait for a guest to boot.</summary>
    public CloudletLabBuilder WithBootTimeout(TimeSpan timeout) => Set(_options with { BootTimeout = timeout });

    /// <summary>Leaves the lab running on dispose (tear it down with <see cref="CloudletLab.DownAsync(string, string?, ILogger?, CancellationToken)"/>).</summary>
    public CloudletLabBuilder WithKeepRunningOnDispose(bool keepRunning = true) => Set(_options with { KeepRunningOnDispose = keepRunning });

    /// <summary>Sets <see cref="CloudletLabOptions.Sites"/> (1–<see cref="LabNaming.MaxSites"/>; checked by <see cref="Build"/>).</summary>
    public CloudletLabBuilder WithSites(int sites) => Set(_options with { Sites = sites });

    /// <summary>Starts a broker and an agent per site (see <see cref="CloudletLabOptions.Agents"/>; checked by <see cref="Build"/>).</summary>
    public CloudletLabBuilder WithAgents(Agents.LabAgentOptions agents)
    {
        ArgumentNullException.ThrowIfNull(agents);
        return Set(_options with { Agents = agents });
    }

    /// <summary>Sets <see cref="CloudletLabOptions.Transport"/>.</summary>
    public CloudletLabBuilder WithTransport(LabTransport transport) => Set(_options with { Transport = transport });

    /// <summary>Sets the phase observer (see <see cref="CloudletLabOptions.PhaseObserver"/>).</summary>
    public CloudletLabBuilder WithPhaseObserver(Action<string> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return Set(_options with { PhaseObserver = observer });
    }

    /// <summary>Sets the logger.</summary>
    public CloudletLabBuilder WithLogger(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        _logger = logger;
        return this;
    }

    /// <summary>Sets the command runner (the default runs local processes).</summary>
    public CloudletLabBuilder WithCommandRunner(ICommandRunner runner)
    {
        ArgumentNullException.ThrowIfNull(runner);
        _runner = runner;
        return this;
    }

    /// <summary>Validates the settings and returns the lab (not started yet).</summary>
    /// <exception cref="LabConfigurationException">A setting is invalid.</exception>
    public CloudletLab Build()
    {
        if (_built)
        {
            throw new InvalidOperationException("This builder has built its lab already; use a new builder.");
        }

        Validate(_options);
        _built = true;
        return new CloudletLab(_options, _logger, _runner);
    }

    /// <summary>Throws <see cref="LabConfigurationException"/> when the options are invalid.</summary>
    public static void Validate(CloudletLabOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        LabNaming.ValidateLabName(options.Name);
        if (options.Hosts is < 1 or > LabNaming.MaxHosts)
        {
            throw new LabConfigurationException($"A lab has 1-{LabNaming.MaxHosts} hosts, not {options.Hosts}.");
        }

        if (options.Sites is < 1 or > LabNaming.MaxSites)
        {
            throw new LabConfigurationException($"A lab has 1-{LabNaming.MaxSites} sites, not {options.Sites}.");
        }

        if (!Enum.IsDefined(options.Transport))
        {
            throw new LabConfigurationException($"The transport {options.Transport} is not one of: {string.Join(", ", Enum.GetNames<LabTransport>())}.");
        }

        if (options.GuestOptions.Validate() is { Count: > 0 } guestErrors)
        {
            throw new LabConfigurationException("Invalid guest options: " + string.Join(" ", guestErrors));
        }

        if (options.GuestsOn.Count > LabNaming.MaxGuests)
        {
            throw new LabConfigurationException($"A lab has at most {LabNaming.MaxGuests} guests, not {options.GuestsOn.Count}.");
        }

        foreach (var host in options.GuestsOn)
        {
            if (!LabNaming.TryParseHostName(host, out var index) || index > options.Hosts)
            {
                throw new LabConfigurationException($"A guest cannot start on '{host}': the lab's hosts are cloudlet-1 to cloudlet-{options.Hosts}.");
            }
        }

        if (string.IsNullOrWhiteSpace(options.StateRoot) || !Path.IsPathFullyQualified(options.StateRoot) ||
            options.StateRoot.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-')) || options.StateRoot.Contains("..", StringComparison.Ordinal))
        {
            throw new LabConfigurationException($"The state root '{options.StateRoot}' must be an absolute path of letters, digits, '/', '.', '_', '-'.");
        }

        if (string.IsNullOrWhiteSpace(options.CacheFolder) || !Path.IsPathFullyQualified(options.CacheFolder) ||
            options.CacheFolder.TrimEnd('/') == "/run" || options.CacheFolder.StartsWith("/run/", StringComparison.Ordinal))
        {
            throw new LabConfigurationException($"The cache folder '{options.CacheFolder}' must be an absolute path outside /run (each host has its own /run).");
        }

        if (options.ReadyTimeout <= TimeSpan.Zero || options.BootTimeout <= TimeSpan.Zero)
        {
            throw new LabConfigurationException("Timeouts must be positive.");
        }

        if (options.Agents?.Validate() is { Count: > 0 } agentErrors)
        {
            throw new LabConfigurationException(string.Join(" ", agentErrors));
        }
    }

    private CloudletLabBuilder Set(CloudletLabOptions options)
    {
        if (_built)
        {
            throw new InvalidOperationException("This builder has built its lab already; use a new builder.");
        }

        _options = options;
        return this;
    }
}
