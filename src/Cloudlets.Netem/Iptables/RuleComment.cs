using System.Globalization;
using System.Text;
using Cloudlets.Core.Shaping;

namespace Cloudlets.Netem.Iptables;

/// <summary>
/// The ownership comment on every rule the NFQUEUE backend writes. It carries the owner, the rule and
/// the impairment, so state read back from the kernel says what the rule does, and a hash of the
/// whole rule, so comparing comments is comparing rules.
/// </summary>
internal sealed record RuleComment(string Owner, string Rule, string Part, int Queue, long DelayMicroseconds, long JitterMicroseconds, DelayDistribution Distribution, double LossPercent, string Hash)
{
    public const string JumpPart = "jump";

    public override string ToString()
    {
        var sb = new StringBuilder(OwnerNames.CommentPrefix);
        sb.Append("o=").Append(Owner).Append(",r=").Append(Rule).Append(",p=").Append(Part);
        if (Part != JumpPart)
        {
            sb.Append(",q=").Append(Queue.ToString(CultureInfo.InvariantCulture))
              .Append(",d=").Append(DelayMicroseconds.ToString(CultureInfo.InvariantCulture))
              .Append(",j=").Append(JitterMicroseconds.ToString(CultureInfo.InvariantCulture))
              .Append(",dist=").Append(Distribution.ToString().ToLowerInvariant())
              .Append(",l=").Append(LossPercent.ToString("R", CultureInfo.InvariantCulture))
              .Append(",h=").Append(Hash);
        }

        return sb.ToString();
    }

    public static bool TryParse(string? text, out RuleComment comment)
    {
        comment = null!;
        if (text is null || !text.StartsWith(OwnerNames.CommentPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in text[OwnerNames.CommentPrefix.Length..].Split(','))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                fields[part[..eq]] = part[(eq + 1)..];
            }
        }

        if (!fields.TryGetValue("o", out var owner) || !fields.TryGetValue("p", out var p))
        {
            return false;
        }

        fields.TryGetValue("r", out var rule);
        int.TryParse(fields.GetValueOrDefault("q", "0"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var q);
        long.TryParse(fields.GetValueOrDefault("d", "0"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var d);
        long.TryParse(fields.GetValueOrDefault("j", "0"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var j);
        double.TryParse(fields.GetValueOrDefault("l", "0"), NumberStyles.Float, CultureInfo.InvariantCulture, out var l);
        Enum.TryParse<DelayDistribution>(fields.GetValueOrDefault("dist", "uniform"), ignoreCase: true, out var dist);
        comment = new RuleComment(owner, rule ?? "", p, q, d, j, dist, l, fields.GetValueOrDefault("h", ""));
        return true;
    }
}
