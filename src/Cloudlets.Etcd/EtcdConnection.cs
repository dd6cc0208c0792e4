using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;

namespace Cloudlets.Etcd;

/// <summary>
/// The gRPC channels to etcd's endpoints (one at a time, the next after a failure), TLS, and etcd's
/// auth token. The election uses etcd's generated v3 clients (from dotnet-etcd) directly, rather than
/// EtcdClient's keepalive and watch helpers, because those retry and reconnect on their own: the
/// election must see every missed keepalive and every broken watch to know when its lease is in doubt.
/// </summary>
/// <remarks>Ownership: owns its channels; disposing closes them.</remarks>
internal sealed class EtcdConnection : IDisposable
{
    private readonly EtcdLeaderElectionOptions _options;
    private readonly GrpcChannel[] _channels;
    private readonly Lock _gate = new();
    private readonly X509Certificate2Collection? _ca;
    private readonly X509Certificate2Collection? _clientCertificates;
    private int _current;
    private string? _token;

    public EtcdConnection(EtcdLeaderElectionOptions options)
    {
        _options = options;
        if (options.Tls?.CaCertificateFile is { } caFile)
        {
            // Every certificate of the PEM file (a bundle may hold several), text around them ignored.
            _ca = [];
            _ca.ImportFromPemFile(caFile);
            if (_ca.Count == 0)
            {
                throw new ArgumentException($"The CA file '{caFile}' holds no PEM certificate.", nameof(options));
            }
        }

        if (options.Tls is { ClientCertificateFile: { } certFile, ClientKeyFile: { } keyFile })
        {
            // Re-imported so the private key is usable by SslStream on every platform.
            using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            _clientCertificates = [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
        }

        _channels = options.Endpoints.Select(CreateChannel).ToArray();
    }

    /// <summary>The endpoint in use.</summary>
    public string Endpoint
    {
        get
        {
            lock (_gate)
            {
                return _options.Endpoints[_current];
            }
        }
    }

    public KV.KVClient KV => new(CurrentChannel);

    public Lease.LeaseClient Lease => new(CurrentChannel);

    public Watch.WatchClient Watch => new(CurrentChannel);

    private GrpcChannel CurrentChannel
    {
        get
        {
            lock (_gate)
            {
                return _channels[_current];
            }
        }
    }

    /// <summary>Moves to the next endpoint after a failure (no-op with one endpoint).</summary>
    public void Rotate()
    {
        lock (_gate)
        {
            _current = (_current + 1) % _channels.Length;
        }
    }

    /// <summary>The request headers: etcd's auth token when a user is configured (authenticating first if needed).</summary>
    public async ValueTask<Metadata?> HeadersAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_options.Username))
        {
            return null;
        }

        string? token;
        lock (_gate)
        {
            token = _token;
        }

        if (token is null)
        {
            var auth = new Auth.AuthClient(CurrentChannel);
            var response = await auth.AuthenticateAsync(
                new AuthenticateRequest { Name = _options.Username, Password = _options.Password },
                deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            token = response.Token;
            lock (_gate)
            {
                _token = token;
            }
        }

        return new Metadata { { "token", token } };
    }

    /// <summary>
    /// Whether <paramref name="exception"/> says etcd could not be reached or answered with an error,
    /// as opposed to a bug. gRPC wraps most transport failures in <see cref="RpcException"/>, but a
    /// connection that ends while a streaming call writes or reads can surface as the raw
    /// <see cref="IOException"/> (HttpIOException "ResponseEnded") or <see cref="HttpRequestException"/>;
    /// seen once in CI when a candidate was disposed after its etcd had stopped.
    /// </summary>
    public static bool IsStoreFailure(Exception exception) =>
        exception is RpcException or IOException or HttpRequestException;

    /// <summary>
    /// Forgets the auth token after etcd refused it (it expired or etcd restarted), so the next request
    /// authenticates again; moves to the next endpoint when this one is unreachable.
    /// </summary>
    public void OnFailure(Exception exception)
    {
        var status = exception is RpcException rpc ? rpc.StatusCode : StatusCode.Unavailable;
        lock (_gate)
        {
            if (status is StatusCode.Unauthenticated or StatusCode.InvalidArgument or StatusCode.PermissionDenied)
            {
                _token = null;
            }
        }

        if (status is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            Rotate();
        }
    }

    /// <summary>A short description of a store failure for logs and leadership details.</summary>
    public static string Describe(Exception exception) =>
        exception is RpcException rpc ? rpc.Status.Detail : exception.GetType().Name + ": " + exception.Message;

    /// <summary>The deadline of one request from now.</summary>
    public DateTime Deadline() => DateTime.UtcNow + _options.RequestTimeout;

    public void Dispose()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        foreach (var certificate in (IEnumerable<X509Certificate2>?)_ca ?? [])
        {
            certificate.Dispose();
        }

        foreach (var certificate in (IEnumerable<X509Certificate2>?)_clientCertificates ?? [])
        {
            certificate.Dispose();
        }
    }

    private GrpcChannel CreateChannel(string endpoint)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = _options.RequestTimeout,
            // HTTP/2 pings find a dead connection even while no request is outstanding.
            // (SocketsHttpHandler accepts no ping delay or timeout under one second.)
            KeepAlivePingDelay = Max(_options.Election.LeaseTtl / 2, TimeSpan.FromSeconds(1)),
            KeepAlivePingTimeout = Max(_options.RequestTimeout, TimeSpan.FromSeconds(1)),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            EnableMultipleHttp2Connections = true,
        };
        if (endpoint.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = _clientCertificates,
                RemoteCertificateValidationCallback = _ca is null ? null : ValidateAgainstCa,
            };
        }

        return GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            // A cancelled call throws OperationCanceledException (not RpcException Cancelled), so a stop is never mistaken for a store failure.
            ThrowOperationCanceledOnCancellation = true,
            Credentials = endpoint.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
        });
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private bool ValidateAgainstCa(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || _ca is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0
            || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_ca);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return custom.Build(leaf);
    }
}
