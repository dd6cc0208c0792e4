using Cloudlets.Probing.Commands;

namespace Cloudlets.Probing.Tests.Commands;

public class CommandPathTests
{
    [Test]
    public void SearchPath_IsTheDocumentedFixedListOfAbsoluteFolders()
    {
        Assert.That(CommandPath.SearchPathVariable, Is.EqualTo("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    }

    [Test]
    public void Resolve_BareName_ReturnsTheFirstExecutableInTheSearchPath()
    {
        Assume.That(OperatingSystem.IsLinux(), Is.True);

        Assert.That(CommandPath.Resolve("sh"), Is.EqualTo("/usr/bin/sh").Or.EqualTo("/bin/sh"));
    }

    [Test]
    public void Resolve_AbsolutePathOfExecutable_IsKept()
    {
        Assume.That(File.Exists("/bin/sh"), Is.True);

        Assert.That(CommandPath.Resolve("/bin/sh"), Is.EqualTo("/bin/sh"));
    }

    [Test]
    public void Resolve_AbsolutePathOfNonExecutableFile_Throws()
    {
        var file = Path.GetTempFileName();
        try
        {
            Assert.That(() => CommandPath.Resolve(file), Throws.TypeOf<CommandNotFoundException>().With.Message.Contains("no executable file"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestCase("")]
    [TestCase("ip\0x")]
    public void Resolve_EmptyOrNul_Throws(string program)
    {
        Assert.That(() => CommandPath.Resolve(program), Throws.TypeOf<CommandNotFoundException>());
    }

    [Test]
    public void Resolve_Directory_IsNotAProgram()
    {
        Assert.That(() => CommandPath.Resolve("/usr/bin"), Throws.TypeOf<CommandNotFoundException>());
    }
}
