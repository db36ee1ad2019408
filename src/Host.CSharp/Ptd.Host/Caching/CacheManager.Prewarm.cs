using System.Diagnostics;
using System.Globalization;
using Ptd.Core;
using Ptd.Host.Models;

namespace Ptd.Host.Caching;

/// <summary>A model to prewarm, loaded once and handed to every warmer.</summary>
/// <param name="Model">The model as the user named it (file or built-in spec).</param>
/// <param name="Graph">The loaded graph.</param>
/// <param name="Settings">
/// Extra settings for warmers of later layers: <c>theta-dim</c> (checked against the model) and <c>data-layout</c>
/// (<c>times</c>, <c>counts</c>, <c>moments</c>, comma-separated) for kernels; ignored by traces.
/// </param>
public sealed record PrewarmRequest(string Model, Graph Graph, IReadOnlyDictionary<string, string> Settings);

/// <summary>
/// Fills one cache layer ahead of a run (<c>ptd cache prewarm</c>) and describes that layer's payloads
/// (<c>ptd cache show</c>). The built-in ones are <see cref="CacheManager.DefaultWarmers"/>: traces and kernels
/// (layer 3, code, is deliberately not built: <see cref="CacheLayers.CodeNotBuilt"/>).
/// </summary>
public interface ICacheWarmer
{
    /// <summary>The layer this warmer fills.</summary>
    CacheLayer Layer { get; }

    /// <summary>
    /// Checks that the request's settings fit its model before anything is computed for any model (so a bad setting
    /// fails the whole call up front).
    /// </summary>
    /// <param name="request">The model and settings.</param>
    /// <exception cref="PtdException">A setting does not fit the model; the message says which and how to fix it.</exception>
    void Validate(PrewarmRequest request)
    {
    }

    /// <summary>Makes sure the layer's entries for the model are cached, computing and storing them if needed.</summary>
    /// <param name="request">The model.</param>
    /// <param name="cache">The cache to fill.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was done: one item per entry (a trace; a kernel per data layout).</returns>
    Task<IReadOnlyList<PrewarmItem>> WarmAsync(PrewarmRequest request, IArtifactCache cache, CancellationToken cancellationToken);

    /// <summary>Facts about a valid payload of this layer for display, or null.</summary>
    /// <param name="entry">The entry.</param>
    /// <param name="payload">Its verified payload.</param>
    /// <returns>Name/value pairs, or null.</returns>
    IReadOnlyDictionary<string, string>? Describe(CacheEntryInfo entry, byte[] payload);
}

/// <summary>
/// Layer 1: records and stores the elimination trace of a model. The convention every trace producer and reader
/// shares (docs/configuration.md, "Trace entries"): kind <c>trace</c>, revision <c>Trace.FormatRevision</c>, content
/// key <c>ModelKey.compute(graph).Hex</c>, payload <c>TraceEncoding.encode(trace)</c>, read back with
/// <c>TraceEncoding.decodeFor(key, payload)</c>.
/// </summary>
public sealed class TraceWarmer : ICacheWarmer
{
    /// <inheritdoc />
    public CacheLayer Layer => CacheLayers.Traces;

    /// <summary>The payload stored for a graph: its recorded trace, encoded.</summary>
    /// <param name="graph">The model.</param>
    /// <returns>The encoded trace.</returns>
    public static byte[] RecordPayload(Graph graph) => TraceEncoding.encode(TraceModule.record(graph));

    /// <inheritdoc />
    public async Task<IReadOnlyList<PrewarmItem>> WarmAsync(PrewarmRequest request, IArtifactCache cache, CancellationToken cancellationToken) =>
        [await WarmTraceAsync(request, cache, cancellationToken).ConfigureAwait(false)];

    private async Task<PrewarmItem> WarmTraceAsync(PrewarmRequest request, IArtifactCache cache, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(cache);
        var start = Stopwatch.GetTimestamp();
        var kind = Layer.CurrentKind!;
        var key = ModelKey.compute(request.Graph).Hex;
        var found = await cache.TryGetAsync(kind, key, cancellationToken).ConfigureAwait(false);
        if (found.Found)
            return new PrewarmItem(request.Model, Layer.Name, key, "present", found.Payload.Length, Elapsed(start), $"already in tier {found.Tier}");
        byte[] payload;
        string facts;
        try
        {
            var trace = TraceModule.record(request.Graph);
            payload = TraceEncoding.encode(trace);
            facts = $"{trace.OpCount} ops, {trace.VertexCount} vertices, {trace.EdgeCount} edges";
        }
        catch (PtdException e)
        {
            return new PrewarmItem(request.Model, Layer.Name, key, "failed", 0, Elapsed(start), e.Message);
        }
        var stored = await cache.SetAsync(kind, key, payload, cancellationToken).ConfigureAwait(false);
        return stored > 0
            ? new PrewarmItem(request.Model, Layer.Name, key, "stored", payload.Length, Elapsed(start), $"{facts}; stored in {stored} tier(s)")
            : new PrewarmItem(request.Model, Layer.Name, key, "failed", payload.Length, Elapsed(start), $"{facts}; no read-write tier accepted the entry");
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string>? Describe(CacheEntryInfo entry, byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(payload);
        if (entry.FormatRevision != Layer.CurrentRevision) return new Dictionary<string, string> { ["trace"] = $"revision {entry.FormatRevision} is not this build's; not decoded" };
        try
        {
            var t = TraceEncoding.decodeFor(TraceKey.Parse(entry.Key), payload);
            var c = CultureInfo.InvariantCulture;
            return new Dictionary<string, string>
            {
                ["vertices"] = t.VertexCount.ToString(c),
                ["edges"] = t.EdgeCount.ToString(c),
                ["parameters"] = t.ParamCount.ToString(c),
                ["ops"] = t.OpCount.ToString(c),
                ["commands"] = t.CommandCount.ToString(c),
                ["discrete"] = t.Model.IsDiscrete ? "yes" : "no",
            };
        }
        catch (PtdException e)
        {
            return new Dictionary<string, string> { ["trace"] = "does not decode: " + e.Message };
        }
    }

    private static double Elapsed(long start) => Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}

/// <summary>Prewarming.</summary>
public sealed partial class CacheManager
{
    /// <summary>
    /// Fills the given layers for each model (files or built-in specs). Every model is loaded first, so a bad one
    /// fails the call before anything is computed.
    /// </summary>
    /// <param name="models">The models.</param>
    /// <param name="layers">The layers (null: every layer that has a warmer: traces and kernels).</param>
    /// <param name="settings">Settings for warmers of later layers (<see cref="PrewarmRequest.Settings"/>; ignored by traces).</param>
    /// <param name="progress">Receives progress per model and layer.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>
    /// One item per model and entry (outcomes <c>stored</c>, <c>present</c>, <c>skipped</c>, <c>failed</c>); a layer
    /// this build deliberately does not build (code) gives one <c>not-built</c> item saying why; a layer without a
    /// warmer otherwise gives <c>unavailable</c>.
    /// </returns>
    /// <exception cref="PtdException">A model cannot be loaded, or a setting does not fit a model (nothing is computed then).</exception>
    public async Task<PrewarmItem[]> PrewarmAsync(IEnumerable<string> models, IReadOnlyList<CacheLayer>? layers = null,
        IReadOnlyDictionary<string, string>? settings = null, IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(models);
        var requests = models.Select(m => new PrewarmRequest(m, ModelSource.Load(m), settings ?? new Dictionary<string, string>())).ToArray();
        if (requests.Length == 0) throw new PtdException("name at least one model to prewarm, e.g. coalescent:n=30");
        var chosen = layers ?? _warmers.Select(w => w.Layer).Distinct().ToArray();
        foreach (var r in requests)
            foreach (var w in _warmers.Where(w => chosen.Any(l => l.Name == w.Layer.Name)))
                w.Validate(r);
        var items = new List<PrewarmItem>();
        var total = requests.Length * chosen.Count;
        var done = 0;
        foreach (var r in requests)
        {
            foreach (var layer in chosen)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var warmer = _warmers.FirstOrDefault(w => w.Layer.Name == layer.Name);
                if (warmer is not null) items.AddRange(await warmer.WarmAsync(r, _cache, cancellationToken).ConfigureAwait(false));
                else if (layer.NotBuilt is { } why) items.Add(new PrewarmItem(r.Model, layer.Name, "", "not-built", 0, 0, why));
                else items.Add(new PrewarmItem(r.Model, layer.Name, "", "unavailable", 0, 0, $"no producer for layer {layer.Name} in this build"));
                progress?.Report(new CacheProgress("prewarm", ++done, total, items.Sum(i => i.Bytes), $"{r.Model} ({layer.Name})"));
            }
        }
        return items.ToArray();
    }
}
