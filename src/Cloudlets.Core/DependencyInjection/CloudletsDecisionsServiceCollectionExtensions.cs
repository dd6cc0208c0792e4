using Cloudlets.Core.Options;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Options;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cloudlets.Core.DependencyInjection;

/// <summary>The options of the decision services registered by <see cref="CloudletsDecisionsServiceCollectionExtensions.AddCloudletsDecisions"/>.</summary>
public sealed class CloudletsDecisionsOptions
{
    /// <summary>The lowest-latency policy's options. The default is <see cref="LowestLatencyPolicyOptions"/>'s defaults.</summary>
    public LowestLatencyPolicyOptions Policy { get; set; } = new();

    /// <summary>The pipeline's options (including the executor's). The default is <see cref="MigrationPipelineOptions"/>'s defaults.</summary>
    public MigrationPipelineOptions Pipeline { get; set; } = new();
}

/// <summary>Validates <see cref="CloudletsDecisionsOptions"/> with the same rules the policy and the pipeline builder apply.</summary>
public sealed class CloudletsDecisionsOptionsValidator : IValidateOptions<CloudletsDecisionsOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, CloudletsDecisionsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.Policy is null)
        {
            errors.Add("Policy must not be null.");
        }
        else
        {
            var policyErrors = new OptionsErrors();
            policyErrors.Nested("Policy", options.Policy);
            errors.AddRange(policyErrors.Errors.Select(e => e.ToString()));
        }

        var pipeline = new OptionsErrors();
        pipeline.Nested(nameof(options.Pipeline), options.Pipeline);
        errors.AddRange(pipeline.Errors.Select(e => e.ToString()));

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Registers the migration policy and the pipeline builder.</summary>
public static class CloudletsDecisionsServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="CloudletsDecisionsOptions"/> (validated on first use and on host start),
    /// an <see cref="IMigrationPolicy"/> (a <see cref="LowestLatencyPolicy"/>), <see cref="TimeProvider.System"/>
    /// unless a clock is registered, and a transient <see cref="MigrationPipelineBuilder"/> preset with
    /// the policy, the clock, the logger factory and the options — add the samples, hosts and VMs, then build.
    /// </summary>
    public static IServiceCollection AddCloudletsDecisions(this IServiceCollection services, Action<CloudletsDecisionsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<CloudletsDecisionsOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CloudletsDecisionsOptions>, CloudletsDecisionsOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IMigrationPolicy>(sp => new LowestLatencyPolicy(sp.GetRequiredService<IOptions<CloudletsDecisionsOptions>>().Value.Policy));
        services.TryAddTransient(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CloudletsDecisionsOptions>>().Value.Pipeline;
            var builder = new MigrationPipelineBuilder()
                .WithPolicy(sp.GetRequiredService<IMigrationPolicy>())
                .WithTimeProvider(sp.GetRequiredService<TimeProvider>())
                .Configure(target =>
                {
                    var copy = o.Clone();
                    target.Mode = copy.Mode;
                    target.EvaluationInterval = copy.EvaluationInterval;
                    target.PlacementRefreshInterval = copy.PlacementRefreshInterval;
                    target.HostTimeout = copy.HostTimeout;
                    target.SampleWindow = copy.SampleWindow;
                    target.VCpuOvercommit = copy.VCpuOvercommit;
                    target.Executor = copy.Executor;
                });
            if (sp.GetService<ILoggerFactory>() is { } loggers)
            {
                builder.WithLoggerFactory(loggers);
            }

            return builder;
        });
        return services;
    }
}
