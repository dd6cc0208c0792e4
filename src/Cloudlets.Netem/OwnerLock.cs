using System.Globalization;
using System.Text;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem;

/// <summary>
/// Proof that this shaper instance is the one that holds an owner: an exclusive lock on
/// <c>DIRECTORY/SCOPE.OWNER.lock</c>, held from the first apply until the owner is cleared or the shaper
/// is disposed. .NET takes <c>flock(LOCK_EX | LOCK_NB)</c> for <see cref="FileShare.None"/> on Unix, per
/// open file: a second instance, in this process or another, cannot take it, and the kernel drops it
/// when the holder dies, so a crashed run's leftovers can be taken over by the next shaper.
/// </summary>
internal sealed class OwnerLock : IDisposable
{
    private readonly FileStream stream;
    private readonly string holderPath;

    private OwnerLock(FileStream stream, string holderPath)
    {
        this.stream = stream;
        this.holderPath = holderPath;
    }

    /// <summary>Takes the lock or throws <see cref="ShapingOwnerInUseException"/>.</summary>
    /// <param name="directory">Where lock files live (created if missing).</param>
    /// <param name="scope">Which machine is shaped (<c>local</c>, or the SSH destination), letters, digits, '.', '-'.</param>
    /// <param name="owner">The (validated) owner.</param>
    public static OwnerLock Acquire(string directory, string scope, string owner)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, scope + "." + owner + ".lock");
        var holderPath = path + ".holder";
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (File.Exists(path))
        {
            string? holder = null;
            try
            {
                holder = File.ReadAllText(holderPath, Encoding.UTF8).Trim();
            }
            catch (IOException)
            {
                // Being rewritten by its holder; the message goes without it.
            }

            throw new ShapingOwnerInUseException(owner, string.IsNullOrEmpty(holder) ? null : holder, ex);
        }

        File.WriteAllText(holderPath, string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId}, lock {path}"), Encoding.UTF8);
        return new OwnerLock(stream, holderPath);
    }

    /// <summary>A file-name-safe scope for a destination such as <c>root@198.18.0.5:22</c>.</summary>
    public static string Scope(string? destination) =>
        destination is null ? "local" : "ssh-" + new string([.. destination.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-')]);

    public void Dispose()
    {
        try
        {
            File.Delete(holderPath);
        }
        catch (IOException)
        {
            // Only a diagnostic; the lock itself goes with the stream.
        }

        stream.Dispose();
    }
}
