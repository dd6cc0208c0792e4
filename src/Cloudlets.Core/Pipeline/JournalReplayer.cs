using System.Globalization;
using System.Net;
using System.Text.Json;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Pipeline;

/// <summary>Writes and reads a <see cref="MigrationDecision"/> as a journal holds it.</summary>
internal static class JournalDecisions
{
    public static void Write(Utf8JsonWriter j, MigrationDecision d)
    {
        j.WriteStartObject();
        j.WriteString("vm", d.VmName);
        j.WriteNumber("at", d.At.UtcTicks);
        j.WriteNumber("kind", (int)d.Kind);
        j.WriteNumber("reason", (int)d.Reason);
        NullableString(j, "current", d.CurrentHost);
        NullableString(j, "target", d.TargetHost);
        NullableNumber(j, "currentScore", d.CurrentScoreMs);
        NullableNumber(j, "targetScore", d.TargetScoreMs);
        j.WriteNumber("windows", d.ConfirmedWindows);
        j.WriteNumber("heldBy", (int)d.HeldBy);
        j.WriteString("explanation", d.Explanation);
        j.WriteStartArray("candidates");
        foreach (var c in d.Candidates)
        {
            j.WriteStartArray();
            j.WriteStringValue(c.Host);
            j.WriteNumberValue((int)c.Status);
            if (c.ScoreMs is { } s)
            {
                j.WriteNumberValue(s);
            }
            else
            {
                j.WriteNullValue();
            }

            j.WriteBooleanValue(c.IsCurrent);
            j.WriteEndArray();
        }

        j.WriteEndArray();
        j.WriteEndObject();
    }

    public static MigrationDecision Read(JsonElement e)
    {
        var candidates = new List<CandidateScore>();
        foreach (var c in e.GetProperty("candidates").EnumerateArray())
        {
            candidates.Add(new CandidateScore(
                c[0].GetString()!,
                (CandidateStatus)c[1].GetInt32(),
                c[2].ValueKind == JsonValueKind.Null ? null : c[2].GetDouble(),
                c[3].GetBoolean()));
        }

        return new MigrationDecision(
            e.GetProperty("vm").GetString()!,
            new DateTimeOffset(e.GetProperty("at").GetInt64(), TimeSpan.Zero),
            (DecisionKind)e.GetProperty("kind").GetInt32(),
            (DecisionReason)e.GetProperty("reason").GetInt32(),
            OptionalString(e, "current"),
            OptionalString(e, "target"),
            OptionalDouble(e, "currentScore"),
            OptionalDouble(e, "targetScore"),
            e.GetProperty("windows").GetInt32(),
            candidates,
            e.GetProperty("explanation").GetString()!)
        {
            HeldBy = (PlacementRuleKind)e.GetProperty("heldBy").GetInt32(),
        };
    }

    /// <summary>Adds a line per differing field of two decisions of one VM in one evaluation.</summary>
    public static void Compare(int evaluation, MigrationDecision recorded, MigrationDecision replayed, List<string> differences)
    {
        var where = string.Create(CultureInfo.InvariantCulture, $"evaluation {evaluation}, vm '{recorded.VmName}'");
        Field("vm", recorded.VmName, replayed.VmName);
        Field("at", recorded.At.UtcTicks, replayed.At.UtcTicks);
        Field("kind", recorded.Kind, replayed.Kind);
        Field("reason", recorded.Reason, replayed.Reason);
        Field("current host", recorded.CurrentHost, replayed.CurrentHost);
        Field("target host", recorded.TargetHost, replayed.TargetHost);
        Field("current score", recorded.CurrentScoreMs, replayed.CurrentScoreMs);
        Field("target score", recorded.TargetScoreMs, replayed.TargetScoreMs);
        Field("confirmed windows", recorded.ConfirmedWindows, replayed.ConfirmedWindows);
        Field("held by", recorded.HeldBy, replayed.HeldBy);
        Field("explanation", recorded.Explanation, replayed.Explanation);
        Field("candidate count", recorded.Candidates.Count, replayed.Candidates.Count);
        for (var i = 0; i < Math.Min(recorded.Candidates.Count, replayed.Candidates.Count); i++)
        {
            Field(string.Create(CultureInfo.InvariantCulture, $"candidate {i}"), recorded.Candidates[i], replayed.Candidates[i]);
        }

        void Field<T>(string name, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b))
            {
                differences.Add(string.Create(CultureInfo.InvariantCulture, $"{where}: {name} recorded '{a}', replayed '{b}'"));
            }
        }
    }

    private static void NullableString(Utf8JsonWriter j, string name, string? value)
    {
        if (value is null)
        {
            j.WriteNull(name);
        }
        else
        {
            j.WriteString(name, value);
        }
    }

    private static void NullableNumber(Utf8JsonWriter j, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            j.WriteNumber(name, v);
        }
        else
        {
            j.WriteNull(name);
        }
    }

    private static string? OptionalString(JsonElement e, string name) =>
        e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetString();

    private static double? OptionalDouble(JsonElement e, string name) =>
        e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetDouble();
}

/// <summary>The engine of <see cref="PipelineJournal.Replay"/>: the pipeline's evaluation step, fed from the journal instead of the hosts.</summary>
internal static class JournalReplayer
{
    public static PipelineJournalReplay Run(TextReader reader, IMigrationPolicy policy)
    {
        var recorded = new List<MigrationDecision>();
        var replayed = new List<MigrationDecision>();
        var differences = new List<string>();
        FleetSnapshot? snapshot = null;
        DecisionBuffer? buffer = null;
        LatencyWindows? windows = null;
        string[] probeTargets = [];
        var evaluations = 0;
        var samples = 0;
        var evaluated = false; // an "e" line was replayed and its "d" line has not come yet
        var number = 0;
        while (reader.ReadLine() is { } text)
        {
            number++;
            if (text.Length == 0)
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(text);
                var line = document.RootElement;
                var kind = line.GetProperty("k").GetString();
                if (snapshot is null && kind != "start")
                {
                    throw new PipelineJournalFormatException($"line {number}: a journal starts with its \"start\" line, not \"{kind}\".");
                }

                switch (kind)
                {
                    case "start":
                        if (snapshot is not null)
                        {
                            throw new PipelineJournalFormatException($"line {number}: a second \"start\" line; a journal holds one pipeline run.");
                        }

                        var format = line.GetProperty("format").GetInt32();
                        if (format != PipelineJournal.FormatVersion)
                        {
                            throw new PipelineJournalFormatException($"line {number}: format {format}; this version reads format {PipelineJournal.FormatVersion}.");
                        }

                        var hosts = line.GetProperty("hosts").EnumerateArray().Select(h => (Name: h.GetProperty("name").GetString()!, Target: h.GetProperty("probeTarget").GetString()!)).ToArray();
                        var vms = line.GetProperty("vms").EnumerateArray().Select(v => new VmDefinition(
                            v.GetProperty("name").GetString()!,
                            [.. v.GetProperty("users").EnumerateArray().Select(u => new VmUser(u.GetProperty("vantagePoint").GetString()!, u.GetProperty("weight").GetDouble()))])).ToArray();
                        probeTargets = [.. hosts.Select(h => h.Target)];
                        snapshot = new FleetSnapshot([.. hosts.Select(h => h.Name)], vms);
                        snapshot.SetRules(ReadRules(line.GetProperty("rules")));
                        buffer = new DecisionBuffer(snapshot, recordCandidates: true);
                        windows = new LatencyWindows(line.GetProperty("sampleWindow").GetInt32());
                        break;
                    case "s":
                        samples++;
                        windows!.Add(ReadSample(line));
                        break;
                    case "rules":
                        snapshot!.SetRules(ReadRules(line.GetProperty("rules")));
                        break;
                    case "e":
                        Fill(snapshot!, windows!, probeTargets, line);
                        policy.Evaluate(snapshot!, buffer!);
                        evaluated = true;
                        break;
                    case "d":
                        if (!evaluated)
                        {
                            throw new PipelineJournalFormatException($"line {number}: decisions without the evaluation (\"e\" line) they came from.");
                        }

                        evaluated = false;
                        var held = line.GetProperty("held").EnumerateArray().Select(h => (Vm: h[0].GetInt32(), Why: h[1].GetString()!)).ToArray();
                        foreach (var (vm, _) in held)
                        {
                            buffer!.HoldBack(vm, DecisionReason.MigrationLimitReached);
                        }

                        snapshot!.AdvanceConfirmations(buffer!);
                        var theirs = line.GetProperty("decisions").EnumerateArray().Select(JournalDecisions.Read).ToArray();
                        var ours = new MigrationDecision[snapshot.VmCount];
                        for (var vm = 0; vm < ours.Length; vm++)
                        {
                            ours[vm] = buffer!.ToDecision(snapshot, vm);
                        }

                        // As the pipeline does: the executor's words follow the policy's.
                        foreach (var (vm, why) in held)
                        {
                            ours[vm] = ours[vm] with { Explanation = ours[vm].Explanation + " The executor said: " + why };
                        }

                        evaluations++;
                        if (theirs.Length != ours.Length)
                        {
                            differences.Add(string.Create(CultureInfo.InvariantCulture, $"evaluation {evaluations}: {theirs.Length} decisions recorded, {ours.Length} replayed"));
                        }

                        for (var vm = 0; vm < Math.Min(theirs.Length, ours.Length); vm++)
                        {
                            JournalDecisions.Compare(evaluations, theirs[vm], ours[vm], differences);
                        }

                        recorded.AddRange(theirs);
                        replayed.AddRange(ours);
                        break;
                    default:
                        throw new PipelineJournalFormatException($"line {number}: unknown kind \"{kind}\".");
                }
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException or ArgumentException)
            {
                throw new PipelineJournalFormatException($"line {number}: {ex.Message}", ex);
            }
        }

        return snapshot is null
            ? throw new PipelineJournalFormatException("The journal is empty: it has no \"start\" line.")
            : new PipelineJournalReplay(recorded, replayed, differences, evaluations, samples);
    }

    private static void Fill(FleetSnapshot snapshot, LatencyWindows windows, string[] probeTargets, JsonElement line)
    {
        snapshot.Now = new DateTimeOffset(line.GetProperty("now").GetInt64(), TimeSpan.Zero);
        var hosts = line.GetProperty("hosts");
        if (hosts.GetArrayLength() != snapshot.HostCount)
        {
            throw new PipelineJournalFormatException($"{hosts.GetArrayLength()} hosts in an evaluation of a fleet of {snapshot.HostCount}.");
        }

        var h = 0;
        foreach (var host in hosts.EnumerateArray())
        {
            snapshot.SetHost(h, (HostAvailability)host[0].GetInt32(), host[1].GetInt64(), host[2].GetInt32());
            for (var p = 0; p < snapshot.VantagePointCount; p++)
            {
                snapshot.SetLatency(p, h, windows.Summarize(snapshot.VantagePointName(p), probeTargets[h]));
            }

            h++;
        }

        for (var a = 0; a < snapshot.HostCount; a++)
        {
            for (var b = 0; b < snapshot.HostCount; b++)
            {
                snapshot.SetBandwidth(a, b, double.NaN);
            }
        }

        // The transfer rates migrations measured, [source, destination, bytes/s] (absent: none measured).
        if (line.TryGetProperty("bw", out var rates))
        {
            foreach (var rate in rates.EnumerateArray())
            {
                int a = rate[0].GetInt32(), b = rate[1].GetInt32();
                if ((uint)a >= (uint)snapshot.HostCount || (uint)b >= (uint)snapshot.HostCount)
                {
                    throw new PipelineJournalFormatException($"A transfer rate between hosts {a} and {b} in an evaluation of a fleet of {snapshot.HostCount} hosts.");
                }

                snapshot.SetBandwidth(a, b, rate[2].GetDouble());
            }
        }

        var vms = line.GetProperty("vms");
        if (vms.GetArrayLength() != snapshot.VmCount)
        {
            throw new PipelineJournalFormatException($"{vms.GetArrayLength()} VMs in an evaluation of a fleet of {snapshot.VmCount}.");
        }

        var v = 0;
        foreach (var vm in vms.EnumerateArray())
        {
            // The dirty rate a migration measured: absent in a journal of an earlier pipeline, which had none.
            var dirty = vm.GetArrayLength() > 6 && vm[6].ValueKind == JsonValueKind.Number ? vm[6].GetDouble() : double.NaN;
            snapshot.SetPlacement(v, vm[0].GetInt32(), vm[1].GetInt64(), vm[2].GetInt32(), dirty);
            DateTimeOffset? last = vm[3].ValueKind == JsonValueKind.Null ? null : new DateTimeOffset(vm[3].GetInt64(), TimeSpan.Zero);
            snapshot.SetMigrationHistory(v, last, vm[4].GetBoolean(), vm[5].GetInt32());
            v++;
        }
    }

    private static LatencySample ReadSample(JsonElement line)
    {
        var port = line.TryGetProperty("port", out var p) ? p.GetInt32() : (int?)null;
        var target = new ProbeTarget(line.GetProperty("target").GetString()!, IPAddress.Parse(line.GetProperty("address").GetString()!), port);
        var rtt = line.TryGetProperty("rtt", out var r) ? TimeSpan.FromTicks(r.GetInt64()) : (TimeSpan?)null;
        return new LatencySample(
            line.GetProperty("vp").GetString()!,
            target,
            new DateTimeOffset(line.GetProperty("sent").GetInt64(), TimeSpan.Zero),
            rtt,
            (ProbeStatus)line.GetProperty("status").GetInt32());
    }

    private static PlacementRules ReadRules(JsonElement e) => new()
    {
        DrainedHosts = Strings(e.GetProperty("drainedHosts")),
        PinnedVms = Strings(e.GetProperty("pinnedVms")),
        AffinityGroups = Groups(e.GetProperty("affinityGroups")),
        AntiAffinityGroups = Groups(e.GetProperty("antiAffinityGroups")),
        ExcludedHosts = e.GetProperty("excludedHosts").EnumerateObject().ToDictionary(x => x.Name, x => (IReadOnlyList<string>)Strings(x.Value), StringComparer.Ordinal),
    };

    private static PlacementGroup[] Groups(JsonElement e) =>
        [.. e.EnumerateArray().Select(g => new PlacementGroup { Name = g.GetProperty("name").GetString()!, Vms = Strings(g.GetProperty("vms")) })];

    private static string[] Strings(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetString()!)];
}
