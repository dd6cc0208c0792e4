using System.Diagnostics;
using System.Runtime.Versioning;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Probing.Tests.Commands;

/// <summary>
/// Issue 11: run as root from a folder holding an executable named <c>ip</c>, the lab ran that file
/// instead of <c>/usr/sbin/ip</c>, because a bare name given to <see cref="ProcessStartInfo"/> is
/// looked up in the application's folder and the current directory before PATH. Fixed in the commit
/// "Commands by absolute path" (CommandPath + LocalCommandRunner); these tests failed before it.
/// </summary>
[SupportedOSPlatform("linux")]
[NonParallelizable] // They change the process's current directory and PATH for a moment.
public class LocalCommandRunnerTests
{
    private string folder = null!;
    private string marker = null!;
    private string? savedDirectory;
    private string? savedPath;

    [SetUp]
    public void PlantImpostors()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("Linux tools (ip, tc) are what this is about.");
        }

        folder = Directory.CreateTempSubdirectory("cloudlets-impostors-").FullName;
        marker = Path.Combine(folder, "impostor-ran");
        foreach (var name in new[] { "ip", "tc" })
        {
            var path = Path.Combine(folder, name);
            File.WriteAllText(path, $"#!/bin/sh\necho {name} >> '{marker}'\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        savedDirectory = Environment.CurrentDirectory;
        savedPath = Environment.GetEnvironmentVariable("PATH");
        Environment.CurrentDirectory = folder;
        // An inherited PATH that starts with "." and the impostors' folder must not matter either.
        Environment.SetEnvironmentVariable("PATH", $".:{folder}:{savedPath}");
    }

    [TearDown]
    public void RemoveImpostors()
    {
        if (savedDirectory is not null)
        {
            Environment.CurrentDirectory = savedDirectory;
            Environment.SetEnvironmentVariable("PATH", savedPath);
        }

        if (folder is not null && Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void ProcessStartInfo_BareNameInFolderWithImpostor_RunsTheImpostor()
    {
        // The hazard itself, on this runtime: what the runner did before the fix.
        using (var process = Process.Start(new ProcessStartInfo("ip") { UseShellExecute = false, ArgumentList = { "-V" } })!)
        {
            process.WaitForExit();
        }

        Assert.That(File.Exists(marker), Is.True, "a bare name ran the current directory's ip");
    }

    [TestCase("ip", "/usr/sbin/ip")]
    [TestCase("tc", "/usr/sbin/tc")]
    public async Task RunAsync_CurrentDirectoryHoldsImpostor_RunsTheSystemTool(string program, string expected)
    {
        Assume.That(File.Exists(expected), Is.True, $"{expected} is installed (iproute2)");

        var result = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of(program, "-V"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.Exists(marker), Is.False, "the impostor ran");
            Assert.That(result.ExitCode, Is.Zero, result.StandardError);
            Assert.That(result.StandardOutput, Does.Contain("iproute2"));
            Assert.That(CommandPath.Resolve(program), Is.EqualTo(expected));
        }
    }

    [Test]
    public async Task RunAsync_ProgramRunByNameInsideTheChild_IsFoundInTheFixedSearchPathToo()
    {
        // `ip netns exec NS tc` makes ip look tc up on its PATH: the runner gives the child the fixed one.
        var result = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("env", "tc", "-V"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.Exists(marker), Is.False, "the impostor ran");
            Assert.That(result.StandardOutput, Does.Contain("iproute2"));
        }
    }

    [Test]
    public void RunAsync_UnknownProgram_ThrowsCommandNotFoundBeforeStartingAnything()
    {
        var name = "cloudlets-no-such-tool-" + Guid.NewGuid().ToString("N")[..8];

        var ex = Assert.ThrowsAsync<CommandNotFoundException>(() => LocalCommandRunner.Instance.RunAsync(CommandLine.Of(name)));

        Assert.That((ex!.Program, ex.Message), Is.EqualTo((name, $"Cannot run '{name}': not found in {CommandPath.SearchPathVariable}; is it installed?")));
    }

    [TestCase("./ip")]
    [TestCase("bin/ip")]
    [TestCase("..")]
    public void RunAsync_RelativePath_ThrowsCommandNotFound(string program)
    {
        var ex = Assert.ThrowsAsync<CommandNotFoundException>(() => LocalCommandRunner.Instance.RunAsync(CommandLine.Of(program)));

        Assert.That(ex!.Message, Does.Contain("relative path"));
    }
}
