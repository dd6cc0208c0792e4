using System.Globalization;
using System.Text.Json;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab;

public sealed partial class CloudletLab
{
    /// <summary>The largest host-to-host cap, in MiB/s (the lab's veth paths carry a few GiB/s).</summary>
    public const int MaxHostLinkMiBps = 100_000;

    // Our own root qdisc on each host's uplink; a root qdisc with another kind or handle is somebody else's.
    private const string CapHandle = "1:";
    private const string CapClass = "1:1";

    // What a veth has when nobody configured it: these may be replaced.
    private static readonly string[] DefaultRootQdiscs = ["noqueue", "pfifo_fast", "fq_codel", "pfifo", "mq"];

    /// <summary>
    /// Caps what each host sends to the other hosts at <paramref name="mibps"/> MiB/s, or removes the cap when
    /// <see langword="null"/>: live migrations (and the daemons' own calls to each other) cross a link that slow,
    /// while every other flow (the guests' traffic to the sites, clients' calls from the edge) keeps its speed.
    /// Unlike a migration's own bandwidth limit, which QEMU lifts for the final stop-and-copy, the link holds
    /// the final copy to the cap too, as a slow real path would.
    /// </summary>
    /// <remarks>
    /// An HTB root qdisc on each host's uplink (inside its namespace): one class at the rate, and a u32 filter
    /// per other host's address sending it there; packets no filter matches leave unshaped. It lives in the
    /// lab's namespaces and goes with them at teardown. A root qdisc the lab did not put there (other than the
    /// kernel's default) is left alone: the call fails with <see cref="LabException"/> before changing anything.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mibps"/> is not 1 to <see cref="MaxHostLinkMiBps"/>.</exception>
    /// <exception cref="LabException">A host's uplink has a root qdisc the lab did not create, or <c>tc</c> failed.</exception>
    public async Task CapHostLinksAsync(int? mibps, CancellationToken cancellationToken = default)
    {
        if (mibps is { } rate)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(rate, 1, nameof(mibps));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(rate, MaxHostLinkMiBps, nameof(mibps));
        }

        var hosts = Hosts;

        // Every uplink is checked before any is changed: somebody else's qdisc stops the call with nothing changed.
        var ours = new bool[hosts.Count];
        for (var i = 0; i < hosts.Count; i++)
        {
            ours[i] = await HasOwnCapAsync(hosts[i], cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < hosts.Count; i++)
        {
            var host = hosts[i];
            if (ours[i])
            {
                await RunCheckedAsync(Tc(host, "qdisc", "del", "dev", LabNaming.HostUplink, "root"), cancellationToken).ConfigureAwait(false);
            }

            if (mibps is not { } capMiBps)
            {
                continue;
            }

            var bits = (capMiBps * 1024L * 1024L * 8L).ToString(CultureInfo.InvariantCulture) + "bit";
            await RunCheckedAsync(Tc(host, "qdisc", "add", "dev", LabNaming.HostUplink, "root", "handle", CapHandle, "htb"), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(Tc(host, "class", "add", "dev", LabNaming.HostUplink, "parent", CapHandle, "classid", CapClass, "htb", "rate", bits, "ceil", bits), cancellationToken).ConfigureAwait(false);
            foreach (var other in hosts.Where(h => h.Index != host.Index))
            {
                await RunCheckedAsync(
                    Tc(host, "filter", "add", "dev", LabNaming.HostUplink, "parent", CapHandle, "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst", other.Address + "/32", "flowid", CapClass),
                    cancellationToken).ConfigureAwait(false);
            }
        }

        LabLog.HostLinksCapped(_logger, Name, mibps);
    }

    private static CommandLine Tc(LabHost host, params string[] arguments) => CommandLine.Of("tc", ["-n", host.Namespace, .. arguments]);

    /// <summary>Whether the uplink's root qdisc is the lab's cap (true) or the kernel's default (false); throws for anybody else's.</summary>
    private async Task<bool> HasOwnCapAsync(LabHost host, CancellationToken cancellationToken)
    {
        var shown = await RunCheckedAsync(Tc(host, "-j", "qdisc", "show", "dev", LabNaming.HostUplink), cancellationToken).ConfigureAwait(false);
        using var json = JsonDocument.Parse(shown.StandardOutput.Length == 0 ? "[]" : shown.StandardOutput);
        foreach (var qdisc in json.RootElement.EnumerateArray())
        {
            if (!qdisc.TryGetProperty("root", out var root) || !root.GetBoolean())
            {
                continue;
            }

            var kind = qdisc.GetProperty("kind").GetString() ?? string.Empty;
            var handle = qdisc.TryGetProperty("handle", out var h) ? h.GetString() : null;
            if (kind == "htb" && handle == CapHandle)
            {
                return true;
            }

            if (!DefaultRootQdiscs.Contains(kind, StringComparer.Ordinal))
            {
                throw new LabException($"Cannot cap {host.Name}'s links: its uplink {LabNaming.HostUplink} has a root qdisc '{kind}' ({handle}) the lab did not create; nothing was changed.");
            }
        }

        return false;
    }
}
