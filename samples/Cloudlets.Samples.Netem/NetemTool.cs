using System.Globalization;
using System.Text.Json;
using Cloudlets.Core.Options;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem;
using Cloudlets.Netem.Ssh;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Samples.Netem;

/// <summary>Runs one parsed command of <c>cloudlets-netem</c> and maps every failure to its documented exit code.</summary>
internal static class NetemTool
{
    public const string Name = "cloudlets-netem";
    public const int Failed = 1;
    public const int CannotShape = 3;
    public const int InUse = 4;
    public const int SshFailed = 5;
    public const int Cancelled = 130;

    /// <summary>Runs the verb; <paramref name="stop"/> is cancelled by SIGINT or SIGTERM.</summary>
    public static async Task<int> RunAsync(NetemCommandLine line, TextWriter output, TextWriter error, CancellationToken stop)
    {
        if (line.Ssh is null && !Environment.IsPrivilegedProcess)
        {
            return Fail(error, $"{line.Verb} needs root on this machine (it runs tc and iptables, and keeps owner locks in /run/cloudlets-netem)", CannotShape);
        }

        SshCommandRunner? ssh = null;
        var programs = new TcNetemShaperOptions();
        try
        {
            ICommandRunner runner = LocalCommandRunner.Instance;
            if (line.Ssh is { } target)
            {
                ssh = SshCommandRunner.Create(new SshCommandRunnerOptions
                {
                    Host = target.Host, Port = target.Port, UserName = target.User, PrivateKeyFile = target.KeyFile, KnownHostsFile = target.KnownHostsFile,
                });
                await ssh.ConnectAsync(stop);
                runner = ssh;

                // A host whose shell is busybox runs busybox's tc and ip applets ahead of PATH: find iproute2's.
                await programs.FindIproute2Async(ssh, stop);
            }

            var inspector = new DeviceInspector(new ResolvingRunner(runner, programs), ssh?.Destination);
            return line.Verb switch
            {
                "set" => await SetAsync(line, runner, programs, inspector, output, error, stop),
                "show" => await ShowAsync(line, runner, programs, inspector, output, error, stop),
                _ => await DeleteAsync(line, runner, programs, inspector, output, error, stop),
            };
        }
        catch (Exception ex) when (ex is BadInputException or ShapingValidationException or UnsupportedImpairmentException or ForeignQdiscException
                                       or OptionsValidationException or FileNotFoundException or FormatException)
        {
            // Bad input found after the syntax: a device or namespace that is not there, something foreign in the way,
            // a feature the backend lacks, an invalid SSH option, a key or known_hosts file that is missing or unreadable.
            return UsageError(error, ex.Message);
        }
        catch (NetemUnavailableException ex)
        {
            return Fail(error, ssh is null ? ex.Message : $"{ssh.Destination}: {ex.Message} The NFQUEUE backend shapes only this machine, so nothing can shape that host; nothing was changed there.", CannotShape);
        }
        catch (ShapingOwnerInUseException ex)
        {
            return Fail(error, $"{ex.Message} A 'cloudlets-netem set' holding the device clears it when it gets SIGINT or SIGTERM.", InUse);
        }
        catch (SshHostKeyException ex)
        {
            return Fail(error, ex.Message, SshFailed);
        }
        catch (Exception ex) when (ssh is not null && ex is Renci.SshNet.Common.SshException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return Fail(error, $"SSH to {ssh.Destination} failed: {ex.Message}", SshFailed);
        }
        catch (CannotShapeException ex)
        {
            return Fail(error, ex.Message, CannotShape);
        }
        catch (ShapingException ex)
        {
            return Fail(error, ex.Message, Failed);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return Fail(error, "stopped by a signal before anything was applied", Cancelled);
        }
        catch (CommandException ex)
        {
            return Fail(error, ex.Message, Failed);
        }
        finally
        {
            ssh?.Dispose();
        }
    }

    private static async Task<int> SetAsync(NetemCommandLine line, ICommandRunner runner, TcNetemShaperOptions programs, DeviceInspector inspector, TextWriter output, TextWriter error, CancellationToken stop)
    {
        var plan = line.Plan();
        ShapingPlanValidator.Validate(plan);
        await inspector.RequireDeviceAsync(line.NetworkNamespace, line.Device, stop);
        await using var shaper = await CreateShaperAsync(runner, programs, probe: true, stop);
        await error.WriteLineAsync($"{Name}: backend {shaper.Capabilities.Backend} ({shaper.Capabilities.Reason})");
        var holds = shaper is NfQueueShaper;

        // The tc backend refuses a foreign root qdisc itself (ForeignQdiscException); the NFQUEUE backend does not
        // look at qdiscs or at other programs' rules, so the tool does, before anything is applied.
        var foreign = await inspector.ForeignOnDeviceAsync(line.NetworkNamespace, line.Device, line.Owner, checkQdisc: holds, stop);
        if (foreign.Count > 0)
        {
            throw new BadInputException($"{line.Device}{In(line.NetworkNamespace)} carries what cloudlets-netem did not make, so nothing was applied (remove it first):{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", foreign)}");
        }

        stop.ThrowIfCancellationRequested();

        // Not cancellable: a half-applied plan is rolled back by the shaper, but a cancelled one may not be. A
        // signal that comes meanwhile is honoured right after, by clearing.
        var state = await shaper.ApplyAsync(plan, CancellationToken.None);
        WriteState(output, line, state, shaper.Capabilities.Backend, json: false);
        if (!holds)
        {
            await error.WriteLineAsync($"{Name}: applied with tc netem; it stays in the kernel until '{Name} del {line.Device}'");
            return 0;
        }

        await error.WriteLineAsync($"{Name}: holding the delay on {line.Device}{In(line.NetworkNamespace)} (NFQUEUE delay line in process {Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}); SIGINT (Ctrl+C) or SIGTERM clears it");
        await output.FlushAsync(CancellationToken.None);
        await error.FlushAsync(CancellationToken.None);
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
            // The signal: clear below.
        }

        await shaper.ClearAsync(line.Owner, CancellationToken.None);
        var left = await shaper.ShowAsync(line.Owner, CancellationToken.None);
        if (!left.IsEmpty)
        {
            return Fail(error, $"{Name}: after clearing, the kernel still holds:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", left.Objects.Select(o => o.Text))}", Failed);
        }

        await error.WriteLineAsync($"{Name}: cleared {line.Device}{In(line.NetworkNamespace)}");
        return 0;
    }

    private static async Task<int> ShowAsync(NetemCommandLine line, ICommandRunner runner, TcNetemShaperOptions programs, DeviceInspector inspector, TextWriter output, TextWriter error, CancellationToken stop)
    {
        await inspector.RequireDeviceAsync(line.NetworkNamespace, line.Device, stop);
        await using var shaper = await CreateShaperAsync(runner, programs, probe: false, stop);
        var state = await shaper.ShowAsync(line.Owner, stop);
        WriteState(output, line, state, shaper.Capabilities.Backend, line.Json);
        return 0;
    }

    private static async Task<int> DeleteAsync(NetemCommandLine line, ICommandRunner runner, TcNetemShaperOptions programs, DeviceInspector inspector, TextWriter output, TextWriter error, CancellationToken stop)
    {
        await using var shaper = await CreateShaperAsync(runner, programs, probe: false, stop);
        var state = await shaper.ShowAsync(line.Owner, stop);
        if (state.IsEmpty)
        {
            // Nothing of ours: a device that does not exist is then a mistake in the command line.
            await inspector.RequireDeviceAsync(line.NetworkNamespace, line.Device, stop);
            await output.WriteLineAsync($"{line.Device}{In(line.NetworkNamespace)}{On(line)}: nothing to delete (cloudlets-netem holds nothing there; {shaper.Capabilities.Backend})");
            return 0;
        }

        // Something of ours, also on a device that has vanished since (its iptables rules outlive it).
        await shaper.ClearAsync(line.Owner, stop);
        var left = await shaper.ShowAsync(line.Owner, stop);
        if (!left.IsEmpty)
        {
            return Fail(error, $"{Name}: after deleting, the kernel still holds:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", left.Objects.Select(o => o.Text))}", Failed);
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{line.Device}{In(line.NetworkNamespace)}{On(line)}: deleted {state.Rules.Count} rule(s), {state.Objects.Count} kernel object(s) of owner {line.Owner} ({shaper.Capabilities.Backend})"));
        return 0;
    }

    /// <summary>
    /// Locally the factory probes the kernel (netem, else NFQUEUE). Remotely only tc netem is possible: "set" lets the
    /// factory probe the remote kernel (no netem there is <see cref="NetemUnavailableException"/>); "show" and "del"
    /// only read and remove tc state, which needs no netem, so they use the tc backend without a probe.
    /// </summary>
    private static async Task<INetemShaper> CreateShaperAsync(ICommandRunner runner, TcNetemShaperOptions programs, bool probe, CancellationToken stop)
    {
        if (runner is SshCommandRunner && !probe)
        {
            return new TcNetemShaper(runner, reason: "remote host (tc netem only)", options: programs);
        }

        try
        {
            return await NetemShaperFactory.CreateAsync(new NetemShaperFactoryOptions { Runner = runner is SshCommandRunner ? runner : null, TcNetem = programs }, stop);
        }
        catch (ShapingException ex) when (ex.GetType() == typeof(ShapingException))
        {
            // The factory's own failures: no backend works here, or it cannot even probe (no namespace allowed).
            throw new CannotShapeException(ex.Message, ex);
        }
    }

    /// <summary>Prints a state read back from the kernel, as text or as one JSON object.</summary>
    internal static void WriteState(TextWriter output, NetemCommandLine line, ShapingState state, string backend, bool json)
    {
        var rules = state.Rules.Where(r => r.Interface == line.Device && r.NetworkNamespace == line.NetworkNamespace).ToList();
        if (json)
        {
            output.WriteLine(StateJson(line, state, backend, rules));
            return;
        }

        if (state.IsEmpty)
        {
            output.WriteLine($"{line.Device}{In(line.NetworkNamespace)}{On(line)}: nothing applied by cloudlets-netem ({backend})");
            return;
        }

        output.WriteLine($"{line.Device}{In(line.NetworkNamespace)}{On(line)}: owner {state.Owner} ({backend}), read back from the kernel:");
        foreach (var r in rules)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {r.Name,-6} {r.Direction.ToString().ToLowerInvariant()} to {DestinationOf(state, r) ?? "every destination"}: delay {r.Impairment.Delay.TotalMilliseconds:0.###} ms, jitter {r.Impairment.Jitter.TotalMilliseconds:0.###} ms, loss {r.Impairment.LossPercent:0.###} % ({r.KernelObjectId}{Health(r)})"));
        }
    }

    private static string StateJson(NetemCommandLine line, ShapingState state, string backend, List<AppliedRule> rules)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("device", line.Device);
            WriteOptional(json, "netns", line.NetworkNamespace);
            WriteOptional(json, "host", line.Ssh is { } s ? $"{s.User}@{s.Host}:{s.Port.ToString(CultureInfo.InvariantCulture)}" : null);
            json.WriteString("backend", backend);
            json.WriteString("owner", state.Owner);
            json.WriteBoolean("applied", !state.IsEmpty);
            json.WriteStartArray("rules");
            foreach (var r in rules)
            {
                json.WriteStartObject();
                json.WriteString("name", r.Name);
                json.WriteString("direction", r.Direction.ToString().ToLowerInvariant());
                WriteOptional(json, "destination", DestinationOf(state, r));
                json.WriteNumber("delayMs", r.Impairment.Delay.TotalMilliseconds);
                json.WriteNumber("jitterMs", r.Impairment.Jitter.TotalMilliseconds);
                json.WriteNumber("lossPercent", r.Impairment.LossPercent);
                json.WriteString("kernelObject", r.KernelObjectId);
                if (r.KernelObjectId.StartsWith("nfq:", StringComparison.Ordinal))
                {
                    json.WriteStartObject("queue");
                    json.WriteNumber("number", int.Parse(r.KernelObjectId.AsSpan(4), CultureInfo.InvariantCulture));
                    json.WriteBoolean("listening", Listening(r));
                    json.WriteNumber("waiting", r.Health?.QueueTotal ?? 0);
                    json.WriteNumber("dropped", (r.Health?.QueueDropped ?? 0) + (r.Health?.UserDropped ?? 0));
                    json.WriteEndObject();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("objects");
            foreach (var o in state.Objects)
            {
                json.WriteStartObject();
                WriteOptional(json, "netns", o.NetworkNamespace);
                json.WriteString("kind", o.Kind);
                json.WriteString("location", o.Location);
                json.WriteString("text", o.Text);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The destination network of a rule, from its kernel objects (the NFQUEUE backend's iptables rules name it with <c>-d</c>).</summary>
    private static string? DestinationOf(ShapingState state, AppliedRule rule)
    {
        foreach (var o in state.Objects.Where(o => o.NetworkNamespace == rule.NetworkNamespace && o.Text.Contains(",r=" + rule.Name + ",", StringComparison.Ordinal)))
        {
            var tokens = o.Text.Split(' ');
            var i = Array.IndexOf(tokens, "-d");
            if (i >= 0 && i + 1 < tokens.Length)
            {
                return tokens[i + 1];
            }
        }

        return null;
    }

    // A queue nobody listens on is gone from /proc/net/netfilter/nfnetlink_queue (no health) or has no peer port.
    private static bool Listening(AppliedRule r) => r.Health is { PeerPortId: not 0 };

    private static string Health(AppliedRule r) =>
        !r.KernelObjectId.StartsWith("nfq:", StringComparison.Ordinal) ? ""
        : !Listening(r) ? ", no listener: packets pass undelayed (the set that held it is gone; 'del' removes the rules)"
        : string.Create(CultureInfo.InvariantCulture, $", held by a live delay line, {r.Health!.QueueTotal} waiting, {r.Health.QueueDropped + r.Health.UserDropped} dropped");

    private static void WriteOptional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static string In(string? ns) => ns is null ? "" : $" (netns {ns})";

    private static string On(NetemCommandLine line) => line.Ssh is { } s ? $" on {s.User}@{s.Host}" : "";

    /// <summary>The inspector's commands with tc and ip as the shaper runs them.</summary>
    private sealed class ResolvingRunner(ICommandRunner inner, TcNetemShaperOptions programs) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(CommandLine command, CancellationToken cancellationToken = default) =>
            inner.RunAsync(programs.Resolve(command), cancellationToken);
    }

    private static int UsageError(TextWriter error, string message)
    {
        SampleCommandLine.WriteUsageErrorAsync(error, Name, [message], NetemCommands.Synopsis).GetAwaiter().GetResult();
        return SampleCommandLine.UsageError;
    }

    private static int Fail(TextWriter error, string message, int code)
    {
        error.WriteLine($"{Name}: {message}");
        return code;
    }
}
