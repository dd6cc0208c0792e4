using System.IO.Compression;
using System.Reflection;
using System.Reflection.Metadata;
using System.Xml.Linq;

namespace Cloudlets.Packaging.Tests;

/// <summary>
/// <c>dotnet pack</c> of every src project into a temporary folder feed, the contents of each package,
/// and a consumer project (generated in a temporary folder) built and run against that feed.
/// </summary>
[TestFixture]
[Category("Packaging")]
[NonParallelizable]
public sealed class PackagesTests
{
    // A bound against a hung restore, not a speed check: packing every package rebuilds them in a
    // folder of its own, which takes 1-2 min on a quiet 2-core machine and over 4 under load.
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(15);

    private string _repository = null!;
    private string _root = null!;
    private string _feed = null!;
    private string _version = null!;
    private List<string> _packageIds = null!;
    private List<string> _toolIds = null!;

    [OneTimeSetUp]
    public async Task PackEveryProjectAsync()
    {
        _repository = typeof(PackagesTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "RepositoryRoot").Value!;
        Assert.That(File.Exists(Path.Combine(_repository, "Cloudlets.Core.sln")), Is.True, $"no solution in {_repository}");

        // The one place the version comes from.
        _version = XDocument.Load(Path.Combine(_repository, "Directory.Build.props"))
            .Descendants("VersionPrefix").Single().Value.Trim();
        var projects = Directory.GetDirectories(Path.Combine(_repository, "src"))
            .Select(d => Path.Combine(d, Path.GetFileName(d) + ".csproj"))
            .Where(File.Exists)
            .Order(StringComparer.Ordinal)
            .ToList();
        // Libraries (referenced by the consumer) and dotnet tools (installed from the feed and run).
        static bool IsTool(string project) => File.ReadAllText(project).Contains("<PackAsTool>true</PackAsTool>", StringComparison.Ordinal);
        _packageIds = [.. projects.Where(p => !IsTool(p)).Select(Path.GetFileNameWithoutExtension).Select(n => n!)];
        _toolIds = [.. projects.Where(IsTool).Select(Path.GetFileNameWithoutExtension).Select(n => n!)];
        Assert.That(_packageIds, Is.Not.Empty);

        _root = Path.Combine(Path.GetTempPath(), "cloudlets-pack-" + Guid.NewGuid().ToString("N")[..12]);
        _feed = Path.Combine(_root, "feed");
        Directory.CreateDirectory(_feed);

        // One solution filter of the src projects packs them in one build, in its own output folder.
        var filter = Path.Combine(_root, "src.slnf");
        var relative = projects.Select(p => Path.GetRelativePath(_repository, p).Replace('\\', '/'));
        await File.WriteAllTextAsync(filter, $$"""
            { "solution": { "path": "{{Path.Combine(_repository, "Cloudlets.Core.sln").Replace('\\', '/')}}",
                            "projects": [ {{string.Join(", ", relative.Select(r => $"\"{r}\""))}} ] } }
            """);
        var pack = await DotnetCli.RunAsync(_root,
            ["pack", filter, "-c", "Release", "-o", _feed, "--artifacts-path", Path.Combine(_root, "artifacts"), "-nodeReuse:false"],
            CommandTimeout);
        await TestContext.Progress.WriteLineAsync($"dotnet pack of {projects.Count} projects: {pack.Elapsed.TotalSeconds:0.0} s");
        Assert.That(pack.ExitCode, Is.Zero, pack.Describe());
    }

    [OneTimeTearDown]
    public void RemoveTemporaryFolder()
    {
        if (_root is not null && Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Test]
    public void Pack_EverySrcProject_MakesPackageWithReadmeXmlDocsAndLicense()
    {
        foreach (var id in _packageIds)
        {
            var path = Path.Combine(_feed, $"{id}.{_version}.nupkg");
            Assert.That(File.Exists(path), Is.True, $"{path} was not made");
            using var package = ZipFile.OpenRead(path);
            var nuspec = XDocument.Load(package.GetEntry($"{id}.nuspec")!.Open());
            var metadata = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string? Meta(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
            var license = metadata.Elements().Single(e => e.Name.LocalName == "license");
            var docs = package.GetEntry($"lib/net10.0/{id}.xml");
            var readme = package.GetEntry("README.md");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(Meta("id"), Is.EqualTo(id));
                Assert.That(Meta("version"), Is.EqualTo(_version));
                Assert.That(Meta("readme"), Is.EqualTo("README.md"), id);
                Assert.That(license.Attribute("type")?.Value, Is.EqualTo("expression"), id);
                Assert.That(license.Value, Is.EqualTo("MIT"), id);
                Assert.That(Meta("description"), Is.Not.Null.And.Not.Empty, id);
                Assert.That(package.GetEntry($"lib/net10.0/{id}.dll"), Is.Not.Null, id);
                Assert.That(readme, Is.Not.Null, $"{id} has no README.md");
                Assert.That(docs, Is.Not.Null, $"{id} has no XML documentation");
            }

            using (var reader = new StreamReader(readme!.Open()))
            {
                Assert.That(reader.ReadToEnd(), Does.StartWith($"# {id}"), $"{id}'s README is not its own");
            }

            var members = XDocument.Load(docs!.Open()).Descendants("member").Count();
            Assert.That(members, Is.GreaterThan(10), $"{id}'s XML documentation has {members} members");
        }
    }

    [Test]
    public async Task Tools_InstalledFromTheFolderFeed_RunAndAnswerHelpWithExitZero()
    {
        Assert.That(_toolIds, Is.Not.Empty, "no src project is packed as a dotnet tool");
        var folder = Path.Combine(_root, "tools");
        Directory.CreateDirectory(folder);
        WriteFeedConfig(folder);
        foreach (var id in _toolIds)
        {
            using (var package = ZipFile.OpenRead(Path.Combine(_feed, $"{id}.{_version}.nupkg")))
            {
                var nuspec = XDocument.Load(package.GetEntry($"{id}.nuspec")!.Open());
                var types = nuspec.Descendants().Where(e => e.Name.LocalName == "packageType").Select(e => e.Attribute("name")?.Value);
                Assert.That(types, Does.Contain("DotnetTool"), id);
                Assert.That(package.Entries.Any(e => e.FullName.StartsWith("tools/net10.0/any/", StringComparison.Ordinal)), Is.True, id);
            }

            var toolPath = Path.Combine(folder, id);
            var install = await DotnetCli.RunAsync(folder,
                ["tool", "install", id, "--version", _version, "--tool-path", toolPath, "--configfile", Path.Combine(folder, "nuget.config")],
                CommandTimeout);
            Assert.That(install.ExitCode, Is.Zero, install.Describe());
            var command = Directory.GetFiles(toolPath).Select(Path.GetFileName).Single(n => n!.StartsWith("cloudlets-", StringComparison.Ordinal))!;
            var help = await RunProgramAsync(Path.Combine(toolPath, command), "--help");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(help.ExitCode, Is.Zero, $"{command} --help: {help.Output}");
                Assert.That(help.Output, Does.Contain("Usage").IgnoreCase, command);
            }
        }
    }

    /// <summary>
    /// The dotnet tools that live under samples/ (the src tools are found by their PackAsTool): project, package id
    /// and command. Each is packed into the feed, installed from it and run.
    /// </summary>
    private static readonly object[] SampleTools =
    [
        new object[] { "samples/Cloudlets.Samples.Netem/Cloudlets.Samples.Netem.csproj", "Cloudlets.Netem.Tool", "cloudlets-netem" },
    ];

    [TestCaseSource(nameof(SampleTools))]
    public async Task Tools_SampleProjects_PackInstallFromTheFeedAndAnswerHelpWithExitZero(string project, string id, string command)
    {
        var pack = await DotnetCli.RunAsync(_root,
            ["pack", Path.Combine(_repository, project), "-c", "Release", "-o", _feed, "--artifacts-path", Path.Combine(_root, "artifacts-" + command), "-nodeReuse:false"],
            CommandTimeout);
        Assert.That(pack.ExitCode, Is.Zero, pack.Describe());
        using (var package = ZipFile.OpenRead(Path.Combine(_feed, $"{id}.{_version}.nupkg")))
        {
            var nuspec = XDocument.Load(package.GetEntry($"{id}.nuspec")!.Open());
            var types = nuspec.Descendants().Where(e => e.Name.LocalName == "packageType").Select(e => e.Attribute("name")?.Value);
            Assert.That(types, Does.Contain("DotnetTool"), id);
            Assert.That(package.GetEntry($"tools/net10.0/any/{command}.dll"), Is.Not.Null, id);
        }

        var folder = Path.Combine(_root, "sample-tools", command);
        Directory.CreateDirectory(folder);
        WriteFeedConfig(folder);
        var toolPath = Path.Combine(folder, "bin");
        var install = await DotnetCli.RunAsync(folder,
            ["tool", "install", id, "--version", _version, "--tool-path", toolPath, "--configfile", Path.Combine(folder, "nuget.config")],
            CommandTimeout);
        Assert.That(install.ExitCode, Is.Zero, install.Describe());
        var help = await RunProgramAsync(Path.Combine(toolPath, command), "--help");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(help.ExitCode, Is.Zero, $"{command} --help: {help.Output}");
            Assert.That(help.Output, Does.Contain("Usage").IgnoreCase.And.Contain("Exit codes:"), command);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunProgramAsync(string path, string argument)
    {
        var start = new System.Diagnostics.ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(argument);
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);   // the process this test started, by its handle
            await process.WaitForExitAsync();
        }

        return (process.ExitCode, await output + await error);
    }

    [Test]
    public void Repository_EverySrcProject_HasPublicApiBaselines()
    {
        foreach (var id in _packageIds.Concat(_toolIds))
        {
            var folder = Path.Combine(_repository, "src", id);
            var shipped = Path.Combine(folder, "PublicAPI.Shipped.txt");
            var unshipped = Path.Combine(folder, "PublicAPI.Unshipped.txt");
            Assert.That(File.Exists(shipped) && File.Exists(unshipped), Is.True, $"{id} has no PublicAPI baselines");
            var declared = File.ReadLines(shipped).Concat(File.ReadLines(unshipped))
                .Count(l => l.Length > 0 && !l.StartsWith('#'));
            // A tool's public surface is its entry point's few types; a library's is its API.
            Assert.That(declared, Is.GreaterThan(_toolIds.Contains(id) ? 0 : 10), $"{id} declares {declared} public symbols");
        }
    }

    [Test]
    public void Pack_EverySrcProject_MakesSymbolPackageWithPdb()
    {
        foreach (var id in _packageIds)
        {
            var path = Path.Combine(_feed, $"{id}.{_version}.snupkg");
            Assert.That(File.Exists(path), Is.True, $"{path} was not made");
            using var symbols = ZipFile.OpenRead(path);
            var pdb = symbols.GetEntry($"lib/net10.0/{id}.pdb");
            Assert.That(pdb, Is.Not.Null, $"{id}'s symbol package has no PDB");
            Assert.That(pdb!.Length, Is.GreaterThan(0));
        }
    }

    [Test]
    public void Pack_SymbolPackages_PointAtOrCarryTheSources()
    {
        // SourceLink when the clone has a git remote; every source embedded in the PDB when it has none.
        var sourceLink = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
        var embeddedSource = new Guid("0E8A571B-6926-466E-B4AD-8AB04611F5FE");
        foreach (var id in _packageIds)
        {
            using var symbols = ZipFile.OpenRead(Path.Combine(_feed, $"{id}.{_version}.snupkg"));
            using var pdb = new MemoryStream();
            using (var entry = symbols.GetEntry($"lib/net10.0/{id}.pdb")!.Open())
            {
                entry.CopyTo(pdb);
            }

            pdb.Position = 0;
            using var provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
            var reader = provider.GetMetadataReader();
            var kinds = reader.CustomDebugInformation.Select(h => reader.GetGuid(reader.GetCustomDebugInformation(h).Kind)).ToList();
            var documents = reader.Documents.Count;
            var embedded = reader.CustomDebugInformation
                .Select(reader.GetCustomDebugInformation)
                .Count(c => reader.GetGuid(c.Kind) == embeddedSource && c.Parent.Kind == HandleKind.Document);
            var sources = reader.Documents.Select(d => reader.GetString(reader.GetDocument(d).Name)).Where(n => n.EndsWith(".cs", StringComparison.Ordinal)).ToList();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(kinds.Contains(sourceLink) || embedded >= documents, Is.True,
                    $"{id}: no SourceLink and only {embedded} of {documents} sources embedded");
                Assert.That(sources, Has.Some.EndsWith(".cs"), id);
            }
        }
    }

    [Test]
    public void Pack_ProjectReferences_BecomeDependenciesOfTheSameVersion()
    {
        var path = Path.Combine(_feed, $"Cloudlets.Lab.{_version}.nupkg");
        using var package = ZipFile.OpenRead(path);
        var nuspec = XDocument.Load(package.GetEntry("Cloudlets.Lab.nuspec")!.Open());
        var dependencies = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency")
            .ToDictionary(e => e.Attribute("id")!.Value, e => e.Attribute("version")!.Value, StringComparer.Ordinal);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dependencies, Does.ContainKey("Cloudlets.Core").WithValue(_version));
            Assert.That(dependencies, Does.ContainKey("Cloudlets.Netem").WithValue(_version));
        }
    }

    [Test]
    public async Task Consumer_BuiltAgainstLocalFolderFeed_RunsAndPrintsPackageVersion()
    {
        var consumer = Path.Combine(_root, "consumer");
        Directory.CreateDirectory(consumer);
        await WriteConsumerAsync(consumer);

        var build = await DotnetCli.RunAsync(consumer,
            ["build", "Consumer.csproj", "-c", "Release", "-o", Path.Combine(consumer, "out"), "-nodeReuse:false"],
            CommandTimeout);
        await TestContext.Progress.WriteLineAsync($"consumer restore and build: {build.Elapsed.TotalSeconds:0.0} s");
        Assert.That(build.ExitCode, Is.Zero, build.Describe());
        Assert.That(_readmeBlocks, Is.GreaterThanOrEqualTo(2), "the README's API tour and the SSH example were compiled");

        // The consumer resolved the packages from the folder feed, into its own packages folder.
        Assert.That(Directory.Exists(Path.Combine(_root, "packages", "cloudlets.core", _version)), Is.True,
            "Cloudlets.Core was not restored from the local feed");

        var run = await DotnetCli.RunAsync(consumer, [Path.Combine(consumer, "out", "Consumer.dll")], TimeSpan.FromMinutes(1));
        Assert.That(run.ExitCode, Is.Zero, run.Describe());
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.ContainKey("policy").WithValue("Cloudlets.Core.Decisions.LowestLatencyPolicy"));
            Assert.That(lines, Does.ContainKey("options-errors").WithValue("0"));
            Assert.That(lines, Does.ContainKey("target").WithValue("cloudlet-1 198.18.0.11:22"));
            Assert.That(lines.GetValueOrDefault("version"), Does.StartWith(_version), "the informational version of Cloudlets.Core");
            Assert.That(lines, Does.ContainKey("libvirt").WithValue("cloudlet-1 test:///default"));
            Assert.That(lines, Does.ContainKey("lab").WithValue("Cloudlets.Lab"));
            Assert.That(lines, Does.ContainKey("netem").WithValue("Cloudlets.Netem"));

            // The consumer's own policy and own hosts, run by the real pipeline in virtual time.
            Assert.That(lines, Does.ContainKey("own-policy-evaluations").WithValue("many"));
            Assert.That(lines, Does.ContainKey("moves").WithValue("1"), "one move: its policy's decision, confirmed by nothing else");
            Assert.That(lines, Does.ContainKey("outcomes").WithValue("vm a->b Succeeded"));
            Assert.That(lines, Does.ContainKey("vm-on").WithValue("b"));
            Assert.That(lines, Does.ContainKey("migrate-calls").WithValue("1"));
            Assert.That(lines, Does.ContainKey("last-decision").WithValue("b AlreadyBest"));
        }
    }

    private async Task WriteConsumerAsync(string folder)
    {
        // Stop MSBuild from looking above the consumer for the repository's own props.
        await File.WriteAllTextAsync(Path.Combine(folder, "Directory.Build.props"), "<Project />\n");
        await File.WriteAllTextAsync(Path.Combine(folder, "Directory.Build.targets"), "<Project />\n");
        await File.WriteAllTextAsync(Path.Combine(folder, "Directory.Packages.props"), "<Project />\n");

        WriteFeedConfig(folder);

        var references = string.Join(Environment.NewLine,
            _packageIds.Select(id => $"""    <PackageReference Include="{id}" Version="{_version}" />"""));
        await File.WriteAllTextAsync(Path.Combine(folder, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
            {references}
                <PackageReference Include="Microsoft.Extensions.TimeProvider.Testing" Version="10.0.0" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(folder, "Program.cs"), """
            using System.Net;
            using System.Reflection;
            using Cloudlets.Core.Decisions;
            using Cloudlets.Core.Options;
            using Cloudlets.Core.Probing;

            var options = new LowestLatencyPolicyOptions { ConfirmationWindows = 2 };
            var policy = new LowestLatencyPolicy(options);
            var target = new ProbeTarget("cloudlet-1", IPAddress.Parse("198.18.0.11"), 22);
            var version = typeof(LowestLatencyPolicy).Assembly
                .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            var libvirt = new Cloudlets.Libvirt.LibvirtHostOptions { Name = "cloudlet-1", Uri = new Uri("test:///default") };
            Console.WriteLine($"policy={policy.GetType().FullName}");
            var errors = new OptionsErrors();
            options.Validate(errors);
            Console.WriteLine($"options-errors={errors.Errors.Count}");
            Console.WriteLine($"target={target.Name} {target.Address}:{target.Port}");
            Console.WriteLine($"version={version}");
            Console.WriteLine($"libvirt={libvirt.Name} {libvirt.Uri}");
            Console.WriteLine($"lab={typeof(Cloudlets.Lab.CloudletLabBuilder).Assembly.GetName().Name}");
            Console.WriteLine($"netem={typeof(Cloudlets.Netem.NetemShaperFactory).Assembly.GetName().Name}");
            await OwnSeams.RunAsync();
            """);
        await File.WriteAllTextAsync(Path.Combine(folder, "OwnSeams.cs"), OwnSeamsSource);
        await File.WriteAllTextAsync(Path.Combine(folder, "ReadmeTour.cs"), ReadmeTourSource(_repository, out _readmeBlocks));
    }

    private int _readmeBlocks;

    private void WriteFeedConfig(string folder)
    {
        // The folder feed in addition to the machine's default sources (no source is cleared or
        // named); a private packages folder, so a package of the same version restored earlier
        // never stands in for the one just packed. Packages this machine already has are reused.
        var userPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var fallback = Directory.Exists(userPackages)
            ? new XElement("fallbackPackageFolders", new XElement("add", new XAttribute("key", "user"), new XAttribute("value", userPackages)))
            : null;
        var config = new XDocument(new XElement("configuration",
            new XElement("packageSources", new XElement("add", new XAttribute("key", "cloudlets-local"), new XAttribute("value", _feed))),
            new XElement("config", new XElement("add", new XAttribute("key", "globalPackagesFolder"), new XAttribute("value", Path.Combine(_root, "packages")))),
            fallback));
        config.Save(Path.Combine(folder, "nuget.config"));
    }

    /// <summary>
    /// Every <c>```csharp</c> block of the repository's README as the body of a method of its own, with a
    /// <c>using</c> for every namespace that holds a public type of the packages: the consumer's build
    /// then compiles the README's code against the packed packages (it is compiled, not run: it names
    /// real hosts), so the documented API cannot drift from the shipped one.
    /// </summary>
    internal static string ReadmeTourSource(string repository, out int blocks)
    {
        var readme = File.ReadAllText(Path.Combine(repository, "README.md"));
        var code = System.Text.RegularExpressions.Regex.Matches(readme, @"^[ \t]*```csharp[ \t]*\n(?<code>.*?)^[ \t]*```",
                System.Text.RegularExpressions.RegexOptions.Singleline | System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => m.Groups["code"].Value)
            .ToList();
        blocks = code.Count;
        var publicType = new System.Text.RegularExpressions.Regex(@"^public (sealed |static |abstract |readonly |partial )*(class|record|interface|struct|enum)\b",
            System.Text.RegularExpressions.RegexOptions.Multiline);
        var namespaces = Directory.GetDirectories(Path.Combine(repository, "src"))
            .Where(d => !File.Exists(Path.Combine(d, Path.GetFileName(d) + ".csproj"))
                || !File.ReadAllText(Path.Combine(d, Path.GetFileName(d) + ".csproj")).Contains("<PackAsTool>true</PackAsTool>", StringComparison.Ordinal))
            .SelectMany(d => Directory.GetFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(File.ReadAllText)
            .Where(text => publicType.IsMatch(text))
            .Select(text => System.Text.RegularExpressions.Regex.Match(text, @"^namespace ([A-Za-z0-9_.]+);", System.Text.RegularExpressions.RegexOptions.Multiline))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal);
        var source = new System.Text.StringBuilder();
        source.AppendLine("// The README's C# blocks, extracted by the packaging test. Compiled, never run.");
        source.AppendLine("#pragma warning disable");
        foreach (var ns in new[] { "System.Net", "System.Reactive.Concurrency", "System.Reactive.Linq" }.Concat(namespaces))
        {
            source.AppendLine($"using {ns};");
        }

        source.AppendLine("internal static class ReadmeTour");
        source.AppendLine("{");
        for (var i = 0; i < code.Count; i++)
        {
            source.AppendLine($"    internal static async Task Block{i + 1}Async()");
            source.AppendLine("    {");
            source.AppendLine($"#line 1 \"README.md block {i + 1}\"");
            source.Append(code[i]);
            source.AppendLine("#line default");
            source.AppendLine("    }");
        }

        source.AppendLine("}");
        return source.ToString();
    }

    // The consumer's own policy (reading only the public snapshot views, writing only through the
    // public buffer writer) and its own in-memory hypervisor, driven by the real pipeline in
    // automatic mode on a fake clock: what a user who brings their own parts writes.
    private const string OwnSeamsSource = """
        using System.Net;
        using System.Reactive.Subjects;
        using Cloudlets.Core.Decisions;
        using Cloudlets.Core.Hypervisors;
        using Cloudlets.Core.Pipeline;
        using Cloudlets.Core.Probing;
        using Microsoft.Extensions.Time.Testing;

        /// <summary>Scores a host by its worst user's median RTT (not the library's weighted mean); moves at once.</summary>
        public sealed class WorstUserPolicy : IMigrationPolicy
        {
            public int Evaluations;

            public void Evaluate(FleetSnapshot snapshot, DecisionBuffer results)
            {
                Interlocked.Increment(ref Evaluations);
                results.Begin(snapshot);
                for (var vm = 0; vm < snapshot.VmCount; vm++)
                {
                    var current = snapshot.PlacementOf(vm);
                    if (current < 0)
                    {
                        results.Set(vm, DecisionKind.NoDecision, DecisionReason.PlacementUnknown);
                        continue;
                    }

                    if (snapshot.IsMigrating(vm))
                    {
                        results.Set(vm, DecisionKind.NoDecision, DecisionReason.MigrationInProgress);
                        continue;
                    }

                    var currentScore = Score(snapshot, vm, current);
                    var best = current;
                    var bestScore = currentScore;
                    for (var host = 0; host < snapshot.HostCount; host++)
                    {
                        var score = Score(snapshot, vm, host);
                        results.SetCandidate(vm, host, double.IsNaN(score) ? CandidateStatus.NotEvaluated : CandidateStatus.Eligible, score);
                        if (double.IsFinite(score) && (double.IsNaN(bestScore) || score < bestScore - 1.0))
                        {
                            best = host;
                            bestScore = score;
                        }
                    }

                    if (best == current)
                    {
                        results.Set(vm, DecisionKind.Stay, DecisionReason.AlreadyBest, -1, currentScore);
                    }
                    else
                    {
                        results.Set(vm, DecisionKind.Move, DecisionReason.Move, best, currentScore, bestScore);
                    }
                }
            }

            public double Score(FleetSnapshot snapshot, int vmIndex, int hostIndex)
            {
                var users = snapshot.UserVantagePointsOf(vmIndex);
                if (users.Length == 0)
                {
                    return double.NaN;
                }

                var worst = 0.0;
                foreach (var vantagePoint in users)
                {
                    ref readonly var cell = ref snapshot.LatencyOf(vantagePoint, hostIndex);
                    if (!cell.HasData || cell.Received == 0)
                    {
                        return double.NaN;
                    }

                    worst = Math.Max(worst, cell.MedianMs);
                }

                return worst;
            }
        }

        /// <summary>An in-memory hypervisor: VMs are names in a set; a migration moves the name to the destination.</summary>
        public sealed class MemoryHost : IHypervisorHost
        {
            private static readonly Dictionary<Uri, MemoryHost> Hosts = [];
            private readonly HashSet<string> _vms = [];
            private readonly Subject<HostEvent> _events = new();

            public MemoryHost(string name)
            {
                Name = name;
                Uri = new Uri($"memory:///{name}");
                lock (Hosts) { Hosts[Uri] = this; }
            }

            public string Name { get; }
            public Uri Uri { get; }
            public HostConnectionState ConnectionState => HostConnectionState.Connected;
            public IObservable<HostEvent> Events => _events;
            public int MigrationCalls;
            public IReadOnlyCollection<string> Vms { get { lock (_vms) { return [.. _vms]; } } }

            public void Run(string vm) { lock (_vms) { _vms.Add(vm); } }

            public Task<HostInfo> GetInfoAsync(CancellationToken cancellationToken = default) =>
                Task.FromResult(new HostInfo(Name, Uri, Name, "memory", 8, 1000, 16L << 30, 12L << 30));

            public Task<IReadOnlyList<VmInfo>> ListVmsAsync(CancellationToken cancellationToken = default) =>
                Task.FromResult<IReadOnlyList<VmInfo>>([.. Vms.Select(Info)]);

            public Task<VmInfo?> TryGetVmAsync(string vmName, CancellationToken cancellationToken = default) =>
                Task.FromResult(Vms.Contains(vmName) ? Info(vmName) : null);

            public Task<VmInfo> DefineVmAsync(VmSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();
            public Task StartVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();
            public Task DestroyVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();
            public Task UndefineVmAsync(string vmName, CancellationToken cancellationToken = default) => throw new NotSupportedException();

            public Task<MigrationResult> MigrateAsync(string vmName, MigrationDestination destination, MigrationOptions options,
                IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
            {
                Interlocked.Increment(ref MigrationCalls);
                MemoryHost target;
                lock (Hosts) { target = Hosts[destination.ManagementUri]; }
                lock (_vms) { _vms.Remove(vmName); }
                target.Run(vmName);
                return Task.FromResult(new MigrationResult(vmName, Name, destination.Name, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(50), 256L << 20));
            }

            public ValueTask DisposeAsync()
            {
                _events.Dispose();
                return ValueTask.CompletedTask;
            }

            private static VmInfo Info(string name) => new(name, Guid.Empty, VmState.Running, 256L << 20, 256L << 20, 1, true);
        }

        public static class OwnSeams
        {
            public static async Task RunAsync()
            {
                var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
                var a = new MemoryHost("a");
                var b = new MemoryHost("b");
                a.Run("vm");
                var policy = new WorstUserPolicy();
                using var samples = new Subject<LatencySample>();
                var decisions = new List<MigrationDecision>();
                var outcomes = new List<MigrationOutcome>();
                var pipeline = new MigrationPipelineBuilder()
                    .WithSamples(samples)
                    .WithTimeProvider(clock)
                    .WithPolicy(policy)
                    .AddHost(a, "a")
                    .AddHost(b, "b")
                    .AddVm("vm", "edge")
                    .Configure(o =>
                    {
                        o.Mode = PipelineMode.Automatic;
                        o.EvaluationInterval = TimeSpan.FromSeconds(5);
                        o.SampleWindow = 5;
                    })
                    .Build();
                await using (pipeline.ConfigureAwait(false))
                {
                    using var d = pipeline.Decisions.Subscribe(x => { lock (decisions) { decisions.Add(x); } });
                    using var o = pipeline.Outcomes.Subscribe(x => { lock (outcomes) { outcomes.Add(x); } });
                    await pipeline.StartAsync().ConfigureAwait(false);
                    var ta = new ProbeTarget("a", IPAddress.Loopback);
                    var tb = new ProbeTarget("b", IPAddress.Loopback);
                    // Virtual seconds: one probe per host per second (a 300 ms away, b 20 ms), until an
                    // outcome is in or ten virtual minutes have passed; a real millisecond between steps
                    // lets continuations scheduled on the thread pool run.
                    for (var second = 0; second < 600; second++)
                    {
                        lock (outcomes) { if (outcomes.Count > 0 && second > 60) break; }
                        samples.OnNext(new LatencySample("edge", ta, clock.GetUtcNow(), TimeSpan.FromMilliseconds(300), ProbeStatus.Ok));
                        samples.OnNext(new LatencySample("edge", tb, clock.GetUtcNow(), TimeSpan.FromMilliseconds(20), ProbeStatus.Ok));
                        for (var slice = 0; slice < 100; slice++)
                        {
                            clock.Advance(TimeSpan.FromMilliseconds(10));
                        }

                        await Task.Delay(1).ConfigureAwait(false);
                    }

                    await pipeline.StopAsync().ConfigureAwait(false);
                }

                lock (decisions)
                {
                    Console.WriteLine($"own-policy-evaluations={(policy.Evaluations > 0 ? "many" : "0")}");
                    Console.WriteLine($"moves={decisions.Count(x => x.IsMove)}");
                    Console.WriteLine($"last-decision={decisions.LastOrDefault()?.CurrentHost} {decisions.LastOrDefault()?.Reason}");
                }

                lock (outcomes)
                {
                    Console.WriteLine($"outcomes={string.Join(";", outcomes.Select(x => $"{x.VmName} {x.Source}->{x.Destination} {x.Kind}"))}");
                }

                Console.WriteLine($"vm-on={(a.Vms.Contains("vm") ? "a" : "")}{(b.Vms.Contains("vm") ? "b" : "")}");
                Console.WriteLine($"migrate-calls={a.MigrationCalls + b.MigrationCalls}");
            }
        }
        """;
}
