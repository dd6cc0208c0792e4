using System.Globalization;
using Cloudlets.Core.Election;
using Cloudlets.Core.Options;
using Cloudlets.Etcd;

namespace Cloudlets.Controller.Configuration;

/// <summary>
/// Leader election on etcd (<c>Controller:Election</c>, or <c>--election etcd://HOST:PORT[,HOST:PORT]</c>):
/// the controllers of one region compete, one leads. In automatic mode only the leader migrates, and
/// each migration starts only after the leader re-confirmed its lease and term in etcd (one transaction
/// on the election key, right before the host is called); followers stay advisory and warm. Without
/// this section the controller never elects and acts alone.
/// </summary>
public sealed class ControllerElectionOptions : IValidatableOptions
{
    /// <summary>etcd's client URLs, <c>http://HOST:PORT</c> or <c>https://HOST:PORT</c> (no user or password in a URL: use <see cref="Username"/> and <see cref="PasswordFile"/>). At least one.</summary>
    public IList<string> Endpoints { get; set; } = [];

    /// <summary>The region: its controllers compete in one election (key <c>/cloudlets/v1/elections/REGION</c>). 1–63 characters of <c>[a-z0-9-]</c>. The default is <c>default</c>.</summary>
    public string Region { get; set; } = "default";

    /// <summary>This controller's candidate id, written into the election key while it leads and into the audit log, or <see langword="null"/> for <c>{host name}-{process id}</c>. The default is <see langword="null"/>.</summary>
    public string? CandidateId { get; set; }

    /// <summary>How long the leader's lease lives without a keepalive: a leader that dies or is cut off is replaced this long after its last keepalive. Whole seconds, 2 s to 1 hour. The default is 10 s.</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The deadline of each request to etcd, and of the fencing check before a migration (no answer in time: the move is skipped). Less than <see cref="LeaseTtl"/>. The default is 2 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The etcd user (etcd's own authentication), set with <see cref="PasswordFile"/>, or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? Username { get; set; }

    /// <summary>A file whose first line is the etcd password (never in the configuration itself), or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>A PEM file with the CA of etcd's server certificate (<c>https://</c> endpoints), or <see langword="null"/> for the system's trust store. The default is <see langword="null"/>.</summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>A PEM client certificate for etcd's <c>--client-cert-auth</c>, set with <see cref="ClientKeyFile"/>, or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The PEM private key of <see cref="ClientCertificateFile"/>, or <see langword="null"/>. The default is <see langword="null"/>.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>
    /// Parses the <c>--election</c> shorthand: <c>etcd://HOST:PORT[,HOST:PORT…]</c> (plain HTTP) or
    /// <c>etcds://…</c> (TLS), optionally followed by <c>/REGION</c>. Returns the configuration keys it
    /// stands for, or <see langword="null"/> and <paramref name="error"/>.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string?>>? ParseShorthand(string value, out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        error = null;
        var scheme = value.StartsWith("etcd://", StringComparison.Ordinal) ? "http"
            : value.StartsWith("etcds://", StringComparison.Ordinal) ? "https"
            : null;
        if (scheme is null)
        {
            error = $"--election '{value}' must start with etcd:// (or etcds:// for TLS), for example etcd://127.0.0.1:2379,127.0.0.1:22379/eu-west.";
            return null;
        }

        var rest = value[(value.IndexOf("://", StringComparison.Ordinal) + 3)..];
        string? region = null;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            region = rest[(slash + 1)..];
            rest = rest[..slash];
            if (!LeaderElectionOptions.IsValidElection(region))
            {
                error = $"--election '{value}': the region '{region}' must be 1-{LeaderElectionOptions.MaxElectionLength} characters of [a-z0-9-], starting and ending with a letter or digit.";
                return null;
            }
        }

        var keys = new List<KeyValuePair<string, string?>>();
        var hosts = rest.Split(',');
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            if (host.Contains('@', StringComparison.Ordinal))
            {
                error = $"--election '{value}' holds a user or password; give them as Controller:Election:Username and Controller:Election:PasswordFile instead.";
                return null;
            }

            if (!Uri.TryCreate($"{scheme}://{host}/", UriKind.Absolute, out var uri) || uri.IsDefaultPort || host.Length == 0 || uri.PathAndQuery != "/")
            {
                error = $"--election '{value}': '{host}' is not HOST:PORT.";
                return null;
            }

            keys.Add(new(string.Create(CultureInfo.InvariantCulture, $"Controller:Election:Endpoints:{i}"), $"{scheme}://{uri.Authority}"));
        }

        if (region is not null)
        {
            keys.Add(new("Controller:Election:Region", region));
        }

        return keys;
    }

    /// <summary>The etcd election's options (the password read from <see cref="PasswordFile"/>).</summary>
    public EtcdLeaderElectionOptions ToEtcdOptions()
    {
        var election = new LeaderElectionOptions { Election = Region, LeaseTtl = LeaseTtl };
        if (!string.IsNullOrEmpty(CandidateId))
        {
            election.CandidateId = CandidateId;
        }

        var tls = CaCertificateFile is null && ClientCertificateFile is null ? null
            : new EtcdTlsOptions { CaCertificateFile = CaCertificateFile, ClientCertificateFile = ClientCertificateFile, ClientKeyFile = ClientKeyFile };
        return new EtcdLeaderElectionOptions
        {
            Endpoints = [.. Endpoints],
            Election = election,
            RequestTimeout = RequestTimeout,
            Username = string.IsNullOrEmpty(Username) ? null : Username,
            Password = string.IsNullOrEmpty(PasswordFile) ? null : File.ReadLines(PasswordFile).FirstOrDefault()?.TrimEnd('\r'),
            Tls = tls,
        };
    }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (Endpoints is null || Endpoints.Count == 0)
        {
            errors.Add(nameof(Endpoints), "must list at least one etcd client URL (http://HOST:PORT or https://HOST:PORT).");
        }
        else
        {
            for (var i = 0; i < Endpoints.Count; i++)
            {
                var at = ControllerOptions.Path($"{nameof(Endpoints)}[{i}]");
                var e = Endpoints[i];
                if (!Uri.TryCreate(e, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    errors.Add(at, $"is '{e}'; it must be http://HOST:PORT or https://HOST:PORT.");
                }
                else if (uri.UserInfo.Length > 0)
                {
                    errors.Add(at, "holds a user or password; give them as Username and PasswordFile instead (a URL ends up in logs).");
                }
                else if (uri.IsDefaultPort || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0)
                {
                    errors.Add(at, $"is '{e}'; it must be http://HOST:PORT or https://HOST:PORT, with the port and without a path.");
                }
                else if (uri.Scheme == "http" && (CaCertificateFile is not null || ClientCertificateFile is not null))
                {
                    errors.Add(at, $"is '{e}' but TLS files are set; use https:// endpoints with TLS.");
                }
            }
        }

        if (!LeaderElectionOptions.IsValidElection(Region))
        {
            errors.Add(nameof(Region), $"is '{Region}'; it must be 1-{LeaderElectionOptions.MaxElectionLength} characters of [a-z0-9-], starting and ending with a letter or digit.");
        }

        if (CandidateId is not null && (CandidateId.Length is 0 or > 253 || CandidateId.Any(c => c <= ' ' || c > '~')))
        {
            errors.Add(nameof(CandidateId), "must be 1-253 printable ASCII characters without spaces.");
        }

        errors.InRange(nameof(LeaseTtl), LeaseTtl, TimeSpan.FromSeconds(2), TimeSpan.FromHours(1));
        if (LeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            errors.Add(nameof(LeaseTtl), string.Create(CultureInfo.InvariantCulture, $"is {LeaseTtl}; it must be whole seconds (etcd's lease unit)."));
        }

        errors.InRange(nameof(RequestTimeout), RequestTimeout, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1));
        if (RequestTimeout >= LeaseTtl)
        {
            errors.Add(nameof(RequestTimeout), string.Create(CultureInfo.InvariantCulture, $"is {RequestTimeout}; it must be less than LeaseTtl ({LeaseTtl})."));
        }

        if (string.IsNullOrEmpty(Username) != string.IsNullOrEmpty(PasswordFile))
        {
            errors.Add(nameof(Username), "and PasswordFile must be set together (or neither).");
        }

        CheckFile(errors, nameof(PasswordFile), PasswordFile);
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
        if (path is not null && (path.Length == 0 || !File.Exists(path)))
        {
            errors.Add(property, $"'{path}' does not exist.");
        }
    }
}
