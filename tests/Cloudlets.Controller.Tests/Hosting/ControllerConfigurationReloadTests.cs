using System.Text.Json;
using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Hosting;
using Cloudlets.Controller.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cloudlets.Controller.Tests.Hosting;

/// <summary>The reload against a real JSON file: what is applied, what needs a restart, and an invalid file refused.</summary>
public sealed class ControllerConfigurationReloadTests
{
    private const string Token1 = "first-token-0123456789";
    private const string Token2 = "second-token-0123456789";
    private string _folder = "";

    [SetUp]
    public void SetUp() => _folder = Directory.CreateTempSubdirectory("cloudlets-reload-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    private static string Json(string token, string period = "00:00:01", string uri = "qemu+tcp://192.0.2.11/system") => $$"""
        { "Controller": {
            "VantagePoints": [ { "Name": "edge" } ],
            "Hosts": [ { "Name": "c1", "Uri": "{{uri}}", "Probe": { "Address": "192.0.2.11" } } ],
            "Vms": [ { "Name": "web", "Users": [ { "VantagePoint": "edge" } ] } ],
            "Probing": { "Period": "{{period}}" },
            "Http": { "Token": "{{token}}" } } }
        """;

    private (ControllerConfigurationReload Reload, OperatorToken Token, string Config, string AuditPath, IConfigurationRoot Root, AuditLog Audit) Create()
    {
        var config = Path.Combine(_folder, "controller.json");
        File.WriteAllText(config, Json(Token1));
        var root = new ConfigurationBuilder().AddJsonFile(config, optional: false, reloadOnChange: false).Build();
        var options = ControllerConfiguration.Load(root);
        var auditPath = Path.Combine(_folder, "audit.jsonl");
        var audit = new AuditLog(new AuditLogOptions { Path = auditPath });
        var token = new OperatorToken(options.Http.ResolveToken());
        return (new ControllerConfigurationReload(root, new ControllerState(), audit, token, NullLoggerFactory.Instance), token, config, auditPath, root, audit);
    }

    private static List<JsonElement> Records(string path) => [.. File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    [Test]
    public void Apply_TokenAndProbingChanged_AppliesTokenAndNamesProbingForRestart()
    {
        var (reload, token, config, auditPath, root, audit) = Create();
        using (audit)
        using (reload)
        {
            File.WriteAllText(config, Json(Token2, period: "00:00:02"));
            root.Reload();
            reload.Apply();
        }

        var record = Records(auditPath).Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(token.Check.Check("Bearer " + Token2), Is.EqualTo(AuthorizationRefusal.None), "the new token is in force");
            Assert.That(token.Check.Check("Bearer " + Token1), Is.EqualTo(AuthorizationRefusal.InvalidToken), "the old one is not");
            Assert.That(record.GetProperty("event").GetString(), Is.EqualTo("config.reload"));
            Assert.That(record.GetProperty("valid").GetBoolean(), Is.True);
            Assert.That(record.GetProperty("applied").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "Http.Token" }));
            Assert.That(record.GetProperty("restartNeeded").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "Probing" }));
        }
    }

    [Test]
    public void Apply_InvalidFile_ChangesNothingAndAuditsEveryError()
    {
        var (reload, token, config, auditPath, root, audit) = Create();
        using (audit)
        using (reload)
        {
            File.WriteAllText(config, Json("short", uri: "qemu+ext://x/system"));
            root.Reload();
            reload.Apply();
        }

        var record = Records(auditPath).Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(token.Check.Check("Bearer " + Token1), Is.EqualTo(AuthorizationRefusal.None), "the token in force stays");
            Assert.That(record.GetProperty("valid").GetBoolean(), Is.False);
            Assert.That(record.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!.Split(':')[0]), Is.EquivalentTo(new[] { "Hosts[0].Uri", "Http.Token" }));
        }
    }

    [Test]
    public void Apply_NothingChanged_WritesNothing()
    {
        var (reload, _, _, auditPath, root, audit) = Create();
        using (audit)
        using (reload)
        {
            root.Reload();
            reload.Apply();
        }

        Assert.That(File.Exists(auditPath), Is.False);
    }
}
