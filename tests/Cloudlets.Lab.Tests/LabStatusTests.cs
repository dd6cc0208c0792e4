using System.Net;
using System.Text.Json;
using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabStatusTests
{
    private static LabStatus Sample()
    {
        var plan = new LabAddressPlan(3);
        var hosts = Enumerable.Range(1, 2)
            .Select(i => new LabHost(LabNaming.HostName(i), i, plan.Host(i), LabNaming.HostNamespace("t1", i), "br0", "/x/h" + i))
            .ToList();
        return new LabStatus("t1", new LabEdge("t1-edge", plan.Edge), hosts,
            [new LabGuestStatus("guest-1", "cloudlet-2", plan.Guest(1)), new LabGuestStatus("guest-2", null, plan.Guest(2))]);
    }

    [Test]
    public void ToJson_Lab_HasExactlyTheDocumentedShape()
    {
        using var doc = JsonDocument.Parse(Sample().ToJson());
        var root = doc.RootElement;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "edge", "sites", "hosts", "guests", "netemGuests" }));
            Assert.That(root.GetProperty("netemGuests").GetArrayLength(), Is.Zero, "no netem-host guests: an empty list");
            Assert.That(root.GetProperty("sites").EnumerateArray().Select(s => s.GetProperty("name").GetString()), Is.EqualTo(new[] { "site-1" }), "without sites listed, the edge is site-1");
            Assert.That(root.GetProperty("sites")[0].EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "namespace", "address", "switchPort" }));
            Assert.That(root.GetProperty("sites")[0].GetProperty("address").GetString(), Is.EqualTo("198.18.3.1"));
            Assert.That(root.GetProperty("edge").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "namespace", "address" }));
            Assert.That(root.GetProperty("edge").GetProperty("address").GetString(), Is.EqualTo("198.18.3.1"));
            var host = root.GetProperty("hosts")[1];
            Assert.That(host.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "address", "uri", "transport", "namespace" }));
            Assert.That(host.GetProperty("uri").GetString(), Is.EqualTo("qemu+tcp://198.18.3.12/system"));
            Assert.That(host.GetProperty("namespace").GetString(), Is.EqualTo("t1-h2"));
            var guest = root.GetProperty("guests")[0];
            Assert.That(guest.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "host", "address" }));
            Assert.That(guest.GetProperty("host").GetString(), Is.EqualTo("cloudlet-2"));
            Assert.That(root.GetProperty("guests")[1].GetProperty("host").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
    }

    [Test]
    public void ToJson_NetemGuest_ListsItsNameAddressAndSshCredentials()
    {
        var plan = new LabAddressPlan(3);
        var status = Sample() with { NetemGuests = [new LabNetemGuest("guest-1", plan.Guest(1), "root", "/x/netem-ssh/id_ed25519", "/x/netem-ssh/known_hosts")] };
        using var doc = JsonDocument.Parse(status.ToJson());
        var guest = doc.RootElement.GetProperty("netemGuests").EnumerateArray().Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "address", "sshUser", "sshKey", "knownHosts" }));
            Assert.That(guest.GetProperty("name").GetString(), Is.EqualTo("guest-1"));
            Assert.That(guest.GetProperty("address").GetString(), Is.EqualTo("198.18.3.101"));
            Assert.That(guest.GetProperty("sshUser").GetString(), Is.EqualTo("root"));
            Assert.That(guest.GetProperty("sshKey").GetString(), Is.EqualTo("/x/netem-ssh/id_ed25519"));
            Assert.That(guest.GetProperty("knownHosts").GetString(), Is.EqualTo("/x/netem-ssh/known_hosts"));
            Assert.That(status.ToString(), Does.Contain("netem host guest-1: ssh -i /x/netem-ssh/id_ed25519 -o UserKnownHostsFile=/x/netem-ssh/known_hosts root@198.18.3.101"));
        }
    }

    [Test]
    public void ToJson_SshLab_SaysTheTransportAndWhereTheKeyAndKnownHostsAre()
    {
        var status = Sample() with
        {
            Hosts = [.. Sample().Hosts.Select(h => h with { Transport = LabTransport.Ssh, SshKeyFile = "/l/ssh/id_ed25519", SshKnownHostsFile = "/l/ssh/known_hosts" })],
        };
        using var doc = JsonDocument.Parse(status.ToJson());
        var host = doc.RootElement.GetProperty("hosts")[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "address", "uri", "transport", "sshUser", "sshKey", "knownHosts", "namespace" }));
            Assert.That(host.GetProperty("transport").GetString(), Is.EqualTo("ssh"));
            Assert.That(host.GetProperty("sshUser").GetString(), Is.EqualTo("root"));
            Assert.That(host.GetProperty("sshKey").GetString(), Is.EqualTo("/l/ssh/id_ed25519"));
            Assert.That(host.GetProperty("knownHosts").GetString(), Is.EqualTo("/l/ssh/known_hosts"));
            Assert.That(host.GetProperty("uri").GetString(), Does.StartWith("qemu+libssh2://root@198.18.3.11/system?keyfile=/l/ssh/id_ed25519&known_hosts=/l/ssh/known_hosts"));
        }
    }

    [Test]
    public void ToJson_SaslLab_NamesTheUserAndTheCredentialFilesNeverThePassword()
    {
        var status = Sample() with
        {
            Hosts = [.. Sample().Hosts.Select(h => h with { Transport = LabTransport.TlsSasl, ClientPkiFolder = "/l/pki/client", SaslAuthFile = "/l/sasl/auth.conf", SaslPasswordFile = "/l/sasl/password" })],
        };
        using var doc = JsonDocument.Parse(status.ToJson());
        var host = doc.RootElement.GetProperty("hosts")[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "address", "uri", "transport", "pkiPath", "saslUser", "saslAuthFile", "saslPasswordFile", "namespace" }));
            Assert.That(host.GetProperty("transport").GetString(), Is.EqualTo("tls-sasl"));
            Assert.That(host.GetProperty("saslUser").GetString(), Is.EqualTo("cloudlets"));
            Assert.That(host.GetProperty("saslAuthFile").GetString(), Is.EqualTo("/l/sasl/auth.conf"));
            Assert.That(host.GetProperty("uri").GetString(), Is.EqualTo("qemu+tls://198.18.3.11/system?pkipath=/l/pki/client"));
        }
    }

    [Test]
    public void ToJson_TwoSites_ListsEachWithNamespaceAddressAndPort()
    {
        var plan = new LabAddressPlan(3);
        var status = Sample() with
        {
            Sites = [.. Enumerable.Range(1, 2).Select(s => new LabSite(LabNaming.SiteName(s), s, LabNaming.SiteNamespace("t1", s), plan.Site(s), LabNaming.SwitchPortForSite(s)))],
        };
        using var doc = JsonDocument.Parse(status.ToJson());
        var sites = doc.RootElement.GetProperty("sites").EnumerateArray()
            .Select(s => (s.GetProperty("name").GetString(), s.GetProperty("namespace").GetString(), s.GetProperty("address").GetString(), s.GetProperty("switchPort").GetString()))
            .ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sites, Is.EqualTo(new[] { ("site-1", "t1-edge", "198.18.3.1", "edge"), ("site-2", "t1-s2", "198.19.3.17", "s2") }));
            Assert.That(status.ToString(), Does.Contain("site-2 198.19.3.17 (netns t1-s2, switch port s2)"));
        }
    }

    [Test]
    public void ToJson_Lab_IsOneLine()
    {
        var json = Sample().ToJson();
        Assert.That(json, Does.Not.Contain('\n'));
    }

    [Test]
    public void LabHost_Uris_DeriveFromAddress()
    {
        var host = new LabHost("cloudlet-1", 1, IPAddress.Parse("198.18.3.11"), "t1-h1", "br0", "/x");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(host.Uri.ToString(), Is.EqualTo("qemu+tcp://198.18.3.11/system"));
            Assert.That(host.MigrationUri.ToString(), Is.EqualTo("tcp://198.18.3.11/"));
        }
    }

    [Test]
    public void ToJson_Broker_ListsItsAddressCredentialsAndTheAgents()
    {
        var status = Sample() with
        {
            Broker = new Cloudlets.Lab.Agents.LabBroker(new Uri("mqtt://198.18.3.1:1883"), "t1-edge", "controller", "/x/broker/users/controller.password", "/x/broker"),
            Agents = [new Cloudlets.Lab.Agents.LabAgent("site-1", 101), new Cloudlets.Lab.Agents.LabAgent("site-2", 102)],
        };
        using var doc = JsonDocument.Parse(status.ToJson());
        var broker = doc.RootElement.GetProperty("broker");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(doc.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "edge", "sites", "hosts", "guests", "netemGuests", "broker", "agents" }));
            Assert.That(broker.EnumerateObject().Select(p => (p.Name, p.Value.GetString())), Is.EqualTo(new[]
            {
                ("url", "mqtt://198.18.3.1:1883"), ("namespace", "t1-edge"), ("username", "controller"), ("credentialsFile", "/x/broker/users/controller.password"),
            }));
            Assert.That(doc.RootElement.GetProperty("agents").EnumerateArray().Select(a => (a.GetProperty("site").GetString(), a.GetProperty("pid").GetInt32())),
                Is.EqualTo(new[] { ("site-1", 101), ("site-2", 102) }));
            Assert.That(status.ToString(), Does.Contain("broker mqtt://198.18.3.1:1883 (netns t1-edge, user controller").And.Contain("agent site-2 pid 102"));
        }
    }
}
