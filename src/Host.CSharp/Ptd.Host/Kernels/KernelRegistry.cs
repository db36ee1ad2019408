using System.Collections.Concurrent;
using System.Diagnostics;
using Ptd.Core;
using Ptd.Host.Caching;

namespace Ptd.Host.Kernels;

/// <summary>Where a kernel came from.</summary>
public enum KernelSource
{
    /// <summary>Already in this registry (layer 2, memory).</summary>
    Memory,

    /// <summary>Read from a tier of the artifact cache (persisted by an earlier process).</summary>
    Cache,

    /// <summary>Built from the model in this process (and stored in the cache when there is one).</summary>
    Built,
}

/// <summary>A kernel lookup's outcome.</summary>
/// <param name="Key">The kernel's content key.</param>
/// <param name="Source">Where it came from on THIS request (a later request for the same key is a memory hit).</param>
/// <param name="Tier">The cache tier that answered, when <paramref name="Source"/> is <see cref="KernelSource.Cache"/>.</param>
/// <param name="PayloadBytes">The size of the persistent form.</param>
/// <param name="Elapsed">Time spent on this request (lookup, load or build).</param>
public sealed record KernelLookup(KernelKey Key, KernelSource Source, string? Tier, int PayloadBytes, TimeSpan Elapsed)
{
    /// <inheritdoc />
    public override string ToString() => Source switch
    {
        KernelSource.Memory => $"{Key}: memory hit",
        KernelSource.Cache => $"{Key}: loaded from cache tier {Tier} ({PayloadBytes:N0} bytes, {Elapsed.TotalMilliseconds:F1} ms)",
        _ => $"{Key}: built ({PayloadBytes:N0} bytes, {Elapsed.TotalMilliseconds:F1} ms)",
    };
}

/// <summary>Counters of a <see cref="KernelRegistry"/>.</summary>
/// <param name="MemoryHits">Requests answered from memory (including requests that joined a build in flight).</param>
/// <param name="MemoryMisses">Requests that started a load or build.</param>
/// <param name="SharedFlights">Requests that joined a load or build another request had started.</param>
/// <param name="CacheHits">Kernels read from the artifact cache.</param>
/// <param name="Builds">Kernels built from a model.</param>
/// <param name="Rejected">Persisted kernels that failed to decode (rebuilt and replaced).</param>
public sealed record KernelRegistryStatistics(long MemoryHits, long MemoryMisses, long SharedFlights, long CacheHits, long Builds, long Rejected);

/// <summary>What <see cref="KernelRegistry.PrewarmAsync"/> did.</summary>
/// <param name="Kernels">One lookup per requested layout.</param>
/// <param name="Stored">Kernels built and written to the cache (0 without a cache).</param>
/// <param name="Notes">What was not done and why (e.g. no persistent cache).</param>
public sealed record PrewarmReport(IReadOnlyList<KernelLookup> Kernels, int Stored, IReadOnlyList<string> Notes);

/// <summary>
/// Layer 2 of the compiled-gradient cache: kernels in memory keyed by CONTENT (<see cref="KernelKey"/>:
/// the trace key, kind, θ dimension, transform space, data layout, generator revision), backed by
/// the artifact cache (artifact kind <c>kernel</c>, <see cref="ArtifactKind"/> revision
/// <see cref="KernelKey.CurrentGeneratorRevision"/>) so that a second process loads instead of
/// building. Concurrent requests for one key share one load or build (single flight). Data,
/// priors and penalties are never part of a kernel.
/// </summary>
/// <remarks>
/// Thread-safe. The executable is always made from the persistent form (decoded bytes), on a
/// build as on a load, so what runs in this process is exactly what the next process loads.
/// </remarks>
public sealed class KernelRegistry
{
    /// <summary>The artifact kind of persisted kernels.</summary>
    public static ArtifactKind ArtifactKind { get; } = new("kernel", KernelKey.CurrentGeneratorRevision);

    private readonly IArtifactCache? _cache;
    private readonly Action<string>? _log;
    private readonly ConcurrentDictionary<KernelKey, Lazy<Task<Entry>>> _entries = new();
    private long _memoryHits, _memoryMisses, _shared, _cacheHits, _builds, _rejected;

    private sealed record Entry(object Kernel, KernelLookup Lookup);

    /// <summary>Creates a registry.</summary>
    /// <param name="cache">The artifact cache for persistence (null: memory only).</param>
    /// <param name="log">Receives one line per load, build or rejected entry (null: silent).</param>
    public KernelRegistry(IArtifactCache? cache = null, Action<string>? log = null)
    {
        _cache = cache;
        _log = log;
    }

    /// <summary>The artifact cache behind the registry, or null.</summary>
    public IArtifactCache? Cache => _cache;

    /// <summary>The likelihood kernel of a model (continuous times or discrete counts, by the model's kind).</summary>
    /// <exception cref="PtdException">The model has no parameters.</exception>
    public async Task<(LikelihoodKernel Kernel, KernelLookup Lookup)> GetLikelihoodKernelAsync(Graph model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var kind = model.IsDiscrete ? KernelKind.DiscreteLikelihood : KernelKind.ContinuousLikelihood;
        var (kernel, lookup) = await GetAsync(model, KernelKey.For(model, kind), cancellationToken).ConfigureAwait(false);
        return ((LikelihoodKernel)kernel, lookup);
    }

    /// <summary>The moments kernel of a model (records and optimizes the elimination trace on a build).</summary>
    public async Task<(MomentKernel Kernel, KernelLookup Lookup)> GetMomentKernelAsync(Graph model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (kernel, lookup) = await GetAsync(model, KernelKey.For(model, KernelKind.Moments), cancellationToken).ConfigureAwait(false);
        return ((MomentKernel)kernel, lookup);
    }

    /// <summary>
    /// Fills the layers ahead of a production run: the kernels of <paramref name="model"/> for every
    /// layout, in memory and (with a cache) persisted.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="parameterCount">θ's dimension (must be the model's).</param>
    /// <param name="layouts">The data layouts to prepare (times or counts by the model's kind; moments).</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <exception cref="PtdException">The dimension or a layout does not fit the model.</exception>
    public async Task<PrewarmReport> PrewarmAsync(Graph model, int parameterCount, IEnumerable<DataLayout> layouts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(layouts);
        if (parameterCount != model.ParamLength)
            throw new PtdException($"prewarm: θ dimension {parameterCount} given, but the model has {model.ParamLength} parameter(s)");
        var lookups = new List<KernelLookup>();
        foreach (var layout in layouts.Distinct())
        {
            var (_, lookup) = await GetAsync(model, KernelKey.For(model, layout.Kind), cancellationToken).ConfigureAwait(false);
            lookups.Add(lookup);
        }
        var notes = new List<string>();
        if (_cache is null) notes.Add("no artifact cache: kernels are in memory only and the next process builds them again");
        notes.Add("layer 3 (persisted IL) does not exist: kernels are interpreted plans (see docs/PERFORMANCE.md)");
        int stored = _cache is null ? 0 : lookups.Count(l => l.Source == KernelSource.Built);
        return new PrewarmReport(lookups, stored, notes);
    }

    /// <summary>A snapshot of the counters.</summary>
    public KernelRegistryStatistics GetStatistics() => new(
        Interlocked.Read(ref _memoryHits), Interlocked.Read(ref _memoryMisses), Interlocked.Read(ref _shared),
        Interlocked.Read(ref _cacheHits), Interlocked.Read(ref _builds), Interlocked.Read(ref _rejected));

    /// <summary>The number of kernels held in memory.</summary>
    public int Count => _entries.Count;

    /// <summary>Drops every kernel from memory (the persisted copies stay).</summary>
    public void Clear() => _entries.Clear();

    private async Task<(object Kernel, KernelLookup Lookup)> GetAsync(Graph model, KernelKey key, CancellationToken ct)
    {
        if (model.ParamLength == 0 && key.Kind != KernelKind.Moments)
            throw new PtdException("the model has no parameters: there is nothing to infer (give a model whose rates are parameters, e.g. coalescent:n=10)");
        var clock = Stopwatch.StartNew();
        if (_entries.TryGetValue(key, out var existing) && existing.Value.IsCompletedSuccessfully)
        {
            Interlocked.Increment(ref _memoryHits);
            var e = existing.Value.Result;
            return (e.Kernel, e.Lookup with { Source = KernelSource.Memory, Tier = null, Elapsed = clock.Elapsed });
        }
        var created = new Lazy<Task<Entry>>(() => LoadOrBuildAsync(model, key), LazyThreadSafetyMode.ExecutionAndPublication);
        var lazy = _entries.GetOrAdd(key, created);
        bool mine = ReferenceEquals(lazy, created);
        if (mine) Interlocked.Increment(ref _memoryMisses);
        else
        {
            Interlocked.Increment(ref _memoryHits);
            if (!lazy.Value.IsCompleted) Interlocked.Increment(ref _shared);
        }
        Entry entry;
        try
        {
            entry = await lazy.Value.WaitAsync(ct).ConfigureAwait(false);
        }
        catch when (lazy.Value.IsFaulted)
        {
            // A failed build must not stay cached: the next request tries again. (A caller that
            // merely cancelled its wait leaves the build running for the others.)
            _entries.TryRemove(new KeyValuePair<KernelKey, Lazy<Task<Entry>>>(key, lazy));
            throw;
        }
        return mine
            ? (entry.Kernel, entry.Lookup)
            : (entry.Kernel, entry.Lookup with { Source = KernelSource.Memory, Tier = null, Elapsed = clock.Elapsed });
    }

    private async Task<Entry> LoadOrBuildAsync(Graph model, KernelKey key)
    {
        // The build runs to completion even if the first caller gives up: others may be waiting.
        var clock = Stopwatch.StartNew();
        if (_cache is not null)
        {
            var result = await _cache.GetOrCreateAsync(ArtifactKind, key.Digest,
                _ => Task.Run(() => Build(model, key)), CancellationToken.None).ConfigureAwait(false);
            bool hit = result.Outcome == CacheOutcome.Hit;
            try
            {
                var kernel = Decode(key, result.Payload);
                if (hit) Interlocked.Increment(ref _cacheHits); else Interlocked.Increment(ref _builds);
                var lookup = new KernelLookup(key, hit ? KernelSource.Cache : KernelSource.Built, hit ? result.Tier : null, result.Payload.Length, clock.Elapsed);
                _log?.Invoke(lookup.ToString());
                return new Entry(kernel, lookup);
            }
            catch (PtdException ex) when (hit)
            {
                // The envelope was intact but the payload does not decode (a faulty producer of
                // this revision): drop it, build, and store the good one.
                Interlocked.Increment(ref _rejected);
                _log?.Invoke($"{key}: persisted kernel rejected ({ex.Message}); rebuilding");
                await _cache.RemoveAsync(ArtifactKind, key.Digest).ConfigureAwait(false);
                var payload = Build(model, key);
                await _cache.SetAsync(ArtifactKind, key.Digest, payload).ConfigureAwait(false);
                Interlocked.Increment(ref _builds);
                var lookup = new KernelLookup(key, KernelSource.Built, null, payload.Length, clock.Elapsed);
                return new Entry(Decode(key, payload), lookup);
            }
        }
        var bytes = await Task.Run(() => Build(model, key)).ConfigureAwait(false);
        Interlocked.Increment(ref _builds);
        var built = new KernelLookup(key, KernelSource.Built, null, bytes.Length, clock.Elapsed);
        _log?.Invoke(built.ToString());
        return new Entry(Decode(key, bytes), built);
    }

    /// <summary>Builds a kernel's persistent form from the model.</summary>
    internal static byte[] Build(Graph model, KernelKey key) => key.Kind switch
    {
        KernelKind.Moments => KernelCodec.EncodeMoments(key, TracePasses.optimize(Ptd.Core.TraceModule.record(model))),
        _ => KernelCodec.EncodeLikelihood(key, LikelihoodPlan.Build(model)),
    };

    /// <summary>Makes the executable from the persistent form.</summary>
    internal static object Decode(KernelKey key, byte[] payload) => key.Kind switch
    {
        KernelKind.Moments => new MomentKernel(key, KernelCodec.DecodeMoments(key, payload)),
        _ => new LikelihoodKernel(key, KernelCodec.DecodeLikelihood(key, payload)),
    };
}
