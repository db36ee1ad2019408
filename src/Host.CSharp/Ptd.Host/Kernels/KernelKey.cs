using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>What a kernel computes.</summary>
public enum KernelKind
{
    /// <summary>Σ log f(t_i; θ) and its gradient for observed absorption times of a continuous model.</summary>
    ContinuousLikelihood = 1,

    /// <summary>Σ log P(τ = k_i; θ) and its gradient for observed jump counts of a discrete model.</summary>
    DiscreteLikelihood = 2,

    /// <summary>Raw moments E_θ[Y^k] and their Jacobian (the moment penalty).</summary>
    Moments = 3,
}

/// <summary>
/// The shape of the run-time data a kernel consumes. The data's VALUES and length are run-time
/// inputs and never part of a kernel: one kernel serves every data set of its layout.
/// </summary>
public sealed record DataLayout
{
    private DataLayout(string name) => Name = name;

    /// <summary>A vector of absorption times, any length (continuous likelihood).</summary>
    public static DataLayout Times { get; } = new("times");

    /// <summary>A vector of jump counts, any length (discrete likelihood).</summary>
    public static DataLayout Counts { get; } = new("counts");

    /// <summary>No observations: a reward vector and a moment order at run time (moments).</summary>
    public static DataLayout Moments { get; } = new("moments");

    /// <summary>The name used in keys and reports.</summary>
    public string Name { get; }

    /// <summary>The kernel kind that consumes this layout.</summary>
    public KernelKind Kind => Name switch
    {
        "times" => KernelKind.ContinuousLikelihood,
        "counts" => KernelKind.DiscreteLikelihood,
        _ => KernelKind.Moments,
    };

    /// <summary>The layout a model's observations have: times for a continuous model, counts for a discrete one.</summary>
    public static DataLayout ForObservations(Graph model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.IsDiscrete ? Counts : Times;
    }

    /// <summary>Parses <c>times</c>, <c>counts</c> or <c>moments</c>.</summary>
    /// <exception cref="PtdException">Any other name.</exception>
    public static DataLayout Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "times" => Times,
        "counts" => Counts,
        "moments" => Moments,
        _ => throw new PtdException($"unknown data layout '{name}'; use times (continuous data), counts (discrete data) or moments"),
    };

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>
/// The content key of a kernel: everything that determines its code, nothing else. Two requests
/// with equal keys get the same kernel, whatever objects they came from; data values, priors and
/// penalties are not in it (they are run-time inputs). <see cref="Digest"/> is the cache key.
/// </summary>
/// <param name="TraceKey">The model's content key (<see cref="ModelKey"/>; the trace's key).</param>
/// <param name="Kind">What the kernel computes.</param>
/// <param name="ParameterCount">θ's dimension.</param>
/// <param name="Transform">
/// The space of the kernel's gradient. Every kernel of generator revision 1 works in θ
/// (<see cref="ThetaSpace"/>): the SVGD engine applies softplus/exp and their Jacobians after the
/// kernel, so one kernel serves every transform. A generator that fuses a transform into the
/// kernel's code must name it here.
/// </param>
/// <param name="Layout">The data layout.</param>
/// <param name="GeneratorRevision">The revision of the code that builds and runs kernels (<see cref="KernelKey.CurrentGeneratorRevision"/>).</param>
public sealed record KernelKey(string TraceKey, KernelKind Kind, int ParameterCount, string Transform, DataLayout Layout, int GeneratorRevision)
{
    /// <summary>
    /// The kernel generator's revision. Bump it whenever the plan, its encoding or the way the
    /// executor evaluates it changes: old persisted kernels then live under other keys.
    /// </summary>
    public const int CurrentGeneratorRevision = 2;

    /// <summary>The <see cref="Transform"/> of θ-space kernels.</summary>
    public const string ThetaSpace = "theta";

    /// <summary>The key of the kernel of <paramref name="kind"/> for a model (its content key is computed here).</summary>
    /// <exception cref="PtdException">The kind does not fit the model (a likelihood of the other time scale).</exception>
    public static KernelKey For(Graph model, KernelKind kind)
    {
        ArgumentNullException.ThrowIfNull(model);
        var layout = kind switch
        {
            KernelKind.ContinuousLikelihood => DataLayout.Times,
            KernelKind.DiscreteLikelihood => DataLayout.Counts,
            KernelKind.Moments => DataLayout.Moments,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown kernel kind"),
        };
        if (kind == KernelKind.ContinuousLikelihood && model.IsDiscrete)
            throw new PtdException("the model is discrete: its observations are jump counts (data layout 'counts'), not times");
        if (kind == KernelKind.DiscreteLikelihood && !model.IsDiscrete)
            throw new PtdException("the model is continuous: its observations are times (data layout 'times'), not jump counts");
        return new KernelKey(ModelKeys.Of(model), kind, model.ParamLength, ThetaSpace, layout, CurrentGeneratorRevision);
    }

    /// <summary>The canonical text the digest hashes (fixed field order, invariant culture).</summary>
    public string CanonicalText => string.Create(CultureInfo.InvariantCulture,
        $"ptd-kernel|trace={TraceKey}|kind={Kind}|parameters={ParameterCount}|transform={Transform}|layout={Layout.Name}|generator={GeneratorRevision}");

    /// <summary>SHA-256 of <see cref="CanonicalText"/>, lowercase hex: the artifact cache key.</summary>
    public string Digest => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalText)));

    /// <inheritdoc />
    public override string ToString() =>
        $"{Kind} kernel of model {TraceKey[..Math.Min(12, TraceKey.Length)]}… (θ: {ParameterCount}, {Layout.Name}, generator r{GeneratorRevision})";
}

/// <summary>Model content keys, memoized per graph object.</summary>
/// <remarks>
/// The memo is keyed by object identity, which is safe only because <see cref="Graph"/> is
/// immutable: the key is a pure function of the graph's content, so the memo can never hand out a
/// stale key (unlike phasic's cache, which keyed compiled code AND data on <c>id(model)</c>).
/// Kernels themselves are looked up by the content key, never by identity.
/// </remarks>
internal static class ModelKeys
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Graph, string> Memo = new();

    public static string Of(Graph model) => Memo.GetValue(model, g => ModelKey.compute(g).Hex);
}
