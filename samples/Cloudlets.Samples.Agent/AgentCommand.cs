using System.CommandLine;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Cloudlets.Core.Options;
using Cloudlets.Core.Probing;
using Cloudlets.Probing.Icmp;
using Cloudlets.Probing.Tcp;
using Cloudlets.Mqtt;
using Cloudlets.Samples;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Samples.Agent;

/// <summary>
/// cloudlets-agent: probes the targets of one vantage point and publishes the samples to an MQTT broker.
/// Exit codes: 0 stopped cleanly (Ctrl+C or SIGTERM), 1 failed while running, 2 bad input, 3 probing impossible here.
/// </summary>
public static class AgentCommand
{
    private const string Description = """
        cloudlets-agent: probes a vantage point's targets (ICMP echo, or the TCP handshake for a target with a port)
        and publishes the samples to an MQTT v5 broker on cloudlets/v1/samples/VANTAGE-POINT, for cloudlets-controller.
        While the broker is away the samples are buffered (up to --buffer) and sent when it is back.

        Needs root for ICMP targets unless net.ipv4.ping_group_range covers the user (then it uses datagram ICMP
        sockets), and for --netns. TCP targets need no privilege.

        Ctrl+C or SIGTERM stops it: what is buffered is published if the broker is there (bounded), then the counters
        are printed.

        Exit codes:
          0  stopped cleanly by Ctrl+C or SIGTERM (also --help and --version)
          1  failed while running (an I/O or socket error)
          2  bad command line, targets file, broker address or password file (nothing was sent)
          3  probing is impossible here (no ICMP socket allowed, or not Linux for --netns)
        """;

    private const string Synopsis = "usage: cloudlets-agent --vantage-point NAME --broker mqtt[s]://HOST[:PORT] --targets FILE [--username USER --password-file FILE] [--tls] [--ca FILE] [--period MS] [--timeout MS] [--buffer N] [--netns NAME]";

    /// <summary>Parses, validates and runs until Ctrl+C or SIGTERM; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var vantagePoint = new Option<string>("--vantage-point") { Description = "The vantage point (site) this agent measures from; its topic is cloudlets/v1/samples/NAME.", Required = true };
        var broker = new Option<string>("--broker") { Description = "The broker: mqtt://HOST[:PORT] (default port 1883) or mqtts://HOST[:PORT] (TLS, 8883).", Required = true };
        var targets = new Option<FileInfo>("--targets") { Description = "A JSON file: {\"targets\":[{\"name\":..,\"address\":..[,\"port\":N]}]}; with a port: TCP connect, without: ICMP echo.", Required = true };
        var username = new Option<string?>("--username") { Description = "The broker user name (with an ACL, usually the vantage point)." };
        var passwordFile = new Option<FileInfo?>("--password-file") { Description = "A file whose first line is the broker password (never on the command line)." };
        var tls = new Option<bool>("--tls") { Description = "Use TLS even with an mqtt:// broker address (the default port becomes 8883)." };
        var ca = new Option<FileInfo?>("--ca") { Description = "A PEM file with the CA that signed the broker's certificate (instead of the system's trust store)." };
        var period = new Option<int>("--period") { Description = "Milliseconds between two probes to one target, and between two messages. 10 to 60000.", DefaultValueFactory = _ => 1000 };
        var timeout = new Option<int>("--timeout") { Description = "Milliseconds a probe waits for its reply. 1 to 60000.", DefaultValueFactory = _ => 1000 };
        var buffer = new Option<int>("--buffer") { Description = "Samples kept while the broker is away; past that the oldest are dropped (counted).", DefaultValueFactory = _ => 100_000 };
        var netns = new Option<string?>("--netns") { Description = "Probe from this network namespace (the broker is reached from the agent's own)." };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Least level logged to standard error.", DefaultValueFactory = _ => LogLevel.Information };

        var root = new RootCommand(Description)
        {
            vantagePoint, broker, targets, username, passwordFile, tls, ca, period, timeout, buffer, netns, logLevel,
        };

        root.SetAction(async (result, _) =>
        {
            var settings = new AgentSettings(
                result.GetRequiredValue(vantagePoint), result.GetRequiredValue(broker), result.GetRequiredValue(targets).FullName,
                result.GetValue(username), result.GetValue(passwordFile)?.FullName, result.GetValue(tls), result.GetValue(ca)?.FullName,
                result.GetValue(period), result.GetValue(timeout), result.GetValue(buffer), result.GetValue(netns), result.GetValue(logLevel));
            return await RunAgentAsync(settings, output, error);
        });

        // The agent handles SIGINT and SIGTERM itself (a script's background job starts with SIGINT ignored).
        return await SampleCommandLine.InvokeAsync(root, "cloudlets-agent", args, Synopsis, output, error);
    }

    private sealed record AgentSettings(
        string VantagePoint, string Broker, string TargetsFile, string? Username, string? PasswordFile, bool Tls, string? Ca,
        int PeriodMs, int TimeoutMs, int Buffer, string? NetworkNamespace, LogLevel LogLevel);

    private static async Task<int> RunAgentAsync(AgentSettings s, TextWriter output, TextWriter error)
    {
        IReadOnlyList<ProbeTarget> targetList;
        MqttPublisherOptions options;
        try
        {
            targetList = TargetsFile.Load(s.TargetsFile);
            options = BuildOptions(s);
            OptionsErrors.ValidateAndThrow(options);
            if (s.PeriodMs is < 10 or > 60_000 || s.TimeoutMs is < 1 or > 60_000)
            {
                throw new FormatException($"--period is {s.PeriodMs} and --timeout {s.TimeoutMs}; both must be within [10 or 1, 60000] ms.");
            }
        }
        catch (Exception ex) when (ex is FormatException or OptionsValidationException or IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"cloudlets-agent: {ex.Message}");
            return 2;
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(s.LogLevel)
            .AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));
        var logger = loggerFactory.CreateLogger("Cloudlets.Agent");
        options.Logger = logger;

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);

        var icmpTargets = targetList.Where(t => t.Port is null).ToArray();
        var tcpTargets = targetList.Where(t => t.Port is not null).ToArray();
        var periodSpan = TimeSpan.FromMilliseconds(s.PeriodMs);
        ProbeSchedule Schedule(int count) => new(
            int.MaxValue, periodSpan, TimeSpan.FromTicks(Math.Min(TimeSpan.FromMilliseconds(10).Ticks, periodSpan.Ticks / Math.Max(1, count) / 2)), TimeSpan.FromMilliseconds(s.TimeoutMs));

        options.BatchPeriod = periodSpan;
        await using var publisher = MqttLatencyPublisher.Start(options);
        await output.WriteLineAsync($"cloudlets-agent: vantage point {s.VantagePoint}, {icmpTargets.Length} ICMP and {tcpTargets.Length} TCP targets every {s.PeriodMs} ms, publishing to {options.Broker.Broker} topic {publisher.Topic}");
        await output.FlushAsync();
        var exit = 0;
        IcmpProber? icmp = null;
        TcpConnectProber? tcp = null;
        try
        {
            var runs = new List<Task>();
            if (icmpTargets.Length > 0)
            {
                icmp = IcmpProber.Create(new IcmpProberOptions
                {
                    VantagePoint = s.VantagePoint,
                    NetworkNamespace = s.NetworkNamespace,
                    EnableIPv6 = icmpTargets.Any(t => t.Address.AddressFamily == AddressFamily.InterNetworkV6),
                    Logger = logger,
                });
                runs.Add(icmp.RunAsync(icmpTargets, Schedule(icmpTargets.Length), sample => publisher.Post(sample), stop.Token));
            }

            if (tcpTargets.Length > 0)
            {
                tcp = new TcpConnectProber(new TcpConnectProberOptions { VantagePoint = s.VantagePoint, NetworkNamespace = s.NetworkNamespace });
                runs.Add(tcp.RunAsync(tcpTargets, Schedule(tcpTargets.Length), sample => publisher.Post(sample), stop.Token));
            }

            await Task.WhenAll(runs);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is IcmpUnavailableException or PlatformNotSupportedException)
        {
            await error.WriteLineAsync($"cloudlets-agent: probing is impossible here: {ex.Message}");
            exit = 3;
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException)
        {
            await error.WriteLineAsync($"cloudlets-agent: {ex.Message}");
            exit = 1;
        }
        finally
        {
            if (icmp is not null)
            {
                await icmp.DisposeAsync();
            }

            if (tcp is not null)
            {
                await tcp.DisposeAsync();
            }
        }

        await publisher.DisposeAsync();
        var c = publisher.Counters;
        await output.WriteLineAsync($"cloudlets-agent: stopped; posted {c.Posted}, published {c.Published} in {c.MessagesPublished} messages, dropped {c.DroppedBufferFull} (buffer full), rejected {c.Rejected}, unsent {c.Buffered}");
        return exit;

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    private static MqttPublisherOptions BuildOptions(AgentSettings s)
    {
        if (!Uri.TryCreate(s.Broker, UriKind.Absolute, out var uri))
        {
            throw new FormatException($"--broker '{s.Broker}' is not an absolute URI such as mqtt://127.0.0.1:1883.");
        }

        if (s.Tls && uri.Scheme == "mqtt")
        {
            uri = new UriBuilder(uri) { Scheme = "mqtts", Port = uri.IsDefaultPort || uri.Port <= 0 ? 8883 : uri.Port }.Uri;
        }

        string? password = null;
        if (s.PasswordFile is { } file)
        {
            password = File.ReadLines(file).FirstOrDefault()?.TrimEnd('\r')
                ?? throw new FormatException($"--password-file {file} is empty.");
        }

        return new MqttPublisherOptions
        {
            VantagePoint = s.VantagePoint,
            MaxBufferedSamples = s.Buffer,
            Broker = new MqttBrokerOptions
            {
                Broker = uri,
                Username = s.Username,
                Password = password,
                CaCertificateFile = s.Ca,
                ClientId = $"cloudlets-agent-{s.VantagePoint}",
            },
        };
    }
}
