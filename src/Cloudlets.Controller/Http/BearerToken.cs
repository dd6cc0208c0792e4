using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Cloudlets.Controller.Http;

/// <summary>Why a state-changing call was refused before it ran.</summary>
public enum AuthorizationRefusal
{
    /// <summary>Allowed.</summary>
    None,
    /// <summary>No <c>Authorization: Bearer …</c> header (401).</summary>
    MissingToken,
    /// <summary>The token does not match (401).</summary>
    InvalidToken,
    /// <summary>No token is configured, so no state-changing call is allowed (403).</summary>
    NoTokenConfigured,
}

/// <summary>
/// Checks the bearer token of a state-changing call against the configured one in constant time
/// (both are hashed with SHA-256 first, so neither the content nor the length leaks through timing).
/// </summary>
public sealed class BearerToken
{
    private readonly byte[]? _hash;

    /// <summary>Creates the check for <paramref name="token"/>, or one that refuses every call when it is <see langword="null"/> or empty.</summary>
    public BearerToken(string? token)
    {
        _hash = string.IsNullOrEmpty(token) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>Whether a token is configured.</summary>
    public bool IsConfigured => _hash is not null;

    /// <summary>Checks the request's <c>Authorization</c> header.</summary>
    public AuthorizationRefusal Check(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Check(request.Headers.Authorization.ToString());
    }

    /// <summary>Checks an <c>Authorization</c> header value.</summary>
    public AuthorizationRefusal Check(string? authorization)
    {
        if (_hash is null)
        {
            return AuthorizationRefusal.NoTokenConfigured;
        }

        const string scheme = "Bearer ";
        if (string.IsNullOrEmpty(authorization) || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || authorization.Length == scheme.Length)
        {
            return AuthorizationRefusal.MissingToken;
        }

        var given = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, _hash) ? AuthorizationRefusal.None : AuthorizationRefusal.InvalidToken;
    }
}
