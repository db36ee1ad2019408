using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd sample MODEL -n 1000 [--seed s]</c>: one sampled value per line.</summary>
public sealed class SampleCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "sample";

    /// <inheritdoc />
    public string Summary => "draw random absorption times (one per line)";

    /// <inheritdoc />
    public string Usage =>
        "ptd sample MODEL [-n 1000] [--theta ...] [--seed S] [--reward-slot I] [--json]\n\n" +
        "Prints one value per line, or {\"samples\": [...]} with --json.\n" +
        "Deterministic for a given seed (default seed 1, so runs are reproducible unless you change it).";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--count", "--theta", "--seed", "--reward-slot"], ["--json"],
            new Dictionary<string, string> { ["-n"] = "--count" });
        var json = args.Has("--json");
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var n = args.Int("--count", 1000, 0, 100_000_000);
        var seed = args.Int("--seed", 1);
        var model = output.Stage("load model", () => PhaseTypeModel.Load(args.Positional("MODEL")));
        var theta = Theta.For(model.Graph, args);
        double[]? reward = args.Has("--reward-slot") ? model.Reward(args.Int("--reward-slot", 0, 0)) : null;
        var values = output.Stage($"sample {n:N0}", () => model.Sample(n, theta, seed, reward));
        if (json) output.Json(new System.Text.Json.Nodes.JsonObject { ["samples"] = output.Numbers(values) });
        else foreach (var v in values) stdout.WriteLine(Output.Num(v));
        return 0;
    }
}
