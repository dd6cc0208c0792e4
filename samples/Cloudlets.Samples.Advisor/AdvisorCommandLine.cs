using System.CommandLine;
using System.Globalization;

namespace Cloudlets.Samples.Advisor;

/// <summary>The parsed command line of <c>cloudlets-advisor</c>.</summary>
/// <param name="ConfigPath">The JSON configuration file.</param>
/// <param name="Duration">How long to run, or null for until Ctrl+C.</param>
/// <param name="Apply">Whether to migrate (automatic mode); the default is to advise only.</param>
/// <param name="ValidateOnly">Check the file and exit.</param>
internal sealed record AdvisorCommandLine(string ConfigPath, TimeSpan? Duration, bool Apply, bool ValidateOnly)
{
    /// <summary>The short usage printed after a usage error (the whole story is in <c>--help</c>).</summary>
    public const string Synopsis = "usage: cloudlets-advisor CONFIG.json [--duration SECONDS] [--apply] [--validate]";

    /// <summary>The longest <c>--duration</c>: one week.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(7);

    /// <exception cref="FormatException">The arguments are not valid.</exception>
    public static AdvisorCommandLine Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var commands = new AdvisorCommands();
        return From(commands, SampleCommandLine.ParseOrThrow(commands.Root, args));
    }

    /// <summary>Reads and checks a parse of <see cref="AdvisorCommands"/> that had no syntax errors.</summary>
    /// <exception cref="FormatException">The arguments are not valid.</exception>
    public static AdvisorCommandLine From(AdvisorCommands commands, ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ArgumentNullException.ThrowIfNull(result);

        // The file is taken as any number of tokens so that an option the advisor does not have, or a second file,
        // is named as what it is.
        var files = result.GetValue(commands.Config) ?? [];
        if (files.FirstOrDefault(f => f.StartsWith('-')) is { } unknown)
        {
            throw new FormatException($"unknown option '{unknown}'");
        }

        if (files.Length > 1)
        {
            throw new FormatException($"only one configuration file is taken; '{files[1]}' is extra");
        }

        if (files.Length == 0)
        {
            throw new FormatException("no configuration file given");
        }

        TimeSpan? duration = null;
        if (result.GetValue(commands.Duration) is { } text)
        {
            if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) ||
                !double.IsFinite(seconds) || seconds <= 0 || seconds > MaxDuration.TotalSeconds)
            {
                throw new FormatException($"--duration takes seconds above 0 and at most {MaxDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)}, not '{text}'");
            }

            duration = TimeSpan.FromSeconds(seconds);
        }

        return new AdvisorCommandLine(files[0], duration, result.GetValue(commands.Apply), result.GetValue(commands.Validate));
    }
}

/// <summary>The command tree of <c>cloudlets-advisor</c> (System.CommandLine); <see cref="AdvisorCommandLine.From"/> reads a parse.</summary>
internal sealed class AdvisorCommands
{
    private const string Description = """
        cloudlets-advisor: the migration pipeline against the KVM hosts and VMs described in CONFIG.json. It probes the
        hosts (and the VMs) from each vantage point, evaluates the policy every window, and prints each change of
        decision with its reason and figures. Nothing is migrated unless --apply is given; then decided moves are
        executed live. See advisor.example.json next to the program for the file's shape; the file is validated
        before anything connects, every error listed with its place.

        Needs root when it probes by ICMP and net.ipv4.ping_group_range does not cover the user, and to probe or
        connect from a network namespace (networkNamespace in the file).

        Ctrl+C or SIGTERM stops it; with --apply a migration under way is waited for (bounded) so its outcome is printed.
        cloudlets-controller supersedes it as a service (metrics, health, audit log, operator actions).

        Exit codes:
          0  done (also --help, --version and a valid --validate)
          1  a host could not be reached or probing failed
          2  bad command line or configuration (nothing was connected)
          3  unsupported platform
          130  cancelled (Ctrl+C or SIGTERM) while starting
        """;

    /// <summary>Builds the tree (no action set).</summary>
    public AdvisorCommands()
    {
        Config = new Argument<string[]>("CONFIG.json") { Description = "The JSON configuration file.", Arity = ArgumentArity.ZeroOrMore };
        Duration = new Option<string?>("--duration") { Description = "Stop after this many seconds (above 0, at most a week); the default is to run until Ctrl+C or SIGTERM.", HelpName = "SECONDS" };
        Apply = new Option<bool>("--apply") { Description = "Execute the decided moves (automatic mode); without it the advisor only advises." };
        Validate = new Option<bool>("--validate") { Description = "Check the configuration, print what it holds, and exit without connecting." };
        Root = new RootCommand(Description) { Config, Duration, Apply, Validate };
    }

    /// <summary>The root command (<c>--help</c>, <c>--version</c>, the file and the options).</summary>
    public RootCommand Root { get; }

    public Argument<string[]> Config { get; }

    public Option<string?> Duration { get; }

    public Option<bool> Apply { get; }

    public Option<bool> Validate { get; }
}
