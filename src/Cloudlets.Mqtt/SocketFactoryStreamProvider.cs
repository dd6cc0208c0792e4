using System.Net;
using System.Net.Sockets;
using MQTTnet.Channel;

namespace Cloudlets.Mqtt;

/// <summary>
/// Connects each attempt over a socket from <see cref="MqttBrokerOptions.SocketFactory"/> (made, for example, inside
/// a network namespace); MQTTnet layers TLS on the returned stream when the broker is <c>mqtts://</c>.
/// </summary>
internal sealed class SocketFactoryStreamProvider(Func<AddressFamily, Socket> factory) : IMqttClientStreamProvider
{
    public async Task<Stream> ConnectAsync(EndPoint brokerEndPoint, CancellationToken cancellationToken)
    {
        var (addresses, port) = brokerEndPoint switch
        {
            IPEndPoint ip => ([ip.Address], ip.Port),
            DnsEndPoint dns => (await Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false), dns.Port),
            _ => throw new NotSupportedException($"The broker end point {brokerEndPoint} is neither an IP nor a DNS end point."),
        };

        Exception? last = null;
        foreach (var address in addresses)
        {
            var socket = factory(address.AddressFamily);
            try
            {
                socket.NoDelay = true;
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }
}
