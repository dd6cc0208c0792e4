using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Cloudlets.Netem.Ssh;

/// <summary>What a host key check found.</summary>
public enum SshHostKeyVerdict
{
    /// <summary>The key is the one known for the host.</summary>
    Trusted,

    /// <summary>Nothing is known about this host (or only keys of other types): refused, as with <c>StrictHostKeyChecking yes</c>.</summary>
    Unknown,

    /// <summary>A different key of the same type is known for this host: refused (someone may be in the middle).</summary>
    Changed,

    /// <summary>The key is marked <c>@revoked</c>: refused.</summary>
    Revoked,
}

/// <summary>
/// Which SSH host keys to trust: the entries of an OpenSSH <c>known_hosts</c> file (plain, wildcard,
/// negated and hashed host patterns; <c>[host]:port</c> for other ports; <c>@revoked</c>), and/or pinned
/// SHA-256 fingerprints (as <c>ssh-keygen -l</c> prints them, <c>SHA256:…</c>). Fails closed: a key that
/// nothing vouches for is refused. <c>@cert-authority</c> lines are not supported and vouch for nothing.
/// </summary>
public sealed class SshHostKeyPolicy
{
    private readonly List<KnownHostLine> lines;
    private readonly HashSet<string> fingerprints;

    private SshHostKeyPolicy(List<KnownHostLine> lines, HashSet<string> fingerprints, string description)
    {
        this.lines = lines;
        this.fingerprints = fingerprints;
        Description = description;
    }

    /// <summary>Where the trust comes from (for messages).</summary>
    public string Description { get; }

    /// <summary>Trusts the keys a <c>known_hosts</c> file lists for the host.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">A line cannot be read (its number is in the message).</exception>
    public static SshHostKeyPolicy FromKnownHostsFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return FromKnownHosts(File.ReadAllText(path), path);
    }

    /// <summary>Trusts the keys that <c>known_hosts</c> text lists for the host.</summary>
    /// <exception cref="FormatException">A line cannot be read (its number is in the message).</exception>
    public static SshHostKeyPolicy FromKnownHosts(string text, string source = "known_hosts")
    {
        ArgumentNullException.ThrowIfNull(text);
        var parsed = new List<KnownHostLine>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            parsed.Add(KnownHostLine.Parse(line, source, number));
        }

        return new SshHostKeyPolicy(parsed, [], source);
    }

    /// <summary>Trusts only keys with these SHA-256 fingerprints (<c>SHA256:base64</c>, as <c>ssh-keygen -l -E sha256</c> prints them).</summary>
    /// <exception cref="FormatException">A fingerprint is not <c>SHA256:</c> and 43 base64 characters.</exception>
    public static SshHostKeyPolicy Pinned(params IEnumerable<string> sha256Fingerprints)
    {
        ArgumentNullException.ThrowIfNull(sha256Fingerprints);
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in sha256Fingerprints)
        {
            set.Add(NormalizeFingerprint(f));
        }

        if (set.Count == 0)
        {
            throw new FormatException("At least one pinned fingerprint is needed: an empty pin list would trust nothing.");
        }

        return new SshHostKeyPolicy([], set, "pinned " + string.Join(", ", set.Select(s => "SHA256:" + s)));
    }

    /// <summary>This policy and <paramref name="other"/>: a key trusted by either is trusted; a key either calls changed or revoked is refused.</summary>
    public SshHostKeyPolicy Or(SshHostKeyPolicy other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new SshHostKeyPolicy([.. lines, .. other.lines], [.. fingerprints, .. other.fingerprints], Description + " + " + other.Description);
    }

    /// <summary>The SHA-256 fingerprint of a public key blob, as <c>ssh-keygen -l</c> prints it.</summary>
    public static string Fingerprint(ReadOnlySpan<byte> keyBlob) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(keyBlob)).TrimEnd('=');

    /// <summary>Checks the key <paramref name="host"/> presented.</summary>
    /// <param name="host">The host name or address as connected to.</param>
    /// <param name="port">The port.</param>
    /// <param name="keyType">The key's algorithm name (for example <c>ssh-ed25519</c>).</param>
    /// <param name="keyBlob">The public key blob (what <c>known_hosts</c> holds in base64).</param>
    public SshHostKeyVerdict Check(string host, int port, string keyType, ReadOnlySpan<byte> keyBlob)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(keyType);
        var name = port == 22 ? host : string.Create(CultureInfo.InvariantCulture, $"[{host}]:{port}");
        var blob = keyBlob.ToArray();
        var type = BaseType(keyType);
        var applicable = lines.Where(l => l.Matches(name)).ToList();
        if (applicable.Any(l => l.Revoked && l.Key.AsSpan().SequenceEqual(blob)))
        {
            return SshHostKeyVerdict.Revoked;
        }

        if (applicable.Any(l => !l.Revoked && !l.CertAuthority && l.Key.AsSpan().SequenceEqual(blob)) ||
            fingerprints.Contains(NormalizeFingerprint(Fingerprint(blob))))
        {
            return SshHostKeyVerdict.Trusted;
        }

        return applicable.Any(l => !l.Revoked && !l.CertAuthority && l.KeyType == type) ? SshHostKeyVerdict.Changed : SshHostKeyVerdict.Unknown;
    }

    // SSH.NET names the signature algorithm for RSA (rsa-sha2-256/512); known_hosts stores ssh-rsa.
    private static string BaseType(string keyType) => keyType is "rsa-sha2-256" or "rsa-sha2-512" ? "ssh-rsa" : keyType;

    private static string NormalizeFingerprint(string f)
    {
        ArgumentNullException.ThrowIfNull(f);
        var s = f.Trim();
        if (!s.StartsWith("SHA256:", StringComparison.Ordinal))
        {
            throw new FormatException($"'{f}' is not a SHA-256 fingerprint (SHA256:… as ssh-keygen -l prints it).");
        }

        s = s["SHA256:".Length..].TrimEnd('=');
        if (s.Length != 43 || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/'))
        {
            throw new FormatException($"'{f}' is not a SHA-256 fingerprint (43 base64 characters after SHA256:).");
        }

        return s;
    }

    private sealed record KnownHostLine(IReadOnlyList<string> Patterns, string KeyType, byte[] Key, bool Revoked, bool CertAuthority)
    {
        public static KnownHostLine Parse(string line, string source, int number)
        {
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            var i = 0;
            var revoked = false;
            var ca = false;
            if (fields.Length > 0 && fields[0].StartsWith('@'))
            {
                revoked = fields[0] == "@revoked";
                ca = fields[0] == "@cert-authority";
                i = 1;
            }

            if (fields.Length < i + 3)
            {
                throw new FormatException($"{source}:{number}: expected 'hosts keytype base64-key'.");
            }

            byte[] key;
            try
            {
                key = Convert.FromBase64String(fields[i + 2]);
            }
            catch (FormatException ex)
            {
                throw new FormatException($"{source}:{number}: the key is not base64.", ex);
            }

            return new KnownHostLine(fields[i].Split(','), fields[i + 1], key, revoked, ca);
        }

        public bool Matches(string name)
        {
            var matched = false;
            foreach (var p in Patterns)
            {
                var negated = p.StartsWith('!');
                var pattern = negated ? p[1..] : p;
                if (!PatternMatches(pattern, name))
                {
                    continue;
                }

                if (negated)
                {
                    return false;
                }

                matched = true;
            }

            return matched;
        }

        private static bool PatternMatches(string pattern, string name)
        {
            if (pattern.StartsWith("|1|", StringComparison.Ordinal))
            {
                // Hashed (ssh-keygen -H): |1|base64(salt)|base64(HMAC-SHA1(salt, name)).
                var parts = pattern.Split('|');
                if (parts.Length != 4)
                {
                    return false;
                }

                try
                {
                    var salt = Convert.FromBase64String(parts[2]);
                    var hash = Convert.FromBase64String(parts[3]);
                    // OpenSSH defines hashed host names as HMAC-SHA1; it hides names, it does not authenticate keys.
#pragma warning disable CA5350
                    return CryptographicOperations.FixedTimeEquals(HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes(name)), hash);
#pragma warning restore CA5350
                }
                catch (FormatException)
                {
                    return false;
                }
            }

            if (pattern.Contains('*', StringComparison.Ordinal) || pattern.Contains('?', StringComparison.Ordinal))
            {
                var regex = "^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$";
                return Regex.IsMatch(name, regex, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }

            return string.Equals(pattern, name, StringComparison.OrdinalIgnoreCase);
        }
    }
}

/// <summary>The SSH server's host key was refused before anything ran on it.</summary>
public sealed class SshHostKeyException : IOException
{
    /// <summary>Creates an exception.</summary>
    public SshHostKeyException() : base("The SSH host key was refused.") { }

    /// <summary>Creates an exception.</summary>
    public SshHostKeyException(string message) : base(message) { }

    /// <summary>Creates an exception.</summary>
    public SshHostKeyException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception for a refused key.</summary>
    public SshHostKeyException(string host, int port, SshHostKeyVerdict verdict, string keyType, string fingerprint, string policy, Exception? innerException)
        : base(Describe(host, port, verdict, keyType, fingerprint, policy), innerException)
    {
        Host = host;
        Port = port;
        Verdict = verdict;
        KeyType = keyType;
        Fingerprint = fingerprint;
    }

    /// <summary>The key type the server presented (for example <c>ssh-ed25519</c>).</summary>
    public string KeyType { get; } = "";

    /// <summary>The host.</summary>
    public string? Host { get; }

    /// <summary>The port.</summary>
    public int Port { get; }

    /// <summary>Why the key was refused.</summary>
    public SshHostKeyVerdict Verdict { get; }

    /// <summary>The SHA-256 fingerprint of the key the server presented.</summary>
    public string? Fingerprint { get; }

    private static string Describe(string host, int port, SshHostKeyVerdict verdict, string keyType, string fingerprint, string policy) =>
        string.Create(CultureInfo.InvariantCulture, $"The SSH host key of {host}:{port} ({keyType} {fingerprint}) was refused: ") + verdict switch
        {
            SshHostKeyVerdict.Changed => $"a different {keyType} key is known for this host ({policy}). Someone may be in the middle; nothing was run.",
            SshHostKeyVerdict.Revoked => $"the key is marked @revoked ({policy}); nothing was run.",
            _ => $"the host is not known ({policy}). Add its key to known_hosts (ssh-keyscan, checked out of band) or pin its fingerprint; nothing was run.",
        };
}
