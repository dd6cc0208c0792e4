using Cloudlets.Core.Options;

namespace Cloudlets.Mqtt.Tests;

public sealed class MqttOptionsTests
{
    [Category("BadInput")]
    [Test]
    public void Start_EveryOptionWrong_ListsEveryError()
    {
        var options = new MqttPublisherOptions
        {
            VantagePoint = "a/b",
            BatchPeriod = TimeSpan.Zero,
            MaxSamplesPerMessage = 0,
            MaxBufferedSamples = 0,
            Broker = new MqttBrokerOptions { Broker = new Uri("http://x"), Password = "p", KeepAlive = TimeSpan.Zero, ReconnectMinDelay = TimeSpan.FromMinutes(5) },
        };

        var ex = Assert.Throws<OptionsValidationException>(() => MqttLatencyPublisher.Start(options));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.SupersetOf(new[]
        {
            "Broker.Broker", "Broker.Password", "Broker.KeepAlive", "Broker.ReconnectMinDelay", "Broker.ReconnectMaxDelay",
            "VantagePoint", "BatchPeriod", "MaxSamplesPerMessage", "MaxBufferedSamples",
        }));
    }

    [Category("BadInput")]
    [Test]
    public void Validate_CaFileWithoutTls_IsAnError()
    {
        var errors = new OptionsErrors();
        new MqttBrokerOptions { Broker = new Uri("mqtt://127.0.0.1"), CaCertificateFile = "/nonexistent/ca.pem" }.Validate(errors);

        Assert.That(errors.Errors.Select(e => e.Message), Has.Some.Contains("not mqtts").And.Some.Contains("does not exist"));
    }

    [TestCase("mqtt://127.0.0.1", 1883, false)]
    [TestCase("mqtts://127.0.0.1", 8883, true)]
    [TestCase("mqtts://127.0.0.1:9999", 9999, true)]
    public void Port_Scheme_GivesTheDefaultPort(string uri, int port, bool tls)
    {
        var options = new MqttBrokerOptions { Broker = new Uri(uri) };

        Assert.That((options.Port, options.UsesTls), Is.EqualTo((port, tls)));
    }

    [Category("BadInput")]
    [Test]
    public void Start_SourceWithEmptyVantagePointList_IsAnError()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => MqttLatencySampleSource.Start(new MqttSampleSourceOptions
        {
            Broker = new MqttBrokerOptions { Broker = new Uri("mqtt://127.0.0.1") },
            VantagePoints = [],
        }));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "VantagePoints" }));
    }
}
