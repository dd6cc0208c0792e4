using Cloudlets.Lab.Guests;

namespace Cloudlets.Lab.Tests.Guests;

public class GuestReadingTests
{
    [Test]
    public void Parse_ServiceLine_ReadsBootIdAndCounter()
    {
        var reading = GuestReading.Parse("boot=4bac6ee8-b96f-4322-9d54-c7d6c9dbc165 counter=42\n");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reading.BootId, Is.EqualTo("4bac6ee8-b96f-4322-9d54-c7d6c9dbc165"));
            Assert.That(reading.Counter, Is.EqualTo(42));
        }
    }

    [TestCase("")]
    [TestCase("boot= counter=1")]
    [TestCase("boot=x")]
    [TestCase("counter=1")]
    [TestCase("boot=x counter=-1")]
    [TestCase("boot=x counter=abc")]
    public void Parse_NotAServiceLine_ThrowsFormatException(string line) =>
        Assert.That(() => GuestReading.Parse(line), Throws.TypeOf<FormatException>());
}
