using Cloudlets.Core.Options;

namespace Cloudlets.Core.Pipeline;

/// <summary>Whether the pipeline only advises or also migrates.</summary>
public enum PipelineMode
{
    /// <summary>Decisions only; nothing is migrated.</summary>
    Advisory,
    /// <summary>Decisions, and an executor runs the moves.</summary>
    Automatic,
}

/// <summary>
/// Options of <see cref="MigrationPipeline"/>. Every option documents its default and range; the
/// builder validates them once, when it builds.
/// </summary>
public sealed class MigrationPipelineOptions : IValidatableOptions
{
    /// <summary>Advisory or automatic. The default is <see cref="PipelineMode.Advisory"/>.</summary>
    public PipelineMode Mode { get; set; } = PipelineMode.Advisory;

    /// <summary>How often every VM is evaluated (one window). Range (0, 1 hour]. The default is 5 seconds.</summary>
    public TimeSpan EvaluationInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often placement and capacity are read from the hosts. Range (0, 1 hour]. The default is 15 seconds.</summary>
    public TimeSpan PlacementRefreshInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a host may take to answer a refresh before it leaves the candidates. Range (0, 5 minutes]. The default is 5 seconds.</summary>
    public TimeSpan HostTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Samples kept per vantage point and target for the rolling statistics. Range [1, 10000]. The default is 20.</summary>
    public int SampleWindow { get; set; } = 20;

    /// <summary>vCPUs a host may give to VMs per logical CPU. Range (0, 64]. The default is 4.</summary>
    public double VCpuOvercommit { get; set; } = 4;

    /// <summary>
    /// How long <see cref="MigrationPipeline.StopAsync"/> lets running migrations finish before it
    /// aborts them (each VM then stays on its source). Range [0, 1 day]. The default is 10 minutes,
    /// the executor's default completion timeout.
    /// </summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The executor's options (automatic mode). The default is <see cref="MigrationExecutorOptions"/>'s defaults.</summary>
    public MigrationExecutorOptions Executor { get; set; } = new();

    /// <summary>Returns a copy (with a copy of <see cref="Executor"/>).</summary>
    public MigrationPipelineOptions Clone()
    {
        var copy = (MigrationPipelineOptions)MemberwiseClone();
        copy.Executor = Executor?.Clone()!;
        return copy;
    }

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        errors.Defined(nameof(Mode), Mode);
        Positive(errors, nameof(EvaluationInterval), EvaluationInterval, TimeSpan.FromHours(1));
        Positive(errors, nameof(PlacementRefreshInterval), PlacementRefreshInterval, TimeSpan.FromHours(1));
        Positive(errors, nameof(HostTimeout), HostTimeout, TimeSpan.FromMinutes(5));
        errors.InRange(nameof(SampleWindow), SampleWindow, 1, 10_000);
        errors.Require(VCpuOvercommit > 0 && VCpuOvercommit <= 64, nameof(VCpuOvercommit), FormattableString.Invariant($"is {VCpuOvercommit}; the range is (0, 64]."));
        errors.InRange(nameof(StopTimeout), StopTimeout, TimeSpan.Zero, TimeSpan.FromDays(1));
        errors.Nested(nameof(Executor), Executor);
    }

    /// <summary>Adds an error unless 0 &lt; <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    internal static void Positive(OptionsErrors errors, string name, TimeSpan value, TimeSpan max) =>
        errors.Require(value > TimeSpan.Zero && value <= max, name, FormattableString.Invariant($"is {value}; the range is (0, {max}]."));
}
