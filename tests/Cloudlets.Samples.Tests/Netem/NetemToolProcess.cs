using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Samples.Tests.Netem;

/// <summary>
/// <c>cloudlets-netem</c> as a child process, as a user runs it: either to its end (bounded), or a holding
/// <c>set</c> that is watched line by line on stderr and stopped with a signal sent to its own pid.
/// </summary>
internal sealed class NetemToolProcess : IAsyncDisposable
{
    private static readonly TimeSpan RunBound = TimeSpan.FromMinutes(2);
    private readonly Process process;
    private readonly ConcurrentQueue<string> errorLines = new();
    private readonly System.Text.StringBuilder output = new();
    private readonly SemaphoreSlim lineArrived = new(0);

    private NetemToolProcess(Process process)
    {
        this.process = process;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                errorLines.Enqueue(e.Data);
                lineArrived.Release();
            }
        };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (output)
                {
                    output.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
    }

    public int Pid => process.Id;

    public string Error => string.Join(Environment.NewLine, errorLines);

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "cloudlets-netem.dll");

    public static NetemToolProcess Start(params string[] args) => StartIn(null, args);

    /// <summary>Starts the tool inside a network namespace (<c>ip netns exec</c>), or here when <paramref name="networkNamespace"/> is null.</summary>
    public static NetemToolProcess StartIn(string? networkNamespace, params string[] args)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(networkNamespace is null ? host : "ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (networkNamespace is not null)
        {
            foreach (var a in new[] { "netns", "exec", networkNamespace, host })
            {
                psi.ArgumentList.Add(a);
            }
        }

        psi.ArgumentList.Add(Dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return new NetemToolProcess(Process.Start(psi)!);
    }

    /// <summary>Runs the tool to its end (at most 2 minutes) and returns its exit code, stdout and stderr.</summary>
    public static Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => RunInAsync(null, args);

    /// <summary>As <see cref="RunAsync"/>, inside a network namespace (null: here).</summary>
    public static async Task<(int Code, string Output, string Error)> RunInAsync(string? networkNamespace, params string[] args)
    {
        await using var tool = StartIn(networkNamespace, args);
        var code = await tool.WaitForExitAsync(RunBound);
        return (code, tool.Output, tool.Error);
    }

    /// <summary>Runs a command of the test's own (ip, iptables, tc) and throws unless it succeeds.</summary>
    public static async Task<CommandResult> RunCheckedAsync(params string[] argv) =>
        await LocalCommandRunner.Instance.RunCheckedAsync(CommandLine.Of(argv[0], argv[1..]));

    /// <summary>Waits until a stderr line contains <paramref name="text"/>; fails if the process ends first or the bound passes.</summary>
    public async Task WaitForErrorLineAsync(string text, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (!errorLines.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                Assert.Fail($"cloudlets-netem exited ({process.ExitCode}) before printing '{text}':\n{Output}\n{Error}");
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                Assert.Fail($"cloudlets-netem did not print '{text}' within {bound.TotalSeconds} s:\n{Output}\n{Error}");
            }

            await lineArrived.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(left.TotalMilliseconds, 200)));
        }
    }

    /// <summary>Sends <paramref name="signal"/> (TERM, INT, KILL) to this child, by its pid.</summary>
    public async Task SignalAsync(string signal)
    {
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("kill", "-" + signal, Pid.ToString(CultureInfo.InvariantCulture)));
        Assert.That(r.Succeeded, Is.True, $"kill -{signal} {Pid}: {r.StandardError}");
    }

    /// <summary>Waits for the end (killing the child if the bound passes) and returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            Assert.Fail($"cloudlets-netem did not end within {bound.TotalSeconds} s:\n{Output}\n{Error}");
        }

        // The asynchronous readers may still hold the last lines.
        process.WaitForExit();
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            // A test that failed while the tool held: SIGTERM lets it clear what it applied.
            await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("kill", "-TERM", Pid.ToString(CultureInfo.InvariantCulture)));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }

        process.Dispose();
        lineArrived.Dispose();
    }
}
