using System.Buffers;
using System.Text;
using System.Text.Json;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Probing;

namespace Cloudlets.Core.Pipeline;

/// <summary>
/// A record of everything a pipeline's decisions depend on, written as it runs
/// (<see cref="MigrationPipelineBuilder.WithJournal"/>), so that <see cref="Replay"/> can decide again
/// from it and show that the same inputs give the same decisions: every latency sample in the order
/// the pipeline took it; per evaluation the clock, each host's availability and room and each VM's
/// placement, size and migration history as the pipeline read them from the hosts and its executor;
/// the moves the executor held back and why; placement-rule changes; and the decisions that came
/// out. The format is JSON lines, versioned by the first line (<c>"format":1</c>); times and round
/// trips are in .NET ticks (100 ns), so nothing is rounded.
/// </summary>
/// <remarks>
/// The pipeline writes under its own lock, in the order things happened; the writer is not owned
/// unless <c>leaveOpen</c> is <see langword="false"/>. Writing costs a few hundred bytes per sample and
/// per host and VM per window: meant for diagnosis and tests, not for months of a large fleet.
/// </remarks>
public sealed class PipelineJournal : IDisposable
{
    /// <summary>The format this version writes and reads.</summary>
    public const int FormatVersion = 1;

    private readonly TextWriter _writer;
    private readonly bool _leaveOpen;
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _json;
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>A journal written to <paramref name="writer"/>.</summary>
    /// <param name="writer">Where the lines go.</param>
    /// <param name="leaveOpen">Whether <see cref="Dispose"/> leaves <paramref name="writer"/> open (it flushes it either way).</param>
    public PipelineJournal(TextWriter writer, bool leaveOpen = false)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _leaveOpen = leaveOpen;
        _json = new Utf8JsonWriter(_buffer);
    }

    /// <summary>How many lines were written.</summary>
    public long LineCount { get; private set; }

    /// <summary>Flushes the writer.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _writer.Flush();
            }
        }
    }

    /// <summary>Flushes, and closes the writer unless it was left open.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _writer.Flush();
            _json.Dispose();
            if (!_leaveOpen)
            {
                _writer.Dispose();
            }
        }
    }

    internal void Start(DateTimeOffset at, int sampleWindow, IReadOnlyList<(string Name, string ProbeTarget)> hosts, IReadOnlyList<VmDefinition> vms, PlacementRules rules) => Line(j =>
    {
        j.WriteString("k", "start");
        j.WriteNumber("format", FormatVersion);
        j.WriteNumber("at", at.UtcTicks);
        j.WriteNumber("sampleWindow", sampleWindow);
        j.WriteStartArray("hosts");
        foreach (var (name, target) in hosts)
        {
            j.WriteStartObject();
            j.WriteString("name", name);
            j.WriteString("probeTarget", target);
            j.WriteEndObject();
        }

        j.WriteEndArray();
        j.WriteStartArray("vms");
        foreach (var vm in vms)
        {
            j.WriteStartObject();
            j.WriteString("name", vm.Name);
            j.WriteStartArray("users");
            foreach (var u in vm.Users)
            {
                j.WriteStartObject();
                j.WriteString("vantagePoint", u.VantagePoint);
                j.WriteNumber("weight", u.Weight);
                j.WriteEndObject();
            }

            j.WriteEndArray();
            j.WriteEndObject();
        }

        j.WriteEndArray();
        j.WritePropertyName("rules");
        WriteRules(j, rules);
    });

    internal void Sample(in LatencySample sample)
    {
        var s = sample;
        Line(j =>
        {
            j.WriteString("k", "s");
            j.WriteString("vp", s.VantagePoint);
            j.WriteString("target", s.Target.Name);
            j.WriteString("address", s.Target.Address.ToString());
            if (s.Target.Port is { } port)
            {
                j.WriteNumber("port", port);
            }

            j.WriteNumber("sent", s.SentAt.UtcTicks);
            if (s.RoundTripTime is { } rtt)
            {
                j.WriteNumber("rtt", rtt.Ticks);
            }

            j.WriteNumber("status", (int)s.Status);
        });
    }

    internal void Rules(DateTimeOffset at, PlacementRules rules) => Line(j =>
    {
        j.WriteString("k", "rules");
        j.WriteNumber("at", at.UtcTicks);
        j.WritePropertyName("rules");
        WriteRules(j, rules);
    });

    /// <summary>What an evaluation read, right after the pipeline filled the snapshot and before the policy ran.</summary>
    internal void Inputs(FleetSnapshot snapshot) => Line(j =>
    {
        j.WriteString("k", "e");
        j.WriteNumber("now", snapshot.Now.UtcTicks);
        j.WriteStartArray("hosts");
        for (var h = 0; h < snapshot.HostCount; h++)
        {
            j.WriteStartArray();
            j.WriteNumberValue((int)snapshot.AvailabilityOf(h));
            j.WriteNumberValue(snapshot.FreeMemoryBytesOf(h));
            j.WriteNumberValue(snapshot.FreeVCpusOf(h));
            j.WriteEndArray();
        }

        j.WriteEndArray();
        j.WriteStartArray("vms");
        for (var v = 0; v < snapshot.VmCount; v++)
        {
            j.WriteStartArray();
            j.WriteNumberValue(snapshot.PlacementOf(v));
            j.WriteNumberValue(snapshot.MemoryBytesOf(v));
            j.WriteNumberValue(snapshot.VCpusOf(v));
            if (snapshot.LastMoveOf(v) is { } last)
            {
                j.WriteNumberValue(last.UtcTicks);
            }
            else
            {
                j.WriteNullValue();
            }

            j.WriteBooleanValue(snapshot.IsMigrating(v));
            j.WriteNumberValue(snapshot.InFlightDestinationOf(v));
            if (!double.IsNaN(snapshot.DirtyRateOf(v)))
            {
                j.WriteNumberValue(snapshot.DirtyRateOf(v));
            }

            j.WriteEndArray();
        }

        j.WriteEndArray();
        var anyRate = false;
        for (var a = 0; a < snapshot.HostCount; a++)
        {
            for (var b = 0; b < snapshot.HostCount; b++)
            {
                if (double.IsNaN(snapshot.BandwidthOf(a, b)))
                {
                    continue;
                }

                if (!anyRate)
                {
                    j.WriteStartArray("bw");
                    anyRate = true;
                }

                j.WriteStartArray();
                j.WriteNumberValue(a);
                j.WriteNumberValue(b);
                j.WriteNumberValue(snapshot.BandwidthOf(a, b));
                j.WriteEndArray();
            }
        }

        if (anyRate)
        {
            j.WriteEndArray();
        }
    });

    /// <summary>What the executor held back and the decisions the evaluation published.</summary>
    internal void Outputs(IReadOnlyList<(int Vm, string Why)>? held, IReadOnlyList<MigrationDecision> decisions) => Line(j =>
    {
        j.WriteString("k", "d");
        j.WriteStartArray("held");
        foreach (var (vm, why) in held ?? [])
        {
            j.WriteStartArray();
            j.WriteNumberValue(vm);
            j.WriteStringValue(why);
            j.WriteEndArray();
        }

        j.WriteEndArray();
        j.WriteStartArray("decisions");
        foreach (var d in decisions)
        {
            JournalDecisions.Write(j, d);
        }

        j.WriteEndArray();
    });

    /// <summary>
    /// Decides again from a journal: the samples enter the same rolling windows, every evaluation's
    /// recorded reads fill a snapshot of the same fleet, <paramref name="policy"/> evaluates it, the
    /// recorded held-back moves are held back, the confirmations advance, and each replayed decision
    /// is compared with the recorded one field by field (time, kind, reason, hosts, scores, confirmed
    /// windows, rule, every candidate and the explanation).
    /// </summary>
    /// <param name="journal">The journal's lines.</param>
    /// <param name="policy">The policy the pipeline ran, built with the same options.</param>
    /// <exception cref="PipelineJournalFormatException">The journal is not in a format this version reads; the message names the line.</exception>
    public static PipelineJournalReplay Replay(TextReader journal, IMigrationPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(journal);
        ArgumentNullException.ThrowIfNull(policy);
        return JournalReplayer.Run(journal, policy);
    }

    private void Line(Action<Utf8JsonWriter> write)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            _json.WriteStartObject();
            write(_json);
            _json.WriteEndObject();
            _json.Flush();
            _writer.WriteLine(Encoding.UTF8.GetString(_buffer.WrittenSpan));
            LineCount++;
        }
    }

    private static void WriteRules(Utf8JsonWriter j, PlacementRules rules)
    {
        j.WriteStartObject();
        Strings(j, "drainedHosts", rules.DrainedHosts);
        Strings(j, "pinnedVms", rules.PinnedVms);
        Groups(j, "affinityGroups", rules.AffinityGroups);
        Groups(j, "antiAffinityGroups", rules.AntiAffinityGroups);
        j.WriteStartObject("excludedHosts");
        foreach (var (vm, hosts) in rules.ExcludedHosts)
        {
            Strings(j, vm, hosts);
        }

        j.WriteEndObject();
        j.WriteEndObject();

        static void Groups(Utf8JsonWriter j, string name, IReadOnlyList<PlacementGroup> groups)
        {
            j.WriteStartArray(name);
            foreach (var g in groups)
            {
                j.WriteStartObject();
                j.WriteString("name", g.Name);
                Strings(j, "vms", g.Vms);
                j.WriteEndObject();
            }

            j.WriteEndArray();
        }
    }

    private static void Strings(Utf8JsonWriter j, string name, IReadOnlyList<string> values)
    {
        j.WriteStartArray(name);
        foreach (var v in values)
        {
            j.WriteStringValue(v);
        }

        j.WriteEndArray();
    }
}

/// <summary>A journal that this version cannot read: the message names the line and what is wrong.</summary>
public sealed class PipelineJournalFormatException : Exception
{
    /// <summary>A format error.</summary>
    public PipelineJournalFormatException(string message) : base(message)
    {
    }

    /// <summary>A format error caused by <paramref name="inner"/>.</summary>
    public PipelineJournalFormatException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>A format error.</summary>
    public PipelineJournalFormatException()
    {
    }
}

/// <summary>The outcome of <see cref="PipelineJournal.Replay"/>.</summary>
/// <param name="Recorded">The decisions the pipeline published, as the journal holds them, in order.</param>
/// <param name="Replayed">The decisions the replay made from the same inputs, in order.</param>
/// <param name="Differences">Every field that differs, one line each ("evaluation 12, vm 'web': kind Stay, recorded Move"), or a count mismatch; empty when the replay decided the same.</param>
/// <param name="Evaluations">How many evaluations the journal holds.</param>
/// <param name="Samples">How many samples the journal holds.</param>
public sealed record PipelineJournalReplay(
    IReadOnlyList<MigrationDecision> Recorded,
    IReadOnlyList<MigrationDecision> Replayed,
    IReadOnlyList<string> Differences,
    int Evaluations,
    int Samples)
{
    /// <summary>Whether every replayed decision equals the recorded one.</summary>
    public bool Same => Differences.Count == 0;
}
