using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Svgd;

/// <summary>
/// A univariate prior density. Whether it applies to θ (with the transform's Jacobian) or to the
/// unconstrained φ is chosen separately, by <see cref="ParameterPrior.Space"/>.
/// </summary>
/// <remarks>
/// Specs are written <c>family:args</c>: <c>gamma:shape,rate</c>, <c>lognormal:mu,sigma</c>,
/// <c>normal:mu,sigma</c>, <c>uniform:lo,hi</c>, or <c>flat</c> (improper, cannot be sampled).
/// </remarks>
public abstract class Prior
{
    private protected Prior() { }

    /// <summary>The prior written as a spec, e.g. <c>gamma:2,1</c> (parsable by <see cref="Parse"/> for built-in families).</summary>
    public abstract string Spec { get; }

    /// <summary>log π(x); <see cref="double.NegativeInfinity"/> outside the support.</summary>
    public abstract double LogDensity(double x);

    /// <summary>d/dx log π(x) (0 outside the support, where it is undefined).</summary>
    public abstract double LogDensityDerivative(double x);

    /// <summary>Whether initial particles can be drawn from this prior.</summary>
    public abstract bool CanSample { get; }

    /// <summary>Draws a value by the inverse CDF or a direct method, from the engine's seeded generator.</summary>
    internal abstract double Sample(SvgdRandom random);

    /// <inheritdoc />
    public override string ToString() => Spec;

    /// <summary>Gamma(shape, rate): density rate^shape x^(shape−1) e^(−rate·x) / Γ(shape), x &gt; 0.</summary>
    public static Prior Gamma(double shape, double rate)
    {
        RequirePositive(shape, nameof(shape), "gamma");
        RequirePositive(rate, nameof(rate), "gamma");
        return new GammaPrior(shape, rate);
    }

    /// <summary>LogNormal(mu, sigma): log x ~ Normal(mu, sigma), x &gt; 0.</summary>
    public static Prior LogNormal(double mu, double sigma)
    {
        RequireFinite(mu, nameof(mu), "lognormal");
        RequirePositive(sigma, nameof(sigma), "lognormal");
        return new LogNormalPrior(mu, sigma);
    }

    /// <summary>Normal(mu, sigma) with standard deviation sigma.</summary>
    public static Prior Normal(double mu, double sigma)
    {
        RequireFinite(mu, nameof(mu), "normal");
        RequirePositive(sigma, nameof(sigma), "normal");
        return new NormalPrior(mu, sigma);
    }

    /// <summary>Uniform on [lo, hi].</summary>
    public static Prior Uniform(double lo, double hi)
    {
        RequireFinite(lo, nameof(lo), "uniform");
        RequireFinite(hi, nameof(hi), "uniform");
        if (!(lo < hi))
            throw new ArgumentException($"uniform prior: lo ({lo:R}) must be less than hi ({hi:R}).", nameof(hi));
        return new UniformPrior(lo, hi);
    }

    /// <summary>The improper flat prior (log density 0 everywhere). It cannot be sampled: give initial particles.</summary>
    public static Prior Flat { get; } = new FlatPrior();

    /// <summary>A user-supplied prior.</summary>
    /// <param name="name">A name for messages and JSON (e.g. <c>"my-prior"</c>).</param>
    /// <param name="logDensity">x → log π(x) (up to a constant).</param>
    /// <param name="logDensityDerivative">x → d/dx log π(x).</param>
    /// <param name="inverseCdf">Optional u ∈ (0, 1) → x, used to draw initial particles; without it give initial particles.</param>
    public static Prior Custom(
        string name,
        Func<double, double> logDensity,
        Func<double, double> logDensityDerivative,
        Func<double, double>? inverseCdf = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(logDensity);
        ArgumentNullException.ThrowIfNull(logDensityDerivative);
        return new CustomPrior(name, logDensity, logDensityDerivative, inverseCdf);
    }

    /// <summary>
    /// Parses one spec: <c>gamma:2,1</c>, <c>lognormal:0,1</c>, <c>normal:0,1</c>, <c>uniform:0,10</c>
    /// or <c>flat</c> (family case-insensitive, numbers in invariant culture).
    /// </summary>
    /// <exception cref="PtdException">The spec is malformed; the message says what and how to fix it.</exception>
    public static Prior Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string text = spec.Trim();
        int colon = text.IndexOf(':');
        string family = (colon < 0 ? text : text[..colon]).Trim().ToLowerInvariant();
        string[] argTexts = colon < 0 || text[(colon + 1)..].Trim().Length == 0
            ? []
            : text[(colon + 1)..].Split(',');
        var args = new double[argTexts.Length];
        for (int i = 0; i < argTexts.Length; i++)
        {
            if (!double.TryParse(argTexts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out args[i]))
                throw new PtdException(
                    $"Prior '{spec}': argument {i + 1} ('{argTexts[i].Trim()}') is not a number; write e.g. gamma:2,1 (a dot for decimals).");
        }
        (int count, string usage) = family switch
        {
            "gamma" => (2, "gamma:shape,rate (e.g. gamma:2,1)"),
            "lognormal" => (2, "lognormal:mu,sigma (e.g. lognormal:0,1)"),
            "normal" => (2, "normal:mu,sigma (e.g. normal:0,1)"),
            "uniform" => (2, "uniform:lo,hi (e.g. uniform:0,10)"),
            "flat" => (0, "flat"),
            _ => throw new PtdException(
                $"Prior '{spec}': unknown family '{family}'; use gamma:shape,rate, lognormal:mu,sigma, normal:mu,sigma, uniform:lo,hi or flat."),
        };
        if (args.Length != count)
            throw new PtdException($"Prior '{spec}': {family} takes {count} argument(s), got {args.Length}; write {usage}.");
        try
        {
            return family switch
            {
                "gamma" => Gamma(args[0], args[1]),
                "lognormal" => LogNormal(args[0], args[1]),
                "normal" => Normal(args[0], args[1]),
                "uniform" => Uniform(args[0], args[1]),
                _ => Flat,
            };
        }
        catch (ArgumentException e)
        {
            throw new PtdException($"Prior '{spec}': {e.Message.Split(" (Parameter")[0]} Write {usage}.", e);
        }
    }

    /// <summary>
    /// Parses a comma-separated list of specs in parameter order, e.g. <c>gamma:2,1,normal:0,1</c>
    /// (a token containing ':' or a bare family name starts a new spec).
    /// </summary>
    /// <exception cref="PtdException">A spec is malformed.</exception>
    public static IReadOnlyList<Prior> ParseList(string specs) => SplitList(specs).Select(Parse).ToArray();

    /// <summary>Splits a comma-separated list of specs at the tokens that start a new spec.</summary>
    internal static IReadOnlyList<string> SplitList(string specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        var result = new List<string>();
        var current = new List<string>();
        foreach (string raw in specs.Split(','))
        {
            string token = raw.Trim();
            bool startsSpec = token.Contains(':') || (token.Length > 0 && char.IsLetter(token[0]) && !IsNumberWord(token));
            if (startsSpec && current.Count > 0)
            {
                result.Add(string.Join(",", current));
                current.Clear();
            }
            if (!startsSpec && current.Count == 0)
                throw new PtdException($"Prior list '{specs}': '{token}' does not start with a family; write e.g. gamma:2,1,normal:0,1.");
            current.Add(token);
        }
        if (current.Count > 0) result.Add(string.Join(",", current));
        return result;
    }

    private static bool IsNumberWord(string token) =>
        double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    private static void RequireFinite(double value, string name, string family)
    {
        if (!double.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{family} prior: {name} must be a finite number, got {value:R}.");
    }

    private static void RequirePositive(double value, string name, string family)
    {
        if (!(value > 0) || !double.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{family} prior: {name} must be a positive finite number, got {value:R}.");
    }

    private static string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    private const double HalfLogTwoPi = 0.91893853320467274178;

    private sealed class GammaPrior(double shape, double rate) : Prior
    {
        private readonly double _norm = shape * Math.Log(rate) - SpecialFunctions.LogGamma(shape);
        public override string Spec => $"gamma:{Num(shape)},{Num(rate)}";
        public override bool CanSample => true;

        public override double LogDensity(double x) =>
            x > 0 ? _norm + (shape - 1.0) * Math.Log(x) - rate * x
            : x == 0 && shape == 1.0 ? _norm
            : double.NegativeInfinity;

        public override double LogDensityDerivative(double x) => x > 0 ? (shape - 1.0) / x - rate : 0.0;
        internal override double Sample(SvgdRandom random) => random.NextGamma(shape) / rate;
    }

    private sealed class LogNormalPrior(double mu, double sigma) : Prior
    {
        public override string Spec => $"lognormal:{Num(mu)},{Num(sigma)}";
        public override bool CanSample => true;

        public override double LogDensity(double x)
        {
            if (!(x > 0)) return double.NegativeInfinity;
            double z = (Math.Log(x) - mu) / sigma;
            return -Math.Log(x) - Math.Log(sigma) - HalfLogTwoPi - 0.5 * z * z;
        }

        public override double LogDensityDerivative(double x) =>
            x > 0 ? -1.0 / x - (Math.Log(x) - mu) / (sigma * sigma * x) : 0.0;

        internal override double Sample(SvgdRandom random) => Math.Exp(mu + sigma * random.NextStandardNormal());
    }

    private sealed class NormalPrior(double mu, double sigma) : Prior
    {
        public override string Spec => $"normal:{Num(mu)},{Num(sigma)}";
        public override bool CanSample => true;

        public override double LogDensity(double x)
        {
            double z = (x - mu) / sigma;
            return -Math.Log(sigma) - HalfLogTwoPi - 0.5 * z * z;
        }

        public override double LogDensityDerivative(double x) => -(x - mu) / (sigma * sigma);
        internal override double Sample(SvgdRandom random) => mu + sigma * random.NextStandardNormal();
    }

    private sealed class UniformPrior(double lo, double hi) : Prior
    {
        public override string Spec => $"uniform:{Num(lo)},{Num(hi)}";
        public override bool CanSample => true;
        public override double LogDensity(double x) => x >= lo && x <= hi ? -Math.Log(hi - lo) : double.NegativeInfinity;
        public override double LogDensityDerivative(double x) => 0.0;
        internal override double Sample(SvgdRandom random) => lo + (hi - lo) * random.NextOpenUnit();
    }

    private sealed class FlatPrior : Prior
    {
        public override string Spec => "flat";
        public override bool CanSample => false;
        public override double LogDensity(double x) => 0.0;
        public override double LogDensityDerivative(double x) => 0.0;
        internal override double Sample(SvgdRandom random) =>
            throw new InvalidOperationException("The flat prior cannot be sampled.");
    }

    private sealed class CustomPrior(
        string name,
        Func<double, double> logDensity,
        Func<double, double> derivative,
        Func<double, double>? inverseCdf) : Prior
    {
        public override string Spec => name;
        public override bool CanSample => inverseCdf is not null;
        public override double LogDensity(double x) => logDensity(x);
        public override double LogDensityDerivative(double x) => derivative(x);

        internal override double Sample(SvgdRandom random) =>
            inverseCdf is { } f
                ? f(random.NextOpenUnit())
                : throw new InvalidOperationException($"The prior '{name}' has no inverse CDF to sample from.");
    }
}
