using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cloudlets.Core.DependencyInjection;

/// <summary>
/// The options <see cref="CloudletsServiceCollectionExtensions.AddCloudlets(IServiceCollection, IConfiguration, Action{IServiceProvider, MigrationPipelineBuilder})"/>
/// binds from configuration (a section such as <c>Cloudlets</c>, with <c>Policy</c> and <c>Pipeline</c> below it).
/// </summary>
public sealed class CloudletsOptions : IValidatableOptions
{
    /// <summary>The lowest-latency policy's options (used unless an <see cref="IMigrationPolicy"/> is registered). The default is <see cref="LowestLatencyPolicyOptions"/>'s defaults.</summary>
    public LowestLatencyPolicyOptions Policy { get; set; } = new();

    /// <summary>The pipeline's options (including the executor's). The default is <see cref="MigrationPipelineOptions"/>'s defaults.</summary>
    public MigrationPipelineOptions Pipeline { get; set; } = new();

    /// <summary>
    /// The placement rules the pipeline starts with (section <c>Rules</c>: <c>DrainedHosts</c>, <c>PinnedVms</c>,
    /// <c>AffinityGroups</c>, <c>AntiAffinityGroups</c>, <c>ExcludedHosts</c>); their names are checked against
    /// the hosts and VMs when the pipeline is built. The default is no rules.
    /// </summary>
    public PlacementRules Rules { get; set; } = new();

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Nested(nameof(Policy), Policy);
        errors.Nested(nameof(Pipeline), Pipeline);
        errors.Nested(nameof(Rules), Rules);
    }
}

/// <summary>Checks <see cref="CloudletsOptions"/> for the options system (on first use and, with <c>ValidateOnStart</c>, when the host starts), listing every error with its path.</summary>
public sealed class CloudletsOptionsValidator : IValidateOptions<CloudletsOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, CloudletsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new OptionsErrors();
        options.Validate(errors);
        return errors.HasErrors ? ValidateOptionsResult.Fail(errors.Errors.Select(e => e.ToString())) : ValidateOptionsResult.Success;
    }
}

/// <summary>Registers a Cloudlets migration pipeline and the hosted service that runs it.</summary>
public static class CloudletsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="CloudletsOptions"/> bound from <paramref name="configuration"/> (a section
    /// such as <c>Cloudlets</c>) and validated when the host starts, then the same as
    /// <see cref="AddCloudlets(IServiceCollection, Action{CloudletsOptions}?, Action{IServiceProvider, MigrationPipelineBuilder})"/>.
    /// </summary>
    public static IServiceCollection AddCloudlets(this IServiceCollection services, IConfiguration configuration, Action<IServiceProvider, MigrationPipelineBuilder> build)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CloudletsOptions>().Bind(configuration);
        return services.AddCloudlets((Action<CloudletsOptions>?)null, build);
    }

    /// <summary>
    /// Registers the built <see cref="MigrationPipeline"/> as a singleton and a hosted service that
    /// starts it with the host and stops it gracefully with the host (no new move; running
    /// migrations finish within <see cref="MigrationPipelineOptions.StopTimeout"/>, or until the
    /// host's shutdown timeout cancels the stop: set <c>HostOptions.ShutdownTimeout</c> at least as
    /// long). The container disposes the pipeline, and with it what the pipeline owns.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Changes the options, or <see langword="null"/>.</param>
    /// <param name="build">
    /// Adds the samples, hosts and VMs to a builder already given the options, the registered
    /// <see cref="TimeProvider"/> (<see cref="TimeProvider.System"/> unless one is registered), the
    /// <see cref="ILoggerFactory"/> when one is registered, and the registered <see cref="IMigrationPolicy"/>
    /// (a <see cref="LowestLatencyPolicy"/> over <see cref="CloudletsOptions.Policy"/> unless one is registered).
    /// </param>
    public static IServiceCollection AddCloudlets(this IServiceCollection services, Action<CloudletsOptions>? configure, Action<IServiceProvider, MigrationPipelineBuilder> build)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(build);
        var options = services.AddOptions<CloudletsOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CloudletsOptions>, CloudletsOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IMigrationPolicy>(sp => new LowestLatencyPolicy(sp.GetRequiredService<IOptions<CloudletsOptions>>().Value.Policy));
        services.TryAddSingleton(sp =>
        {
            var builder = new MigrationPipelineBuilder()
                .WithOptions(sp.GetRequiredService<IOptions<CloudletsOptions>>().Value.Pipeline)
                .WithPolicy(sp.GetRequiredService<IMigrationPolicy>())
                .WithTimeProvider(sp.GetRequiredService<TimeProvider>())
                .WithRules(sp.GetRequiredService<IOptions<CloudletsOptions>>().Value.Rules ?? PlacementRules.Empty);
            if (sp.GetService<ILoggerFactory>() is { } loggers)
            {
                builder.WithLoggerFactory(loggers);
            }

            build(sp, builder);
            return builder.Build();
        });
        services.TryAddSingleton<IPlacementControl>(sp => sp.GetRequiredService<MigrationPipeline>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, CloudletsPipelineService>());
        return services;
    }
}

/// <summary>
/// Runs the registered <see cref="MigrationPipeline"/> with the host: started when the host starts,
/// stopped gracefully (running migrations finish, bounded) when it stops.
/// </summary>
public sealed class CloudletsPipelineService(MigrationPipeline pipeline) : IHostedService
{
    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => pipeline.StartAsync(cancellationToken);

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => pipeline.StopAsync(cancellationToken);
}
