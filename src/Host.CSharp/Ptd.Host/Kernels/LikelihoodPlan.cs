using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// The flattened, θ-independent layout of the likelihood sweep: plain arrays, no closures, no
/// graph object — what a likelihood kernel persists. The uniformization sweep works on the
/// ORIGINAL chain (the trace's edge-weight outputs, which are its <c>dot</c> rows b + c·θ), so the
/// plan holds those rows in the graph's CSR order; recording the elimination is not needed for
/// the likelihood at all.
/// </summary>
internal sealed class LikelihoodPlan
{
    /// <summary>True for a discrete model (pmf recursion), false for a continuous one (uniformization).</summary>
    public required bool Discrete { get; init; }

    /// <summary>θ's dimension P.</summary>
    public required int ParameterCount { get; init; }

    /// <summary>The model's vertex count (start vertex included).</summary>
    public required int VertexCount { get; init; }

    /// <summary>The transient vertices (non-start, with out-edges), ascending: transient index → vertex.</summary>
    public required int[] TransientVertex { get; init; }

    /// <summary>Transient i's out-edges are [EdgeStart[i], EdgeStart[i + 1]) in the graph's CSR order.</summary>
    public required int[] EdgeStart { get; init; }

    /// <summary>Per edge: the target's transient index, or −1 for an absorbing target.</summary>
    public required int[] EdgeTarget { get; init; }

    /// <summary>Per edge P + 1 numbers: b, c_0 … c_{P−1} (weight = b + Σ c_k θ_k from the left).</summary>
    public required double[] EdgeRow { get; init; }

    /// <summary>Per start edge: the target's transient index, or −1 (mass that is absorbed at once: the defect).</summary>
    public required int[] StartTarget { get; init; }

    /// <summary>Per start edge P + 1 numbers, as <see cref="EdgeRow"/>.</summary>
    public required double[] StartRow { get; init; }

    public int TransientCount => TransientVertex.Length;
    public int EdgeCount => EdgeTarget.Length;

    /// <summary>Flattens a model.</summary>
    public static LikelihoodPlan Build(Graph g)
    {
        ArgumentNullException.ThrowIfNull(g);
        int n = g.VertexCount, p = g.ParamLength;
        var transientIndex = new int[n];
        var transient = new List<int>();
        for (int v = 0; v < n; v++)
        {
            bool isTransient = v > 0 && g.OutDegree(v) > 0;
            transientIndex[v] = isTransient ? transient.Count : -1;
            if (isTransient) transient.Add(v);
        }
        var edgeStart = new int[transient.Count + 1];
        var targets = new List<int>();
        var rows = new List<double>();
        for (int i = 0; i < transient.Count; i++)
        {
            int v = transient[i];
            edgeStart[i] = targets.Count;
            for (int e = g.EdgeStart(v); e < g.EdgeEnd(v); e++)
            {
                targets.Add(transientIndex[g.Target(e)]);
                AddRow(g, e, p, rows);
            }
        }
        edgeStart[transient.Count] = targets.Count;
        var startTargets = new List<int>();
        var startRows = new List<double>();
        for (int e = g.EdgeStart(0); e < g.EdgeEnd(0); e++)
        {
            startTargets.Add(transientIndex[g.Target(e)]);
            AddRow(g, e, p, startRows);
        }
        return new LikelihoodPlan
        {
            Discrete = g.IsDiscrete,
            ParameterCount = p,
            VertexCount = n,
            TransientVertex = transient.ToArray(),
            EdgeStart = edgeStart,
            EdgeTarget = targets.ToArray(),
            EdgeRow = rows.ToArray(),
            StartTarget = startTargets.ToArray(),
            StartRow = startRows.ToArray(),
        };
    }

    private static void AddRow(Graph g, int e, int p, List<double> rows)
    {
        rows.Add(g.Base(e));
        for (int k = 0; k < p; k++) rows.Add(g.Coef(e, k));
    }

    /// <summary>Checks the invariants the executor relies on (indices in range, counts consistent, finite rows).</summary>
    /// <exception cref="PtdException">The plan is inconsistent (a damaged or foreign persisted kernel).</exception>
    public void Validate(string source)
    {
        int t = TransientCount, e = EdgeCount, stride = ParameterCount + 1;
        void Fail(string what) => throw new PtdException($"{source}: invalid likelihood kernel: {what}");
        if (ParameterCount < 0) Fail($"parameter count {ParameterCount}");
        if (VertexCount < 1) Fail($"vertex count {VertexCount}");
        if (t >= VertexCount) Fail($"{t} transient vertices in a model of {VertexCount}");
        for (int i = 0; i < t; i++)
            if (TransientVertex[i] < 1 || TransientVertex[i] >= VertexCount || (i > 0 && TransientVertex[i] <= TransientVertex[i - 1]))
                Fail($"transient vertex {i} is {TransientVertex[i]} (must ascend within 1..{VertexCount - 1})");
        if (EdgeStart.Length != t + 1 || EdgeStart[0] != 0 || EdgeStart[t] != e)
            Fail("edge offsets do not span the edges");
        for (int i = 0; i < t; i++)
            if (EdgeStart[i + 1] <= EdgeStart[i]) Fail($"transient vertex {i} has no out-edges");
        foreach (int z in EdgeTarget)
            if (z < -1 || z >= t) Fail($"edge target {z} out of range");
        foreach (int z in StartTarget)
            if (z < -1 || z >= t) Fail($"start edge target {z} out of range");
        if (EdgeRow.Length != (long)e * stride) Fail($"{EdgeRow.Length} edge row numbers for {e} edges of {stride}");
        if (StartRow.Length != (long)StartTarget.Length * stride) Fail("start edge rows do not match the start edges");
        foreach (double x in EdgeRow)
            if (!double.IsFinite(x)) Fail("a non-finite edge coefficient");
        foreach (double x in StartRow)
            if (!double.IsFinite(x)) Fail("a non-finite start edge coefficient");
        if (StartTarget.Length == 0) Fail("no start edges");
    }
}
