using Cloudlets.Core.Probing;

namespace Cloudlets.Mqtt;

/// <summary>
/// The publisher's bounded buffer: a ring of samples; when full, the oldest is dropped (and counted) to make room.
/// One consumer copies a prefix out, publishes it, and then commits it; samples dropped meanwhile are not removed twice.
/// </summary>
internal sealed class SampleRing(int capacity)
{
    private readonly LatencySample[] _items = new LatencySample[capacity];
    private readonly Lock _gate = new();
    private long _head;   // absolute index of the oldest sample held
    private long _tail;   // absolute index one past the newest
    private long _dropped;

    public int Capacity => _items.Length;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return (int)(_tail - _head);
            }
        }
    }

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Adds a sample; returns <see langword="true"/> when the oldest was dropped to make room.</summary>
    public bool Add(in LatencySample sample)
    {
        lock (_gate)
        {
            var full = _tail - _head == _items.Length;
            if (full)
            {
                _items[_head % _items.Length] = default;
                _head++;
                _dropped++;
            }

            _items[_tail % _items.Length] = sample;
            _tail++;
            return full;
        }
    }

    /// <summary>Copies up to <paramref name="destination"/>.Length of the oldest samples; returns the absolute index of the first and the count.</summary>
    public (long Start, int Count) Peek(Span<LatencySample> destination)
    {
        lock (_gate)
        {
            var n = (int)Math.Min(destination.Length, _tail - _head);
            for (var i = 0; i < n; i++)
            {
                destination[i] = _items[(_head + i) % _items.Length];
            }

            return (_head, n);
        }
    }

    /// <summary>Removes the samples a <see cref="Peek"/> returned (those not already dropped).</summary>
    public void Commit(long start, int count)
    {
        lock (_gate)
        {
            var end = Math.Min(start + count, _tail);
            while (_head < end)
            {
                _items[_head % _items.Length] = default;
                _head++;
            }
        }
    }
}
