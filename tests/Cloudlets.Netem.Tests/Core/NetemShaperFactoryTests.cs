using Cloudlets.Core.Options;

namespace Cloudlets.Netem.Tests.Core;

public sealed class NetemShaperFactoryTests
{
    [Category("BadInput")]
    [Test]
    public void CreateAsync_BadOptions_ListsEveryErrorAndRunsNothing()
    {
        var runner = new RecordingRunner();
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => NetemShaperFactory.CreateAsync(new NetemShaperFactoryOptions
        {
            Backend = (ShapingBackend)9,
            Runner = runner,
            NfQueue = new NfQueueShaperOptions { RealtimePriority = -1 },
            TcNetem = new TcNetemShaperOptions { HandleRecordDirectory = "relative" },
        }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "Backend", "NfQueue.RealtimePriority", "TcNetem.HandleRecordDirectory" }));
            Assert.That(runner.Commands, Is.Empty);
        }
    }
}
