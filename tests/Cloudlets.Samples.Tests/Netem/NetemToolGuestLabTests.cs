using System.Text.Json;
using Cloudlets.Lab.Guests;
using Cloudlets.Probing.Commands;
using Cloudlets.TestUtils;

namespace Cloudlets.Samples.Tests.Netem;

/// <summary>
/// <c>cloudlets-netem --ssh</c> against a lab guest that is a real netem host, run inside the edge namespace as an
/// operator there would run it, with the credentials the lab lists: <c>set eth0 --delay 300ms</c> measured from the
/// edge, <c>show --json</c> against what the guest's <c>tc -j qdisc show</c> says (read with the OpenSSH client), and
/// <c>del</c> back to the baseline. One guest boot for the fixture.
/// </summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class NetemToolGuestLabTests
{
    private const int Probes = 20;
    private NetemGuestLab lab = null!;
    private double baseline;

    [OneTimeSetUp]
    public async Task StartLab()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        lab = await NetemGuestLab.StartAsync("ngtool", timeout.Token);
        baseline = await lab.MedianRttAsync(Probes);
    }

    [OneTimeTearDown]
    public async Task StopLab()
    {
        if (lab is not null)
        {
            await lab.DisposeAsync();
        }
    }

    private string[] Ssh => ["--ssh", lab.Guest.SshUser + "@" + lab.Guest.Address, "--key", lab.Guest.SshKey, "--known-hosts", lab.Guest.KnownHosts];

    /// <summary>The guest's netem qdiscs on eth0 as its own <c>tc -j qdisc show</c> reports them, through OpenSSH's client from the edge: delays in ms.</summary>
    private async Task<double[]> KernelNetemDelaysAsync()
    {
        var r = await LocalCommandRunner.Instance.RunCheckedAsync(CommandLine.Of("ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + lab.Guest.KnownHosts,
            "-i", lab.Guest.SshKey, lab.Guest.SshUser + "@" + lab.Guest.Address, GuestImage.NetemTcPath, "-j", "qdisc", "show", "dev", "eth0").InNamespace(lab.EdgeNamespace));
        TestContext.Progress.WriteLine("guest tc -j qdisc show dev eth0: " + r.StandardOutput.Trim());
        using var doc = JsonDocument.Parse(r.StandardOutput);
        return [.. doc.RootElement.EnumerateArray().Where(q => q.GetProperty("kind").GetString() == "netem")
            .Select(q => q.GetProperty("options").GetProperty("delay").GetProperty("delay").GetDouble() * 1000).Order()];
    }

    [Test]
    public async Task SetShowDel_Delay300OverSsh_EdgeSeesItShowMatchesTcAndDelRestoresBaseline()
    {
        var (setCode, setOutput, setError) = await NetemToolProcess.RunInAsync(lab.EdgeNamespace, ["set", "eth0", "--delay", "300ms", .. Ssh]);
        try
        {
            Assert.That(setCode, Is.Zero, setOutput + setError);
            var measured = await lab.MedianRttAsync(Probes);
            var (showCode, json, showError) = await NetemToolProcess.RunInAsync(lab.EdgeNamespace, ["show", "eth0", "--json", .. Ssh]);
            var kernel = await KernelNetemDelaysAsync();
            Assert.That(showCode, Is.Zero, showError);
            TestContext.Progress.WriteLine("cloudlets-netem show --json: " + json.Trim());
            using var shown = JsonDocument.Parse(json);
            var rules = shown.RootElement.GetProperty("rules").EnumerateArray().Select(r => r.GetProperty("delayMs").GetDouble()).Order().ToArray();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(setError, Does.Contain("backend tc-netem"));
                NetemGuestLab.AssertDelay(measured, baseline, 300, "cloudlets-netem set eth0 --delay 300ms --ssh");
                Assert.That(kernel, Is.EqualTo(new[] { 300.0 }).Within(0.001), "the guest's kernel holds one netem qdisc of 300 ms");
                Assert.That(shown.RootElement.GetProperty("applied").GetBoolean(), Is.True);
                Assert.That(rules, Is.EqualTo(kernel).Within(0.001), "show --json reports what tc -j qdisc show reports");
            }
        }
        finally
        {
            var (delCode, delOutput, delError) = await NetemToolProcess.RunInAsync(lab.EdgeNamespace, ["del", "eth0", .. Ssh]);
            Assert.That(delCode, Is.Zero, delOutput + delError);
        }

        var after = await lab.MedianRttAsync(Probes);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await KernelNetemDelaysAsync(), Is.Empty, "del leaves no netem qdisc");
            NetemGuestLab.AssertDelay(after, baseline, 0, "after cloudlets-netem del");
        }
    }
}
