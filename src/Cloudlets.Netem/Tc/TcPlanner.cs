using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Cloudlets.Probing.Commands;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Tc;

/// <summary>
/// Pure planning for the tc backend. Per device the owner has one tree under its reserved handle:
/// a lone whole-interface rule is <c>root netem</c> (as in the demonstration); anything else is an HTB
/// root with one class, netem leaf and u32 filter per rule (unmatched traffic goes to HTB's direct
/// queue, unshaped). Ingress rules shape an IFB device fed by an ingress qdisc and a mirred filter.
/// State is compared as normalized signatures of qdiscs and filters read with <c>tc -j</c>.
/// </summary>
internal static class TcPlanner
{
    public const string QdiscKind = "qdisc";
    public const string FilterKind = "filter";
    public const string LinkKind = "link";
    public const string IngressKind = "ingress";
    public const string ForeignKind = "foreign";
    private const string DefaultClassRate = "10gbit";

    private sealed record Device(string? Ns, string Name, string? IngressOf, List<(ShapingRule Rule, string RuleName)> Rules);

    /// <summary>The owner's recorded handle in <paramref name="current"/>, or <see langword="null"/> when it holds none.</summary>
    public static int? OwnedHandle(ShapingState current)
    {
        ArgumentNullException.ThrowIfNull(current);
        var record = current.Objects.FirstOrDefault(o => o.Kind == TcHandleRecord.OwnedKind);
        return record is not null && int.TryParse(record.Location, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var h) ? h : null;
    }

    /// <summary>
    /// A free handle slot for <paramref name="owner"/>: its preferred slot, or the next one that no other
    /// owner's record and no qdisc in the kernel uses.
    /// </summary>
    /// <exception cref="ShapingException">Every slot of the reserved range is taken.</exception>
    public static int Allocate(string owner, ShapingState current)
    {
        var taken = new HashSet<int>();
        foreach (var o in current.ForeignObjects.Where(o => o.Kind is TcHandleRecord.ForeignKind or TcHandleRecord.HandleInUseKind))
        {
            if (int.TryParse(o.Location, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var major) &&
                major >= OwnerNames.FirstHandle && major < OwnerNames.FirstHandle + (OwnerNames.HandleSlots * OwnerNames.HandlesPerOwner))
            {
                taken.Add((major - OwnerNames.FirstHandle) / OwnerNames.HandlesPerOwner);
            }
        }

        var preferred = (OwnerNames.PreferredHandle(owner) - OwnerNames.FirstHandle) / OwnerNames.HandlesPerOwner;
        for (var i = 0; i < OwnerNames.HandleSlots; i++)
        {
            var slot = (preferred + i) % OwnerNames.HandleSlots;
            if (!taken.Contains(slot))
            {
                return OwnerNames.FirstHandle + (slot * OwnerNames.HandlesPerOwner);
            }
        }

        throw new ShapingException($"Every tc handle slot ({OwnerNames.HandleSlots}) of the reserved range is taken; clear an owner first.");
    }

    /// <summary>The signatures (kind, device, text) the plan wants, per namespace, under root handle <paramref name="h"/>.</summary>
    public static IReadOnlyList<KernelObject> Desired(ShapingPlan plan, int h)
    {
        var result = new List<KernelObject>();
        foreach (var d in Devices(plan, h))
        {
            if (d.IngressOf is not null)
            {
                result.Add(new KernelObject(d.Ns, LinkKind, d.Name, "ifb " + d.IngressOf));
                result.Add(new KernelObject(d.Ns, IngressKind, d.IngressOf, "ingress redirect " + d.Name));
            }

            if (IsSingle(d))
            {
                result.Add(new KernelObject(d.Ns, QdiscKind, d.Name, $"root {Hex(h)}: {NetemSignature(d.Rules[0].Rule.Impairment)}"));
                continue;
            }

            result.Add(new KernelObject(d.Ns, QdiscKind, d.Name, $"root {Hex(h)}: htb"));
            for (var k = 1; k <= d.Rules.Count; k++)
            {
                var im = d.Rules[k - 1].Rule.Impairment;
                if (HasNetem(im))
                {
                    result.Add(new KernelObject(d.Ns, QdiscKind, d.Name, $"parent {Hex(h)}:{Hex(k)} {Hex(h + k)}: {NetemSignature(im)}"));
                }

                result.Add(new KernelObject(d.Ns, FilterKind, d.Name, FilterSignature(k, $"{Hex(h)}:{Hex(k)}", Keys(d.Rules[k - 1].Rule.Match))));
            }
        }

        return result;
    }

    /// <summary>
    /// The commands that turn <paramref name="current"/> into <paramref name="plan"/>. Pure. An owner that
    /// holds no handle yet claims one first (<see cref="TcHandleRecord.Claim"/>); the handle is given back
    /// by <see cref="TcHandleRecord.Release"/> once a clear has removed everything (see the shaper).
    /// </summary>
    /// <exception cref="ForeignQdiscException">A device's root (or ingress) qdisc belongs to someone else.</exception>
    public static IReadOnlyList<CommandLine> Plan(ShapingPlan plan, ShapingState current, string recordDirectory = TcHandleRecord.DefaultDirectory)
    {
        var commands = new List<CommandLine>();
        var owned = OwnedHandle(current);
        var h = owned ?? (plan.Rules.Count > 0 ? Allocate(plan.Owner, current) : 0);
        var desired = plan.Rules.Count > 0 ? Desired(plan, h) : [];
        var devices = Devices(plan, h);

        // Refuse before anything runs.
        foreach (var f in current.ForeignObjects.Concat(current.Objects).Where(o => o.Kind == ForeignKind))
        {
            var onDesiredRoot = devices.Any(d => d.Ns == f.NetworkNamespace && d.Name == f.Location && f.Text.StartsWith("root", StringComparison.Ordinal));
            var onDesiredIngress = devices.Any(d => d.Ns == f.NetworkNamespace && d.IngressOf == f.Location && f.Text.StartsWith("ingress", StringComparison.Ordinal));
            if (onDesiredRoot || onDesiredIngress)
            {
                throw new ForeignQdiscException($"Device {f.Location} in namespace '{f.NetworkNamespace ?? "(current)"}' has a qdisc this owner does not own ({f.Text}); it is never overwritten. Remove it first.");
            }
        }

        CommandLine Tc(string? ns, params string[] args) => CommandLine.Of("tc", args).InNamespace(ns);
        CommandLine Ip(string? ns, params string[] args) => CommandLine.Of("ip", args).InNamespace(ns);

        if (owned is null && plan.Rules.Count > 0)
        {
            commands.AddRange(TcHandleRecord.Claim(recordDirectory, h, plan.Owner));
        }

        // Remove what is owned but no longer wanted (trees first, then ingress plumbing, then IFB links).
        var ownedDevices = current.Objects.Where(o => o.Kind == QdiscKind && o.Text.StartsWith("root", StringComparison.Ordinal))
            .Select(o => (o.NetworkNamespace, o.Location)).Distinct().ToList();
        foreach (var (ns, dev) in ownedDevices)
        {
            var want = desired.Where(o => o.NetworkNamespace == ns && o.Location == dev && o.Kind is QdiscKind or FilterKind).Select(o => o.Kind + " " + o.Text).Order(StringComparer.Ordinal);
            var have = current.Objects.Where(o => o.NetworkNamespace == ns && o.Location == dev && o.Kind is QdiscKind or FilterKind).Select(o => o.Kind + " " + o.Text).Order(StringComparer.Ordinal);
            if (!want.SequenceEqual(have, StringComparer.Ordinal))
            {
                commands.Add(Tc(ns, "qdisc", "del", "dev", dev, "root"));
            }
        }

        foreach (var ing in current.Objects.Where(o => o.Kind == IngressKind))
        {
            if (!desired.Any(o => o.Kind == IngressKind && o.NetworkNamespace == ing.NetworkNamespace && o.Location == ing.Location))
            {
                commands.Add(Tc(ing.NetworkNamespace, "qdisc", "del", "dev", ing.Location, "ingress"));
            }
        }

        foreach (var link in current.Objects.Where(o => o.Kind == LinkKind))
        {
            if (!desired.Any(o => o.Kind == LinkKind && o.NetworkNamespace == link.NetworkNamespace && o.Location == link.Location))
            {
                commands.Add(Ip(link.NetworkNamespace, "link", "del", link.Location));
            }
        }

        // Build what is wanted but missing or different.
        foreach (var d in devices)
        {
            if (d.IngressOf is not null)
            {
                if (!current.Objects.Any(o => o.Kind == LinkKind && o.NetworkNamespace == d.Ns && o.Location == d.Name))
                {
                    commands.Add(Ip(d.Ns, "link", "add", d.Name, "type", "ifb"));
                    commands.Add(Ip(d.Ns, "link", "set", d.Name, "up"));
                }

                if (!current.Objects.Any(o => o.Kind == IngressKind && o.NetworkNamespace == d.Ns && o.Location == d.IngressOf))
                {
                    commands.Add(Tc(d.Ns, "qdisc", "add", "dev", d.IngressOf, "handle", "ffff:", "ingress"));
                    commands.Add(Tc(d.Ns, "filter", "add", "dev", d.IngressOf, "parent", "ffff:", "protocol", "all", "prio", "1",
                        "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", d.Name));
                }
            }

            var want = desired.Where(o => o.NetworkNamespace == d.Ns && o.Location == d.Name && o.Kind is QdiscKind or FilterKind).Select(o => o.Kind + " " + o.Text).Order(StringComparer.Ordinal);
            var have = current.Objects.Where(o => o.NetworkNamespace == d.Ns && o.Location == d.Name && o.Kind is QdiscKind or FilterKind).Select(o => o.Kind + " " + o.Text).Order(StringComparer.Ordinal);
            if (want.SequenceEqual(have, StringComparer.Ordinal))
            {
                continue;
            }

            if (IsSingle(d))
            {
                commands.Add(Tc(d.Ns, ["qdisc", "replace", "dev", d.Name, "root", "handle", Hex(h) + ":", "netem", .. NetemArgs(d.Rules[0].Rule.Impairment)]));
                continue;
            }

            commands.Add(Tc(d.Ns, "qdisc", "replace", "dev", d.Name, "root", "handle", Hex(h) + ":", "htb"));
            for (var k = 1; k <= d.Rules.Count; k++)
            {
                var rule = d.Rules[k - 1].Rule;
                var classId = $"{Hex(h)}:{Hex(k)}";
                var rate = rule.Impairment.RateBitsPerSecond is { } r ? r.ToString(CultureInfo.InvariantCulture) + "bit" : DefaultClassRate;
                commands.Add(Tc(d.Ns, "class", "replace", "dev", d.Name, "parent", Hex(h) + ":", "classid", classId, "htb", "rate", rate, "ceil", rate, "quantum", "60000"));
                if (HasNetem(rule.Impairment))
                {
                    commands.Add(Tc(d.Ns, ["qdisc", "replace", "dev", d.Name, "parent", classId, "handle", Hex(h + k) + ":", "netem", .. NetemArgs(rule.Impairment)]));
                }

                commands.Add(Tc(d.Ns, ["filter", "add", "dev", d.Name, "parent", Hex(h) + ":", "protocol", "ip", "prio", k.ToString(CultureInfo.InvariantCulture), "u32", .. MatchArgs(rule.Match), "flowid", classId]));
            }
        }

        return commands;
    }

    /// <summary>
    /// The objects of the owner with root handle <paramref name="h"/> (<see langword="null"/>: it holds none)
    /// in the output of <c>tc -j qdisc show</c> (all devices), foreign roots and ingress qdiscs in the way,
    /// and every other major handle in use (<see cref="TcHandleRecord.HandleInUseKind"/>, never allocated).
    /// </summary>
    public static List<KernelObject> ParseQdiscs(int? h, string? ns, string qdiscJson, IReadOnlyCollection<string> ifbLinks)
    {
        var result = new List<KernelObject>();
        if (string.IsNullOrWhiteSpace(qdiscJson))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(qdiscJson);
        foreach (var q in doc.RootElement.EnumerateArray())
        {
            var kind = Str(q, "kind");
            var handle = Str(q, "handle");
            var dev = Str(q, "dev");
            var parent = Str(q, "parent");
            var isRoot = q.TryGetProperty("root", out var rootProp) && rootProp.ValueKind == JsonValueKind.True;
            if (dev is null || handle is null || kind is null)
            {
                continue;
            }

            var major = ParseMajor(handle);
            var ours = h is { } mine && major >= mine && major < mine + OwnerNames.HandlesPerOwner;
            if (!ours && major > 0)
            {
                result.Add(new KernelObject(ns, TcHandleRecord.HandleInUseKind, Hex(major), dev));
            }

            if (kind == "ingress")
            {
                var ourIfb = h is { } rootHandle ? OwnerNames.IfbDevice(rootHandle, dev) : null;
                if (ourIfb is not null && ifbLinks.Contains(ourIfb))
                {
                    result.Add(new KernelObject(ns, IngressKind, dev, "ingress redirect " + ourIfb));
                }
                else
                {
                    result.Add(new KernelObject(ns, ForeignKind, dev, "ingress"));
                }

                continue;
            }

            if (isRoot && !ours)
            {
                if (handle != "0:")
                {
                    result.Add(new KernelObject(ns, ForeignKind, dev, $"root {handle} {kind}"));
                }

                continue;
            }

            if (!ours)
            {
                continue;
            }

            var sig = kind == "netem" ? NetemSignature(q.TryGetProperty("options", out var o) ? o : default) : kind;
            result.Add(new KernelObject(ns, QdiscKind, dev, isRoot ? $"root {handle} {sig}" : $"parent {parent} {handle} {sig}"));
        }

        return result;
    }

    /// <summary>The filters in the output of <c>tc -j filter show dev D parent H:</c>.</summary>
    public static IEnumerable<KernelObject> ParseFilters(string? ns, string dev, string filterJson)
    {
        if (string.IsNullOrWhiteSpace(filterJson))
        {
            yield break;
        }

        using var doc = JsonDocument.Parse(filterJson);
        foreach (var f in doc.RootElement.EnumerateArray())
        {
            if (!f.TryGetProperty("options", out var o) || Str(o, "flowid") is not { } flowid)
            {
                continue;
            }

            var keys = new List<string>();
            foreach (var p in o.EnumerateObject())
            {
                if (p.NameEquals("match"))
                {
                    keys.Add($"{Str(p.Value, "value")}/{Str(p.Value, "mask")}@{(p.Value.TryGetProperty("off", out var off) ? off.GetInt32() : 0).ToString(CultureInfo.InvariantCulture)}");
                }
            }

            var pref = f.TryGetProperty("pref", out var pr) ? pr.GetInt32() : 0;
            yield return new KernelObject(ns, FilterKind, dev, FilterSignature(pref, flowid, keys));
        }
    }

    /// <summary>The <c>netem</c> arguments for an impairment (without rate: rate is the HTB class's job).</summary>
    public static List<string> NetemArgs(Impairment im)
    {
        var a = new List<string> { "limit", im.Limit.ToString(CultureInfo.InvariantCulture) };
        if (im.Delay > TimeSpan.Zero || im.Jitter > TimeSpan.Zero)
        {
            a.AddRange(["delay", Time(im.Delay)]);
            if (im.Jitter > TimeSpan.Zero)
            {
                a.Add(Time(im.Jitter));
                if (im.DelayCorrelationPercent > 0)
                {
                    a.Add(Pct(im.DelayCorrelationPercent));
                }

                // Uniform is netem's default and has no table: "distribution uniform" makes tc look for a
                // uniform.dist that iproute2 does not ship (seen on the lab's netem-host guest), so it is left out.
                if (im.Distribution != DelayDistribution.Uniform)
                {
                    a.AddRange(["distribution", im.Distribution switch
                    {
                        DelayDistribution.Normal => "normal",
                        DelayDistribution.Pareto => "pareto",
                        _ => "paretonormal",
                    }]);
                }
            }
        }

        if (im.LossPercent > 0) { a.AddRange(["loss", "random", Pct(im.LossPercent)]); }
        if (im.DuplicatePercent > 0) { a.AddRange(["duplicate", Pct(im.DuplicatePercent)]); }
        if (im.CorruptPercent > 0) { a.AddRange(["corrupt", Pct(im.CorruptPercent)]); }
        if (im.ReorderPercent > 0) { a.AddRange(["reorder", Pct(im.ReorderPercent)]); }
        return a;
    }

    /// <summary>A normalized netem description from the model.</summary>
    public static string NetemSignature(Impairment im) => NetemSignature(
        im.Limit, Micros(im.Delay), Micros(im.Jitter), im.LossPercent, im.DuplicatePercent, im.CorruptPercent, im.ReorderPercent);

    /// <summary>A normalized netem description from <c>tc -j</c> options (seconds, fractions; missing means zero).</summary>
    public static string NetemSignature(JsonElement options)
    {
        double Num(string obj, string field) =>
            options.ValueKind == JsonValueKind.Object && options.TryGetProperty(obj, out var o) && o.ValueKind == JsonValueKind.Object &&
            o.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;
        var limit = options.ValueKind == JsonValueKind.Object && options.TryGetProperty("limit", out var l) ? l.GetInt32() : 1000;
        return NetemSignature(limit, (long)Math.Round(Num("delay", "delay") * 1e6), (long)Math.Round(Num("delay", "jitter") * 1e6),
            Num("loss-random", "loss") * 100, Num("duplicate", "duplicate") * 100, Num("corrupt", "corrupt") * 100, Num("reorder", "reorder") * 100);
    }

    private static string NetemSignature(int limit, long delayUs, long jitterUs, double loss, double dup, double corrupt, double reorder) =>
        string.Create(CultureInfo.InvariantCulture,
            $"netem limit={limit} delay={delayUs}us jitter={jitterUs}us loss={loss:0.###} duplicate={dup:0.###} corrupt={corrupt:0.###} reorder={reorder:0.###}");

    /// <summary>The u32 keys (value/mask@offset, as tc prints them) of a match; tc merges keys at the same offset.</summary>
    public static List<string> Keys(TrafficMatch m)
    {
        var keys = new List<(int Off, uint Value, uint Mask)>();
        void Add(int off, uint value, uint mask)
        {
            var i = keys.FindIndex(k => k.Off == off);
            if (i >= 0)
            {
                keys[i] = (off, keys[i].Value | value, keys[i].Mask | mask);
            }
            else
            {
                keys.Add((off, value, mask));
            }
        }

        if (m.Destination is { } d) { Add(16, Prefix(d).Value, Prefix(d).Mask); }
        if (m.Source is { } s) { Add(12, Prefix(s).Value, Prefix(s).Mask); }
        if (Proto(m.Protocol) is { } p) { Add(8, (uint)p << 16, 0x00ff0000); }
        if (m.SourcePort is { } sp) { Add(20, (uint)sp << 16, 0xffff0000); }
        if (m.DestinationPort is { } dp) { Add(20, (uint)dp, 0x0000ffff); }
        if (keys.Count == 0) { keys.Add((0, 0, 0)); }
        return [.. keys.Select(k => $"{k.Value:x}/{k.Mask:x}@{k.Off.ToString(CultureInfo.InvariantCulture)}")];
    }

    private static List<string> MatchArgs(TrafficMatch m)
    {
        var a = new List<string>();
        if (m.Destination is { } d) { a.AddRange(["match", "ip", "dst", d.ToString()]); }
        if (m.Source is { } s) { a.AddRange(["match", "ip", "src", s.ToString()]); }
        if (Proto(m.Protocol) is { } p) { a.AddRange(["match", "ip", "protocol", p.ToString(CultureInfo.InvariantCulture), "0xff"]); }
        if (m.SourcePort is { } sp) { a.AddRange(["match", "ip", "sport", sp.ToString(CultureInfo.InvariantCulture), "0xffff"]); }
        if (m.DestinationPort is { } dp) { a.AddRange(["match", "ip", "dport", dp.ToString(CultureInfo.InvariantCulture), "0xffff"]); }
        if (a.Count == 0) { a.AddRange(["match", "u32", "0", "0"]); }
        return a;
    }

    private static string FilterSignature(int prio, string flowid, IEnumerable<string> keys) =>
        $"prio {prio.ToString(CultureInfo.InvariantCulture)} flowid {flowid} {string.Join(',', keys.Order(StringComparer.Ordinal))}";

    private static int? Proto(TrafficProtocol p) => p switch
    {
        TrafficProtocol.Tcp => 6,
        TrafficProtocol.Udp => 17,
        TrafficProtocol.Icmp => 1,
        _ => null,
    };

    private static (uint Value, uint Mask) Prefix(IPNetwork n)
    {
        var bytes = n.BaseAddress.GetAddressBytes();
        var ip = (uint)((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]);
        var mask = n.PrefixLength == 0 ? 0u : uint.MaxValue << (32 - n.PrefixLength);
        return (ip & mask, mask);
    }

    private static List<Device> Devices(ShapingPlan plan, int h)
    {
        var map = new Dictionary<(string?, string), Device>();
        var order = new List<Device>();
        for (var i = 0; i < plan.Rules.Count; i++)
        {
            var r = plan.Rules[i];
            var ingress = r.Direction == ShapingDirection.Ingress;
            var name = ingress ? OwnerNames.IfbDevice(h, r.Interface) : r.Interface;
            if (!map.TryGetValue((r.NetworkNamespace, name), out var d))
            {
                d = new Device(r.NetworkNamespace, name, ingress ? r.Interface : null, []);
                map[(r.NetworkNamespace, name)] = d;
                order.Add(d);
            }

            d.Rules.Add((r, plan.RuleName(i)));
        }

        return order;
    }

    private static bool IsSingle(Device d) =>
        d.Rules.Count == 1 && d.Rules[0].Rule.Match.IsAll && d.Rules[0].Rule.Impairment.RateBitsPerSecond is null;

    private static bool HasNetem(Impairment im) =>
        (im.RequiredFeatures & ~ShapingFeatures.Rate) != ShapingFeatures.None;

    private static string Hex(int v) => OwnerNames.Hex(v);

    private static long Micros(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMicrosecond;

    private static string Time(TimeSpan t) =>
        t.Ticks % TimeSpan.TicksPerMillisecond == 0
            ? (t.Ticks / TimeSpan.TicksPerMillisecond).ToString(CultureInfo.InvariantCulture) + "ms"
            : Micros(t).ToString(CultureInfo.InvariantCulture) + "us";

    private static string Pct(double p) => p.ToString("0.####", CultureInfo.InvariantCulture) + "%";

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int ParseMajor(string handle)
    {
        var colon = handle.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && int.TryParse(handle.AsSpan(0, colon), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var m) ? m : -1;
    }

    /// <summary>Whether a rule set uses only IPv4 (tc u32 matches here are IPv4 only).</summary>
    public static bool UsesIpv6(ShapingPlan plan) =>
        plan.Rules.Any(r => (r.Match.Destination ?? r.Match.Source)?.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6);
}
