using System.Globalization;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Cloudlets.Lab.Processes;

/// <summary>
/// Open handles on a process's mount, UTS and network namespaces, taken only while the process is
/// proven to be the one recorded (the identity is checked after the handles are open, so a pid reused
/// in between is noticed). <c>nsenter --mount=FILE …</c> then enters these namespaces through
/// <c>/proc/THIS-PID/fd/N</c>, whatever becomes of the pid meanwhile. Dispose closes the handles.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class NamespaceHandles : IDisposable
{
    private readonly SafeFileHandle[] _handles;

    private NamespaceHandles(SafeFileHandle[] handles) => _handles = handles;

    /// <summary>The path to give <c>nsenter --mount=</c>.</summary>
    public string Mount => PathOf(_handles[0]);

    /// <summary>The path to give <c>nsenter --uts=</c>.</summary>
    public string Uts => PathOf(_handles[1]);

    /// <summary>The path to give <c>nsenter --net=</c>.</summary>
    public string Net => PathOf(_handles[2]);

    /// <summary>Opens the namespaces of <paramref name="process"/>; null when it is not alive as recorded (before or after opening).</summary>
    public static NamespaceHandles? Open(ProcessIdentity process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.IsAlive())
        {
            return null;
        }

        var opened = new List<SafeFileHandle>();
        try
        {
            foreach (var kind in new[] { "mnt", "uts", "net" })
            {
                opened.Add(File.OpenHandle($"/proc/{process.Pid.ToString(CultureInfo.InvariantCulture)}/ns/{kind}", FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            opened.ForEach(h => h.Dispose());
            return null;
        }

        if (!process.IsAlive())
        {
            opened.ForEach(h => h.Dispose());
            return null;
        }

        return new NamespaceHandles([.. opened]);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var handle in _handles)
        {
            handle.Dispose();
        }
    }

    private static string PathOf(SafeFileHandle handle) =>
        string.Create(CultureInfo.InvariantCulture, $"/proc/{Environment.ProcessId}/fd/{handle.DangerousGetHandle().ToInt32()}");
}
