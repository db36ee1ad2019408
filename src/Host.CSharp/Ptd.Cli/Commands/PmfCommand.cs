using System.Text.Json.Nodes;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd pmf MODEL --jumps 0,1,2</c>: probability mass and cdf (discrete).</summary>
public sealed class PmfCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "pmf";

    /// <inheritdoc />
    public string Summary => "probability mass and cdf of a discrete model at given jump counts";

    /// <inheritdoc />
    public string Usage => "ptd pmf MODEL --jumps 0,1,2 [--theta ...] [--json]";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--jumps", "--theta"], ["--json"]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var jumps = args.Ints("--jumps") ?? throw new UsageException("missing --jumps (e.g. --jumps 0,1,2)");
        var model = output.Stage("load model", () => PhaseTypeModel.Load(args.Positional("MODEL")));
        var theta = Theta.For(model.Graph, args);
        var result = output.Stage($"pmf at {jumps.Length} point(s)", () => model.Pmf(jumps, theta));
        if (args.Has("--json"))
        {
            var jumpArray = new JsonArray();
            foreach (var j in jumps) jumpArray.Add(j);
            output.Json(new JsonObject
            {
                ["jumps"] = jumpArray,
                ["pmf"] = output.Numbers(result.Density),
                ["cdf"] = output.Numbers(result.Cumulative),
            });
        }
        else
        {
            stdout.WriteLine($"{"k",-8} {"pmf",-24} {"cdf",-24}");
            for (var i = 0; i < jumps.Length; i++)
                stdout.WriteLine($"{jumps[i],-8} {Output.Num(result.Density[i]),-24} {Output.Num(result.Cumulative[i]),-24}");
        }
        return 0;
    }
}
