using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Cloudlets.Core.Shaping;
using Cloudlets.Lab.Shaping;
using Cloudlets.Netem;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Samples;

/// <summary>
/// <c>cloudlets-lab shape</c> and <c>clear</c> run as a user runs them (child processes) against a
/// real two-host lab: the delay is measured from the edge, cleared at the end of the hold, left
/// behind by a killed run and removed by <c>clear</c>; bad input applies nothing.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed partial class LabShapeCommandTests
{
    private CloudletLab? _lab;
    private INetemShaper? _shaper;

    private CloudletLab Lab => _lab ?? throw new InvalidOperationException("no lab");

    [OneTimeSetUp]
    public async Task StartLabAsync()
    {
        LabGate.Require();
        _lab = await TestLabs.StartAsync("shp", hosts: 2);
        _shaper = await NetemShaperFactory.CreateAsync();
    }

    [OneTimeTearDown]
    public async Task StopLabAsync()
    {
        if (_shaper is not null)
        {
            await _shaper.DisposeAsync();
        }

        if (_lab is not null)
        {
            await _lab.DisposeAsync();
        }
    }

    [Test]
    public async Task Shape_ForSeconds_MeasuresTheDelayThenClears()
    {
        var (code, output, error) = await RunAsync(["shape", "cloudlet-1", "100", "--for", "5", "--name", Lab.Name]);
        var state = await Lab.ShowShapingAsync(_shaper!);
        var rtt = MeasuredRtt(output, "cloudlet-1");
        var other = MeasuredRtt(output, "cloudlet-2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, error);
            Assert.That(output, Does.Contain("cloudlet-1 Ingress").And.Contain("delay 100 ms"));
            // One-way delay on the path toward the edge: the RTT grows by the delay (1 ms + 2 % slack, plus baseline).
            // The sample prints the RTT, not the baseline: an unshaped lab path is well under 1 ms.
            DelayAssert.AppliedOnce(rtt, 1, 100, "cloudlet-1 through cloudlet-lab shape: " + output);
            DelayAssert.AppliedOnce(other, 1, 0, "an unshaped host keeps its baseline: cloudlet-2");
            Assert.That(output, Does.Contain("shaping cleared"));
            Assert.That(state.IsEmpty, Is.True, "the hold cleared the shaping on its way out");
        }
    }

    [Test]
    public async Task Clear_AfterKilledShape_RemovesLeftovers()
    {
        using var process = Process.Start(StartInfo(["shape", "cloudlet-2", "50", "--name", Lab.Name]))!;
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line && !line.StartsWith("holding", StringComparison.Ordinal))
            {
            }
        }

        // This test started it: SIGKILL, so nothing of the process cleans up.
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        await stderr;
        var left = await Lab.ShowShapingAsync(_shaper!);

        var (code, output, error) = await RunAsync(["clear", "--name", Lab.Name]);
        var after = await Lab.ShowShapingAsync(_shaper!);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(left.IsEmpty, Is.False, "a killed shape leaves its rules behind (fail-open)");
            Assert.That(code, Is.Zero, error);
            Assert.That(output, Does.Contain("shaping cleared"));
            Assert.That(after.IsEmpty, Is.True);
        }
    }

    [TestCase("cloudlet-3", "20")]
    [TestCase("cloudlet-1", "-20")]
    [TestCase("cloudlet-1", "NaN")]
    public async Task Shape_BadInput_ExitsTwoAndAppliesNothing(string host, string delay)
    {
        var (code, _, error) = await RunAsync(["shape", host, delay, "--for", "5", "--name", Lab.Name]);
        var state = await Lab.ShowShapingAsync(_shaper!);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain(host == "cloudlet-3" ? host : delay));
            Assert.That(state.IsEmpty, Is.True);
        }
    }

    private static double MeasuredRtt(string output, string host)
    {
        var values = output.Split('\n')
            .Select(l => RttLine().Match(l))
            .Where(m => m.Success && m.Groups["host"].Value == host)
            .Select(m => double.Parse(m.Groups["rtt"].Value, CultureInfo.InvariantCulture))
            .ToList();
        return values.Count > 0 ? values[0] : double.NaN;
    }

    [GeneratedRegex(@"^\s*(?<host>cloudlet-\d+)\s.*measured RTT\s+(?<rtt>\d+\.\d+) ms")]
    private static partial Regex RttLine();

    private static ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cloudlets-lab.dll"));
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(string[] arguments)
    {
        using var process = Process.Start(StartInfo(arguments))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
