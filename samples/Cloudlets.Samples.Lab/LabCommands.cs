using System.CommandLine;

namespace Cloudlets.Samples.Lab;

/// <summary>
/// The command tree of <c>cloudlets-lab</c> (System.CommandLine): one subcommand per verb, each with only its own
/// options, so an option given to the wrong verb is a usage error. <see cref="LabCommandLine.From"/> reads a parse.
/// </summary>
internal sealed class LabCommands
{
    private const string Description = """
        cloudlets-lab: brings a cloudlet lab up on this machine (an edge namespace and cloudlet-1 .. cloudlet-N, each a
        network namespace with its own libvirtd, optionally a guest VM), shows it, shapes the delay toward each host,
        live-migrates its guests, and tears it down.

        With --agents the lab also runs an MQTT broker in the edge namespace and a cloudlets-agent per site (status
        --json lists the broker's address and credentials file and each agent's pid; "down" ends them).

        With --sites M (1 to 8) the lab has M sites where users are: site-1 is the edge, site-2 .. site-M each its own
        namespace and subnet on the lab switch; "shape --matrix FILE" then gives each (site, host) pair its delay.

        The default name is "cloudlets"; hosts are cloudlet-1 .. cloudlet-N (N at most 8), guests guest-1, guest-2, ...
        "up" on a healthy lab of the same name and host count changes nothing; on a lab of another shape, or one whose
        owner process is alive, it refuses (exit 4, nothing changed): "down" it first. "up" after a crashed or killed
        run removes that run's leftovers first. The lab removes only what it recorded as its own: a namespace with its
        names made by anybody else is left alone.

        Needs root: it creates network namespaces, veth pairs and iptables rules, and runs libvirtd and QEMU.

        CLOUDLETS_LAB_LOG=information (or debug) logs what the lab does to stderr.
        CLOUDLETS_LAB_HOLD_AT=PHASE stops the command at that phase (it prints "holding at phase PHASE" and waits to be
        killed), for fault-injection tests. Phases: those of Cloudlets.Lab.LabPhases for "up", shape-applying and
        shape-applied for "shape", migrate-started and migrate-running for "migrate".

        Exit codes:
          0  done (also --help and --version)
          1  failed
          2  bad command line or input (nothing was changed)
          3  prerequisites missing (not root, no libvirtd, QEMU or iptables; not Linux)
          4  the name is held by another lab or a live owner
          130  cancelled (Ctrl+C or SIGTERM) before it was done
        """;

    /// <summary>Builds the tree (no actions set).</summary>
    public LabCommands()
    {
        Name = new Option<string>("--name") { HelpName = "NAME", Description = "The lab's name.", DefaultValueFactory = _ => "cloudlets" };
        Hosts = new Option<int>("--hosts") { HelpName = "N", Description = "How many cloudlet hosts (1 to 8).", DefaultValueFactory = _ => 3 };
        GuestOn = new Option<string[]>("--guest-on") { HelpName = "HOST", Description = "A host (cloudlet-N) that gets a guest VM; repeatable.", AllowMultipleArgumentsPerToken = false };
        Cache = new Option<string?>("--cache") { HelpName = "FOLDER", Description = "The guest image cache, an absolute path (default /var/cache/cloudlets-lab; it holds the kernel .deb)." };
        Transport = new Option<string>("--transport") { HelpName = "tcp|tls|ssh|tls-sasl", Description = "How the hosts' libvirtd is reached: tcp (no authentication, as in the original demonstration), tls (the lab makes a CA, a server certificate per host and a client certificate; no TCP listener), ssh (an OpenSSH server per host, keys only, the host keys pinned in a known_hosts file the lab writes; libvirtd has no network listener) or tls-sasl (tls, and SASL SCRAM-SHA-256 logins against a sasldb per host; the password is in a 0600 file the lab writes, named by status --json).", DefaultValueFactory = _ => "tcp" };
        Transport.AcceptOnlyFromAmong("tcp", "tls", "ssh", "tls-sasl");
        DirtyRate = new Option<int>("--dirty-rate")
        {
            HelpName = "MIBPS",
            Description = "Each guest this up starts rewrites this many MiB of its memory every second (0 to 128; default 0), so a migration slower than that does not converge.",
            DefaultValueFactory = _ => 0,
        };
        NetemGuest = new Option<bool>("--netem-guest") { Description = "Each guest this up starts is a real netem host: the guest kernel's netem, HTB, u32, IFB and mirred modules, iproute2's tc and ip at /usr/sbin, and an SSH server (Dropbear, keys only, its host key pinned in a known_hosts file the lab writes); status --json lists it under netemGuests with its SSH credentials. Without --guest-on, one guest on cloudlet-1." };
        Sites = new Option<int>("--sites") { HelpName = "M", Description = "How many sites where users are (1 to 8): site-1 is the edge, site-2 .. site-M each get a namespace and subnet of their own.", DefaultValueFactory = _ => 1 };
        Matrix = new Option<string?>("--matrix")
        {
            HelpName = "FILE",
            Description = "A latency matrix instead of HOST DELAY pairs: a JSON file {\"delays\": [{\"site\": \"site-1\", \"host\": \"cloudlet-1\", \"delayMs\": 300}, ...]} " +
                          "giving each listed (site, host) pair its one-way delay (0 to 60000 ms; a pair not listed is unshaped). A bad file exits 2, naming the member.",
        };
        Agents = new Option<bool>("--agents") { Description = "Also start a broker (mosquitto inside the edge namespace, on the edge's address, port 1883, with an ACL and a password per site) and one cloudlets-agent per site inside the site's namespace, probing every host and publishing its samples to the broker." };
        Agent = new Option<string?>("--agent") { HelpName = "DLL", Description = "With --agents: the cloudlets-agent.dll to run (an absolute path); the default is the one built next to this tool." };
        Json = new Option<bool>("--json") { Description = "Print the status as JSON." };
        For = new Option<string?>("--for") { HelpName = "SECONDS", Description = "Hold the delays for this many seconds once they are in place (above 0, at most 86400), then clear them." };
        Bandwidth = new Option<string?>("--bandwidth") { HelpName = "MIBS", Description = "Limit the migration to this many MiB/s (1 to 100000)." };
        Pairs = new Argument<string[]>("HOST DELAY") { Description = "Pairs of a host (cloudlet-N) and its one-way delay toward the edge: milliseconds (300, 20.5, 300ms) or seconds (0.3s); 0 unshapes.", Arity = ArgumentArity.ZeroOrMore };
        Guest = new Argument<string>("GUEST") { Description = "The guest to move (guest-N)." };
        To = new Argument<string>("HOST") { Description = "The destination host (cloudlet-N)." };

        Up = new Command("up", "Brings the lab up (or leaves a healthy one of the same shape alone) and prints its status, start-up time and guest boot times.")
        {
            Hosts, Sites, GuestOn, Name, Cache, Transport, DirtyRate, NetemGuest, Agents, Agent,
        };
        Status = new Command("status", "Prints the lab's hosts, guests, addresses and health.") { Json, Name };
        Down = new Command("down", "Tears the lab down: removes everything it recorded as its own, and says what it left alone or behind.") { Name };
        Shape = new Command("shape", """
            Gives each HOST a one-way DELAY toward the edge and unshapes the others (or, with --matrix FILE, each listed
            (site, host) pair its delay); holds the delays until Ctrl+C or SIGTERM (or for --for SECONDS), printing what
            the kernel holds and the RTT measured from the edge (from every site with --matrix), then clears them. The
            userspace delay line lives in this process: if it is killed, traffic flows undelayed and "clear" removes the
            leftover rules.
            """)
        {
            Pairs, Matrix, For, Name,
        };
        Clear = new Command("clear", "Removes every delay rule of the lab (also those a killed 'shape' left).") { Name };
        Migrate = new Command("migrate", "Live-migrates GUEST to HOST with virsh --p2p.") { Guest, To, Bandwidth, Name };
        LinkRate = new Argument<string>("MIBPS|off") { Description = "The cap in MiB/s (1 to 100000), or off." };
        Cap = new Command("cap", """
            Caps what each host sends to the other hosts (live migrations, the daemons' calls to each other) at MIBPS MiB/s,
            or removes the cap with "off"; the guests' traffic to the sites and the clients' calls keep their speed. Unlike
            "migrate --bandwidth", the link also holds the migration's final stop-and-copy to the cap, as a slow path does.
            """)
        {
            LinkRate, Name,
        };
        Root = new RootCommand(Description) { Up, Status, Down, Shape, Clear, Migrate, Cap };
    }

    /// <summary>The root command (<c>--help</c>, <c>--version</c> and the verbs).</summary>
    public RootCommand Root { get; }

    /// <summary>The verbs, in the order of <see cref="LabCommandLine.Verbs"/>.</summary>
    public IReadOnlyList<Command> Verbs => [Up, Status, Down, Shape, Clear, Migrate, Cap];

    public Option<string> Transport { get; }

    public Command Up { get; }

    public Command Status { get; }

    public Command Down { get; }

    public Command Shape { get; }

    public Command Clear { get; }

    /// <summary><c>cap MIBPS|off</c>.</summary>
    public Command Cap { get; }

    /// <summary>The <c>MIBPS|off</c> argument of <c>cap</c>.</summary>
    public Argument<string> LinkRate { get; }

    public Command Migrate { get; }

    /// <summary><c>--name</c>, on every verb (not before the verb).</summary>
    public Option<string> Name { get; }

    public Option<int> Hosts { get; }

    public Option<int> Sites { get; }

    public Option<string?> Matrix { get; }

    public Option<string[]> GuestOn { get; }

    /// <summary><c>--netem-guest</c> of <c>up</c>.</summary>
    public Option<bool> NetemGuest { get; }

    /// <summary><c>--dirty-rate MIBPS</c> of <c>up</c>.</summary>
    public Option<int> DirtyRate { get; }

    public Option<string?> Cache { get; }

    public Option<bool> Json { get; }

    public Option<bool> Agents { get; }

    public Option<string?> Agent { get; }

    public Option<string?> For { get; }

    public Option<string?> Bandwidth { get; }

    public Argument<string[]> Pairs { get; }

    public Argument<string> Guest { get; }

    public Argument<string> To { get; }
}
