namespace Ptd.Host.Svgd;

/// <summary>
/// The model's raw moments E_θ[T^k], k = 1..K, and their gradients, for a batch of particles — the
/// input of <see cref="MomentPenalty"/> (to be served by the trace's moment evaluator).
/// </summary>
public interface IMomentModel
{
    /// <summary>The number of parameters d.</summary>
    int Dimension { get; }

    /// <summary>The number of moments K (moments 1..K).</summary>
    int MomentCount { get; }

    /// <summary>Evaluates the moments and their gradients.</summary>
    /// <param name="thetaBatch">P×d parameters, row-major, θ space.</param>
    /// <param name="moments">Receives P×K moments: particle p's k-th moment (k = 1..K) at p·K + k − 1.</param>
    /// <param name="gradient">Receives P×K×d derivatives ∂E[T^k]/∂θ_j at (p·K + k − 1)·d + j.</param>
    void MomentsAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> moments, Span<double> gradient);
}

/// <summary>
/// The optional moment penalty as an additive log-density term:
/// −λ Σ_k w_k (E_θ[T^k] − m_k)², with w_k = 1, or w_k = 1/m_k² when standardized (relative errors,
/// so that high moments do not dominate). Pass it as <see cref="SvgdOptions.Penalty"/>.
/// </summary>
public sealed class MomentPenalty : ILogDensity
{
    private readonly IMomentModel _model;
    private readonly double[] _sampleMoments;
    private readonly double[] _weights;
    private readonly double _lambda;

    /// <summary>Creates the penalty.</summary>
    /// <param name="model">The model's moments E_θ[T^k].</param>
    /// <param name="sampleMoments">The data's raw moments m_1..m_K (see <see cref="SampleRawMoments"/>).</param>
    /// <param name="lambda">The weight λ ≥ 0.</param>
    /// <param name="standardize">Divide each squared difference by m_k² (relative error).</param>
    public MomentPenalty(IMomentModel model, IReadOnlyList<double> sampleMoments, double lambda, bool standardize = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sampleMoments);
        if (sampleMoments.Count != model.MomentCount)
            throw new ArgumentException(
                $"The moment model gives {model.MomentCount} moment(s) but {sampleMoments.Count} sample moment(s) were given; give one per model moment.",
                nameof(sampleMoments));
        if (!(lambda >= 0) || !double.IsFinite(lambda))
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The penalty weight λ must be a finite number ≥ 0.");
        _model = model;
        _sampleMoments = sampleMoments.ToArray();
        _weights = new double[_sampleMoments.Length];
        for (int k = 0; k < _weights.Length; k++)
        {
            double m = _sampleMoments[k];
            if (!double.IsFinite(m))
                throw new ArgumentException($"Sample moment {k + 1} is {m:R}; moments must be finite.", nameof(sampleMoments));
            if (standardize && m == 0)
                throw new ArgumentException($"Sample moment {k + 1} is 0 and cannot standardize; use standardize: false.", nameof(sampleMoments));
            _weights[k] = standardize ? 1.0 / (m * m) : 1.0;
        }
        _lambda = lambda;
    }

    /// <summary>The raw moments (1/n) Σ x_i^k for k = 1..<paramref name="count"/>.</summary>
    public static double[] SampleRawMoments(IReadOnlyList<double> data, int count)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException("The data are empty.", nameof(data));
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Ask for at least one moment.");
        var m = new double[count];
        foreach (double x in data)
        {
            double p = 1.0;
            for (int k = 0; k < count; k++)
            {
                p *= x;
                m[k] += p;
            }
        }
        for (int k = 0; k < count; k++) m[k] /= data.Count;
        return m;
    }

    /// <inheritdoc />
    public int Dimension => _model.Dimension;

    /// <inheritdoc />
    public void LogDensityAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> logDensity, Span<double> gradient)
    {
        int d = _model.Dimension, kCount = _sampleMoments.Length, n = logDensity.Length;
        var moments = new double[n * kCount];
        var momentGradient = new double[n * kCount * d];
        _model.MomentsAndGradient(thetaBatch, moments, momentGradient);
        for (int p = 0; p < n; p++)
        {
            double value = 0;
            Span<double> g = gradient.Slice(p * d, d);
            g.Clear();
            for (int k = 0; k < kCount; k++)
            {
                double diff = moments[p * kCount + k] - _sampleMoments[k];
                value += _weights[k] * diff * diff;
                double scale = -2.0 * _lambda * _weights[k] * diff;
                int row = (p * kCount + k) * d;
                for (int j = 0; j < d; j++) g[j] += scale * momentGradient[row + j];
            }
            logDensity[p] = -_lambda * value;
        }
    }
}
