using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// Exact pdf + cdf at 1,000 time points in (0, 2] for coalescent n = 30 against the originals'
/// Euler sweep (g = 1024, 2,048 steps to t = 2) as the baseline, side by side in one run.
/// </summary>
[MemoryDiagnoser]
public class DistributionBenchmarks
{
    private Graph _graph = null!;
    private double[] _weights = null!;
    private double[] _times = null!;

    /// <summary>Builds the model once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _graph = Models.coalescent(30, FSharpOption<double>.None);
        _weights = _graph.Weights([1.0]);
        _times = Enumerable.Range(1, 1000).Select(i => i * 0.002).ToArray();
    }

    /// <summary>The originals' scheme: 2,048 Euler steps at g = 1024.</summary>
    [Benchmark(Baseline = true)]
    public double[] Euler2048Steps() => Distribution.pdfCdfEuler(_graph, _weights, _times, FSharpOption<double>.Some(1024.0)).Item1;

    /// <summary>Exact uniformization, tolerance 1e-12, all 1,000 times in one sweep.</summary>
    [Benchmark]
    public double[] ExactUniformization() => Distribution.pdfCdfExact(_graph, _weights, _times, 1e-12).Item1;
}
