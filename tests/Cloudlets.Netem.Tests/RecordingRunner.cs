using Cloudlets.Probing.Commands;

namespace Cloudlets.Netem.Tests;

/// <summary>A command runner that records commands and answers from a script instead of running anything.</summary>
internal sealed class RecordingRunner : ICommandRunner
{
    private readonly Func<CommandLine, CommandResult?> answer;

    public RecordingRunner(Func<CommandLine, CommandResult?>? answer = null)
    {
        this.answer = answer ?? (_ => null);
    }

    public List<CommandLine> Commands { get; } = [];

    public Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default)
    {
        lock (Commands)
        {
            Commands.Add(command);
        }

        return Task.FromResult(answer(command) ?? Ok(command));
    }

    public static CommandResult Ok(CommandLine command, string stdout = "") => new(command, 0, stdout, "", TimeSpan.Zero);

    public static CommandResult Fail(CommandLine command, string stderr) => new(command, 2, "", stderr, TimeSpan.Zero);

    /// <summary>Commands that change something (not the read-only ones a show runs).</summary>
    public IReadOnlyList<CommandLine> Mutations
    {
        get
        {
            lock (Commands)
            {
                return [.. Commands.Where(c => !IsRead(c))];
            }
        }
    }

    private static bool IsRead(CommandLine c) =>
        c.Arguments.Prepend(c.Program).Any(a => a is "iptables-save" or "ip6tables-save" or "cat" or "show" or "list" or "find");
}
