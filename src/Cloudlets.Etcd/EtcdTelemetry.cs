using System.Diagnostics.Metrics;

namespace Cloudlets.Etcd;

/// <summary>The package's one <see cref="Meter"/>, named <c>Cloudlets.Etcd</c>.</summary>
public static class EtcdTelemetry
{
    /// <summary>The meter's name.</summary>
    public const string Name = "Cloudlets.Etcd";

    /// <summary>Tag keys.</summary>
    public static class Tags
    {
        /// <summary>The election (region).</summary>
        public const string Election = "cloudlets.election";
        /// <summary>The role after a transition (<c>leader</c>, <c>follower</c>).</summary>
        public const string Role = "cloudlets.election.role";
        /// <summary>Why the role changed.</summary>
        public const string Reason = "cloudlets.election.reason";
        /// <summary>The result of a fencing check (<c>true</c>, <c>false</c>).</summary>
        public const string Confirmed = "cloudlets.election.confirmed";
    }

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new(Name, typeof(EtcdTelemetry).Assembly.GetName().Version?.ToString());

    internal static Counter<long> Transitions { get; } = Meter.CreateCounter<long>(
        "cloudlets.election.transitions", "{transition}", "Role changes of election candidates (to leader or follower), per reason.");

    internal static Counter<long> Confirmations { get; } = Meter.CreateCounter<long>(
        "cloudlets.election.confirmations", "{check}", "Fencing checks made before leader-only actions, per result.");
}
