using Cloudlets.TestUtils;
using System.Collections.Concurrent;
using System.Diagnostics;

namespace Cloudlets.Mqtt.Tests;

/// <summary>cloudlets-agent as a child process (the dll built next to the tests, run by the dotnet host that runs them). Owns the process.</summary>
internal sealed class AgentProcess : IAsyncDisposable
{
    public const int SigInt = ProcessSignals.Interrupt;
    public const int SigKill = ProcessSignals.Kill;
    public const int SigTerm = ProcessSignals.Terminate;

    private readonly Process _process;

    private AgentProcess(Process process) => _process = process;

    public ConcurrentQueue<string> Output { get; } = new();

    public ConcurrentQueue<string> Errors { get; } = new();

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static string DotnetHost => Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet"
        ? p
        : Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", "..", "dotnet");

    public static AgentProcess Start(params string[] arguments)
    {
        var info = new ProcessStartInfo(Path.GetFullPath(DotnetHost))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cloudlets-agent.dll"));
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        var agent = new AgentProcess(Process.Start(info)!);
        agent._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                agent.Output.Enqueue(e.Data);
            }
        };
        agent._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                agent.Errors.Enqueue(e.Data);
            }
        };
        agent._process.BeginOutputReadLine();
        agent._process.BeginErrorReadLine();
        return agent;
    }

    /// <summary>Runs the agent to its end and returns its exit code.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunAsync(params string[] arguments)
    {
        await using var agent = Start(arguments);
        var code = await agent.WaitForExitAsync(TimeSpan.FromSeconds(30));
        return (code, string.Join('\n', agent.Output), string.Join('\n', agent.Errors));
    }

    public void Signal(int signal) => ProcessSignals.Send(_process, signal);

    public async Task<int> WaitForExitAsync(TimeSpan patience)
    {
        using var timeout = new CancellationTokenSource(patience);
        await _process.WaitForExitAsync(timeout.Token);
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
