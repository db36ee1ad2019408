using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ptd.Core;
using Ptd.Host.Kernels;
using Ptd.Host.Svgd;

namespace Ptd.Bench;

/// <summary>
/// SVGD on the trace likelihood (issue 5 §5): coalescent n = 10, 1,000 observations, d = 1, 64
/// particles. Ten SVGD updates (the engine evaluates the target 11 times: once per update and once
/// for the result) against the floor "11 × 64 × one log-likelihood-with-gradient evaluation /
/// cores", measured in the same class as the baseline: the same kernel evaluating 64/cores
/// particles one after another, 11 times. The ratio column is the ratio to the floor. The
/// central-difference run is phasic's gradient (2 extra value-only evaluations per particle)
/// for the same updates. On a machine shared with other work the parallel runs cannot count on
/// every core; the one-thread run separates SVGD's overhead from the parallel scaling.
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
        int perCore = (Particles + Environment.ProcessorCount - 1) / Environment.ProcessorCount;
        _floorTheta = _initial.Take(perCore).SelectMany(r => r).ToArray();
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

    /// <summary>The floor: 11 × (64 / cores) single-particle evaluations, one after another on one thread.</summary>
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
