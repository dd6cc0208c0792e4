using Cloudlets.Controller.Hosting;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Libvirt;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cloudlets.Controller.Http;

/// <summary>A host as the operator API shows it.</summary>
/// <param name="Name">The host name.</param>
/// <param name="Uri">The libvirt URI, without user information.</param>
/// <param name="ConnectionState">The management connection's state.</param>
/// <param name="Drained">Whether the host is drained (no VM may move there; its VMs are moved away).</param>
/// <param name="Vms">The VMs it runs now (read live), or <see langword="null"/> when it did not answer.</param>
/// <param name="Error">Why the VMs could not be read, or <see langword="null"/>.</param>
public sealed record HostView(string Name, string Uri, HostConnectionState ConnectionState, bool Drained, IReadOnlyList<VmOnHostView>? Vms, string? Error);

/// <summary>A VM as a host lists it.</summary>
/// <param name="Name">The VM name.</param>
/// <param name="State">Its run state.</param>
/// <param name="MemoryBytes">Its memory.</param>
/// <param name="VCpus">Its virtual CPUs.</param>
/// <param name="Managed">Whether the controller manages it (it is in the configuration).</param>
public sealed record VmOnHostView(string Name, VmState State, long MemoryBytes, int VCpus, bool Managed);

/// <summary>A managed VM as the operator API shows it.</summary>
/// <param name="Name">The VM name.</param>
/// <param name="Host">Where the pipeline last saw it running, or <see langword="null"/>.</param>
/// <param name="Pinned">Whether it is pinned (never moved).</param>
/// <param name="Decision">Its latest decision with the explanation and every candidate, or <see langword="null"/> before the first window.</param>
public sealed record VmView(string Name, string? Host, bool Pinned, MigrationDecision? Decision);

/// <summary>A refusal as the operator API returns it: the typed reason and a sentence.</summary>
/// <param name="Refusal">The reason, as a name (for example <c>MissingToken</c>, <c>Pinned</c>, <c>UnknownHost</c>).</param>
/// <param name="Explanation">One sentence.</param>
public sealed record RefusalView(string Refusal, string Explanation);

/// <summary>The operator API under <c>/api/v1</c>.</summary>
public static partial class ControllerEndpoints
{
    /// <summary>How long a host may take to list its VMs for <c>GET /api/v1/hosts</c>.</summary>
    public static readonly TimeSpan HostListTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Maps the operator API: <c>GET /api/v1/hosts</c>, <c>GET /api/v1/vms</c>, <c>GET /api/v1/vms/{vm}</c>,
    /// <c>GET /api/v1/decisions</c>, <c>GET /api/v1/rules</c>; and the state-changing calls, which need
    /// <c>Authorization: Bearer TOKEN</c> (401 without or with a wrong token, 403 when no token is configured):
    /// <c>POST /api/v1/hosts/{host}/drain</c>, <c>…/undrain</c>, <c>POST /api/v1/vms/{vm}/pin</c>, <c>…/unpin</c>,
    /// <c>POST /api/v1/vms/{vm}/move</c> with <c>{"host": "NAME"}</c>. A refused call answers 409 (or 404
    /// for an unknown name) with a <see cref="RefusalView"/>.
    /// </summary>
    public static RouteGroupBuilder MapCloudletsOperatorApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = endpoints.MapGroup("/api/v1");
        api.MapGet("/hosts", ListHostsAsync);
        api.MapGet("/vms", (ControllerState state, Microsoft.Extensions.Options.IOptions<Configuration.ControllerOptions> options) =>
            Results.Json(options.Value.Vms.Select(v => ViewOf(state, v.Name)).ToList(), Json));
        api.MapGet("/vms/{vm}", (string vm, ControllerState state, Microsoft.Extensions.Options.IOptions<Configuration.ControllerOptions> options) =>
            options.Value.Vms.Any(v => v.Name == vm)
                ? Results.Json(ViewOf(state, vm), Json)
                : Results.Json(new RefusalView("UnknownVm", $"'{vm}' is not a VM of this controller."), Json, statusCode: StatusCodes.Status404NotFound));
        api.MapGet("/decisions", (ControllerState state) => Results.Json(state.LatestDecisions.OrderBy(d => d.VmName, StringComparer.Ordinal).ToList(), Json));
        MapControl(api);
        return api;
    }

    private static async Task<IResult> ListHostsAsync(ControllerState state, Microsoft.Extensions.Options.IOptions<Configuration.ControllerOptions> options, CancellationToken cancellationToken)
    {
        var managed = options.Value.Vms.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        var views = await Task.WhenAll(state.Hosts.Select(async h =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(HostListTimeout);
            try
            {
                var vms = await h.ListVmsAsync(timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
                return new HostView(h.Name, LibvirtUri.Redact(h.Uri), h.ConnectionState, IsDrained(state, h.Name),
                    [.. vms.Select(v => new VmOnHostView(v.Name, v.State, v.MemoryBytes, v.VCpus, managed.Contains(v.Name)))], null);
            }
            catch (Exception ex) when (ex is HypervisorException or OperationCanceledException or TimeoutException or InvalidOperationException)
            {
                return new HostView(h.Name, LibvirtUri.Redact(h.Uri), h.ConnectionState, IsDrained(state, h.Name), null, ex.Message);
            }
        })).ConfigureAwait(false);
        return Results.Json(views, Json);
    }

    private static VmView ViewOf(ControllerState state, string vm) =>
        new(vm, state.Pipeline?.PlacementOf(vm), IsPinned(state, vm), state.LatestDecision(vm));
}
