using System.CommandLine;

namespace Cloudlets.Samples;

/// <summary>
/// The samples' one command-line convention, the same as <c>cloudlets-controller</c>'s and <c>cloudlets-agent</c>'s:
/// System.CommandLine parses; <c>--help</c> (<c>-h</c>, <c>-?</c>) prints the help with the exit codes and exits 0;
/// <c>--version</c> prints the assembly's informational version and exits 0; a usage error prints
/// <c>TOOL: MESSAGE</c> for each error, the synopsis and <c>Try 'TOOL --help'.</c> to standard error and exits 2,
/// before anything is touched. The tools handle SIGINT and SIGTERM themselves (their clean stop tears down
/// what they made), so System.CommandLine does not.
/// </summary>
internal static class SampleCommandLine
{
    /// <summary>The exit code of a usage error (bad command line or input), as for every tool of the repository.</summary>
    public const int UsageError = 2;

    /// <summary>Parses <paramref name="args"/> against <paramref name="root"/> and runs the chosen action; returns the exit code.</summary>
    /// <param name="root">The command tree, with its actions set.</param>
    /// <param name="tool">The tool's name, for messages (the process name is <c>dotnet</c> or a test host in tests).</param>
    /// <param name="args">The arguments.</param>
    /// <param name="synopsis">The short usage printed after a usage error.</param>
    /// <param name="output">Standard output (help, version and the tool's output), or null for the console's.</param>
    /// <param name="error">Standard error, or null for the console's.</param>
    public static async Task<int> InvokeAsync(RootCommand root, string tool, string[] args, string synopsis, TextWriter? output = null, TextWriter? error = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        output ??= Console.Out;
        error ??= Console.Error;
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            await WriteUsageErrorAsync(error, tool, parsed.Errors.Select(e => e.Message), synopsis).ConfigureAwait(false);
            return UsageError;
        }

        return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, Output = output, Error = error }).ConfigureAwait(false);
    }

    /// <summary>Parses for a caller that reads the result itself (the tools' unit-tested <c>Parse</c> methods).</summary>
    /// <exception cref="FormatException">The arguments have syntax errors; the message holds every one.</exception>
    public static ParseResult ParseOrThrow(RootCommand root, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(root);
        var result = root.Parse([.. args]);
        return result.Errors.Count == 0 ? result : throw new FormatException(string.Join(" ", result.Errors.Select(e => e.Message)));
    }

    /// <summary>Writes a usage error the convention's way: each message, the synopsis, and where the help is.</summary>
    public static async Task WriteUsageErrorAsync(TextWriter error, string tool, IEnumerable<string> messages, string synopsis)
    {
        ArgumentNullException.ThrowIfNull(error);
        foreach (var message in messages)
        {
            await error.WriteLineAsync($"{tool}: {message}").ConfigureAwait(false);
        }

        await error.WriteLineAsync(synopsis).ConfigureAwait(false);
        await error.WriteLineAsync($"Try '{tool} --help'.").ConfigureAwait(false);
    }
}
