using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Cloudlets.Mqtt.Throughput;

/// <summary>
/// The measuring side: starts mosquitto (password file, per-vantage-point ACL) on a free loopback port, the
/// controller's <see cref="MqttLatencySampleSource"/> in this process, and the agent processes; measures a window
/// after a warm-up; reports rate, agent-to-source latency, CPU per 1,000 samples/s of each part, and drops.
/// </summary>
internal static class Controller
{
    public const string Password = "throughput-secret";

    private static readonly JsonSerializerOptions Compact = new();
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string VantagePoint(int i) => string.Create(CultureInfo.InvariantCulture, $"vp-{i:000}");

    public static async Task<int> RunAsync(string[] args)
    {
        var processes = Option(args, "--processes", 10);
        var vantagePoints = Option(args, "--vantage-points", 100);
        var targets = Option(args, "--targets", 100);
        var seconds = Option(args, "--seconds", 30);
        var warmup = Option(args, "--warmup", 5);
        var json = args.Contains("--json");
        if (processes < 1 || vantagePoints < processes || targets is < 1 or > 10_000 || seconds < 1 || warmup < 0)
        {
            await Console.Error.WriteLineAsync("usage: cloudlets-mqtt-throughput [--processes P] [--vantage-points V >= P] [--targets T] [--seconds S] [--warmup W] [--json]");
            return 2;
        }

        var folder = Directory.CreateTempSubdirectory("cloudlets-mqtt-throughput-").FullName;
        Process? broker = null;
        var workers = new List<Process>();
        try
        {
            var port = FreePort();
            broker = await StartBrokerAsync(folder, port, vantagePoints);
            await using var source = MqttLatencySampleSource.Start(new MqttSampleSourceOptions
            {
                Broker = new MqttBrokerOptions { Broker = new Uri($"mqtt://127.0.0.1:{port}"), Username = "controller", Password = Password },
            });
            await source.WaitConnectedAsync();

            var measuring = false;
            var latencies = new List<double>(vantagePoints * targets * seconds);
            var transits = new List<double>(vantagePoints * seconds);
            var gate = new Lock();
            using var subscription = source.Batches.Subscribe(batch =>
            {
                var now = DateTimeOffset.UtcNow;
                if (!Volatile.Read(ref measuring))
                {
                    return;
                }

                lock (gate)
                {
                    transits.Add((now - batch.PublishedAt).TotalMilliseconds);
                    foreach (var s in batch.Samples)
                    {
                        // The sample's send time on the agent's clock (one machine: the same clock as ours).
                        var agentSentAt = batch.PublishedAt - (batch.ArrivedAt - s.SentAt);
                        latencies.Add((now - agentSentAt).TotalMilliseconds);
                    }
                }
            });

            var perProcess = vantagePoints / processes;
            for (var p = 0; p < processes; p++)
            {
                var count = p == processes - 1 ? vantagePoints - (perProcess * p) : perProcess;
                workers.Add(StartWorker(port, p * perProcess, count, targets));
            }

            foreach (var w in workers)
            {
                while (await w.StandardOutput.ReadLineAsync() is { } line && line != "ready")
                {
                }
            }

            await Task.Delay(TimeSpan.FromSeconds(warmup));
            var cpuBefore = Cpu(broker, workers);
            var samplesBefore = source.Counters.Samples;
            var clock = Stopwatch.StartNew();
            Volatile.Write(ref measuring, true);
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            Volatile.Write(ref measuring, false);
            var elapsed = clock.Elapsed.TotalSeconds;
            var cpuAfter = Cpu(broker, workers);
            var samplesInWindow = source.Counters.Samples - samplesBefore;

            long posted = 0, published = 0, droppedFull = 0, rejected = 0, unsent = 0;
            foreach (var w in workers)
            {
                await w.StandardInput.WriteLineAsync("stop");
                await w.StandardInput.FlushAsync();
            }

            foreach (var w in workers)
            {
                while (await w.StandardOutput.ReadLineAsync() is { } line)
                {
                    if (line.StartsWith("counters ", StringComparison.Ordinal))
                    {
                        var f = line.Split(' ')[1..].Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                        posted += f[0];
                        published += f[1];
                        droppedFull += f[2];
                        rejected += f[3];
                        unsent += f[4];
                    }
                }

                await w.WaitForExitAsync();
            }

            // Let the last messages land.
            var settle = Stopwatch.StartNew();
            while (source.Counters.Samples < published && settle.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(100);
            }

            var counters = source.Counters;
            var rate = samplesInWindow / elapsed;
            double[] sorted, sortedTransits;
            lock (gate)
            {
                sorted = [.. latencies.Order()];
                sortedTransits = [.. transits.Order()];
            }

            static double Nearest(double[] values, double p) => values.Length == 0 ? double.NaN : values[Math.Clamp((int)Math.Ceiling(p * values.Length) - 1, 0, values.Length - 1)];
            double Percentile(double p) => Nearest(sorted, p);
            double PerThousand(double cpuSeconds) => cpuSeconds / elapsed * 100 / (rate / 1000);
            var result = new
            {
                processes,
                vantagePoints,
                targets,
                offeredSamplesPerSecond = vantagePoints * targets,
                seconds = Math.Round(elapsed, 2),
                samplesPerSecond = Math.Round(rate, 1),
                batchPeriodMs = 1000,
                latencyMs = new { p50 = Math.Round(Percentile(0.50), 2), p99 = Math.Round(Percentile(0.99), 2), max = Math.Round(Percentile(1.0), 2), count = sorted.Length },
                publishToSourceMs = new { p50 = Math.Round(Nearest(sortedTransits, 0.50), 2), p99 = Math.Round(Nearest(sortedTransits, 0.99), 2), max = Math.Round(Nearest(sortedTransits, 1.0), 2), messages = sortedTransits.Length },
                cpuPercentOfOneCorePer1000SamplesPerSecond = new
                {
                    controller = Math.Round(PerThousand(cpuAfter.Controller - cpuBefore.Controller), 2),
                    broker = Math.Round(PerThousand(cpuAfter.Broker - cpuBefore.Broker), 2),
                    agents = Math.Round(PerThousand(cpuAfter.Agents - cpuBefore.Agents), 2),
                },
                drops = new
                {
                    posted,
                    published,
                    received = counters.Samples,
                    lost = posted - counters.Samples,
                    publisherBufferFull = droppedFull,
                    publisherRejected = rejected,
                    publisherUnsentAtStop = unsent,
                    sourceMissedMessages = counters.MissedMessages,
                    sourceMalformed = counters.Malformed,
                    sourceForeign = counters.Foreign,
                    sourceDuplicates = counters.Duplicates,
                },
                loadAverage = File.ReadAllText("/proc/loadavg").Split(' ')[0],
            };
            Console.WriteLine(JsonSerializer.Serialize(result, json ? Compact : Indented));

            return 0;
        }
        finally
        {
            foreach (var w in workers)
            {
                if (!w.HasExited)
                {
                    w.Kill();
                }

                w.Dispose();
            }

            if (broker is { HasExited: false })
            {
                broker.Kill();
                await broker.WaitForExitAsync();
            }

            broker?.Dispose();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : fallback;
    }

    private static (double Controller, double Broker, double Agents) Cpu(Process broker, List<Process> workers)
    {
        using var self = Process.GetCurrentProcess();
        return (self.TotalProcessorTime.TotalSeconds, ProcessCpuSeconds(broker.Id), workers.Sum(w => ProcessCpuSeconds(w.Id)));
    }

    /// <summary>utime + stime of a process from /proc (a child's TotalProcessorTime reads the same, this needs no handle).</summary>
    private static double ProcessCpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // Fields after the command: state is [0]; utime and stime are fields 14 and 15 of the whole line, [11] and [12] here.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static Process StartWorker(int port, int first, int count, int targets)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            info.ArgumentList.Add(typeof(Controller).Assembly.Location);
        }

        foreach (var a in new object[] { "worker", port, first, count, targets }.Select(x => Convert.ToString(x, CultureInfo.InvariantCulture)!))
        {
            info.ArgumentList.Add(a);
        }

        return Process.Start(info)!;
    }

    private static async Task<Process> StartBrokerAsync(string folder, int port, int vantagePoints)
    {
        var passwd = Path.Combine(folder, "passwd");
        // mosquitto_passwd -U hashes a whole file of user:password lines in one run.
        await File.WriteAllLinesAsync(passwd, Enumerable.Range(0, vantagePoints).Select(VantagePoint).Append("controller").Select(u => $"{u}:{Password}"));
        await RunAsync("/usr/bin/mosquitto_passwd", "-U", passwd);
        await File.WriteAllTextAsync(Path.Combine(folder, "acl"), "user controller\ntopic read cloudlets/v1/samples/+\n\npattern write cloudlets/v1/samples/%u\n");
        await File.WriteAllTextAsync(Path.Combine(folder, "mosquitto.conf"), string.Join('\n',
            "per_listener_settings false", "allow_anonymous false", "persistence false", "user root",
            $"password_file {passwd}", $"acl_file {Path.Combine(folder, "acl")}", "log_type error",
            "max_queued_messages 100000", $"listener {port} 127.0.0.1", ""));
        var info = new ProcessStartInfo("/usr/sbin/mosquitto") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Path.Combine(folder, "mosquitto.conf"));
        var process = Process.Start(info)!;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return process;
            }
            catch (SocketException) when (!process.HasExited)
            {
                await Task.Delay(50);
            }
        }

        throw new InvalidOperationException("mosquitto did not start listening.");
    }

    private static async Task RunAsync(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { UseShellExecute = false })!;
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} exited {process.ExitCode}.");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
