namespace Cloudlets.Etcd.Tests;

public static class Program
{
    public static Task<int> Main(string[] args) => Support.CandidateProgram.RunAsync(args);
}
