namespace Ptd.Host.Svgd;

/// <summary>The marginal posterior of one parameter, from the final particles (θ space).</summary>
/// <param name="Name">The parameter's name.</param>
/// <param name="Transform">The transform's name (softplus, exp, identity).</param>
/// <param name="Prior">The prior as a spec (with <c>@phi</c> when on φ), or null without one.</param>
/// <param name="Mean">The particles' mean.</param>
/// <param name="Sd">The particles' standard deviation (divisor n − 1).</param>
/// <param name="Q025">The 2.5 % quantile (linear interpolation between order statistics).</param>
/// <param name="Q50">The median.</param>
/// <param name="Q975">The 97.5 % quantile.</param>
public sealed record ParameterSummary(
    string Name,
    string Transform,
    string? Prior,
    double Mean,
    double Sd,
    double Q025,
    double Q50,
    double Q975);

/// <summary>The particles after <paramref name="Iteration"/> updates.</summary>
/// <param name="Iteration">Updates done (0 = the initial particles).</param>
/// <param name="MeanLogPosterior">The particles' mean log posterior.</param>
/// <param name="Particles">n rows of d values, θ space.</param>
public sealed record SvgdSnapshot(int Iteration, double MeanLogPosterior, double[][] Particles);

/// <summary>Convergence diagnostics of a run.</summary>
public sealed class SvgdDiagnostics
{
    /// <summary>Per update: √(Σ_i ‖Δφ_i‖² / n).</summary>
    public required double[] StepNorms { get; init; }

    /// <summary>Per update: the Stein direction's size √(Σ_i ‖φ̂_i‖² / n), which tends to 0 at a fixed point whatever the optimizer.</summary>
    public required double[] DirectionNorms { get; init; }

    /// <summary>Per state (initial, then after each update): RMS distance of the particles to their mean, φ space.</summary>
    public required double[] Spreads { get; init; }

    /// <summary>Per update: the kernel's h².</summary>
    public required double[] BandwidthsSquared { get; init; }

    /// <summary>Mean step norm over the last 10 % of updates divided by that over the first 10 % (small = settled).</summary>
    public required double StepNormTrend { get; init; }

    /// <summary>The same ratio for <see cref="DirectionNorms"/>.</summary>
    public required double DirectionNormTrend { get; init; }

    /// <summary>Per parameter: the particles' sd in φ at the start.</summary>
    public required double[] InitialSpreadPerParameter { get; init; }

    /// <summary>Per parameter: the particles' sd in φ at the end.</summary>
    public required double[] FinalSpreadPerParameter { get; init; }

    /// <summary>True when some parameter's spread fell to <see cref="SvgdOptions.CollapseThreshold"/> of its start or to 0.</summary>
    public required bool Collapsed { get; init; }

    /// <summary>Human-readable warnings (collapse, identical initial values).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
}

/// <summary>The outcome of an SVGD run.</summary>
public sealed class SvgdResult
{
    /// <summary>Per parameter: the posterior summary (θ space).</summary>
    public required IReadOnlyList<ParameterSummary> Parameters { get; init; }

    /// <summary>The final particles, n rows of d values, θ space.</summary>
    public required double[][] Particles { get; init; }

    /// <summary>The final particles in the unconstrained φ space.</summary>
    public required double[][] ParticlesPhi { get; init; }

    /// <summary>The log posterior (φ space, up to a constant) of each final particle.</summary>
    public required double[] LogPosterior { get; init; }

    /// <summary>Snapshots every <see cref="SvgdOptions.HistoryInterval"/> updates (empty when 0).</summary>
    public required IReadOnlyList<SvgdSnapshot> History { get; init; }

    /// <summary>Convergence diagnostics.</summary>
    public required SvgdDiagnostics Diagnostics { get; init; }

    /// <summary>The number of updates done.</summary>
    public required int Iterations { get; init; }

    /// <summary>The seed used.</summary>
    public required int Seed { get; init; }

    /// <summary>Wall-clock time of the run (not part of the JSON, which is a function of the inputs only).</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>
    /// The result as JSON: <c>{"parameters": [{"name", "transform", "prior", "mean", "sd", "q025",
    /// "q50", "q975"}], "particles": [[θ…]], "particlesPhi", "logPosterior", "iterations", "seed",
    /// "diagnostics", "history"}</c>. Non-finite numbers are written as null.
    /// </summary>
    public string ToJson(bool indented = true) => SvgdJson.Write(this, indented);

    /// <summary>Writes <see cref="ToJson"/>'s document to a stream as UTF-8.</summary>
    public void WriteJson(Stream stream, bool indented = true) => SvgdJson.Write(this, stream, indented);
}
