using Ptd.Core;

namespace Ptd.Host.Svgd;

/// <summary>
/// The map θ = T(φ) from the unconstrained coordinates φ that SVGD moves to the model parameters θ.
/// Each transform knows its derivative T′(φ) (for the chain rule ∂/∂φ = T′(φ)·∂/∂θ) and the log of
/// its Jacobian log T′(φ) with that term's derivative (needed when a prior is given on θ).
/// </summary>
public abstract class ParameterTransform
{
    private protected ParameterTransform() { }

    /// <summary>θ = log(1 + e^φ): θ &gt; 0, close to φ for large φ (the default).</summary>
    public static ParameterTransform Softplus { get; } = new SoftplusTransform();

    /// <summary>θ = e^φ: θ &gt; 0.</summary>
    public static ParameterTransform Exp { get; } = new ExpTransform();

    /// <summary>θ = φ: no constraint.</summary>
    public static ParameterTransform Identity { get; } = new IdentityTransform();

    /// <summary>The transform's name as written in specs: <c>softplus</c>, <c>exp</c> or <c>identity</c>.</summary>
    public abstract string Name { get; }

    /// <summary>θ = T(φ).</summary>
    public abstract double Forward(double phi);

    /// <summary>φ = T⁻¹(θ). Throws <see cref="PtdException"/> when θ is outside the transform's range.</summary>
    public abstract double Inverse(double theta);

    /// <summary>Whether θ lies in the range of T (where <see cref="Inverse"/> is defined).</summary>
    public abstract bool InRange(double theta);

    /// <summary>T′(φ) = dθ/dφ.</summary>
    public abstract double Derivative(double phi);

    /// <summary>log T′(φ), the log-Jacobian added when a density is given on θ.</summary>
    public abstract double LogJacobian(double phi);

    /// <summary>d/dφ log T′(φ).</summary>
    public abstract double LogJacobianDerivative(double phi);

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Parses <c>softplus</c>, <c>exp</c> or <c>identity</c> (case-insensitive).</summary>
    /// <exception cref="PtdException">The name is not one of these.</exception>
    public static ParameterTransform Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "softplus" => Softplus,
            "exp" or "log" => Exp,
            "identity" or "none" => Identity,
            _ => throw new PtdException(
                $"Unknown transform '{name}': use softplus (θ > 0, the default), exp (θ > 0) or identity (θ unconstrained)."),
        };
    }

    private protected PtdException OutOfRange(double theta) =>
        new($"θ = {theta:R} is outside the range of the {Name} transform (it needs θ > 0); " +
            "give positive values or use the identity transform.");

    private sealed class SoftplusTransform : ParameterTransform
    {
        public override string Name => "softplus";

        // Two branches keep e^φ from overflowing and log1p accurate for either sign.
        public override double Forward(double phi) =>
            phi > 0 ? phi + LogOnePlus(Math.Exp(-phi)) : LogOnePlus(Math.Exp(phi));

        public override double Inverse(double theta)
        {
            if (!InRange(theta)) throw OutOfRange(theta);
            // log(e^θ − 1) = θ + log(1 − e^−θ): no overflow for large θ; expm1 keeps small θ exact.
            return theta > 1.0 ? theta + LogOnePlus(-Math.Exp(-theta)) : Math.Log(ExpMinusOne(theta));
        }

        public override bool InRange(double theta) => theta > 0 && double.IsFinite(theta);

        public override double Derivative(double phi) => Sigmoid(phi);

        // log σ(φ) = −softplus(−φ).
        public override double LogJacobian(double phi) => -Forward(-phi);

        // d/dφ log σ(φ) = 1 − σ(φ) = σ(−φ).
        public override double LogJacobianDerivative(double phi) => Sigmoid(-phi);
    }

    private sealed class ExpTransform : ParameterTransform
    {
        public override string Name => "exp";
        public override double Forward(double phi) => Math.Exp(phi);

        public override double Inverse(double theta)
        {
            if (!InRange(theta)) throw OutOfRange(theta);
            return Math.Log(theta);
        }

        public override bool InRange(double theta) => theta > 0 && double.IsFinite(theta);
        public override double Derivative(double phi) => Math.Exp(phi);
        public override double LogJacobian(double phi) => phi;
        public override double LogJacobianDerivative(double phi) => 1.0;
    }

    private sealed class IdentityTransform : ParameterTransform
    {
        public override string Name => "identity";
        public override double Forward(double phi) => phi;

        public override double Inverse(double theta)
        {
            if (!InRange(theta))
                throw new PtdException($"θ = {theta:R} is not a finite number.");
            return theta;
        }

        public override bool InRange(double theta) => double.IsFinite(theta);
        public override double Derivative(double phi) => 1.0;
        public override double LogJacobian(double phi) => 0.0;
        public override double LogJacobianDerivative(double phi) => 0.0;
    }

    internal static double Sigmoid(double x) =>
        x >= 0 ? 1.0 / (1.0 + Math.Exp(-x)) : Math.Exp(x) / (1.0 + Math.Exp(x));

    // .NET has no log1p/expm1; these are accurate to a few ulps over the whole range.
    internal static double LogOnePlus(double x)
    {
        double u = 1.0 + x;
        if (u == 1.0) return x;
        return Math.Log(u) * x / (u - 1.0);
    }

    internal static double ExpMinusOne(double x)
    {
        if (Math.Abs(x) < 1e-5) return x + 0.5 * x * x + x * x * x / 6.0;
        if (Math.Abs(x) < 0.5)
        {
            // expm1(x) = 2·tanh(x/2) / (1 − tanh(x/2)) is accurate where exp(x) − 1 cancels.
            double t = Math.Tanh(0.5 * x);
            return 2.0 * t / (1.0 - t);
        }
        return Math.Exp(x) - 1.0;
    }
}
