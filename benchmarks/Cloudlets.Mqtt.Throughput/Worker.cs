using System.Globalization;
using System.Net;
using Cloudlets.Core.Probing;

namespace Cloudlets.Mqtt.Throughput;

/// <summary>
/// One agent process: vantage points vp-FIRST .. vp-(FIRST+COUNT-1), each with its own publisher and connection,
/// each posting one sample per target per second, spread over the second (as the agent's probers do).
/// Stops on a line on standard input (or its end) and prints its counters.
/// </summary>
internal static class Worker
{
    public static async Task<int> RunAsync(string[] args)
    {
        var port = int.Parse(args[0], CultureInfo.InvariantCulture);
        var first = int.Parse(args[1], CultureInfo.InvariantCulture);
        var count = int.Parse(args[2], CultureInfo.InvariantCulture);
        var targetCount = int.Parse(args[3], CultureInfo.InvariantCulture);
        var targets = Enumerable.Range(0, targetCount)
            .Select(i => new ProbeTarget($"cloudlet-{i}", new IPAddress([198, 18, (byte)(i / 250), (byte)(i % 250 + 1)])))
            .ToArray();
        var publishers = Enumerable.Range(first, count).Select(i => MqttLatencyPublisher.Start(new MqttPublisherOptions
        {
            VantagePoint = Controller.VantagePoint(i),
            Broker = new MqttBrokerOptions
            {
                Broker = new Uri($"mqtt://127.0.0.1:{port}"),
                Username = Controller.VantagePoint(i),
                Password = Controller.Password,
            },
        })).ToArray();
        await Task.WhenAll(publishers.Select(p => p.WaitConnectedAsync()));
        Console.WriteLine("ready");

        using var stop = new CancellationTokenSource();
        var loop = Task.Run(async () =>
        {
            // Every 10 ms each vantage point sends the samples due by then, so each target gets one sample a second
            // (counted from the elapsed time, so a late wake-up sends its share rather than losing it).
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var sent = 0L;
            while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
            {
                var due = (long)(clock.Elapsed.TotalSeconds * targetCount);
                var now = DateTimeOffset.UtcNow;
                for (; sent < due; sent++)
                {
                    var target = targets[sent % targetCount];
                    foreach (var p in publishers)
                    {
                        p.Post(new LatencySample(p.VantagePoint, target, now, TimeSpan.FromMicroseconds(1500), ProbeStatus.Ok));
                    }
                }
            }
        });

        await Console.In.ReadLineAsync();
        await stop.CancelAsync();
        try
        {
            await loop;
        }
        catch (OperationCanceledException)
        {
        }

        long posted = 0, published = 0, dropped = 0, rejected = 0, buffered = 0;
        foreach (var p in publishers)
        {
            await p.DisposeAsync();
            var c = p.Counters;
            posted += c.Posted;
            published += c.Published;
            dropped += c.DroppedBufferFull;
            rejected += c.Rejected;
            buffered += c.Buffered;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"counters {posted} {published} {dropped} {rejected} {buffered}"));
        return 0;
    }
}
