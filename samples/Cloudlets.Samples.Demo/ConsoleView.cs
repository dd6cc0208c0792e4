using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Cloudlets.Core.Hypervisors;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Cloudlets.Samples.Demo;

/// <summary>What the live view shows at one moment.</summary>
internal sealed record ViewState(
    double Seconds,
    string VmName,
    string? CurrentHost,
    IReadOnlyList<(string Host, double InjectedMs, double? MeasuredMs)> Hosts,
    double? VmRttMs,
    IReadOnlyList<string> Decisions,
    (string From, string To, MigrationProgress Progress)? Migration,
    string? Step);

/// <summary>
/// The console view. On a terminal: a Spectre.Console live display, a table of the hosts (injected delay, measured
/// RTT, where the VM is) with a progress bar for each migration, and the decisions, outcomes and scenario steps
/// printed above it as they happen. When the output is redirected, the terminal cannot redraw, or <c>--plain</c> is
/// given: one line a second plus each decision and outcome line, so logs and CI stay readable.
/// </summary>
internal sealed class ConsoleView : IAsyncDisposable
{
    private readonly IAnsiConsole? _console;

    // Every call into Spectre.Console during the live display runs on the display's own thread, in the order posted:
    // the decisions, outcomes and progress come from the pipeline's threads, and writing from them while the display
    // refreshes stalled the view. _gate guards the frame's state and whether the display still runs.
    private readonly Lock _gate = new();
    private readonly ConcurrentQueue<Action<ProgressContext?>> _work = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource _stop = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ViewState? _state;
    private bool _liveEnded;
    private Task? _live;

    // Only on the display's thread (or after it ended).
    private ProgressTask? _migrationTask;
    private (string From, string To)? _migrationHosts;

    /// <summary>A view on the process's console: live when it is an interactive terminal and <paramref name="plain"/> is false.</summary>
    public ConsoleView(bool plain)
        : this(plain || Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive ? null : AnsiConsole.Console)
    {
    }

    /// <summary>A live view on <paramref name="console"/>, or the plain view (on <see cref="Console.Out"/>) when it is null.</summary>
    public ConsoleView(IAnsiConsole? console) => _console = console;

    /// <summary>Whether this view prints plain lines (no redrawing).</summary>
    public bool IsPlain => _console is null;

    /// <summary>Starts the live display (nothing in plain mode). Lines printed before go above it.</summary>
    public async Task StartAsync()
    {
        if (_console is null || _live is not null)
        {
            return;
        }

        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _live = new Progress(_console, TimeProvider.System)
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .UseRenderHook((tasks, _) =>
            {
                ViewState? state;
                lock (_gate)
                {
                    state = _state;
                }

                return state is null ? tasks : new Rows(Frame(state), tasks);
            })
            .StartAsync(async context =>
            {
                started.TrySetResult();
                await PumpAsync(context).ConfigureAwait(false);
            });
        await Task.WhenAny(started.Task, _live).ConfigureAwait(false);
    }

    /// <summary>Shows the state of the run: a line in plain mode, the next frame of the live display otherwise.</summary>
    public void Render(ViewState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (_console is null)
        {
            Console.WriteLine(Line(state));
            return;
        }

        lock (_gate)
        {
            _state = state;
        }

        Post(context => context?.Refresh());
    }

    /// <summary>A migration's progress, as it is reported (the live bar moves with it; the plain line shows it each second).</summary>
    public void MigrationProgress(string from, string to, MigrationProgress progress)
    {
        if (_console is not null)
        {
            Post(context => ShowMigration(context, from, to, progress));
        }
    }

    /// <summary>The migration under way ended: its bar is filled when it succeeded, and stops where it was otherwise.</summary>
    public void MigrationEnded(bool succeeded)
    {
        if (_console is not null)
        {
            Post(_ => EndMigration(succeeded));
        }
    }

    /// <summary>
    /// A decision or a migration's outcome, printed once, as it happens, so the output keeps the whole story of a
    /// run: indented in plain mode, above the live display otherwise.
    /// </summary>
    public void Event(string text) => Print("  " + text);

    /// <summary>A line of the run (a scenario step, the end of the scenario): printed as is, above the live display if there is one.</summary>
    public void Print(string text)
    {
        if (_console is null)
        {
            Console.WriteLine(text);
            return;
        }

        var console = _console;
        Post(_ => console.WriteLine(text));
    }

    /// <summary>Ends the live display, leaving its last frame on the screen; what was posted meanwhile is done first.</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.TrySetResult();
        if (_live is { } live)
        {
            await live.ConfigureAwait(false);
        }

        lock (_gate)
        {
            _liveEnded = true;
        }

        // Posted after the display's last pass: done here, in order (lines print below the last frame).
        while (_work.TryDequeue(out var work))
        {
            work(null);
        }

        _wake.Dispose();
    }

    private void Post(Action<ProgressContext?> work)
    {
        bool inline;
        lock (_gate)
        {
            inline = _liveEnded || _live is null;
            if (!inline)
            {
                _work.Enqueue(work);
            }
        }

        if (inline)
        {
            work(null);
        }
        else
        {
            _wake.Release();
        }
    }

    // The display's thread: does what was posted, in order, until stopped, then a last pass.
    private async Task PumpAsync(ProgressContext context)
    {
        while (true)
        {
            var stopping = _stop.Task.IsCompleted;
            while (_work.TryDequeue(out var work))
            {
                work(context);
            }

            if (stopping)
            {
                context.Refresh();
                return;
            }

            await Task.WhenAny(_stop.Task, _wake.WaitAsync()).ConfigureAwait(false);
        }
    }

    /// <summary>The live display's frame: the time and step, the hosts' table, and the VM's own RTT.</summary>
    internal static IRenderable Frame(ViewState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("host")
            .AddColumn(new TableColumn("injected delay").RightAligned())
            .AddColumn(new TableColumn("measured RTT").RightAligned())
            .AddColumn("VM");
        foreach (var (host, injected, measured) in state.Hosts)
        {
            var here = host == state.CurrentHost;
            table.AddRow(
                new Markup(here ? $"[bold]{Markup.Escape(host)}[/]" : Markup.Escape(host)),
                new Text(string.Create(CultureInfo.InvariantCulture, $"{injected:0} ms")),
                new Markup(measured is null ? "[red]lost[/]" : Markup.Escape(Ms(measured))),
                new Markup(here ? $"[green]◀ {Markup.Escape(state.VmName)}[/]" : ""));
        }

        var title = string.Create(CultureInfo.InvariantCulture, $"[bold]Cloudlets demo[/] — t = {state.Seconds:0} s");
        if (state.Step is { } step)
        {
            title += "   " + Markup.Escape(step);
        }

        var vm = $"VM {Markup.Escape(state.VmName)} on {Markup.Escape(state.CurrentHost ?? "?")}: RTT from the edge {Markup.Escape(Ms(state.VmRttMs))}";
        return new Rows(new Markup(title), table, new Markup(vm));
    }

    /// <summary>The plain view's line for one second.</summary>
    internal static string Line(ViewState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"t={state.Seconds,4:0}s vm@{state.CurrentHost ?? "?"} vm-rtt={Ms(state.VmRttMs)}");
        foreach (var (host, injected, measured) in state.Hosts)
        {
            s.Append(CultureInfo.InvariantCulture, $" | {host} +{injected:0}ms rtt={Ms(measured)}");
        }

        if (state.Migration is { } m)
        {
            s.Append(CultureInfo.InvariantCulture, $" | migrating {m.From}->{m.To} {Fraction(m.Progress) * 100:0}%");
        }

        return s.ToString();
    }

    /// <summary>How much of the migration is done, from 0 to 1 (<see cref="MigrationProgress.CompletedFraction"/>; 0 until the hypervisor reports it).</summary>
    internal static double Fraction(MigrationProgress progress) => progress.CompletedFraction ?? 0;

    // A new pair of hosts is a new migration: a new bar.
    private void ShowMigration(ProgressContext? context, string from, string to, MigrationProgress progress)
    {
        if (context is null)
        {
            return;
        }

        if (_migrationTask is null || _migrationHosts != (from, to))
        {
            _migrationTask?.StopTask();
            _migrationTask = context.AddTask($"migrating {Markup.Escape(from)} → {Markup.Escape(to)}", autoStart: true, maxValue: 100);
            _migrationHosts = (from, to);
        }

        // Until the hypervisor reports how much there is to send, the bar only says that it runs. The data sent can
        // fall back when the guest dirties memory again; the bar shows the furthest point.
        var known = progress.CompletedFraction is not null;
        _migrationTask.IsIndeterminate = !known && _migrationTask.Value == 0;
        _migrationTask.Value = Math.Max(_migrationTask.Value, Fraction(progress) * 100);
    }

    private void EndMigration(bool succeeded)
    {
        if (_migrationTask is { } task)
        {
            task.IsIndeterminate = false;
            if (succeeded)
            {
                task.Value = task.MaxValue;
            }

            task.StopTask();
        }

        _migrationTask = null;
        _migrationHosts = null;
    }

    private static string Ms(double? value) => value is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) + " ms" : "lost";
}
