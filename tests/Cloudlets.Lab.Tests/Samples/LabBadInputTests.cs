using Cloudlets.Lab.Tests.Lab;
using Cloudlets.Samples.Lab;
using Cloudlets.TestUtils;

namespace Cloudlets.Lab.Tests.Samples;

/// <summary>
/// Bad input to the lab's command line: every case is a typed error (a <see cref="FormatException"/>
/// from the parser or a <see cref="LabConfigurationException"/> from the builder's validation),
/// and the sample exits 2 with the message and the usage, having changed nothing on the machine.
/// </summary>
[Category("BadInput")]
public sealed class LabBadInputTests
{
    private const string Lab = "badinput";

    /// <summary>The cases (the count is in the README).</summary>
    public static readonly string[][] BadCommandLines =
    [
        [],
        ["frobnicate"],
        ["--name", Lab, "up"],
        ["up", "--hosts", "0", "--name", Lab],
        ["up", "--hosts", "9", "--name", Lab],
        ["up", "--hosts", "x", "--name", Lab],
        ["up", "--hosts", "-1", "--name", Lab],
        ["up", "--transport", "udp", "--name", Lab],
        ["up", "--dirty-rate", "129", "--name", Lab],
        ["up", "--dirty-rate", "-1", "--name", Lab],
        ["up", "--dirty-rate", "fast", "--name", Lab],
        ["status", "--dirty-rate", "8", "--name", Lab],
        ["up", "--name", Lab, "--transport"],
        ["up", "--name", Lab, "--hosts"],
        ["up", "--hosts", "2", "--guest-on", "cloudlet-3", "--name", Lab],
        ["up", "--guest-on", "cloudlet-0", "--name", Lab],
        ["up", "--guest-on", "cloudlet-01", "--name", Lab],
        ["up", "--guest-on", "host-1", "--name", Lab],
        ["up", "--name", "Bad_Name"],
        ["up", "--name", ""],
        ["up", "--name", "a-name-longer-than-twenty-four"],
        ["up", "--name", "-lab"],
        ["up", "--name", "lab-"],
        ["up", "--cache", "relative/cache", "--name", Lab],
        ["up", "--cache", "/run/cache", "--name", Lab],
        ["up", "--json", "--name", Lab],
        ["up", "--unknown", "--name", Lab],
        ["status", "--hosts", "2", "--name", Lab],
        ["down", "--for", "5", "--name", Lab],
        ["clear", "cloudlet-1", "--name", Lab],
        ["shape", "--name", Lab],
        ["shape", "cloudlet-1", "--name", Lab],
        ["shape", "cloudlet-1", "-5", "--name", Lab],
        ["shape", "cloudlet-1", "abc", "--name", Lab],
        ["shape", "cloudlet-1", "NaN", "--name", Lab],
        ["shape", "cloudlet-1", "1e9", "--name", Lab],
        ["shape", "cloudlet-1", "300", "cloudlet-1", "20", "--name", Lab],
        ["shape", "cloudlet-x", "300", "--name", Lab],
        ["shape", "cloudlet-1", "300", "--for", "0", "--name", Lab],
        ["shape", "cloudlet-1", "300", "--for", "-1", "--name", Lab],
        ["shape", "cloudlet-1", "300", "--for", "1e12", "--name", Lab],
        ["migrate", "guest-1", "--name", Lab],
        ["migrate", "guest-0", "cloudlet-2", "--name", Lab],
        ["migrate", "guest-1", "host-2", "--name", Lab],
        ["migrate", "guest-1", "cloudlet-2", "--bandwidth", "0", "--name", Lab],
        ["migrate", "guest-1", "cloudlet-2", "--bandwidth", "x", "--name", Lab],
        ["migrate", "guest-1", "cloudlet-2", "cloudlet-3", "--name", Lab],
        ["cap", "--name", Lab],
        ["cap", "0", "--name", Lab],
        ["cap", "100001", "--name", Lab],
        ["cap", "8.5", "--name", Lab],
        ["cap", "-8", "--name", Lab],
        ["cap", "fast", "--name", Lab],
    ];

    [TestCaseSource(nameof(BadCommandLines))]
    public void ParseAndValidate_BadCommandLine_ThrowsATypedError(string[] args) =>
        Assert.That(() => ParseAndValidate(args), Throws.InstanceOf<FormatException>().Or.InstanceOf<LabConfigurationException>());

    [Test]
    [Category("Lab")]
    public async Task Sample_EveryBadCommandLine_ExitsTwoWithTheUsageAndChangesNothing()
    {
        LabGate.Require();
        var before = MachineSnapshot();
        using var parallel = new SemaphoreSlim(4);
        var runs = await Task.WhenAll(BadCommandLines.Select(async args =>
        {
            await parallel.WaitAsync();
            try
            {
                return (Args: args, Result: await LabSample.RunAsync(args));
            }
            finally
            {
                parallel.Release();
            }
        }));

        using (Assert.EnterMultipleScope())
        {
            foreach (var (args, result) in runs)
            {
                Assert.That(result.ExitCode, Is.EqualTo(2), $"cloudlets-lab {string.Join(' ', args)}: {result.StandardError}");
                Assert.That(result.StandardError, Does.Contain("usage: cloudlets-lab"), string.Join(' ', args));
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
            CloudletLabBuilder.Validate(new CloudletLabOptions
            {
                Name = parsed.Name,
                Hosts = parsed.Hosts,
                GuestsOn = parsed.GuestsOn,
                CacheFolder = parsed.CacheFolder ?? new CloudletLabOptions().CacheFolder,
            });
        }
    }

    /// <summary>Namespaces and lab folders under any name the cases give (other labs on the machine come and go meanwhile).</summary>
    private static string MachineSnapshot()
    {
        string[] names = [Lab, "Bad_Name", "a-name-longer", "-lab", "lab-"];
        static IEnumerable<string> List(string folder) => Directory.Exists(folder) ? Directory.EnumerateFileSystemEntries(folder).Order(StringComparer.Ordinal) : [];
        return string.Join('\n', List("/run/netns").Concat(List(Path.Combine(LabPaths.DefaultRoot, "labs")))
            .Where(e => names.Any(n => Path.GetFileName(e).StartsWith(n, StringComparison.Ordinal))));
    }
}
