using System.Globalization;

namespace Cloudlets.Lab.Agents;

/// <summary>
/// The lab's broker and agents (<see cref="CloudletLabBuilder.WithAgents"/>, <c>cloudlets-lab up --agents</c>): a
/// mosquitto broker inside the edge namespace, and one <c>cloudlets-agent</c> per site, inside that site's
/// namespace, probing every host of the lab (ICMP) and publishing to the broker as the site's vantage point.
/// </summary>
public sealed record LabAgentOptions
{
    /// <summary>The shortest probe period.</summary>
    public static readonly TimeSpan MinPeriod = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest probe period.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The built <c>cloudlets-agent.dll</c> (an absolute path), run by <see cref="DotnetHost"/>. Required. The lab
    /// tool passes the one built next to it; tests pass the one built next to them.
    /// </summary>
    public required string AgentAssembly { get; init; }

    /// <summary>
    /// The <c>dotnet</c> host that runs the agent, an absolute path. The default is none: the host running this
    /// process when it is <c>dotnet</c>, otherwise <c>dotnet</c> found on the lab's search path.
    /// </summary>
    public string? DotnetHost { get; init; }

    /// <summary>How often each agent probes each host and publishes a batch. Range [100 ms, 60 s]. The default is 1 second.</summary>
    public TimeSpan Period { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a probe waits for its reply. Range [1 ms, 60 s]. The default is 1 second.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The broker's TCP port on the edge's address. Range [1, 65535]. The default is 1883.</summary>
    public int BrokerPort { get; init; } = 1883;

    /// <summary>Every problem with these options (empty when they are valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(AgentAssembly) || !Path.IsPathFullyQualified(AgentAssembly) || !AgentAssembly.EndsWith(".dll", StringComparison.Ordinal))
        {
            errors.Add($"The agent assembly '{AgentAssembly}' must be the absolute path of the built cloudlets-agent.dll.");
        }
        else if (!File.Exists(AgentAssembly))
        {
            errors.Add($"The agent assembly '{AgentAssembly}' does not exist (build samples/Cloudlets.Samples.Agent).");
        }

        if (DotnetHost is not null && (!Path.IsPathFullyQualified(DotnetHost) || !File.Exists(DotnetHost)))
        {
            errors.Add($"The dotnet host '{DotnetHost}' must be the absolute path of an existing file.");
        }

        if (Period < MinPeriod || Period > MaxPeriod)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"The agents' period is {Period.TotalMilliseconds} ms; it must be within [100, 60000] ms."));
        }

        if (ProbeTimeout < TimeSpan.FromMilliseconds(1) || ProbeTimeout > TimeSpan.FromSeconds(60))
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"The agents' probe timeout is {ProbeTimeout.TotalMilliseconds} ms; it must be within [1, 60000] ms."));
        }

        if (BrokerPort is < 1 or > 65535)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"The broker port is {BrokerPort}; it must be within [1, 65535]."));
        }

        return errors;
    }
}
