using Cloudlets.Core.Hypervisors;
using Cloudlets.Lab;
using Cloudlets.Libvirt;

namespace Cloudlets.Controller.Tests.Lab;

/// <summary>Where each watched guest had a copy (running or paused) at one moment, as the hosts' libvirtd said.</summary>
/// <param name="At">When the hosts were read.</param>
/// <param name="Copies">Per guest name, the hosts that had a running or paused copy.</param>
internal sealed record PlacementSample(DateTimeOffset At, IReadOnlyDictionary<string, IReadOnlyList<string>> Copies)
{
    public IReadOnlyList<string> Of(string guest) => Copies.TryGetValue(guest, out var hosts) ? hosts : [];
}

/// <summary>
/// Reads every lab host's domains at once about every 100 ms, over one libvirt connection per host opened
/// from the edge (as the controller's are; a virsh process per read is too slow on a loaded machine), and
/// keeps where each watched guest had a running or paused copy (a paused one is a migration's incoming
/// copy, or the source's at the switch-over). A round in which a host does not answer is skipped, not
/// guessed. The sampler owns its connections: <see cref="DisposeAsync"/> stops it and closes them.
/// </summary>
internal sealed class PlacementSampler : IAsyncDisposable
{
    private readonly List<PlacementSample> _samples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly IReadOnlyList<LibvirtHypervisorHost> _hosts;
    private readonly HashSet<string> _guests;
    private Task _loop = Task.CompletedTask;

    private PlacementSampler(IReadOnlyList<LibvirtHypervisorHost> hosts, IEnumerable<string> guests)
    {
        _hosts = hosts;
        _guests = new HashSet<string>(guests, StringComparer.Ordinal);
    }

    /// <summary>The samples so far, oldest first.</summary>
    public IReadOnlyList<PlacementSample> Samples
    {
        get
        {
            lock (_samples)
            {
                return [.. _samples];
            }
        }
    }

    /// <summary>Connects to every host of <paramref name="lab"/> and starts sampling <paramref name="guests"/>.</summary>
    public static async Task<PlacementSampler> StartAsync(CloudletLab lab, IEnumerable<string> guests, CancellationToken cancellationToken)
    {
        var hosts = new List<LibvirtHypervisorHost>();
        try
        {
            foreach (var h in lab.Hosts)
            {
                hosts.Add(await LibvirtHypervisorHost.ConnectAsync(new LibvirtHostOptions { Name = h.Name, Uri = h.Uri, NetworkNamespace = lab.Edge.Namespace }, cancellationToken: cancellationToken));
            }
        }
        catch
        {
            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }

            throw;
        }

        var sampler = new PlacementSampler(hosts, guests);
        sampler._loop = sampler.RunAsync(sampler._stop.Token);
        return sampler;
    }

    /// <summary>Stops sampling (the samples stay readable); a failure of the loop is thrown here.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            foreach (var host in _hosts)
            {
                await host.DisposeAsync();
            }

            _stop.Dispose();
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var lists = _hosts.Select(h => h.ListVmsAsync(cancellationToken)).ToList();
                var copies = _guests.ToDictionary(g => g, _ => new List<string>(), StringComparer.Ordinal);
                var complete = true;
                for (var i = 0; i < _hosts.Count; i++)
                {
                    IReadOnlyList<VmInfo> vms;
                    try
                    {
                        vms = await lists[i];
                    }
                    catch (HypervisorException)
                    {
                        complete = false;
                        continue;
                    }

                    foreach (var vm in vms.Where(v => v.State is VmState.Running or VmState.Paused or VmState.Blocked))
                    {
                        if (copies.TryGetValue(vm.Name, out var on))
                        {
                            on.Add(_hosts[i].Name);
                        }
                    }
                }

                if (complete)
                {
                    lock (_samples)
                    {
                        _samples.Add(new PlacementSample(DateTimeOffset.UtcNow, copies.ToDictionary(c => c.Key, c => (IReadOnlyList<string>)c.Value, StringComparer.Ordinal)));
                    }
                }

                await Task.Delay(100, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
