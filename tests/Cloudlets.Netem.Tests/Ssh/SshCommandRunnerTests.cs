using Cloudlets.Probing.Commands;
using Cloudlets.Netem.Ssh;

namespace Cloudlets.Netem.Tests.Ssh;

public sealed class SshCommandRunnerTests
{
    [Test]
    public void ToShellCommand_PlainArguments_QuotesEachWord() =>
        Assert.That(SshCommandRunner.ToShellCommand(CommandLine.Of("tc", "qdisc", "show", "dev", "eth0")),
            Is.EqualTo("env LC_ALL=C 'tc' 'qdisc' 'show' 'dev' 'eth0'"));

    [Test]
    public void ToShellCommand_HostileArgument_StaysOneWord() =>
        Assert.That(SshCommandRunner.ToShellCommand(CommandLine.Of("echo", "a'; rm -rf / #", "$(id)", "`id`")),
            Is.EqualTo("env LC_ALL=C 'echo' 'a'\\''; rm -rf / #' '$(id)' '`id`'"));

    [Test]
    public void Quote_Nul_Throws() => Assert.Throws<ArgumentException>(() => SshCommandRunner.Quote("a\0b"));

    [Test]
    public async Task ToShellCommand_RunThroughARealShell_GivesBackTheSameArgv()
    {
        string[] args = ["a'b", "$(echo x)", "two words", "\"q\"", "back\\slash", ";", ""];
        var shell = SshCommandRunner.ToShellCommand(CommandLine.Of("printf", ["%s\\n", .. args]));
        var r = await LocalCommandRunner.Instance.RunAsync(CommandLine.Of("sh", "-c", shell));
        Assert.That(r.StandardOutput.Split('\n')[..args.Length], Is.EqualTo(args));
    }
}
