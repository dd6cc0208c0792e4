using Cloudlets.Controller.Tool;

namespace Cloudlets.Controller.Tests.Tool;

/// <summary>The command line in-process: help, version, refusals, validation (nothing connects).</summary>
public sealed class ControllerCommandTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("cloudlets-controller-cli-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await ControllerCommand.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private string Write(string json)
    {
        var path = Path.Combine(_folder, "controller.json");
        File.WriteAllText(path, json);
        return path;
    }

    private const string Valid = """
        { "Controller": {
            "VantagePoints": [ { "Name": "edge" } ],
            "Hosts": [ { "Name": "c1", "Uri": "qemu+tcp://192.0.2.11/system", "Probe": { "Address": "192.0.2.11" } } ],
            "Vms": [ { "Name": "web", "Users": [ { "VantagePoint": "edge" } ] } ] } }
        """;

    [Test]
    public async Task RunAsync_Help_ExitsZeroAndDocumentsExitCodesAndRoot()
    {
        var (code, output, _) = await RunAsync("--help");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero);
            Assert.That(output, Does.Contain("Exit codes:"));
            Assert.That(output, Does.Contain("2  bad command line or configuration"));
            Assert.That(output, Does.Contain("Needs root"));
            Assert.That(output, Does.Contain("--config"));
        }
    }

    [Test]
    public async Task RunAsync_Version_ExitsZeroWithVersion()
    {
        var (code, output, _) = await RunAsync("--version");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero);
            Assert.That(output, Does.Match(@"^\d+\.\d+\.\d+"));
        }
    }

    [TestCase("--bogus")]
    [TestCase("--mode", "sometimes")]
    [TestCase("--set", "no-equals-sign")]
    public async Task RunAsync_BadCommandLine_ExitsTwo(params string[] args)
    {
        var (code, _, error) = await RunAsync(args);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.StartWith("cloudlets-controller: "));
        }
    }

    [Test]
    public async Task RunAsync_MissingFile_ExitsTwo()
    {
        var (code, _, error) = await RunAsync("--config", Path.Combine(_folder, "none.json"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain("cannot be read"));
        }
    }

    [Test]
    public async Task RunAsync_MalformedJson_ExitsTwo()
    {
        var (code, _, error) = await RunAsync("--config", Write("{ \"Controller\": { \"Hosts\": [ }"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain("cannot be read"));
        }
    }

    [Test]
    public async Task RunAsync_InvalidConfiguration_ExitsTwoPrintingEveryErrorWithPath()
    {
        var json = Valid.Replace("\"192.0.2.11\" }", "\"192.0.2.999\" }", StringComparison.Ordinal);
        var (code, _, error) = await RunAsync("--config", Write(json), "--set", "Controller:Pipeline:EvaluationInterval=00:00:00", "--set", "Controller:Hosts:0:KeepAliveCount=500");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(error, Does.Contain("(3 errors"));
            Assert.That(error, Does.Contain("  Hosts[0].Probe.Address: '192.0.2.999' is not an IP address"));
            Assert.That(error, Does.Contain("  Hosts[0].KeepAliveCount: is 500"));
            Assert.That(error, Does.Contain("  Pipeline.EvaluationInterval: is 00:00:00"));
        }
    }

    [Test]
    public async Task RunAsync_ValidateValid_ExitsZeroWithoutConnecting()
    {
        // 192.0.2.11 (TEST-NET-1) is never contacted: --validate stops before anything connects.
        var (code, output, error) = await RunAsync("--config", Write(Valid), "--validate", "--mode", "automatic");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, error);
            Assert.That(output, Does.Contain("the configuration is valid: 1 hosts, 1 VMs, Automatic mode"));
        }
    }

    [Test]
    public void BuildConfiguration_LaterSourcesWin_FileThenEnvironmentThenCommandLine()
    {
        var path = Write("""{ "Controller": { "Http": { "Urls": "http://127.0.0.1:1" }, "Audit": { "Path": "file" } } }""");
        Environment.SetEnvironmentVariable("CLOUDLETS_Controller__Http__Urls", "http://127.0.0.1:2");
        try
        {
            var configuration = ControllerCommand.BuildConfiguration(new FileInfo(path), [new("Controller:Audit:Path", "command-line")]);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(configuration["Controller:Http:Urls"], Is.EqualTo("http://127.0.0.1:2"));
                Assert.That(configuration["Controller:Audit:Path"], Is.EqualTo("command-line"));
            }

            (configuration as IDisposable)?.Dispose();
        }
        finally
        {
            Environment.SetEnvironmentVariable("CLOUDLETS_Controller__Http__Urls", null);
        }
    }
}
