using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Ownership;

/// <summary>
/// A network namespace the lab created, as recorded in its state file. The lab records the name
/// before <c>ip netns add</c> (having checked that the name was free) and the namespace's inode
/// right after, so a namespace of the same name made by anybody else is never taken for its own.
/// </summary>
/// <param name="Name">The namespace name (<c>NAME-sw</c>, <c>NAME-edge</c>, <c>NAME-hN</c>).</param>
/// <param name="Inode">
/// Its inode (what <c>/proc/PID/ns/net</c> shows as <c>net:[INODE]</c>); 0 while the creation is only
/// announced (the owner was killed between announcing it and recording it).
/// </param>
public sealed record LabOwnedNamespace(string Name, ulong Inode);

/// <summary>A process the lab started (a daemon, or a guest's QEMU), as recorded in its state file.</summary>
/// <param name="Host">The host index N it belongs to.</param>
/// <param name="Role"><c>virtlogd</c>, <c>libvirtd</c> or <c>qemu guest-I</c>.</param>
/// <param name="Pid">Its pid.</param>
/// <param name="StartTime">Its start time (field 22 of <c>/proc/PID/stat</c>).</param>
/// <param name="Executable">The absolute path of its program.</param>
[SupportedOSPlatform("linux")]
public sealed record LabOwnedProcess(int Host, string Role, int Pid, ulong StartTime, string Executable)
{
    /// <summary>The process's identity.</summary>
    public ProcessIdentity Identity => new(Pid, StartTime, Executable);

    /// <summary>Records a live process.</summary>
    internal static LabOwnedProcess From(int host, string role, ProcessIdentity identity) => new(host, role, identity.Pid, identity.StartTime, identity.Executable);
}

/// <summary>Reads the kernel's view of what the lab owns: namespace inodes and the lab's programs.</summary>
[SupportedOSPlatform("linux")]
internal static partial class LabOwnership
{
    /// <summary>The folder of named network namespaces.</summary>
    public const string NamedNamespaceFolder = "/run/netns";

    /// <summary>
    /// The programs whose processes the lab starts (QEMU first: the teardown order; then the SSH server of an
    /// SSH lab, with its session processes, so nothing new connects while libvirtd ends).
    /// </summary>
    public static readonly IReadOnlyList<string> DaemonPrograms = ["qemu-system-x86_64", "sshd", "libvirtd", "virtlogd"];

    /// <summary>
    /// The inode of the named network namespace <paramref name="name"/> (stat(2) of its file, which
    /// is bind-mounted from the namespace: the number <c>/proc/PID/ns/net</c> shows as
    /// <c>net:[INODE]</c>); 0 when there is none.
    /// </summary>
    public static ulong NamespaceInode(string name) => FileInode(Path.Combine(NamedNamespaceFolder, name));

    /// <summary>stat(2)'s st_ino of a path (links followed); 0 when it does not exist.</summary>
    public static unsafe ulong FileInode(string path)
    {
        // struct stat begins with st_dev then st_ino, both 64-bit, on x86_64 and on the generic layout (arm64).
        var buffer = stackalloc byte[256];
        return stat(path, buffer) == 0 ? BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(buffer + 8, 8)) : 0;
    }

    /// <summary>The canonical absolute path of a lab program (symbolic links resolved, as /proc/PID/exe shows it), or null when it is not installed.</summary>
    public static string? ProgramPath(string program) =>
        LabPrerequisites.FindProgram(program) is { } found ? RealPath(found) : null;

    /// <summary>realpath(3): the canonical path, or null.</summary>
    public static string? RealPath(string path)
    {
        var resolved = realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>
    /// The live processes of the lab's programs inside the given namespaces (by inode): what a run
    /// killed before recording its daemons left. A process counts only when it runs one of the
    /// lab's programs by its canonical path and lives in a namespace the lab proved its own.
    /// </summary>
    public static List<ProcessIdentity> FindDaemonsIn(IReadOnlySet<ulong> namespaceInodes)
    {
        var found = new List<ProcessIdentity>();
        if (namespaceInodes.Count == 0)
        {
            return found;
        }

        var programs = DaemonPrograms.Select(ProgramPath).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var pid in LabProcess.EnumerateProcesses())
        {
            if (LabProcess.ExecutablePath(pid) is { } exe && programs.Contains(exe) && namespaceInodes.Contains(LabProcess.NetNamespaceInode(pid)) &&
                ProcessIdentity.Capture(pid) is { } identity && identity.Executable == exe)
            {
                found.Add(identity);
            }
        }

        return found;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int stat(string path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr realpath(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void free(IntPtr pointer);
}
