namespace Ptd.Host.Svgd;

/// <summary>
/// A log density over the model parameters θ (not the unconstrained φ that SVGD moves), evaluated
/// for a whole batch of particles at once so that a batched evaluator (the trace-based likelihood,
/// SIMD across particles, parallel across cores) serves every particle of an iteration in one call.
/// </summary>
/// <remarks>
/// The engine calls <see cref="LogDensityAndGradient"/> once per iteration with all particles.
/// Implementations may parallelize internally but must give the same bits for the same input
/// (no reductions in a thread-dependent order), or the engine's fixed-seed determinism is lost.
/// A value outside the support must be reported as <see cref="double.NegativeInfinity"/>; the engine
/// stops with a message naming the particle rather than move it with a meaningless gradient.
/// </remarks>
public interface ILogDensity
{
    /// <summary>The number of parameters d (the length of one particle).</summary>
    int Dimension { get; }

    /// <summary>Evaluates the log density and its gradient for P particles.</summary>
    /// <param name="thetaBatch">P×d parameter values, row-major (particle p's values at p·d … p·d + d − 1), in θ space.</param>
    /// <param name="logDensity">Receives the P log densities.</param>
    /// <param name="gradient">Receives the P×d partial derivatives ∂ log density / ∂θ, row-major.</param>
    void LogDensityAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> logDensity, Span<double> gradient);
}

/// <summary>Ready-made <see cref="ILogDensity"/> implementations.</summary>
public static class LogDensity
{
    /// <summary>
    /// Wraps a per-particle function (convenient from F# Interactive and C# alike):
    /// <paramref name="evaluate"/> receives θ (length d) and a gradient array (length d) to fill, and
    /// returns the log density. Particles are evaluated one after another, in order.
    /// </summary>
    /// <param name="dimension">The number of parameters d (≥ 1).</param>
    /// <param name="evaluate">(θ, gradient to fill) → log density.</param>
    public static ILogDensity FromFunction(int dimension, Func<double[], double[], double> evaluate)
    {
        if (dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The dimension must be at least 1.");
        ArgumentNullException.ThrowIfNull(evaluate);
        return new FunctionLogDensity(dimension, evaluate);
    }

    private sealed class FunctionLogDensity(int dimension, Func<double[], double[], double> evaluate) : ILogDensity
    {
        public int Dimension => dimension;

        public void LogDensityAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> logDensity, Span<double> gradient)
        {
            var theta = new double[dimension];
            var grad = new double[dimension];
            for (int p = 0; p < logDensity.Length; p++)
            {
                thetaBatch.Slice(p * dimension, dimension).CopyTo(theta);
                Array.Clear(grad);
                logDensity[p] = evaluate(theta, grad);
                grad.AsSpan().CopyTo(gradient.Slice(p * dimension, dimension));
            }
        }
    }
}
