namespace Ptd.Host.Svgd;

/// <summary>How the kernel bandwidth h of k(x, y) = exp(−‖x − y‖² / (2h²)) is chosen each iteration.</summary>
public enum BandwidthRule
{
    /// <summary>
    /// Liu &amp; Wang's reference code (the default): h² = ½ · median of the full n×n squared-distance
    /// matrix (its n zeros included) / ln(n + 1).
    /// </summary>
    Median,

    /// <summary>
    /// phasic's variant: h = median of the n(n−1)/2 pairwise distances / ln(n + 1). Offered for comparison.
    /// </summary>
    PhasicMedian,

    /// <summary>A fixed h, <see cref="SvgdOptions.FixedBandwidth"/>.</summary>
    Fixed,
}
