using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Formatter;

namespace Cloudlets.Mqtt;

/// <summary>
/// One MQTT v5 client kept connected: connects, runs <c>onConnected</c> (a subscription) after every connection,
/// and reconnects with exponential backoff and jitter whenever the broker goes away. Owns the MQTTnet client.
/// </summary>
internal sealed class ReconnectingMqttClient : IAsyncDisposable
{
    private readonly MqttBrokerOptions _options;
    private readonly MqttClientOptions _clientOptions;
    private readonly Func<IMqttClient, CancellationToken, Task>? _onConnected;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _role;
    private readonly Uri _broker;
    private readonly SemaphoreSlim _disconnected = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly X509Certificate2Collection? _trustedRoots;
    private Task _loop = Task.CompletedTask;
    private volatile bool _ready;
    private int _disposed;

    public ReconnectingMqttClient(MqttBrokerOptions options, string role, Func<IMqttClient, CancellationToken, Task>? onConnected, TimeProvider time, ILogger logger)
    {
        _options = options;
        _role = role;
        _onConnected = onConnected;
        _time = time;
        _logger = logger;
        _broker = options.Broker!;
        ClientId = options.ClientId ?? $"cloudlets-{role}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        if (options.CaCertificateFile is { } ca)
        {
            _trustedRoots = [];
            _trustedRoots.ImportFromPemFile(ca);
        }

        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_broker.Host, options.Port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(ClientId)
            .WithCleanStart(true)
            .WithKeepAlivePeriod(options.KeepAlive)
            .WithTimeout(options.ConnectTimeout);
        if (options.Username is { } user)
        {
            builder.WithCredentials(user, options.Password ?? "");
        }

        if (options.SocketFactory is { } socketFactory)
        {
            builder.WithStreamProvider(new SocketFactoryStreamProvider(socketFactory));
        }

        if (options.UsesTls)
        {
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls().WithTargetHost(_broker.Host);
                if (_trustedRoots is not null)
                {
                    tls.WithCertificateValidationHandler(ValidateAgainstTrustedRoots);
                }
            });
        }

        _clientOptions = builder.Build();
        Client = new MqttClientFactory().CreateMqttClient();
        Client.DisconnectedAsync += OnDisconnectedAsync;
    }

    public IMqttClient Client { get; }

    public string ClientId { get; }

    /// <summary>Connected, and <c>onConnected</c> has run since.</summary>
    public bool IsReady => _ready && Client.IsConnected;

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    /// <summary>Completes when the first connection is ready (connected and subscribed).</summary>
    public Task WaitReadyAsync(CancellationToken cancellationToken) => _firstReady.Task.WaitAsync(cancellationToken);

    private async Task RunAsync(CancellationToken stop)
    {
        var attempt = 0;
        while (!stop.IsCancellationRequested)
        {
            if (!Client.IsConnected)
            {
                _ready = false;
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                    timeout.CancelAfter(_options.ConnectTimeout);
                    var result = await Client.ConnectAsync(_clientOptions, timeout.Token).ConfigureAwait(false);
                    if (result.ResultCode != MqttClientConnectResultCode.Success)
                    {
                        throw new BrokerRefusedException(result.ResultCode, result.ReasonString);
                    }

                    if (_onConnected is not null)
                    {
                        await _onConnected(Client, timeout.Token).ConfigureAwait(false);
                    }

                    attempt = 0;
                    _ready = true;
                    MqttTelemetry.Connections.Add(1, new KeyValuePair<string, object?>(MqttTelemetry.Tags.Role, _role));
                    MqttLog.Connected(_logger, _role, ClientId, _broker);
                    _firstReady.TrySetResult();
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    attempt++;
                    var delay = Backoff(attempt);
                    if (ex is BrokerRefusedException refused)
                    {
                        MqttLog.Refused(_logger, _role, ClientId, _broker, refused.Message);
                    }
                    else
                    {
                        MqttLog.ConnectFailed(_logger, _role, ClientId, _broker, attempt, delay, ex);
                    }

                    await DisconnectQuietlyAsync().ConfigureAwait(false);
                    try
                    {
                        await Task.Delay(delay, _time, stop).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    continue;
                }
            }

            // Connected: wait for the disconnect event; also look again every keep-alive in case it was missed.
            try
            {
                await _disconnected.WaitAsync(_options.KeepAlive, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private TimeSpan Backoff(int attempt)
    {
        var min = _options.ReconnectMinDelay.Ticks;
        var max = _options.ReconnectMaxDelay.Ticks;
        var ceiling = attempt >= 30 ? max : Math.Min(max, min << (attempt - 1));
        // Equal jitter: half fixed, half random, so many agents that lost one broker do not return in step.
        return TimeSpan.FromTicks((ceiling / 2) + (long)(Random.Shared.NextDouble() * (ceiling / 2)));
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs args)
    {
        if (args.ClientWasConnected)
        {
            _ready = false;
            if (!_stop.IsCancellationRequested)
            {
                MqttLog.Disconnected(_logger, _role, ClientId, _broker, args.Exception?.Message ?? args.Reason.ToString());
            }

            _disconnected.Release();
        }

        return Task.CompletedTask;
    }

    private bool ValidateAgainstTrustedRoots(MqttClientCertificateValidationEventArgs args)
    {
        if (args.Certificate is null || (args.SslPolicyErrors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trustedRoots!);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (args.Chain is not null)
        {
            foreach (var element in args.Chain.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        var certificate = args.Certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(args.Certificate.GetRawCertData());
        return chain.Build(certificate);
    }

    private async Task DisconnectQuietlyAsync()
    {
        try
        {
            if (Client.IsConnected)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await Client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Leaving anyway: a broker that is gone cannot be told.
        }
    }

    /// <summary>Stops reconnecting, disconnects cleanly (bounded) and disposes the MQTTnet client.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _ready = false;
        await DisconnectQuietlyAsync().ConfigureAwait(false);
        Client.DisconnectedAsync -= OnDisconnectedAsync;
        Client.Dispose();
        _stop.Dispose();
        _disconnected.Dispose();
    }
}

/// <summary>The broker answered CONNECT with a failure code (bad credentials, not authorized, …).</summary>
internal sealed class BrokerRefusedException(MqttClientConnectResultCode code, string? reason)
    : IOException($"CONNACK {code}{(string.IsNullOrEmpty(reason) ? "" : ": " + reason)}")
{
    public MqttClientConnectResultCode Code { get; } = code;
}
