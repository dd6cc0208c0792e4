namespace Cloudlets.Benchmarks.Migration;

/// <summary>Migration through the library against <c>virsh migrate --live --p2p</c> in one lab run.</summary>
public static class MigrationComparison
{
    /// <summary>Runs the comparison and prints one JSON object. Not written yet: see issue 3.</summary>
    public static Task<int> RunAsync(string[] args)
    {
        Console.Error.WriteLine("migration comparison: not implemented yet");
        return Task.FromResult(2);
    }
}
