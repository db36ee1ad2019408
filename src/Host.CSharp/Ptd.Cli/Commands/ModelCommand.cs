using Ptd.Core;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd model NAME [--n 10 | --R 2 ...] [-o model.json]</c>: writes a built-in model.</summary>
public sealed class ModelCommand : ICommand
{
    private static readonly string[] Keys = ["n", "R", "k", "rate", "fl", "fr"];

    /// <inheritdoc />
    public string Name => "model";

    /// <inheritdoc />
    public string Summary => "write a built-in model as a model file (ptd-graph/1 JSON)";

    /// <inheritdoc />
    public string Usage =>
        "ptd model NAME [--n N] [--R R] [--k K] [--rate X] [--fl X] [--fr X] [-o FILE] [--matrix [--theta ...]]\n" +
        "ptd model SPEC [-o FILE]        (SPEC like coalescent:n=10)\n" +
        "ptd model --list\n\n" +
        "Writes the model to FILE (or stdout). Omitting a rate makes it a parameter θ.\n" +
        "--matrix writes the matrix form (ptd-matrix/1: α and S, or T for a discrete model) at θ instead.\n\nBuilt-in models:\n" +
        ModelSpec.help();

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, Keys.Select(k => "--" + k).Append("--output").Append("--theta"), ["--list", "--matrix"],
            new Dictionary<string, string> { ["-o"] = "--output", ["-n"] = "--n" });
        if (args.Has("--list"))
        {
            stdout.WriteLine(ModelSpec.help());
            return 0;
        }
        var name = args.Positional("model name (see ptd model --list)");
        var given = Keys.Where(k => args.Has("--" + k)).Select(k => $"{k}={args.Get("--" + k)}").ToArray();
        if (given.Length > 0 && name.Contains(':'))
            throw new UsageException($"give the model's keys either in the spec ('{name}') or as options, not both");
        var spec = given.Length > 0 ? $"{name}:{string.Join(",", given)}" : name;
        if (!ModelSpec.isSpec(spec))
            throw new UsageException($"unknown model '{name}'. Built-in models: {string.Join(", ", ModelSpec.names)}");
        var graph = ModelSpec.build(spec);
        var output = args.Get("--output");
        string? matrixJson = null;
        if (args.Has("--matrix"))
            matrixJson = ModelFile.toMatrixJson(graph, graph.Weights(Theta.For(graph, args)));
        else if (args.Has("--theta"))
            throw new UsageException("--theta applies to --matrix only (a model file keeps its parameters symbolic)");
        if (output is null)
        {
            stdout.WriteLine(matrixJson ?? ModelFile.toJson(graph));
        }
        else
        {
            if (matrixJson is null) ModelSource.Save(graph, output);
            else ModelSource.SaveText(matrixJson, output);
            stderr.WriteLine($"wrote {output}: {graph.VertexCount} vertices, {graph.EdgeCount} edges, {graph.ParamLength} parameter(s)");
        }
        return 0;
    }
}
