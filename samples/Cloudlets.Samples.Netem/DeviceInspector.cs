using System.Text.Json;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Samples.Netem;

/// <summary>A device, namespace or foreign object that makes the command line's input wrong (exit 2, nothing applied).</summary>
internal sealed class BadInputException(string message) : Exception(message);

/// <summary>No backend can shape the host: what the factory found (exit 3, nothing applied).</summary>
internal sealed class CannotShapeException(string message, Exception innerException) : Exception(message, innerException);

/// <summary>
/// Looks at the device before anything changes, through the same runner as the shaper (so also over SSH):
/// whether the namespace and the device exist, and whether something that is not cloudlets-netem's is in the
/// way (a root qdisc, an iptables mangle rule on the device). Reads only.
/// </summary>
internal sealed class DeviceInspector(ICommandRunner runner, string? destination = null)
{
    /// <summary>Throws <see cref="BadInputException"/> unless the namespace and the device exist.</summary>
    public async Task RequireDeviceAsync(string? networkNamespace, string device, CancellationToken cancellationToken)
    {
        if (networkNamespace is not null)
        {
            var list = await runner.RunAsync(CommandLine.Of("ip", "-j", "netns", "list"), cancellationToken);
            if (!list.Succeeded || !NamespaceNames(list.StandardOutput).Contains(networkNamespace, StringComparer.Ordinal))
            {
                throw new BadInputException($"the network namespace '{networkNamespace}' does not exist{Where()}");
            }
        }

        var link = await runner.RunAsync(CommandLine.Of("ip", "-j", "link", "show", "dev", device).InNamespace(networkNamespace), cancellationToken);
        if (!link.Succeeded)
        {
            throw new BadInputException($"the device '{device}' does not exist{In(networkNamespace)}{Where()}: {link.StandardError.Trim()}");
        }
    }

    /// <summary>
    /// What on the device is not cloudlets-netem's own: a root qdisc with a handle (the kernel's default root qdiscs
    /// have none) outside the owner's tc handle (the tc backend checks its own; this is for the NFQUEUE backend),
    /// and mangle rules of another owner or program that match the device or send every packet to NFQUEUE.
    /// </summary>
    public async Task<IReadOnlyList<string>> ForeignOnDeviceAsync(string? networkNamespace, string device, string owner, bool checkQdisc, CancellationToken cancellationToken)
    {
        var found = new List<string>();
        if (checkQdisc)
        {
            var qdiscs = await runner.RunAsync(CommandLine.Of("tc", "-j", "qdisc", "show", "dev", device).InNamespace(networkNamespace), cancellationToken);
            if (qdiscs.Succeeded && !string.IsNullOrWhiteSpace(qdiscs.StandardOutput))
            {
                using var doc = JsonDocument.Parse(qdiscs.StandardOutput);
                foreach (var q in doc.RootElement.EnumerateArray())
                {
                    var root = q.TryGetProperty("root", out var r) && r.ValueKind == JsonValueKind.True;
                    var handle = q.TryGetProperty("handle", out var h) ? h.GetString() : null;
                    var kind = q.TryGetProperty("kind", out var k) ? k.GetString() : null;
                    if (root && handle is not null && handle != "0:")
                    {
                        found.Add($"root qdisc {kind} handle {handle} on {device}");
                    }
                }
            }
        }

        var chains = new[] { "NETEM_" + owner + "_OUT", "NETEM_" + owner + "_IN" };
        foreach (var save in new[] { "iptables-save", "ip6tables-save" })
        {
            var dump = await runner.RunAsync(CommandLine.Of(save, "-t", "mangle").InNamespace(networkNamespace), cancellationToken);
            if (!dump.Succeeded)
            {
                continue;   // no ip6tables here: nothing of it is in the way
            }

            foreach (var line in dump.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("-A ", StringComparison.Ordinal)))
            {
                var tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var chain = tokens[1];
                var target = ValueOf(tokens, "-j");
                if (chains.Contains(chain, StringComparer.Ordinal) || (target is not null && chains.Contains(target, StringComparer.Ordinal)))
                {
                    continue;   // the owner's own chains and the jumps into them
                }

                var onDevice = ValueOf(tokens, "-o") == device || ValueOf(tokens, "--physdev-out") == device;
                var queuesAll = target == "NFQUEUE" && ValueOf(tokens, "-o") is null && ValueOf(tokens, "--physdev-out") is null;
                if (onDevice || queuesAll)
                {
                    found.Add($"{save[..^5]} mangle rule '{line}'");
                }
            }
        }

        return found;
    }

    private static string? ValueOf(string[] tokens, string option)
    {
        var i = Array.IndexOf(tokens, option);
        return i >= 0 && i + 1 < tokens.Length ? tokens[i + 1] : null;
    }

    private static List<string> NamespaceNames(string json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return [];
        }

        using var doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.EnumerateArray().Select(e => e.TryGetProperty("name", out var n) ? n.GetString() : null).OfType<string>()];
    }

    private static string In(string? ns) => ns is null ? "" : $" in network namespace '{ns}'";

    private string Where() => destination is null ? "" : " on " + destination;
}
