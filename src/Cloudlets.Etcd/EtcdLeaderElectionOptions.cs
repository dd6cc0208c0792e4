using System.Globalization;
using Cloudlets.Core.Election;
using Cloudlets.Core.Options;

namespace Cloudlets.Etcd;

/// <summary>
/// Options of <see cref="EtcdLeaderElection"/>: where etcd is, how to authenticate, and the election
/// itself. Validated once, when the election is built; every error is listed.
/// </summary>
public sealed class EtcdLeaderElectionOptions : IValidatableOptions
{
    /// <summary>The default key prefix; the election key is the prefix followed by the election (region) name.</summary>
    public const string DefaultKeyPrefix = "/cloudlets/v1/elections/";

    /// <summary>
    /// etcd's client URLs (<c>http://host:port</c> or <c>https://host:port</c>), tried in order; the
    /// next one is used after a failure. At least one. The default is <c>http://127.0.0.1:2379</c>.
    /// </summary>
    public IList<string> Endpoints { get; set; } = ["http://127.0.0.1:2379"];

    /// <summary>The prefix of election keys: starts and ends with <c>/</c>. The default is <see cref="DefaultKeyPrefix"/>.</summary>
    public string KeyPrefix { get; set; } = DefaultKeyPrefix;

    /// <summary>The election: its name (the region), candidate id, lease TTL, keepalive interval and backoff. Required.</summary>
    public LeaderElectionOptions Election { get; set; } = new();

    /// <summary>etcd user name for etcd's authentication, or <see langword="null"/> when etcd has auth disabled. Set with <see cref="Password"/>. The default is <see langword="null"/>.</summary>
    public string? Username { get; set; }

    /// <summary>The password of <see cref="Username"/>. The default is <see langword="null"/>.</summary>
    public string? Password { get; set; }

    /// <summary>TLS for <c>https://</c> endpoints: the CA to trust and a client certificate, or <see langword="null"/> for the system's trust and no client certificate. The default is <see langword="null"/>.</summary>
    public EtcdTlsOptions? Tls { get; set; }

    /// <summary>
    /// The deadline of each request to etcd (grant, transaction, revoke, one keepalive answer, the
    /// fencing check). A fencing check that gets no answer in time answers <see langword="false"/>.
    /// Range [50 ms, 1 minute] and less than the lease TTL. The default is 2 seconds.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The election key: <see cref="KeyPrefix"/> followed by the election name.</summary>
    public string Key => KeyPrefix + Election?.Election;

    /// <summary>Returns a deep copy.</summary>
    public EtcdLeaderElectionOptions Clone()
    {
        var copy = (EtcdLeaderElectionOptions)MemberwiseClone();
        copy.Endpoints = Endpoints?.ToList()!;
        copy.Election = Election?.Clone()!;
        copy.Tls = Tls?.Clone();
        return copy;
    }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (Endpoints is null || Endpoints.Count == 0)
        {
            errors.Add(nameof(Endpoints), "must list at least one etcd client URL.");
        }
        else
        {
            for (var i = 0; i < Endpoints.Count; i++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"{nameof(Endpoints)}[{i}]");
                if (!Uri.TryCreate(Endpoints[i], UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0
                    || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
                {
                    errors.Add(name, $"is '{Endpoints[i]}'; it must be http://host:port or https://host:port.");
                }
            }
        }

        if (string.IsNullOrEmpty(KeyPrefix) || KeyPrefix[0] != '/' || KeyPrefix[^1] != '/' || KeyPrefix.Any(char.IsWhiteSpace))
        {
            errors.Add(nameof(KeyPrefix), $"is '{KeyPrefix}'; it must start and end with '/' and contain no spaces.");
        }

        errors.Nested(nameof(Election), Election);
        if (string.IsNullOrEmpty(Username) != string.IsNullOrEmpty(Password))
        {
            errors.Add(nameof(Username), "and Password must be set together (or neither).");
        }

        errors.InRange(nameof(RequestTimeout), RequestTimeout, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1));
        if (Election is not null && RequestTimeout >= Election.LeaseTtl)
        {
            errors.Add(nameof(RequestTimeout), string.Create(CultureInfo.InvariantCulture, $"is {RequestTimeout}; it must be less than Election.LeaseTtl ({Election.LeaseTtl})."));
        }

        errors.Nested(nameof(Tls), Tls, required: false);
        if (Tls is not null && Endpoints is not null && Endpoints.Any(e => e.StartsWith("http://", StringComparison.OrdinalIgnoreCase)))
        {
            errors.Add(nameof(Tls), "is set but an endpoint is http://; use https:// endpoints with TLS.");
        }
    }
}

/// <summary>TLS options for etcd's <c>https://</c> endpoints (PEM files).</summary>
public sealed class EtcdTlsOptions : IValidatableOptions
{
    /// <summary>The CA certificate (PEM) that signed etcd's server certificate, or <see langword="null"/> for the system's trust store. The default is <see langword="null"/>.</summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>A client certificate (PEM) for etcd's <c>--client-cert-auth</c>, set with <see cref="ClientKeyFile"/>, or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The private key (PEM) of <see cref="ClientCertificateFile"/>. The default is <see langword="null"/>.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>Returns a copy.</summary>
    public EtcdTlsOptions Clone() => (EtcdTlsOptions)MemberwiseClone();

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        CheckFile(errors, nameof(CaCertificateFile), CaCertificateFile);
        CheckFile(errors, nameof(ClientCertificateFile), ClientCertificateFile);
        CheckFile(errors, nameof(ClientKeyFile), ClientKeyFile);
        if (string.IsNullOrEmpty(ClientCertificateFile) != string.IsNullOrEmpty(ClientKeyFile))
        {
            errors.Add(nameof(ClientCertificateFile), "and ClientKeyFile must be set together (or neither).");
        }
    }

    private static void CheckFile(OptionsErrors errors, string property, string? path)
    {
        if (path is not null && !File.Exists(path))
        {
            errors.Add(property, $"is '{path}', which does not exist.");
        }
    }
}
