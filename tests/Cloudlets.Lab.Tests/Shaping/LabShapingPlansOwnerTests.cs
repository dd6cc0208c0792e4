using Cloudlets.Lab.Shaping;

namespace Cloudlets.Lab.Tests.Shaping;

/// <summary>
/// The shaping owner of a lab is what <c>clear</c> (and a later <c>shape</c>) find a killed
/// process's rules by: if the derivation changed between two builds, the rules a running lab holds
/// would no longer be found and cleared. Pinned to literal values, so such a change is a visible
/// test failure rather than leftovers on users' machines.
/// </summary>
public sealed class LabShapingPlansOwnerTests
{
    [TestCase("cloudlets", "lab-653d139c")]
    [TestCase("demo", "lab-aefd3536")]
    [TestCase("t-000000", "lab-15c8bb7a")]
    public void OwnerFor_LabName_IsThePinnedValue(string labName, string owner) =>
        Assert.That(LabShapingPlans.OwnerFor(labName), Is.EqualTo(owner));

    [Test]
    public void OwnerFor_TwoLabNames_AreDifferentOwners() =>
        Assert.That(LabShapingPlans.OwnerFor("lab-a"), Is.Not.EqualTo(LabShapingPlans.OwnerFor("lab-b")));
}
