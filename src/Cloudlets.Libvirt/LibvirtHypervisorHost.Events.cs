using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt;

// Native events (copied out on libvirt's event-loop thread) pumped to subscribers, job completions and connection loss.
public sealed partial class LibvirtHypervisorHost
{
    private async Task PumpAsync()
    {
        await foreach (var (connection, e) in _native.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            switch (e)
            {
                case NativeLifecycleEvent l:
                    Publish(ToHostEvent(l));
                    break;
                case NativeJobCompletedEvent j:
                    if (_jobWaiters.TryGetValue(j.VmName, out var waiter))
                    {
                        waiter.TrySetResult(j.Stats);
                    }

                    break;
                case NativeCloseEvent c:
                    OnConnectionLost(connection, c.Reason switch
                    {
                        0 => "connection error",
                        1 => "end of file (the daemon closed the connection)",
                        2 => "keepalive timeout",
                        3 => "closed by client",
                        _ => $"close reason {c.Reason}",
                    });
                    break;
            }
        }
    }

    private void Publish(HostEvent e)
    {
        lock (_publishGate)
        {
            if (_events.IsDisposed)
            {
                return;
            }

            try
            {
                _events.OnNext(e);
            }
#pragma warning disable CA1031 // One faulty subscriber must not stop events for everyone else.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.SubscriberFailed(_logger, Name, ex);
            }
        }
    }

    private VmLifecycleEvent ToHostEvent(NativeLifecycleEvent l)
    {
        var lifecycle = l.Event switch
        {
            0 => VmLifecycle.Defined,
            1 => VmLifecycle.Undefined,
            2 => VmLifecycle.Started,
            3 => VmLifecycle.Suspended,
            4 => VmLifecycle.Resumed,
            5 => VmLifecycle.Stopped,
            6 => VmLifecycle.Shutdown,
            7 => VmLifecycle.PowerManagementSuspended,
            8 => VmLifecycle.Crashed,
            _ => VmLifecycle.Other,
        };
        var byMigration = (lifecycle, l.Detail) switch
        {
            (VmLifecycle.Started, 1) => true,
            (VmLifecycle.Suspended, 1 or 7) => true,
            (VmLifecycle.Resumed, 1 or 3) => true,
            (VmLifecycle.Stopped, 3) => true,
            _ => false,
        };
        return new VmLifecycleEvent(Name, _time.GetUtcNow(), l.VmName, lifecycle, l.Detail, byMigration);
    }
}
