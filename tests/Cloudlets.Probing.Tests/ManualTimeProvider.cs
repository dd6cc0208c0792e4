namespace Cloudlets.Probing.Tests;

/// <summary>A clock that moves only when told: timestamps in 100 ns units, UTC from a fixed start.</summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private long ticks;

    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref ticks);

    public override DateTimeOffset GetUtcNow() => Start.AddTicks(Interlocked.Read(ref ticks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref ticks, by.Ticks);
}
