using System.Globalization;

namespace Cloudlets.Samples.Advisor;

/// <summary>The parsed command line of <c>cloudlets-advisor</c>.</summary>
/// <param name="ConfigPath">The JSON configuration file.</param>
/// <param name="Duration">How long to run, or null for until Ctrl+C.</param>
/// <param name="Apply">Whether to migrate (automatic mode); the default is to advise only.</param>
/// <param name="ValidateOnly">Check the file and exit.</param>
internal sealed record AdvisorCommandLine(string ConfigPath, TimeSpan? Duration, bool Apply, bool ValidateOnly)
{
    public const string Usage = """
        usage: cloudlets-advisor CONFIG.json [--duration SECONDS] [--apply] [--validate]
          Probes the hosts and VMs described in CONFIG.json and prints the pipeline's decisions with
          their reasons. Nothing is migrated unless --apply is given (then moves are executed).
          --duration SECONDS  stop after this long (the default is to run until Ctrl+C)
          --validate          check the configuration and exit
        See advisor.example.json next to the program for the file's shape.
        """;

    /// <summary>The longest <c>--duration</c>: one week.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(7);

    /// <exception cref="FormatException">The arguments are not valid.</exception>
    public static AdvisorCommandLine Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? config = null;
        TimeSpan? duration = null;
        var apply = false;
        var validate = false;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--duration":
                    var text = i + 1 < args.Count ? args[++i] : throw new FormatException("--duration needs a number of seconds");
                    if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) ||
                        !double.IsFinite(seconds) || seconds <= 0 || seconds > MaxDuration.TotalSeconds)
                    {
                        throw new FormatException($"--duration takes seconds above 0 and at most {MaxDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}, not '{text}'");
                    }

                    duration = TimeSpan.FromSeconds(seconds);
                    break;
                case "--apply":
                    apply = true;
                    break;
                case "--validate":
                    validate = true;
                    break;
                case var a when a.StartsWith('-'):
                    throw new FormatException($"unknown option '{a}'");
                case var a when config is null:
                    config = a;
                    break;
                default:
                    throw new FormatException($"only one configuration file is taken; '{args[i]}' is extra");
            }
        }

        return config is null
            ? throw new FormatException("no configuration file given")
            : new AdvisorCommandLine(config, duration, apply, validate);
    }
}
