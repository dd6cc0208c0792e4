using System.Security.Cryptography;
using System.Text;
using Cloudlets.Lab.Agents;

namespace Cloudlets.Lab.Tests.Agents;

public sealed class MosquittoFilesTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("mosquitto-files-").FullName;

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void HashedLine_Password_IsMosquittosPbkdf2Format()
    {
        var line = MosquittoFiles.HashedLine("site-2", "secret");
        var parts = line.TrimEnd('\n').Split(':', 2);
        var fields = parts[1].Split('$');
        var salt = Convert.FromBase64String(fields[3]);
        var expected = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes("secret"), salt, 101, HashAlgorithmName.SHA512, 64);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(parts[0], Is.EqualTo("site-2"));
            Assert.That(fields[..3], Is.EqualTo(new[] { "", "7", "101" }), "$7$ (PBKDF2-SHA512), 101 iterations, as mosquitto_passwd writes");
            Assert.That(salt, Has.Length.EqualTo(12));
            Assert.That(Convert.FromBase64String(fields[4]), Is.EqualTo(expected));
            Assert.That(MosquittoFiles.HashedLine("site-2", "secret"), Is.Not.EqualTo(line), "a fresh salt every time");
        }
    }

    [Test]
    public void Write_Sites_AclGivesEachSiteItsOwnTopicAndTheControllerReadOnly()
    {
        var plan = new LabAddressPlan(7);
        var hosts = new[] { new LabHost("cloudlet-1", 1, plan.Host(1), "t1-h1", "br0", "/x/h1") };
        MosquittoFiles.Write(_folder, plan.Edge, 1883, ["site-1", "site-2"], hosts);
        var acl = File.ReadAllText(Path.Combine(_folder, "acl"));
        var config = File.ReadAllText(MosquittoFiles.ConfigFile(_folder));
        var passwd = File.ReadAllLines(Path.Combine(_folder, "passwd"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(acl, Does.Contain("user controller\ntopic read cloudlets/v1/samples/#\n"));
            Assert.That(acl, Does.Contain("user site-1\ntopic write cloudlets/v1/samples/site-1\n"));
            Assert.That(acl, Does.Contain("user site-2\ntopic write cloudlets/v1/samples/site-2\n"));
            Assert.That(acl, Does.Not.Contain("topic write cloudlets/v1/samples/#"));
            Assert.That(config, Does.Contain("listener 1883 198.18.7.1\n").And.Contain("allow_anonymous false\n"));
            Assert.That(config.Split('\n').Count(l => l.StartsWith("listener", StringComparison.Ordinal)), Is.EqualTo(1), "one listener, on the edge's address only");
            Assert.That(passwd.Select(l => l.Split(':')[0]), Is.EqualTo(new[] { "controller", "site-1", "site-2" }));
            Assert.That(File.ReadAllText(MosquittoFiles.TargetsFile(_folder)), Is.EqualTo("{\"targets\":[{\"name\":\"cloudlet-1\",\"address\":\"198.18.7.11\"}]}\n"));
            foreach (var user in new[] { "controller", "site-1", "site-2" })
            {
                var file = MosquittoFiles.PasswordFile(_folder, user);
                Assert.That(File.GetUnixFileMode(file), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{user}'s password is root's alone");
                Assert.That(File.ReadAllText(file).TrimEnd('\n'), Has.Length.EqualTo(32));
            }
        }
    }
}
