namespace Ptd.Host.Svgd;

/// <summary>
/// The SVGD kernel computations on their own (one call, allocating): useful to check the formulas
/// (svgd.md §2) and to build custom loops. The engine uses the same code without allocating.
/// </summary>
public static class SteinKernel
{
    /// <summary>The bandwidth h² for particles (row-major n×d).</summary>
    /// <param name="particles">n×d positions, row-major (φ space in the engine).</param>
    /// <param name="dimension">d.</param>
    /// <param name="rule">The bandwidth rule.</param>
    /// <param name="fixedBandwidth">h for <see cref="BandwidthRule.Fixed"/>.</param>
    public static double BandwidthSquared(
        ReadOnlySpan<double> particles, int dimension, BandwidthRule rule = BandwidthRule.Median, double fixedBandwidth = 0)
    {
        var w = Workspace(particles, dimension);
        w.LoadParticles(particles);
        return w.BandwidthSquared(rule, fixedBandwidth);
    }

    /// <summary>The kernel matrix K_ij = exp(−‖x_i − x_j‖² / (2h²)), n×n row-major.</summary>
    public static double[] KernelMatrix(ReadOnlySpan<double> particles, int dimension, double bandwidthSquared)
    {
        if (!(bandwidthSquared > 0) || !double.IsFinite(bandwidthSquared))
            throw new ArgumentOutOfRangeException(nameof(bandwidthSquared), bandwidthSquared, "h² must be a positive finite number.");
        var w = Workspace(particles, dimension);
        w.LoadParticles(particles);
        w.BuildKernel(bandwidthSquared);
        return w.Kernel.ToArray();
    }

    /// <summary>
    /// The Stein direction φ̂(x_i) = (1/n) Σ_j K_ij [∇log p(x_j) + (x_i − x_j)/h²] (repulsive sign).
    /// Returns the h² used.
    /// </summary>
    /// <param name="particles">n×d positions, row-major.</param>
    /// <param name="gradients">n×d gradients ∇log p at the particles, row-major.</param>
    /// <param name="dimension">d.</param>
    /// <param name="direction">Receives φ̂, n×d row-major.</param>
    /// <param name="rule">The bandwidth rule.</param>
    /// <param name="fixedBandwidth">h for <see cref="BandwidthRule.Fixed"/>.</param>
    public static double Direction(
        ReadOnlySpan<double> particles,
        ReadOnlySpan<double> gradients,
        int dimension,
        Span<double> direction,
        BandwidthRule rule = BandwidthRule.Median,
        double fixedBandwidth = 0)
    {
        var w = Workspace(particles, dimension);
        if (gradients.Length != particles.Length || direction.Length != particles.Length)
            throw new ArgumentException("particles, gradients and direction must have the same length n·d.");
        if (rule == BandwidthRule.Fixed && (!(fixedBandwidth > 0) || !double.IsFinite(fixedBandwidth)))
            throw new ArgumentOutOfRangeException(nameof(fixedBandwidth), fixedBandwidth, "A fixed bandwidth h must be a positive finite number.");
        return w.Direction(particles, gradients, rule, fixedBandwidth, direction);
    }

    private static KernelWorkspace Workspace(ReadOnlySpan<double> particles, int dimension)
    {
        if (dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "The dimension must be at least 1.");
        if (particles.Length % dimension != 0 || particles.Length / dimension < 2)
            throw new ArgumentException(
                $"particles has {particles.Length} values: it must hold n ≥ 2 rows of {dimension} value(s), row-major.", nameof(particles));
        return new KernelWorkspace(particles.Length / dimension, dimension);
    }
}
