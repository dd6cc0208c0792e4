using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Cloudlets.TestUtils;

/// <summary>
/// Free TCP ports on 127.0.0.1 for servers a test starts (etcd, mosquitto, sshd, a controller).
/// </summary>
/// <remarks>
/// Binding port 0 and releasing it hands out a port from the kernel's ephemeral range, which the
/// next outgoing connection of any process may take before the server binds it: seen in the
/// controller election test as "address already in use" while etcd clients were connecting. A port
/// below that range is never chosen for an outgoing connection, so once it is free it stays free
/// until somebody binds it on purpose; this process also never hands the same port out twice.
/// </remarks>
public static class LoopbackPorts
{
    private const string EphemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
    private const int LowestPort = 20000;
    private static readonly HashSet<int> Given = [];

    /// <summary>A port on 127.0.0.1 that is free now and outside the ephemeral range.</summary>
    public static int Free()
    {
        var (low, high) = EphemeralRange();
        var (from, to) = low - LowestPort >= 1000 ? (LowestPort, low - 1) : (high + 1, 65535);
        if (to - from < 1000)
        {
            throw new InvalidOperationException($"No room outside the ephemeral port range {low}-{high} for test servers.");
        }

        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(from, to + 1);
            lock (Given)
            {
                if (Given.Contains(port) || !CanBind(port))
                {
                    continue;
                }

                Given.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"No free port on 127.0.0.1 between {from} and {to} after 200 tries.");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static (int Low, int High) EphemeralRange()
    {
        try
        {
            var parts = File.ReadAllText(EphemeralRangeFile).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return (32768, 60999); // Linux's default.
        }
    }
}
