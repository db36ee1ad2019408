using Ptd.Core;
using Ptd.Host.Composition;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>
/// Management of a tiered cache over all layers (traces, kernels, code) and tiers: status, listing, verification,
/// clearing, vacuum, export/import, sync between stores, prewarming. What <c>ptd cache</c> runs; usable from C# and
/// F# (every method returns a Task of an immutable record).
/// </summary>
/// <remarks>
/// <para>The manager works on the tiers' stores directly (it lists, reads, writes and deletes whole entries, one object
/// each) and checks every entry it reads with <see cref="CacheEnvelope.Verify"/>. Only objects with the cache's key
/// layout (<see cref="CacheKeyLayout"/>) are ever deleted, and only from read-write tiers.</para>
/// <para>Unlike the cache's read path, management calls report store failures instead of hiding them: a tier that
/// cannot be listed shows up in the report's problems.</para>
/// </remarks>
public sealed partial class CacheManager : IAsyncDisposable, IDisposable
{
    private static readonly TimeSpan ListingTimeout = TimeSpan.FromMinutes(5);

    private readonly TieredArtifactCache _cache;
    private readonly bool _ownsCache;
    private readonly StorageProviderRegistry? _givenRegistry;
    private StorageProviderRegistry? _ownedRegistry;
    private readonly List<IBlobStore> _openedStores = new();
    private readonly ICacheWarmer[] _warmers;
    private readonly object _gate = new();

    /// <summary>Manages <paramref name="cache"/> (which must come from <see cref="ArtifactCache"/>).</summary>
    /// <param name="cache">The cache; the manager does not dispose it.</param>
    /// <param name="registry">Opens locations that are not tiers (sync, import targets); null discovers plugins when needed.</param>
    /// <param name="warmers">What <see cref="PrewarmAsync"/> fills; null for the built-in ones (<see cref="DefaultWarmers"/>).</param>
    /// <param name="ledger">The persisted counters shown by status and stats; null for none.</param>
    /// <exception cref="ArgumentException">The cache was not built by <see cref="ArtifactCache"/>.</exception>
    public CacheManager(IArtifactCache cache, StorageProviderRegistry? registry = null, IEnumerable<ICacheWarmer>? warmers = null, CacheStatisticsLedger? ledger = null)
        : this(cache, ownsCache: false, registry, warmers, ledger)
    {
    }

    private CacheManager(IArtifactCache cache, bool ownsCache, StorageProviderRegistry? registry, IEnumerable<ICacheWarmer>? warmers, CacheStatisticsLedger? ledger)
    {
        ArgumentNullException.ThrowIfNull(cache);
        _cache = cache as TieredArtifactCache
                 ?? throw new ArgumentException($"the cache must be built by {nameof(ArtifactCache)}.{nameof(ArtifactCache.Create)} (got {cache.GetType().Name})", nameof(cache));
        _ownsCache = ownsCache;
        _givenRegistry = registry;
        _warmers = (warmers ?? DefaultWarmers).ToArray();
        Ledger = ledger;
    }

    /// <summary>
    /// The built-in warmers: traces (layer 1) and kernels (layer 2, <see cref="Ptd.Host.Kernels.KernelWarmer"/>). Layer 3
    /// has none: it is deliberately not built (<see cref="CacheLayers.CodeNotBuilt"/>).
    /// </summary>
    public static IReadOnlyList<ICacheWarmer> DefaultWarmers { get; } = [new TraceWarmer(), new Ptd.Host.Kernels.KernelWarmer()];

    /// <summary>
    /// A manager over the cache configured by the environment (see <see cref="ArtifactCache.FromEnvironment"/>), with
    /// the statistics ledger of <c>PTD_CACHE_STATS</c>. Disposing the manager disposes that cache.
    /// </summary>
    /// <param name="getEnvironmentVariable">Reads variables (null: the process environment).</param>
    /// <param name="registry">The storage providers (null: discover them).</param>
    /// <param name="log">Receives diagnostics (never credentials).</param>
    /// <returns>The manager.</returns>
    /// <exception cref="PtdException">The configuration is malformed.</exception>
    public static CacheManager FromEnvironment(Func<string, string?>? getEnvironmentVariable = null, StorageProviderRegistry? registry = null, Action<string>? log = null)
    {
        var cache = ArtifactCache.FromEnvironment(getEnvironmentVariable, registry, log: log);
        return new CacheManager(cache, ownsCache: true, registry, null, CacheStatisticsLedger.FromEnvironment(getEnvironmentVariable));
    }

    /// <summary>A manager that owns a cache built from <paramref name="options"/>.</summary>
    /// <param name="options">The cache settings.</param>
    /// <param name="registry">The storage providers (null: discover them when a tier needs one).</param>
    /// <param name="warmers">What prewarming fills (null: the built-in warmers).</param>
    /// <returns>The manager; disposing it disposes the cache.</returns>
    public static CacheManager Create(ArtifactCacheOptions options, StorageProviderRegistry? registry = null, IEnumerable<ICacheWarmer>? warmers = null) =>
        new(ArtifactCache.Create(options, registry), ownsCache: true, registry, warmers, options.StatisticsLedger);

    /// <summary>The managed cache.</summary>
    public IArtifactCache Cache => _cache;

    /// <summary>The persisted counters, or null.</summary>
    public CacheStatisticsLedger? Ledger { get; }

    /// <summary>The tiers.</summary>
    public IReadOnlyList<CacheTierInfo> Tiers => _cache.Tiers;

    /// <summary>The warmers used by <see cref="PrewarmAsync"/>.</summary>
    public IReadOnlyList<ICacheWarmer> Warmers => _warmers;

    /// <summary>The storage providers: the one given, else discovered on first use.</summary>
    public StorageProviderRegistry Registry
    {
        get
        {
            if (_givenRegistry is not null) return _givenRegistry;
            lock (_gate)
            {
                return _ownedRegistry ??= StorageProviderRegistry.Discover(new PluginDiscoveryOptions { GetEnvironmentVariable = Options.StoreContext.GetEnvironmentVariable });
            }
        }
    }

    private ArtifactCacheOptions Options => _cache.Options;

    private TimeProvider Time => Options.TimeProvider;

    private int Generation => _cache.Generation;

    /// <summary>Per tier and kind: entries, bytes, stale entries, oldest and newest, health; plus the persisted counters.</summary>
    /// <param name="readHeaders">Also read every entry's envelope to count producer versions (slow on remote tiers).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The report.</returns>
    public async Task<CacheStatusReport> GetStatusAsync(bool readHeaders = false, CancellationToken cancellationToken = default)
    {
        var health = await _cache.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
        var tiers = new List<TierStatus>();
        foreach (var t in TierStores())
        {
            var info = _cache.Tiers[t.Index];
            var h = health.FirstOrDefault(x => x.Tier == t.Name)?.Health;
            var listing = await ListStoreAsync(t, cancellationToken).ConfigureAwait(false);
            Dictionary<string, Dictionary<string, long>>? producers = null;
            if (readHeaders && listing.Problem is null)
            {
                producers = new();
                foreach (var e in listing.Entries)
                {
                    var label = "(unreadable)";
                    try
                    {
                        var r = await Within(c => t.Store!.GetAsync(BlobKey.Parse(e.StorageKey), c), t.Timeout, $"{t.Name}: read", cancellationToken).ConfigureAwait(false);
                        if (r.Found)
                        {
                            var v = CacheEnvelope.Verify(r.Content, e.StorageKey, Options.MaxEntryBytes);
                            label = v.IsValid ? v.Header!.ProducerVersion : $"(invalid: {v.Reason})";
                        }
                        else label = "(gone)";
                    }
                    catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
                    {
                    }
                    var d = producers.TryGetValue(e.Kind, out var x) ? x : producers[e.Kind] = new(StringComparer.Ordinal);
                    d[label] = d.GetValueOrDefault(label) + 1;
                }
            }
            var kinds = listing.Entries
                .GroupBy(e => e.Kind)
                .Select(g => (Kind: g.Key, Layer: CacheLayers.ForKind(g.Key), Entries: g.ToList()))
                .OrderBy(g => g.Layer is null ? int.MaxValue : IndexOf(g.Layer)).ThenBy(g => g.Kind, StringComparer.Ordinal)
                .Select(g => new KindStatus(g.Kind, g.Layer?.Name, g.Layer?.CurrentRevision, g.Entries.Count, g.Entries.Sum(e => e.Bytes),
                    g.Entries.Count(e => e.IsStale), g.Entries.Where(e => e.IsStale).Sum(e => e.Bytes),
                    g.Entries.Min(e => (DateTimeOffset?)e.LastModified), g.Entries.Max(e => (DateTimeOffset?)e.LastModified),
                    g.Entries.GroupBy(e => $"r{e.FormatRevision}/g{e.Generation}").OrderBy(x => x.Key, StringComparer.Ordinal)
                        .ToDictionary(x => x.Key, x => (long)x.Count(), StringComparer.Ordinal),
                    producers?.GetValueOrDefault(g.Kind)))
                .ToArray();
            var all = listing.Entries;
            tiers.Add(new TierStatus(t.Name, t.Index, t.Display, info.Access == CacheTierAccess.ReadOnly ? "read-only" : "read-write", t.Store is not null,
                t.Store?.Capabilities.Listing ?? false, listing.Problem ?? t.Problem, t.Timeout, info.MaxSizeBytes, info.MaxAge,
                all.Count, all.Sum(e => e.Bytes), all.Count(e => e.IsStale), all.Where(e => e.IsStale).Sum(e => e.Bytes), listing.Foreign,
                all.Min(e => (DateTimeOffset?)e.LastModified), all.Max(e => (DateTimeOffset?)e.LastModified), kinds, h));
        }
        return new CacheStatusReport(Generation, Options.ProducerVersion, CacheLayers.All, tiers, _cache.Warnings, Ledger?.Read(Options.Log));
    }

    /// <summary>Lists the entries of the given layers in every tier (or one), sorted by tier, kind, revision, generation and key.</summary>
    /// <param name="layers">The layers (null: all, plus kinds no layer owns).</param>
    /// <param name="tier">A tier name, or null for every tier.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries and the tiers that could not be listed.</returns>
    /// <exception cref="PtdException">No tier has that name.</exception>
    public async Task<(CacheEntryInfo[] Entries, string[] Problems)> ListAsync(IReadOnlyList<CacheLayer>? layers = null, string? tier = null, CancellationToken cancellationToken = default)
    {
        var entries = new List<CacheEntryInfo>();
        var problems = new List<string>();
        foreach (var t in tier is null ? TierStores() : [TierStore(tier)])
        {
            var listing = await ListStoreAsync(t, cancellationToken).ConfigureAwait(false);
            if (listing.Problem is not null) problems.Add(listing.Problem);
            entries.AddRange(listing.Entries.Where(e => InLayers(e, layers)));
        }
        return (entries.ToArray(), problems.ToArray());
    }

    /// <summary>
    /// Finds an entry by its full storage key (<c>trace/r1/g1/…</c>), its content key, or a prefix of at least 6
    /// characters of its content key, and reads it from every tier that holds it.
    /// </summary>
    /// <param name="key">The key or prefix.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One detail per copy found (empty when none).</returns>
    /// <exception cref="PtdException">The key is malformed, too short, or matches several entries.</exception>
    public async Task<CacheEntryDetail[]> ShowAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var k = key.Trim().ToLowerInvariant();
        var full = k.Contains('/');
        if (full && BlobKey.Validate(k) is { } error) throw new PtdException($"'{key}' is not a storage key: {error}");
        if (!full && (k.Length < 6 || BlobKey.Validate(k) is not null))
            throw new PtdException($"'{key}' is not a cache key: give the full storage key (kind/rN/gN/key), the content key, or at least its first 6 characters");
        var (entries, _) = await ListAsync(null, null, cancellationToken).ConfigureAwait(false);
        var matches = entries.Where(e => full ? e.StorageKey == k : e.Key == k || e.Key.StartsWith(k, StringComparison.Ordinal)).ToArray();
        var distinct = matches.Select(e => e.StorageKey).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (distinct.Length > 1 && !matches.All(e => e.Key == k))
            throw new PtdException($"'{key}' matches {distinct.Length} entries: {string.Join(", ", distinct.Take(10))}{(distinct.Length > 10 ? ", …" : "")}; give more characters or the full storage key");
        var details = new List<CacheEntryDetail>();
        foreach (var e in matches)
        {
            var t = TierStore(e.Tier);
            details.Add(await DetailAsync(t, e, cancellationToken).ConfigureAwait(false));
        }
        return details.ToArray();
    }

    /// <summary>Synchronous <see cref="DisposeAsync"/>, for containers that dispose synchronously.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Disposes the cache if the manager owns it, and the stores it opened for other locations.</summary>
    /// <returns>A task.</returns>
    public async ValueTask DisposeAsync()
    {
        IBlobStore[] stores;
        lock (_gate)
        {
            stores = _openedStores.ToArray();
            _openedStores.Clear();
        }
        foreach (var s in stores)
        {
            try
            {
                await s.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log($"closing {s.DisplayName} failed: {e.GetType().Name}");
            }
        }
        if (_ownsCache) await _cache.DisposeAsync().ConfigureAwait(false);
        _ownedRegistry?.Dispose();
    }

    // ---------------------------------------------------------------------------------------------
    // Stores, listings, timeouts
    // ---------------------------------------------------------------------------------------------

    /// <summary>A store the manager works on: a tier, or a location opened for sync/import.</summary>
    internal sealed record ManagedStore(string Name, int Index, string Display, IBlobStore? Store, bool Writable, TimeSpan Timeout, string? Problem);

    internal sealed record Listing(List<CacheEntryInfo> Entries, long Foreign, string? Problem);

    private IEnumerable<ManagedStore> TierStores() =>
        _cache.RuntimeTiers.Select(t => new ManagedStore(t.Name, t.Index, t.DisplayName, t.Store, t.IsWritable, t.Timeout, t.Problem));

    private ManagedStore TierStore(string name)
    {
        var t = TierStores().FirstOrDefault(x => x.Name == name);
        if (t is not null) return t;
        var names = _cache.RuntimeTiers.Select(x => x.Name).ToArray();
        throw new PtdException(names.Length == 0
            ? $"no cache tier is named '{name}': caching is off (PTD_CACHE=off or an empty tier list)"
            : $"no cache tier is named '{name}'; tiers: {string.Join(", ", names)}");
    }

    /// <summary>A tier by name, or a location (URI) opened through the registry with the cache's store context.</summary>
    private ManagedStore Resolve(string nameOrLocation, string role)
    {
        if (TierStores().FirstOrDefault(x => x.Name == nameOrLocation) is { } tier) return tier;
        if (!nameOrLocation.Contains("://", StringComparison.Ordinal))
            throw new PtdException($"{role} '{nameOrLocation}' is neither a tier name ({string.Join(", ", _cache.RuntimeTiers.Select(x => x.Name))}) nor a location such as file:///path or s3://bucket/prefix");
        var parsed = CacheConfiguration.ParseTier(nameOrLocation, role);
        var store = Registry.Open(parsed.Location!, Options.StoreContextForTiers());
        lock (_gate) _openedStores.Add(store);
        var writable = parsed.Access == CacheTierAccess.ReadWrite && !store.Capabilities.ReadOnly;
        return new ManagedStore(store.DisplayName, -1, store.DisplayName, store, writable, parsed.Timeout ?? Options.DefaultTimeout, null);
    }

    internal async Task<Listing> ListStoreAsync(ManagedStore t, CancellationToken cancellationToken)
    {
        if (t.Store is null) return new([], 0, $"tier {t.Name} ({t.Display}) is unavailable: {t.Problem}");
        if (!t.Store.Capabilities.Listing) return new([], 0, $"tier {t.Name} ({t.Display}) cannot list its entries");
        IReadOnlyList<BlobInfo> raw;
        try
        {
            raw = await Within(c => t.Store.ListAsync("", c), ListingTimeout, $"tier {t.Name} ({t.Display}): listing", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return new([], 0, $"tier {t.Name} ({t.Display}): listing failed: {Describe(e)}");
        }
        var entries = new List<CacheEntryInfo>(raw.Count);
        long foreign = 0;
        foreach (var b in raw)
        {
            if (!CacheKeyLayout.TryParse(b.Key, out var kind, out var rev, out var gen) || !ArtifactKind.IsValidName(kind))
            {
                foreign++;
                continue;
            }
            var layer = CacheLayers.ForKind(kind);
            var stale = layer?.IsStale(rev, gen, Generation) ?? gen != Generation;
            var content = string.Join('/', b.Key.Segments.Skip(3));
            entries.Add(new CacheEntryInfo(t.Name, b.Key.Value, layer?.Name, kind, rev, gen, content, b.Length, b.LastModified, b.LastUsed, stale));
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.StorageKey, b.StorageKey));
        return new(entries, foreign, null);
    }

    private async Task<CacheEntryDetail> DetailAsync(ManagedStore t, CacheEntryInfo e, CancellationToken cancellationToken)
    {
        BlobReadResult r;
        try
        {
            r = await Within(c => t.Store!.GetAsync(BlobKey.Parse(e.StorageKey), c), t.Timeout, $"tier {t.Name}: read", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            return new CacheEntryDetail(e, null, false, "ReadFailed", Describe(ex), null);
        }
        if (!r.Found) return new CacheEntryDetail(e, null, false, "Gone", "the entry was removed while it was being read", null);
        var v = CacheEnvelope.Verify(r.Content, e.StorageKey, Options.MaxEntryBytes);
        if (!v.IsValid) return new CacheEntryDetail(e, v.Header, false, v.Reason.ToString(), v.Detail, null);
        IReadOnlyDictionary<string, string>? content = null;
        foreach (var w in _warmers.Where(w => w.Layer.KindName == e.Kind))
            content = w.Describe(e, v.Payload) ?? content;
        return new CacheEntryDetail(e, v.Header, true, null, null, content);
    }

    private static bool InLayers(CacheEntryInfo e, IReadOnlyList<CacheLayer>? layers) =>
        layers is null || layers.Any(l => l.KindName == e.Kind);

    private static int IndexOf(CacheLayer layer)
    {
        for (var i = 0; i < CacheLayers.All.Count; i++)
            if (CacheLayers.All[i] == layer) return i;
        return int.MaxValue;
    }

    /// <summary>Runs a store call with a deadline; a missed deadline is a <see cref="TimeoutException"/>, the caller's cancellation propagates.</summary>
    internal static async Task<T> Within<T>(Func<CancellationToken, Task<T>> operation, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await operation(deadline.Token).WaitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{what}: no answer within {timeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>Failures of a store call that a report records (everything but the caller's cancellation and fatal errors).</summary>
    internal static bool IsStoreFailure(Exception e, CancellationToken cancellationToken) =>
        e is not OutOfMemoryException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested);

    internal static string Describe(Exception e) => e switch
    {
        BlobStoreException b => $"{b.Kind}: {b.Message}",
        TimeoutException t => t.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private void Log(string message)
    {
        try
        {
            Options.Log?.Invoke(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Logging never breaks management.
        }
    }
}

/// <summary>One copy of an entry as <c>ptd cache show</c> prints it.</summary>
/// <param name="Entry">Where it is and what its key says.</param>
/// <param name="Header">The envelope header, when it could be read.</param>
/// <param name="Valid">Whether the envelope and the payload hash check out.</param>
/// <param name="Reason">Why it is not valid, or null.</param>
/// <param name="Detail">What was wrong, or null.</param>
/// <param name="Content">Facts about the payload from its layer (for traces: vertices, edges, parameters, ops), or null.</param>
public sealed record CacheEntryDetail(CacheEntryInfo Entry, EnvelopeHeader? Header, bool Valid, string? Reason, string? Detail, IReadOnlyDictionary<string, string>? Content);
