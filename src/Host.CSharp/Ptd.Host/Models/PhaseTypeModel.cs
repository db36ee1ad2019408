using Microsoft.FSharp.Core;
using Ptd.Core;
using Ptd.Host.Traces;

namespace Ptd.Host.Models;

/// <summary>
/// A phase-type model for C# callers: a graph plus the computations on it. θ-dependent results come from the
/// model's elimination trace, obtained once per instance through a <see cref="TraceStore"/> (the artifact cache:
/// a second process asking for the same model structure skips elimination) or from a trace file; each θ then
/// costs one replay. The evaluation for the last θ is kept, so several moments at one θ cost one replay.
/// </summary>
public sealed class PhaseTypeModel
{
    private readonly object _gate = new();
    private readonly TraceStore? _store;
    private Task<TraceLookup>? _lookup;
    private double[]? _lastTheta;
    private EvaluatedTrace? _lastEvaluation;
    private CommandList<double>? _lastCommands;

    /// <summary>Wraps a graph; its trace comes from <see cref="TraceStore.Shared"/> (the environment's cache).</summary>
    public PhaseTypeModel(Graph graph) : this(graph, null)
    {
    }

    /// <summary>Wraps a graph whose trace comes from <paramref name="traces"/> (null: <see cref="TraceStore.Shared"/>).</summary>
    public PhaseTypeModel(Graph graph, TraceStore? traces)
    {
        Graph = graph ?? throw new ArgumentNullException(nameof(graph));
        _store = traces;
    }

    /// <summary>Wraps a recorded trace (e.g. read from a trace file); its model is <see cref="Trace.Model"/>.</summary>
    public PhaseTypeModel(Trace trace) : this(new TraceLookup
    {
        Trace = trace ?? throw new ArgumentNullException(nameof(trace)), Key = ModelKey.ofTrace(trace), Origin = TraceOrigin.Provided,
    })
    {
    }

    /// <summary>Wraps a trace obtained elsewhere (a trace file, a store), keeping how it was obtained.</summary>
    public PhaseTypeModel(TraceLookup lookup)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        Graph = lookup.Trace.Model;
        _lookup = Task.FromResult(lookup);
    }

    /// <summary>The underlying immutable graph.</summary>
    public Graph Graph { get; }

    /// <summary>
    /// Loads a model file, a built-in spec (see <see cref="ModelSource.Load"/>) or a trace file (binary or JSON,
    /// recognized by content); traces of models come from <paramref name="traces"/> (null: <see cref="TraceStore.Shared"/>).
    /// </summary>
    public static PhaseTypeModel Load(string source, TraceStore? traces = null)
    {
        if (!string.IsNullOrWhiteSpace(source) && !ModelSpec.isSpec(source) && TraceFile.Detect(source) is not null)
            return new PhaseTypeModel(TraceFile.Load(source));
        return new PhaseTypeModel(ModelSource.Load(source), traces);
    }

    /// <summary>Builds a model from a matrix representation (α, S); for a discrete model S is T.</summary>
    public static PhaseTypeModel FromMatrix(bool discrete, double[] alpha, double[][] s) =>
        new(Matrix.toGraph(discrete, alpha, s));

    /// <summary>True once the trace is at hand (read from a file, or obtained by an earlier computation).</summary>
    public bool HasTrace => _lookup is { IsCompletedSuccessfully: true };

    /// <summary>
    /// The trace and how it was obtained: the first call asks the trace store (cache hit, or recording and
    /// storing), later calls return the same result.
    /// </summary>
    public Task<TraceLookup> GetTraceLookupAsync(CancellationToken cancellationToken = default)
    {
        Task<TraceLookup> task;
        lock (_gate)
        {
            // A failed or cancelled attempt is not kept: the next call tries again.
            if (_lookup is null || _lookup.IsFaulted || _lookup.IsCanceled)
                _lookup = (_store ?? TraceStore.Shared).GetOrRecordAsync(Graph, cancellationToken);
            task = _lookup;
        }
        return task;
    }

    /// <summary>Synchronous <see cref="GetTraceLookupAsync"/>.</summary>
    public TraceLookup GetTraceLookup() => GetTraceLookupAsync().GetAwaiter().GetResult();

    /// <summary>The elimination trace (see <see cref="GetTraceLookupAsync"/>).</summary>
    public Trace GetTrace() => GetTraceLookup().Trace;

    /// <summary>The elimination trace (see <see cref="GetTraceLookupAsync"/>).</summary>
    public async Task<Trace> GetTraceAsync(CancellationToken cancellationToken = default) =>
        (await GetTraceLookupAsync(cancellationToken).ConfigureAwait(false)).Trace;

    /// <summary>The matrix representation (α, S) at θ (for a discrete model S is the sub-transition matrix T).</summary>
    public Matrix.PhaseTypeMatrix ToMatrix(double[]? theta) => Matrix.ofGraph(Graph, Graph.Weights(theta ?? []));

    /// <summary>Structural facts (vertices, edges, cycles, parameters).</summary>
    public ModelInfo Info()
    {
        var g = Graph;
        var order = Order.compute(g);
        int absorbing = 0, transient = 0;
        for (var v = 1; v < g.VertexCount; v++)
        {
            if (g.IsAbsorbing(v)) absorbing++; else transient++;
        }
        return new ModelInfo(g.VertexCount, g.EdgeCount, absorbing, transient, order.IsAcyclic,
            order.ComponentCount, order.ComponentSize.Max(), g.ParamLength, g.StateLength, g.IsDiscrete);
    }

    /// <summary>The trace evaluated at θ (kept for the last θ): every op value, edge weights, rates, multipliers.</summary>
    public EvaluatedTrace Evaluate(double[]? theta)
    {
        theta ??= [];
        lock (_gate)
        {
            if (_lastEvaluation is not null && _lastTheta is not null && _lastTheta.AsSpan().SequenceEqual(theta))
                return _lastEvaluation;
        }
        // Bad θ (wrong length, negative weights) fails here, before a trace is recorded for nothing.
        if (!HasTrace) Graph.Weights(theta);
        var evaluation = TraceEval.evaluate(GetTrace(), theta);
        lock (_gate)
        {
            _lastTheta = (double[])theta.Clone();
            _lastEvaluation = evaluation;
            _lastCommands = null;
        }
        return evaluation;
    }

    /// <summary>
    /// The elimination at θ — the reward-command list, replayed from the trace (bit-identical to
    /// <c>Elimination.eliminate</c>; kept for the last θ).
    /// </summary>
    public CommandList<double> Eliminate(double[]? theta)
    {
        var evaluation = Evaluate(theta);
        lock (_gate)
        {
            if (_lastCommands is not null && ReferenceEquals(evaluation, _lastEvaluation)) return _lastCommands;
        }
        var commands = evaluation.CommandList;
        lock (_gate)
        {
            if (ReferenceEquals(evaluation, _lastEvaluation)) _lastCommands = commands;
        }
        return commands;
    }

    // Edge weights at θ for the distribution functions. They need no elimination: with the trace at hand they are
    // read off its evaluation, otherwise Graph.Weights computes the same bits directly — recording a trace (an
    // elimination) only to read its weights would make pdf/pmf slower, never faster.
    private double[] WeightsAt(double[]? theta) =>
        HasTrace ? Evaluate(theta).Weights : Graph.Weights(theta ?? []);

    /// <summary>The reward vector read from a state slot, or all ones when <paramref name="slot"/> is null.</summary>
    public double[] Reward(int? slot) => slot is { } s ? Rewards.ofSlot(Graph, s) : Rewards.ones(Graph);

    /// <summary>Raw moments 1..k, mean and variance of the accumulated reward.</summary>
    public MomentsResult Moments(double[]? theta, int k = 2, double[]? reward = null)
    {
        if (k < 1) throw new PtdException($"moment order k must be ≥ 1 (got {k})");
        var elimination = Eliminate(theta);
        var r = reward ?? Rewards.ones(Graph);
        var m = Ptd.Core.Moments.moments(elimination, r, Math.Max(k, 2));
        var variance = m[1] - m[0] * m[0];
        return new MomentsResult(m[0], variance, m.Take(k).ToArray());
    }

    /// <summary><see cref="Moments"/> after obtaining the trace asynchronously.</summary>
    public async Task<MomentsResult> MomentsAsync(double[]? theta, int k = 2, double[]? reward = null, CancellationToken cancellationToken = default)
    {
        await GetTraceLookupAsync(cancellationToken).ConfigureAwait(false);
        return Moments(theta, k, reward);
    }

    /// <summary>
    /// Σ log f(xᵢ; θ) of observed absorption times (continuous) or jump counts (discrete), from the trace
    /// (<c>TraceLikelihood.logLikelihood</c>). −∞ when some observation has density 0.
    /// </summary>
    public double LogLikelihood(double[] data, double[]? theta)
    {
        ArgumentNullException.ThrowIfNull(data);
        return TraceLikelihood.logLikelihood(GetTrace(), theta ?? [], data);
    }

    /// <summary>The log-likelihood and its exact gradient with respect to θ (forward mode through the uniformization sweep).</summary>
    public LikelihoodResult LogLikelihoodWithGradient(double[] data, double[]? theta)
    {
        ArgumentNullException.ThrowIfNull(data);
        return TraceLikelihood.logLikelihoodWithGradient(GetTrace(), theta ?? [], data);
    }

    /// <summary><see cref="LogLikelihoodWithGradient"/> after obtaining the trace asynchronously.</summary>
    public async Task<LikelihoodResult> LogLikelihoodWithGradientAsync(double[] data, double[]? theta, CancellationToken cancellationToken = default)
    {
        await GetTraceLookupAsync(cancellationToken).ConfigureAwait(false);
        return LogLikelihoodWithGradient(data, theta);
    }

    /// <summary>pdf and cdf of a continuous model at the given times.</summary>
    public DistributionResult Pdf(double[] times, double[]? theta, DensityMethod method = DensityMethod.Exact,
        double? granularity = null, double tolerance = 1e-12)
    {
        ArgumentNullException.ThrowIfNull(times);
        if (Graph.IsDiscrete)
            throw new PtdException("this model is discrete: use pmf with jump counts instead of pdf with times");
        var weights = WeightsAt(theta);
        var (pdf, cdf) = method == DensityMethod.Exact
            ? Distribution.pdfCdfExact(Graph, weights, times, tolerance)
            : Distribution.pdfCdfEuler(Graph, weights, times,
                granularity is { } g ? FSharpOption<double>.Some(g) : FSharpOption<double>.None);
        return new DistributionResult(times, pdf, cdf);
    }

    /// <summary>pmf and cdf of a discrete model at the given jump counts.</summary>
    public DistributionResult Pmf(int[] jumps, double[]? theta)
    {
        ArgumentNullException.ThrowIfNull(jumps);
        if (!Graph.IsDiscrete)
            throw new PtdException("this model is continuous: use pdf with times instead of pmf with jump counts");
        var (pmf, cdf) = Distribution.pmfCdf(Graph, WeightsAt(theta), jumps);
        return new DistributionResult(jumps.Select(j => (double)j).ToArray(), pmf, cdf);
    }

    /// <summary>n independent samples of the absorption time (or accumulated reward).</summary>
    public double[] Sample(int n, double[]? theta, int seed, double[]? reward = null)
    {
        if (n < 0) throw new PtdException($"sample count must be ≥ 0 (got {n})");
        var weights = Graph.Weights(theta ?? []);
        return reward is null
            ? Sampling.sample(Graph, weights, n, seed)
            : Sampling.sampleReward(Graph, weights, reward, n, seed);
    }
}
