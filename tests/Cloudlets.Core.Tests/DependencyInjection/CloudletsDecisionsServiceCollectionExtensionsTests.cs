using Cloudlets.Core.Decisions;
using Cloudlets.Core.DependencyInjection;
using Cloudlets.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Cloudlets.Core.Tests.DependencyInjection;

public class CloudletsDecisionsServiceCollectionExtensionsTests
{
    /// <summary>
    /// Resolves the options the way the options system does, from the registrations alone (the test
    /// project has no service-provider implementation package; this uses only the registered descriptors).
    /// </summary>
    private static CloudletsDecisionsOptions Resolve(IServiceCollection services)
    {
        var configures = services.Where(d => d.ServiceType == typeof(IConfigureOptions<CloudletsDecisionsOptions>))
            .Select(d => (IConfigureOptions<CloudletsDecisionsOptions>)d.ImplementationInstance!).ToList();
        var validators = services.Where(d => d.ServiceType == typeof(IValidateOptions<CloudletsDecisionsOptions>))
            .Select(d => (IValidateOptions<CloudletsDecisionsOptions>)Activator.CreateInstance(d.ImplementationType!)!).ToList();
        return new OptionsFactory<CloudletsDecisionsOptions>(configures, [], validators).Create(Microsoft.Extensions.Options.Options.DefaultName);
    }

    [Test]
    public void AddCloudletsDecisions_Registers_PolicyBuilderClockAndValidator()
    {
        var services = new ServiceCollection().AddCloudletsDecisions();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(services.Any(d => d.ServiceType == typeof(IMigrationPolicy) && d.Lifetime == ServiceLifetime.Singleton), Is.True);
            Assert.That(services.Any(d => d.ServiceType == typeof(MigrationPipelineBuilder) && d.Lifetime == ServiceLifetime.Transient), Is.True);
            Assert.That(services.Any(d => d.ServiceType == typeof(TimeProvider)), Is.True);
            Assert.That(services.Count(d => d.ServiceType == typeof(IValidateOptions<CloudletsDecisionsOptions>)), Is.EqualTo(1));
        }
    }

    [Test]
    public void AddCloudletsDecisions_CalledTwice_OneValidatorOnePolicy()
    {
        var services = new ServiceCollection().AddCloudletsDecisions().AddCloudletsDecisions();
        Assert.That(
            (services.Count(d => d.ServiceType == typeof(IValidateOptions<CloudletsDecisionsOptions>)), services.Count(d => d.ServiceType == typeof(IMigrationPolicy))),
            Is.EqualTo((1, 1)));
    }

    [Test]
    public void AddCloudletsDecisions_ValidOptions_ConfigureApplied()
    {
        var services = new ServiceCollection().AddCloudletsDecisions(o =>
        {
            o.Policy.ConfirmationWindows = 5;
            o.Pipeline.Mode = PipelineMode.Automatic;
        });
        var options = Resolve(services);
        Assert.That((options.Policy.ConfirmationWindows, options.Pipeline.Mode), Is.EqualTo((5, PipelineMode.Automatic)));
    }

    [Test]
    public void AddCloudletsDecisions_InvalidOptions_ValidationFailsNamingEachOption()
    {
        var services = new ServiceCollection().AddCloudletsDecisions(o =>
        {
            o.Policy.MinRelativeGain = 2;
            o.Pipeline.Executor.BackoffBase = TimeSpan.Zero;
        });
        var ex = Assert.Throws<OptionsValidationException>(() => Resolve(services));
        Assert.That(ex!.Failures, Has.Some.Contains("Policy.MinRelativeGain").And.Some.Contains("Pipeline.Executor.BackoffBase"));
    }

    [Test]
    public void Validator_NullSections_Fails()
    {
        var result = new CloudletsDecisionsOptionsValidator().Validate(null, new CloudletsDecisionsOptions { Policy = null!, Pipeline = null! });
        Assert.That(result.Failures, Is.EquivalentTo(new List<string> { "Policy must not be null.", "Pipeline: is required." }));
    }
}
