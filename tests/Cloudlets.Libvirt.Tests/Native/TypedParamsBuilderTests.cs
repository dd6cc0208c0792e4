using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt.Tests.Native;

public class TypedParamsBuilderTests
{
    [Test]
    public unsafe void Add_EveryType_ReadsBack()
    {
        using var p = new TypedParamsBuilder()
            .Add("migrate_uri", "tcp://198.18.0.12")
            .Add("bandwidth", 42UL)
            .Add("auto_converge.initial", 20)
            .AddList("compression", ["xbzrle", "mt"]);

        var values = p.Read();
        var found = LibvirtNative.virTypedParamsGetULLong(p.Pointer, p.Count, "bandwidth", out var bandwidth);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Count, Is.EqualTo(5));
            Assert.That(values["migrate_uri"], Is.EqualTo("tcp://198.18.0.12"));
            Assert.That(values["bandwidth"], Is.EqualTo(42UL));
            Assert.That(values["auto_converge.initial"], Is.EqualTo(20));
            Assert.That(values["compression"], Is.EqualTo("mt"), "a repeated name keeps one entry per value; the last is read back");
            Assert.That(found, Is.EqualTo(1));
            Assert.That(bandwidth, Is.EqualTo(42UL));
        }
    }

    [Test]
    public void Dispose_ManyBuilders_FreesEachWithoutCrashing()
    {
        for (var i = 0; i < 10_000; i++)
        {
            using var p = new TypedParamsBuilder().Add("migrate_uri", "tcp://127.0.0.1").Add("bandwidth", (ulong)i);
            Assert.That(p.Count, Is.EqualTo(2));
        }
    }

    [Test]
    public void Dispose_Twice_IsSafe()
    {
        var p = new TypedParamsBuilder().Add("x", 1);
        p.Dispose();
        p.Dispose();

        Assert.That(p.Count, Is.Zero);
    }
}
