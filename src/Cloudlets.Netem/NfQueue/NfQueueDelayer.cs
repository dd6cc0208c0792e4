using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Netns = Cloudlets.Probing.Linux.NetworkNamespace;
using Cloudlets.Core.Shaping;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Netem.NfQueue;

/// <summary>Counters of one delayer (one network namespace).</summary>
/// <param name="NetworkNamespace">The namespace, or <see langword="null"/> for the caller's.</param>
/// <param name="Received">Packets received from the kernel.</param>
/// <param name="Pending">Packets waiting now.</param>
/// <param name="VerdictMessages">Verdict messages sent (one batch may release many packets).</param>
/// <param name="ReceiveErrors">Receive errors (for example ENOBUFS: the kernel dropped messages).</param>
/// <param name="SendErrors">Verdicts that could not be sent.</param>
/// <param name="Lateness">How late packets were released.</param>
/// <param name="Realtime">Whether the delayer thread runs with real-time scheduling.</param>
public sealed record DelayerStatistics(string? NetworkNamespace, long Received, int Pending, long VerdictMessages, long ReceiveErrors, long SendErrors, LatenessSnapshot Lateness, bool Realtime);

/// <summary>
/// The userspace delay line of one network namespace: one NETLINK_NETFILTER socket opened inside the
/// namespace, one dedicated thread that receives queued packets' ids and sends an ACCEPT verdict when
/// each is due (one batch verdict per queue for everything due at once).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class NfQueueDelayer : IAsyncDisposable
{
    private const int MaxIdleWaitMicros = 20_000;

    /// <summary>How long a control request may wait for the delayer thread and the kernel's answer.</summary>
    private static readonly TimeSpan ControlTimeout = TimeSpan.FromSeconds(10);
    private readonly Socket socket;
    private readonly Thread thread;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly DelayScheduler scheduler;
    private readonly ConcurrentQueue<Action> control = new();
    private readonly Dictionary<uint, TaskCompletionSource<int>> acks = [];
    private readonly HashSet<ushort> bound = [];
    private readonly byte[] receiveBuffer = new byte[1 << 20];
    private readonly byte[] sendBuffer = new byte[256];
    private readonly List<VerdictBatch> batches = [];
    private readonly int realtimePriority;
    private volatile bool stopping;
    private volatile Exception? failure;
    private uint sequence;
    private long received;
    private long verdicts;
    private long receiveErrors;
    private long sendErrors;
    private int pending;

    private NfQueueDelayer(string? networkNamespace, Socket socket, TimeProvider time, ILogger logger, int realtimePriority)
    {
        this.realtimePriority = realtimePriority;
        NetworkNamespace = networkNamespace;
        this.socket = socket;
        this.time = time;
        this.logger = logger;
        scheduler = new DelayScheduler(time.TimestampFrequency, new LatenessStatistics());
        thread = new Thread(Loop) { IsBackground = true, Name = "nfqueue-delayer:" + (networkNamespace ?? "-") };
        thread.Start();
    }

    public string? NetworkNamespace { get; }

    /// <summary>Whether the delayer thread got real-time (SCHED_FIFO) scheduling.</summary>
    public bool Realtime { get; private set; }

    public LatenessStatistics Lateness => scheduler.Statistics;

    /// <summary>Opens the socket inside <paramref name="networkNamespace"/> and starts the thread.</summary>
    public static NfQueueDelayer Start(string? networkNamespace, TimeProvider time, ILogger logger, int receiveBufferBytes, int realtimePriority = 0)
    {
        var socket = Netns.Run(networkNamespace, () => NetlinkSocket.Open(receiveBufferBytes));
        return new NfQueueDelayer(networkNamespace, socket, time, logger, realtimePriority);
    }

    public DelayerStatistics Statistics => new(NetworkNamespace, Interlocked.Read(ref received), Volatile.Read(ref pending),
        Interlocked.Read(ref verdicts), Interlocked.Read(ref receiveErrors), Interlocked.Read(ref sendErrors), Lateness.Snapshot(), Realtime);

    /// <summary>Binds a queue (or changes its impairment when bound already).</summary>
    public async Task BindAsync(ushort queue, Impairment impairment, uint maxLength, bool failOpen, CancellationToken cancellationToken)
    {
        var isNew = await OnThreadAsync(() =>
        {
            scheduler.Configure(queue, impairment);
            return bound.Add(queue);
        }, cancellationToken).ConfigureAwait(false);

        var bind = isNew ? SendConfig(queue, (buf, seq) => NetlinkCodec.WriteConfigCommand(buf, seq, queue, NetlinkCodec.CmdBind)) : Task.FromResult(0);
        var error = await bind.WaitAsync(ControlTimeout, cancellationToken).ConfigureAwait(false);
        if (error != 0)
        {
            await OnThreadAsync(() => { bound.Remove(queue); scheduler.Remove(queue, out _); return 0; }, CancellationToken.None).ConfigureAwait(false);
            throw new ShapingException(error == -16
                ? $"NFQUEUE {queue} in namespace '{NetworkNamespace ?? "(current)"}' is bound by another process (EBUSY)."
                : $"Cannot bind NFQUEUE {queue} in namespace '{NetworkNamespace ?? "(current)"}': errno {-error}.");
        }

        var flags = NetlinkCodec.FlagGso | (failOpen ? NetlinkCodec.FlagFailOpen : 0);
        // Sent on every apply, not only on bind: the queue length follows the delay.
        error = await SendConfig(queue, (buf, seq) => NetlinkCodec.WriteConfigParams(buf, seq, queue, maxLength, flags)).WaitAsync(ControlTimeout, cancellationToken).ConfigureAwait(false);
        if (error != 0)
        {
            throw new ShapingException($"Cannot set parameters of NFQUEUE {queue}: errno {-error}.");
        }
    }

    /// <summary>Releases what waits in the queue and unbinds it.</summary>
    public async Task UnbindAsync(ushort queue, CancellationToken cancellationToken)
    {
        var wasBound = await OnThreadAsync(() =>
        {
            if (scheduler.Remove(queue, out var maxId))
            {
                SendVerdict(queue, maxId);
            }

            return bound.Remove(queue);
        }, cancellationToken).ConfigureAwait(false);
        if (wasBound)
        {
            _ = await SendConfig(queue, (buf, seq) => NetlinkCodec.WriteConfigCommand(buf, seq, queue, NetlinkCodec.CmdUnbind)).WaitAsync(ControlTimeout, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<IReadOnlyList<ushort>> BoundQueuesAsync(CancellationToken cancellationToken) =>
        OnThreadAsync<IReadOnlyList<ushort>>(() => [.. bound], cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (stopping)
        {
            return;
        }

        stopping = true;
        await Task.Run(thread.Join).ConfigureAwait(false);
        socket.Dispose();
    }

    private Task<T> OnThreadAsync<T>(Func<T> action, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(stopping, this);
        ThrowIfFailed();
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        control.Enqueue(() =>
        {
            try
            {
                tcs.TrySetResult(action());
            }
#pragma warning disable CA1031 // handed to the caller
            catch (Exception ex)
#pragma warning restore CA1031
            {
                tcs.TrySetException(ex);
            }
        });
        return tcs.Task.WaitAsync(ControlTimeout, cancellationToken);
    }

    /// <summary>Sends a config message from the thread; the task ends with the kernel's acknowledgement (0 or −errno).</summary>
    private Task<int> SendConfig(ushort queue, Func<byte[], uint, int> write)
    {
        ThrowIfFailed();
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        control.Enqueue(() =>
        {
            var seq = ++sequence;
            var len = write(sendBuffer, seq);
            try
            {
                socket.Send(sendBuffer.AsSpan(0, len));
                acks[seq] = tcs;
            }
            catch (SocketException ex)
            {
                tcs.TrySetResult(-(int)ex.SocketErrorCode);
            }
        });
        return tcs.Task;
    }

    private void ThrowIfFailed()
    {
        if (failure is { } f)
        {
            throw new ShapingException($"The delayer of namespace '{NetworkNamespace ?? "(current)"}' stopped: {f.Message}", f);
        }
    }

    private void Loop()
    {
        try
        {
            Realtime = PreciseWait.TryMakeCurrentThreadRealtime(realtimePriority);
            var fd = socket.SafeHandle.DangerousGetHandle();
            while (!stopping)
            {
                while (control.TryDequeue(out var action))
                {
                    action();
                }

                var now = time.GetTimestamp();
                var next = scheduler.NextDue;
                var waitNanos = next is null ? MaxIdleWaitMicros * 1000L : (long)Math.Clamp((next.Value - now) * 1e9 / time.TimestampFrequency, 0, MaxIdleWaitMicros * 1000.0);
                var readable = PreciseWait.WaitReadable(fd, waitNanos);
                if (readable)
                {
                    Drain();
                }

                ReleaseDue();
            }

            // Fail open on the way out: let everything still held go now, then leave the queues.
            foreach (var queue in bound)
            {
                if (scheduler.Remove(queue, out var maxId))
                {
                    SendVerdict(queue, maxId);
                }

                var len = NetlinkCodec.WriteConfigCommand(sendBuffer, ++sequence, queue, NetlinkCodec.CmdUnbind);
                TrySend(len);
            }

            foreach (var tcs in acks.Values)
            {
                tcs.TrySetResult(-125);  // ECANCELED
            }
        }
#pragma warning disable CA1031 // the thread must not crash the process; the kernel fails open (--queue-bypass)
        catch (Exception ex)
#pragma warning restore CA1031
        {
            failure = ex;
            NetemLog.DelayerFailed(logger, NetworkNamespace ?? "(current)", ex);
            foreach (var tcs in acks.Values)
            {
                tcs.TrySetException(ex);
            }
        }
    }

    private void Drain()
    {
        do
        {
            int n;
            try
            {
                n = socket.Receive(receiveBuffer);
            }
            catch (SocketException)
            {
                Interlocked.Increment(ref receiveErrors);
                return;
            }

            var now = time.GetTimestamp();
            var span = receiveBuffer.AsSpan(0, n);
            while (span.Length > 0)
            {
                var used = NetlinkCodec.TryRead(span, out var message);
                if (used == 0)
                {
                    break;
                }

                Handle(message, now);
                span = span[used..];
            }
        }
        while (socket.Poll(0, SelectMode.SelectRead));
        Volatile.Write(ref pending, scheduler.Pending);
    }

    private void Handle(in NetlinkMessage message, long now)
    {
        if (message.Type == NetlinkCodec.MsgPacket && NetlinkCodec.TryReadPacket(message, out var queue, out var id))
        {
            Interlocked.Increment(ref received);
            if (scheduler.IsConfigured(queue))
            {
                scheduler.Enqueue(queue, id, now);
            }
            else
            {
                // A queue this process no longer knows: never hold a packet nobody will release.
                SendVerdict(queue, id, batch: false);
            }
        }
        else if (message.Type == NetlinkCodec.NlmsgError && acks.Remove(message.Sequence, out var tcs))
        {
            tcs.TrySetResult(NetlinkCodec.ReadError(message));
        }
    }

    private void ReleaseDue()
    {
        batches.Clear();
        scheduler.Release(time.GetTimestamp(), batches);
        foreach (var b in batches)
        {
            SendVerdict(b.Queue, b.MaxId);
        }

        if (batches.Count > 0)
        {
            Volatile.Write(ref pending, scheduler.Pending);
        }
    }

    private void SendVerdict(ushort queue, uint id, bool batch = true)
    {
        var len = NetlinkCodec.WriteVerdict(sendBuffer, ++sequence, queue, id, NetlinkCodec.VerdictAccept, batch);
        if (TrySend(len))
        {
            Interlocked.Increment(ref verdicts);
        }
    }

    private bool TrySend(int length)
    {
        try
        {
            socket.Send(sendBuffer.AsSpan(0, length));
            return true;
        }
        catch (SocketException)
        {
            Interlocked.Increment(ref sendErrors);
            return false;
        }
    }
}
