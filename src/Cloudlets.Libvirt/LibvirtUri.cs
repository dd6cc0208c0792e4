using System.Text.RegularExpressions;
using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt;

/// <summary>
/// The libvirt connection URIs this library accepts, and how it shows them. libvirt can be told by
/// a URI to run a local program (<c>qemu+ext</c>, <c>command=</c>, <c>netcat=</c>, <c>proxy=</c>), to
/// talk to a socket of the caller's choosing (<c>socket=</c>) or to skip host verification
/// (<c>no_verify=</c>); an operator's configuration file should not be able to do any of that, so
/// only an allow-list passes:
/// <list type="bullet">
/// <item>drivers <c>qemu</c> (paths <c>/system</c> or <c>/session</c>) and <c>test</c> (<c>test:///default</c> or <c>test:///ABSOLUTE/PATH.xml</c>, for tests);</item>
/// <item>transports <c>tcp</c>, <c>tls</c>, <c>ssh</c>, <c>libssh2</c> (a host is required) and <c>unix</c> or none (the local daemon's own socket, no host);</item>
/// <item>query parameters <c>no_tty</c>, <c>keyfile</c>, <c>known_hosts</c> (absolute paths), <c>known_hosts_verify</c> (<c>normal</c> or <c>auto</c>), <c>sshauth</c>, <c>pkipath</c> (absolute), <c>tls_priority</c>, <c>mode</c>;</item>
/// <item>a user name, but never a password: credentials belong in an SSH key (<c>keyfile=</c>), TLS certificates (<c>pkipath=</c>) or the SASL configuration.</item>
/// </list>
/// Messages never repeat a URI's user information; <see cref="Redact(Uri)"/> is what logs and exceptions show.
/// </summary>
public static partial class LibvirtUri
{
    private static readonly string[] AllowedParameters =
        ["no_tty", "keyfile", "known_hosts", "known_hosts_verify", "sshauth", "pkipath", "tls_priority", "mode"];

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every problem of <paramref name="uri"/>.</summary>
    public static void Validate(Uri? uri)
    {
        var errors = new OptionsErrors();
        Check(errors, "Uri", uri);
        errors.ThrowIfAny("libvirt URI");
    }

    /// <summary>Every problem of a URI given as text (empty when it is acceptable); no message repeats user information.</summary>
    public static IReadOnlyList<string> Problems(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return ["is missing (a libvirt URI, for example qemu+tcp://192.0.2.11/system)."];
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            return [$"'{RedactText(text)}' is not an absolute URI (for example qemu+tcp://192.0.2.11/system)."];
        }

        var errors = new OptionsErrors();
        Check(errors, "", uri);
        return [.. errors.Errors.Select(e => e.Message)];
    }

    /// <summary>The URI as logs and messages show it: without user information (<c>user:password@</c>).</summary>
    public static string Redact(Uri? uri)
    {
        if (uri is null)
        {
            return "(none)";
        }

        if (!uri.IsAbsoluteUri)
        {
            return RedactText(uri.OriginalString);
        }

        if (uri.UserInfo.Length == 0)
        {
            return uri.OriginalString;
        }

        return uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.PathAndQuery | UriComponents.Fragment, UriFormat.UriEscaped);
    }

    /// <summary>Adds every problem of <paramref name="uri"/> to <paramref name="errors"/> under <paramref name="property"/>.</summary>
    internal static void Check(OptionsErrors errors, string property, Uri? uri)
    {
        if (uri is null)
        {
            errors.Add(property, "is required (a libvirt URI, for example qemu+tcp://192.0.2.11/system).");
            return;
        }

        var shown = Redact(uri);
        if (!uri.IsAbsoluteUri)
        {
            errors.Add(property, $"'{shown}' is not an absolute libvirt URI (for example qemu+tcp://192.0.2.11/system).");
            return;
        }

        if (uri.UserInfo.Contains(':', StringComparison.Ordinal))
        {
            errors.Add(property, $"'{shown}' carries a password in its user information (not shown); a libvirt URI must not: use an SSH key (keyfile=/absolute/path), TLS certificates (pkipath=) or the SASL configuration for credentials.");
        }

        var scheme = SchemePattern().Match(uri.Scheme);
        if (!scheme.Success)
        {
            errors.Add(property, $"'{shown}': scheme '{uri.Scheme}' is not allowed; use qemu, qemu+tcp, qemu+tls, qemu+ssh, qemu+libssh2, qemu+unix or test.");
            return;
        }

        var driver = scheme.Groups["driver"].Value;
        var transport = scheme.Groups["transport"].Value;
        var local = transport is "" or "unix";
        if (driver == "test" && transport.Length > 0)
        {
            errors.Add(property, $"'{shown}': the test driver is used in-process only (test:///default or test:///ABSOLUTE/PATH.xml).");
        }

        if (local && uri.Host.Length > 0)
        {
            errors.Add(property, $"'{shown}' names host '{uri.Host}' but a local transport; use qemu+tcp, qemu+tls or qemu+ssh for a remote host.");
        }

        if (!local && uri.Host.Length == 0)
        {
            errors.Add(property, $"'{shown}' names the network transport '{transport}' but no host.");
        }

        if (driver == "qemu" && uri.AbsolutePath is not ("/system" or "/session"))
        {
            errors.Add(property, $"'{shown}' must end in /system or /session.");
        }

        if (driver == "test" && !(uri.AbsolutePath == "/default" || (uri.AbsolutePath.Length > 1 && uri.AbsolutePath.EndsWith(".xml", StringComparison.Ordinal))))
        {
            errors.Add(property, $"'{shown}' is not a test driver URI: use test:///default or test:///ABSOLUTE/PATH/node.xml.");
        }

        if (uri.Fragment.Length > 0)
        {
            errors.Add(property, $"'{shown}' has a fragment; libvirt URIs have none.");
        }

        CheckQuery(errors, property, shown, uri.Query);
    }

    private static void CheckQuery(OptionsErrors errors, string property, string shown, string query)
    {
        if (query.Length <= 1)
        {
            return;
        }

        foreach (var pair in query[1..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..]);
            if (!AllowedParameters.Contains(name, StringComparer.Ordinal))
            {
                var why = name switch
                {
                    "command" or "netcat" or "proxy" => " (it makes libvirt run a program)",
                    "socket" => " (it points libvirt at a socket of the caller's choosing)",
                    "no_verify" => " (it turns host verification off)",
                    _ => string.Empty,
                };
                errors.Add(property, $"'{shown}': query parameter '{name}' is not allowed{why}; allowed: {string.Join(", ", AllowedParameters)}.");
                continue;
            }

            if (name is "keyfile" or "known_hosts" or "pkipath" && !value.StartsWith('/'))
            {
                errors.Add(property, $"'{shown}': {name} must be an absolute path.");
            }

            if (name == "known_hosts_verify" && value is not ("normal" or "auto"))
            {
                errors.Add(property, $"'{shown}': known_hosts_verify must be normal or auto (host keys are always verified).");
            }
        }
    }

    private static string RedactText(string text)
    {
        // Not parseable as a URI: drop anything between "//" and "@" that could be credentials.
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var start = text.IndexOf("//", StringComparison.Ordinal);
        return at > 0 && start >= 0 && start < at ? string.Concat(text.AsSpan(0, start + 2), text.AsSpan(at + 1)) : text;
    }

    [GeneratedRegex("^(?<driver>qemu|test)(\\+(?<transport>tcp|tls|ssh|libssh2|unix))?$", RegexOptions.CultureInvariant)]
    private static partial Regex SchemePattern();
}
