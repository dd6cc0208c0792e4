using System.Diagnostics;
using System.Text;
using Cloudlets.TestUtils;

namespace Cloudlets.Controller.Tests;

/// <summary>
/// cloudlets-controller as a child process (dotnet cloudlets-controller.dll …), with its output
/// collected. This test started it, so it may end it: <see cref="TerminateAsync"/> sends SIGTERM to
/// its pid, <see cref="DisposeAsync"/> kills it (that pid only) if it still runs.
/// </summary>
internal sealed class ControllerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();

    private ControllerProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_gate)
            {
                return _output.ToString();
            }
        }
    }

    public static ControllerProcess Start(params IEnumerable<string> args) => Start(null, args);

    /// <summary>
    /// Starts the controller inside the named network namespace (<c>ip netns exec NS dotnet …</c>; ip execs
    /// the command, so <see cref="Id"/> is the controller's pid). Its own traffic (etcd, its HTTP endpoint on
    /// that namespace's loopback) stays in the namespace; hosts and probes still go where their
    /// configuration's NetworkNamespace says.
    /// </summary>
    public static ControllerProcess StartInNamespace(string networkNamespace, params IEnumerable<string> args) => Start(networkNamespace, args);

    private static ControllerProcess Start(string? networkNamespace, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(networkNamespace is null ? "dotnet" : "/usr/bin/ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (networkNamespace is not null)
        {
            foreach (var a in new[] { "netns", "exec", networkNamespace, DotnetPath() })
            {
                psi.ArgumentList.Add(a);
            }
        }

        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cloudlets-controller.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = psi };
        var controller = new ControllerProcess(process);
        process.OutputDataReceived += (_, e) => controller.Append(e.Data);
        process.ErrorDataReceived += (_, e) => controller.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return controller;
    }

    /// <summary>Runs to the end (bounded) and returns the exit code and the output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(TimeSpan timeout, params IEnumerable<string> args)
    {
        await using var p = Start(args);
        var code = await p.WaitForExitAsync(timeout);
        return (code, p.Output);
    }

    /// <summary>Sends SIGTERM (as systemctl stop does).</summary>
    public void Terminate()
    {
        ProcessSignals.Send(_process, ProcessSignals.Terminate);
    }

    /// <summary>Sends SIGKILL (a crash: no stop, no resignation; the lease expires on its own).</summary>
    public void Kill()
    {
        ProcessSignals.Send(_process, ProcessSignals.Kill);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    /// <summary>The dotnet host by absolute path (ip netns exec takes a program, not a name to look up the way a shell would).</summary>
    private static string DotnetPath()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "dotnet")
        {
            return self;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("No dotnet host on PATH to run the controller in a namespace.");
    }

    /// <summary>A TCP port free on loopback now and outside the ephemeral range (the controller binds it next).</summary>
    public static int FreePort() => LoopbackPorts.Free();

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _output.AppendLine(line);
        }
    }
}
