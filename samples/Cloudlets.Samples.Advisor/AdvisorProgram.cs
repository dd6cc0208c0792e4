using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Samples.Advisor;

/// <summary>The advisor's entry point, callable in-process (tests) with its own writers.</summary>
internal static class AdvisorProgram
{
    /// <summary>Exit codes: 0 done, 1 a host or probe failed at run time, 2 bad arguments or configuration, 3 unsupported platform.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var commands = new AdvisorCommands();
        commands.Root.SetAction((result, _) => RunParsedAsync(commands, result, output, error, cancellationToken));
        return await SampleCommandLine.InvokeAsync(commands.Root, "cloudlets-advisor", args, AdvisorCommandLine.Synopsis, output, error);
    }

    private static async Task<int> RunParsedAsync(AdvisorCommands commands, System.CommandLine.ParseResult result, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        AdvisorCommandLine options;
        AdvisorConfig config;
        try
        {
            options = AdvisorCommandLine.From(commands, result);
            config = AdvisorConfig.Load(options.ConfigPath);
        }
        catch (FormatException ex)
        {
            await SampleCommandLine.WriteUsageErrorAsync(error, "cloudlets-advisor", [ex.Message], AdvisorCommandLine.Synopsis);
            return SampleCommandLine.UsageError;
        }
        catch (AdvisorConfigException ex)
        {
            await error.WriteLineAsync(ex.Message);
            return SampleCommandLine.UsageError;
        }

        await output.WriteLineAsync($"{options.ConfigPath}: {config.Hosts.Count} hosts, {config.Vms.Count} VMs, {config.VantagePoints.Count} vantage points");
        if (options.ValidateOnly)
        {
            await output.WriteLineAsync("the configuration is valid");
            return 0;
        }

        try
        {
            return await new AdvisorRun(config, options.Apply, output).RunAsync(options.Duration, cancellationToken);
        }
        catch (HypervisorException ex)
        {
            await error.WriteLineAsync($"host: {ex.Message}");
            return 1;
        }
        catch (PlatformNotSupportedException ex)
        {
            await error.WriteLineAsync(ex.Message);
            return 3;
        }
        catch (IOException ex)
        {
            await error.WriteLineAsync($"probing: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
