using System.Globalization;
using System.Runtime.InteropServices;
using Cloudlets.Core.Election;

namespace Cloudlets.Etcd.Tests.Support;

/// <summary>
/// The child-process candidate of the process tests: <c>candidate ENDPOINT ELECTION ID TTL_SECONDS CONFIRM_EVERY_MS</c>
/// campaigns on etcd and prints one line per state (<c>STATE unixMs role reason lease revision leader</c>)
/// and one line per fencing check (<c>CONFIRM startUnixMs true|false endUnixMs lease revision</c>, made every CONFIRM_EVERY_MS whatever the role),
/// so a test can kill it (SIGKILL), pause it (SIGSTOP) or cut it off and read what it did. Ends on
/// SIGTERM, on a closed standard input, or after five minutes.
/// </summary>
public static class CandidateProgram
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args is not ["candidate", var endpoint, var electionName, var id, var ttl, var confirmEvery])
        {
            await Console.Error.WriteLineAsync("usage: candidate ENDPOINT ELECTION ID TTL_SECONDS CONFIRM_EVERY_MS");
            return 2;
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        _ = Task.Run(async () =>
        {
            await Console.In.ReadToEndAsync(stop.Token);
            await stop.CancelAsync();
        });

        var output = TextWriter.Synchronized(Console.Out);
        await using var election = EtcdLeaderElection.Create(new EtcdLeaderElectionOptions
        {
            Endpoints = [endpoint],
            RequestTimeout = TimeSpan.FromMilliseconds(500),
            Election = new LeaderElectionOptions
            {
                Election = electionName,
                CandidateId = id,
                LeaseTtl = TimeSpan.FromSeconds(int.Parse(ttl, CultureInfo.InvariantCulture)),
                RetryInitialBackoff = TimeSpan.FromMilliseconds(100),
                RetryMaxBackoff = TimeSpan.FromSeconds(1),
            },
        });
        using var subscription = election.States.Subscribe(s =>
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"STATE {Now()} {s.Role} {s.Reason} {s.LeaseId ?? 0} {s.Revision ?? 0} {s.LeaderId ?? "-"}"));
            output.Flush();
        });
        var period = TimeSpan.FromMilliseconds(int.Parse(confirmEvery, CultureInfo.InvariantCulture));
        try
        {
            await election.StartAsync(stop.Token);
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(period, stop.Token);

                // Followers check too (they must always hear no), so a test sees what a candidate
                // would have done at every moment, including right after it was paused or cut off.
                var state = election.Current;
                var started = Now();
                var confirmed = await election.ConfirmLeadershipAsync(stop.Token);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"CONFIRM {started} {(confirmed ? "true" : "false")} {Now()} {state.LeaseId ?? 0} {state.Revision ?? 0}"));
                output.Flush();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        return 0;
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}
