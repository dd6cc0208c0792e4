using NUnit.Framework;

namespace Cloudlets.TestUtils;

/// <summary>
/// The ordered tests of a fixture that are the steps of one story: each starts where the steps before it left the
/// lab (a guest moved, a controller stopped), so run alone it would fail on a state it never set up, with a message
/// about that state. A step that enters before its predecessors ran fails at once and says to run the whole
/// fixture. Steps are numbered as their <c>[Order]</c>, from 1; a step runs (and counts as run) whether the ones
/// before it passed or failed.
/// </summary>
public sealed class StorySteps(string fixture)
{
    private readonly HashSet<int> _entered = [];

    /// <summary>Marks <paramref name="step"/> as run; fails when a step before it has not run in this fixture.</summary>
    public void Enter(int step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        var missing = Enumerable.Range(1, step - 1).Where(s => !_entered.Contains(s)).ToList();
        _ = _entered.Add(step);
        if (missing.Count > 0)
        {
            Assert.Fail($"Step {step} of {fixture} starts where step(s) {string.Join(", ", missing)} left the lab, and they did not run here: run the whole fixture (dotnet test --filter FullyQualifiedName~{fixture}).");
        }
    }
}
