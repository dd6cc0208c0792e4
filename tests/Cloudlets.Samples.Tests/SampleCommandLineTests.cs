using System.Diagnostics;

namespace Cloudlets.Samples.Tests;

/// <summary>
/// The samples' one command-line convention (System.CommandLine, shared by cloudlets-lab, -advisor, -demo, -probe, -replay,
/// -agent and -netem),
/// checked as a user meets it: each tool run as a child process. None of these runs touches the machine: help,
/// version and usage errors all end before anything is started.
/// </summary>
public sealed class SampleCommandLineTests
{
    /// <summary>The tools, built next to the tests, and whether their help must say they need root.</summary>
    private static readonly object[] Tools =
    [
        new object[] { "cloudlets-lab", true },
        new object[] { "cloudlets-advisor", true },
        new object[] { "cloudlets-demo", true },
        new object[] { "cloudlets-probe", true },
        new object[] { "cloudlets-replay", false },
        new object[] { "cloudlets-agent", true },
        new object[] { "cloudlets-netem", true },
    ];

    [TestCaseSource(nameof(Tools))]
    public async Task Help_EachTool_ExitsZeroAndDocumentsTheExitCodesAndRoot(string tool, bool needsRoot)
    {
        var (code, output, error) = await RunAsync(tool, "--help");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, $"{tool} --help exited {code}: {error}");
            Assert.That(output, Does.Contain("Exit codes:").And.Contain("  2  bad command line"), $"{tool} --help does not list its exit codes:\n{output}");
            Assert.That(output, Does.Contain("Usage:").And.Contain(tool), $"{tool} --help has no usage:\n{output}");
            if (needsRoot)
            {
                Assert.That(output, Does.Contain("Needs root"), $"{tool} --help does not say when it needs root:\n{output}");
            }

            Assert.That(error, Is.Empty);
        }
    }

    [TestCaseSource(nameof(Tools))]
    public async Task Version_EachTool_PrintsTheAssemblyInformationalVersion(string tool, bool needsRoot)
    {
        _ = needsRoot;
        var expected = FileVersionInfo.GetVersionInfo(Dll(tool)).ProductVersion;
        var (code, output, error) = await RunAsync(tool, "--version");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, $"{tool} --version exited {code}: {error}");
            Assert.That(expected, Is.Not.Null.And.Not.Empty, $"{tool} has no informational version");
            Assert.That(output.Trim(), Is.EqualTo(expected), $"{tool} --version");
        }
    }

    [Category("BadInput")]
    [TestCaseSource(nameof(Tools))]
    public async Task UnknownOption_EachTool_ExitsTwoWithTheMessageTheSynopsisAndTheHelpHint(string tool, bool needsRoot)
    {
        _ = needsRoot;

        // The lab takes a verb first; the option is unknown to that verb.
        string[] args = tool == "cloudlets-lab" ? ["status", "--frobnicate"] : ["--frobnicate"];
        var (code, output, error) = await RunAsync(tool, args);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2), $"{tool} {string.Join(' ', args)} exited {code}: {error}");
            Assert.That(error, Does.Contain($"{tool}: ").And.Contain("'--frobnicate'"), $"{tool}: the message does not name the option");
            Assert.That(error, Does.Contain($"usage: {tool}"), $"{tool}: no synopsis after the error");
            Assert.That(error, Does.Contain($"Try '{tool} --help'."), $"{tool}: no hint at --help");
            Assert.That(output, Is.Empty, $"{tool} printed to stdout on a usage error");
        }
    }

    [Test]
    public async Task Help_LabVerb_ExitsZeroWithTheVerbsOwnOptions()
    {
        // cloudlets-lab took "--help" for an unknown verb before (issue 16).
        var (code, output, error) = await RunAsync("cloudlets-lab", "shape", "--help");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, $"cloudlets-lab shape --help exited {code}: {error}");
            Assert.That(output, Does.Contain("--for").And.Contain("--name").And.Not.Contain("--hosts"));
        }
    }

    [Category("BadInput")]
    [TestCase("cloudlets-lab")]
    [TestCase("cloudlets-advisor")]
    [TestCase("cloudlets-probe")]
    [TestCase("cloudlets-replay")]
    [TestCase("cloudlets-agent")]
    [TestCase("cloudlets-netem")]
    public async Task NoArguments_ToolThatNeedsSome_ExitsTwoWithTheSynopsis(string tool)
    {
        var (code, _, error) = await RunAsync(tool);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2), $"{tool} without arguments exited {code}: {error}");
            Assert.That(error, Does.Contain($"usage: {tool}"));
        }
    }

    private static string Dll(string tool) => Path.Combine(AppContext.BaseDirectory, tool + ".dll");

    private static async Task<(int Code, string Output, string Error)> RunAsync(string tool, params string[] args)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll(tool));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();

        // Help, version and usage errors end before anything starts; the bound only keeps a hang from stalling the run.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            Assert.Fail($"{tool} {string.Join(' ', args)} did not end within 2 minutes: {await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
