using System.Numerics;
using System.Runtime.InteropServices;

namespace Ptd.Host.Svgd;

/// <summary>
/// The O(n²d) part of an SVGD iteration, with all arrays allocated once per run:
/// φ̂(x_i) = (1/n) Σ_j K_ij [∇log p(x_j) + (x_i − x_j)/h²], K_ij = exp(−‖x_i − x_j‖²/(2h²)).
/// </summary>
/// <remarks>
/// Particles are copied to a column layout (d×n) so that the inner loops over j run over contiguous
/// memory with <see cref="Vector{T}"/>. Distances and exponentials are computed once per pair, on the
/// upper triangle packed row by row (which is also the median's input), then mirrored into the full
/// K. Rows i are independent, so large n runs them in parallel without changing any sum's order:
/// results are identical with or without parallelism.
/// </remarks>
internal sealed class KernelWorkspace
{
    // Rows go to threads only from this many particles on. At n = 256 on the shared 2-core build
    // machine (load 5–10) threads made an iteration slower (1.7 ms against 0.79 ms on one thread);
    // from n = 512 (262,144 kernel entries, milliseconds per update) the hand-off is negligible.
    internal const int ParallelThreshold = 512;

    private readonly int _n, _d, _m;
    private readonly double[] _xc, _gc, _packed, _pairs, _k, _out;

    public KernelWorkspace(int particles, int dimension)
    {
        _n = particles;
        _d = dimension;
        _m = particles * (particles - 1) / 2;
        _xc = new double[dimension * particles];
        _gc = new double[dimension * particles];
        _packed = new double[_m];
        _pairs = new double[_m];
        _k = new double[particles * particles];
        _out = new double[particles * dimension];
    }

    /// <summary>The kernel matrix of the last <see cref="BuildKernel"/> call (n×n, row-major).</summary>
    public ReadOnlySpan<double> Kernel => _k;

    /// <summary>Where row i's pairs (i, i+1 … n−1) start in the packed upper triangle.</summary>
    private int Offset(int i) => i * _n - i * (i + 1) / 2;

    private static Vector<double> Load(ReadOnlySpan<double> s, int j) =>
        Vector.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)j);

    private static void Store(Vector<double> v, Span<double> s, int j) =>
        v.StoreUnsafe(ref MemoryMarshal.GetReference(s), (nuint)j);

    /// <summary>Copies particles (row-major n×d) to the column layout and computes the squared pair distances.</summary>
    public void LoadParticles(ReadOnlySpan<double> x, int maxDegreeOfParallelism = 1)
    {
        int n = _n, d = _d;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < d; k++)
                _xc[k * n + i] = x[i * d + k];
        ForEachRow(maxDegreeOfParallelism, DistanceRow);
    }

    private void DistanceRow(int i)
    {
        int n = _n, len = n - 1 - i;
        Span<double> seg = _packed.AsSpan(Offset(i), len);
        seg.Clear();
        for (int k = 0; k < _d; k++)
        {
            ReadOnlySpan<double> xs = _xc.AsSpan(k * n + i + 1, len);
            double xi = _xc[k * n + i];
            int j = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var vi = new Vector<double>(xi);
                for (; j <= len - Vector<double>.Count; j += Vector<double>.Count)
                {
                    var diff = Load(xs, j) - vi;
                    Store(Load(seg, j) + diff * diff, seg, j);
                }
            }
            for (; j < len; j++)
            {
                double diff = xs[j] - xi;
                seg[j] += diff * diff;
            }
        }
    }

    /// <summary>
    /// Runs a row body for every row, on several threads when n is large. Each row writes only its
    /// own cells and sums in a fixed order, so the result does not depend on the thread count.
    /// </summary>
    private void ForEachRow(int maxDegreeOfParallelism, Action<int> body)
    {
        if (_n >= ParallelThreshold && maxDegreeOfParallelism != 1)
            Parallel.For(0, _n, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, body);
        else
            for (int i = 0; i < _n; i++) body(i);
    }

    /// <summary>h² for the loaded particles.</summary>
    public double BandwidthSquared(BandwidthRule rule, double fixedBandwidth)
    {
        if (rule == BandwidthRule.Fixed) return fixedBandwidth * fixedBandwidth;
        int n = _n, m = _m;
        double logTerm = Math.Log(n + 1.0);
        _packed.AsSpan().CopyTo(_pairs); // the select reorders its input
        double h2;
        switch (rule)
        {
            case BandwidthRule.Median:
            {
                long total = (long)n * n;
                int upper = (int)(total / 2);
                double hi = FullOrderStatistic(upper);
                // For even n² the median averages sorted entries upper − 1 and upper. After the
                // select, entry upper − 1 is 0 (a diagonal zero) or the largest pair left of the
                // selected one — a scan, not a second select.
                double med = total % 2 == 1 ? hi : 0.5 * (FullOrderStatisticBelow(upper) + hi);
                h2 = 0.5 * med / logTerm;
                break;
            }
            case BandwidthRule.PhasicMedian:
            {
                for (int p = 0; p < m; p++) _pairs[p] = Math.Sqrt(_pairs[p]);
                double upperValue = Select(_pairs.AsSpan(0, m), m / 2);
                double med = m % 2 == 1 ? upperValue : 0.5 * (MaxBefore(m / 2) + upperValue);
                double h = med / logTerm;
                h2 = h * h;
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown bandwidth rule.");
        }
        if (h2 > 0 && double.IsFinite(h2)) return h2;
        // Guard h > 0: when most particles coincide the median is 0. Fall back to the mean squared
        // distance (same scaling), and to 1 when every particle is identical.
        double sum = 0;
        foreach (double v in _packed) sum += v;
        double mean = sum / Math.Max(1, m);
        return mean > 0 && double.IsFinite(mean) ? 0.5 * mean / logTerm : 1.0;
    }

    // The full matrix holds n zeros and each pair value twice: sorted entry t is 0 for t < n and
    // the ((t − n)/2)-th smallest pair otherwise.
    private double FullOrderStatistic(int t) => t < _n ? 0.0 : Select(_pairs.AsSpan(0, _m), (t - _n) / 2);

    /// <summary>Sorted entry t − 1 of the full matrix, right after <see cref="FullOrderStatistic"/>(t).</summary>
    private double FullOrderStatisticBelow(int t)
    {
        int s = t - 1;
        if (s < _n) return 0.0;
        int pairIndex = (s - _n) / 2, selected = (t - _n) / 2;
        // Either the same pair (its two copies are adjacent) or the pair just below the selected one,
        // which after the select is the largest value to its left.
        return pairIndex == selected ? _pairs[selected] : MaxBefore(selected);
    }

    /// <summary>The largest of _pairs[0 .. k − 1]; after Select(k) these are the k smallest values.</summary>
    private double MaxBefore(int k)
    {
        double max = double.NegativeInfinity;
        for (int i = 0; i < k; i++) max = Math.Max(max, _pairs[i]);
        return max;
    }

    /// <summary>The k-th smallest value (0-based) by quickselect; reorders <paramref name="a"/>.</summary>
    internal static double Select(Span<double> a, int k)
    {
        int lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            // Median-of-three pivot: deterministic, and no quadratic case on sorted input.
            int mid = lo + (hi - lo) / 2;
            double x = a[lo], y = a[mid], z = a[hi];
            double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return a[k];
        }
        return a[k];
    }

    /// <summary>K = exp(−D / (2h²)) from the loaded distances: one exp per pair, then mirrored.</summary>
    public void BuildKernel(double h2, int maxDegreeOfParallelism = 1)
    {
        double c = -0.5 / h2;
        ForEachRow(maxDegreeOfParallelism, i => ExpRow(i, c));
        // Row i's lower part reads other rows' upper parts: only after every row is done.
        ForEachRow(maxDegreeOfParallelism, MirrorRow);
    }

    private void ExpRow(int i, double c)
    {
        int n = _n, len = n - 1 - i;
        _k[i * n + i] = 1.0;
        ReadOnlySpan<double> dist = _packed.AsSpan(Offset(i), len);
        Span<double> k = _k.AsSpan(i * n + i + 1, len);
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vc = new Vector<double>(c);
            for (; j <= len - Vector<double>.Count; j += Vector<double>.Count)
                Store(Vector.Exp(Load(dist, j) * vc), k, j);
        }
        for (; j < len; j++) k[j] = Math.Exp(dist[j] * c);
    }

    private void MirrorRow(int i)
    {
        int n = _n;
        for (int j = 0; j < i; j++) _k[i * n + j] = _k[j * n + i];
    }

    /// <summary>
    /// Loads particles and gradients (row-major n×d), chooses h², builds K and writes φ̂ (row-major n×d).
    /// Returns h².
    /// </summary>
    public double Direction(
        ReadOnlySpan<double> x,
        ReadOnlySpan<double> gradients,
        BandwidthRule rule,
        double fixedBandwidth,
        Span<double> direction,
        int maxDegreeOfParallelism = -1)
    {
        int n = _n, d = _d;
        LoadParticles(x, maxDegreeOfParallelism);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < d; k++)
                _gc[k * n + i] = gradients[i * d + k];
        double h2 = BandwidthSquared(rule, fixedBandwidth);
        BuildKernel(h2, maxDegreeOfParallelism);
        double invH2 = 1.0 / h2, invN = 1.0 / n;
        ForEachRow(maxDegreeOfParallelism, i => Row(i, invH2, invN));
        _out.AsSpan().CopyTo(direction);
        return h2;
    }

    private void Row(int i, double invH2, double invN)
    {
        int n = _n, d = _d;
        ReadOnlySpan<double> krow = _k.AsSpan(i * n, n);
        for (int k = 0; k < d; k++)
        {
            ReadOnlySpan<double> xs = _xc.AsSpan(k * n, n), gs = _gc.AsSpan(k * n, n);
            double xi = xs[i];
            // Σ_j K_ij (x_i − x_j) directly rather than x_i Σ K − Σ K x: no cancellation far from 0.
            double kg = 0, kd = 0;
            int j = 0;
            if (Vector.IsHardwareAccelerated && n >= Vector<double>.Count)
            {
                var vxi = new Vector<double>(xi);
                Vector<double> ag = Vector<double>.Zero, ad = Vector<double>.Zero;
                for (; j <= n - Vector<double>.Count; j += Vector<double>.Count)
                {
                    var kv = Load(krow, j);
                    ag += kv * Load(gs, j);
                    ad += kv * (vxi - Load(xs, j));
                }
                kg = Vector.Sum(ag);
                kd = Vector.Sum(ad);
            }
            for (; j < n; j++)
            {
                kg += krow[j] * gs[j];
                kd += krow[j] * (xi - xs[j]);
            }
            _out[i * d + k] = (kg + kd * invH2) * invN;
        }
    }
}
