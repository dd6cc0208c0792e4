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
public sealed class MigrationPipelineOptions
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

    /// <summary>The executor's options (automatic mode). The default is <see cref="MigrationExecutorOptions"/>'s defaults.</summary>
    public MigrationExecutorOptions Executor { get; set; } = new();

    /// <summary>Returns a copy (with a copy of <see cref="Executor"/>).</summary>
    public MigrationPipelineOptions Clone()
    {
        var copy = (MigrationPipelineOptions)MemberwiseClone();
        copy.Executor = Executor?.Clone()!;
        return copy;
    }

    /// <summary>Every violated range, in words (including the executor's); empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enum.IsDefined(Mode))
        {
            errors.Add($"{nameof(Mode)} must be Advisory or Automatic; it is {Mode}.");
        }

        Check(errors, nameof(EvaluationInterval), EvaluationInterval, TimeSpan.FromHours(1));
        Check(errors, nameof(PlacementRefreshInterval), PlacementRefreshInterval, TimeSpan.FromHours(1));
        Check(errors, nameof(HostTimeout), HostTimeout, TimeSpan.FromMinutes(5));
        if (SampleWindow is < 1 or > 10_000)
        {
            errors.Add($"{nameof(SampleWindow)} must be in [1, 10000]; it is {SampleWindow}.");
        }

        if (!(VCpuOvercommit > 0 && VCpuOvercommit <= 64))
        {
            errors.Add($"{nameof(VCpuOvercommit)} must be in (0, 64]; it is {VCpuOvercommit}.");
        }

        if (Executor is null)
        {
            errors.Add($"{nameof(Executor)} must not be null.");
        }
        else
        {
            errors.AddRange(Executor.Validate().Select(e => "Executor." + e));
        }

        return errors;
    }

    private static void Check(List<string> errors, string name, TimeSpan value, TimeSpan max)
    {
        if (value <= TimeSpan.Zero || value > max)
        {
            errors.Add($"{name} must be in (0, {max}]; it is {value}.");
        }
    }
}
