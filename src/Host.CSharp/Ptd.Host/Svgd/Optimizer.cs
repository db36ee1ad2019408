namespace Ptd.Host.Svgd;

/// <summary>How the Stein direction φ̂ becomes a step.</summary>
public enum OptimizerKind
{
    /// <summary>
    /// Liu &amp; Wang's "AdaGrad with momentum" (the default): G ← φ̂² on the first iteration, then
    /// G ← αG + (1 − α)φ̂²; x ← x + η φ̂ / (1e-6 + √G), elementwise (α = <see cref="SvgdOptions.Momentum"/>).
    /// </summary>
    AdaGradMomentum,

    /// <summary>Adam (Kingma &amp; Ba) as ascent on φ̂, with bias correction.</summary>
    Adam,

    /// <summary>x ← x + η_t φ̂.</summary>
    Plain,
}

/// <summary>The step size η_t at iteration t = 0, 1, … (applies to every optimizer).</summary>
public enum StepSchedule
{
    /// <summary>η_t = η.</summary>
    Constant,

    /// <summary>η_t = η · γ^t with γ = <see cref="SvgdOptions.ExponentialDecay"/> in (0, 1].</summary>
    Exponential,

    /// <summary>η_t = η / (1 + κ t) with κ = <see cref="SvgdOptions.InverseTimeDecay"/> ≥ 0.</summary>
    InverseTime,
}

/// <summary>One optimizer's state over all n×d coordinates.</summary>
internal abstract class StepRule
{
    public static StepRule Create(SvgdOptions options, int length) => options.Optimizer switch
    {
        OptimizerKind.AdaGradMomentum => new AdaGradMomentumRule(length, options.Momentum),
        OptimizerKind.Adam => new AdamRule(length, options.AdamBeta1, options.AdamBeta2, options.AdamEpsilon),
        OptimizerKind.Plain => new PlainRule(),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimizer."),
    };

    public static double StepSize(SvgdOptions options, int t) => options.Schedule switch
    {
        StepSchedule.Constant => options.StepSize,
        StepSchedule.Exponential => options.StepSize * Math.Pow(options.ExponentialDecay, t),
        StepSchedule.InverseTime => options.StepSize / (1.0 + options.InverseTimeDecay * t),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Schedule, "Unknown schedule."),
    };

    /// <summary>Writes the step Δ (to be added to x) for direction φ̂ at iteration t with step size η.</summary>
    public abstract void Step(ReadOnlySpan<double> phiHat, double eta, int t, Span<double> delta);

    private sealed class PlainRule : StepRule
    {
        public override void Step(ReadOnlySpan<double> phiHat, double eta, int t, Span<double> delta)
        {
            for (int i = 0; i < phiHat.Length; i++) delta[i] = eta * phiHat[i];
        }
    }

    private sealed class AdaGradMomentumRule(int length, double alpha) : StepRule
    {
        private const double Fudge = 1e-6;
        private readonly double[] _g = new double[length];

        public override void Step(ReadOnlySpan<double> phiHat, double eta, int t, Span<double> delta)
        {
            for (int i = 0; i < phiHat.Length; i++)
            {
                double sq = phiHat[i] * phiHat[i];
                _g[i] = t == 0 ? sq : alpha * _g[i] + (1.0 - alpha) * sq;
                delta[i] = eta * phiHat[i] / (Fudge + Math.Sqrt(_g[i]));
            }
        }
    }

    private sealed class AdamRule(int length, double beta1, double beta2, double epsilon) : StepRule
    {
        private readonly double[] _m = new double[length];
        private readonly double[] _v = new double[length];

        public override void Step(ReadOnlySpan<double> phiHat, double eta, int t, Span<double> delta)
        {
            double c1 = 1.0 - Math.Pow(beta1, t + 1), c2 = 1.0 - Math.Pow(beta2, t + 1);
            for (int i = 0; i < phiHat.Length; i++)
            {
                _m[i] = beta1 * _m[i] + (1.0 - beta1) * phiHat[i];
                _v[i] = beta2 * _v[i] + (1.0 - beta2) * phiHat[i] * phiHat[i];
                delta[i] = eta * (_m[i] / c1) / (Math.Sqrt(_v[i] / c2) + epsilon);
            }
        }
    }
}
