using System.Globalization;
using System.Text;
using Cloudlets.Lab.Guests;

namespace Cloudlets.Lab.Tests.Guests;

public class CpioWriterTests
{
    private sealed record Entry(string Name, int Mode, int RdevMajor, int RdevMinor, byte[] Data);

    // An independent reader of the newc format, to check what the writer wrote.
    private static List<Entry> Read(byte[] archive)
    {
        var entries = new List<Entry>();
        var at = 0;
        while (true)
        {
            var header = Encoding.ASCII.GetString(archive, at, 110);
            Assert.That(header[..6], Is.EqualTo("070701"));
            int Field(int i) => int.Parse(header.AsSpan(6 + (i * 8), 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var nameSize = Field(11);
            var name = Encoding.UTF8.GetString(archive, at + 110, nameSize - 1);
            at = Align(at + 110 + nameSize);
            var data = archive[at..(at + Field(6))];
            at = Align(at + data.Length);
            if (name == "TRAILER!!!")
            {
                return entries;
            }

            entries.Add(new Entry(name, Field(1), Field(9), Field(10), data));
        }
    }

    private static int Align(int n) => (n + 3) & ~3;

    [Test]
    public void Finish_FilesFoldersAndDevices_ReadBackAsWritten()
    {
        using var buffer = new MemoryStream();
        var writer = new CpioWriter(buffer);
        writer.AddDirectory("bin");
        writer.AddFile("bin/hello", Encoding.UTF8.GetBytes("hello"), 0x1ED);
        writer.AddCharDevice("dev/console", 0x180, 5, 1);
        writer.AddFile("odd", [1, 2, 3], 0x1A4);
        writer.Finish();

        var bytes = buffer.ToArray();
        var entries = Read(bytes);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bytes.Length % 512, Is.Zero);
            Assert.That(entries.Select(e => e.Name), Is.EqualTo(new[] { "bin", "bin/hello", "dev/console", "odd" }));
            Assert.That(entries[0].Mode, Is.EqualTo(0x41ED));
            Assert.That(Encoding.UTF8.GetString(entries[1].Data), Is.EqualTo("hello"));
            Assert.That(entries[1].Mode, Is.EqualTo(0x81ED));
            Assert.That(entries[2].Mode, Is.EqualTo(0x2180));
            Assert.That((entries[2].RdevMajor, entries[2].RdevMinor), Is.EqualTo((5, 1)));
            Assert.That(entries[3].Data, Is.EqualTo(new byte[] { 1, 2, 3 }));
        }
    }
}
