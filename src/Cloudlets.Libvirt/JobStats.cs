namespace Cloudlets.Libvirt;

/// <summary>Reads values out of libvirt job statistics (typed parameters copied into a dictionary).</summary>
internal static class JobStats
{
    public static long? Long(IReadOnlyDictionary<string, object>? stats, string key) =>
        stats is not null && stats.TryGetValue(key, out var v)
            ? v switch
            {
                ulong u => (long)u,
                long l => l,
                int i => i,
                uint ui => ui,
                _ => null,
            }
            : null;

    public static TimeSpan? Milliseconds(IReadOnlyDictionary<string, object>? stats, string key) =>
        Long(stats, key) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
}
