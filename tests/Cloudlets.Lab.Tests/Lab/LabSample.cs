using System.Diagnostics;
using Cloudlets.Probing.Commands;

namespace Cloudlets.Lab.Tests.Lab;

/// <summary>Runs the console sample <c>cloudlets-lab</c> (built next to the tests) as a child process.</summary>
internal static class LabSample
{
    private static string SampleDll => Path.Combine(AppContext.BaseDirectory, "cloudlets-lab.dll");

    /// <summary>The start information for <c>cloudlets-lab ARGS</c>, with extra environment variables.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
        var psi = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(SampleDll);
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        return psi;
    }

    /// <summary>Runs <c>cloudlets-lab ARGS</c> to its end (at most 3 minutes).</summary>
    public static async Task<CommandResult> RunAsync(params string[] arguments)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var psi = StartInfo(arguments);
        return await LocalCommandRunner.Instance.RunAsync(new CommandLine(psi.FileName, [.. psi.ArgumentList]), timeout.Token);
    }
}
