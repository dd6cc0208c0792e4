using System.Globalization;
using System.Security.Cryptography;
using Cloudlets.Lab;

namespace Cloudlets.TestUtils;

/// <summary>
/// Starts uniquely named labs for tests, so several test projects (and engineers) can run labs on
/// one machine at once. Dispose the lab (await using) to tear it down, also when a test fails.
/// </summary>
/// <example>
/// <code>
/// await using var lab = await TestLabs.StartAsync("lv", hosts: 2, guestsOn: ["cloudlet-1"]);
/// var uri = lab.GetHost("cloudlet-1").Uri;
/// </code>
/// </example>
public static class TestLabs
{
    /// <summary>A unique lab name: the prefix, '-', and six random hex digits.</summary>
    /// <param name="prefix">1–16 lowercase letters or digits, starting with a letter.</param>
    public static string UniqueName(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (prefix.Length > 16)
        {
            throw new ArgumentException("The prefix is 1-16 characters.", nameof(prefix));
        }

        var name = prefix + "-" + RandomNumberGenerator.GetInt32(0, 0x1000000).ToString("x6", CultureInfo.InvariantCulture);
        LabNaming.ValidateLabName(name);
        return name;
    }

    /// <summary>
    /// Checks the gate (<see cref="LabGate.Require"/>), then builds and starts a lab with a unique
    /// name. When start fails, what was created is removed and the exception propagates.
    /// </summary>
    /// <param name="prefix">The name prefix (see <see cref="UniqueName"/>).</param>
    /// <param name="hosts">The host count. The default is 3.</param>
    /// <param name="guestsOn">Hosts to start one guest on each. The default is none.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static Task<CloudletLab> StartAsync(string prefix, int hosts = 3, IEnumerable<string>? guestsOn = null, CancellationToken cancellationToken = default) =>
        StartAsync(prefix, hosts, guestsOn, LabTransport.Tcp, cancellationToken);

    /// <summary>As <see cref="StartAsync(string, int, IEnumerable{string}?, CancellationToken)"/>, with the daemons reached over <paramref name="transport"/>.</summary>
    public static async Task<CloudletLab> StartAsync(string prefix, int hosts, IEnumerable<string>? guestsOn, LabTransport transport, CancellationToken cancellationToken = default)
    {
        LabGate.Require();
        var builder = new CloudletLabBuilder().WithName(UniqueName(prefix)).WithHosts(hosts).WithTransport(transport);
        foreach (var host in guestsOn ?? [])
        {
            builder.WithGuestOn(host);
        }

        var lab = builder.Build();
        try
        {
            await lab.StartAsync(cancellationToken).ConfigureAwait(false);
            return lab;
        }
        catch
        {
            await lab.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>
/// A base for NUnit fixtures that share one started lab across their tests (started once in
/// <see cref="StartLabAsync"/>, torn down in <see cref="StopLabAsync"/>). Override the properties
/// to choose the lab's shape.
/// </summary>
public abstract class LabFixture
{
    private CloudletLab? _lab;

    /// <summary>The lab name prefix. The default is <c>t</c>.</summary>
    protected virtual string LabPrefix => "t";

    /// <summary>The host count. The default is 3.</summary>
    protected virtual int LabHosts => 3;

    /// <summary>Hosts to start a guest on each. The default is none.</summary>
    protected virtual IReadOnlyList<string> LabGuestsOn => [];

    /// <summary>How the lab's daemons are reached. The default is <see cref="LabTransport.Tcp"/>.</summary>
    protected virtual LabTransport LabTransport => LabTransport.Tcp;

    /// <summary>The shared lab (started).</summary>
    protected CloudletLab Lab => _lab ?? throw new InvalidOperationException("The lab has not started (did the gate ignore this fixture?).");

    /// <summary>Starts the lab once for the fixture.</summary>
    [OneTimeSetUp]
    public async Task StartLabAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        _lab = await TestLabs.StartAsync(LabPrefix, LabHosts, LabGuestsOn, LabTransport, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Tears the lab down.</summary>
    [OneTimeTearDown]
    public async Task StopLabAsync()
    {
        if (_lab is not null)
        {
            await _lab.DisposeAsync().ConfigureAwait(false);
            _lab = null;
        }
    }
}
