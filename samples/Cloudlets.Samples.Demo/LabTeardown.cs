using Cloudlets.Core.Shaping;
using Cloudlets.Lab;
using Cloudlets.Lab.Shaping;

namespace Cloudlets.Samples.Demo;

/// <summary>The end of a demo run, shared by the single-VM and the fleet run.</summary>
internal static class LabTeardown
{
    /// <summary>
    /// Clears the lab's shaping and disposes the shaper, then the lab. The NFQUEUE delay line lives in this process:
    /// the rules are cleared before it goes, even with --keep (a kept lab is left unshaped rather than half-shaped).
    /// </summary>
    public static async Task DisposeAsync(CloudletLab lab, INetemShaper? shaper, DemoOptions options)
    {
        if (shaper is not null)
        {
            try
            {
                await lab.ClearShapingAsync(shaper, CancellationToken.None);
            }
            catch (ShapingException ex)
            {
                Console.Error.WriteLine($"clearing the shaping failed: {ex.Message}");
            }

            await shaper.DisposeAsync();
        }

        await lab.DisposeAsync();
        Console.WriteLine(options.Keep
            ? $"the lab is still up (--keep): cloudlets-lab status --name {options.Name}; cloudlets-lab down --name {options.Name}"
            : "the lab is torn down");
    }
}
