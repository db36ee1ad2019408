using System.Text.Json.Nodes;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd moments MODEL [--theta ...] [-k 3] [--reward-slot i]</c>.</summary>
public sealed class MomentsCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "moments";

    /// <inheritdoc />
    public string Summary => "mean, variance and raw moments of the absorption time (or a reward)";

    /// <inheritdoc />
    public string Usage =>
        "ptd moments MODEL [--theta 1,2,4] [-k 3] [--reward-slot I] [--json] [--no-cache] [--verbose]\n\n" +
        "  MODEL          a model file, a built-in spec, or a trace file (ptd trace record)\n" +
        "  --theta        parameter values (required when the model has parameters)\n" +
        "  -k             highest raw moment (default 2)\n" +
        "  --reward-slot  accumulate state[I] instead of time (e.g. a lineage class)\n" +
        "  --json         print {\"mean\", \"variance\", \"moments\": [...]}\n" +
        TraceCli.NoCacheUsage;

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--theta", "--k", "--reward-slot"], ["--json", TraceCli.NoCache],
            new Dictionary<string, string> { ["-k"] = "--k" });
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        using var store = TraceCli.OpenStore(args, output);
        var model = output.Stage("load model", () => PhaseTypeModel.Load(args.Positional("MODEL"), store));
        output.Progress($"{model.Graph.VertexCount:N0} vertices, {model.Graph.EdgeCount:N0} edges");
        var theta = Theta.For(model.Graph, args);
        var k = args.Int("--k", 2, 1, 170);
        int? slot = args.Has("--reward-slot") ? args.Int("--reward-slot", 0, 0) : null;
        var reward = model.Reward(slot);
        model.Graph.Weights(theta); // bad θ fails before any recording
        TraceCli.Trace(model, output);
        output.Stage("evaluate", () => model.Eliminate(theta));
        var result = output.Stage("moments", () => model.Moments(theta, k, reward));
        if (args.Has("--json"))
        {
            output.Json(new JsonObject
            {
                ["mean"] = output.Numbers([result.Mean])[0]?.DeepClone(),
                ["variance"] = output.Numbers([result.Variance])[0]?.DeepClone(),
                ["moments"] = output.Numbers(result.Moments),
            });
        }
        else
        {
            stdout.WriteLine($"mean      {Output.Num(result.Mean)}");
            stdout.WriteLine($"variance  {Output.Num(result.Variance)}");
            for (var i = 0; i < result.Moments.Count; i++)
                stdout.WriteLine($"E[T^{i + 1}]{new string(' ', Math.Max(1, 5 - (i + 1).ToString().Length))}{Output.Num(result.Moments[i])}");
        }
        TraceCli.Statistics(store, output);
        return 0;
    }
}
