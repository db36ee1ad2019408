namespace Ptd.Host.Models;

/// <summary>Moments of the accumulated reward (plain absorption time when no reward is given).</summary>
/// <param name="Mean">E[Y].</param>
/// <param name="Variance">Var[Y].</param>
/// <param name="Moments">Raw moments E[Y], E[Y²], …, E[Y^k].</param>
public sealed record MomentsResult(double Mean, double Variance, IReadOnlyList<double> Moments);

/// <summary>Density (or probability mass) and distribution function at the requested points.</summary>
/// <param name="Points">The times (continuous) or jump counts (discrete), in the caller's order.</param>
/// <param name="Density">pdf (continuous) or pmf (discrete) at each point.</param>
/// <param name="Cumulative">cdf at each point.</param>
public sealed record DistributionResult(IReadOnlyList<double> Points, IReadOnlyList<double> Density, IReadOnlyList<double> Cumulative);

/// <summary>How a continuous density is computed.</summary>
public enum DensityMethod
{
    /// <summary>Exact uniformization (default): all times in one sweep, to a set tolerance.</summary>
    Exact,
    /// <summary>The original libraries' Euler scheme with granularity g (compatibility; ≈1e-3 relative error).</summary>
    Euler,
}
