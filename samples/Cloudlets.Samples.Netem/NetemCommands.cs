using System.CommandLine;

namespace Cloudlets.Samples.Netem;

/// <summary>
/// The command tree of <c>cloudlets-netem</c> (System.CommandLine): <c>set</c>, <c>show</c> and <c>del</c>, each with only
/// its own options, so an option given to the wrong verb is a usage error. <see cref="NetemCommandLine.From"/> reads a parse.
/// </summary>
internal sealed class NetemCommands
{
    /// <summary>The short usage printed after a usage error (the whole story is in <c>--help</c>).</summary>
    public const string Synopsis = """
        usage: cloudlets-netem set DEV --delay TIME [--jitter TIME] [--loss PERCENT] [--to CIDR]... [--netns NAME] [SSH]
               cloudlets-netem show DEV [--json] [--netns NAME] [SSH]
               cloudlets-netem del DEV [--netns NAME] [SSH]
               SSH: --ssh USER@HOST --key FILE [--known-hosts FILE] [--port N]
        """;

    private const string Description = """
        cloudlets-netem: puts a delay (and jitter, loss) on the traffic leaving a network device, as tcconfig's
        tcset/tcshow/tcdel do, through the Cloudlets shapers. "set" applies, "show" reads back what the kernel holds
        (tc -j, iptables-save), "del" removes what cloudlets-netem made on the device and nothing else.

        Backends: tc netem where the kernel has it (CONFIG_NET_SCH_NETEM); otherwise, on this machine only, the
        NFQUEUE delay line (iptables -j NFQUEUE --queue-bypass and a delay line in this process). The backend
        chosen, and why, is printed on stderr. Over SSH (--ssh) only tc netem is possible: a remote kernel without
        netem is an error (exit 3) and nothing is changed there.

        Holding: the NFQUEUE delay line lives only as long as the process that applied it. With that backend "set"
        stays in the foreground, holding the delay, until SIGINT (Ctrl+C) or SIGTERM; then it clears what it applied
        and exits 0 (if it is killed with SIGKILL, packets pass undelayed and the next "set" or "del" of the device
        removes the leftover rules). With tc netem the delay is kernel state: "set" applies it and exits.

        Ownership: each device (in its namespace) has its own owner tag, cnt-HASH-DEV; the kernel objects carry it
        (iptables chains NETEM_<owner>_OUT and rule comments, or a tc handle recorded under /run/cloudlets-netem).
        "set" refuses (exit 2, nothing applied) a device whose root qdisc, or an iptables mangle rule on it, is not
        cloudlets-netem's.

        Needs root, locally: it runs tc and iptables and, for the NFQUEUE backend, binds netlink queues; it keeps
        owner locks in /run/cloudlets-netem. Over SSH the remote user must be allowed to run tc (root).

        Exit codes:
          0  done: applied (tc netem), held and cleared on SIGINT/SIGTERM (NFQUEUE), shown, deleted, or nothing
             to delete (also --help and --version)
          1  failed: a kernel command failed, or clearing left something behind
          2  bad command line or input: an unknown option, a bad TIME, PERCENT or CIDR, no DEV, a device or
             namespace that does not exist, a foreign root qdisc or iptables rule on the device, a feature the
             backend lacks (nothing was applied)
          3  cannot shape here: not root, no backend works on this machine, or the remote kernel has no netem
          4  the device is held by another cloudlets-netem (a "set" still holding it); nothing was changed
          5  SSH: cannot connect or log in, or the host key is not trusted; nothing ran there
          130  stopped by SIGINT or SIGTERM before anything was applied
        """;

    /// <summary>Builds the tree (no actions set).</summary>
    public NetemCommands()
    {
        Delay = new Option<string>("--delay") { HelpName = "TIME", Description = "The one-way delay added to each packet leaving DEV: 300ms, 0.3s, 250us (a bare number is milliseconds); at most 60 s.", Required = true };
        Jitter = new Option<string?>("--jitter") { HelpName = "TIME", Description = "Uniform jitter (±) around the delay, at most the delay." };
        Loss = new Option<string?>("--loss") { HelpName = "PERCENT", Description = "Random loss: 1%, 0.5 (0 to 100)." };
        To = new Option<string[]>("--to") { HelpName = "CIDR", Description = "Delay only packets to this network (198.18.1.0/24) or address; repeatable. The default is every packet.", AllowMultipleArgumentsPerToken = false };
        Json = new Option<bool>("--json") { Description = "Print the state as one JSON object." };
        Namespace = new Option<string?>("--netns") { HelpName = "NAME", Description = "DEV lives in this named network namespace (ip netns)." };
        Ssh = new Option<string?>("--ssh") { HelpName = "USER@HOST", Description = "Shape a remote host over SSH (tc netem only)." };
        Key = new Option<string?>("--key") { HelpName = "FILE", Description = "With --ssh: the private key (OpenSSH format) to log in with; required." };
        KnownHosts = new Option<string?>("--known-hosts") { HelpName = "FILE", Description = "With --ssh: the known_hosts file that vouches for the host key (default ~/.ssh/known_hosts)." };
        Port = new Option<int?>("--port") { HelpName = "N", Description = "With --ssh: the SSH port (default 22)." };
        Device = new Argument<string>("DEV") { Description = "The network device (eth0, veth1, …); its egress is shaped." };

        Set = new Command("set", "Applies the delay to DEV (replacing what cloudlets-netem had there). With the NFQUEUE backend it holds until SIGINT or SIGTERM, then clears.")
        {
            Device, Delay, Jitter, Loss, To, Namespace, Ssh, Key, KnownHosts, Port,
        };
        Show = new Command("show", "Prints what the kernel holds for DEV that cloudlets-netem made (or that nothing is there).")
        {
            Device, Json, Namespace, Ssh, Key, KnownHosts, Port,
        };
        Del = new Command("del", "Removes what cloudlets-netem made on DEV (and says so when there is nothing).")
        {
            Device, Namespace, Ssh, Key, KnownHosts, Port,
        };
        Root = new RootCommand(Description) { Set, Show, Del };
    }

    /// <summary>The root command.</summary>
    public RootCommand Root { get; }

    /// <summary>The verbs.</summary>
    public IReadOnlyList<Command> Verbs => [Set, Show, Del];

    /// <summary><c>set</c>.</summary>
    public Command Set { get; }

    /// <summary><c>show</c>.</summary>
    public Command Show { get; }

    /// <summary><c>del</c>.</summary>
    public Command Del { get; }

    /// <summary>DEV.</summary>
    public Argument<string> Device { get; }

    /// <summary><c>--delay</c>.</summary>
    public Option<string> Delay { get; }

    /// <summary><c>--jitter</c>.</summary>
    public Option<string?> Jitter { get; }

    /// <summary><c>--loss</c>.</summary>
    public Option<string?> Loss { get; }

    /// <summary><c>--to</c>.</summary>
    public Option<string[]> To { get; }

    /// <summary><c>--json</c>.</summary>
    public Option<bool> Json { get; }

    /// <summary><c>--netns</c>.</summary>
    public Option<string?> Namespace { get; }

    /// <summary><c>--ssh</c>.</summary>
    public Option<string?> Ssh { get; }

    /// <summary><c>--key</c>.</summary>
    public Option<string?> Key { get; }

    /// <summary><c>--known-hosts</c>.</summary>
    public Option<string?> KnownHosts { get; }

    /// <summary><c>--port</c>.</summary>
    public Option<int?> Port { get; }
}
