using System.Text.Encodings.Web;
using System.Text.Json;
using Cloudlets.Controller.Configuration;
using Cloudlets.Core.Decisions;
using Cloudlets.Core.Election;
using Cloudlets.Core.Pipeline;

namespace Cloudlets.Controller.Audit;

/// <summary>
/// The controller's audit log: one JSON object per line (UTF-8), each with <c>time</c> (wall clock,
/// ISO 8601 UTC) and <c>event</c>, then the event's fields (VM, hosts, reason, figures). Events:
/// <c>decision</c> (a VM's decision changed), <c>migration.started</c>, <c>migration.finished</c>,
/// <c>operator</c> (an operator action, accepted or refused), <c>leadership.acquired</c>/<c>leadership.lost</c>, <c>rules.changed</c>, <c>config.reload</c>,
/// and the controller's own <c>controller.started</c>/<c>stopping</c>/<c>stopped</c>/<c>failed</c>.
/// Each line is written and flushed whole; when the file would pass <see cref="AuditLogOptions.MaxFileBytes"/>
/// it is rotated (<c>PATH</c> → <c>PATH.1</c> → … → <c>PATH.N</c>, the oldest dropped). Thread-safe.
/// Owns its file; a log without a path writes nothing.
/// </summary>
public sealed class AuditLog : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly string? _path;
    private readonly long _maxFileBytes;
    private readonly int _maxFiles;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly System.Buffers.ArrayBufferWriter<byte> _buffer = new(4096);
    private FileStream? _file;
    private bool _disposed;

    /// <summary>Opens (appends to) the log at <see cref="AuditLogOptions.Path"/>, or makes a log that writes nothing when it is <see langword="null"/>.</summary>
    /// <exception cref="Core.Options.OptionsValidationException">The options are invalid.</exception>
    public AuditLog(AuditLogOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Core.Options.OptionsErrors.ValidateAndThrow(options);
        _path = string.IsNullOrEmpty(options.Path) ? null : Path.GetFullPath(options.Path);
        _maxFileBytes = options.MaxFileBytes;
        _maxFiles = options.MaxFiles;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The file written, or <see langword="null"/>.</summary>
    public string? FilePath => _path;

    /// <summary>Whether records are written anywhere.</summary>
    public bool IsEnabled => _path is not null;

    /// <summary>Writes one record: <c>time</c>, <c>event</c>, then the fields <paramref name="fields"/> writes.</summary>
    public void Write(string eventName, Action<Utf8JsonWriter>? fields = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        if (_path is null)
        {
            return;
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _buffer.ResetWrittenCount();
            using (var w = new Utf8JsonWriter(_buffer, WriterOptions))
            {
                w.WriteStartObject();
                w.WriteString("time", _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
                w.WriteString("event", eventName);
                fields?.Invoke(w);
                w.WriteEndObject();
            }

            _buffer.GetSpan(1)[0] = (byte)'\n';
            _buffer.Advance(1);
            var file = _file ??= Open(_path);
            if (file.Length > 0 && file.Length + _buffer.WrittenCount > _maxFileBytes)
            {
                file.Dispose();
                Rotate(_path, _maxFiles);
                file = _file = Open(_path);
            }

            file.Write(_buffer.WrittenSpan);
            file.Flush(flushToDisk: false);
        }
    }

    /// <summary>A VM's decision changed (kind, reason, host or target).</summary>
    public void Decision(MigrationDecision decision, MigrationDecision? before)
    {
        ArgumentNullException.ThrowIfNull(decision);
        Write("decision", w =>
        {
            w.WriteString("vm", decision.VmName);
            w.WriteString("kind", decision.Kind.ToString());
            w.WriteString("reason", decision.Reason.ToString());
            WriteRule(w, decision);
            w.WriteString("host", decision.CurrentHost);
            w.WriteString("target", decision.TargetHost);
            Number(w, "currentScoreMs", decision.CurrentScoreMs);
            Number(w, "targetScoreMs", decision.TargetScoreMs);
            Number(w, "gainMs", decision.GainMs);
            w.WriteNumber("confirmedWindows", decision.ConfirmedWindows);
            if (before is not null)
            {
                w.WriteString("previousKind", before.Kind.ToString());
                w.WriteString("previousReason", before.Reason.ToString());
            }

            w.WriteString("explanation", decision.Explanation);
        });
    }

    /// <summary>
    /// A migration started: the executor passed its start gate (and, with an election, the fencing
    /// check) and is calling the source host. By the policy in automatic mode, or by an operator's move.
    /// With an election, the record names the candidate, lease and term that started it.
    /// </summary>
    public void MigrationStarted(string vm, string? source, string? destination, string trigger, string? reason, LeadershipState? leadership = null) =>
        Write("migration.started", w =>
        {
            w.WriteString("vm", vm);
            w.WriteString("source", source);
            w.WriteString("destination", destination);
            w.WriteString("trigger", trigger);
            w.WriteString("reason", reason);
            if (leadership is not null)
            {
                WriteLeadership(w, leadership);
            }
        });

    /// <summary>
    /// This controller's role changed: <c>leadership.acquired</c> (it won the election) or
    /// <c>leadership.lost</c> (its lease ended, its key was lost, a fencing check failed, etcd could not
    /// be reached, or it resigned), with the region, candidate, lease id, term, the leader it knows and why.
    /// </summary>
    public void Leadership(LeadershipState state, bool acquired)
    {
        ArgumentNullException.ThrowIfNull(state);
        Write(acquired ? "leadership.acquired" : "leadership.lost", w =>
        {
            WriteLeadership(w, state);
            w.WriteString("reason", state.Reason.ToString());
            w.WriteString("detail", state.Detail);
        });
    }

    /// <summary>
    /// This controller, not leading, learned who leads: <c>leadership.following</c>, with the leader it now follows and
    /// why (a new follower's first leader, a takeover seen by a follower, or an old leader rejoining after a partition).
    /// </summary>
    public void Following(LeadershipState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Write("leadership.following", w =>
        {
            WriteLeadership(w, state);
            w.WriteString("reason", state.Reason.ToString());
        });
    }

    private static void WriteLeadership(Utf8JsonWriter w, LeadershipState state)
    {
        w.WriteString("region", state.Election);
        w.WriteString("candidate", state.CandidateId);
        w.WriteString("role", state.IsLeader ? "leader" : "follower");
        if (state.LeaseId is { } lease)
        {
            w.WriteNumber("leaseId", lease);
        }
        else
        {
            w.WriteNull("leaseId");
        }

        if (state.Revision is { } revision)
        {
            w.WriteNumber("term", revision);
        }

        w.WriteString("leader", state.LeaderId);
    }

    /// <summary>A migration ended: outcome, duration, downtime, bytes, error, and the latency check.</summary>
    public void MigrationFinished(MigrationOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        Write("migration.finished", w =>
        {
            w.WriteString("vm", outcome.VmName);
            w.WriteString("source", outcome.Source);
            w.WriteString("destination", outcome.Destination);
            w.WriteString("outcome", outcome.Kind.ToString());
            if (outcome.StartedElsewhere)
            {
                // Another instance (a leader before a takeover) started it; this one found it under way and saw it end.
                w.WriteBoolean("startedElsewhere", true);
            }

            w.WriteNumber("durationSeconds", Math.Round(outcome.Duration.TotalSeconds, 3));
            Number(w, "downtimeMs", outcome.Result?.Downtime?.TotalMilliseconds);
            if (outcome.Result?.DataTransferredBytes is { } bytes)
            {
                w.WriteNumber("dataBytes", bytes);
            }

            if (outcome.AbortCause != MigrationAbortCause.None)
            {
                w.WriteString("abortCause", outcome.AbortCause.ToString());
            }

            w.WriteString("error", outcome.Error?.Message);
            w.WriteString("improvement", outcome.Improvement.Verdict.ToString());
            Number(w, "scoreBeforeMs", outcome.Improvement.BeforeMs);
            Number(w, "scoreAfterMs", outcome.Improvement.AfterMs);
        });
    }

    /// <summary>An operator action: what, on what, by whom, and whether it was accepted (with the reason when refused).</summary>
    public void OperatorAction(string action, string? vm, string? host, string? requestedBy, bool accepted, string? refusal, string explanation) =>
        Write("operator", w =>
        {
            w.WriteString("action", action);
            w.WriteString("vm", vm);
            w.WriteString("host", host);
            w.WriteString("requestedBy", requestedBy);
            w.WriteBoolean("accepted", accepted);
            w.WriteString("refusal", refusal);
            w.WriteString("explanation", explanation);
        });

    /// <summary>An operator action or rule change as the pipeline published it (the API's calls, a reload's rules).</summary>
    public void OperatorAction(PlacementControlEvent e, bool accepted)
    {
        ArgumentNullException.ThrowIfNull(e);
        Write("operator", w =>
        {
            w.WriteString("action", e.Action.ToString());
            w.WriteString("vm", e.Vm);
            w.WriteString("host", e.Host);
            w.WriteString("requestedBy", e.RequestedBy);
            w.WriteBoolean("accepted", accepted);
            w.WriteBoolean("changed", e.Changed);
            if (e.Refusal != MoveNowRefusal.None)
            {
                w.WriteString("refusal", e.Refusal.ToString());
            }

            w.WriteString("explanation", e.Explanation);
            Strings(w, "drainedHosts", e.Rules.DrainedHosts);
            Strings(w, "pinnedVms", e.Rules.PinnedVms);
        });
    }

    /// <summary>A configuration reload: whether it was valid, what was applied, what needs a restart, and every error.</summary>
    public void ConfigurationReload(bool valid, IReadOnlyList<string> applied, IReadOnlyList<string> restartNeeded, IReadOnlyList<string> errors) =>
        Write("config.reload", w =>
        {
            w.WriteBoolean("valid", valid);
            Strings(w, "applied", applied);
            Strings(w, "restartNeeded", restartNeeded);
            Strings(w, "errors", errors);
        });

    /// <summary>A controller lifecycle event (<c>controller.started</c>, …) with its fields.</summary>
    public void Lifecycle(string eventName, Action<Utf8JsonWriter>? fields = null) => Write(eventName, fields);

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _file?.Dispose();
            _file = null;
        }
    }

    /// <summary>Shifts <c>PATH.(n-1)</c> to <c>PATH.n</c> down to <c>PATH</c> to <c>PATH.1</c>; <c>PATH.maxFiles</c> is dropped.</summary>
    internal static void Rotate(string path, int maxFiles)
    {
        File.Delete(path + "." + maxFiles.ToString(System.Globalization.CultureInfo.InvariantCulture));
        for (var i = maxFiles - 1; i >= 1; i--)
        {
            var from = path + "." + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (File.Exists(from))
            {
                File.Move(from, path + "." + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        File.Move(path, path + ".1");
    }

    private static FileStream Open(string path) =>
        new(path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead });

    private static void WriteRule(Utf8JsonWriter w, MigrationDecision decision)
    {
        if (decision.HeldBy != PlacementRuleKind.None)
        {
            w.WriteString("rule", decision.HeldBy.ToString());
        }
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            w.WriteNumber(name, Math.Round(v, 3));
        }
        else if (value is { } inf && double.IsPositiveInfinity(inf))
        {
            w.WriteString(name, "unreachable");
        }
    }

    private static void Strings(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }
}
