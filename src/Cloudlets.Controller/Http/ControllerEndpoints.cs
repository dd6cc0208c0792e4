using System.Text.Json;
using System.Text.Json.Serialization;
using Cloudlets.Controller.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Cloudlets.Controller.Http;

/// <summary>The controller's HTTP endpoints as minimal-API mappings.</summary>
public static partial class ControllerEndpoints
{
    /// <summary>The JSON shape of every response: camelCase, enums as names.</summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Maps <c>/metrics</c> (Prometheus text format, from OpenTelemetry's Prometheus exporter).</summary>
    public static IEndpointConventionBuilder MapCloudletsMetrics(this IEndpointRouteBuilder endpoints, string path = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapPrometheusScrapingEndpoint(path);
    }

    /// <summary>
    /// Maps <c>/healthz</c> (liveness: 200 when healthy or degraded — some host or sample pair down —
    /// 503 when unhealthy) and <c>/readyz</c> (readiness: 200 only when every check is healthy: the
    /// pipeline runs, every host is connected, every vantage point/host pair has fresh samples).
    /// Both answer JSON: the overall status and each check's status, description and data.
    /// </summary>
    public static IEndpointRouteBuilder MapCloudletsHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { ResponseWriter = WriteHealthAsync });
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            ResponseWriter = WriteHealthAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        });
        return endpoints;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        var state = context.RequestServices.GetService(typeof(ControllerState)) as ControllerState;
        var body = new
        {
            status = report.Status.ToString(),
            phase = state?.Phase.ToString(),
            mode = state?.Mode.ToString(),
            role = state is null ? null : state.Leadership is { } l ? (l.IsLeader ? "leader" : "follower") : "alone",
            leaseId = state?.Leadership?.LeaseId,
            region = state?.Leadership?.Election,
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        };
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, Json), context.RequestAborted);
    }
}
