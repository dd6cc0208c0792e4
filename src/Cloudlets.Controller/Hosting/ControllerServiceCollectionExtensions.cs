using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Health;
using Cloudlets.Controller.Telemetry;
using Cloudlets.Core.Options;
using Cloudlets.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Cloudlets.Controller.Hosting;

/// <summary>Registers the controller: its options, state, audit log, metrics, health checks and hosted service.</summary>
public static class ControllerServiceCollectionExtensions
{
    /// <summary>Binds and validates the <c>Controller</c> section of <paramref name="configuration"/> now, then registers the controller with the result.</summary>
    /// <exception cref="Core.Options.OptionsValidationException">The configuration is invalid; every error is listed with its path. Nothing was registered.</exception>
    public static IServiceCollection AddCloudletsController(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.AddCloudletsController(ControllerConfiguration.Load(configuration));
    }

    /// <summary>
    /// Registers the controller with validated <paramref name="options"/>: <see cref="ControllerState"/>,
    /// <see cref="AuditLog"/>, <see cref="ControllerMetrics"/>, the health checks (<c>pipeline</c>,
    /// <c>hosts</c>, <c>samples</c>, <c>election</c>), OpenTelemetry metrics of the <c>Cloudlets.Core</c> and
    /// <c>Cloudlets.Controller</c> meters with a Prometheus exporter, and <see cref="ControllerService"/>.
    /// Sets the host's shutdown timeout above <see cref="Core.Pipeline.MigrationPipelineOptions.StopTimeout"/>
    /// so a stop lets migrations finish. Map the endpoints with <see cref="Http.ControllerEndpoints"/>.
    /// </summary>
    /// <exception cref="Core.Options.OptionsValidationException"><paramref name="options"/> are invalid.</exception>
    public static IServiceCollection AddCloudletsController(this IServiceCollection services, ControllerOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        OptionsErrors.ValidateAndThrow(options);
        services.AddSingleton(Options.Create(options));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ControllerState>();
        services.TryAddSingleton(sp => new AuditLog(options.Audit, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new ControllerMetrics(
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<ControllerState>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(new Http.OperatorToken(options.Http.ResolveToken()));
        services.TryAddSingleton<ControllerService>();
        services.AddHostedService(sp => sp.GetRequiredService<ControllerService>());
        services.Configure<HostOptions>(h =>
        {
            // The host cancels a stop after its shutdown timeout (30 s by default): give the drain its bound and some.
            var needed = options.Pipeline.StopTimeout + TimeSpan.FromSeconds(30);
            if (h.ShutdownTimeout < needed)
            {
                h.ShutdownTimeout = needed;
            }
        });

        services.AddHealthChecks()
            .AddCheck<PipelineRunningHealthCheck>(PipelineRunningHealthCheck.Name)
            .AddCheck<HostsConnectedHealthCheck>(HostsConnectedHealthCheck.Name)
            .AddCheck<SamplesFreshHealthCheck>(SamplesFreshHealthCheck.Name)
            .AddCheck<ElectionHealthCheck>(ElectionHealthCheck.Name);

        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("cloudlets-controller", serviceVersion: typeof(ControllerService).Assembly.GetName().Version?.ToString()))
            .WithMetrics(metrics => metrics
            .AddMeter(CloudletsTelemetry.Name, ControllerMetrics.MeterName)
            .AddView("cloudlets.migration.duration", new ExplicitBucketHistogramConfiguration { Boundaries = [.. ControllerMetrics.DurationBuckets] })
            .AddPrometheusExporter());
        return services;
    }
}
