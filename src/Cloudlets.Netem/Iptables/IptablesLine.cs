using System.Text;

namespace Cloudlets.Netem.Iptables;

/// <summary>Splits one line of <c>iptables -S</c> / <c>iptables-save</c> output into arguments (double quotes, backslash escapes).</summary>
internal static class IptablesLine
{
    public static List<string> Tokenize(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var tokens = new List<string>();
        var sb = new StringBuilder();
        var inQuotes = false;
        var hasToken = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (inQuotes)
            {
                if (c == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\')
                {
                    sb.Append(line[++i]);
                }
                else if (c == '"')
                {
                    inQuotes = false;
                }
                else
                {
                    sb.Append(c);
                }
            }
            else if (c == '"')
            {
                inQuotes = true;
                hasToken = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (hasToken)
                {
                    tokens.Add(sb.ToString());
                    sb.Clear();
                    hasToken = false;
                }
            }
            else
            {
                sb.Append(c);
                hasToken = true;
            }
        }

        if (hasToken)
        {
            tokens.Add(sb.ToString());
        }

        return tokens;
    }

    /// <summary>The value after <paramref name="option"/>, or <see langword="null"/>.</summary>
    public static string? ValueOf(IReadOnlyList<string> tokens, string option)
    {
        for (var i = 0; i + 1 < tokens.Count; i++)
        {
            if (tokens[i] == option)
            {
                return tokens[i + 1];
            }
        }

        return null;
    }
}
