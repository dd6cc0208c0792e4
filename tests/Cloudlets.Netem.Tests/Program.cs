using System.Net;
using Cloudlets.Core.Shaping;
using Cloudlets.Netem;

namespace Cloudlets.Netem.Tests;

/// <summary>
/// Entry point of the test assembly when it is run as a program (the test host never calls it).
/// <c>hold-delayer OWNER NAMESPACE INTERFACE DESTINATION DELAY_MS</c> applies one rule with the
/// NFQUEUE backend, prints READY and holds the delayer until killed (at most two minutes), so a test
/// can kill the process that owns the delay line.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["hold-delayer", var owner, var ns, var iface, var destination, var delayMs])
        {
            await Console.Error.WriteLineAsync("usage: hold-delayer OWNER NAMESPACE INTERFACE DESTINATION DELAY_MS");
            return 2;
        }

        var shaper = new NfQueueShaper();
        var rule = ShapingRule.Egress(iface, Impairment.FromDelay(double.Parse(delayMs, System.Globalization.CultureInfo.InvariantCulture)),
            TrafficMatch.To(IPAddress.Parse(destination))) with { NetworkNamespace = ns };
        await shaper.ApplyAsync(new ShapingPlan(owner, [rule]));
        Console.WriteLine("READY");
        await Task.Delay(TimeSpan.FromMinutes(2));
        await shaper.DisposeAsync();
        return 0;
    }
}
