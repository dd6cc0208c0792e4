using System.Runtime.CompilerServices;
using Cloudlets.Libvirt.Native;

namespace Cloudlets.Libvirt.Tests.Native;

public class NativeStructsTests
{
    [Test]
    public void SizeOf_EveryStruct_MatchesTheLp64CLayout()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Unsafe.SizeOf<VirDomainInfo>(), Is.EqualTo(40));
            Assert.That(Unsafe.SizeOf<VirNodeInfo>(), Is.EqualTo(64));
            Assert.That(Unsafe.SizeOf<VirTypedParameter>(), Is.EqualTo(96));
            Assert.That(Unsafe.SizeOf<VirError>(), Is.EqualTo(80));
            Assert.That(Unsafe.SizeOf<VirConnectCredential>(), Is.EqualTo(48));
            Assert.That(Unsafe.SizeOf<VirConnectAuth>(), Is.EqualTo(32));
        }
    }
}
