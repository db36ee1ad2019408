using BenchmarkDotNet.Attributes;
using Microsoft.FSharp.Core;
using Ptd.Core;
using Ptd.Host.Traces;

namespace Ptd.Bench;

/// <summary>The trace the trace store produces for a model (record, then optimize per the store's default policy).</summary>
internal static class TraceBench
{
    public static Trace Prepare(Graph graph)
    {
        var trace = TraceModule.record(graph);
        return TracePasses.duplicateWeightShare(trace) >= new TraceStoreOptions().OptimizeThreshold ? TracePasses.optimize(trace) : trace;
    }

    public static double[] Theta(Graph graph) => graph.ParamLength switch
    {
        0 => [],
        1 => [1.0],
        2 => [1.0, 0.5],
        _ => [1.0, 2.0, 4.0],
    };
}

/// <summary>
/// Issue 3 §7: one θ by replaying the trace (evaluate the ops, replay the commands for E[T]) against re-building and
/// re-eliminating the concrete graph (the baseline), and against eliminating an already built graph.
/// </summary>
[MemoryDiagnoser]
public class TraceReplayBenchmarks
{
    private Graph _graph = null!;
    private double[] _theta = null!;
    private double[] _reward = null!;
    private TraceEvaluator _evaluator = null!;
    private Trace _trace = null!;
    private double[] _values = null!;
    private double[] _x = null!;

    /// <summary>The model.</summary>
    [Params("rabbits3:R=200", "coalescent:n=30")]
    public string Model { get; set; } = "";

    /// <summary>Builds, records and optimizes once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _graph = ModelSpec.build(Model);
        _theta = TraceBench.Theta(_graph);
        _reward = Rewards.ones(_graph);
        _trace = TraceBench.Prepare(_graph);
        _evaluator = new TraceEvaluator(_trace);
        _values = new double[_trace.OpCount];
        _x = new double[_graph.VertexCount];
    }

    /// <summary>What a θ costs without traces: build the graph, eliminate, replay for E[T].</summary>
    [Benchmark(Baseline = true)]
    public double RebuildAndEliminate()
    {
        var g = ModelSpec.build(Model);
        var x = Rewards.ones(g);
        Moments.replayInPlace(Elimination.eliminate(g, _theta), x);
        return x[0];
    }

    /// <summary>Eliminating the already built graph, then E[T].</summary>
    [Benchmark]
    public double Eliminate()
    {
        var x = Rewards.ones(_graph);
        Moments.replayInPlace(Elimination.eliminate(_graph, _theta), x);
        return x[0];
    }

    /// <summary>Replaying the trace: evaluate every op at θ, replay the commands for E[T].</summary>
    [Benchmark]
    public double Replay() => _evaluator.Expectation(_theta, _reward);

    /// <summary>
    /// The replay as it was before the evaluation plan: every op one by one into a value per op, then command by
    /// command (without the θ, reward and weight checks `Replay` includes).
    /// </summary>
    [Benchmark]
    public double ReplayOpByOp()
    {
        TraceEval.valuesInto(_trace.Ops, _theta, _values);
        Array.Copy(_reward, _x, _x.Length);
        TraceEval.replayValues(_trace, _values, _x);
        return _x[0];
    }
}

/// <summary>Issue 3 §7: the mean and its gradient with respect to every parameter (reverse mode) against the mean alone.</summary>
[MemoryDiagnoser]
public class TraceGradientBenchmarks
{
    private double[] _theta = null!;
    private double[] _reward = null!;
    private TraceEvaluator _evaluator = null!;
    private TraceGradient _gradient = null!;

    /// <summary>The model.</summary>
    [Params("rabbits3:R=30", "rabbits3:R=200", "coalescent:n=30")]
    public string Model { get; set; } = "";

    /// <summary>Records once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var graph = ModelSpec.build(Model);
        _theta = TraceBench.Theta(graph);
        _reward = Rewards.ones(graph);
        var trace = TraceBench.Prepare(graph);
        _evaluator = new TraceEvaluator(trace);
        _gradient = new TraceGradient(trace);
    }

    /// <summary>E[T] at θ.</summary>
    [Benchmark(Baseline = true)]
    public double Mean() => _evaluator.Expectation(_theta, _reward);

    /// <summary>E[T] and ∂E[T]/∂θ for all parameters.</summary>
    [Benchmark]
    public double MeanWithGradient() => _gradient.MeanWithGradient(_theta, _reward).Item2[0];
}

/// <summary>
/// Issue 3 §7: log-likelihood of 10,000 observations (coalescent n = 10, d = 1) with and without its exact
/// gradient, against central finite differences — both on the trace (two log-likelihoods) and the way phasic does
/// it (per θ ± h: build the concrete graph, evaluate the density at every observation).
/// </summary>
[MemoryDiagnoser]
public class TraceLikelihoodBenchmarks
{
    private const double H = 1e-6;
    private Trace _trace = null!;
    private Graph _graph = null!;
    private double[] _data = null!;
    private readonly double[] _theta = [1.0];

    /// <summary>Records the trace and draws the observations from the model.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var graph = Models.coalescent(10, FSharpOption<double>.None);
        _graph = graph;
        _trace = TraceBench.Prepare(graph);
        _data = Sampling.sample(graph, graph.Weights(_theta), 10_000, 42);
        Array.Sort(_data);
    }

    /// <summary>Σ log f(xᵢ; θ), one uniformization sweep for all observations.</summary>
    [Benchmark(Baseline = true)]
    public double LogLikelihood() => TraceLikelihood.logLikelihood(_trace, _theta, _data);

    /// <summary>The log-likelihood and its exact gradient (forward-mode tangents through the same sweep).</summary>
    [Benchmark]
    public double LogLikelihoodWithGradient() => TraceLikelihood.logLikelihoodWithGradient(_trace, _theta, _data).Gradient[0];

    /// <summary>Central differences on the trace: two log-likelihoods per parameter.</summary>
    [Benchmark]
    public double CentralDifferencesOnTrace() =>
        (TraceLikelihood.logLikelihood(_trace, [_theta[0] + H], _data) - TraceLikelihood.logLikelihood(_trace, [_theta[0] - H], _data)) / (2 * H);

    /// <summary>Central differences as phasic computes them: per θ ± h, build the concrete graph and evaluate the density.</summary>
    [Benchmark]
    public double CentralDifferencesRebuild() => (Concrete(_theta[0] + H) - Concrete(_theta[0] - H)) / (2 * H);

    /// <summary>
    /// Central differences exactly as phasic computes them: per θ ± h, update the parameterized graph's weights and
    /// evaluate the density at every observation with its Euler discretization at the default granularity (1024 steps
    /// per time unit here; `Distribution.pdfCdfEuler` reproduces the C library to 1e-12).
    /// </summary>
    [Benchmark]
    public double CentralDifferencesPhasicEuler() => (Euler(_theta[0] + H) - Euler(_theta[0] - H)) / (2 * H);

    private double Euler(double rate)
    {
        var pdf = Distribution.pdfCdfEuler(_graph, _graph.Weights([rate]), _data, FSharpOption<double>.None).Item1;
        var s = 0.0;
        foreach (var p in pdf) s += Math.Log(p);
        return s;
    }

    private double Concrete(double rate)
    {
        var g = Models.coalescent(10, FSharpOption<double>.Some(rate));
        var pdf = Distribution.pdfCdfExact(g, g.Weights([]), _data, 1e-12).Item1;
        var s = 0.0;
        foreach (var p in pdf) s += Math.Log(p);
        return s;
    }
}

/// <summary>Issue 3 §7: E[T] for 64 particles with the batched (SIMD-lane) evaluator against 64 scalar evaluations.</summary>
[MemoryDiagnoser]
public class TraceBatchBenchmarks
{
    private const int Particles = 64;
    private double[][] _thetas = null!;
    private double[] _reward = null!;
    private TraceEvaluator _scalar = null!;
    private TraceBatchEvaluator _batch = null!;

    /// <summary>The model.</summary>
    [Params("rabbits3:R=30", "rabbits3:R=200", "coalescent:n=30")]
    public string Model { get; set; } = "";

    /// <summary>Records once; 64 parameter vectors scattered around the base θ.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var graph = ModelSpec.build(Model);
        var trace = TraceBench.Prepare(graph);
        var rng = new Random(1);
        var theta = TraceBench.Theta(graph);
        _thetas = Enumerable.Range(0, Particles).Select(_ => theta.Select(t => t * (0.5 + rng.NextDouble())).ToArray()).ToArray();
        _reward = Rewards.ones(graph);
        _scalar = new TraceEvaluator(trace);
        _batch = new TraceBatchEvaluator(trace);
    }

    /// <summary>64 scalar evaluations.</summary>
    [Benchmark(Baseline = true)]
    public double Scalar64()
    {
        var s = 0.0;
        foreach (var t in _thetas) s += _scalar.Expectation(t, _reward);
        return s;
    }

    /// <summary>One batched evaluation of 64 particles.</summary>
    [Benchmark]
    public double Batched64() => _batch.Expectations(_thetas, _reward).Sum();
}

/// <summary>
/// Issue 3 §7: recording against plain elimination of the same graph (the baseline), and what the cache adds around
/// it: optimizing, encoding (a miss stores this) and strict decoding for the model's key (a hit costs this).
/// </summary>
[MemoryDiagnoser]
public class TraceRecordBenchmarks
{
    private Graph _graph = null!;
    private double[] _theta = null!;
    private TraceKey _key = null!;
    private Trace _trace = null!;
    private byte[] _encoded = null!;

    /// <summary>The model.</summary>
    [Params("rabbits3:R=200", "coalescent:n=30")]
    public string Model { get; set; } = "";

    /// <summary>Builds, records and encodes once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _graph = ModelSpec.build(Model);
        _theta = TraceBench.Theta(_graph);
        _key = ModelKey.compute(_graph);
        _trace = TraceBench.Prepare(_graph);
        _encoded = TraceEncoding.encode(_trace);
    }

    /// <summary>Eliminating the graph at one θ.</summary>
    [Benchmark(Baseline = true)]
    public CommandList<double> Eliminate() => Elimination.eliminate(_graph, _theta);

    /// <summary>Recording the elimination as a trace.</summary>
    [Benchmark]
    public Trace Record() => TraceModule.record(_graph);

    /// <summary>Recording, then CSE + folding + dead-op removal.</summary>
    [Benchmark]
    public Trace RecordAndOptimize() => TracePasses.optimize(TraceModule.record(_graph));

    /// <summary>The binary encoding of the trace the store keeps.</summary>
    [Benchmark]
    public byte[] Encode() => TraceEncoding.encode(_trace);

    /// <summary>Strict decoding of that encoding for the model's key, rebuilding the model from the payload (a trace file).</summary>
    [Benchmark]
    public Trace DecodeFor() => TraceEncoding.decodeFor(_key, _encoded);

    /// <summary>Strict decoding onto the model the caller holds (what the trace store does on a cache hit, besides reading).</summary>
    [Benchmark]
    public Trace DecodeForModel() => TraceEncoding.decodeForModel(_graph, _encoded);

    /// <summary>The same without recomputing the trace's checksum (the store's hit path: the envelope verified the bytes).</summary>
    [Benchmark]
    public Trace DecodeForModelPreverified() => TraceEncoding.decodeForModelPreverified(_graph, _encoded);
}
