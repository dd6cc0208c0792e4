using System.Globalization;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.NfQueue;

/// <summary>Parses <c>/proc/net/netfilter/nfnetlink_queue</c> (one line per bound queue, per namespace).</summary>
internal static class QueueProcFile
{
    /// <summary>The file (its content depends on the reader's network namespace).</summary>
    public const string Path = "/proc/net/netfilter/nfnetlink_queue";

    /// <summary>
    /// Lines look like <c>queue_num peer_portid queue_total copy_mode copy_range queue_dropped
    /// user_dropped id_sequence 1</c>; lines that do not are skipped.
    /// </summary>
    public static IReadOnlyList<QueueHealth> Parse(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var result = new List<QueueHealth>();
        foreach (var line in content.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8 ||
                !int.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var queue) ||
                !uint.TryParse(f[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var portId) ||
                !long.TryParse(f[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var total) ||
                !long.TryParse(f[5], NumberStyles.Integer, CultureInfo.InvariantCulture, out var dropped) ||
                !long.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out var userDropped) ||
                !long.TryParse(f[7], NumberStyles.Integer, CultureInfo.InvariantCulture, out var idSequence))
            {
                continue;
            }

            result.Add(new QueueHealth(queue, portId, total, dropped, userDropped, idSequence));
        }

        return result;
    }
}
