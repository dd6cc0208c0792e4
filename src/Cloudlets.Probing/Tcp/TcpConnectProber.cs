using System.Net;
using System.Net.Sockets;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;

namespace Cloudlets.Probing.Tcp;

/// <summary>Settings of a <see cref="TcpConnectProber"/>.</summary>
public sealed class TcpConnectProberOptions : IValidatableOptions
{
    /// <summary>The name every sample is stamped with. The default is the machine name.</summary>
    public string VantagePoint { get; set; } = Environment.MachineName;

    /// <summary>A named network namespace to create the sockets in; <see langword="null"/> for the caller's. The default is <see langword="null"/>.</summary>
    public string? NetworkNamespace { get; set; }

    /// <summary>At most this many connection attempts at once in <see cref="TcpConnectProber.RunAsync"/>, 1 to 4096. The default is 256.</summary>
    public int MaxInFlight { get; set; } = 256;

    /// <summary>The clock for send times, round trips and timeouts. The default is <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.NotEmpty(nameof(VantagePoint), VantagePoint);
        errors.Require(TimeProvider is not null, nameof(TimeProvider), "is required.");
        errors.InRange(nameof(MaxInFlight), MaxInFlight, 1, 4096);
        if (NetworkNamespace is not null && OperatingSystem.IsLinux())
        {
            try
            {
                Linux.NetworkNamespace.ValidateName(NetworkNamespace);
            }
            catch (ArgumentException ex)
            {
                errors.Add(nameof(NetworkNamespace), ex.Message);
            }
        }
    }
}

/// <summary>
/// Measures the time to a completed TCP handshake, for networks that drop ICMP. A refused
/// connection (RST), or no route, is <see cref="ProbeStatus.Unreachable"/>; no answer before the
/// timeout is <see cref="ProbeStatus.Timeout"/>. The connection is reset at once, so no state lingers.
/// </summary>
public sealed class TcpConnectProber : IMultiTargetLatencyProbe
{
    private readonly TcpConnectProberOptions options;
    private readonly TimeProvider time;
    private int disposed;

    /// <summary>Creates the prober.</summary>
    /// <exception cref="OptionsValidationException">An option is invalid; the exception lists every error.</exception>
    public TcpConnectProber(TcpConnectProberOptions? options = null)
    {
        options ??= new TcpConnectProberOptions();
        // A private copy: the settable options cannot change under a prober that validated them.
        this.options = new TcpConnectProberOptions
        {
            VantagePoint = options.VantagePoint,
            NetworkNamespace = options.NetworkNamespace,
            MaxInFlight = options.MaxInFlight,
            TimeProvider = options.TimeProvider,
        };
        OptionsErrors.ValidateAndThrow(this.options);
        time = this.options.TimeProvider;
    }

    /// <inheritdoc />
    public string VantagePoint => options.VantagePoint;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The target has no port, or the port is out of 1 to 65535.</exception>
    public async ValueTask<LatencySample> ProbeAsync(ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var endpoint = EndpointOf(target, nameof(target));
        ProbeLimits.CheckTimeout(timeout, nameof(timeout));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        using var socket = CreateSocket(endpoint.AddressFamily);
        using var timeoutSource = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        var sentAt = time.GetUtcNow();
        var start = time.GetTimestamp();
        try
        {
            await socket.ConnectAsync(endpoint, linked.Token).ConfigureAwait(false);
            var elapsed = time.GetElapsedTime(start);
            return new LatencySample(VantagePoint, target, sentAt, elapsed > TimeSpan.Zero ? elapsed : TimeSpan.FromTicks(1), ProbeStatus.Ok);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new LatencySample(VantagePoint, target, sentAt, null, ProbeStatus.Timeout);
        }
        catch (SocketException ex)
        {
            var status = ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable
                    or SocketError.HostDown or SocketError.AddressNotAvailable => ProbeStatus.Unreachable,
                SocketError.TimedOut => ProbeStatus.Timeout,
                _ => ProbeStatus.Error,
            };
            return new LatencySample(VantagePoint, target, sentAt, null, status);
        }
    }

    /// <inheritdoc />
    public Task RunAsync(IReadOnlyList<ProbeTarget> targets, ProbeSchedule schedule, Action<LatencySample> onSample, CancellationToken cancellationToken = default)
    {
        ProbeLimits.CheckSchedule(schedule, nameof(schedule));
        ArgumentNullException.ThrowIfNull(onSample);
        var copy = ProbeTargetList.Copy(targets, nameof(targets), t => _ = EndpointOf(t, nameof(targets)));

        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        return ScheduledProbeRunner.RunAsync(this, copy, schedule, onSample, options.MaxInFlight, time, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Volatile.Write(ref disposed, 1);
        return ValueTask.CompletedTask;
    }

    private static IPEndPoint EndpointOf(ProbeTarget target, string parameterName)
    {
        var address = ProbeAddresses.CheckUnicast(target, parameterName);
        if (target.Port is not { } port || port is < 1 or > 65535)
        {
            throw new ArgumentException($"Target '{target.Name}' needs a TCP port from 1 to 65535 (it has {target.Port?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}).", parameterName);
        }

        return new IPEndPoint(address, port);
    }

    private Socket CreateSocket(AddressFamily family)
    {
        Socket Make()
        {
            var s = new Socket(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            // Reset on close: a probe must not leave TIME_WAIT sockets behind by the thousand.
            s.LingerState = new LingerOption(true, 0);
            return s;
        }

        return options.NetworkNamespace is { } ns && OperatingSystem.IsLinux()
            ? Linux.NetworkNamespace.Run(ns, Make)
            : Make();
    }
}
