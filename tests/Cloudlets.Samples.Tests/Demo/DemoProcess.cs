using System.Diagnostics;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Demo;

/// <summary>Runs <c>cloudlets-demo</c> as a child process, the way a user runs it (shared by the demo's lab tests).</summary>
internal static class DemoProcess
{
    /// <summary>Runs the demo with <paramref name="args"/>; returns its exit code and its whole output (also written to the test's log).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cloudlets-demo.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            // This test started it. SIGTERM (the demo handles it like Ctrl+C) lets it write what it measured
            // and tear its lab down; SIGKILL only if it does not end within a minute.
            ProcessSignals.Send(process, ProcessSignals.Terminate);
            using var grace = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: false);
                await process.WaitForExitAsync();
            }
        }

        var output = await stdout + await stderr;
        TestContext.Out.WriteLine(output);
        return (process.ExitCode, output);
    }

    /// <summary>The last <paramref name="count"/> lines of a run's output, for a failure's message.</summary>
    public static string Tail(string output, int count) =>
        string.Join('\n', output.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(count));
}
