using System.Diagnostics;
using System.Text;

namespace Cloudlets.Probing.Commands;

/// <summary>
/// An external command as a program and a list of arguments — never a shell string, so nothing a
/// caller passes can become a second command.
/// </summary>
/// <param name="Program">The program name or path (for example <c>tc</c>).</param>
/// <param name="Arguments">The arguments, each passed to the program as one argv entry.</param>
public sealed record CommandLine(string Program, IReadOnlyList<string> Arguments)
{
    /// <summary>Creates a command.</summary>
    public static CommandLine Of(string program, params IEnumerable<string> arguments) => new(program, [.. arguments]);

    /// <summary>This command run inside a named network namespace through <c>ip netns exec</c>.</summary>
    public CommandLine InNamespace(string? networkNamespace) =>
        networkNamespace is null ? this : new("ip", ["netns", "exec", networkNamespace, Program, .. Arguments]);

    /// <summary>Value equality over the argument list (records compare lists by reference).</summary>
    public bool Equals(CommandLine? other) =>
        other is not null && Program == other.Program && Arguments.SequenceEqual(other.Arguments);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Program);
        foreach (var a in Arguments)
        {
            hash.Add(a);
        }

        return hash.ToHashCode();
    }

    /// <summary>A readable, shell-quoted rendering, for logs and error messages only.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Quote(Program));
        foreach (var a in Arguments)
        {
            sb.Append(' ').Append(Quote(a));
        }

        return sb.ToString();
    }

    private static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,@%+".Contains(c, StringComparison.Ordinal))
            ? s
            : "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>The result of a finished command.</summary>
/// <param name="Command">What ran.</param>
/// <param name="ExitCode">The exit code.</param>
/// <param name="StandardOutput">Everything written to stdout.</param>
/// <param name="StandardError">Everything written to stderr.</param>
/// <param name="Duration">How long it ran.</param>
public sealed record CommandResult(CommandLine Command, int ExitCode, string StandardOutput, string StandardError, TimeSpan Duration)
{
    /// <summary>Whether the command exited with 0.</summary>
    public bool Succeeded => ExitCode == 0;
}

/// <summary>A command that failed: carries the command line, exit code and stderr.</summary>
public class CommandException : Exception
{
    /// <summary>Creates an exception.</summary>
    public CommandException() : base("A command failed.") { }

    /// <summary>Creates an exception.</summary>
    public CommandException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public CommandException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception for a failed result.</summary>
    public CommandException(CommandResult result)
        : base($"Command failed with exit code {result?.ExitCode}: {result?.Command}{Environment.NewLine}{result?.StandardError.Trim()}")
    {
        Result = result;
    }

    /// <summary>The failed command's result.</summary>
    public CommandResult? Result { get; }
}

/// <summary>
/// A command's program is not an executable file in <see cref="CommandPath.SearchPath"/> (or at the
/// absolute path given), or was given as a relative path. Nothing was started.
/// </summary>
public sealed class CommandNotFoundException : CommandException
{
    /// <summary>Creates an exception.</summary>
    public CommandNotFoundException() : base("A command's program was not found.") { }

    /// <summary>Creates an exception.</summary>
    public CommandNotFoundException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public CommandNotFoundException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception for <paramref name="program"/>, saying why it cannot run.</summary>
    public CommandNotFoundException(string program, string reason)
        : base($"Cannot run '{program}': {reason}")
    {
        Program = program;
    }

    /// <summary>The program as the command named it.</summary>
    public string? Program { get; }
}

/// <summary>Runs commands somewhere: on this machine, or on a remote host.</summary>
public interface ICommandRunner
{
    /// <summary>Runs a command to completion. A non-zero exit code is returned, not thrown.</summary>
    Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default);
}

/// <summary>Extensions over <see cref="ICommandRunner"/>.</summary>
public static class CommandRunnerExtensions
{
    /// <summary>Runs a command and throws <see cref="CommandException"/> unless it exits with 0.</summary>
    public static async Task<CommandResult> RunCheckedAsync(this ICommandRunner runner, CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var result = await runner.RunAsync(command, cancellationToken).ConfigureAwait(false);
        return result.Succeeded ? result : throw new CommandException(result);
    }
}

/// <summary>
/// Runs commands as child processes of this process, with no shell. The program is resolved by
/// <see cref="CommandPath"/> (a fixed search path, never the current directory), and the child gets
/// that same search path as its <c>PATH</c>, so a program it runs by name (<c>ip netns exec NS tc</c>)
/// is found the same way.
/// </summary>
public sealed class LocalCommandRunner : ICommandRunner
{
    /// <summary>A shared instance.</summary>
    public static LocalCommandRunner Instance { get; } = new();

    /// <inheritdoc />
    /// <exception cref="CommandNotFoundException">The program is not in the search path (or not executable); nothing ran.</exception>
    public async Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var psi = new ProcessStartInfo(CommandPath.Resolve(command.Program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in command.Arguments)
        {
            psi.ArgumentList.Add(a);
        }

        // Tools such as tc and iptables print messages in the locale's language; parse them in C.
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["PATH"] = CommandPath.SearchPathVariable;
        var started = Stopwatch.GetTimestamp();
        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new CommandException($"Cannot start '{command.Program}' ({ex.Message}); is it installed?", ex);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // This process started the child, so ending it by its own handle is safe.
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new CommandResult(command, process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false), Stopwatch.GetElapsedTime(started));
    }
}
