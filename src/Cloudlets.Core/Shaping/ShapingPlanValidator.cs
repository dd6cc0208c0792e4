using System.Globalization;
using System.Net.Sockets;

namespace Cloudlets.Core.Shaping;

/// <summary>Checks plans before anything runs; every shaper calls it first.</summary>
public static class ShapingPlanValidator
{
    /// <summary>The longest owner name (it becomes part of iptables chain names, at most 28 characters).</summary>
    public const int MaxOwnerLength = 18;

    /// <summary>The longest Linux interface name (IFNAMSIZ − 1).</summary>
    public const int MaxInterfaceLength = 15;

    /// <summary>The most rules in one plan.</summary>
    public const int MaxRules = 64;

    /// <summary>Throws <see cref="ShapingValidationException"/> unless <paramref name="plan"/> is valid.</summary>
    public static void Validate(ShapingPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ValidateOwner(plan.Owner);
        if (plan.Rules is null)
        {
            throw new ShapingValidationException("Rules", "the rule list is null.");
        }

        if (plan.Rules.Count > MaxRules)
        {
            throw new ShapingValidationException("Rules", $"{plan.Rules.Count} rules; at most {MaxRules} are allowed.");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < plan.Rules.Count; i++)
        {
            var field = $"Rules[{i.ToString(CultureInfo.InvariantCulture)}]";
            var rule = plan.Rules[i] ?? throw new ShapingValidationException(field, "the rule is null.");
            ValidateRule(rule, field);
            var name = plan.RuleName(i);
            if (!names.Add(name))
            {
                throw new ShapingValidationException(field + ".Name", $"the name '{name}' is used twice.");
            }

            var key = $"{rule.NetworkNamespace}|{rule.Interface}|{rule.Direction}|{rule.Match}";
            if (!keys.Add(key))
            {
                throw new ShapingValidationException(field, $"another rule already shapes the same traffic ({rule.Interface} {rule.Direction} {rule.Match}).");
            }
        }
    }

    /// <summary>Throws unless <paramref name="owner"/> is 1–18 of ASCII letters, digits and '-'.</summary>
    public static void ValidateOwner(string owner)
    {
        if (string.IsNullOrEmpty(owner) || owner.Length > MaxOwnerLength || !owner.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            throw new ShapingValidationException("Owner", $"'{owner}' is not a valid owner (1-{MaxOwnerLength} of letters, digits, '-').");
        }
    }

    /// <summary>
    /// Throws unless <paramref name="name"/> is a valid Linux interface name: 1–15 characters of
    /// ASCII letters, digits, '-', '_', '.', and not "." or "..". Spaces, quotes, ';', '$', '(' and
    /// '/' are all refused.
    /// </summary>
    public static void ValidateInterfaceName(string name, string field = "Interface")
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxInterfaceLength || name is "." or ".." ||
            !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ShapingValidationException(field, $"'{name}' is not a valid Linux interface name (1-{MaxInterfaceLength} of letters, digits, '-', '_', '.').");
        }
    }

    private static void ValidateRule(ShapingRule rule, string field)
    {
        ValidateInterfaceName(rule.Interface, field + ".Interface");
        if (!Enum.IsDefined(rule.Direction))
        {
            throw new ShapingValidationException(field + ".Direction", $"unknown direction {rule.Direction}.");
        }

        if (rule.NetworkNamespace is { } ns &&
            (ns.Length is 0 or > 64 || ns is "." or ".." || !ns.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ShapingValidationException(field + ".NetworkNamespace", $"'{ns}' is not a valid network namespace name (1-64 of letters, digits, '-', '_', '.').");
        }

        if (rule.Name is { } n && (n.Length is 0 or > 32 || !n.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            throw new ShapingValidationException(field + ".Name", $"'{n}' is not a valid rule name (1-32 of letters, digits, '-', '_').");
        }

        ValidateMatch(rule.Match ?? throw new ShapingValidationException(field + ".Match", "the match is null."), field + ".Match");
        ValidateImpairment(rule.Impairment ?? throw new ShapingValidationException(field + ".Impairment", "the impairment is null."), field + ".Impairment");
    }

    private static void ValidateMatch(TrafficMatch match, string field)
    {
        if (!Enum.IsDefined(match.Protocol))
        {
            throw new ShapingValidationException(field + ".Protocol", $"unknown protocol {match.Protocol}.");
        }

        if (match.Destination is { } d && match.Source is { } s && d.BaseAddress.AddressFamily != s.BaseAddress.AddressFamily)
        {
            throw new ShapingValidationException(field, $"source {s} and destination {d} are of different IP families.");
        }

        foreach (var (port, name) in new[] { (match.DestinationPort, "DestinationPort"), (match.SourcePort, "SourcePort") })
        {
            if (port is null)
            {
                continue;
            }

            if (port is < 1 or > 65535)
            {
                throw new ShapingValidationException(field + "." + name, $"port {port} is not between 1 and 65535.");
            }

            if (match.Protocol is not (TrafficProtocol.Tcp or TrafficProtocol.Udp))
            {
                throw new ShapingValidationException(field + "." + name, "a port needs the protocol Tcp or Udp.");
            }
        }

        foreach (var net in new[] { match.Destination, match.Source })
        {
            if (net is { } x && x.BaseAddress.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            {
                throw new ShapingValidationException(field, $"{x} is not an IPv4 or IPv6 network.");
            }
        }
    }

    private static void ValidateImpairment(Impairment im, string field)
    {
        if (im.Delay < TimeSpan.Zero || im.Delay > Impairment.MaxDelay)
        {
            throw new ShapingValidationException(field + ".Delay", $"delay {im.Delay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms is not between 0 and {Impairment.MaxDelay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms.");
        }

        if (im.Jitter < TimeSpan.Zero || im.Jitter > im.Delay)
        {
            throw new ShapingValidationException(field + ".Jitter", $"jitter {im.Jitter.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms must be between 0 and the delay ({im.Delay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms).");
        }

        if (!Enum.IsDefined(im.Distribution))
        {
            throw new ShapingValidationException(field + ".Distribution", $"unknown distribution {im.Distribution}.");
        }

        Percent(im.DelayCorrelationPercent, field + ".DelayCorrelationPercent");
        Percent(im.LossPercent, field + ".LossPercent");
        Percent(im.DuplicatePercent, field + ".DuplicatePercent");
        Percent(im.CorruptPercent, field + ".CorruptPercent");
        Percent(im.ReorderPercent, field + ".ReorderPercent");
        if (im.ReorderPercent > 0 && im.Delay <= TimeSpan.Zero)
        {
            throw new ShapingValidationException(field + ".ReorderPercent", "reordering needs a delay.");
        }

        if (im.RateBitsPerSecond is { } rate && (rate < 8 || rate > 100_000_000_000))
        {
            throw new ShapingValidationException(field + ".RateBitsPerSecond", $"rate {rate} bit/s is not between 8 bit/s and 100 Gbit/s.");
        }

        if (im.Limit is < 1 or > 1_000_000)
        {
            throw new ShapingValidationException(field + ".Limit", $"limit {im.Limit} is not between 1 and 1,000,000 packets.");
        }
    }

    private static void Percent(double value, string field)
    {
        if (!double.IsFinite(value) || value < 0 || value > 100)
        {
            throw new ShapingValidationException(field, $"{value.ToString(CultureInfo.InvariantCulture)} is not a percentage between 0 and 100.");
        }
    }
}
