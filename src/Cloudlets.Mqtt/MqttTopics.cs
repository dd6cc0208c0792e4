namespace Cloudlets.Mqtt;

/// <summary>The topic layout, version 1: one topic per vantage point, <c>cloudlets/v1/samples/{vantagePoint}</c>.</summary>
public static class MqttTopics
{
    /// <summary>The prefix of every sample topic, with its trailing slash.</summary>
    public const string SamplesPrefix = "cloudlets/v1/samples/";

    /// <summary>The filter that matches every vantage point's samples.</summary>
    public const string AllSamples = SamplesPrefix + "+";

    /// <summary>The longest vantage-point name, in characters.</summary>
    public const int MaxVantagePointLength = 64;

    /// <summary>The topic a vantage point publishes to.</summary>
    /// <exception cref="ArgumentException"><paramref name="vantagePoint"/> is not a valid name (see <see cref="IsValidVantagePoint"/>).</exception>
    public static string Samples(string vantagePoint)
    {
        if (!IsValidVantagePoint(vantagePoint))
        {
            throw new ArgumentException($"'{vantagePoint}' is not a valid vantage point: 1 to {MaxVantagePointLength} of letters, digits, '.', '_' and '-'.", nameof(vantagePoint));
        }

        return SamplesPrefix + vantagePoint;
    }

    /// <summary>
    /// Whether a name can be a vantage point: 1 to 64 ASCII letters, digits, <c>.</c>, <c>_</c> or <c>-</c>.
    /// Narrower than MQTT allows on purpose: the name is one topic level (no <c>/</c>, <c>+</c>, <c>#</c>),
    /// and it can be a broker user name for an ACL pattern (<c>pattern write cloudlets/v1/samples/%u</c>).
    /// </summary>
    public static bool IsValidVantagePoint(string? vantagePoint)
    {
        if (string.IsNullOrEmpty(vantagePoint) || vantagePoint.Length > MaxVantagePointLength)
        {
            return false;
        }

        foreach (var c in vantagePoint)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The vantage point a sample topic names, or <see langword="null"/> when the topic is not a version-1 sample topic.</summary>
    public static string? TryGetVantagePoint(string? topic)
    {
        if (topic is null || !topic.StartsWith(SamplesPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var name = topic[SamplesPrefix.Length..];
        return IsValidVantagePoint(name) ? name : null;
    }
}
