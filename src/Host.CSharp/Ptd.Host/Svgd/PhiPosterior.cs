namespace Ptd.Host.Svgd;

/// <summary>
/// The log posterior that SVGD samples, in the unconstrained φ coordinates:
/// log p(φ) = log L(T(φ)) + penalty(T(φ)) + Σ_k prior_k, where a prior on θ contributes
/// log π(T(φ_k)) + log T′(φ_k) and a prior on φ contributes log π(φ_k). Its gradient follows the
/// chain rule ∂/∂φ_k = T′(φ_k) · ∂/∂θ_k plus the φ-space terms.
/// </summary>
/// <remarks>Holds scratch buffers: one instance serves one caller at a time.</remarks>
public sealed class PhiPosterior
{
    private readonly ILogDensity _target;
    private readonly ILogDensity? _penalty;
    private readonly ParameterTransform[] _transforms;
    private readonly ParameterPrior?[] _priors;
    private double[] _penaltyValue = [], _penaltyGradient = [];

    /// <summary>Builds the posterior from the target and the transforms, priors and penalty of <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">The options do not fit the target (see <see cref="SvgdOptions.Validate"/>).</exception>
    public PhiPosterior(ILogDensity target, SvgdOptions options)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        int d = target.Dimension;
        if (d < 1) throw new ArgumentException($"The target's dimension is {d}; it must be at least 1.", nameof(target));
        if (options.Transforms is { } ts && ts.Count != d)
            throw new ArgumentException($"SvgdOptions.Transforms has {ts.Count} entries but the target has dimension {d}.", nameof(options));
        if (options.Priors is { } ps && ps.Count != d)
            throw new ArgumentException($"SvgdOptions.Priors has {ps.Count} entries but the target has dimension {d}.", nameof(options));
        if (options.Penalty is { } pen && pen.Dimension != d)
            throw new ArgumentException($"SvgdOptions.Penalty has dimension {pen.Dimension} but the target has {d}.", nameof(options));
        _target = target;
        _penalty = options.Penalty;
        _transforms = Enumerable.Range(0, d).Select(options.TransformOf).ToArray();
        _priors = Enumerable.Range(0, d).Select(k => options.Priors?[k]).ToArray();
    }

    /// <summary>The number of parameters d.</summary>
    public int Dimension => _transforms.Length;

    /// <summary>The transform of parameter <paramref name="index"/>.</summary>
    public ParameterTransform TransformOf(int index) => _transforms[index];

    /// <summary>θ = T(φ) elementwise for a P×d batch.</summary>
    public void ToTheta(ReadOnlySpan<double> phiBatch, Span<double> thetaBatch)
    {
        int d = Dimension;
        for (int i = 0; i < phiBatch.Length; i++) thetaBatch[i] = _transforms[i % d].Forward(phiBatch[i]);
    }

    /// <summary>Evaluates the log posterior and its φ-gradient for P particles.</summary>
    /// <param name="phiBatch">P×d φ values, row-major.</param>
    /// <param name="thetaBatch">Receives θ = T(φ), P×d.</param>
    /// <param name="logPosterior">Receives the P log posteriors (up to the evidence constant).</param>
    /// <param name="gradient">Receives ∂ log posterior / ∂φ, P×d.</param>
    public void Evaluate(ReadOnlySpan<double> phiBatch, Span<double> thetaBatch, Span<double> logPosterior, Span<double> gradient)
    {
        int d = Dimension, n = logPosterior.Length;
        if (phiBatch.Length != n * d || thetaBatch.Length != n * d || gradient.Length != n * d)
            throw new ArgumentException($"Batch sizes disagree: φ, θ and gradient must hold {n}×{d} values.");
        ToTheta(phiBatch, thetaBatch);
        _target.LogDensityAndGradient(thetaBatch, logPosterior, gradient);
        if (_penalty is { } penalty)
        {
            if (_penaltyValue.Length != n)
            {
                _penaltyValue = new double[n];
                _penaltyGradient = new double[n * d];
            }
            penalty.LogDensityAndGradient(thetaBatch, _penaltyValue, _penaltyGradient);
            for (int p = 0; p < n; p++) logPosterior[p] += _penaltyValue[p];
            for (int i = 0; i < n * d; i++) gradient[i] += _penaltyGradient[i];
        }
        for (int p = 0; p < n; p++)
        {
            double lp = logPosterior[p];
            for (int k = 0; k < d; k++)
            {
                int i = p * d + k;
                double phi = phiBatch[i], theta = thetaBatch[i];
                ParameterTransform t = _transforms[k];
                double gTheta = gradient[i], extra = 0;
                switch (_priors[k])
                {
                    case { Space: PriorSpace.Theta, Prior: var prior }:
                        lp += prior.LogDensity(theta) + t.LogJacobian(phi);
                        gTheta += prior.LogDensityDerivative(theta);
                        extra = t.LogJacobianDerivative(phi);
                        break;
                    case { Space: PriorSpace.Phi, Prior: var prior }:
                        lp += prior.LogDensity(phi);
                        extra = prior.LogDensityDerivative(phi);
                        break;
                }
                gradient[i] = gTheta * t.Derivative(phi) + extra;
            }
            logPosterior[p] = lp;
        }
    }
}
