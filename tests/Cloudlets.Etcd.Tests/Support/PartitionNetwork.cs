using System.Diagnostics;
using System.Globalization;

namespace Cloudlets.Etcd.Tests.Support;

/// <summary>
/// Two network namespaces joined by a veth pair, made by a test: <c>S</c> (etcd's side, 198.19.K.1)
/// and <c>C</c> (a candidate that can be cut off, 198.19.K.2). <see cref="CutAsync"/> drops, inside C,
/// every packet to and from etcd's address (iptables), so the candidate's connection to etcd goes
/// silent the way a partition does (no reset, no error), and <see cref="HealAsync"/> removes the rules.
/// K is claimed atomically in <c>/run/cloudlets-etcd-tests</c> within 198.19.0.0/16, a part of the
/// test range 198.18.0.0/15 that the cloudlet lab (198.18.K.0/24) does not use.
/// </summary>
public sealed class PartitionNetwork : IAsyncDisposable
{
    private const string Ip = "/usr/bin/ip";
    private const string Iptables = "/usr/sbin/iptables";
    private const string ClaimFolder = "/run/cloudlets-etcd-tests";

    private readonly string _claim;
    private bool _cut;

    private PartitionNetwork(int subnet, string claim)
    {
        Subnet = subnet;
        _claim = claim;
        var k = subnet.ToString(CultureInfo.InvariantCulture);
        ServerNamespace = "cle" + k + "s";
        CandidateNamespace = "cle" + k + "c";
        ServerAddress = "198.19." + k + ".1";
        CandidateAddress = "198.19." + k + ".2";
    }

    public int Subnet { get; }

    public string ServerNamespace { get; }

    public string CandidateNamespace { get; }

    public string ServerAddress { get; }

    public string CandidateAddress { get; }

    /// <summary>Fails under CI=true (ignores otherwise) unless this runs as root with ip and iptables.</summary>
    public static void Require()
    {
        string? reason = null;
        if (GetUid() != 0)
        {
            reason = "The partition test needs root (network namespaces, iptables).";
        }
        else if (!File.Exists(Ip) || !File.Exists(Iptables))
        {
            reason = $"The partition test needs {Ip} and {Iptables}.";
        }

        Cloudlets.TestUtils.LabGate.Decide(reason);
    }

    public static async Task<PartitionNetwork> CreateAsync()
    {
        Require();
        Directory.CreateDirectory(ClaimFolder);
        for (var k = 1; k <= 254; k++)
        {
            var claim = Path.Combine(ClaimFolder, k.ToString(CultureInfo.InvariantCulture));
            try
            {
                await using (var stream = new FileStream(claim, FileMode.CreateNew, FileAccess.Write))
                {
                    await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)));
                }
            }
            catch (IOException) when (File.Exists(claim))
            {
                if (IsStale(claim))
                {
                    await RemoveAsync(new PartitionNetwork(k, claim));
                    File.Delete(claim);
                    k--;
                }

                continue;
            }

            var network = new PartitionNetwork(k, claim);
            try
            {
                await network.SetUpAsync();
            }
            catch
            {
                await network.DisposeAsync();
                throw;
            }

            return network;
        }

        throw new InvalidOperationException("No free 198.19.K.0/24 for a partition network.");
    }

    /// <summary>Drops, inside the candidate's namespace, every packet to or from etcd's address.</summary>
    public async Task CutAsync()
    {
        await RunAsync(Ip, ["netns", "exec", CandidateNamespace, Iptables, "-I", "OUTPUT", "-d", ServerAddress, "-j", "DROP"]);
        await RunAsync(Ip, ["netns", "exec", CandidateNamespace, Iptables, "-I", "INPUT", "-s", ServerAddress, "-j", "DROP"]);
        _cut = true;
    }

    /// <summary>Removes the rules of <see cref="CutAsync"/>.</summary>
    public async Task HealAsync()
    {
        if (!_cut)
        {
            return;
        }

        await RunAsync(Ip, ["netns", "exec", CandidateNamespace, Iptables, "-D", "OUTPUT", "-d", ServerAddress, "-j", "DROP"]);
        await RunAsync(Ip, ["netns", "exec", CandidateNamespace, Iptables, "-D", "INPUT", "-s", ServerAddress, "-j", "DROP"]);
        _cut = false;
    }

    public async ValueTask DisposeAsync()
    {
        await RemoveAsync(this);
        File.Delete(_claim);
    }

    private async Task SetUpAsync()
    {
        var (s, c) = (ServerNamespace, CandidateNamespace);
        var (vs, vc) = ("v" + s, "v" + c);
        await RunAsync(Ip, ["netns", "add", s]);
        await RunAsync(Ip, ["netns", "add", c]);
        await RunAsync(Ip, ["-n", s, "link", "add", vs, "type", "veth", "peer", "name", vc, "netns", c]);
        await RunAsync(Ip, ["-n", s, "addr", "add", ServerAddress + "/24", "dev", vs]);
        await RunAsync(Ip, ["-n", c, "addr", "add", CandidateAddress + "/24", "dev", vc]);
        foreach (var (ns, dev) in new[] { (s, vs), (c, vc), (s, "lo"), (c, "lo") })
        {
            await RunAsync(Ip, ["-n", ns, "link", "set", dev, "up"]);
        }
    }

    private static async Task RemoveAsync(PartitionNetwork network)
    {
        foreach (var ns in new[] { network.CandidateNamespace, network.ServerNamespace })
        {
            await RunAsync(Ip, ["netns", "del", ns], check: false);
        }
    }

    private static bool IsStale(string claim)
    {
        var text = File.ReadAllText(claim).Trim();
        return int.TryParse(text, CultureInfo.InvariantCulture, out var pid) && !Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture));
    }

    private static async Task RunAsync(string file, string[] args, bool check = true)
    {
        var start = new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await error}");
        }
    }

    private static uint GetUid() => uint.TryParse(File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture, out var uid) ? uid : uint.MaxValue;
}
