namespace Ptd.Host.Kernels;

/// <summary>
/// The Poisson weights of the uniformization sum as the core computes them (TraceLikelihood's
/// Loader saddle-point form, as in R's dpois, and its window cut), for where the kernel still sums
/// windows itself: a rescaled sweep, and the log-space tail path's bound on the terms beyond the
/// sweep. (The common case calls the core's UniformizationWindows directly.) A change in the core
/// must be mirrored here and the generator revision bumped (the agreement tests in
/// tests/Inference.Tests catch a drift).
/// </summary>
internal static class PoissonTerms
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2.0 * Math.PI);

    /// <summary>Terms below Eps × the mode's term are dropped (the dropped mass is below ~1e-15).</summary>
    public const double Eps = 1e-17;

    /// <summary>log k! − ((k + ½) log k − k + ½ log 2π).</summary>
    public static double StirlingError(int k) => k <= 15 ? SmallStirlingErrors[k] : StirlingErrorSeries(k);

    // The core's loop for k ≤ 15, evaluated once (same operations, same values) instead of up to
    // 15 logarithms per observation.
    private static readonly double[] SmallStirlingErrors = Enumerable.Range(0, 16).Select(SmallStirlingError).ToArray();

    private static double SmallStirlingError(int k)
    {
        double n = k;
        double lf = 0.0;
        for (int i = 2; i <= k; i++) lf += Math.Log(i);
        return lf - ((n + 0.5) * Math.Log(n) - n + HalfLog2Pi);
    }

    private static double StirlingErrorSeries(int k)
    {
        double n = k;
        double n2 = n * n;
        return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - (1.0 / 1188.0) / n2) / n2) / n2) / n2) / n;
    }

    /// <summary>k log(k/μ) + μ − k without cancellation near k = μ.</summary>
    public static double Bd0(double k, double mu)
    {
        if (Math.Abs(k - mu) < 0.1 * (k + mu))
        {
            double v = (k - mu) / (k + mu);
            double s = (k - mu) * v;
            double ej = 2.0 * k * v;
            double v2 = v * v;
            int j = 1;
            while (true)
            {
                ej *= v2;
                double s1 = s + ej / (2 * j + 1);
                if (s1 == s) return s;
                s = s1;
                j++;
            }
        }
        return k * Math.Log(k / mu) + mu - k;
    }

    /// <summary>Pois(k; μ) for μ &gt; 0.</summary>
    public static double Pmf(int k, double mu) =>
        k == 0 ? Math.Exp(-mu) : Math.Exp(-StirlingError(k) - Bd0(k, mu) - 0.5 * Math.Log(2.0 * Math.PI * k));
}
