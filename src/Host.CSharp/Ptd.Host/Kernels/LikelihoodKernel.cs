using System.Collections.Concurrent;
using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// The executable form of a likelihood kernel: a tight, allocation-free interpreter over a
/// <see cref="LikelihoodPlan"/>. For one θ it computes Σ_i log f(x_i; θ) and its exact gradient
/// by the core's algorithm (uniformization sweep with forward-mode tangents, Λ held fixed; the
/// pmf recursion for discrete models): the same sweep, operation for operation, of the core's
/// length; for continuous models the per-observation Poisson window sums (most of the cost with
/// many observations) are the core's own <c>UniformizationWindows.sums</c> over the sweep copied
/// into one column-major table, with the core's trust test per observation. Results agree with
/// <c>TraceLikelihood.logLikelihoodWithGradient</c> to rounding (~1e-15 relative; the core sums
/// the observations compensated, the kernel plainly in index order), not bit for bit. A rescaled
/// sweep keeps the kernel's own per-observation windows (vector dot products). Two safeguards (the core has its own versions since issue 7, with a cruder test for when the
/// window suffices, so the two agree to ~1e-12 in the tails): the sweep vectors are rescaled by exact powers of two when
/// they fall below 2^−512, and an observation whose window provably misses the terms that carry
/// its density (far in a tail) is summed over every step in log space — so log f stays finite and
/// accurate wherever f &gt; 0, where the plain sweep returns log 0 = −∞ or a truncated value.
/// </summary>
/// <remarks>
/// Immutable and thread-safe: per-thread buffers come from an internal pool. Data values are a
/// run-time argument; the kernel keeps none.
/// </remarks>
public sealed class LikelihoodKernel
{
    private const double RescaleBelow = 1.4916681462400413e-154; // 2^−512
    private static readonly double Ln2 = Math.Log(2.0);

    private readonly LikelihoodPlan _plan;
    private readonly int _t, _e, _p, _stride, _ce;
    private readonly int[] _inStart, _inSource, _ceEdge, _exitStates;
    private readonly double[] _dw, _dl, _dexit, _dwStart;
    private readonly ConcurrentBag<LikelihoodWorkspace> _pool = new();

    internal LikelihoodKernel(KernelKey key, LikelihoodPlan plan)
    {
        Key = key;
        _plan = plan;
        _t = plan.TransientCount;
        _e = plan.EdgeCount;
        _p = plan.ParameterCount;
        _stride = _p + 1;
        // Edges between transient vertices, grouped by TARGET (the sweep pulls π into each state
        // and accumulates in a register) and, within a target, in source order then CSR order —
        // exactly the order in which the core's push loop adds them, so the sums are the same.
        var inCount = new int[_t + 1];
        for (int e = 0; e < _e; e++)
            if (plan.EdgeTarget[e] >= 0) inCount[plan.EdgeTarget[e] + 1]++;
        for (int z = 0; z < _t; z++) inCount[z + 1] += inCount[z];
        _inStart = (int[])inCount.Clone();
        var fill = (int[])inCount.Clone();
        _ce = inCount[_t];
        _inSource = new int[_ce];
        _ceEdge = new int[_ce];
        for (int i = 0; i < _t; i++)
            for (int e = plan.EdgeStart[i]; e < plan.EdgeStart[i + 1]; e++)
            {
                int z = plan.EdgeTarget[e];
                if (z < 0) continue;
                _inSource[fill[z]] = i;
                _ceEdge[fill[z]] = e;
                fill[z]++;
            }
        // The states with an edge into an absorbing vertex: the only ones whose exit rate (and its
        // tangents) can be non-zero, so the sweep's v_k = π_k·exit sums over them alone.
        var exitStates = new List<int>();
        for (int i = 0; i < _t; i++)
            for (int e = plan.EdgeStart[i]; e < plan.EdgeStart[i + 1]; e++)
                if (plan.EdgeTarget[e] < 0)
                {
                    exitStates.Add(i);
                    break;
                }
        _exitStates = [.. exitStates];
        // θ-independent tangents: a weight's derivative along θ_j is the tangent of its dot row,
        // 0 + Σ_k c_k δ_kj from the left (the core's forward mode), i.e. c_j.
        _dw = Tangents(plan.EdgeRow, _e);
        _dwStart = Tangents(plan.StartRow, plan.StartTarget.Length);
        _dl = new double[_p * _t];
        _dexit = new double[_p * _t];
        for (int j = 0; j < _p; j++)
            for (int i = 0; i < _t; i++)
            {
                double dl = 0.0, dexit = 0.0;
                for (int e = plan.EdgeStart[i]; e < plan.EdgeStart[i + 1]; e++)
                {
                    dl += _dw[j * _e + e];
                    if (plan.EdgeTarget[e] < 0) dexit += _dw[j * _e + e];
                }
                _dl[j * _t + i] = dl;
                _dexit[j * _t + i] = dexit;
            }
    }

    private double[] Tangents(double[] rows, int count)
    {
        var d = new double[_p * count];
        for (int j = 0; j < _p; j++)
            for (int e = 0; e < count; e++)
            {
                double s = 0.0;
                for (int k = 0; k < _p; k++) s += rows[e * _stride + 1 + k] * (k == j ? 1.0 : 0.0);
                d[j * count + e] = s;
            }
        return d;
    }

    /// <summary>The kernel's content key.</summary>
    public KernelKey Key { get; }

    /// <summary>θ's dimension.</summary>
    public int ParameterCount => _p;

    /// <summary>True for a discrete model (observations are jump counts).</summary>
    public bool IsDiscrete => _plan.Discrete;

    /// <summary>Transient states of the model.</summary>
    public int TransientCount => _t;

    /// <summary>Edges leaving transient states.</summary>
    public int EdgeCount => _e;

    internal LikelihoodPlan Plan => _plan;

    /// <summary>
    /// The log-likelihood of <paramref name="observations"/> at θ and its gradient (single
    /// particle; convenient for checks). Throws when an observation has density 0.
    /// </summary>
    /// <param name="theta">θ (length <see cref="ParameterCount"/>).</param>
    /// <param name="observations">Times (continuous) or jump counts (discrete).</param>
    /// <param name="gradient">Receives ∂/∂θ (length <see cref="ParameterCount"/>).</param>
    /// <exception cref="PtdException">Invalid θ (a weight negative or not finite), or an observation of density 0.</exception>
    public double LogLikelihood(ReadOnlySpan<double> theta, Observations observations, Span<double> gradient)
    {
        var data = LikelihoodData.Bind(observations, IsDiscrete);
        var ws = Rent();
        try
        {
            double ll = Evaluate(theta, data, ws, gradient, 0.0, out int zero);
            if (zero >= 0)
                throw new PtdException(ZeroDensityMessage(observations, zero, theta));
            return ll;
        }
        finally
        {
            Return(ws);
        }
    }

    internal static string ZeroDensityMessage(Observations observations, int index, ReadOnlySpan<double> theta) =>
        $"{observations.Describe(index)} has probability density 0 under the model at θ = [{Format(theta)}]: " +
        "the model cannot produce this observation there (check that the data belong to this model and its time scale)";

    internal static string Format(ReadOnlySpan<double> theta)
    {
        var parts = new string[theta.Length];
        for (int k = 0; k < theta.Length; k++) parts[k] = theta[k].ToString("G6", CultureInfo.InvariantCulture);
        return string.Join(", ", parts);
    }

    internal LikelihoodWorkspace Rent() => _pool.TryTake(out var ws) ? ws : new LikelihoodWorkspace(_t, _e, _ce, _p, _plan.StartTarget.Length);

    internal void Return(LikelihoodWorkspace ws) => _pool.Add(ws);

    /// <summary>
    /// Σ log f and ∂/∂θ for one particle. <paramref name="zeroObservation"/> receives the index of
    /// the first observation of density 0 (−1 when none); the value is then −∞ (unless
    /// <paramref name="epsilon"/> &gt; 0: phasic's log(f + ε) compatibility mode).
    /// </summary>
    internal double Evaluate(ReadOnlySpan<double> theta, LikelihoodData data, LikelihoodWorkspace ws, Span<double> grad,
        double epsilon, out int zeroObservation, bool gradient = true)
    {
        zeroObservation = -1;
        // Without a gradient every tangent loop runs over 0 parameters.
        int t = _t, p = gradient ? _p : 0;
        var plan = _plan;
        Weights(theta, ws);
        var w = ws.W;
        var lam = ws.Lambda;
        double scale = 1.0;
        for (int i = 0; i < t; i++)
        {
            double l = 0.0;
            for (int e = plan.EdgeStart[i]; e < plan.EdgeStart[i + 1]; e++) l += w[e];
            lam[i] = l;
            if (!plan.Discrete) scale = i == 0 ? Math.Max(0.0, l) : Math.Max(scale, l);
        }
        if (!plan.Discrete && t == 0) scale = 0.0;

        // The uniformized (or discrete) chain and its tangents.
        var stay = ws.Stay;
        var exit = ws.Exit;
        var pc = ws.P;
        var tp = ws.TP;
        var tstay = ws.TStay;
        for (int i = 0; i < t; i++)
        {
            double ex = 0.0;
            for (int e = plan.EdgeStart[i]; e < plan.EdgeStart[i + 1]; e++)
                if (plan.EdgeTarget[e] < 0) ex += w[e];
            exit[i] = ex;
            stay[i] = 1.0 - lam[i] / scale;
        }
        for (int c = 0; c < _ce; c++) pc[c] = w[_ceEdge[c]] / scale;
        for (int j = 0; j < p; j++)
        {
            for (int c = 0; c < _ce; c++) tp[j * _ce + c] = _dw[j * _e + _ceEdge[c]] / scale;
            for (int i = 0; i < t; i++) tstay[j * t + i] = -_dl[j * t + i] / scale;
        }
        double defect = InitialDistribution(ws, p);

        int steps;
        if (plan.Discrete)
        {
            int kMax = 0;
            foreach (int k in data.Counts) kMax = Math.Max(kMax, k);
            steps = Math.Max(1, kMax);
        }
        else
        {
            double muMax = scale * data.Max;
            if (muMax + 12.0 * Math.Sqrt(muMax) + 100.0 > LikelihoodData.MaxSteps)
                throw new PtdException(string.Create(CultureInfo.InvariantCulture,
                    $"observation t = {data.Max:G6} with maximal exit rate Λ = {scale:G6} needs about {muMax:G3} uniformization steps (Λt), more than the {LikelihoodData.MaxSteps} allowed; rescale time (or the rates) so that Λ·t is smaller"));
            steps = SweepSteps(muMax, data.Count);
        }
        ws.EnsureSteps(steps);
        bool scaled = Sweep(ws, steps, p);
        if (!plan.Discrete && !scaled && data.Count > 0)
            return Windowed(theta, data, ws, grad, epsilon, out zeroObservation, scale, steps, p);

        var acc = ws.Acc;
        double ll = 0.0;
        grad.Slice(0, p).Clear();
        var v = ws.V;
        var dv = ws.DV;
        int stride = v.Length;
        var exps = ws.Exponents;
        double maxExit = 0.0;
        for (int i = 0; i < t; i++) maxExit = Math.Max(maxExit, exit[i]);
        for (int i = 0; i < data.Count; i++)
        {
            // The density is 2^exponent · s (s from the sweep's scaled values), or, on the
            // log-space path, e^logF; acc holds the tangents in the units of s.
            double s;
            int exponent = 0;
            double logF = double.NaN;
            if (plan.Discrete)
            {
                int k = data.Counts[i];
                if (k == 0)
                {
                    s = defect;
                    for (int j = 0; j < p; j++) acc[j] = ws.TDefect[j];
                }
                else
                {
                    s = v[k - 1];
                    exponent = exps[k - 1];
                    for (int j = 0; j < p; j++) acc[j] = dv[j * stride + k - 1];
                }
            }
            else
            {
                double mu = scale * data.Values[i];
                if (mu == 0.0)
                {
                    s = v[0];
                    for (int j = 0; j < p; j++) acc[j] = dv[j * stride];
                }
                else
                {
                    int m = Math.Min((int)Math.Floor(mu), steps - 1);
                    exponent = exps[m];
                    s = PoissonSum(ws, steps, m, mu, scaled, maxExit, p, out bool resolved);
                    if (!resolved)
                    {
                        // Far in a tail: the window around the Poisson mode misses the terms
                        // that carry f. Sum every step in log space instead.
                        logF = LogSpaceSum(ws, steps, mu, maxExit, p, data, i, theta);
                        s = 1.0;
                        exponent = 0;
                    }
                }
            }

            if (epsilon > 0)
            {
                // log(f + ε): phasic's compatibility mode (flattens the gradient where f is tiny).
                double f = double.IsNaN(logF) ? Math.ScaleB(s, exponent) : Math.Exp(logF);
                double factor = double.IsNaN(logF) ? Math.ScaleB(1.0, exponent) : f;
                ll += Math.Log(f + epsilon);
                for (int j = 0; j < p; j++) grad[j] += acc[j] * factor / (f + epsilon);
                continue;
            }
            if (!double.IsNaN(logF))
            {
                if (double.IsNegativeInfinity(logF))
                {
                    zeroObservation = i;
                    return ZeroDensity(grad, p);
                }
                AddInLogSpace(logF, acc, grad, p, ref ll);
                continue;
            }
            if (!(s > 0.0))
            {
                zeroObservation = i;
                return ZeroDensity(grad, p);
            }
            ll += exponent == 0 ? Math.Log(s) : Math.Log(s) + exponent * Ln2;
            for (int j = 0; j < p; j++) grad[j] += acc[j] / s;
        }
        return ll;
    }

    /// <summary>
    /// The core's sweep length (TraceLikelihood): the largest μ's window up to and including the
    /// first term under the cut, plus UniformizationBlocks.Shifts rows (a block of observations
    /// reads that many rows past its window).
    /// </summary>
    private static int SweepSteps(double muMax, int count)
    {
        if (count == 0 || muMax == 0.0) return 1;
        var (_, hi, _) = Poisson.bounds(muMax, 2.0 * UniformizationWindows.Eps * Poisson.weight((int)Math.Floor(muMax), muMax));
        return 2 + hi + UniformizationBlocks.Shifts;
    }

    /// <summary>An observation of density 0: the log-likelihood is −∞ and the gradient NaN (the caller names it).</summary>
    private static double ZeroDensity(Span<double> grad, int p)
    {
        for (int j = 0; j < p; j++) grad[j] = double.NaN;
        return double.NegativeInfinity;
    }

    /// <summary>An observation resolved in log space (both sweeps' tails): log f and ∂ log f/∂θ (in acc) as they are.</summary>
    private static void AddInLogSpace(double logF, double[] acc, Span<double> grad, int p, ref double ll)
    {
        ll += logF;
        for (int j = 0; j < p; j++) grad[j] += acc[j];
    }

    /// <summary>
    /// The continuous, unrescaled case: every observation's window sum by the core's
    /// <c>UniformizationWindows.sums</c> (sorted, SIMD lane groups and Poisson-convolution blocks)
    /// over one column-major table copied from the sweep; then, in the ORIGINAL order, the core's
    /// trust test (left-out Poisson mass × the largest exit rate ≤ 1e-9 of the sum), the
    /// log-space path for observations that fail it, and the sums of log f and its tangents.
    /// </summary>
    private double Windowed(ReadOnlySpan<double> theta, LikelihoodData data, LikelihoodWorkspace ws, Span<double> grad,
        double epsilon, out int zeroObservation, double scale, int steps, int p)
    {
        zeroObservation = -1;
        int n = data.Count, t = _t, width = p + 1;
        var v = ws.V;
        var dv = ws.DV;
        int stride = v.Length;
        var table = ws.EnsureTable(width * steps);
        Array.Copy(v, 0, table, 0, steps);
        for (int j = 0; j < p; j++) Array.Copy(dv, j * stride, table, (1 + j) * steps, steps);
        // μ by the data's sorted position r (already in order: the sums' sort is then only a check).
        var mu = ws.EnsureMu(n);
        var sorted = data.Sorted;
        for (int r = 0; r < n; r++) mu[r] = scale * sorted[r];
        // The core's arrays for the sums live in this workspace too: an SVGD run allocates nothing per evaluation.
        var sums = UniformizationWindows.sumsInto(ws.Windows, table, width, steps, mu);
        var order = sums.Order;
        var position = ws.EnsurePosition(n);
        for (int q = 0; q < n; q++) position[order[q]] = q;
        var rank = data.Rank;
        var columns = sums.Columns;
        var value = columns[0];
        var leftOut = sums.LeftOut;
        var shift = sums.Shift;
        var exit = ws.Exit;
        double maxExit = 0.0;
        for (int i = 0; i < t; i++) maxExit = Math.Max(maxExit, exit[i]);
        var acc = ws.Acc;
        double ll = 0.0;
        grad.Slice(0, p).Clear();
        for (int i = 0; i < n; i++)
        {
            int r = rank[i], q = position[r];
            double s = value[q];
            // log f = log s + logScale; acc holds the tangents in the units of s.
            double logScale, logF = double.NaN;
            if (mu[r] == 0.0 || leftOut[q] * maxExit <= 1e-9 * s)
            {
                logScale = shift[q];
                for (int j = 0; j < p; j++) acc[j] = columns[1 + j][q];
            }
            else
            {
                // Far in a tail: the window misses the terms that carry f. Every step, in log space.
                logF = LogSpaceSum(ws, steps, mu[r], maxExit, p, data, i, theta);
                s = 1.0;
                logScale = 0.0;
            }

            if (epsilon > 0)
            {
                // log(f + ε): phasic's compatibility mode (flattens the gradient where f is tiny).
                double factor = double.IsNaN(logF) ? Math.Exp(logScale) : Math.Exp(logF);
                double f = double.IsNaN(logF) ? s * factor : factor;
                ll += Math.Log(f + epsilon);
                for (int j = 0; j < p; j++) grad[j] += acc[j] * factor / (f + epsilon);
                continue;
            }
            if (!double.IsNaN(logF))
            {
                if (double.IsNegativeInfinity(logF))
                {
                    zeroObservation = i;
                    return ZeroDensity(grad, p);
                }
                AddInLogSpace(logF, acc, grad, p, ref ll);
                continue;
            }
            if (!(s > 0.0))
            {
                zeroObservation = i;
                return ZeroDensity(grad, p);
            }
            ll += logScale == 0.0 ? Math.Log(s) : Math.Log(s) + logScale;
            double inv = 1.0 / s;
            for (int j = 0; j < p; j++) grad[j] += acc[j] * inv;
        }
        return ll;
    }

    /// <summary>Edge weights b + Σ c_k θ_k (left to right, as Graph.Weights) and the core's weight checks.</summary>
    private void Weights(ReadOnlySpan<double> theta, LikelihoodWorkspace ws)
    {
        var plan = _plan;
        var rows = plan.EdgeRow;
        var w = ws.W;
        int stride = _stride, p = _p;
        for (int e = 0; e < _e; e++)
        {
            int r = e * stride;
            double s = rows[r];
            for (int k = 0; k < p; k++) s += rows[r + 1 + k] * theta[k];
            w[e] = s;
        }
        var ws0 = ws.WStart;
        for (int e = 0; e < ws0.Length; e++)
        {
            int r = e * stride;
            double s = plan.StartRow[r];
            for (int k = 0; k < p; k++) s += plan.StartRow[r + 1 + k] * theta[k];
            ws0[e] = s;
        }
        CheckVertex(ws0, 0, ws0.Length, 0, theta);
        for (int i = 0; i < _t; i++)
            CheckVertex(w, plan.EdgeStart[i], plan.EdgeStart[i + 1], plan.TransientVertex[i], theta);
    }

    private void CheckVertex(double[] w, int from, int to, int vertex, ReadOnlySpan<double> theta)
    {
        double total = 0.0;
        for (int e = from; e < to; e++)
        {
            double x = w[e];
            if (!(x >= 0.0 && x < double.PositiveInfinity))
                throw new PtdException(string.Create(CultureInfo.InvariantCulture,
                    $"out-edge {e - from} of vertex {vertex} has weight {x:G6} at θ = [{Format(theta)}]; weights must be finite and non-negative — check the parameter values or the prior's support"));
            total += x;
        }
        if (to > from && !(total > 0.0))
            throw new PtdException(
                $"vertex {vertex} has out-edges but their weights sum to 0 at θ = [{Format(theta)}]; it could never be left — choose θ so that at least one out-edge is positive");
        if (_plan.Discrete && vertex != 0 && total > 1.0 + 1e-12)
            throw new PtdException(string.Create(CultureInfo.InvariantCulture,
                $"vertex {vertex}: out-probabilities sum to {total:R} > 1 at θ = [{Format(theta)}]; a discrete model's out-edges are probabilities"));
    }

    /// <summary>α and the defect from the start edges, and their tangents d(w/W) = (dw − (w/W)·dW)/W.</summary>
    private double InitialDistribution(LikelihoodWorkspace ws, int p)
    {
        int t = _t;
        var targets = _plan.StartTarget;
        var w = ws.WStart;
        var alpha = ws.Alpha;
        var talpha = ws.TAlpha;
        Array.Clear(alpha, 0, t);
        Array.Clear(talpha, 0, p * t);
        double total = 0.0;
        for (int e = 0; e < w.Length; e++) total += w[e];
        double defect = 0.0;
        for (int e = 0; e < w.Length; e++)
        {
            int z = targets[e];
            if (z >= 0) alpha[z] += w[e] / total;
            else defect += w[e] / total;
        }
        int s = w.Length;
        for (int j = 0; j < p; j++)
        {
            double dtotal = 0.0;
            for (int e = 0; e < s; e++) dtotal += _dwStart[j * s + e];
            double ddefect = 0.0;
            for (int e = 0; e < s; e++)
            {
                int z = targets[e];
                double d = (_dwStart[j * s + e] - w[e] / total * dtotal) / total;
                if (z >= 0) talpha[j * t + z] += d;
                else ddefect += d;
            }
            ws.TDefect[j] = ddefect;
        }
        return defect;
    }

    /// <summary>
    /// v_k = π_k·s and its tangents for k &lt; steps (π_0 = α, π_{k+1} = π_k P). Returns true when
    /// some step was rescaled (v_k is then stored as v_k · 2^−Exponents[k]).
    /// </summary>
    private bool Sweep(LikelihoodWorkspace ws, int steps, int p)
    {
        int t = _t, ce = _ce;
        var pi = ws.Pi;
        var next = ws.Next;
        var dpi = ws.DPi;
        var dnext = ws.DNext;
        Array.Copy(ws.Alpha, pi, t);
        Array.Copy(ws.TAlpha, dpi, p * t);
        var exit = ws.Exit;
        var stay = ws.Stay;
        var pc = ws.P;
        var tp = ws.TP;
        var tstay = ws.TStay;
        var v = ws.V;
        var dv = ws.DV;
        int stride = v.Length;
        var exps = ws.Exponents;
        var prefix = ws.PrefixLog2;
        var massLog2 = ws.MassLog2;
        double mass0 = 0.0;
        for (int x = 0; x < t; x++) mass0 += pi[x];
        massLog2[0] = Log2Bound(mass0, 0);
        var inStart = _inStart;
        var inSource = _inSource;
        var dexit = _dexit;
        var exitStates = _exitStates;
        bool scaled = false;
        int exponent = 0;
        for (int k = 0; k < steps; k++)
        {
            // Over the exit states only: every other state's terms are exact zeros, and adding
            // +0 changes no sum (they start from +0), so this is the sum over all states.
            double u = 0.0;
            foreach (int x in exitStates) u += pi[x] * exit[x];
            v[k] = u;
            exps[k] = exponent;
            int bound = Log2Bound(u, exponent);
            prefix[k] = k == 0 ? bound : Math.Max(prefix[k - 1], bound);
            for (int j = 0; j < p; j++)
            {
                int o = j * t;
                double du = 0.0;
                foreach (int x in exitStates) du = du + dpi[o + x] * exit[x] + pi[x] * dexit[o + x];
                dv[j * stride + k] = du;
            }
            if (k == steps - 1) break;

            if (p == 1)
            {
                // One parameter (the common case): value and tangent in one pass over the
                // in-edges, each with exactly the operations of the general loops below.
                for (int z = 0; z < t; z++)
                {
                    double pz = pi[z];
                    double acc = pz * stay[z];
                    double dacc = dpi[z] * stay[z] + pz * tstay[z];
                    for (int c = inStart[z]; c < inStart[z + 1]; c++)
                    {
                        int x = inSource[c];
                        double px = pi[x], q = pc[c];
                        acc += px * q;
                        dacc = dacc + dpi[x] * q + px * tp[c];
                    }
                    next[z] = acc;
                    dnext[z] = dacc;
                }
            }
            else
            {
                for (int z = 0; z < t; z++)
                {
                    double acc = pi[z] * stay[z];
                    for (int c = inStart[z]; c < inStart[z + 1]; c++) acc += pi[inSource[c]] * pc[c];
                    next[z] = acc;
                }
                for (int j = 0; j < p; j++)
                {
                    int o = j * t, oc = j * ce;
                    for (int z = 0; z < t; z++)
                    {
                        double acc = dpi[o + z] * stay[z] + pi[z] * tstay[o + z];
                        for (int c = inStart[z]; c < inStart[z + 1]; c++)
                        {
                            int x = inSource[c];
                            acc = acc + dpi[o + x] * pc[c] + pi[x] * tp[oc + c];
                        }
                        dnext[o + z] = acc;
                    }
                }
            }

            // Keep π representable: a power-of-two rescale is exact, so results are unchanged
            // wherever the plain sweep would not have underflowed.
            double max = 0.0, mass = 0.0;
            for (int x = 0; x < t; x++)
            {
                max = Math.Max(max, next[x]);
                mass += next[x];
            }
            massLog2[k + 1] = Log2Bound(mass, exponent);
            if (max > 0.0 && max < RescaleBelow)
            {
                int shift = -Math.ILogB(max);
                double f = Math.ScaleB(1.0, shift);
                for (int x = 0; x < t; x++) next[x] *= f;
                for (int x = 0; x < p * t; x++) dnext[x] *= f;
                exponent -= shift;
                scaled = true;
            }

            (pi, next) = (next, pi);
            (dpi, dnext) = (dnext, dpi);
        }
        return scaled;
    }

    /// <summary>An e with x · 2^exponent &lt; 2^e (a very negative e for x = 0).</summary>
    private static int Log2Bound(double x, int exponent) => x > 0 ? Math.ILogB(x) + 1 + exponent : int.MinValue / 4;

    /// <summary>
    /// Σ_k Pois(k; μ) v_k over the core's window (weights by the core's recurrences from the
    /// mode outward, each brought to the mode's exponent when the sweep was rescaled), summed as
    /// vector dot products, with the tangents in ws.Acc. <paramref name="resolved"/> is false when the terms the window leaves out could
    /// exceed 1e-9 of the sum (an observation far in a tail, where the core's absolute
    /// truncation is no longer a relative one).
    /// </summary>
    private double PoissonSum(LikelihoodWorkspace ws, int steps, int m, double mu, bool scaled, double maxExit, int p, out bool resolved)
    {
        var v = ws.V;
        var dv = ws.DV;
        int stride = v.Length;
        var acc = ws.Acc;
        var invK = ws.InvK;
        var weights = ws.Weights;
        var exps = ws.Exponents;
        int em = exps[m];
        double pm = Poisson.weight(m, mu);
        double cut = UniformizationWindows.Eps * pm;
        double invMu = 1.0 / mu;
        weights[m] = pm;
        // The window: upward while the weight is above the cut (and at least up to μ), downward
        // while above the cut. The two recurrences are independent; running them in one loop
        // overlaps their latencies.
        double wUp = pm, wDown = pm;
        int up = m + 1, down = m - 1;
        bool goUp = up < steps, goDown = down >= 0;
        while (goUp || goDown)
        {
            if (goUp)
            {
                wUp *= mu * invK[up];
                weights[up] = wUp;
                up++;
                goUp = up < steps && (wUp >= cut || up <= mu);
            }
            if (goDown)
            {
                wDown *= (down + 1) * invMu;
                weights[down] = wDown;
                down--;
                goDown = down >= 0 && wDown >= cut;
            }
        }
        int lo = down + 1, count = up - lo;
        if (scaled)
            for (int k = lo; k < up; k++) weights[k] = Math.ScaleB(weights[k], exps[k] - em);
        var w = weights.AsSpan(lo, count);
        double s = Dot(w, v.AsSpan(lo, count));
        for (int j = 0; j < p; j++) acc[j] = Dot(w, dv.AsSpan(j * stride + lo, count));

        // What the window leaves out, in the mode's units. Above: Σ_{j ≥ up} w_j ≤ w_up/(1 − μ/(up+1))
        // (up > μ: the loop stops above the mode, and the sweep reaches past every μ), and
        // v_j ≤ max exit rate × the mass left in the chain, which never grows. Below:
        // Σ_{j ≤ down} w_j ≤ w_down/(1 − down/μ), v_j ≤ 2^PrefixLog2[down].
        double above = wUp * mu / up / (1.0 - mu / (up + 1)) * Math.ScaleB(maxExit, ws.MassLog2[Math.Min(up, steps - 1)] - em);
        double below = down >= 0
            ? wDown * (down + 1) * invMu / (1.0 - down * invMu) * Math.ScaleB(1.0, ws.PrefixLog2[down] - em)
            : 0.0;
        resolved = above + below <= 1e-9 * s;
        return s;
    }

    /// <summary>Σ a_i b_i with four vector accumulators (a fixed order: deterministic).</summary>
    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = a.Length, i = 0;
        int lanes = System.Numerics.Vector<double>.Count;
        double sum = 0.0;
        if (n >= 2 * lanes)
        {
            var s0 = System.Numerics.Vector<double>.Zero;
            var s1 = System.Numerics.Vector<double>.Zero;
            for (; i + 2 * lanes <= n; i += 2 * lanes)
            {
                s0 += new System.Numerics.Vector<double>(a.Slice(i)) * new System.Numerics.Vector<double>(b.Slice(i));
                s1 += new System.Numerics.Vector<double>(a.Slice(i + lanes)) * new System.Numerics.Vector<double>(b.Slice(i + lanes));
            }
            sum = System.Numerics.Vector.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>
    /// log f and ∂ log f/∂θ (into ws.Acc) for one observation from EVERY step, in log space:
    /// log Pois(k; μ) from Loader's form (no recurrence that could underflow), the sweep's
    /// exponents added, terms combined relative to the largest. Slow (a few logs per step); used
    /// only for observations far in a tail.
    /// </summary>
    private double LogSpaceSum(LikelihoodWorkspace ws, int steps, double mu, double maxExit, int p, LikelihoodData data, int index, ReadOnlySpan<double> theta)
    {
        var v = ws.V;
        var dv = ws.DV;
        var acc = ws.Acc;
        int stride = v.Length;
        var exps = ws.Exponents;
        var logFactorial = ws.LogFactorial;
        double logMu = Math.Log(mu);
        double top = double.NegativeInfinity;
        for (int k = 0; k < steps; k++)
            if (v[k] > 0) top = Math.Max(top, LogPoisson(k, mu, logMu, logFactorial) + Math.Log(v[k]) + exps[k] * Ln2);
        for (int j = 0; j < p; j++) acc[j] = 0.0;
        if (double.IsNegativeInfinity(top))
        {
            // Every step's term is exactly 0: a true zero density (if nothing lies beyond the sweep).
            CheckBeyondSweep(steps, mu, maxExit, ws.MassLog2[steps - 1], double.NegativeInfinity, data, index, theta);
            return double.NegativeInfinity;
        }
        double s = 0.0;
        for (int k = 0; k < steps; k++)
        {
            if (v[k] == 0 && !AnyTangent(dv, k, p, stride)) continue;
            double f = Math.Exp(LogPoisson(k, mu, logMu, logFactorial) + exps[k] * Ln2 - top);
            s += f * v[k];
            for (int j = 0; j < p; j++) acc[j] += f * dv[j * stride + k];
        }
        double logF = top + Math.Log(s);
        CheckBeyondSweep(steps, mu, maxExit, ws.MassLog2[steps - 1], logF, data, index, theta);
        for (int j = 0; j < p; j++) acc[j] /= s;
        return logF;
    }

    private static bool AnyTangent(double[] dv, int k, int p, int stride)
    {
        for (int j = 0; j < p; j++) if (dv[j * stride + k] != 0) return true;
        return false;
    }

    /// <summary>The sweep ends where the data's largest window does; terms beyond it must be negligible.</summary>
    private static void CheckBeyondSweep(int steps, double mu, double maxExit, int massLog2, double logF, LikelihoodData data, int index, ReadOnlySpan<double> theta)
    {
        double logBeyond = LogPoisson(steps, mu) - Math.Log(1.0 - mu / (steps + 1)) + Math.Log(maxExit) + massLog2 * Ln2;
        if (logBeyond > logF + Math.Log(1e-9))
            throw new PtdException(string.Create(CultureInfo.InvariantCulture,
                $"observation {index + 1} (value {data.Values[index]:R}) lies so far in a tail of the model at θ = [{Format(theta)}] that its density (log f ≈ {logF:G4}) cannot be resolved by the sweep; start the particles closer to the data's scale (priors or initial values)"));
    }

    private static double LogPoisson(int k, double mu) => Poisson.logWeight(k, mu);

    /// <summary>log Pois(k; μ) = k log μ − μ − log k! from a table (absolute error ~1e-16·k log μ: ample for the tail path).</summary>
    private static double LogPoisson(int k, double mu, double logMu, double[] logFactorial) => k * logMu - mu - logFactorial[k];
}

/// <summary>One thread's buffers for <see cref="LikelihoodKernel"/> (sized once, grown with the sweep length).</summary>
internal sealed class LikelihoodWorkspace
{
    private readonly int _p;

    public LikelihoodWorkspace(int t, int e, int ce, int p, int startEdges)
    {
        _p = p;
        W = new double[e];
        WStart = new double[startEdges];
        Lambda = new double[t];
        Stay = new double[t];
        Exit = new double[t];
        P = new double[ce];
        TP = new double[p * ce];
        TStay = new double[p * t];
        Alpha = new double[t];
        TAlpha = new double[p * t];
        TDefect = new double[p];
        Pi = new double[t];
        Next = new double[t];
        DPi = new double[p * t];
        DNext = new double[p * t];
        Acc = new double[p];
        V = [];
        DV = [];
        Exponents = [];
        PrefixLog2 = [];
        MassLog2 = [];
        InvK = [];
        LogFactorial = [];
    }

    public double[] W { get; }
    public double[] WStart { get; }
    public double[] Lambda { get; }
    public double[] Stay { get; }
    public double[] Exit { get; }
    public double[] P { get; }
    public double[] TP { get; }
    public double[] TStay { get; }
    public double[] Alpha { get; }
    public double[] TAlpha { get; }
    public double[] TDefect { get; }
    public double[] Pi { get; }
    public double[] Next { get; }
    public double[] DPi { get; }
    public double[] DNext { get; }
    public double[] Acc { get; }
    public double[] V { get; private set; }
    public double[] DV { get; private set; }
    public int[] Exponents { get; private set; }

    /// <summary>Per step k: an exponent e with v_j &lt; 2^e (true units) for every j ≤ k (bounds the terms a window leaves out).</summary>
    public int[] PrefixLog2 { get; private set; }

    /// <summary>Per step k: an exponent e with Σ π_k &lt; 2^e (true units; the mass left in the chain never grows).</summary>
    public int[] MassLog2 { get; private set; }
    public double[] InvK { get; private set; }

    /// <summary>The Poisson weights of the current observation's window.</summary>
    public double[] Weights { get; private set; } = [];

    /// <summary>The sweep as one column-major table for UniformizationWindows.sums (grown, never shrunk).</summary>
    public double[] Table { get; private set; } = [];

    /// <summary>μ = Λ·t by the data's sorted position (exactly one entry per observation: the core's sums take its length as the count).</summary>
    public double[] Mu { get; private set; } = [];

    /// <summary>Per sorted data position: its position in the sums' order (the identity when μ arrives sorted).</summary>
    public int[] Position { get; private set; } = [];

    public double[] EnsureTable(int length)
    {
        // Λ (so the sweep's length) varies with θ: grow by half again, not to each new length.
        if (Table.Length < length) Table = new double[Math.Max(length, Table.Length + Table.Length / 2)];
        return Table;
    }

    /// <summary>The core's window-sum arrays (order, columns, weights), kept from evaluation to evaluation.</summary>
    public UniformizationWindows.Workspace Windows { get; } = new();

    public double[] EnsureMu(int count)
    {
        if (Mu.Length != count) Mu = new double[count];
        return Mu;
    }

    public int[] EnsurePosition(int count)
    {
        if (Position.Length < count) Position = new int[count];
        return Position;
    }

    /// <summary>log k! for k ≤ the buffer size (the tail path's Poisson weights).</summary>
    public double[] LogFactorial { get; private set; }

    /// <summary>Grows the per-step buffers to hold <paramref name="steps"/> steps (never shrinks).</summary>
    public void EnsureSteps(int steps)
    {
        if (V.Length >= steps) return;
        int size = Math.Max(steps, Math.Min(LikelihoodData.MaxSteps, V.Length * 2));
        V = new double[size];
        DV = new double[(long)size * _p <= int.MaxValue ? size * _p : throw new PtdException($"a sweep of {size} steps with {_p} parameters needs more memory than one array holds")];
        Exponents = new int[size];
        Weights = new double[size];
        PrefixLog2 = new int[size];
        MassLog2 = new int[size];
        var invK = new double[size + 1];
        for (int k = 1; k <= size; k++) invK[k] = 1.0 / k;
        InvK = invK;
        var logFactorial = new double[size + 1];
        for (int k = 2; k <= size; k++) logFactorial[k] = logFactorial[k - 1] + Math.Log(k);
        LogFactorial = logFactorial;
    }
}
