using System.Globalization;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tc;

/// <summary>
/// The record of which owner holds which tc handle slot, kept on the shaped host (through the same
/// command runner as <c>tc</c>, so it works over SSH) as directories <c>DIR/HANDLE/OWNER</c>.
/// <c>mkdir DIR/HANDLE</c> is the atomic claim: it fails when the slot is taken, so two owners can never
/// hold one handle, even when they race. A qdisc counts as an owner's only when its handle is in the
/// slot recorded for that owner; anything else in the range is someone else's and is never touched.
/// </summary>
internal static class TcHandleRecord
{
    /// <summary>The default record directory (in <c>/run</c>: a reboot clears it together with the qdiscs).</summary>
    public const string DefaultDirectory = "/run/cloudlets-netem/tc-handles";

    /// <summary>An owned record (<see cref="KernelObject.Location"/> = handle in hex, text = owner).</summary>
    public const string OwnedKind = "record";

    /// <summary>Another owner's record (foreign).</summary>
    public const string ForeignKind = "record-foreign";

    /// <summary>A major handle seen in the kernel that is not the owner's (foreign: never allocated).</summary>
    public const string HandleInUseKind = "handle-in-use";

    public static CommandLine List(string directory) => CommandLine.Of("find", directory, "-mindepth", "2", "-maxdepth", "2", "-type", "d");

    /// <summary>The records in the output of <see cref="List"/>: (handle, owner) pairs; a missing directory is no records.</summary>
    /// <exception cref="ShapingException">The record could not be read (the directory exists but find failed).</exception>
    public static List<(int Handle, string Owner)> Parse(string directory, CommandResult result)
    {
        var records = new List<(int, string)>();
        if (!result.Succeeded)
        {
            if (result.StandardError.Contains("No such file", StringComparison.Ordinal))
            {
                return records;
            }

            throw new ShapingException($"Cannot read the tc handle record {directory}: {result.StandardError.Trim()}", new CommandException(result));
        }

        var prefix = directory.TrimEnd('/') + "/";
        foreach (var raw in result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!raw.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var parts = raw[prefix.Length..].Split('/');
            if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var handle))
            {
                records.Add((handle, parts[1]));
            }
        }

        return records;
    }

    /// <summary>The commands that claim <paramref name="handle"/> for <paramref name="owner"/> (the second <c>mkdir</c> fails if it is taken).</summary>
    public static IEnumerable<CommandLine> Claim(string directory, int handle, string owner)
    {
        var slot = Path.Combine(directory, OwnerNames.Hex(handle));
        yield return CommandLine.Of("mkdir", "-p", directory);
        yield return CommandLine.Of("mkdir", slot);
        yield return CommandLine.Of("mkdir", Path.Combine(slot, owner));
    }

    /// <summary>The commands that give <paramref name="handle"/> back.</summary>
    public static IEnumerable<CommandLine> Release(string directory, int handle, string owner)
    {
        var slot = Path.Combine(directory, OwnerNames.Hex(handle));
        yield return CommandLine.Of("rmdir", Path.Combine(slot, owner), slot);
    }

    public static bool IsRecordCommand(CommandLine command) => command.Program is "mkdir" or "rmdir" or "find";
}
