using Cloudlets.TestUtils;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Cloudlets.Etcd.Tests.Support;

/// <summary>One line a <see cref="CandidateProgram"/> child printed.</summary>
public sealed record CandidateLine(string Candidate, string Kind, long UnixMs, string[] Fields)
{
    public bool IsLeaderState => Kind == "STATE" && Fields[0] == "Leader";

    public bool IsConfirmTrue => Kind == "CONFIRM" && Fields[0] == "true";

    public static CandidateLine? Parse(string candidate, string line)
    {
        var parts = line.Split(' ');
        return parts.Length >= 3 && parts[0] is "STATE" or "CONFIRM" && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var ms)
            ? new CandidateLine(candidate, parts[0], ms, parts[2..])
            : null;
    }
}

/// <summary>
/// A <see cref="CandidateProgram"/> child process (this test assembly run as a program), optionally
/// inside a network namespace; its lines are collected. It is ended by its pid: SIGKILL, or SIGSTOP/SIGCONT to pause it.
/// </summary>
public sealed class CandidateProcess : IAsyncDisposable
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly Process _process;
    private readonly ConcurrentQueue<CandidateLine> _lines = new();
    private readonly SemaphoreSlim _changed = new(0);

    private CandidateProcess(string id, Process process)
    {
        Id = id;
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } text && CandidateLine.Parse(id, text) is { } line)
            {
                _lines.Enqueue(line);
                _changed.Release();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } text)
            {
                TestContext.Progress.WriteLine($"[{id} stderr] {text}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Id { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<CandidateLine> Lines => _lines.ToArray();

    public static CandidateProcess Start(string endpoint, string election, string id, int ttlSeconds, int confirmEveryMs, string? networkNamespace = null)
    {
        var dll = typeof(CandidateProgram).Assembly.Location;
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "/usr/share/dotnet/dotnet";
        string[] args = ["exec", dll, "candidate", endpoint, election, id, ttlSeconds.ToString(CultureInfo.InvariantCulture), confirmEveryMs.ToString(CultureInfo.InvariantCulture)];
        var start = networkNamespace is null
            ? new ProcessStartInfo(dotnet, args)
            : new ProcessStartInfo("/usr/bin/ip", ["netns", "exec", networkNamespace, dotnet, .. args]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true;
        start.UseShellExecute = false;
        return new CandidateProcess(id, Process.Start(start) ?? throw new InvalidOperationException("The candidate did not start."));
    }

    /// <summary>Waits until a line satisfies <paramref name="predicate"/>; returns it.</summary>
    public async Task<CandidateLine> WaitForAsync(Func<CandidateLine, bool> predicate, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            if (_lines.FirstOrDefault(predicate) is { } line)
            {
                return line;
            }

            if (_process.HasExited)
            {
                Assert.Fail($"{Id} exited ({_process.ExitCode}) before: {what}");
            }

            try
            {
                await _changed.WaitAsync(TimeSpan.FromMilliseconds(200), cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"{Id}: timed out after {timeout} waiting for: {what}. Last lines: {string.Join(" | ", _lines.TakeLast(5).Select(l => l.Kind + " " + string.Join(' ', l.Fields)))}");
            }
        }
    }

    /// <summary>SIGKILL by pid; waits for the exit.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
    }

    public void Pause() => Signal(SigStop);

    public void Resume() => Signal(SigCont);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Signal(SigCont);
            _process.StandardInput.Close();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }

        _process.Dispose();
        _changed.Dispose();
    }

    private void Signal(int signal) => ProcessSignals.Send(_process, signal);
}
