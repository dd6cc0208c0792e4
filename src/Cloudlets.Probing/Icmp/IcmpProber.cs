using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Probing.Icmp;

/// <summary>
/// An ICMP echo prober for many targets at once: one socket per address family (IPv4, IPv6), one
/// receive thread that matches replies to pending probes by identifier, sequence number, a
/// per-probe generation and the reply's source, and per-probe timeouts. Late, duplicated and
/// foreign replies are counted in <see cref="Counters"/> but never as answers.
/// </summary>
/// <remarks>
/// Linux only. Uses a raw ICMP socket when allowed (root or CAP_NET_RAW) and otherwise an
/// unprivileged ICMP datagram socket (<c>net.ipv4.ping_group_range</c>); <see cref="Create"/> throws
/// <see cref="IcmpUnavailableException"/> saying why when neither can be opened. Sending and
/// matching allocate nothing per probe; samples are delivered on the receive thread.
/// </remarks>
public sealed partial class IcmpProber : IMultiTargetLatencyProbe
{
    private const int ReceiveBufferLength = 2048;
    private const int ReceiveBatch = 64;
    private const int ControlLength = 64;

    private const int SockAddrLength = 28;

    private readonly IcmpProbeTable table;
    private readonly int fd4;
    private readonly int fd6;
    private readonly string? ipv6Unavailable;
    private readonly int wakeFd;
    private readonly int payloadSize;
    private readonly bool raw;
    private readonly bool kernelTimestamps;
    private readonly Microsoft.Extensions.Logging.ILogger logger;
    private readonly uint receivePauseMicroseconds;
    private readonly Thread receiver;
    private readonly Lock runGate = new();
    private readonly List<Thread> senders = [];
    private readonly CancellationTokenSource disposing = new();
    private volatile bool stopping;
    private int disposed;

    private IcmpProber(IcmpProberOptions options, int fd4, int fd6, string? ipv6Unavailable, bool raw, int wakeFd)
    {
        this.fd4 = fd4;
        this.fd6 = fd6;
        this.ipv6Unavailable = ipv6Unavailable;
        this.raw = raw;
        this.wakeFd = wakeFd;
        payloadSize = options.PayloadSize;
        receivePauseMicroseconds = (uint)(options.ReceiveGatherTime.Ticks / 10);
        kernelTimestamps = options.UseKernelTimestamps && ReferenceEquals(options.TimeProvider, TimeProvider.System);
        if (kernelTimestamps)
        {
            // Best effort: without it, round trips end when the receive thread reads the reply.
            kernelTimestamps = Libc.SetInt(fd4, Libc.SolSocket, Libc.SoTimestampNs, 1) == 0 &&
                (fd6 < 0 || Libc.SetInt(fd6, Libc.SolSocket, Libc.SoTimestampNs, 1) == 0);
        }

        var identifier = options.Identifier ?? (ushort)Random.Shared.Next(1, 0x10000);
        table = new IcmpProbeTable(options.TimeProvider, options.VantagePoint, identifier, (uint)Random.Shared.Next() ^ 0x5A5A0000u, checkIdentifier: raw);
        logger = options.Logger;
        ProbingLog.IcmpProberOpened(logger, options.VantagePoint, SocketKind, fd6 >= 0, kernelTimestamps, table.Identifier, options.NetworkNamespace ?? "(current)");
        if (fd6 < 0 && options.EnableIPv6)
        {
            ProbingLog.IcmpIPv6Unavailable(logger, options.VantagePoint, ipv6Unavailable ?? "unknown");
        }

        receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "cloudlets-icmp-receive" };
        receiver.Start();
    }

    /// <inheritdoc />
    public string VantagePoint => table.VantagePoint;

    /// <summary>The socket kind in use: <see cref="IcmpSocketKind.Raw"/> or <see cref="IcmpSocketKind.Datagram"/>.</summary>
    public IcmpSocketKind SocketKind => raw ? IcmpSocketKind.Raw : IcmpSocketKind.Datagram;

    /// <summary>The ICMP identifier of this prober's requests (on datagram sockets the kernel replaces it).</summary>
    public ushort Identifier => table.Identifier;

    /// <summary>Whether round trips end at the kernel's receive timestamp (see <see cref="IcmpProberOptions.UseKernelTimestamps"/>).</summary>
    public bool UsesKernelTimestamps => kernelTimestamps;

    /// <summary>Whether IPv6 targets can be probed.</summary>
    public bool SupportsIPv6 => fd6 >= 0;

    /// <summary>What the receive thread has seen so far.</summary>
    public IcmpProberCounters Counters => table.Counters;

    /// <summary>Opens the sockets (inside <see cref="IcmpProberOptions.NetworkNamespace"/> when set) and starts the receive thread.</summary>
    /// <exception cref="OptionsValidationException">An option is invalid; the exception lists every error.</exception>
    /// <exception cref="IcmpUnavailableException">No ICMP socket could be opened; the message says why.</exception>
    /// <exception cref="IOException">The network namespace cannot be entered.</exception>
    /// <exception cref="PlatformNotSupportedException">Not Linux.</exception>
    public static IcmpProber Create(IcmpProberOptions? options = null)
    {
        options ??= new IcmpProberOptions();
        OptionsErrors.ValidateAndThrow(options);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The ICMP prober needs Linux (raw or ICMP datagram sockets).");
        }

        var (fd4, fd6, v6Failure, isRaw) = Linux.NetworkNamespace.Run(options.NetworkNamespace, () => IcmpSockets.OpenSockets(options));
        var wake = Libc.EventFd(0, Libc.EfdNonBlock | Libc.EfdCloexec);
        if (wake < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _ = Libc.Close(fd4);
            if (fd6 >= 0)
            {
                _ = Libc.Close(fd6);
            }

            throw new IOException($"Cannot create the prober's wake-up eventfd: {Libc.ErrnoName(errno)}.");
        }

        return new IcmpProber(options, fd4, fd6, v6Failure, isRaw, wake);
    }

    /// <inheritdoc />
    public async ValueTask<LatencySample> ProbeAsync(ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ProbeLimits.CheckTimeout(timeout, nameof(timeout));
        var ipv6 = CheckTarget(target, nameof(target));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        LatencySample delivered = default;
        var batch = new IcmpProbeBatch([target], table.ToTimestampUnits(timeout), 1, s => delivered = s, timeout);
        table.Register(batch);
        Wake();
        if (!SendSingle(batch, target, ipv6, cancellationToken))
        {
            batch.Cancel(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(true, this);
        }

        batch.SendingFinished();
        try
        {
            // The batch completes right after its one sample is delivered, or fails when the prober is disposed.
            await batch.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
            return delivered;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            batch.Cancel(cancellationToken);
            throw;
        }
    }

    /// <inheritdoc />
    public Task RunAsync(IReadOnlyList<ProbeTarget> targets, ProbeSchedule schedule, Action<LatencySample> onSample, CancellationToken cancellationToken = default)
    {
        ProbeLimits.CheckSchedule(schedule, nameof(schedule));
        ArgumentNullException.ThrowIfNull(onSample);
        var copy = ProbeTargetList.Copy(targets, nameof(targets), t => CheckTarget(t, nameof(targets)));

        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        var batch = new IcmpProbeBatch(copy, table.ToTimestampUnits(schedule.Timeout), (long)copy.Length * schedule.Count, onSample, schedule.Timeout);
        table.Register(batch);
        Wake();
        var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, disposing.Token);
        var sender = new Thread(() => SendLoop(batch, schedule, linked.Token, cancellationToken))
        {
            IsBackground = true,
            Name = "cloudlets-icmp-send",
        };
        lock (runGate)
        {
            senders.Add(sender);
        }

        sender.Start();
        return AwaitRunAsync(batch, schedule, linked, cancellationToken);
    }

    /// <summary>Stops sending, fails runs still going, stops the receive thread and closes the sockets.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        disposing.Cancel();
        Thread[] running;
        lock (runGate)
        {
            running = [.. senders];
        }

        foreach (var t in running)
        {
            t.Join();
        }

        stopping = true;
        Wake();
        receiver.Join();
        table.FailAll(new ObjectDisposedException(nameof(IcmpProber), "The prober was disposed before the probe completed."));
        _ = Libc.Close(fd4);
        if (fd6 >= 0)
        {
            _ = Libc.Close(fd6);
        }

        _ = Libc.Close(wakeFd);
        disposing.Dispose();
        return ValueTask.CompletedTask;
    }

    private unsafe bool SendSingle(IcmpProbeBatch batch, ProbeTarget target, bool ipv6, CancellationToken cancellationToken)
    {
        var packetLength = IcmpPacket.HeaderLength + payloadSize;
        var packet = stackalloc byte[packetLength];
        var sockaddr = stackalloc byte[SockAddrLength];
        var sockaddrLength = IcmpPacket.WriteSockAddr(target.Address, new Span<byte>(sockaddr, SockAddrLength));
        IcmpPacket.WriteTemplate(new Span<byte>(packet, packetLength), ipv6, table.Identifier, table.Nonce);
        return SendOne(batch, 0, packet, packetLength, ipv6, sockaddr, sockaddrLength, cancellationToken, out _);
    }

    private async Task AwaitRunAsync(IcmpProbeBatch batch, ProbeSchedule schedule, CancellationTokenSource linked, CancellationToken cancellationToken)
    {
        try
        {
            using var registration = linked.Token.Register(() => EndRunEarly(batch, cancellationToken));
            await batch.Completion.ConfigureAwait(false);
            ProbingLog.IcmpRunFinished(logger, VantagePoint, (long)batch.Targets.Length * schedule.Count, batch.Targets.Length, Counters);
        }
        finally
        {
            linked.Dispose();
        }
    }

    private bool CheckTarget(ProbeTarget target, string parameterName)
    {
        var address = ProbeAddresses.CheckUnicast(target, parameterName);
        switch (address.AddressFamily)
        {
            case AddressFamily.InterNetwork:
                return false;
            case AddressFamily.InterNetworkV6 when address.IsIPv4MappedToIPv6:
                throw new ArgumentException($"Target '{target.Name}' has the IPv4-mapped address {address}; use the IPv4 form {address.MapToIPv4()}.", parameterName);
            case AddressFamily.InterNetworkV6 when fd6 < 0:
                throw new ArgumentException($"Target '{target.Name}' is IPv6 ({address}) but IPv6 probing is not available: {ipv6Unavailable}", parameterName);
            case AddressFamily.InterNetworkV6:
                return true;
            default:
                throw new ArgumentException($"Target '{target.Name}' has an address of family {address.AddressFamily}; only IPv4 and IPv6 can be probed.", parameterName);
        }
    }
}
