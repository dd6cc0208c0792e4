using Cloudlets.Core.Decisions;

namespace Cloudlets.Simulation;

/// <summary>The mobility models <see cref="TraceGenerator"/> knows.</summary>
public enum MobilityModel
{
    /// <summary>One user walking over the grid (a random walk with pauses).</summary>
    Walk,
    /// <summary>Users commuting between a home cell and a work cell, each on their own schedule.</summary>
    Commute,
    /// <summary>Users that stay put, with heavy jitter: two hosts at nearly the same distance (the right answer is not to move).</summary>
    NoisyStatic,
    /// <summary>A user that stays put while its host's latency steps up for good halfway through.</summary>
    Step,
    /// <summary>A user whose latency to two hosts swaps back and forth around the policy's threshold every few minutes.</summary>
    Oscillate,
    /// <summary>One VM with several weighted users walking in different directions.</summary>
    ManyUsers,
    /// <summary>A flash crowd: the users of several VMs gather near one cloudlet that has room for only one of them (capacity binds).</summary>
    FlashCrowd,
}

/// <summary>What <see cref="TraceGenerator.Generate"/> produces: a fleet and its trace.</summary>
public sealed record GeneratedTrace(Fleet Fleet, LatencyTrace Trace);

/// <summary>
/// Writes synthetic traces from mobility models, deterministic from a seed: users move over a grid of
/// cells with cloudlets (hosts) at some cells; a user's RTT to a host is 3 ms plus 6 ms per cell of
/// grid distance, plus half-normal jitter (σ 1.5 ms; 12 ms in <see cref="MobilityModel.NoisyStatic"/>),
/// plus a queueing spike of 20–100 ms on 2 % of the probes, with 1 % of the probes lost (5 % in
/// <see cref="MobilityModel.NoisyStatic"/>).
/// </summary>
public static class TraceGenerator
{
    private const int Grid = 10;
    private const double BaseMs = 3;
    private const double PerCellMs = 6;
    private const double SpikeRate = 0.02;

    /// <summary>Generates a fleet and a trace.</summary>
    /// <param name="model">The mobility model.</param>
    /// <param name="seed">The seed; the same seed gives the same files.</param>
    /// <param name="durationSeconds">How long the trace lasts. The default is one hour.</param>
    /// <param name="stepSeconds">Seconds between probe rounds. The default is 5 s (the pipeline's evaluation interval).</param>
    public static GeneratedTrace Generate(MobilityModel model, int seed, double durationSeconds = 3600, double stepSeconds = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(stepSeconds, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(durationSeconds, stepSeconds);
        var random = new Random(seed);
        (int X, int Y)[] cells = [(1, 1), (8, 1), (1, 8), (8, 8), (5, 5)];
        var hosts = cells.Select((c, i) => new SimulatedHost($"cloudlet-{i + 1}", 16_384, 16)).ToList();
        var migration = new MigrationModel(FixedSeconds: 2, BandwidthMiBps: 100, DowntimeMs: 200);
        var cost = new CostModel(MigrationPenaltyMsSeconds: 20_000);
        var steps = (int)Math.Floor(durationSeconds / stepSeconds);
        double jitter = 1.5, loss = 0.01;
        List<SimulatedVm> vms = [];
        Func<int, double, (double X, double Y)>[] users;
        switch (model)
        {
            case MobilityModel.Walk:
                users = [Walker(random, steps, (1, 1), pauseSteps: 60)];
                vms.Add(Vm("vm-walker", "cloudlet-1", 1024, "user-1"));
                break;
            case MobilityModel.Commute:
                users = [.. Enumerable.Range(0, 4).Select(i => Commuter(random, cells[i % 4], cells[(i + 1 + (i % 2)) % 4]))];
                for (var i = 0; i < users.Length; i++)
                {
                    vms.Add(Vm($"vm-commuter-{i + 1}", hosts[i % 4].Name, 1024, $"user-{i + 1}"));
                }

                break;
            case MobilityModel.NoisyStatic:
                // user-1 sits as far from cloudlet-1 as from cloudlet-5, user-2 as far from cloudlet-4 as from cloudlet-5.
                users = [(_, _) => (3, 3), (_, _) => (6.5, 6.5)];
                jitter = 12;
                loss = 0.05;
                vms.Add(Vm("vm-static-1", "cloudlet-1", 1024, "user-1"));
                vms.Add(Vm("vm-static-2", "cloudlet-4", 1024, "user-2"));
                break;
            case MobilityModel.Step:
                users = [(_, _) => (2, 2)];
                vms.Add(Vm("vm-step", "cloudlet-1", 1024, "user-1"));
                break;
            case MobilityModel.Oscillate:
                // Every 4 minutes the user hops between two cells: the better host flips between
                // cloudlet-1 and cloudlet-5 by a gain just above the default thresholds.
                users = [(k, t) => ((int)(t / 240) % 2 == 0 ? (2.5, 2.5) : (3.6, 3.6))];
                vms.Add(Vm("vm-oscillate", "cloudlet-1", 1024, "user-1"));
                break;
            case MobilityModel.ManyUsers:
                users = [.. Enumerable.Range(0, 4).Select(i => Walker(random, steps, cells[i], pauseSteps: 90))];
                vms.Add(new SimulatedVm("vm-shared", 2048, 2, "cloudlet-5", [.. Enumerable.Range(0, 4).Select(i => new VmUser($"user-{i + 1}", 1 + i))]));
                break;
            case MobilityModel.FlashCrowd:
                // Six VMs' users walk to an event near cloudlet-5 from minute 15 to 40; cloudlet-5 has room for one of them.
                hosts[4] = hosts[4] with { MemoryMiB = 2560, VCpus = 4 };
                users = [.. Enumerable.Range(0, 6).Select(i => Crowd(cells[i % 4], (5, 5), 900, 2400))];
                for (var i = 0; i < users.Length; i++)
                {
                    vms.Add(Vm($"vm-crowd-{i + 1}", hosts[i % 4].Name, 2048, $"user-{i + 1}"));
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(model), model, "Unknown mobility model.");
        }

        var samples = new List<TraceSample>();
        for (var k = 0; k < steps; k++)
        {
            var t = k * stepSeconds;
            for (var u = 0; u < users.Length; u++)
            {
                var (x, y) = users[u](k, t);
                for (var h = 0; h < hosts.Count; h++)
                {
                    var distance = Math.Sqrt(((x - cells[h].X) * (x - cells[h].X)) + ((y - cells[h].Y) * (y - cells[h].Y)));
                    var rtt = BaseMs + (PerCellMs * distance);
                    if (model == MobilityModel.Step && h == 0 && t >= durationSeconds / 2)
                    {
                        rtt += 80;
                    }

                    rtt += Math.Abs(Gaussian(random) * jitter);
                    if (random.NextDouble() < SpikeRate)
                    {
                        // A queueing spike (a burst of cross traffic): one probe 20-100 ms late.
                        rtt += 20 + (80 * random.NextDouble());
                    }

                    double? value = random.NextDouble() < loss ? null : Math.Round(rtt, 2);
                    samples.Add(new TraceSample(t, $"user-{u + 1}", hosts[h].Name, value));
                }
            }
        }

        return new GeneratedTrace(new Fleet(hosts, vms, migration, cost), new LatencyTrace(samples));
    }

    private static SimulatedVm Vm(string name, string host, long memoryMiB, string user) => new(name, memoryMiB, 1, host, [new VmUser(user)]);

    /// <summary>A random walk on the grid: a pause, then a few cells in one direction, and so on.</summary>
    private static Func<int, double, (double X, double Y)> Walker(Random random, int steps, (int X, int Y) start, int pauseSteps)
    {
        var path = new (double X, double Y)[steps];
        double x = start.X, y = start.Y;
        var k = 0;
        while (k < steps)
        {
            for (var p = 0; p < pauseSteps + random.Next(pauseSteps) && k < steps; p++)
            {
                path[k++] = (x, y);
            }

            var (dx, dy) = random.Next(4) switch { 0 => (1, 0), 1 => (-1, 0), 2 => (0, 1), _ => (0, -1) };
            var length = 2 + random.Next(5);
            for (var i = 0; i < length * 6 && k < steps; i++)
            {
                // One cell per 6 steps (30 s at 5 s steps): walking pace through a city block.
                x = Math.Clamp(x + (dx / 6.0), 0, Grid - 1);
                y = Math.Clamp(y + (dy / 6.0), 0, Grid - 1);
                path[k++] = (x, y);
            }
        }

        return (step, _) => path[Math.Min(step, steps - 1)];
    }

    /// <summary>Home, a trip, work, a trip back: a 60-minute cycle with a personal offset.</summary>
    private static Func<int, double, (double X, double Y)> Commuter(Random random, (int X, int Y) home, (int X, int Y) work)
    {
        var offset = random.Next(0, 900);
        return (_, t) =>
        {
            var phase = (t + offset) % 3600;
            double f = phase switch
            {
                < 1200 => 0,
                < 1800 => (phase - 1200) / 600,
                < 3000 => 1,
                _ => 1 - ((phase - 3000) / 600),
            };
            return (home.X + ((work.X - home.X) * f), home.Y + ((work.Y - home.Y) * f));
        };
    }

    /// <summary>From home to the event over 5 minutes, stay, and back.</summary>
    private static Func<int, double, (double X, double Y)> Crowd((int X, int Y) home, (int X, int Y) venue, double start, double end) => (_, t) =>
    {
        var f = t < start ? 0 : t < start + 300 ? (t - start) / 300 : t < end ? 1 : t < end + 300 ? 1 - ((t - end) / 300) : 0;
        var near = (venue.X + 0.3, venue.Y + 0.3);
        return (home.X + ((near.Item1 - home.X) * f), home.Y + ((near.Item2 - home.Y) * f));
    };

    private static double Gaussian(Random random)
    {
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
