using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Processes;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Lab.Ownership;

/// <summary>What a teardown could not remove, and what it found with the lab's names but left alone because the lab did not create it.</summary>
/// <param name="Leftovers">The lab's own objects still there (empty when all is gone).</param>
/// <param name="LeftAlone">Objects with the lab's names that are not the lab's (never touched).</param>
public sealed record LabTeardownReport(IReadOnlyList<string> Leftovers, IReadOnlyList<string> LeftAlone);

/// <summary>
/// Removes exactly what a lab recorded as its own and nothing else: the namespaces whose inode it
/// recorded, the processes whose identity (pid, start time, program) it recorded, and the lab
/// daemons living inside those namespaces (a run killed before recording them); then its folder
/// and subnet claim. The iptables rules, qdiscs and NFQUEUE bindings of its shaping live inside its
/// switch namespace and go with it; the bind mounts of its hosts live in the hosts' private mount
/// namespaces and go with their last process.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class LabTeardown
{
    /// <summary>Namespaces of the lab (existing now) split into the lab's own (with their current inode) and foreign ones.</summary>
    public static (List<LabOwnedNamespace> Owned, List<string> Foreign) ClassifyNamespaces(string name, LabState? state)
    {
        var owned = new List<LabOwnedNamespace>();
        var foreign = new List<string>();
        foreach (var ns in LabNaming.AllNamespaces(name))
        {
            var current = LabOwnership.NamespaceInode(ns);
            if (current == 0)
            {
                continue;
            }

            var recorded = state?.Namespaces.FirstOrDefault(n => n.Name == ns);
            // An announced creation (inode 0) was made when the name was free, by the lab's owner.
            if (recorded is not null && (recorded.Inode == 0 || recorded.Inode == current))
            {
                owned.Add(new LabOwnedNamespace(ns, current));
            }
            else
            {
                foreign.Add(ns);
            }
        }

        return (owned, foreign);
    }

    /// <summary>Tears down what the lab of <paramref name="name"/> owns (see the class remarks).</summary>
    public static async Task<LabTeardownReport> RunAsync(string name, LabPaths paths, ILogger logger, bool leftoversExpected, CancellationToken cancellationToken)
    {
        var state = paths.TryReadState(name);
        var folder = paths.LabFolder(name);
        var (owned, foreign) = ClassifyNamespaces(name, state);
        var leftAlone = foreign.Select(ns => $"network namespace {ns} (not created by lab {name})").ToList();
        foreach (var item in leftAlone)
        {
            LabLog.LeftAlone(logger, name, item);
        }

        if (!Directory.Exists(folder) && owned.Count == 0 && paths.SubnetsClaimedBy(name).Count == 0)
        {
            return new LabTeardownReport([], leftAlone);
        }

        if (leftoversExpected)
        {
            LabLog.CleaningLeftovers(logger, name);
        }

        var inodes = owned.Select(n => n.Inode).ToHashSet();
        var processes = (state?.Processes.Select(p => p.Identity).Where(p => p.IsAlive()) ?? [])
            .Concat(LabOwnership.FindDaemonsIn(inodes))
            .Concat(Agents.LabSpawnedProcesses.FindIn(inodes, Path.Combine(folder, "broker")))
            .DistinctBy(p => (p.Pid, p.StartTime))
            .ToList();
        // QEMU first (its libvirtd would otherwise try to shut it down cleanly), then libvirtd, virtlogd, the rest.
        foreach (var group in processes.GroupBy(p => Path.GetFileName(p.Executable)).OrderBy(g => TeardownOrder(g.Key)))
        {
            var ending = group.ToList();
            foreach (var process in ending)
            {
                LabLog.Ending(logger, name, group.Key, process.Pid);
            }

            var killAtOnce = group.Key == "qemu-system-x86_64";
            var results = await Task.WhenAll(ending.Select(p => LabProcess.EndAsync(p, TimeSpan.FromSeconds(5), killAtOnce, cancellationToken))).ConfigureAwait(false);
            foreach (var (process, ended) in ending.Zip(results))
            {
                if (!ended)
                {
                    LabLog.DidNotEnd(logger, name, group.Key, process.Pid);
                }
            }
        }

        foreach (var ns in owned)
        {
            // Checked again right before: the name must still be the namespace the lab made.
            if (LabOwnership.NamespaceInode(ns.Name) == ns.Inode)
            {
                _ = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("ip", "netns", "delete", ns.Name), cancellationToken).ConfigureAwait(false);
            }
        }

        if (Directory.Exists(folder))
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Reported as a leftover below.
            }
        }

        foreach (var k in paths.SubnetsClaimedBy(name))
        {
            File.Delete(paths.SubnetClaim(k));
        }

        var leftovers = new List<string>();
        leftovers.AddRange(owned.Where(n => LabOwnership.NamespaceInode(n.Name) == n.Inode).Select(n => "network namespace " + n.Name));
        if (Directory.Exists(folder))
        {
            leftovers.Add("folder " + folder);
        }

        leftovers.AddRange(paths.SubnetsClaimedBy(name).Select(k => "subnet claim " + paths.SubnetClaim(k)));
        leftovers.AddRange(processes.Where(p => p.Exists()).Select(p => "process " + p));
        leftovers.AddRange(LabLeftovers.FindMounts(name, owned.Select(n => n.Name)).Select(m => "mount " + m));
        if (leftovers.Count > 0)
        {
            LabLog.Leftovers(logger, name, string.Join("; ", leftovers));
        }
        else
        {
            LabLog.TornDown(logger, name);
        }

        return new LabTeardownReport(leftovers, leftAlone);
    }

    private static int TeardownOrder(string program)
    {
        var index = LabOwnership.DaemonPrograms.ToList().IndexOf(program);
        return index < 0 ? LabOwnership.DaemonPrograms.Count : index;
    }
}
