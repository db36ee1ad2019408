using Ptd.Core;

namespace Ptd.Host.Svgd;

/// <summary>Where a prior density lives.</summary>
public enum PriorSpace
{
    /// <summary>
    /// On the model parameter θ = T(φ). The engine adds the transform's log-Jacobian log T′(φ), so the
    /// particles sample the posterior of θ under this prior (e.g. for softplus:
    /// log π(softplus φ) + log σ(φ)).
    /// </summary>
    Theta,

    /// <summary>Directly on the unconstrained φ (no Jacobian): π is the density of φ itself.</summary>
    Phi,
}

/// <summary>The prior of one parameter and the space it is defined on.</summary>
/// <param name="Prior">The density.</param>
/// <param name="Space">θ (default; with the Jacobian) or φ.</param>
public sealed record ParameterPrior(Prior Prior, PriorSpace Space = PriorSpace.Theta)
{
    /// <summary>
    /// Parses <c>family:args</c> (a prior on θ) or <c>family:args@phi</c> / <c>family:args@theta</c>,
    /// e.g. <c>gamma:2,1</c>, <c>normal:0,1@phi</c>.
    /// </summary>
    /// <exception cref="PtdException">The spec is malformed.</exception>
    public static ParameterPrior Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int at = spec.LastIndexOf('@');
        if (at < 0) return new ParameterPrior(Prior.Parse(spec));
        string space = spec[(at + 1)..].Trim().ToLowerInvariant();
        PriorSpace s = space switch
        {
            "theta" => PriorSpace.Theta,
            "phi" => PriorSpace.Phi,
            _ => throw new PtdException($"Prior '{spec}': unknown space '{space}' after '@'; use @theta (the default) or @phi."),
        };
        return new ParameterPrior(Prior.Parse(spec[..at]), s);
    }

    /// <summary>
    /// Parses a comma-separated list in parameter order, e.g. <c>gamma:2,1,lognormal:0,1@phi</c>.
    /// </summary>
    /// <exception cref="PtdException">A spec is malformed.</exception>
    public static IReadOnlyList<ParameterPrior> ParseList(string specs) =>
        Prior.SplitList(specs).Select(Parse).ToArray();

    /// <inheritdoc />
    public override string ToString() => Space == PriorSpace.Theta ? Prior.Spec : Prior.Spec + "@phi";
}
