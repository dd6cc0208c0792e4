using System.Security.Cryptography;
using System.Text;
using Cloudlets.Netem.Ssh;

namespace Cloudlets.Netem.Tests.Ssh;

public sealed class SshHostKeyPolicyTests
{
    private static readonly byte[] Key = [.. Encoding.ASCII.GetBytes("\0\0\0\vssh-ed25519\0\0\0 "), .. Enumerable.Range(1, 32).Select(i => (byte)i)];
    private static readonly byte[] OtherKey = [.. Key[..^1], 0xff];
    private static readonly string Line = "ssh-ed25519 " + Convert.ToBase64String(Key);
    private static readonly string OtherLine = "ssh-ed25519 " + Convert.ToBase64String(OtherKey);

    private static SshHostKeyVerdict Check(string knownHosts, string host = "198.18.0.5", int port = 22, byte[]? key = null) =>
        SshHostKeyPolicy.FromKnownHosts(knownHosts).Check(host, port, "ssh-ed25519", key ?? Key);

    [Test]
    public void Check_PlainEntry_IsTrusted() => Assert.That(Check("198.18.0.5 " + Line), Is.EqualTo(SshHostKeyVerdict.Trusted));

    [Test]
    public void Check_OtherPortNeedsBracketedEntry()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Check("198.18.0.5 " + Line, port: 2222), Is.EqualTo(SshHostKeyVerdict.Unknown));
            Assert.That(Check("[198.18.0.5]:2222 " + Line, port: 2222), Is.EqualTo(SshHostKeyVerdict.Trusted));
        }
    }

    [Test]
    public void Check_SameTypeDifferentKey_IsChanged() => Assert.That(Check("198.18.0.5 " + OtherLine), Is.EqualTo(SshHostKeyVerdict.Changed));

    [Test]
    public void Check_OnlyAnotherType_IsUnknown() =>
        Assert.That(Check("198.18.0.5 ecdsa-sha2-nistp256 " + Convert.ToBase64String(OtherKey)), Is.EqualTo(SshHostKeyVerdict.Unknown));

    [Test]
    public void Check_WildcardAndNegation_FollowOpenSsh()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Check("198.18.0.* " + Line), Is.EqualTo(SshHostKeyVerdict.Trusted));
            Assert.That(Check("198.18.0.*,!198.18.0.5 " + Line), Is.EqualTo(SshHostKeyVerdict.Unknown));
            Assert.That(Check("other,198.18.0.? " + Line), Is.EqualTo(SshHostKeyVerdict.Trusted));
        }
    }

    [Test]
    public void Check_HashedEntry_MatchesOnlyItsHost()
    {
        var salt = Enumerable.Range(0, 20).Select(i => (byte)(i * 7)).ToArray();
#pragma warning disable CA5350 // OpenSSH's hashed known_hosts format is HMAC-SHA1
        var hash = HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes("198.18.0.5"));
#pragma warning restore CA5350
        var hashed = $"|1|{Convert.ToBase64String(salt)}|{Convert.ToBase64String(hash)} {Line}";
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Check(hashed), Is.EqualTo(SshHostKeyVerdict.Trusted));
            Assert.That(Check(hashed, host: "198.18.0.6"), Is.EqualTo(SshHostKeyVerdict.Unknown));
        }
    }

    [Test]
    public void Check_RevokedWins() =>
        Assert.That(Check($"198.18.0.5 {Line}\n@revoked * {Line}"), Is.EqualTo(SshHostKeyVerdict.Revoked));

    [Test]
    public void Check_CommentsAndBlankLinesAreSkippedAndEmptyFileTrustsNothing()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Check($"# comment\n\n198.18.0.5 {Line} trailing comment\n"), Is.EqualTo(SshHostKeyVerdict.Trusted));
            Assert.That(Check(""), Is.EqualTo(SshHostKeyVerdict.Unknown));
        }
    }

    [Test]
    public void Pinned_FingerprintOfTheKey_IsTrustedAndAnotherIsNot()
    {
        var policy = SshHostKeyPolicy.Pinned(SshHostKeyPolicy.Fingerprint(Key));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(policy.Check("h", 22, "ssh-ed25519", Key), Is.EqualTo(SshHostKeyVerdict.Trusted));
            Assert.That(policy.Check("h", 22, "ssh-ed25519", OtherKey), Is.EqualTo(SshHostKeyVerdict.Unknown));
        }
    }

    [TestCase("")]
    [TestCase("MD5:97:70:33")]
    [TestCase("SHA256:short")]
    public void Pinned_BadFingerprint_Throws(string fingerprint) => Assert.Throws<FormatException>(() => SshHostKeyPolicy.Pinned(fingerprint));

    [Test]
    public void Pinned_Nothing_Throws() => Assert.Throws<FormatException>(() => SshHostKeyPolicy.Pinned());

    [Test]
    public void FromKnownHosts_BadLine_ThrowsWithItsNumber()
    {
        var ex = Assert.Throws<FormatException>(() => SshHostKeyPolicy.FromKnownHosts($"198.18.0.5 {Line}\nhost ssh-ed25519 not*base64"));
        Assert.That(ex!.Message, Does.Contain(":2:"));
    }
}
