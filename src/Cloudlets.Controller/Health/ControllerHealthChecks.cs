using System.Globalization;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Hosting;
using Cloudlets.Core.Hypervisors;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Cloudlets.Controller.Health;

/// <summary>Healthy while the pipeline runs; unhealthy before it started, after it stopped, or when the controller failed.</summary>
public sealed class PipelineRunningHealthCheck(ControllerState state) : IHealthCheck
{
    /// <summary>The check's registered name.</summary>
    public const string Name = "pipeline";

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var phase = state.Phase;
        var data = new Dictionary<string, object> { ["phase"] = phase.ToString(), ["mode"] = state.Mode.ToString() };
        return Task.FromResult(phase switch
        {
            ControllerPhase.Running => HealthCheckResult.Healthy($"The pipeline runs in {state.Mode} mode.", data),
            ControllerPhase.Failed => HealthCheckResult.Unhealthy("The controller failed: " + state.Failure, data: data),
            _ => HealthCheckResult.Unhealthy($"The pipeline is not running ({phase}).", data: data),
        });
    }
}

/// <summary>Healthy when every host's management connection is up; degraded when some are; unhealthy when none is.</summary>
public sealed class HostsConnectedHealthCheck(ControllerState state) : IHealthCheck
{
    /// <summary>The check's registered name.</summary>
    public const string Name = "hosts";

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var hosts = state.Hosts;
        var data = hosts.ToDictionary(h => h.Name, h => (object)h.ConnectionState.ToString(), StringComparer.Ordinal);
        var up = hosts.Count(h => h.ConnectionState == HostConnectionState.Connected);
        var down = string.Join(", ", hosts.Where(h => h.ConnectionState != HostConnectionState.Connected).Select(h => h.Name));
        var text = string.Create(CultureInfo.InvariantCulture, $"{up} of {hosts.Count} hosts connected");
        return Task.FromResult(
            hosts.Count > 0 && up == hosts.Count ? HealthCheckResult.Healthy(text + ".", data)
            : up > 0 ? HealthCheckResult.Degraded($"{text}; not connected: {down}.", data: data)
            : HealthCheckResult.Unhealthy(hosts.Count == 0 ? "No host is connected yet." : $"{text}; not connected: {down}.", data: data));
    }
}

/// <summary>
/// Healthy when every vantage point's samples of every host are fresher than
/// <see cref="HealthOptions.MaxSampleAge"/>; degraded when some are; unhealthy when none is. A lost
/// probe is still a sample (the measurement runs); a pair that sent nothing for that long is stale.
/// </summary>
public sealed class SamplesFreshHealthCheck(ControllerState state, IOptions<ControllerOptions> options, TimeProvider time) : IHealthCheck
{
    /// <summary>The check's registered name.</summary>
    public const string Name = "samples";

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var last = state.LastSamples.ToDictionary(s => (s.VantagePoint, s.Target));

        // The pairs expected: the controller's own vantage points × hosts, and every (vantage point, host) heard over MQTT.
        var expected = new HashSet<(string, string)>(
            o.VantagePoints.SelectMany(v => o.Hosts.Select(h => (v.Name, ControllerOptions.HostTarget(h.Name)))));
        foreach (var s in last.Keys.Where(k => k.Target.StartsWith("host:", StringComparison.Ordinal)))
        {
            expected.Add(s);
        }

        var stale = new List<string>();
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (vp, target) in expected.Order())
        {
            var key = vp + "->" + target[5..];
            if (last.TryGetValue((vp, target), out var s) && now - s.ReceivedAt <= o.Health.MaxSampleAge)
            {
                data[key] = Math.Round((now - s.ReceivedAt).TotalSeconds, 1);
            }
            else
            {
                stale.Add(key);
                data[key] = s is null ? "never" : Math.Round((now - s.ReceivedAt).TotalSeconds, 1);
            }
        }

        var fresh = expected.Count - stale.Count;
        var text = string.Create(CultureInfo.InvariantCulture, $"{fresh} of {expected.Count} vantage point/host pairs have samples fresher than {o.Health.MaxSampleAge.TotalSeconds:0.#} s");
        return Task.FromResult(
            expected.Count > 0 && stale.Count == 0 ? HealthCheckResult.Healthy(text + ".", data)
            : fresh > 0 ? HealthCheckResult.Degraded($"{text}; stale: {string.Join(", ", stale)}.", data: data)
            : HealthCheckResult.Unhealthy(expected.Count == 0 ? "No samples have arrived yet." : $"{text}; stale: {string.Join(", ", stale)}.", data: data));
    }
}

/// <summary>
/// The controller's role in its region's election, in the check's data (<c>role</c> leader or follower,
/// <c>region</c>, <c>candidate</c>, <c>leaseId</c>, <c>term</c>, <c>leader</c>, <c>since</c>, <c>reason</c>).
/// Healthy as leader or follower (a follower is warm and advisory, as it should be); degraded while etcd
/// cannot be reached (this controller cannot lead then). Without an election: healthy, role <c>alone</c>.
/// </summary>
public sealed class ElectionHealthCheck(ControllerState state, IOptions<ControllerOptions> options) : IHealthCheck
{
    /// <summary>The check's registered name.</summary>
    public const string Name = "election";

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (options.Value.Election is null)
        {
            return Task.FromResult(HealthCheckResult.Healthy("No election is configured: this controller acts alone.", new Dictionary<string, object> { ["role"] = "alone" }));
        }

        if (state.Leadership is not { } l)
        {
            return Task.FromResult(HealthCheckResult.Healthy(
                $"Not campaigning yet in region '{options.Value.Election.Region}'.",
                new Dictionary<string, object> { ["role"] = "follower", ["region"] = options.Value.Election.Region }));
        }

        var data = new Dictionary<string, object>
        {
            ["role"] = l.IsLeader ? "leader" : "follower",
            ["region"] = l.Election,
            ["candidate"] = l.CandidateId,
            ["since"] = l.Since.ToString("O", CultureInfo.InvariantCulture),
            ["reason"] = l.Reason.ToString(),
        };
        if (l.LeaseId is { } lease)
        {
            data["leaseId"] = lease;
        }

        if (l.Revision is { } term)
        {
            data["term"] = term;
        }

        if (l.LeaderId is { } leader)
        {
            data["leader"] = leader;
        }

        return Task.FromResult(
            l.IsLeader ? HealthCheckResult.Healthy($"This controller leads region '{l.Election}' (lease {l.LeaseId}).", data)
            : l.Reason == Core.Election.LeadershipReason.StoreUnavailable ? HealthCheckResult.Degraded($"etcd cannot be reached; this controller cannot lead region '{l.Election}': {l.Detail}", data: data)
            : HealthCheckResult.Healthy($"This controller follows in region '{l.Election}'" + (l.LeaderId is null ? "." : $"; '{l.LeaderId}' leads."), data));
    }
}
