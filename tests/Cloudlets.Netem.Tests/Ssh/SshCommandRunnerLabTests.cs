using Cloudlets.Probing.Commands;
using Cloudlets.Core.Options;
using Cloudlets.Netem.Ssh;
using Cloudlets.Netem.Tests.Lab;
using Cloudlets.TestUtils;

namespace Cloudlets.Netem.Tests.Ssh;

/// <summary>
/// <see cref="SshCommandRunner"/> against a real OpenSSH server on loopback (key-only): the right host
/// key connects and runs; an unknown, a changed or a revoked key fails before any command runs.
/// </summary>
[TestFixture]
[Category("Lab")]
[NonParallelizable]
public sealed class SshCommandRunnerLabTests
{
    private TestSshServer server = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        NetemLabGuard.Require();
        LabGate.Decide(TestSshServer.Available ? null : "OpenSSH (sshd, ssh-keygen) is missing (apt-get install openssh-server openssh-client).");

        server = await TestSshServer.StartAsync();
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }

    private SshCommandRunnerOptions Options(string? knownHosts = null, params string[] fingerprints)
    {
        var o = new SshCommandRunnerOptions { Host = "127.0.0.1", Port = server.Port, UserName = Environment.UserName, PrivateKeyFile = server.ClientKey, KnownHostsFile = knownHosts };
        foreach (var f in fingerprints)
        {
            o.HostKeyFingerprints.Add(f);
        }

        return o;
    }

    /// <summary>Runs a command that leaves a marker file, so a test can tell whether anything ran.</summary>
    private async Task<(CommandResult? Result, Exception? Error, bool Ran)> TouchAsync(SshCommandRunnerOptions options)
    {
        var marker = Path.Combine(server.Directory, "ran-" + Guid.NewGuid().ToString("N"));
        using var runner = SshCommandRunner.Create(options);
        try
        {
            var r = await runner.RunAsync(CommandLine.Of("/bin/sh", "-c", "touch \"$1\" && echo ran", "sh", marker));
            return (r, null, File.Exists(marker));
        }
        catch (Exception ex)
        {
            return (null, ex, File.Exists(marker));
        }
    }

    [Test]
    public async Task RunAsync_KnownHostKey_ConnectsAndRunsTheCommand()
    {
        var (result, error, ran) = await TouchAsync(Options(server.WriteKnownHosts("known_hosts_ok", server.KnownHostsLine)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error, Is.Null, server.Log);
            Assert.That(result?.StandardOutput.Trim(), Is.EqualTo("ran"));
            Assert.That(result?.ExitCode, Is.Zero);
            Assert.That(ran, Is.True);
        }
    }

    [Test]
    public async Task RunAsync_HashedKnownHostsEntry_Connects()
    {
        var path = server.WriteKnownHosts("known_hosts_hashed", server.KnownHostsLine);
        await TestSshServer.HashAsync(path);
        Assert.That(await File.ReadAllTextAsync(path), Does.StartWith("|1|"));
        var (result, error, _) = await TouchAsync(Options(path));
        Assert.That(error, Is.Null, server.Log);
        Assert.That(result?.StandardOutput.Trim(), Is.EqualTo("ran"));
    }

    [Test]
    public async Task RunAsync_PinnedFingerprint_Connects()
    {
        var fingerprint = await server.FingerprintAsync();
        var (result, error, ran) = await TouchAsync(Options(null, fingerprint));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fingerprint, Does.StartWith("SHA256:"));
            Assert.That(error, Is.Null, server.Log);
            Assert.That(ran, Is.True);
            Assert.That(result?.StandardOutput.Trim(), Is.EqualTo("ran"));
        }
    }

    [Test]
    public async Task RunAsync_UnknownHost_FailsBeforeAnyCommandRuns()
    {
        var other = await server.OtherPublicKeyAsync();
        var (_, error, ran) = await TouchAsync(Options(server.WriteKnownHosts("known_hosts_other_host", "[127.0.0.1]:1 " + other, "example.invalid " + other)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error, Is.TypeOf<SshHostKeyException>());
            Assert.That((error as SshHostKeyException)?.Verdict, Is.EqualTo(SshHostKeyVerdict.Unknown));
            Assert.That((error as SshHostKeyException)?.Fingerprint, Is.EqualTo(await server.FingerprintAsync()));
            Assert.That(ran, Is.False, "nothing ran on the unverified host");
        }
    }

    [Test]
    public async Task RunAsync_ChangedHostKey_FailsBeforeAnyCommandRuns()
    {
        var other = await server.OtherPublicKeyAsync();
        var (_, error, ran) = await TouchAsync(Options(server.WriteKnownHosts("known_hosts_changed", $"[127.0.0.1]:{server.Port} {other}")));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error, Is.TypeOf<SshHostKeyException>());
            Assert.That((error as SshHostKeyException)?.Verdict, Is.EqualTo(SshHostKeyVerdict.Changed));
            Assert.That(error?.Message, Does.Contain("nothing was run"));
            Assert.That(ran, Is.False);
        }
    }

    [Test]
    public async Task RunAsync_WrongPinnedFingerprint_FailsBeforeAnyCommandRuns()
    {
        var (_, error, ran) = await TouchAsync(Options(null, "SHA256:" + new string('A', 43)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((error as SshHostKeyException)?.Verdict, Is.EqualTo(SshHostKeyVerdict.Unknown));
            Assert.That(ran, Is.False);
        }
    }

    [Test]
    public async Task RunAsync_RevokedHostKey_FailsEvenWhenAlsoListed()
    {
        var path = server.WriteKnownHosts("known_hosts_revoked", server.KnownHostsLine, "@revoked * " + server.HostPublicKey);
        var (_, error, ran) = await TouchAsync(Options(path));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((error as SshHostKeyException)?.Verdict, Is.EqualTo(SshHostKeyVerdict.Revoked));
            Assert.That(ran, Is.False);
        }
    }

    [Test]
    public void Create_NoHostKeyVerification_IsRefusedBeforeConnecting()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => SshCommandRunner.Create(Options()));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "KnownHostsFile" }));
    }
}
