using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Host.Models;

/// <summary>
/// A phase-type model for C# callers: a graph plus the computations on it. The elimination for the
/// last θ is kept, so several moments at one θ cost one elimination.
/// </summary>
public sealed class PhaseTypeModel
{
    private readonly object _gate = new();
    private double[]? _lastTheta;
    private CommandList<double>? _lastElimination;

    /// <summary>Wraps a graph.</summary>
    public PhaseTypeModel(Graph graph) => Graph = graph ?? throw new ArgumentNullException(nameof(graph));

    /// <summary>The underlying immutable graph.</summary>
    public Graph Graph { get; }

    /// <summary>Loads a model file or a built-in spec (see <see cref="ModelSource.Load"/>).</summary>
    public static PhaseTypeModel Load(string source) => new(ModelSource.Load(source));

    /// <summary>Builds a model from a matrix representation (α, S); for a discrete model S is T.</summary>
    public static PhaseTypeModel FromMatrix(bool discrete, double[] alpha, double[][] s) =>
        new(Matrix.toGraph(discrete, alpha, s));

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

    /// <summary>The elimination at θ (cached for the last θ).</summary>
    public CommandList<double> Eliminate(double[]? theta)
    {
        theta ??= [];
        lock (_gate)
        {
            if (_lastElimination is not null && _lastTheta is not null && _lastTheta.AsSpan().SequenceEqual(theta))
                return _lastElimination;
        }
        var result = Elimination.eliminate(Graph, theta);
        lock (_gate)
        {
            _lastTheta = (double[])theta.Clone();
            _lastElimination = result;
        }
        return result;
    }

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

    /// <summary>pdf and cdf of a continuous model at the given times.</summary>
    public DistributionResult Pdf(double[] times, double[]? theta, DensityMethod method = DensityMethod.Exact,
        double? granularity = null, double tolerance = 1e-12)
    {
        ArgumentNullException.ThrowIfNull(times);
        if (Graph.IsDiscrete)
            throw new PtdException("this model is discrete: use pmf with jump counts instead of pdf with times");
        var weights = Graph.Weights(theta ?? []);
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
        var (pmf, cdf) = Distribution.pmfCdf(Graph, Graph.Weights(theta ?? []), jumps);
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
