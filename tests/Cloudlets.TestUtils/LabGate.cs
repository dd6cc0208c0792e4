using Cloudlets.Lab;

namespace Cloudlets.TestUtils;

/// <summary>
/// The one gate of the lab test tier, for every test project: a lab test calls <see cref="Require"/>
/// (a full cloudlet lab) or <see cref="RequireRoot"/> (root on Linux and some programs, for shaping
/// and raw-socket tests) first. When something is missing, the test FAILS when the environment
/// variable CI is <c>true</c> (the lab tier is mandatory in CI) and is ignored with the reason
/// otherwise (a developer laptop). Root means one thing everywhere: an effective user id of 0
/// (<see cref="Environment.IsPrivilegedProcess"/>, as <see cref="LabPrerequisites"/> checks it).
/// </summary>
public static class LabGate
{
    /// <summary>Whether the environment variable CI is <c>true</c>.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>What is missing for a lab on this machine, as one message; null when nothing is.</summary>
    public static string? MissingReason(string? cacheFolder = null)
    {
        if (!OperatingSystem.IsLinux())
        {
            return "The cloudlet lab needs Linux.";
        }

        var missing = LabPrerequisites.FindMissing(cacheFolder);
        return missing.Count == 0 ? null : LabPrerequisites.Describe(missing);
    }

    /// <summary>What is missing for a root test that runs <paramref name="programs"/>; null when nothing is.</summary>
    /// <param name="what">What needs it, for the message (for example "Shaping tests").</param>
    /// <param name="programs">Programs that must be installed (found on the lab's search path).</param>
    public static string? MissingRootReason(string what, params IEnumerable<string> programs)
    {
        ArgumentException.ThrowIfNullOrEmpty(what);
        if (!OperatingSystem.IsLinux())
        {
            return what + " need Linux.";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return what + " need root.";
        }

        var absent = (programs ?? []).Where(p => LabPrerequisites.FindProgram(p) is null).ToList();
        return absent.Count == 0 ? null : $"{what} need the program(s) {string.Join(", ", absent)}.";
    }

    /// <summary>Fails (CI=true) or ignores (otherwise) the current test unless a cloudlet lab can run here.</summary>
    /// <param name="cacheFolder">The guest image cache; the default is the lab's default cache.</param>
    public static void Require(string? cacheFolder = null) => Decide(MissingReason(cacheFolder));

    /// <summary>Fails (CI=true) or ignores (otherwise) the current test unless it runs as root on Linux with <paramref name="programs"/> installed.</summary>
    /// <param name="what">What needs it, for the message (for example "Shaping tests").</param>
    /// <param name="programs">Programs that must be installed.</param>
    public static void RequireRoot(string what, params IEnumerable<string> programs) => Decide(MissingRootReason(what, programs));

    /// <summary>Fails (CI=true) or ignores (otherwise) the current test when <paramref name="reason"/> says what is missing; nothing when it is null.</summary>
    /// <param name="reason">What is missing, or null.</param>
    public static void Decide(string? reason)
    {
        if (reason is null)
        {
            return;
        }

        if (IsCi)
        {
            Assert.Fail("Lab tier is mandatory with CI=true. " + reason);
        }
        else
        {
            Assert.Ignore("Lab tier skipped (set CI=true to make this a failure). " + reason);
        }
    }
}
