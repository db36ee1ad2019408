using System.Diagnostics;
using System.Globalization;
using Ptd.Core;
using Ptd.Host.Caching;

namespace Ptd.Host.Kernels;

/// <summary>
/// Layer 2 of <c>ptd cache prewarm</c>: builds and stores a model's kernels (one per data layout) through
/// <see cref="KernelRegistry.PrewarmAsync"/>, so that a later <c>ptd infer</c> (or service) on the same model and data
/// layout loads its kernel from the cache instead of building it.
/// </summary>
/// <remarks>
/// Settings (<see cref="PrewarmRequest.Settings"/>): <see cref="ThetaDimSetting"/> — θ's dimension the run will use,
/// checked against the model (a mismatch fails the whole prewarm before any work); <see cref="DataLayoutSetting"/> —
/// <c>times</c>, <c>counts</c>, <c>moments</c>, comma-separated (default: the model's observations, times for a
/// continuous model and counts for a discrete one).
/// </remarks>
/// <param name="registry">
/// The registry to fill (its memory layer too), used when it is backed by the cache being prewarmed; otherwise (null,
/// or another cache) a registry over that cache is made for the call.
/// </param>
public sealed class KernelWarmer(KernelRegistry? registry = null) : ICacheWarmer
{
    /// <summary>The settings key of θ's dimension.</summary>
    public const string ThetaDimSetting = "theta-dim";

    /// <summary>The settings key of the data layouts.</summary>
    public const string DataLayoutSetting = "data-layout";

    /// <inheritdoc />
    public CacheLayer Layer => CacheLayers.Kernels;

    /// <inheritdoc />
    public void Validate(PrewarmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Settings.TryGetValue(ThetaDimSetting, out var text))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var d) || d < 0)
                throw new PtdException($"--theta-dim '{text}' is not a dimension; give a whole number ≥ 0, e.g. --theta-dim 1");
            if (d != request.Graph.ParamLength)
                throw new PtdException($"--theta-dim {d} does not fit model '{request.Model}': it has {request.Graph.ParamLength} parameter(s)");
        }
        if (request.Graph.ParamLength == 0) return;
        foreach (var layout in Layouts(request))
        {
            try
            {
                KernelKey.For(request.Graph, layout.Kind);
            }
            catch (PtdException e)
            {
                // KernelKey names the layout that fits; add which model did not fit.
                throw new PtdException($"--data-layout {layout.Name} does not fit model '{request.Model}': {e.Message}");
            }
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PrewarmItem>> WarmAsync(PrewarmRequest request, IArtifactCache cache, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(cache);
        var graph = request.Graph;
        if (graph.ParamLength == 0)
            return [new PrewarmItem(request.Model, Layer.Name, "", "skipped", 0, 0, "the model has no parameters: it has no likelihood kernel (nothing to infer)")];
        Validate(request);
        var use = registry is not null && ReferenceEquals(registry.Cache, cache) ? registry : new KernelRegistry(cache);
        var layouts = Layouts(request);
        var items = new List<PrewarmItem>();
        foreach (var layout in layouts)
        {
            var start = Stopwatch.GetTimestamp();
            PrewarmReport report;
            try
            {
                report = await use.PrewarmAsync(graph, graph.ParamLength, [layout], cancellationToken).ConfigureAwait(false);
            }
            catch (PtdException e)
            {
                items.Add(new PrewarmItem(request.Model, Layer.Name, "", "failed", 0, Elapsed(start), $"{layout.Name}: {e.Message}"));
                continue;
            }
            var lookup = report.Kernels[0];
            var what = $"{lookup.Key.Kind} kernel, θ: {lookup.Key.ParameterCount}, data layout {layout.Name}, generator r{lookup.Key.GeneratorRevision}";
            if (lookup.Source == KernelSource.Cache)
            {
                items.Add(new PrewarmItem(request.Model, Layer.Name, lookup.Key.Digest, "present", lookup.PayloadBytes, Elapsed(start), $"{what}; already in tier {lookup.Tier}"));
                continue;
            }
            // Built now (or by an earlier request of this registry): say "stored" only if a tier really holds it.
            var check = await cache.TryGetAsync(KernelRegistry.ArtifactKind, lookup.Key.Digest, cancellationToken).ConfigureAwait(false);
            items.Add(check.Found
                ? new PrewarmItem(request.Model, Layer.Name, lookup.Key.Digest, lookup.Source == KernelSource.Built ? "stored" : "present", lookup.PayloadBytes,
                    Elapsed(start), $"{what}; in tier {check.Tier}")
                : new PrewarmItem(request.Model, Layer.Name, lookup.Key.Digest, "failed", lookup.PayloadBytes, Elapsed(start),
                    cache.Tiers.Count == 0 ? $"{what}; built, but caching is off (no tiers)" : $"{what}; built, but no read-write tier holds it"));
        }
        return items;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string>? Describe(CacheEntryInfo entry, byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(payload);
        if (entry.FormatRevision != Layer.CurrentRevision)
            return new Dictionary<string, string> { ["kernel"] = $"revision {entry.FormatRevision} is not this build's; not decoded" };
        return KernelCodec.Describe(payload, entry.StorageKey);
    }

    private static DataLayout[] Layouts(PrewarmRequest request) =>
        request.Settings.TryGetValue(DataLayoutSetting, out var text) && !string.IsNullOrWhiteSpace(text)
            ? text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(DataLayout.Parse).Distinct().ToArray()
            : [DataLayout.ForObservations(request.Graph)];

    private static double Elapsed(long start) => Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}
