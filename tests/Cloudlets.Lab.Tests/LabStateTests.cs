using Cloudlets.Lab;

namespace Cloudlets.Lab.Tests;

public class LabStateTests
{
    [Test]
    public void Parse_WhatToJsonWrote_RoundTrips()
    {
        var state = new LabState
        {
            Name = "t1",
            Subnet = 9,
            Phase = "ready",
            Transient = true,
            Owner = 4242,
            OwnerStartTime = 987654321,
            Hosts = [new LabStateHost(1, "5c7c1e43-3f3c-4a57-9d0b-2b0b7ef0f0a1"), new LabStateHost(2, "0d0e6a39-56a5-4f5f-9a3e-0c1a6f0d1e22")],
            Guests = [new LabStateGuest(1, "cloudlet-2")],
        };

        var parsed = LabState.Parse(state.ToJson());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(parsed.Name, Is.EqualTo("t1"));
            Assert.That(parsed.Subnet, Is.EqualTo(9));
            Assert.That(parsed.Phase, Is.EqualTo("ready"));
            Assert.That((parsed.Transient, parsed.Owner, parsed.OwnerStartTime), Is.EqualTo((true, 4242, 987654321UL)));
            Assert.That(parsed.Hosts, Is.EqualTo(state.Hosts));
            Assert.That(parsed.Guests, Is.EqualTo(state.Guests));
        }
    }

    [Test]
    public void Parse_HandWrittenFile_ReadsCamelCaseFields()
    {
        const string json = """
            {"version":2,"name":"lab-a","subnet":3,"phase":"starting","hosts":[{"index":1,"hostUuid":"u1"}],"guests":[],
             "namespaces":[{"name":"lab-a-sw","inode":4026532000},{"name":"lab-a-h1","inode":0}],
             "processes":[{"host":1,"role":"libvirtd","pid":42,"startTime":7,"executable":"/usr/sbin/libvirtd"}]}
            """;
        var state = LabState.Parse(json);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(state.Name, Is.EqualTo("lab-a"));
            Assert.That(state.Hosts.Single().HostUuid, Is.EqualTo("u1"));
            Assert.That(state.Guests, Is.Empty);
            Assert.That(state.Namespaces, Is.EqualTo(new[] { new Cloudlets.Lab.Ownership.LabOwnedNamespace("lab-a-sw", 4026532000), new Cloudlets.Lab.Ownership.LabOwnedNamespace("lab-a-h1", 0) }));
            Assert.That(state.Processes.Single().Identity, Is.EqualTo(new Cloudlets.Lab.Processes.ProcessIdentity(42, 7, "/usr/sbin/libvirtd")));
        }
    }

    [Test]
    public void Parse_Sites_RoundTripAndOldFilesHaveNone()
    {
        var plan = new LabAddressPlan(9);
        var state = new LabState
        {
            Name = "t1",
            Subnet = 9,
            Sites = [.. Enumerable.Range(1, 3).Select(s => new LabStateSite(s, LabNaming.SiteName(s), LabNaming.SiteNamespace("t1", s), plan.Site(s).ToString()))],
            Namespaces = [new Cloudlets.Lab.Ownership.LabOwnedNamespace("t1-s3", 4026532001)],
        };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabState.Parse(state.ToJson()).Sites, Is.EqualTo(state.Sites));
            Assert.That(LabState.Parse(state.ToJson()).Namespaces.Single().Name, Is.EqualTo("t1-s3"), "a site's namespace is one the teardown may remove");
            Assert.That(LabState.Parse("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[]}""").Sites, Is.Empty, "a state file written before there were sites");
        }
    }

    [TestCase(LabTransport.Tcp, "tcp")]
    [TestCase(LabTransport.Tls, "tls")]
    [TestCase(LabTransport.Ssh, "ssh")]
    [TestCase(LabTransport.TlsSasl, "tls-sasl")]
    public void Parse_Transport_RoundTripsAndOldFilesAreTcp(LabTransport transport, string name)
    {
        var state = new LabState { Name = "t1", Subnet = 9, Transport = LabState.TransportName(transport) };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(LabState.Parse(state.ToJson()).TransportKind, Is.EqualTo(transport));
            Assert.That(state.ToJson(), Does.Contain($"\"transport\": \"{name}\""));
            Assert.That(LabState.Parse("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[]}""").TransportKind, Is.EqualTo(LabTransport.Tcp), "a state file written before there was a choice");
        }
    }

    [TestCase("not json")]
    [TestCase("null")]
    [TestCase("""{"version":2,"name":"Bad Name","subnet":3}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":0}""")]
    [TestCase("""{"version":1,"name":"ok","subnet":3}""")]
    [TestCase("""{"version":3,"name":"ok","subnet":3}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[{"index":99,"hostUuid":"u"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"guests":[{"index":0,"initialHost":"cloudlet-1"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"namespaces":[{"name":"other-h1","inode":1}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"namespaces":null}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"processes":[{"host":1,"role":"libvirtd","pid":42,"startTime":7,"executable":"libvirtd"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"processes":[{"host":1,"role":"libvirtd","pid":0,"startTime":7,"executable":"/usr/sbin/libvirtd"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"processes":[{"host":9,"role":"libvirtd","pid":4,"startTime":7,"executable":"/usr/sbin/libvirtd"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"transport":"udp"}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"transport":"TLS"}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"transport":"libssh"}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"sites":[{"index":2,"name":"site-2","namespace":"ok-s2","address":"198.19.3.17"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"sites":[{"index":1,"name":"site-1","namespace":"other-edge","address":"198.18.3.1"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"sites":[{"index":1,"name":"site-1","namespace":"ok-edge","address":"198.18.3.1"},{"index":2,"name":"site-2","namespace":"ok-s2","address":"198.19.3.33"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"sites":[{"index":1,"name":"site-1","namespace":"ok-edge","address":"198.18.3.1"},{"index":2,"name":"site-9","namespace":"ok-s2","address":"198.19.3.17"}]}""")]
    [TestCase("""{"version":2,"name":"ok","subnet":3,"hosts":[],"guests":[],"namespaces":[],"processes":[],"sites":[null]}""")]
    public void Parse_InvalidState_ThrowsLabException(string json) =>
        Assert.That(() => LabState.Parse(json), Throws.InstanceOf<LabException>());

    [Test]
    public void Parse_BrokerAndLabWideProcesses_RoundTrip()
    {
        var state = new LabState
        {
            Name = "t1",
            Subnet = 9,
            Hosts = [new LabStateHost(1, "u1")],
            Processes = [new Cloudlets.Lab.Ownership.LabOwnedProcess(0, "mosquitto", 42, 7, "/usr/sbin/mosquitto"), new Cloudlets.Lab.Ownership.LabOwnedProcess(0, "agent site-1", 43, 8, "/usr/share/dotnet/dotnet")],
            Broker = new LabStateBroker(1883, "/opt/agent/cloudlets-agent.dll", "/usr/share/dotnet/dotnet", 500, 1000),
        };

        var parsed = LabState.Parse(state.ToJson());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(parsed.Broker, Is.EqualTo(state.Broker));
            Assert.That(parsed.Processes, Is.EqualTo(state.Processes), "host 0: a process of the lab, not of one host");
            Assert.That(LabState.Parse(new LabState { Name = "t1", Subnet = 9 }.ToJson()).Broker, Is.Null, "a lab without agents has no broker");
        }
    }

    [TestCase(0, "/a/cloudlets-agent.dll")]
    [TestCase(1883, "cloudlets-agent.dll")]
    public void Parse_BrokerOutOfRange_Throws(int port, string assembly)
    {
        var json = new LabState { Name = "t1", Subnet = 9, Broker = new LabStateBroker(port, assembly, null, 500, 1000) }.ToJson();
        Assert.That(() => LabState.Parse(json), Throws.TypeOf<LabException>().With.Message.Contains("broker"));
    }
}
