using BenchmarkDotNet.Running;

// `migration` runs the side-by-side migration measurement (library against virsh) in a real lab;
// `ticks` times the regional policy tick window by window (see TickProbe);
// anything else goes to BenchmarkDotNet (for example `--filter *Policy*`).
if (args.Length > 0 && args[0] == "migration")
{
    return await Cloudlets.Benchmarks.Migration.MigrationComparison.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "ticks")
{
    return Cloudlets.Benchmarks.Decisions.TickProbe.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Cloudlets.Benchmarks.Migration.MigrationComparison).Assembly).Run(args);
return 0;
