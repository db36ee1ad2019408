using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ptd.Core;
using Ptd.Host.Kernels;
using Ptd.Host.Svgd;

namespace Ptd.Bench;

/// <summary>
/// SVGD on the trace likelihood (issue 5 §5): coalescent n = 10, 1,000 observations, d = 1, 64
/// particles. Ten SVGD updates (the engine evaluates the target 11 times: once per update and once
/// for the result) against the baseline "11 × 64 single-particle log-likelihood-with-gradient
/// evaluations on one thread", measured in the same class with the same particles. The issue's
/// floor is that baseline / cores, so a run's ratio to the floor is its Ratio column × cores; the
/// one-thread SVGD run's Ratio is SVGD's own overhead (it should be ≈ 1), independent of how many
/// cores a shared machine can spare. The central-difference run is phasic's gradient (2 extra
/// value-only evaluations per particle and parameter) for the same updates.
/// </summary>
[MemoryDiagnoser]
public class SvgdBenchmarks
{
    private const int Particles = 64;
    private const int Updates = 10;
    private LikelihoodKernel _kernel = null!;
    private Observations _data = null!;
    private TraceLogDensity _exact = null!;
    private TraceLogDensity _sequential = null!;
    private TraceLogDensity _finiteDifferences = null!;
    private double[][] _initial = null!;
    private double[] _floorTheta = null!;
    private Trace _trace = null!;
    private double[] _values = null!;

    /// <summary>Builds the kernel and the data once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var g = Models.coalescent(10, FSharpOption<double>.None);
        _values = Sampling.sample(g, g.Weights([1.0]), 1000, 12345);
        _data = Observations.FromValues(_values);
        _kernel = new KernelRegistry().GetLikelihoodKernelAsync(g).GetAwaiter().GetResult().Kernel;
        _exact = new TraceLogDensity(_kernel, _data);
        _sequential = new TraceLogDensity(_kernel, _data, new LikelihoodOptions { MaxDegreeOfParallelism = 1 });
        _finiteDifferences = new TraceLogDensity(_kernel, _data, new LikelihoodOptions { Gradient = GradientMethod.CentralDifferences });
        // Particles near the posterior (θ ≈ 1), as in the body of a run.
        var random = new Random(7);
        _initial = Enumerable.Range(0, Particles).Select(_ => new[] { 0.9 + 0.2 * random.NextDouble() }).ToArray();
        _floorTheta = _initial.SelectMany(r => r).ToArray();
        _trace = TracePasses.optimize(TraceModule.record(g));
    }

    private SvgdOptions Options => new()
    {
        ParticleCount = Particles,
        Iterations = Updates,
        StepSize = 0.05,
        InitialParticles = _initial,
        Priors = [new ParameterPrior(Prior.Gamma(2, 1))],
    };

    /// <summary>The baseline: 11 × 64 single-particle evaluations, one after another on one thread (× 1/cores = the floor).</summary>
    [Benchmark(Baseline = true)]
    public double Floor()
    {
        int n = _floorTheta.Length;
        var logp = new double[n];
        var grad = new double[n];
        for (int i = 0; i <= Updates; i++) _sequential.LogDensityAndGradient(_floorTheta, logp, grad);
        return logp[0];
    }

    /// <summary>Ten SVGD updates of 64 particles, exact gradients, particles in parallel.</summary>
    [Benchmark]
    public double SvgdExact() => SvgdEngine.Run(_exact, Options).Parameters[0].Mean;

    /// <summary>
    /// The same updates on ONE thread (likelihood and kernel term): its ratio to the floor, divided
    /// by the cores, is SVGD's own overhead, independent of how many cores the machine can spare.
    /// </summary>
    [Benchmark]
    public double SvgdExactOneThread() => SvgdEngine.Run(_sequential, Options with { MaxDegreeOfParallelism = 1 }).Parameters[0].Mean;

    /// <summary>The same updates with phasic's central differences.</summary>
    [Benchmark]
    public double SvgdFiniteDifferences() => SvgdEngine.Run(_finiteDifferences, Options).Parameters[0].Mean;

    /// <summary>Reference: the core's TraceLikelihood (allocating) for the floor's evaluations.</summary>
    [Benchmark]
    public double FloorWithCoreLikelihood()
    {
        double s = 0;
        for (int i = 0; i <= Updates; i++)
            foreach (var th in _floorTheta)
                s += TraceLikelihood.logLikelihoodWithGradient(_trace, [th], _values).LogLikelihood;
        return s;
    }
}
