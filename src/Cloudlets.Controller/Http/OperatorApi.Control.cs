using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Hosting;
using Cloudlets.Controller.Telemetry;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Controller.Http;

/// <summary>The body of <c>POST /api/v1/vms/{vm}/move</c>.</summary>
/// <param name="Host">The destination host.</param>
public sealed record MoveRequest(string? Host);

/// <summary>The answer to a rule change: what changed, and the drained hosts and pinned VMs now.</summary>
/// <param name="Action">The action.</param>
/// <param name="Subject">The host or VM.</param>
/// <param name="Changed">Whether the rules changed (an action repeated changes nothing).</param>
/// <param name="DrainedHosts">The drained hosts now.</param>
/// <param name="PinnedVms">The pinned VMs now.</param>
public sealed record RuleChangeView(string Action, string? Subject, bool Changed, IReadOnlyList<string> DrainedHosts, IReadOnlyList<string> PinnedVms);

/// <summary>The answer to a started move (202): the outcome follows on the metrics, the audit log and <c>GET /api/v1/vms/{vm}</c>.</summary>
/// <param name="Vm">The VM.</param>
/// <param name="Host">The destination.</param>
/// <param name="Explanation">One sentence.</param>
public sealed record MoveStartedView(string Vm, string Host, string Explanation);

/// <summary>The bearer token state-changing calls need; replaceable by a configuration reload.</summary>
public sealed class OperatorToken(string? token)
{
    private volatile BearerToken _check = new(token);

    /// <summary>The check in force.</summary>
    public BearerToken Check => _check;

    /// <summary>Replaces the token (a configuration reload).</summary>
    public void Replace(string? token) => _check = new BearerToken(token);
}

public static partial class ControllerEndpoints
{
    private static void MapControl(RouteGroupBuilder api)
    {
        var control = api.MapGroup("").AddEndpointFilter(RequireTokenAsync);
        control.MapPost("/hosts/{host}/drain", (string host, HttpContext http) => Rule(http, PlacementAction.DrainHost, host, (c, by) => c.DrainHost(host, by)));
        control.MapPost("/hosts/{host}/undrain", (string host, HttpContext http) => Rule(http, PlacementAction.UndrainHost, host, (c, by) => c.UndrainHost(host, by)));
        control.MapPost("/vms/{vm}/pin", (string vm, HttpContext http) => Rule(http, PlacementAction.PinVm, vm, (c, by) => c.PinVm(vm, by)));
        control.MapPost("/vms/{vm}/unpin", (string vm, HttpContext http) => Rule(http, PlacementAction.UnpinVm, vm, (c, by) => c.UnpinVm(vm, by)));
        control.MapPost("/vms/{vm}/move", MoveAsync);
        api.MapGet("/rules", (ControllerState state) => state.Pipeline is { } p
            ? Results.Json(p.Rules, Json)
            : Refuse("NotRunning", "The pipeline is not running yet.", StatusCodes.Status503ServiceUnavailable));
    }

    private static bool IsDrained(ControllerState state, string host) => state.Pipeline?.Rules.IsDrained(host) ?? false;

    private static bool IsPinned(ControllerState state, string vm) => state.Pipeline?.Rules.IsPinned(vm) ?? false;

    /// <summary>Who asked, for the audit log: the caller's address.</summary>
    private static string RequestedBy(HttpContext http) => "operator@" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown");

    private static IResult Refuse(string refusal, string explanation, int status) =>
        Results.Json(new RefusalView(refusal, explanation), Json, statusCode: status);

    private static async ValueTask<object?> RequireTokenAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var refusal = http.RequestServices.GetRequiredService<OperatorToken>().Check.Check(http.Request);
        if (refusal == AuthorizationRefusal.None)
        {
            return await next(context).ConfigureAwait(false);
        }

        var (status, explanation) = refusal switch
        {
            AuthorizationRefusal.NoTokenConfigured => (StatusCodes.Status403Forbidden, "No operator token is configured (Controller:Http:Token or TokenFile): state-changing calls are disabled."),
            AuthorizationRefusal.MissingToken => (StatusCodes.Status401Unauthorized, "This call changes state: send Authorization: Bearer TOKEN."),
            _ => (StatusCodes.Status401Unauthorized, "The bearer token is not the configured one."),
        };
        if (status == StatusCodes.Status401Unauthorized)
        {
            http.Response.Headers.WWWAuthenticate = refusal == AuthorizationRefusal.InvalidToken ? "Bearer error=\"invalid_token\"" : "Bearer";
        }

        var remote = RequestedBy(http);
        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(ControllerService.LoggerCategory);
        ControllerLog.OperatorUnauthorized(logger, http.Request.Method, http.Request.Path, remote, status, refusal.ToString());
        http.RequestServices.GetRequiredService<AuditLog>().OperatorAction(
            http.Request.Method + " " + http.Request.Path, null, null, remote, accepted: false, refusal.ToString(), explanation);
        return Refuse(refusal.ToString(), explanation, status);
    }

    private static IResult Rule(HttpContext http, PlacementAction action, string subject, Func<IPlacementControl, string, PlacementChange> change)
    {
        var state = http.RequestServices.GetRequiredService<ControllerState>();
        if (state.Pipeline is not { } control || state.Phase != ControllerPhase.Running)
        {
            return Refuse("NotRunning", $"The pipeline is not running ({state.Phase}).", StatusCodes.Status503ServiceUnavailable);
        }

        try
        {
            var result = change(control, RequestedBy(http));
            return Results.Json(new RuleChangeView(action.ToString(), subject, result.Changed, result.After.DrainedHosts, result.After.PinnedVms), Json);
        }
        catch (UnknownPlacementNameException ex)
        {
            return Refuse(ex.Kind == PlacementNameKind.Host ? "UnknownHost" : "UnknownVm", ex.Message, StatusCodes.Status404NotFound);
        }
    }

    private static async Task<IResult> MoveAsync(string vm, MoveRequest? body, HttpContext http)
    {
        var state = http.RequestServices.GetRequiredService<ControllerState>();
        if (string.IsNullOrWhiteSpace(body?.Host))
        {
            return Refuse("BadRequest", "Send {\"host\": \"NAME\"}: the destination host.", StatusCodes.Status400BadRequest);
        }

        if (state.Pipeline is not { } control || state.Phase != ControllerPhase.Running)
        {
            return Refuse(nameof(MoveNowRefusal.NotRunning), $"The pipeline is not running ({state.Phase}).", StatusCodes.Status503ServiceUnavailable);
        }

        // The start gate writes the migration.started record when the executor really starts the move: tell it who asked.
        MoveNowResult result;
        state.StartGate?.NoteOperatorMove(vm, RequestedBy(http));
        try
        {
            result = await control.MoveNowAsync(vm, body.Host, RequestedBy(http), http.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            state.StartGate?.ForgetOperatorMove(vm);
        }

        if (result.Started)
        {
            return Results.Json(new MoveStartedView(vm, body.Host, result.Explanation), Json, statusCode: StatusCodes.Status202Accepted);
        }

        var status = result.Refusal switch
        {
            MoveNowRefusal.UnknownVm or MoveNowRefusal.UnknownHost => StatusCodes.Status404NotFound,
            MoveNowRefusal.NotRunning => StatusCodes.Status503ServiceUnavailable,
            _ => StatusCodes.Status409Conflict,
        };
        return Refuse(result.Refusal.ToString(), result.Explanation, status);
    }
}
