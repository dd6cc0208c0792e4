using Cloudlets.Core.Options;

namespace Cloudlets.Mqtt;

/// <summary>
/// Where the broker is and how to reach it: address, credentials, TLS, keep-alive and the
/// reconnect backoff. Shared by <see cref="MqttLatencyPublisher"/> and <see cref="MqttLatencySampleSource"/>.
/// </summary>
public sealed class MqttBrokerOptions : IValidatableOptions
{
    /// <summary>The broker: <c>mqtt://host[:port]</c> (plain TCP, default port 1883) or <c>mqtts://host[:port]</c> (TLS, default port 8883). Required.</summary>
    public Uri? Broker { get; set; }

    /// <summary>The user name sent in CONNECT. The default is none (anonymous).</summary>
    public string? Username { get; set; }

    /// <summary>The password sent in CONNECT; only with <see cref="Username"/>. The default is none.</summary>
    public string? Password { get; set; }

    /// <summary>
    /// A PEM file with the certificate authority (or authorities) that signed the broker's certificate.
    /// With it, the broker's chain must end at one of these roots (the system's roots are not used);
    /// without it, the system's trust store decides. Only with <c>mqtts://</c>. The default is none.
    /// </summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>The client id. The default is none: a unique id is made from <c>cloudlets-</c>, the role and a random suffix.</summary>
    public string? ClientId { get; set; }

    /// <summary>The MQTT keep-alive: a broker that does not answer within 1.5 × this is taken as gone. Range [1 s, 10 min]. The default is 15 seconds.</summary>
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long one connection attempt may take (TCP, TLS and CONNACK). Range [100 ms, 5 min]. The default is 10 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The first delay before reconnecting; it doubles after each failed attempt up to <see cref="ReconnectMaxDelay"/>, with jitter. Range [10 ms, 1 min]. The default is 500 milliseconds.</summary>
    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest delay between two reconnect attempts. Range [<see cref="ReconnectMinDelay"/>, 10 min]. The default is 30 seconds.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Makes the socket of each connection attempt, given the address family of the broker's address: for example
    /// one made inside a Linux network namespace (a socket belongs to the namespace of the thread that created it),
    /// so a controller in one namespace reaches a broker that listens only in another. The client connects it and,
    /// with <c>mqtts://</c>, runs TLS over it. The default is none: an ordinary TCP socket of this process.
    /// </summary>
    public Func<System.Net.Sockets.AddressFamily, System.Net.Sockets.Socket>? SocketFactory { get; set; }

    /// <summary>Whether the broker is reached over TLS (<c>mqtts://</c>).</summary>
    public bool UsesTls => string.Equals(Broker?.Scheme, "mqtts", StringComparison.OrdinalIgnoreCase);

    /// <summary>The broker's port: the URI's, or 1883 / 8883 by scheme.</summary>
    public int Port => Broker is { IsDefaultPort: false } b && b.Port > 0 ? b.Port : UsesTls ? 8883 : 1883;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (Broker is null)
        {
            errors.Add(nameof(Broker), "is required (mqtt://host[:port] or mqtts://host[:port]).");
        }
        else if (!Broker.IsAbsoluteUri || (Broker.Scheme != "mqtt" && Broker.Scheme != "mqtts"))
        {
            errors.Add(nameof(Broker), $"is '{Broker}'; the scheme must be mqtt:// or mqtts://.");
        }
        else
        {
            errors.Require(!string.IsNullOrEmpty(Broker.Host), nameof(Broker), $"is '{Broker}'; it has no host.");
            errors.Require(Broker.AbsolutePath is "" or "/" && Broker.Query.Length == 0 && Broker.UserInfo.Length == 0, nameof(Broker),
                $"is '{Broker}'; only a scheme, a host and a port are allowed (credentials go in Username/Password).");
        }

        errors.Require(Password is null || !string.IsNullOrEmpty(Username), nameof(Password), "is set without a Username.");
        errors.Require(Username is null || Username.Length is > 0 and <= 256, nameof(Username), "must be 1 to 256 characters.");
        if (CaCertificateFile is not null)
        {
            errors.Require(UsesTls, nameof(CaCertificateFile), "is set but the broker is not mqtts://.");
            errors.Require(File.Exists(CaCertificateFile), nameof(CaCertificateFile), $"'{CaCertificateFile}' does not exist.");
        }

        errors.Require(ClientId is null || ClientId.Length is > 0 and <= 128, nameof(ClientId), "must be 1 to 128 characters.");
        errors.InRange(nameof(KeepAlive), KeepAlive, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10));
        errors.InRange(nameof(ConnectTimeout), ConnectTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
        errors.InRange(nameof(ReconnectMinDelay), ReconnectMinDelay, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        errors.InRange(nameof(ReconnectMaxDelay), ReconnectMaxDelay, ReconnectMinDelay, TimeSpan.FromMinutes(10));
    }

    internal MqttBrokerOptions Copy() => (MqttBrokerOptions)MemberwiseClone();
}
