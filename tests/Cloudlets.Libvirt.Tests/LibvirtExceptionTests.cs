using Cloudlets.Core.Hypervisors;

namespace Cloudlets.Libvirt.Tests;

public class LibvirtExceptionTests
{
    [TestCase(42, 12, "Domain not found", HypervisorErrorKind.NotFound, false)]
    [TestCase(28, 10, "exists", HypervisorErrorKind.AlreadyExists, false)]
    [TestCase(3, 0, "not supported", HypervisorErrorKind.NotSupported, false)]
    [TestCase(74, 10, "p2p not supported", HypervisorErrorKind.NotSupported, false)]
    [TestCase(78, 10, "operation aborted", HypervisorErrorKind.Aborted, false)]
    [TestCase(68, 10, "timed out", HypervisorErrorKind.Timeout, true)]
    [TestCase(8, 0, "invalid argument", HypervisorErrorKind.InvalidArgument, false)]
    [TestCase(1, 7, "internal error: client socket is closed", HypervisorErrorKind.ConnectionLost, true)]
    [TestCase(38, 7, "unable to connect", HypervisorErrorKind.ConnectionLost, true)]
    [TestCase(1, 10, "internal error: qemu unexpectedly closed the monitor", HypervisorErrorKind.OperationFailed, false)]
    [TestCase(55, 10, "domain is not running", HypervisorErrorKind.OperationFailed, false)]
    [TestCase(45, 66, "authentication failed: !!! SSH HOST KEY VERIFICATION FAILED !!!", HypervisorErrorKind.AuthenticationFailed, false)]
    [TestCase(45, 50, "authentication failed: authentication with private key '/k' has failed: Username/PublicKey combination invalid", HypervisorErrorKind.AuthenticationFailed, false)]
    [TestCase(85, 50, "SSH transport error: SSH host key for '198.18.1.11' (FD:E8) was not accepted", HypervisorErrorKind.AuthenticationFailed, false)]
    [TestCase(98, 66, "libssh transport error: failed to authenticate: Access denied for 'publickey'.", HypervisorErrorKind.AuthenticationFailed, false)]
    [TestCase(85, 50, "SSH transport error: Remote command terminated with non-zero code: 1", HypervisorErrorKind.OperationFailed, false)]
    [TestCase(94, 7, "authentication unavailable", HypervisorErrorKind.AuthenticationFailed, false)]
    public void Constructor_LibvirtError_MapsKindAndTransience(int code, int domain, string message, HypervisorErrorKind kind, bool transient)
    {
        var ex = new LibvirtException("virX", code, domain, 2, message, "s1", null, null, 7, 0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex.Kind, Is.EqualTo(kind));
            Assert.That(ex.IsTransient, Is.EqualTo(transient));
            Assert.That(ex.Message, Does.Contain(message).And.Contain("virX").And.Contain(code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(ex.Str1, Is.EqualTo("s1"));
            Assert.That(ex.Int1, Is.EqualTo(7));
            Assert.That(ex, Is.InstanceOf<HypervisorException>());
        }
    }
}
