using System.Globalization;
using System.Text;

namespace Cloudlets.Lab.Guests;

/// <summary>
/// Writes a cpio archive in the "newc" format the kernel unpacks as an initramfs. Written here
/// rather than by running cpio so that device nodes (/dev/console) need no root-made files and the
/// archive is the same bytes every time.
/// </summary>
internal sealed class CpioWriter
{
    private readonly Stream _output;
    private int _inode = 1;
    private long _written;

    public CpioWriter(Stream output) => _output = output;

    /// <summary>Adds a folder (mode 0755).</summary>
    public void AddDirectory(string name) => Add(name, 0x4000 | 0x1ED, [], 0, 0);

    /// <summary>Adds a regular file with a permission mode such as 0x1ED (0755).</summary>
    public void AddFile(string name, byte[] content, int permissions) => Add(name, 0x8000 | permissions, content, 0, 0);

    /// <summary>Adds a character device node.</summary>
    public void AddCharDevice(string name, int permissions, int major, int minor) => Add(name, 0x2000 | permissions, [], major, minor);

    /// <summary>Writes the trailer; the archive is complete afterwards.</summary>
    public void Finish()
    {
        Add("TRAILER!!!", 0, [], 0, 0, inode: 0);
        Pad(512);
    }

    private void Add(string name, int mode, byte[] content, int rdevMajor, int rdevMinor, int? inode = null)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var header = new StringBuilder("070701");
        foreach (var field in new long[]
                 {
                     inode ?? _inode++, mode, 0, 0, (mode & 0x4000) != 0 ? 2 : 1, 0, content.Length,
                     0, 0, rdevMajor, rdevMinor, nameBytes.Length, 0,
                 })
        {
            header.Append(field.ToString("x8", CultureInfo.InvariantCulture));
        }

        Write(Encoding.ASCII.GetBytes(header.ToString()));
        Write(nameBytes);
        Pad(4);
        Write(content);
        Pad(4);
    }

    private void Write(byte[] bytes)
    {
        _output.Write(bytes);
        _written += bytes.Length;
    }

    private void Pad(int alignment)
    {
        var pad = (int)((alignment - (_written % alignment)) % alignment);
        if (pad > 0)
        {
            Write(new byte[pad]);
        }
    }
}
