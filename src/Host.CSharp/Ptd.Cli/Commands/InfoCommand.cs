using System.Text.Json.Nodes;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd info MODEL</c>: vertices, edges, absorbing states, cycles, parameters.</summary>
public sealed class InfoCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "info";

    /// <inheritdoc />
    public string Summary => "describe a model: vertices, edges, absorbing states, cycles, parameters";

    /// <inheritdoc />
    public string Usage => "ptd info MODEL [--json] [--verbose]\n\nMODEL is a model file or a built-in spec such as coalescent:n=10.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, [], ["--json"]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var source = args.Positional("MODEL");
        var model = output.Stage("load model", () => PhaseTypeModel.Load(source));
        var info = output.Stage("analyse", model.Info);
        if (args.Has("--json"))
        {
            output.Json(new JsonObject
            {
                ["vertices"] = info.Vertices,
                ["edges"] = info.Edges,
                ["absorbing"] = info.AbsorbingStates,
                ["transient"] = info.TransientStates,
                ["acyclic"] = info.IsAcyclic,
                ["scc"] = info.StronglyConnectedComponents,
                ["largestScc"] = info.LargestComponent,
                ["parameters"] = info.Parameters,
                ["stateLength"] = info.StateLength,
                ["discrete"] = info.IsDiscrete,
            });
        }
        else
        {
            stdout.WriteLine($"model:            {source}");
            stdout.WriteLine($"kind:             {(info.IsDiscrete ? "discrete (DPH)" : "continuous (CPH)")}");
            stdout.WriteLine($"vertices:         {info.Vertices:N0} (including the start vertex)");
            stdout.WriteLine($"edges:            {info.Edges:N0}");
            stdout.WriteLine($"transient states: {info.TransientStates:N0}");
            stdout.WriteLine($"absorbing states: {info.AbsorbingStates:N0}");
            stdout.WriteLine($"acyclic:          {(info.IsAcyclic ? "yes" : "no")}");
            stdout.WriteLine($"SCCs:             {info.StronglyConnectedComponents:N0} (largest {info.LargestComponent:N0} vertices)");
            stdout.WriteLine($"parameters:       {info.Parameters}");
            stdout.WriteLine($"state length:     {info.StateLength}");
        }
        return 0;
    }
}
