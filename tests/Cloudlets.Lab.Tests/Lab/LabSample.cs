using System.Diagnostics;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>Runs the console sample <c>cloudlets-lab</c> (built next to the tests) as a child process.</summary>
internal static class LabSample
{
    private static string SampleDll => Path.Combine(AppContext.BaseDirectory, "cloudlets-lab.dll");

    /// <summary>The start information for <c>cloudlets-lab ARGS</c>, with extra environment variables.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(SampleDll);
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        return psi;
    }

    /// <summary>Runs <c>cloudlets-lab ARGS</c> to its end (at most 3 minutes).</summary>
    public static async Task<CommandResult> RunAsync(params string[] arguments)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var psi = StartInfo(arguments);
        return await LocalCommandRunner.Instance.RunAsync(new CommandLine(psi.FileName, [.. psi.ArgumentList]), timeout.Token);
    }

    /// <summary>
    /// Runs <c>cloudlets-lab ARGS</c> with <c>CLOUDLETS_LAB_HOLD_AT=PHASE</c>, waits until it holds at
    /// <paramref name="phase"/> (at most 4 minutes) and kills it (SIGKILL: no handler, no finally, no
    /// teardown runs); fails the test when it never gets there.
    /// </summary>
    public static async Task KillAtPhaseAsync(string phase, params string[] arguments)
    {
        using var child = Process.Start(StartInfo(arguments, new Dictionary<string, string> { ["CLOUDLETS_LAB_HOLD_AT"] = phase }))!;
        var errors = child.StandardError.ReadToEndAsync();
        var holding = false;
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4)))
        {
            while (await child.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line == "holding at phase " + phase)
                {
                    holding = true;
                    break;
                }
            }
        }

        if (!holding)
        {
            await child.WaitForExitAsync();
            Assert.Fail($"cloudlets-lab {string.Join(' ', arguments)} never reached phase {phase} (exit {child.ExitCode}): {await errors}");
        }

        child.Kill();
        await child.WaitForExitAsync();
    }
}
