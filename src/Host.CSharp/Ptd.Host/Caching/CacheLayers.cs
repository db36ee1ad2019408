using Ptd.Core;

namespace Ptd.Host.Caching;

/// <summary>
/// One layer of the cache as the user names it (<c>traces</c>, <c>kernels</c>, <c>code</c>) and the artifact kind
/// that stores it.
/// </summary>
/// <param name="Name">The layer name used on the command line (<c>--kind traces</c>).</param>
/// <param name="KindName">The <see cref="ArtifactKind.Name"/> of its entries, e.g. <c>trace</c>.</param>
/// <param name="CurrentRevision">
/// The format revision this build reads and writes, or null when no producer of the layer is built in yet (its
/// entries are then never called stale for their revision, and never imported).
/// </param>
/// <param name="Description">A one-line description.</param>
/// <param name="NotBuilt">
/// Why this build deliberately produces no entries of the layer (shown wherever the layer is named), or null when it
/// does.
/// </param>
public sealed record CacheLayer(string Name, string KindName, int? CurrentRevision, string Description, string? NotBuilt = null)
{
    /// <summary>The current artifact kind, or null when <see cref="CurrentRevision"/> is unknown.</summary>
    public ArtifactKind? CurrentKind => CurrentRevision is { } r ? new ArtifactKind(KindName, r) : null;

    /// <summary>Whether an entry of this layer with the given revision and generation is stale (never read as current).</summary>
    /// <param name="formatRevision">The entry's format revision.</param>
    /// <param name="generation">The entry's generation.</param>
    /// <param name="currentGeneration">The cache's generation.</param>
    /// <returns>True when the entry belongs to another revision or generation.</returns>
    public bool IsStale(int formatRevision, int generation, int currentGeneration) =>
        generation != currentGeneration || (CurrentRevision is { } r && formatRevision != r);
}

/// <summary>
/// The layers of the cache. Layer 1 (traces) is produced by Ptd.Core's recorder, layer 2 (kernels) by
/// <see cref="Ptd.Host.Kernels.KernelRegistry"/>. Layer 3 (persisted emitted code) is deliberately not built: kernels
/// are interpreted plans (docs/PERFORMANCE.md, "why no IL emission"), so its revision is unknown (null) and
/// <see cref="CacheLayer.NotBuilt"/> says why.
/// </summary>
/// <remarks>
/// Everything else (<c>ptd cache</c>, <see cref="CacheManager"/>) follows from this table: a layer's revision makes its
/// entries of other revisions stale and lets import check them.
/// </remarks>
public static class CacheLayers
{
    /// <summary>Layer 1: elimination traces, kind <c>trace</c>, revision <c>Trace.FormatRevision</c>, key = <c>ModelKey</c> hex.</summary>
    public static CacheLayer Traces { get; } = new("traces", "trace", TraceModule.FormatRevision, "elimination traces (layer 1)");

    /// <summary>
    /// Layer 2: likelihood and moment kernels, kind <c>kernel</c>, revision
    /// <see cref="Ptd.Host.Kernels.KernelKey.CurrentGeneratorRevision"/>, key = <see cref="Ptd.Host.Kernels.KernelKey.Digest"/>.
    /// </summary>
    public static CacheLayer Kernels { get; } = new("kernels", "kernel", Ptd.Host.Kernels.KernelKey.CurrentGeneratorRevision, "likelihood and moment kernels (layer 2)");

    /// <summary>Why layer 3 is empty: the message <c>ptd cache</c> prints when it is named.</summary>
    public const string CodeNotBuilt =
        "layer 3 (persisted emitted code) is deliberately not built: kernels are interpreted plans, because IL emission " +
        "would speed up only the sweep, a third of an evaluation (docs/PERFORMANCE.md, \"why no IL emission\"); " +
        "layers 1-2 (traces, kernels) hold everything a run reuses";

    /// <summary>Layer 3: persisted emitted code, kind <c>code</c>: deliberately not built (<see cref="CodeNotBuilt"/>).</summary>
    public static CacheLayer Code { get; } = new("code", "code", null, "emitted code (layer 3; not built)", CodeNotBuilt);

    /// <summary>Every layer, in layer order.</summary>
    public static IReadOnlyList<CacheLayer> All { get; } = [Traces, Kernels, Code];

    /// <summary>The layer of an artifact kind name, or null for kinds no layer owns.</summary>
    /// <param name="kindName">The kind name, e.g. <c>trace</c>.</param>
    /// <returns>The layer or null.</returns>
    public static CacheLayer? ForKind(string kindName) => All.FirstOrDefault(l => l.KindName == kindName);

    /// <summary>
    /// Parses layer names as given on a command line: <c>traces</c>, <c>kernels</c>, <c>code</c> (the kind names
    /// <c>trace</c>, <c>kernel</c> are accepted too), comma-separated or repeated; <c>all</c> for every layer.
    /// </summary>
    /// <param name="names">The names; null or empty for every layer.</param>
    /// <returns>The layers, in layer order, without duplicates.</returns>
    /// <exception cref="PtdException">A name is not a layer.</exception>
    public static CacheLayer[] Parse(IEnumerable<string>? names)
    {
        var list = (names ?? []).SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        if (list.Length == 0) return All.ToArray();
        var chosen = new HashSet<CacheLayer>();
        foreach (var n in list)
        {
            var lower = n.ToLowerInvariant();
            if (lower == "all")
            {
                chosen.UnionWith(All);
                continue;
            }
            var layer = All.FirstOrDefault(l => l.Name == lower || l.KindName == lower)
                        ?? throw new PtdException($"'{n}' is not a cache layer; use one of: {string.Join(", ", All.Select(l => l.Name))} (or all)");
            chosen.Add(layer);
        }
        return All.Where(chosen.Contains).ToArray();
    }
}
