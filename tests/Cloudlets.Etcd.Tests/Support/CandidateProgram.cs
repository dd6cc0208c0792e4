namespace Cloudlets.Etcd.Tests.Support;

public static class CandidateProgram
{
    public static Task<int> RunAsync(string[] args) => Task.FromResult(2);
}
