using System.Globalization;
using System.Runtime.Versioning;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Agents;

/// <summary>
/// The broker and agents of a lab that its state may not record: a run killed between starting one and recording
/// it. A process counts only when it lives in a namespace the lab proved its own and one of its arguments is a file
/// in the lab's broker folder (its configuration, or its password file), which only this lab writes.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class LabSpawnedProcesses
{
    public static List<ProcessIdentity> FindIn(IReadOnlySet<ulong> namespaceInodes, string brokerFolder)
    {
        var found = new List<ProcessIdentity>();
        if (namespaceInodes.Count == 0)
        {
            return found;
        }

        var prefix = brokerFolder.TrimEnd('/') + "/";
        foreach (var pid in LabProcess.EnumerateProcesses())
        {
            if (namespaceInodes.Contains(LabProcess.NetNamespaceInode(pid)) && Arguments(pid).Any(a => a.StartsWith(prefix, StringComparison.Ordinal)) &&
                ProcessIdentity.Capture(pid) is { } identity)
            {
                found.Add(identity);
            }
        }

        return found;
    }

    private static string[] Arguments(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
