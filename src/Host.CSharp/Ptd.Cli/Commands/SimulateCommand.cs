using System.Globalization;
using Ptd.Core;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd simulate MODEL --theta … -n 1000 --seed s [-o data.txt]</c>: data for <c>ptd infer</c>.</summary>
public sealed class SimulateCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "simulate";

    /// <inheritdoc />
    public string Summary => "simulate observations at a known θ (data for ptd infer)";

    /// <inheritdoc />
    public string Usage =>
        "ptd simulate MODEL --theta ... [-n 1000] [--seed S] [-o FILE]\n\n" +
        "Simulates n absorption times (continuous models) or jump counts (discrete models) at θ and\n" +
        "prints one observation per line — the format ptd infer --data reads. With -o the values go to\n" +
        "FILE under a '#' comment line recording the model, θ, n and seed. Deterministic for a seed\n" +
        "(default 1).";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--count", "--theta", "--seed", "--output"], [],
            new Dictionary<string, string> { ["-n"] = "--count", ["-o"] = "--output" });
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var n = args.Int("--count", 1000, 1, 100_000_000);
        var seed = args.Int("--seed", 1);
        var source = args.Positional("MODEL");
        var graph = output.Stage("load model", () => ModelSource.Load(source));
        var theta = Theta.For(graph, args);
        var values = output.Stage($"simulate {n:N0}", () => Sampling.sample(graph, graph.Weights(theta), n, seed));
        var text = new System.Text.StringBuilder(n * 20);
        foreach (var v in values) text.Append(Output.Num(v)).Append('\n');
        if (args.Get("--output") is { } path)
        {
            var header = string.Create(CultureInfo.InvariantCulture,
                $"# ptd simulate {source} --theta {string.Join(",", theta.Select(Output.Num))} -n {n} --seed {seed}\n");
            ModelSource.SaveText(header + text, path);
            output.Progress($"wrote {n:N0} observations to {path}");
        }
        else
        {
            stdout.Write(text.ToString());
        }
        return 0;
    }
}
