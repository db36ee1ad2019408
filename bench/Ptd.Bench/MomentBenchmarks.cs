using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// "One more moment" once a model is eliminated: a replay of the command list, against the cost of
/// re-eliminating (the baseline), for coalescent n = 50 and cyclic rabbits R = 200.
/// </summary>
[MemoryDiagnoser]
public class MomentBenchmarks
{
    private Graph _graph = null!;
    private CommandList<double> _commands = null!;
    private double[] _theta = null!;

    /// <summary>The model.</summary>
    [Params("coalescent:n=50", "rabbits:R=200")]
    public string Model { get; set; } = "";

    /// <summary>Builds and eliminates once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _graph = ModelSpec.build(Model);
        _theta = _graph.ParamLength > 0 ? [1.0] : [];
        _commands = Elimination.eliminate(_graph, _theta);
    }

    /// <summary>Re-eliminating the graph (what a cache miss costs).</summary>
    [Benchmark(Baseline = true)]
    public CommandList<double> Eliminate() => Elimination.eliminate(_graph, _theta);

    /// <summary>One more moment: one replay of the command list.</summary>
    [Benchmark]
    public double OneMoreMoment()
    {
        var x = Rewards.ones(_graph);
        Moments.replayInPlace(_commands, x);
        return x[0];
    }
}
