namespace Ptd.Host.Svgd;

/// <summary>
/// xoshiro256** seeded through SplitMix64. Our own generator rather than <see cref="Random"/> so that
/// a seed gives the same particles on every .NET version and platform (System.Random's seeded
/// algorithm is an implementation detail that may change).
/// </summary>
internal sealed class SvgdRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareNormal;

    public SvgdRandom(long seed)
    {
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            ulong z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    private ulong NextUInt64()
    {
        unchecked
        {
            ulong result = RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = RotateLeft(_s3, 45);
            return result;
        }
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>Uniform on the open interval (0, 1): never 0 or 1, so logs and inverse CDFs are safe.</summary>
    public double NextOpenUnit()
    {
        // 53 random bits, shifted by half an ulp so that 0 cannot occur.
        return ((NextUInt64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    }

    /// <summary>Standard normal by the Box–Muller transform (pairs cached).</summary>
    public double NextStandardNormal()
    {
        if (_spareNormal is double spare)
        {
            _spareNormal = null;
            return spare;
        }
        double u1 = NextOpenUnit();
        double u2 = NextOpenUnit();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        double a = 2.0 * Math.PI * u2;
        _spareNormal = r * Math.Sin(a);
        return r * Math.Cos(a);
    }

    /// <summary>Gamma(shape, rate = 1) by Marsaglia and Tsang (2000), with the shape &lt; 1 boost.</summary>
    public double NextGamma(double shape)
    {
        if (shape < 1.0)
        {
            // Gamma(a) = Gamma(a + 1) · U^(1/a).
            double u = NextOpenUnit();
            return NextGamma(shape + 1.0) * Math.Pow(u, 1.0 / shape);
        }
        double d = shape - 1.0 / 3.0;
        double c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = NextStandardNormal();
                v = 1.0 + c * x;
            } while (v <= 0.0);
            v = v * v * v;
            double u = NextOpenUnit();
            if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
            if (Math.Log(u) < 0.5 * x * x + d * (1.0 - v + Math.Log(v))) return d * v;
        }
    }
}
