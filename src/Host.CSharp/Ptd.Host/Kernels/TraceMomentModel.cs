using Ptd.Core;
using Ptd.Host.Svgd;

namespace Ptd.Host.Kernels;

/// <summary>
/// The model's raw moments E_θ[Y^k], k = 1..K, and their exact Jacobian from the trace (forward
/// mode for up to four parameters, reverse mode above, through the reward-command replays,
/// <see cref="TraceGradient"/>) — the input of
/// <see cref="MomentPenalty"/>. Parallel across particles, deterministic.
/// </summary>
public sealed class TraceMomentModel : IMomentModel
{
    private readonly double[] _reward;

    /// <summary>Creates the moment model.</summary>
    /// <param name="kernel">The model's moments kernel.</param>
    /// <param name="count">K ≥ 1.</param>
    /// <param name="reward">One reward per vertex (null: the absorption time itself).</param>
    public TraceMomentModel(MomentKernel kernel, int count, double[]? reward = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Ask for at least one moment.");
        Kernel = kernel;
        MomentCount = count;
        _reward = reward ?? Rewards.ones(kernel.Trace.Model);
    }

    /// <summary>The kernel.</summary>
    public MomentKernel Kernel { get; }

    /// <inheritdoc />
    public int Dimension => Kernel.ParameterCount;

    /// <inheritdoc />
    public int MomentCount { get; }

    /// <inheritdoc />
    public void MomentsAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> moments, Span<double> gradient)
    {
        int d = Dimension, k = MomentCount, n = thetaBatch.Length / d;
        var theta = thetaBatch.ToArray();
        var m = new double[n * k];
        var g = new double[n * k * d];
        var errors = new Exception?[n];
        Parallel.For(0, n, p =>
        {
            try
            {
                var (mp, jac) = Kernel.MomentsJacobian(theta.AsSpan(p * d, d).ToArray(), _reward, k);
                for (int j = 0; j < k; j++)
                {
                    m[p * k + j] = mp[j];
                    for (int q = 0; q < d; q++) g[(p * k + j) * d + q] = jac[j][q];
                }
            }
            catch (PtdException ex)
            {
                errors[p] = ex;
            }
        });
        for (int p = 0; p < n; p++)
            if (errors[p] is { } error) throw new PtdException($"particle {p}: {error.Message}", error);
        m.CopyTo(moments);
        g.CopyTo(gradient);
    }
}
