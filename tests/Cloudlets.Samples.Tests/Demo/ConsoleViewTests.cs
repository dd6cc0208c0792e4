using System.Text.RegularExpressions;
using Cloudlets.Core.Hypervisors;
using Cloudlets.Samples.Demo;
using Spectre.Console;

namespace Cloudlets.Samples.Tests.Demo;

public sealed partial class ConsoleViewTests
{
    private static ViewState State((string From, string To, MigrationProgress Progress)? migration = null) => new(
        12.4,
        "guest-1",
        "cloudlet-1",
        [("cloudlet-1", 300, 601.5), ("cloudlet-2", 20, 41.2), ("cloudlet-3", 20, null)],
        603.0,
        ["Move guest-1: cloudlet-2 is 560 ms better"],
        migration,
        "act 1: the original delays");

    private static MigrationProgress Progress(long done, long total) =>
        new(TimeSpan.FromSeconds(2), done, total - done, total, null, null, null, null);

    /// <summary>A console that renders as a terminal would (ANSI, interactive) into a string.</summary>
    private static (IAnsiConsole Console, StringWriter Output) Terminal()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 120;
        return (console, output);
    }

    /// <summary>What the terminal shows, without the escape sequences (styles, cursor moves).</summary>
    private static string Text(StringWriter output) => Escapes().Replace(output.ToString(), "");

    [GeneratedRegex(@"\x1b\[[0-9;?]*[A-Za-z]")]
    private static partial Regex Escapes();

    [Test]
    public void Frame_State_TabulatesEachHostsDelayRttAndWhereTheVmIs()
    {
        var (console, output) = Terminal();
        console.Write(ConsoleView.Frame(State()));
        var lines = Text(output).Split('\n');
        using (Assert.EnterMultipleScope())
        {
            // A table row starts with its border; the VM's line below names its host too.
            Assert.That(lines.Single(l => l.Contains("│ cloudlet-1", StringComparison.Ordinal)), Does.Contain("300 ms").And.Contain("601.5 ms").And.Contain("◀ guest-1"));
            Assert.That(lines.Single(l => l.Contains("│ cloudlet-2", StringComparison.Ordinal)), Does.Contain("20 ms").And.Contain("41.2 ms").And.Not.Contain("guest-1"));
            Assert.That(lines.Single(l => l.Contains("│ cloudlet-3", StringComparison.Ordinal)), Does.Contain("lost"));
            Assert.That(Text(output), Does.Contain("t = 12 s").And.Contain("act 1: the original delays").And.Contain("RTT from the edge 603.0 ms"));
        }
    }

    [Test]
    public async Task Render_LiveWithAMigration_ShowsTheTableAProgressBarAndTheEventsAbove()
    {
        var (console, output) = Terminal();
        await using (var view = new ConsoleView(console))
        {
            Assert.That(view.IsPlain, Is.False);
            await view.StartAsync();
            view.Event("t=  12s Move guest-1: cloudlet-2 is better");
            view.Render(State(("cloudlet-1", "cloudlet-2", Progress(0, 0))));
            view.MigrationProgress("cloudlet-1", "cloudlet-2", Progress(512, 1024));
            view.Render(State(("cloudlet-1", "cloudlet-2", Progress(512, 1024))));
        }

        var text = Text(output);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(text, Does.Contain("Move guest-1: cloudlet-2 is better"));
            Assert.That(text, Does.Contain("measured RTT").And.Contain("601.5 ms"));
            Assert.That(text, Does.Contain("migrating cloudlet-1 → cloudlet-2"));
            Assert.That(text, Does.Contain("50%"), "the bar's percentage follows the data sent");
        }
    }

    [Test]
    public async Task MigrationEnded_Succeeded_FillsTheBar()
    {
        var (console, output) = Terminal();
        await using (var view = new ConsoleView(console))
        {
            await view.StartAsync();
            view.MigrationProgress("cloudlet-1", "cloudlet-2", Progress(100, 1000));
            view.Render(State(("cloudlet-1", "cloudlet-2", Progress(100, 1000))));
            view.MigrationEnded(succeeded: true);
            view.Render(State());
        }

        Assert.That(Text(output), Does.Contain("100%"));
    }

    [Test]
    public async Task Print_FromManyThreadsDuringTheLiveDisplay_EveryLineIsWrittenOnce()
    {
        var (console, output) = Terminal();
        await using (var view = new ConsoleView(console))
        {
            await view.StartAsync();
            await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
            {
                for (var i = 0; i < 25; i++)
                {
                    view.Event($"line {t}-{i} end");
                    view.Render(State());
                }
            })));
        }

        var text = Text(output);
        var missing = Enumerable.Range(0, 8).SelectMany(t => Enumerable.Range(0, 25).Select(i => $"line {t}-{i} end")).Where(l => !text.Contains(l, StringComparison.Ordinal)).ToList();
        Assert.That(missing, Is.Empty, "lines posted from the pipeline's threads must all reach the console");
    }

    [Test]
    public async Task Print_AfterTheLiveDisplayEnded_IsWrittenAtOnce()
    {
        var (console, output) = Terminal();
        var view = new ConsoleView(console);
        await view.StartAsync();
        await view.DisposeAsync();
        view.Event("a late outcome");
        Assert.That(Text(output), Does.Contain("a late outcome"));
    }

    [Test]
    public void Line_StateWithMigration_IsThePlainModesOneLine()
    {
        var line = ConsoleView.Line(State(("cloudlet-1", "cloudlet-2", Progress(256, 1024))));
        Assert.That(line, Is.EqualTo(
            "t=  12s vm@cloudlet-1 vm-rtt=603.0 ms | cloudlet-1 +300ms rtt=601.5 ms | cloudlet-2 +20ms rtt=41.2 ms | cloudlet-3 +20ms rtt=lost | migrating cloudlet-1->cloudlet-2 25%"));
    }

    [Test]
    public void Constructor_NoConsole_IsPlain() => Assert.That(new ConsoleView(console: null).IsPlain, Is.True);
}
