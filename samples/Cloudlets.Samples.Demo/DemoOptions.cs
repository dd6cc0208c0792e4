namespace Cloudlets.Samples.Demo;

/// <summary>The command line of <c>cloudlets-demo</c>.</summary>
internal sealed record DemoOptions
{
    public string? ScenarioPath { get; init; }

    public string? JsonPath { get; init; }

    public string? PlotPath { get; init; }

    public bool Keep { get; init; }

    public bool Plain { get; init; }

    public bool Help { get; init; }

    public string Name { get; init; } = "demo";

    public static DemoOptions Parse(IReadOnlyList<string> args)
    {
        var options = new DemoOptions();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--scenario" => options with { ScenarioPath = Value() },
                "--json" => options with { JsonPath = Value() },
                "--plot" => options with { PlotPath = Value() },
                "--name" => options with { Name = Value() },
                "--keep" => options with { Keep = true },
                "--plain" => options with { Plain = true },
                "-h" or "--help" => options with { Help = true },
                _ => throw new FormatException($"Unknown argument '{args[i]}'."),
            };
        }

        if (options.PlotPath is { } plot && !plot.EndsWith(".svg", StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"--plot writes SVG: give a path ending in .svg (not '{plot}').");
        }

        // The lab validates the name too, but only after this process has done work; check early.
        if (!Cloudlets.Lab.LabNaming.IsValidLabName(options.Name))
        {
            throw new FormatException($"'{options.Name}' is not a valid lab name.");
        }

        return options;
    }
}
