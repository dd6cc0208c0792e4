using Cloudlets.Core.Options;

namespace Cloudlets.Libvirt.Tests;

public class LibvirtConvergenceOptionsTests
{
    private static IReadOnlyList<string> Paths(IValidatableOptions options)
    {
        var errors = new OptionsErrors();
        options.Validate(errors);
        return [.. errors.Errors.Select(e => e.Path)];
    }

    [Test]
    public void Defaults_AreOffWithNovaSteps()
    {
        var o = new LibvirtConvergenceOptions();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o.FinalMaxDowntime, Is.Null);
            Assert.That(o.DowntimeSteps, Is.EqualTo(10));
            Assert.That(o.DowntimeStepDelay, Is.EqualTo(TimeSpan.FromSeconds(10)));
            Assert.That(o.CompletionTimeout, Is.Null);
            Assert.That(o.StallTimeout, Is.Null);
            Assert.That(o.CompletionAction, Is.EqualTo(LibvirtCompletionAction.Abort));
            Assert.That(o.IsActive, Is.False, "nothing watches a migration by default");
            Assert.That(Paths(o), Is.Empty);
        }
    }

    [Test]
    public void Defaults_MigrationOptionsHaveNoConvergenceExtras()
    {
        var o = new LibvirtMigrationOptions();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o.AutoConvergeInitialPercent, Is.Null);
            Assert.That(o.AutoConvergeIncrementPercent, Is.Null);
            Assert.That(o.ParallelConnections, Is.Null);
            Assert.That(o.Convergence, Is.Not.Null);
            Assert.That(Paths(o), Is.Empty);
        }
    }

    [Test]
    public void Validate_EdgesOfEveryRange_HaveNoErrors()
    {
        var low = new LibvirtMigrationOptions
        {
            AutoConverge = true,
            AutoConvergeInitialPercent = 1,
            AutoConvergeIncrementPercent = 1,
            ParallelConnections = 1,
            Convergence = { FinalMaxDowntime = TimeSpan.FromMilliseconds(1), DowntimeSteps = 1, DowntimeStepDelay = TimeSpan.FromMilliseconds(100), CompletionTimeout = TimeSpan.FromSeconds(1), StallTimeout = TimeSpan.FromSeconds(1) },
        };
        var high = new LibvirtMigrationOptions
        {
            AutoConverge = true,
            AllowPostCopy = true,
            AutoConvergeInitialPercent = 99,
            AutoConvergeIncrementPercent = 99,
            ParallelConnections = 255,
            Convergence = { FinalMaxDowntime = TimeSpan.FromHours(1), DowntimeSteps = 100, DowntimeStepDelay = TimeSpan.FromHours(1), CompletionTimeout = TimeSpan.FromHours(24), StallTimeout = TimeSpan.FromHours(1), CompletionAction = LibvirtCompletionAction.PostCopy },
        };

        Assert.That(Paths(low).Concat(Paths(high)), Is.Empty);
    }

    [Test]
    public void Validate_EveryConvergenceOptionOutOfRange_ListsEveryError()
    {
        var o = new LibvirtMigrationOptions
        {
            AutoConvergeInitialPercent = 0,
            AutoConvergeIncrementPercent = 100,
            ParallelConnections = 256,
            Convergence =
            {
                FinalMaxDowntime = TimeSpan.Zero,
                DowntimeSteps = 0,
                DowntimeStepDelay = TimeSpan.FromMilliseconds(99),
                CompletionTimeout = TimeSpan.FromHours(25),
                StallTimeout = TimeSpan.FromMilliseconds(999),
                CompletionAction = LibvirtCompletionAction.PostCopy,
            },
        };

        Assert.That(
            Paths(o),
            Is.EquivalentTo(new[]
            {
                // Out of range, and without AutoConverge.
                "AutoConvergeInitialPercent", "AutoConvergeInitialPercent",
                "AutoConvergeIncrementPercent", "AutoConvergeIncrementPercent",
                "ParallelConnections",
                "Convergence.FinalMaxDowntime", "Convergence.DowntimeSteps", "Convergence.DowntimeStepDelay",
                "Convergence.CompletionTimeout", "Convergence.StallTimeout",

                // PostCopy without AllowPostCopy.
                "Convergence.CompletionAction",
            }));
    }

    [Test]
    public void Validate_UndefinedCompletionActionAndMissingConvergence_AreErrors()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Paths(new LibvirtConvergenceOptions { CompletionAction = (LibvirtCompletionAction)9 }), Is.EqualTo(new[] { "CompletionAction" }));
            Assert.That(Paths(new LibvirtMigrationOptions { Convergence = null! }), Is.EqualTo(new[] { "Convergence" }));
        }
    }

    [Test]
    public void Clone_CopiesConvergenceToo()
    {
        var o = new LibvirtMigrationOptions { Convergence = { CompletionTimeout = TimeSpan.FromSeconds(30) } };

        var copy = o.Clone();
        o.Convergence.CompletionTimeout = TimeSpan.FromSeconds(1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(copy.Convergence, Is.Not.SameAs(o.Convergence));
            Assert.That(copy.Convergence.CompletionTimeout, Is.EqualTo(TimeSpan.FromSeconds(30)));
        }
    }

    [TestCase(null, false)]
    [TestCase("final", true)]
    [TestCase("completion", true)]
    [TestCase("stall", true)]
    public void IsActive_AnyControlSet_True(string? set, bool expected)
    {
        var o = new LibvirtConvergenceOptions
        {
            FinalMaxDowntime = set == "final" ? TimeSpan.FromMilliseconds(500) : null,
            CompletionTimeout = set == "completion" ? TimeSpan.FromSeconds(60) : null,
            StallTimeout = set == "stall" ? TimeSpan.FromSeconds(10) : null,
        };

        Assert.That(o.IsActive, Is.EqualTo(expected));
    }
}
