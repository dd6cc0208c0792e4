using System.Runtime.Versioning;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Ownership;

/// <summary>Finds what exists on the machine under a lab's names (a read-only check; it never removes anything).</summary>
[SupportedOSPlatform("linux")]
internal static class LabLeftovers
{
    /// <summary>
    /// Named network namespaces with the lab's names (its own or not), its folder, subnet claims,
    /// mounts that mention its folder or namespaces in any process's mount table, and live lab
    /// daemons in the namespaces it recorded.
    /// </summary>
    public static List<string> Find(string name, LabPaths paths)
    {
        LabNaming.ValidateLabName(name);
        var leftovers = new List<string>();
        var names = LabNaming.AllNamespaces(name).Where(ns => LabOwnership.NamespaceInode(ns) != 0).ToList();
        leftovers.AddRange(names.Select(ns => "network namespace " + ns));
        if (Directory.Exists(paths.LabFolder(name)))
        {
            leftovers.Add("folder " + paths.LabFolder(name));
        }

        leftovers.AddRange(paths.SubnetsClaimedBy(name).Select(k => "subnet claim " + paths.SubnetClaim(k)));
        if (paths.TryReadState(name) is { } state)
        {
            leftovers.AddRange(state.Processes.Where(p => p.Identity.Exists()).Select(p => "process " + p.Identity));
        }

        leftovers.AddRange(FindMounts(name, LabNaming.AllNamespaces(name)).Select(m => "mount " + m));
        return leftovers;
    }

    /// <summary>Mount table lines (of any process) that belong to a lab: its host folders, or the named namespaces listed.</summary>
    public static IReadOnlyList<string> FindMounts(string name, IEnumerable<string> namespaceNames)
    {
        var folderMarker = "/labs/" + name + "/";
        var netnsMarkers = namespaceNames.Select(ns => LabOwnership.NamedNamespaceFolder + "/" + ns + " ").ToList();
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var pid in LabProcess.EnumerateProcesses())
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{pid}/mountinfo"))
                {
                    if (line.Contains(folderMarker, StringComparison.Ordinal) || netnsMarkers.Any(m => line.Contains(m, StringComparison.Ordinal)))
                    {
                        found.Add($"pid {pid}: {line}");
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }

        return [.. found];
    }
}
