using Cloudlets.Samples.Advisor;

namespace Cloudlets.Samples.Tests.Advisor;

/// <summary>The entry point's exit codes and messages for input that never reaches a host.</summary>
public sealed class AdvisorProgramTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("cloudlets-advisor-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AdvisorProgram.RunAsync(args, output, error, CancellationToken.None);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public async Task RunAsync_InvalidFile_ExitsTwoWithEveryErrorAndConnectsNowhere()
    {
        var path = Path.Combine(_folder, "bad.json");
        await File.WriteAllTextAsync(path, """{ "vantagePoints": [ { "name": "edge" } ], "hosts": [ { "name": "a", "uri": "qemu+tcp://192.0.2.1/system" } ], "vms": [] }""");
        var (code, output, error) = await RunAsync(path, "--duration", "5");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain("hosts[0].probe: is missing").And.Contain("vms: at least one VM"));
            Assert.That(output, Is.Empty);
        }
    }

    [Test]
    public async Task RunAsync_BadArguments_ExitsTwoWithUsage()
    {
        var (code, _, error) = await RunAsync("--duration", "-1", "x.json");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain("usage: cloudlets-advisor"));
        }
    }

    [Test]
    public async Task RunAsync_ValidateValidFile_ExitsZeroWithoutConnecting()
    {
        var (code, output, _) = await RunAsync(Path.Combine(AppContext.BaseDirectory, "advisor.example.json"), "--validate");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero);
            Assert.That(output, Does.Contain("3 hosts, 1 VMs, 1 vantage points").And.Contain("the configuration is valid"));
        }
    }
}
