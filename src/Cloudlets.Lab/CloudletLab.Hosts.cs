using Cloudlets.Probing.Commands;
using Cloudlets.Lab.Processes;

namespace Cloudlets.Lab;

// Commands on the lab's hosts, and the faults tests inject into them (a daemon or a QEMU killed).
// Every process is touched only once proven the lab's (recorded identity, or its program by path
// inside the host's own namespace); a pid alone is never trusted.
public sealed partial class CloudletLab
{
    private const string Qemu = "qemu-system-x86_64";

    /// <summary>The <c>virsh -c URI ARGS</c> command for a host, run from the edge namespace.</summary>
    public CommandLine Virsh(LabHost host, params IEnumerable<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(host);
        // A SASL host's credentials come from the lab's auth.conf (libvirt reads LIBVIRT_AUTH_FILE; virsh never prompts).
        return (host.SaslAuthFile is { } auth
            ? CommandLine.Of("env", ["LIBVIRT_AUTH_FILE=" + auth, "virsh", "-q", "-c", host.Uri.ToString(), .. arguments])
            : CommandLine.Of("virsh", ["-q", "-c", host.Uri.ToString(), .. arguments])).InNamespace(Edge.Namespace);
    }

    /// <summary>Runs <c>virsh</c> against a host from the edge; throws <see cref="CommandException"/> unless it succeeds.</summary>
    public Task<CommandResult> VirshAsync(LabHost host, IEnumerable<string> arguments, CancellationToken cancellationToken = default) =>
        RunCheckedAsync(Virsh(host, arguments), cancellationToken);

    /// <summary>Runs a command inside a network namespace (for example <see cref="LabEdge.Namespace"/>); a non-zero exit is returned, not thrown.</summary>
    public Task<CommandResult> RunInNamespaceAsync(string networkNamespace, CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        Cloudlets.Probing.Linux.NetworkNamespace.ValidateName(networkNamespace);
        return _runner.RunAsync(command.InNamespace(networkNamespace), cancellationToken);
    }

    /// <summary>
    /// Runs a command inside a host's network, mount and UTS namespaces (it sees the host's private
    /// /run and /etc/libvirt), entered through the host's recorded virtlogd; a non-zero exit is returned.
    /// </summary>
    /// <exception cref="LabException">The host's virtlogd is not running as recorded (gone, or its pid now belongs to another process).</exception>
    public async Task<CommandResult> RunOnHostAsync(string hostName, CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var host = GetHost(hostName);
        using var namespaces = OpenHostNamespaces(host);
        return await _runner.RunAsync(
            CommandLine.Of("nsenter", ["--mount=" + namespaces.Mount, "--uts=" + namespaces.Uts, "--net=" + namespaces.Net, "--", command.Program, .. command.Arguments]),
            cancellationToken).ConfigureAwait(false);
    }

    private NamespaceHandles OpenHostNamespaces(LabHost host) =>
        (RecordedDaemon(host, "virtlogd") is { } virtlogd ? NamespaceHandles.Open(virtlogd) : null)
        ?? throw new LabException($"The virtlogd of {host.Name} is not running as the lab recorded it, so its namespaces cannot be entered.");

    /// <summary>The pids in a host's pid files (virtlogd, libvirtd, and QEMU per running domain), as the daemons wrote them; for display and tests.</summary>
    public LabHostProcesses GetProcesses(string hostName) => ReadProcesses(GetHost(hostName).Folder);

    private static LabHostProcesses ReadProcesses(string hostFolder)
    {
        var qemu = new Dictionary<string, int>(StringComparer.Ordinal);
        var qemuRun = Path.Combine(hostFolder, "run", "libvirt", "qemu");
        if (Directory.Exists(qemuRun))
        {
            foreach (var file in Directory.EnumerateFiles(qemuRun, "*.pid").Where(f => Path.GetFileName(f) != "driver.pid"))
            {
                var pid = LabProcess.ReadPidFile(file);
                if (pid > 0)
                {
                    qemu[Path.GetFileNameWithoutExtension(file)] = pid;
                }
            }
        }

        return new LabHostProcesses(
            LabProcess.ReadPidFile(Path.Combine(hostFolder, "run", "virtlogd.pid")),
            LabProcess.ReadPidFile(Path.Combine(hostFolder, "run", "libvirtd.pid")),
            qemu)
        {
            Sshd = LabProcess.ReadPidFile(Path.Combine(hostFolder, "run", "sshd.pid")),
        };
    }

    /// <summary>Kills (SIGKILL) a host's libvirtd, the one the lab recorded; its guests keep running.</summary>
    /// <exception cref="LabException">No libvirtd of the lab runs on that host, or it did not end.</exception>
    public async Task KillLibvirtdAsync(string hostName, CancellationToken cancellationToken = default)
    {
        var host = GetHost(hostName);
        var libvirtd = RecordedDaemon(host, "libvirtd") ?? ProveHostProcess(host, GetProcesses(hostName).Libvirtd, "libvirtd")
            ?? throw new LabException($"No libvirtd of the lab runs on {hostName} (none recorded alive, and its pid file names no libvirtd in {host.Namespace}).");
        if (!await LabProcess.EndAsync(libvirtd, TimeSpan.FromSeconds(5), killAtOnce: true, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"libvirtd of {hostName} (pid {libvirtd.Pid}) did not end.");
        }
    }

    /// <summary>Starts a host's libvirtd again (inside the host's namespaces) and waits until it answers.</summary>
    public async Task RestartLibvirtdAsync(string hostName, CancellationToken cancellationToken = default)
    {
        var host = GetHost(hostName);
        if (RecordedDaemon(host, "libvirtd") is not null)
        {
            await KillLibvirtdAsync(hostName, cancellationToken).ConfigureAwait(false);
        }

        var script = Path.Combine(_paths.LabFolder(Name), "lab-host.sh");
        using (var namespaces = OpenHostNamespaces(host))
        {
            await RunCheckedAsync(CommandLine.Of(script, "libvirtd", host.Folder, namespaces.Mount, namespaces.Uts, namespaces.Net), cancellationToken).ConfigureAwait(false);
        }

        await WaitForLibvirtdAsync(host, _options.ReadyTimeout, cancellationToken).ConfigureAwait(false);
        RecordDaemon(host, "libvirtd");
    }

    /// <summary>
    /// Kills (SIGKILL) the QEMU process of a domain on a host, once proven the lab's (its pid file, its program, the
    /// host's namespace), and returns once that host's libvirtd no longer reports the domain running (it learns of the
    /// death from the monitor socket's end, a moment after the process is gone: CI saw <c>running</c> just after).
    /// </summary>
    public async Task KillQemuAsync(string hostName, string domainName, CancellationToken cancellationToken = default)
    {
        var host = GetHost(hostName);
        if (!GetProcesses(hostName).Qemu.TryGetValue(domainName, out var pid) || ProveHostProcess(host, pid, Qemu) is not { } qemu)
        {
            throw new LabException($"No QEMU of the lab runs {domainName} on {hostName}.");
        }

        if (!await LabProcess.EndAsync(qemu, TimeSpan.FromSeconds(5), killAtOnce: true, cancellationToken).ConfigureAwait(false))
        {
            throw new LabException($"QEMU of {domainName} on {hostName} (pid {pid}) did not end.");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var state = await _runner.RunAsync(Virsh(host, "domstate", domainName), cancellationToken).ConfigureAwait(false);
            if (!state.Succeeded || state.StandardOutput.Trim() != "running")
            {
                return;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new LabException($"QEMU of {domainName} on {hostName} (pid {pid}) ended, but libvirtd still reports the domain running after 10 s.");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }
}
