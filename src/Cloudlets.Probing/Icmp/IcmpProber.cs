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
public sealed class IcmpProber : IMultiTargetLatencyProbe
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

        var (fd4, fd6, v6Failure, isRaw) = Linux.NetworkNamespace.Run(options.NetworkNamespace, () => OpenSockets(options));
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
        var sender = new Thread(() => SendLoop(batch, schedule, linked.Token))
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
            using var registration = linked.Token.Register(() =>
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    batch.Cancel(cancellationToken);
                }
                else
                {
                    batch.Fail(new ObjectDisposedException(nameof(IcmpProber), "The prober was disposed during the run."));
                }
            });
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
        var address = target.Address ?? throw new ArgumentException($"Target '{target.Name}' has no address.", parameterName);
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

    private unsafe void SendLoop(IcmpProbeBatch batch, ProbeSchedule schedule, CancellationToken cancellationToken)
    {
        try
        {
            var targets = batch.Targets;
            var packetLength = IcmpPacket.HeaderLength + payloadSize;
            var packets = GC.AllocateUninitializedArray<byte>(2 * packetLength, pinned: true);
            IcmpPacket.WriteTemplate(packets.AsSpan(0, packetLength), ipv6: false, table.Identifier, table.Nonce);
            IcmpPacket.WriteTemplate(packets.AsSpan(packetLength, packetLength), ipv6: true, table.Identifier, table.Nonce);
            var addresses = GC.AllocateUninitializedArray<byte>(targets.Length * SockAddrLength, pinned: true);
            var addressLengths = new int[targets.Length];
            var isIPv6 = new bool[targets.Length];
            for (var i = 0; i < targets.Length; i++)
            {
                addressLengths[i] = IcmpPacket.WriteSockAddr(targets[i].Address, addresses.AsSpan(i * SockAddrLength, SockAddrLength));
                isIPv6[i] = targets[i].Address.AddressFamily == AddressFamily.InterNetworkV6;
            }

            var time = table.Time;
            var period = table.ToTimestampUnits(schedule.Period);
            var interval = table.ToTimestampUnits(schedule.Interval);
            var nextDue = new long[targets.Length];
            var nextAny = long.MinValue;
            fixed (byte* packetBase = packets)
            fixed (byte* addressBase = addresses)
            {
                for (var round = 0; round < schedule.Count; round++)
                {
                    for (var i = 0; i < targets.Length; i++)
                    {
                        var due = Math.Max(nextAny, nextDue[i]);
                        if (!WaitUntil(time, due, cancellationToken))
                        {
                            return;
                        }

                        var v6 = isIPv6[i];
                        if (!SendOne(batch, i, packetBase + (v6 ? packetLength : 0), packetLength, v6,
                                addressBase + (i * SockAddrLength), addressLengths[i], cancellationToken, out var sentAt))
                        {
                            return;
                        }

                        // Plan from the planned time, as fping does, so small wake-up delays do not add up
                        // over the rounds; after a long stall restart from now rather than send a burst.
                        var planned = sentAt - due > period ? sentAt : due;
                        nextDue[i] = planned + period;
                        nextAny = (sentAt - due > interval ? sentAt : due) + interval;
                    }
                }
            }
        }
#pragma warning disable CA1031 // A failed sender fails its run; the exception travels to the caller through the run's task.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            batch.Fail(ex);
        }
        finally
        {
            batch.SendingFinished();
            lock (runGate)
            {
                senders.Remove(Thread.CurrentThread);
            }
        }
    }

    private static unsafe bool WaitUntil(TimeProvider time, long due, CancellationToken cancellationToken)
    {
        var frequency = time.TimestampFrequency;
        var millisecond = frequency / 1000;
        var microsecond = Math.Max(frequency / 1_000_000, 1);
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return false;
            }

            var remaining = due - time.GetTimestamp();
            if (remaining <= 0)
            {
                return true;
            }

            if (remaining > 100 * millisecond)
            {
                Thread.Sleep(100);
            }
            else if (remaining > 200 * microsecond)
            {
                // A timed sleep, not a yield: on a loaded machine a yielding thread can lose the processor
                // for a whole time slice, while a sleeper is woken on time. Wake a little early and spin the rest.
                _ = Libc.USleep((uint)((remaining / microsecond) - 60));
            }
            else
            {
                Thread.SpinWait(20);
            }
        }
    }

    /// <summary>Sends one probe; false when cancelled or disposed before it could be sent.</summary>
    private unsafe bool SendOne(IcmpProbeBatch batch, int targetIndex, byte* packet, int packetLength, bool ipv6, byte* sockaddr, int sockaddrLength, CancellationToken cancellationToken, out long sentAt)
    {
        ushort sequence;
        uint generation;
        // Every sequence number busy, or this batch's FIFO full: wait for replies or timeouts to free some.
        while (!batch.HasRoom || !table.TryReserve(batch, targetIndex, out sequence, out generation))
        {
            if (cancellationToken.IsCancellationRequested || Volatile.Read(ref disposed) != 0)
            {
                sentAt = 0;
                return false;
            }

            Thread.Sleep(1);
        }

        IcmpPacket.Stamp(new Span<byte>(packet, packetLength), sequence, generation, computeChecksum: raw && !ipv6);
        sentAt = table.Time.GetTimestamp();
        table.Publish(sequence, sentAt, kernelTimestamps ? DateTime.UtcNow.Ticks : 0);
        var sent = Libc.SendTo(ipv6 ? fd6 : fd4, packet, (nuint)packetLength, 0, sockaddr, (uint)sockaddrLength);
        if (sent < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // No route or unreachable network: the network said no. Anything else: the probe failed.
            table.FailSend(sequence, errno is 101 or 113 ? ProbeStatus.Unreachable : ProbeStatus.Error);
        }

        return true;
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        _ = Libc.Write(wakeFd, &one, sizeof(ulong));
    }

    private unsafe void ReceiveLoop()
    {
        // One recvmmsg reads up to ReceiveBatch replies, each with its kernel receive timestamp.
        var buffers = (byte*)NativeMemory.Alloc((nuint)(ReceiveBatch * (ReceiveBufferLength + SockAddrLength + ControlLength)));
        var messages = (Libc.MMsgHdr*)NativeMemory.AllocZeroed((nuint)ReceiveBatch, (nuint)sizeof(Libc.MMsgHdr));
        var vectors = (Libc.IoVec*)NativeMemory.AllocZeroed((nuint)ReceiveBatch, (nuint)sizeof(Libc.IoVec));
        try
        {
            for (var j = 0; j < ReceiveBatch; j++)
            {
                var at = buffers + (j * (ReceiveBufferLength + SockAddrLength + ControlLength));
                vectors[j].Base = at;
                vectors[j].Length = ReceiveBufferLength;
                messages[j].Header.Iov = vectors + j;
                messages[j].Header.IovLength = 1;
                messages[j].Header.Name = at + ReceiveBufferLength;
                messages[j].Header.Control = at + ReceiveBufferLength + SockAddrLength;
            }

            var fds = stackalloc Libc.PollFd[3];
            fds[0] = new Libc.PollFd { Fd = wakeFd, Events = Libc.PollIn };
            fds[1] = new Libc.PollFd { Fd = fd4, Events = Libc.PollIn };
            fds[2] = new Libc.PollFd { Fd = fd6, Events = Libc.PollIn };
            var count = fd6 >= 0 ? 3 : 2;
            var time = table.Time;
            var frequency = time.TimestampFrequency;
            while (!stopping)
            {
                var now = time.GetTimestamp();
                var next = table.Expire(now);
                var timeoutMs = next == long.MaxValue ? 1000 : (int)Math.Clamp(((next - now) * 1000 + frequency - 1) / frequency, 0, 1000);
                var ready = Libc.Poll(fds, (nuint)count, timeoutMs);
                if (ready <= 0)
                {
                    continue;
                }

                if (fds[0].Revents != 0)
                {
                    ulong wakeCount;
                    _ = Libc.Read(wakeFd, &wakeCount, sizeof(ulong));
                }

                var drained = 0;
                if (fds[1].Revents != 0)
                {
                    drained += Drain(fd4, ipv6: false, messages);
                }

                if (count == 3 && fds[2].Revents != 0)
                {
                    drained += Drain(fd6, ipv6: true, messages);
                }

                // With kernel receive timestamps a reply read later still measures right, so under load let
                // replies gather for a moment: one wake-up and a few recvmmsg calls per hundred replies
                // instead of a wake-up (an inter-processor interrupt) per reply.
                if (kernelTimestamps && drained > 0 && receivePauseMicroseconds > 0)
                {
                    _ = Libc.USleep(receivePauseMicroseconds);
                }
            }
        }
        finally
        {
            NativeMemory.Free(vectors);
            NativeMemory.Free(messages);
            NativeMemory.Free(buffers);
        }
    }

    private unsafe int Drain(int fd, bool ipv6, Libc.MMsgHdr* messages)
    {
        var total = 0;
        var time = table.Time;
        for (var round = 0; round < 64; round++)
        {
            for (var j = 0; j < ReceiveBatch; j++)
            {
                messages[j].Header.NameLength = SockAddrLength;
                messages[j].Header.ControlLength = ControlLength;
                messages[j].Header.Flags = 0;
            }

            var received = Libc.RecvMmsg(fd, messages, ReceiveBatch, Libc.MsgDontWait, null);
            if (received <= 0)
            {
                return total;
            }

            total += received;

            var now = time.GetTimestamp();
            for (var j = 0; j < received; j++)
            {
                ref var header = ref messages[j].Header;
                var buffer = (byte*)header.Iov->Base;
                var length = (int)messages[j].Length;
                var message = new ReadOnlySpan<byte>(buffer, length);
                if (!ipv6 && raw)
                {
                    // Raw IPv4 sockets hand over the IP header too.
                    var headerLength = (buffer[0] & 0xF) * 4;
                    if (length < headerLength + IcmpPacket.HeaderLength)
                    {
                        continue;
                    }

                    message = message[headerLength..];
                }

                var source = IcmpPacket.KeyOfSockAddr(new ReadOnlySpan<byte>(header.Name, SockAddrLength), ipv6);
                table.HandleMessage(message, ipv6, source, now, kernelTimestamps ? ReceiveTimestamp(ref header) : 0);
            }

            if (received < ReceiveBatch)
            {
                return total;
            }
        }

        return total;
    }

    /// <summary>The SCM_TIMESTAMPNS control message of a received datagram as <see cref="DateTime"/> ticks; 0 when absent.</summary>
    private static unsafe long ReceiveTimestamp(ref Libc.MsgHdr header)
    {
        var control = (byte*)header.Control;
        var end = control + header.ControlLength;
        var headerSize = sizeof(Libc.CMsgHdr);
        while (control + headerSize <= end)
        {
            var cmsg = (Libc.CMsgHdr*)control;
            if (cmsg->Length < (nuint)headerSize)
            {
                return 0;
            }

            if (cmsg->Level == Libc.SolSocket && cmsg->Type == Libc.ScmTimestampNs && cmsg->Length >= (nuint)(headerSize + 16))
            {
                var seconds = *(long*)(control + headerSize);
                var nanoseconds = *(long*)(control + headerSize + 8);
                return DateTime.UnixEpoch.Ticks + (seconds * TimeSpan.TicksPerSecond) + (nanoseconds / 100);
            }

            control += (int)((cmsg->Length + 7) & ~(nuint)7);
        }

        return 0;
    }

    private static (int Fd4, int Fd6, string? V6Failure, bool Raw) OpenSockets(IcmpProberOptions options)
    {
        var fd4 = Open(ipv6: false, options.SocketKind, out var isRaw, out var failure);
        if (fd4 < 0)
        {
            throw new IcmpUnavailableException(failure!);
        }

        Configure(fd4, ipv6: false, isRaw, options.ReceiveBufferBytes);
        var fd6 = -1;
        string? v6Failure = "IPv6 was disabled in the prober's options.";
        if (options.EnableIPv6)
        {
            fd6 = Open(ipv6: true, isRaw ? IcmpSocketKind.Raw : IcmpSocketKind.Datagram, out _, out v6Failure);
            if (fd6 >= 0)
            {
                Configure(fd6, ipv6: true, isRaw, options.ReceiveBufferBytes);
            }
        }

        return (fd4, fd6, v6Failure, isRaw);
    }

    private static int Open(bool ipv6, IcmpSocketKind kind, out bool isRaw, out string? failure)
    {
        var family = ipv6 ? Libc.AfInet6 : Libc.AfInet;
        var protocol = ipv6 ? Libc.IpProtoIcmpV6 : Libc.IpProtoIcmp;
        var name = ipv6 ? "ICMPv6" : "ICMP";
        string? rawFailure = null;
        if (kind is IcmpSocketKind.Auto or IcmpSocketKind.Raw)
        {
            var fd = Libc.Socket(family, Libc.SockRaw | Libc.SockCloexec, protocol);
            if (fd >= 0)
            {
                isRaw = true;
                failure = null;
                return fd;
            }

            rawFailure = $"a raw {name} socket was refused: {Libc.ErrnoName(Marshal.GetLastPInvokeError())} (raw sockets need root or CAP_NET_RAW)";
            if (kind == IcmpSocketKind.Raw)
            {
                isRaw = false;
                failure = $"Cannot probe with {name}: {rawFailure}.";
                return -1;
            }
        }

        var dgram = Libc.Socket(family, Libc.SockDgram | Libc.SockCloexec, protocol);
        if (dgram >= 0)
        {
            isRaw = false;
            failure = null;
            return dgram;
        }

        var dgramFailure = $"an unprivileged {name} datagram socket was refused: {Libc.ErrnoName(Marshal.GetLastPInvokeError())} " +
            $"(allowed only when the process's group is inside net.ipv4.ping_group_range, now '{ReadPingGroupRange()}')";
        isRaw = false;
        failure = rawFailure is null
            ? $"Cannot probe with {name}: {dgramFailure}."
            : $"Cannot probe with {name}: {rawFailure}, and {dgramFailure}. Run as root, grant CAP_NET_RAW, or widen ping_group_range.";
        return -1;
    }

    private static string ReadPingGroupRange()
    {
        try
        {
            return File.ReadAllText("/proc/sys/net/ipv4/ping_group_range").Trim().Replace('\t', ' ');
        }
        catch (IOException)
        {
            return "unreadable";
        }
        catch (UnauthorizedAccessException)
        {
            return "unreadable";
        }
    }

    private unsafe static void Configure(int fd, bool ipv6, bool isRaw, int receiveBufferBytes)
    {
        // Best effort: a smaller buffer or no filter still works, just less well under load.
        if (Libc.SetInt(fd, Libc.SolSocket, Libc.SoRcvBufForce, receiveBufferBytes) != 0)
        {
            _ = Libc.SetInt(fd, Libc.SolSocket, Libc.SoRcvBuf, receiveBufferBytes);
        }

        if (!isRaw)
        {
            return;
        }

        if (ipv6)
        {
            // ICMP6_FILTER: a set bit blocks the type. Let through echo replies and the errors that name a probe.
            var filter = stackalloc uint[8];
            for (var i = 0; i < 8; i++)
            {
                filter[i] = uint.MaxValue;
            }

            foreach (var type in (ReadOnlySpan<byte>)[IcmpPacket.EchoReplyV6, IcmpPacket.DestinationUnreachableV6, IcmpPacket.TimeExceededV6])
            {
                filter[type >> 5] &= ~(1u << (type & 31));
            }

            _ = Libc.SetSockOpt(fd, Libc.SolIcmpV6, Libc.Icmp6Filter, filter, 32);
        }
        else
        {
            // ICMP_FILTER: a set bit blocks the type. Without it a raw socket also reads every echo request it sends to loopback.
            var blocked = ~((1u << IcmpPacket.EchoReplyV4) | (1u << IcmpPacket.DestinationUnreachableV4) | (1u << IcmpPacket.TimeExceededV4));
            _ = Libc.SetSockOpt(fd, Libc.SolRaw, Libc.IcmpFilter, &blocked, sizeof(uint));
        }
    }
}
