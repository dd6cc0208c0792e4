using Cloudlets.Lab;

namespace Cloudlets.TestUtils;

/// <summary>
/// The gate of the lab test tier: a lab test calls <see cref="Require"/> first. When something the
/// lab needs is missing, the test FAILS when the environment variable CI is <c>true</c> (the lab
/// tier is mandatory in CI) and is ignored with the reason otherwise (a developer laptop).
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

    /// <summary>Fails (CI=true) or ignores (otherwise) the current test unless the lab can run here.</summary>
    /// <param name="cacheFolder">The guest image cache; the default is the lab's default cache.</param>
    public static void Require(string? cacheFolder = null)
    {
        var reason = MissingReason(cacheFolder);
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
