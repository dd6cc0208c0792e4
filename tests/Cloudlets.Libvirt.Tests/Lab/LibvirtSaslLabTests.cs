using System.Runtime.Versioning;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.TestUtils;

namespace Cloudlets.Libvirt.Tests.Lab;

/// <summary>
/// The libvirt host over SASL on TLS (issue 13), against a lab whose libvirtds require a SCRAM-SHA-256 login
/// (<c>auth_tls = "sasl"</c>, a sasldb per host): connect, list, events and live migration there and back with
/// the guest answering throughout, the credentials answered by the library's auth callback (and, for the
/// peer-to-peer hand-over, by each source daemon's own auth.conf); a wrong password and a missing credential
/// provider each fail with <see cref="HypervisorErrorKind.AuthenticationFailed"/> after one attempt, before
/// anything changes, and no message holds a password.
/// </summary>
[Category("Lab")]
[NonParallelizable]
[SupportedOSPlatform("linux")]
public sealed class LibvirtSaslLabTests : LabFixture
{
    private const string H1 = "cloudlet-1";
    private const string H2 = "cloudlet-2";

    protected override string LabPrefix => "sasl";

    protected override int LabHosts => 2;

    protected override IReadOnlyList<string> LabGuestsOn => [H1];

    protected override LabTransport LabTransport => LabTransport.TlsSasl;

    private (string User, string Password) Credential => Lab.ReadSaslCredential() ?? throw new InvalidOperationException("a SASL lab has a credential");

    [Test]
    [Order(1)]
    public async Task MigrateAsync_OverSaslThereAndBack_ListsEventsAndGuestAnswersThroughout()
    {
        var (user, password) = Credential;
        var provider = new CountingProvider(new LibvirtCredential(user, password));
        Assert.That(Lab.GetHost(H1).Uri.Scheme, Is.EqualTo("qemu+tls"), "SASL runs on the lab's TLS URIs");
        _ = await TransportLabChecks.MigrateThereAndBackAsync(Lab, H1, H2, "SASL on TLS", provider);
        TestContext.Out.WriteLine("provider asked for: " + string.Join(", ", provider.Uris));
        // Once per connection the library opened: each host's, and the destination connection each migration opens
        // for its checks. The hand-over itself is the source daemon's own connection, authenticated by its auth.conf.
        Assert.That(provider.Uris, Has.Count.GreaterThanOrEqualTo(2).And.All.Matches<Uri>(u => u == Lab.GetHost(H1).Uri || u == Lab.GetHost(H2).Uri));
    }

    [Test]
    [Order(2)]
    public async Task MigrateAsync_SourceDaemonWithoutAuthConf_FailsTypedAndGuestStaysOnSource()
    {
        var (user, password) = Credential;
        var provider = new StaticLibvirtCredentialProvider(user, password);
        await using var h1 = await TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1, provider);
        await using var h2 = await TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H2).Uri, H2, provider);
        // Proof that the peer-to-peer hand-over is authenticated by the source daemon's own /etc/libvirt/auth.conf
        // (not by this process's credentials): without it, cloudlet-1's libvirtd cannot log in to cloudlet-2's.
        var authConf = Path.Combine(Lab.GetHost(H1).Folder, "etc", "auth.conf");
        File.Move(authConf, authConf + ".away");
        HypervisorException? ex;
        try
        {
            ex = Assert.CatchAsync<HypervisorException>(() => h1.MigrateAsync(Lab.Guests[0].Name, MigrationDestination.Of(h2, Lab.GetHost(H2).MigrationUri), new MigrationOptions()));
            TestContext.Out.WriteLine(ex?.GetType().Name + ": " + ex?.Message);
        }
        finally
        {
            File.Move(authConf + ".away", authConf);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex?.ToString(), Does.Not.Contain(password), "no password in the error");
            Assert.That((await h1.TryGetVmAsync(Lab.Guests[0].Name))?.State, Is.EqualTo(VmState.Running), "the guest still runs on cloudlet-1");
            Assert.That(await h2.TryGetVmAsync(Lab.Guests[0].Name), Is.Null, "no copy was left on cloudlet-2");
        }
    }

    [Test]
    [Order(3)]
    public async Task Reconnect_PasswordRefused_WaitsTheLongestDelayBetweenAttemptsThenPicksUpTheRightOne()
    {
        var (user, password) = Credential;
        var provider = new CountingProvider(new LibvirtCredential(user, password));
        var maxDelay = TimeSpan.FromSeconds(3);
        await using var h1 = await LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions
        {
            Name = H1,
            Uri = Lab.GetHost(H1).Uri,
            NetworkNamespace = Lab.Edge.Namespace,
            DomainType = "qemu",
            Credentials = provider,
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(50),
            ReconnectMaxDelay = maxDelay,
        });

        // The password is "rotated" on the client side only: every reconnect attempt is refused by the daemon.
        provider.Credential = new LibvirtCredential(user, "wrong-" + Guid.NewGuid().ToString("N"));
        await Lab.KillLibvirtdAsync(H1);
        await WaitForAsync(() => h1.ConnectionState == HostConnectionState.Reconnecting, TimeSpan.FromSeconds(10));
        await Lab.RestartLibvirtdAsync(H1);
        var asked = provider.Uris.Count;
        await WaitForAsync(() => provider.Uris.Count >= asked + 3, TimeSpan.FromSeconds(20));
        var times = provider.Times.Skip(asked).ToList();
        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToList();
        TestContext.Out.WriteLine("gaps between refused attempts: " + string.Join(", ", gaps.Select(g => $"{g.TotalMilliseconds:0} ms")));
        Assert.That(h1.ConnectionState, Is.EqualTo(HostConnectionState.Reconnecting), "still reconnecting while the password is wrong");

        provider.Credential = new LibvirtCredential(user, password);
        await WaitForAsync(() => h1.ConnectionState == HostConnectionState.Connected, maxDelay * 3);
        using (Assert.EnterMultipleScope())
        {
            // After the first refusal each attempt waits ReconnectMaxDelay (no doubling up from 50 ms).
            Assert.That(gaps, Has.All.GreaterThanOrEqualTo(maxDelay - TimeSpan.FromMilliseconds(300)), "no retry storm on a refused password");
            Assert.That((await h1.TryGetVmAsync(Lab.Guests[0].Name))?.State, Is.EqualTo(VmState.Running), "reconnected with the right password");
        }
    }

    [Test]
    public async Task ConnectAsync_WrongPassword_AuthenticationFailedAfterOneAttemptWithoutPasswords()
    {
        var (user, password) = Credential;
        var wrong = "wrong-" + Guid.NewGuid().ToString("N");
        var provider = new CountingProvider(new LibvirtCredential(user, wrong));
        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1, provider));
        TestContext.Out.WriteLine(ex!.Message);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AuthenticationFailed));
            Assert.That(ex.IsTransient, Is.False, "a wrong password is not worth retrying");
            Assert.That(provider.Uris, Has.Count.EqualTo(1), "one attempt: the provider was asked once");
            Assert.That(ex.ToString(), Does.Not.Contain(wrong).And.Not.Contain(password), "no password in the message or the stack");
        }

        await AssertNothingChangedAsync();
    }

    [Test]
    public async Task ConnectAsync_NoCredentialProvider_AuthenticationFailed()
    {
        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1));
        TestContext.Out.WriteLine(ex!.Message);
        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AuthenticationFailed));
        await AssertNothingChangedAsync();
    }

    [Test]
    public async Task ConnectAsync_ProviderWithoutCredentialForTheUri_AuthenticationFailed()
    {
        var provider = new CountingProvider(null);
        var ex = Assert.ThrowsAsync<LibvirtException>(() => TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1, provider));
        TestContext.Out.WriteLine(ex!.Message);
        Assert.That(ex.Kind, Is.EqualTo(HypervisorErrorKind.AuthenticationFailed));
        Assert.That(provider.Uris, Is.EqualTo(new[] { Lab.GetHost(H1).Uri }), "asked once, with the host's URI");
        await AssertNothingChangedAsync();
    }

    [Test]
    public async Task StatusJson_SaslLab_NamesTheCredentialFilesNotThePassword()
    {
        var (_, password) = Credential;
        var json = (await Lab.GetStatusAsync()).ToJson();
        var host = Lab.GetHost(H1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(json, Does.Contain("\"transport\":\"tls-sasl\"").Or.Contain("\"transport\": \"tls-sasl\""));
            Assert.That(json, Does.Contain(LabHost.SaslUser));
            Assert.That(json, Does.Not.Contain(password), "status never shows the password");
            Assert.That(File.GetUnixFileMode(host.SaslPasswordFile!), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(host.SaslAuthFile!), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
    }

    private async Task AssertNothingChangedAsync()
    {
        var (user, password) = Credential;
        await using var h1 = await TransportLabChecks.ConnectAsync(Lab, Lab.GetHost(H1).Uri, H1, new StaticLibvirtCredentialProvider(user, password));
        Assert.That((await h1.TryGetVmAsync(Lab.Guests[0].Name))?.State, Is.EqualTo(VmState.Running), "the guest still runs on cloudlet-1");
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"the condition held within {within}");
            await Task.Delay(50);
        }
    }

    private sealed class CountingProvider(LibvirtCredential? credential) : ILibvirtCredentialProvider
    {
        private readonly Lock _gate = new();
        private readonly List<Uri> _uris = [];
        private readonly List<DateTime> _times = [];

        public LibvirtCredential? Credential { get; set; } = credential;

        public IReadOnlyList<Uri> Uris
        {
            get
            {
                lock (_gate)
                {
                    return [.. _uris];
                }
            }
        }

        public IReadOnlyList<DateTime> Times
        {
            get
            {
                lock (_gate)
                {
                    return [.. _times];
                }
            }
        }

        public LibvirtCredential? GetCredential(Uri uri)
        {
            lock (_gate)
            {
                _uris.Add(uri);
                _times.Add(DateTime.UtcNow);
                return Credential;
            }
        }
    }
}
