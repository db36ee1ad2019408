namespace Ptd.Host.Svgd;

/// <summary>A progress report after an update.</summary>
/// <param name="Iteration">Updates done so far (1 … <paramref name="Iterations"/>).</param>
/// <param name="Iterations">Updates in the run.</param>
/// <param name="MeanLogPosterior">The mean log posterior of the particles this update started from.</param>
/// <param name="StepNorm">The update's size: √(Σ_i ‖Δφ_i‖² / n).</param>
/// <param name="BandwidthSquared">The kernel's h² in this update.</param>
/// <param name="Elapsed">Time since the run started.</param>
public readonly record struct SvgdProgress(
    int Iteration,
    int Iterations,
    double MeanLogPosterior,
    double StepNorm,
    double BandwidthSquared,
    TimeSpan Elapsed);
