using System.Diagnostics;
using System.Globalization;
using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>
/// Decoys that are not the lab's but look like it: a network namespace with the lab's naming, a
/// process in it whose program is called <c>libvirtd</c> (a copy of sleep), an iptables chain and
/// rule in it, a qdisc on its loopback, and an iptables chain in the root namespace. A snapshot of
/// each is taken when made; <see cref="Untouched"/> lists what changed since (empty when nothing).
/// Dispose removes them (only them: they are this test's own).
/// </summary>
internal sealed class ForeignObjects : IAsyncDisposable
{
    private readonly string _folder;
    private readonly Process _process;
    private readonly ulong _namespaceInode;
    private readonly string _chain;
    private string _iptables = "";
    private string _qdiscs = "";
    private string _rootChain = "";

    private ForeignObjects(string ns, string folder, Process process, ProcessIdentity identity, ulong inode, string chain)
    {
        Namespace = ns;
        _folder = folder;
        _process = process;
        Process = identity;
        _namespaceInode = inode;
        _chain = chain;
    }

    /// <summary>The foreign namespace.</summary>
    public string Namespace { get; }

    /// <summary>The foreign process inside it.</summary>
    public ProcessIdentity Process { get; }

    /// <summary>Makes the decoys: the namespace <paramref name="ns"/> (which must not exist) and the rest.</summary>
    public static async Task<ForeignObjects> CreateAsync(string ns)
    {
        await RunAsync("ip", "netns", "add", ns);
        var folder = Directory.CreateTempSubdirectory("decoy-").FullName;
        var program = Path.Combine(folder, "libvirtd");
        File.Copy("/usr/bin/sleep", program);
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var process = System.Diagnostics.Process.Start(new ProcessStartInfo("/usr/sbin/ip", ["netns", "exec", ns, program, "3600"]) { UseShellExecute = false })!;
        ProcessIdentity? identity = null;
        for (var i = 0; i < 100 && (identity is null || identity.Executable != program); i++)
        {
            await Task.Delay(20);
            identity = ProcessIdentity.Capture(process.Id);
        }

        var chain = "DECOY-" + Random.Shared.Next(0x100000, 0xffffff).ToString("x6", CultureInfo.InvariantCulture);
        await RunAsync("ip", "-n", ns, "link", "set", "lo", "up");
        await RunAsync("ip", "netns", "exec", ns, "iptables", "-w", "-t", "mangle", "-N", "DECOY");
        await RunAsync("ip", "netns", "exec", ns, "iptables", "-w", "-t", "mangle", "-A", "DECOY", "-m", "comment", "--comment", "not the lab's", "-j", "RETURN");
        await RunAsync("ip", "netns", "exec", ns, "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-j", "DECOY");
        await RunAsync("tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb");
        // An unreferenced chain in the root namespace: harmless, and somebody else's.
        await RunAsync("iptables", "-w", "-t", "mangle", "-N", chain);
        await RunAsync("iptables", "-w", "-t", "mangle", "-A", chain, "-m", "comment", "--comment", "not the lab's", "-j", "RETURN");
        var decoys = new ForeignObjects(ns, folder, process, identity!, Ownership.LabOwnership.NamespaceInode(ns), chain);
        (decoys._iptables, decoys._qdiscs, decoys._rootChain) = await decoys.SnapshotAsync();
        Assert.That(identity?.Executable, Is.EqualTo(program), "the decoy process did not start");
        return decoys;
    }

    /// <summary>What of the decoys changed since they were made (empty when all is as it was).</summary>
    public async Task<IReadOnlyList<string>> ChangedAsync()
    {
        var changed = new List<string>();
        if (Ownership.LabOwnership.NamespaceInode(Namespace) != _namespaceInode)
        {
            changed.Add($"namespace {Namespace} removed or replaced");
            return changed;
        }

        if (!Process.IsAlive())
        {
            changed.Add($"process {Process} ended");
        }

        var (iptables, qdiscs, rootChain) = await SnapshotAsync();
        if (iptables != _iptables)
        {
            changed.Add($"iptables of {Namespace}: was {_iptables}, is {iptables}");
        }

        if (qdiscs != _qdiscs)
        {
            changed.Add($"qdiscs of {Namespace}: was {_qdiscs}, is {qdiscs}");
        }

        if (rootChain != _rootChain)
        {
            changed.Add($"root chain {_chain}: was {_rootChain}, is {rootChain}");
        }

        return changed;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        await RunAsync("iptables", "-w", "-t", "mangle", "-F", _chain);
        await RunAsync("iptables", "-w", "-t", "mangle", "-X", _chain);
        if (Ownership.LabOwnership.NamespaceInode(Namespace) == _namespaceInode)
        {
            await RunAsync("ip", "netns", "delete", Namespace);
        }

        Directory.Delete(_folder, recursive: true);
    }

    private async Task<(string, string, string)> SnapshotAsync()
    {
        var iptables = await RunAsync("ip", "netns", "exec", Namespace, "iptables", "-w", "-t", "mangle", "-S");
        var qdiscs = await RunAsync("tc", "-n", Namespace, "qdisc", "show", "dev", "lo");
        var root = await RunAsync("iptables", "-w", "-t", "mangle", "-S", _chain);
        return (iptables.StandardOutput.Trim(), qdiscs.StandardOutput.Trim(), root.StandardOutput.Trim());
    }

    private static Task<CommandResult> RunAsync(string program, params string[] arguments) =>
        LocalCommandRunner.Instance.RunAsync(CommandLine.Of(program, arguments));
}
