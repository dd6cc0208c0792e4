using System.Globalization;
using Cloudlets.Core.Options;

namespace Cloudlets.Core.Election;

/// <summary>
/// Options of a leader election, common to every implementation. Validated once, when the election
/// is built (<see cref="OptionsErrors.ValidateAndThrow{T}"/>); the election keeps a copy.
/// </summary>
public sealed class LeaderElectionOptions : IValidatableOptions
{
    /// <summary>The longest election name.</summary>
    public const int MaxElectionLength = 63;

    /// <summary>
    /// The election's name: the region whose controllers compete (one election per region). 1–63
    /// characters of <c>[a-z0-9-]</c>, starting and ending with a letter or digit. Required; there is no default.
    /// </summary>
    public string Election { get; set; } = "";

    /// <summary>
    /// This candidate's id, written into the election key while it leads and reported in states, logs
    /// and audit records. 1–253 printable ASCII characters without spaces. The default is
    /// <c>{host name}-{process id}</c>.
    /// </summary>
    public string CandidateId { get; set; } = DefaultCandidateId();

    /// <summary>
    /// How long the lease lives without a keepalive: a leader that dies or is cut off loses the
    /// election this long after its last keepalive reached the store, and a follower takes over then.
    /// Whole seconds (etcd's lease unit), range [2 s, 1 hour]. The default is 10 seconds.
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often the lease is kept alive, or <see langword="null"/> for a third of <see cref="LeaseTtl"/>
    /// (two keepalives may be lost before the lease is). Range [100 ms, <see cref="LeaseTtl"/> / 2].
    /// The default is <see langword="null"/>.
    /// </summary>
    public TimeSpan? KeepAliveInterval { get; set; }

    /// <summary>The first wait before campaigning again after the store failed. Range [10 ms, 1 minute]. The default is 250 ms.</summary>
    public TimeSpan RetryInitialBackoff { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between attempts (the backoff doubles up to it). Range [<see cref="RetryInitialBackoff"/>, 5 minutes]. The default is 5 seconds.</summary>
    public TimeSpan RetryMaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The keepalive interval in effect (<see cref="KeepAliveInterval"/> or a third of the TTL).</summary>
    public TimeSpan EffectiveKeepAliveInterval => KeepAliveInterval ?? LeaseTtl / 3;

    /// <summary>Returns a copy.</summary>
    public LeaderElectionOptions Clone() => (LeaderElectionOptions)MemberwiseClone();

    /// <inheritdoc />
    public void Validate(OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!IsValidElection(Election))
        {
            errors.Add(nameof(Election), string.Create(CultureInfo.InvariantCulture,
                $"is '{Election}'; it must be 1-{MaxElectionLength} characters of [a-z0-9-], starting and ending with a letter or digit (it names the region)."));
        }

        if (string.IsNullOrEmpty(CandidateId) || CandidateId.Length > 253 || CandidateId.Any(c => c <= ' ' || c > '~'))
        {
            errors.Add(nameof(CandidateId), "must be 1-253 printable ASCII characters without spaces.");
        }

        errors.InRange(nameof(LeaseTtl), LeaseTtl, TimeSpan.FromSeconds(2), TimeSpan.FromHours(1));
        if (LeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            errors.Add(nameof(LeaseTtl), string.Create(CultureInfo.InvariantCulture, $"is {LeaseTtl}; it must be whole seconds."));
        }

        if (KeepAliveInterval is { } interval)
        {
            errors.InRange(nameof(KeepAliveInterval), interval, TimeSpan.FromMilliseconds(100), LeaseTtl / 2);
        }

        errors.InRange(nameof(RetryInitialBackoff), RetryInitialBackoff, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        errors.InRange(nameof(RetryMaxBackoff), RetryMaxBackoff, RetryInitialBackoff, TimeSpan.FromMinutes(5));
    }

    /// <summary>Whether <paramref name="election"/> is a valid election name.</summary>
    public static bool IsValidElection(string? election)
    {
        if (string.IsNullOrEmpty(election) || election.Length > MaxElectionLength || election[0] == '-' || election[^1] == '-')
        {
            return false;
        }

        foreach (var c in election)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static string DefaultCandidateId()
    {
        var host = new string(Environment.MachineName.Where(c => c > ' ' && c <= '~').ToArray());
        return string.Create(CultureInfo.InvariantCulture, $"{(host.Length == 0 ? "host" : host)}-{Environment.ProcessId}");
    }
}
