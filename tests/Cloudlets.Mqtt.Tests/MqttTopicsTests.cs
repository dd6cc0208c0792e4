namespace Cloudlets.Mqtt.Tests;

public sealed class MqttTopicsTests
{
    [TestCase("cell-3", ExpectedResult = "cloudlets/v1/samples/cell-3")]
    [TestCase("campus_a.b", ExpectedResult = "cloudlets/v1/samples/campus_a.b")]
    public string Samples_ValidVantagePoint_IsItsTopic(string vantagePoint) => MqttTopics.Samples(vantagePoint);

    [TestCase("")]
    [TestCase("a/b")]
    [TestCase("+")]
    [TestCase("#")]
    [TestCase("café")]
    [TestCase("a b")]
    public void Samples_InvalidVantagePoint_Throws(string vantagePoint)
    {
        Assert.Throws<ArgumentException>(() => MqttTopics.Samples(vantagePoint));
    }

    [TestCase("cloudlets/v1/samples/cell-3", ExpectedResult = "cell-3")]
    [TestCase("cloudlets/v1/samples/a/b", ExpectedResult = null)]
    [TestCase("cloudlets/v2/samples/cell-3", ExpectedResult = null)]
    [TestCase("cloudlets/v1/samples/", ExpectedResult = null)]
    public string? TryGetVantagePoint_Topic_IsItsLastLevel(string topic) => MqttTopics.TryGetVantagePoint(topic);
}
