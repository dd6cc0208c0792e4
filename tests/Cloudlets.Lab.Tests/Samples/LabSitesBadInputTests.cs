using Cloudlets.Lab.Tests.Lab;
using Cloudlets.Samples.Lab;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Samples;

/// <summary>
/// Bad input to <c>cloudlets-lab up --sites</c> and <c>shape --matrix FILE</c>: every case is a typed
/// error before anything runs, and the sample exits 2 with the message (naming the matrix file's member)
/// and the usage, having changed nothing on the machine.
/// </summary>
[Category("BadInput")]
[NonParallelizable]
public sealed class LabSitesBadInputTests
{
    private const string Lab = "badsites";

    /// <summary>Bad matrix files: the content, and the member the error must name.</summary>
    public static readonly (string Content, string Field)[] BadMatrixFiles =
    [
        ("", "file"),
        ("{\"delays\": [", "file"),
        ("{\"delays\": []}", "delays"),
        ("{\"delay\": []}", "delay"),
        ("{\"delays\": [{\"site\": \"site-0\", \"host\": \"cloudlet-1\", \"delayMs\": 5}]}", "delays[0].site"),
        ("{\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-9\", \"delayMs\": 5}]}", "delays[0].host"),
        ("{\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-1\", \"delayMs\": -5}]}", "delays[0].delayMs"),
        ("{\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-1\", \"delayMs\": 1e9}]}", "delays[0].delayMs"),
        ("{\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-1\"}]}", "delays[0].delayMs"),
        ("{\"delays\": [{\"site\": \"site-2\", \"host\": \"cloudlet-1\", \"delayMs\": 5}, {\"site\": \"site-2\", \"host\": \"cloudlet-1\", \"delayMs\": 5}]}", "delays[1]"),
    ];

    private string _folder = "";

    private string Good => Path.Combine(_folder, "good.json");

    [OneTimeSetUp]
    public void WriteFiles()
    {
        _folder = Directory.CreateTempSubdirectory("matrix-").FullName;
        File.WriteAllText(Good, "{\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-1\", \"delayMs\": 5}]}");
        for (var i = 0; i < BadMatrixFiles.Length; i++)
        {
            File.WriteAllText(BadFile(i), BadMatrixFiles[i].Content);
        }
    }

    [OneTimeTearDown]
    public void RemoveFiles() => Directory.Delete(_folder, recursive: true);

    private string BadFile(int index) => Path.Combine(_folder, $"bad-{index}.json");

    /// <summary>The bad command lines other than bad matrix contents.</summary>
    private string[][] BadCommandLines() =>
    [
        ["up", "--sites", "0", "--name", Lab],
        ["up", "--sites", "9", "--name", Lab],
        ["up", "--sites", "-1", "--name", Lab],
        ["up", "--sites", "x", "--name", Lab],
        ["up", "--name", Lab, "--sites"],
        ["status", "--sites", "2", "--name", Lab],
        ["shape", "--sites", "2", "cloudlet-1", "5", "--name", Lab],
        ["up", "--matrix", Good, "--name", Lab],
        ["shape", "--name", Lab, "--matrix"],
        ["shape", "--matrix", Good, "cloudlet-1", "300", "--name", Lab],
        ["shape", "--matrix", Path.Combine(_folder, "absent.json"), "--name", Lab],
        ["shape", "--matrix", _folder, "--name", Lab],
    ];

    [Test]
    public void ParseAndValidate_BadSitesOrMatrixCommandLine_ThrowsATypedError()
    {
        using (Assert.EnterMultipleScope())
        {
            foreach (var args in BadCommandLines())
            {
                Assert.That(() => ParseAndValidate(args), Throws.InstanceOf<FormatException>().Or.InstanceOf<LabConfigurationException>(), string.Join(' ', args));
            }
        }
    }

    [Test]
    public void Parse_BadMatrixFile_ThrowsNamingTheFileAndTheMember()
    {
        using (Assert.EnterMultipleScope())
        {
            for (var i = 0; i < BadMatrixFiles.Length; i++)
            {
                Assert.That(() => LabCommandLine.Parse(["shape", "--matrix", BadFile(i), "--name", Lab]),
                    Throws.InstanceOf<FormatException>().With.Message.StartsWith($"--matrix {BadFile(i)}: {BadMatrixFiles[i].Field}: "), BadMatrixFiles[i].Content);
            }
        }
    }

    [Test]
    public void Parse_GoodMatrixAndSites_AreRead()
    {
        var shape = LabCommandLine.Parse(["shape", "--matrix", Good, "--name", Lab]);
        var up = LabCommandLine.Parse(["up", "--hosts", "2", "--sites", "3", "--name", Lab]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Matrix, Is.EqualTo(new[] { new Cloudlets.Lab.Shaping.LabSiteDelay("site-1", "cloudlet-1", TimeSpan.FromMilliseconds(5)) }));
            Assert.That(shape.Delays, Is.Empty);
            Assert.That(up.Sites, Is.EqualTo(3));
            Assert.That(LabCommandLine.Parse(["up", "--name", Lab]).Sites, Is.EqualTo(1), "the default is the edge alone");
        }
    }

    [Test]
    [Category("Lab")]
    public async Task Sample_EveryBadSitesOrMatrixCommandLine_ExitsTwoNamingTheMemberAndChangesNothing()
    {
        LabGate.Require();
        var before = MachineSnapshot();
        var cases = BadCommandLines().Select(args => (Args: args, Field: (string?)null))
            .Concat(BadMatrixFiles.Select((f, i) => (Args: new[] { "shape", "--matrix", BadFile(i), "--name", Lab }, Field: (string?)f.Field)))
            .ToList();
        using var parallel = new SemaphoreSlim(4);
        var runs = await Task.WhenAll(cases.Select(async c =>
        {
            await parallel.WaitAsync();
            try
            {
                return (c.Args, c.Field, Result: await LabSample.RunAsync(c.Args));
            }
            finally
            {
                parallel.Release();
            }
        }));

        using (Assert.EnterMultipleScope())
        {
            foreach (var (args, field, result) in runs)
            {
                var line = "cloudlets-lab " + string.Join(' ', args);
                Assert.That(result.ExitCode, Is.EqualTo(2), $"{line}: {result.StandardError}");
                Assert.That(result.StandardError, Does.Contain("usage: cloudlets-lab"), line);
                if (field is not null)
                {
                    Assert.That(result.StandardError, Does.Contain($": {field}: "), $"{line}: the error names the member");
                }
            }

            Assert.That(MachineSnapshot(), Is.EqualTo(before), "a bad command line made a namespace or lab state");
            Assert.That(CloudletLab.FindLeftovers(Lab), Is.Empty);
        }
    }

    /// <summary>What the sample does before it touches anything: parse, then (for up) the builder's validation.</summary>
    private static void ParseAndValidate(string[] args)
    {
        var parsed = LabCommandLine.Parse(args);
        if (parsed.Verb == "up")
        {
            CloudletLabBuilder.Validate(new CloudletLabOptions { Name = parsed.Name, Hosts = parsed.Hosts, Sites = parsed.Sites });
        }
    }

    private static string MachineSnapshot()
    {
        static IEnumerable<string> List(string folder) => Directory.Exists(folder) ? Directory.EnumerateFileSystemEntries(folder).Order(StringComparer.Ordinal) : [];
        return string.Join('\n', List("/run/netns").Concat(List(Path.Combine(LabPaths.DefaultRoot, "labs")))
            .Where(e => Path.GetFileName(e).StartsWith(Lab, StringComparison.Ordinal)));
    }
}
