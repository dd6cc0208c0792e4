using System.Xml.Linq;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

// The connection's life: open and install callbacks, detect a loss, reconnect with backoff.
public sealed partial class LibvirtHypervisorHost
{
    private void OpenAndInstall()
    {
        var connection = LibvirtConnection.Open(Uri.OriginalString, _options.NetworkNamespace, _options.Credentials);
        bool keepAlive;
        try
        {
            void Post(NativeEvent e) => _native.Writer.TryWrite((connection, e));
            keepAlive = _options.KeepAliveInterval > TimeSpan.Zero &&
                connection.SetKeepAlive((int)_options.KeepAliveInterval.TotalSeconds, (uint)_options.KeepAliveCount);
            if (!IsInProcessDriver(Uri))
            {
                // In-process drivers (test:///) cannot lose their connection, and libvirt keeps no
                // close callback for them (so it would never free one).
                connection.RegisterClose(Post);
            }

            connection.RegisterDomainEvents(Post);
            _hostUuid ??= ReadHostUuid(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        lock (_stateGate)
        {
            if (_disposed == 1)
            {
                Close(connection);
                throw new ObjectDisposedException(nameof(LibvirtHypervisorHost));
            }

            _connection = connection;
            _state = HostConnectionState.Connected;
        }

        Log.Connected(_logger, Name, LibvirtUri.Redact(Uri), keepAlive);
        Publish(new HostConnectionEvent(Name, _time.GetUtcNow(), HostConnectionState.Connected, keepAlive ? "connected (keepalive on)" : "connected"));
    }

    private static bool IsInProcessDriver(Uri uri) => uri.Scheme == "test" && uri.Host.Length == 0;

    private void Close(LibvirtConnection connection)
    {
        connection.Dispose();
        lock (_stateGate)
        {
            _closedConnections.Add(connection);
        }

        if (connection.CloseResult is > 0 and var refs)
        {
            Log.LeakedReferences(_logger, Name, refs);
        }
    }

    private void OnConnectionLost(LibvirtConnection dead, string reason)
    {
        lock (_stateGate)
        {
            if (_disposed == 1 || !ReferenceEquals(_connection, dead))
            {
                return;
            }

            _connection = null;
            _state = HostConnectionState.Reconnecting;
            _reconnect = Task.Run(() => ReconnectAsync(dead));
        }

        Log.ConnectionLost(_logger, Name, reason);
        Publish(new HostConnectionEvent(Name, _time.GetUtcNow(), HostConnectionState.Reconnecting, reason));
    }

    private async Task ReconnectAsync(LibvirtConnection dead)
    {
        Close(dead);
        var delay = _options.ReconnectInitialDelay;
        for (var attempt = 1; !_lifetime.IsCancellationRequested; attempt++)
        {
            try
            {
                await Task.Delay(delay, _time, _lifetime.Token).ConfigureAwait(false);
                OpenAndInstall();
                Log.Reconnected(_logger, Name, attempt);
                return;
            }
            catch (OperationCanceledException) when (_lifetime.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
#pragma warning disable CA1031 // Every failure is retried with backoff until the host is disposed.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // A refused credential does not fix itself within a second: wait the longest delay at once
                // (one attempt per ReconnectMaxDelay, asking the provider again each time, so a rotated
                // password is picked up) instead of doubling up from the first delay.
                var next = ex is HypervisorException { Kind: HypervisorErrorKind.AuthenticationFailed }
                    ? _options.ReconnectMaxDelay
                    : TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
                Log.ReconnectFailed(_logger, Name, attempt, next, ex);
                delay = next;
            }
        }
    }


    private static string? ReadHostUuid(LibvirtConnection connection)
    {
        var caps = LibvirtNative.virConnectGetCapabilities(connection.Handle);
        if (caps is null)
        {
            LibvirtNative.virResetLastError();
            return null;
        }

        try
        {
            return XDocument.Parse(caps).Root?.Element("host")?.Element("uuid")?.Value;
        }
        catch (System.Xml.XmlException)
        {
            return null;
        }
    }
}
