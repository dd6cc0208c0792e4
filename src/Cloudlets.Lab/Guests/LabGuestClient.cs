using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Cloudlets.Probing.Linux;

namespace Cloudlets.Lab.Guests;

/// <summary>One answer of a guest's state service.</summary>
/// <param name="BootId">The guest kernel's boot id (changes on every boot).</param>
/// <param name="Counter">Seconds counted since the guest's service started (grows by one a second).</param>
public sealed record GuestReading(string BootId, long Counter)
{
    /// <summary>Parses <c>boot=ID counter=N</c>; throws <see cref="FormatException"/> otherwise.</summary>
    public static GuestReading Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        string? boot = null;
        long? counter = null;
        foreach (var part in line.Split([' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("boot=", StringComparison.Ordinal) && part.Length > 5)
            {
                boot = part[5..];
            }
            else if (part.StartsWith("counter=", StringComparison.Ordinal) &&
                     long.TryParse(part.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                counter = n;
            }
        }

        return boot is not null && counter is not null
            ? new GuestReading(boot, counter.Value)
            : throw new FormatException($"Not a guest state line: '{line.Trim()}'.");
    }
}

/// <summary>
/// Reads a guest's state service over TCP from inside a network namespace (the lab's edge), the
/// way a user at the edge would reach the guest.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class LabGuestClient
{
    /// <summary>Creates a client.</summary>
    /// <param name="networkNamespace">The namespace the socket is created in (the lab's edge).</param>
    /// <param name="address">The guest's address.</param>
    /// <param name="port">The service port. The default is <see cref="GuestImage.ServicePort"/>.</param>
    public LabGuestClient(string networkNamespace, IPAddress address, int port = GuestImage.ServicePort)
    {
        NetworkNamespace.ValidateName(networkNamespace);
        ArgumentNullException.ThrowIfNull(address);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Namespace = networkNamespace;
        Address = address;
        Port = port;
    }

    /// <summary>The namespace the client connects from.</summary>
    public string Namespace { get; }

    /// <summary>The guest's address.</summary>
    public IPAddress Address { get; }

    /// <summary>The service port.</summary>
    public int Port { get; }

    /// <summary>Connects, reads one state line and returns it; throws <see cref="SocketException"/>, <see cref="TimeoutException"/> or <see cref="FormatException"/>.</summary>
    public async Task<GuestReading> ReadAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        using var socket = NetworkNamespace.Run(Namespace, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(Address, Port), timeoutSource.Token).ConfigureAwait(false);
            var buffer = new byte[256];
            var text = new StringBuilder();
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeoutSource.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
                if (text.Length > 4096)
                {
                    break;
                }
            }

            return GuestReading.Parse(text.ToString());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The guest at {Address}:{Port} did not answer from {Namespace} within {timeout.TotalSeconds:0.#} s.");
        }
    }

    /// <summary>Reads until the guest answers, or throws <see cref="TimeoutException"/> after <paramref name="within"/>.</summary>
    public async Task<GuestReading> WaitForAnswerAsync(TimeSpan within, CancellationToken cancellationToken = default)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        Exception? last = null;
        while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < within)
        {
            try
            {
                return await ReadAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException or FormatException)
            {
                last = ex;
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"The guest at {Address}:{Port} did not answer from {Namespace} within {within.TotalSeconds:0.#} s (last: {last?.Message}).", last);
    }
}
