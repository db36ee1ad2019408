using Ptd.Core;
using Ptd.Host.Composition;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>
/// Builds <see cref="IArtifactCache"/> instances. Typical use:
/// <code>
/// await using var cache = ArtifactCache.FromEnvironment();          // PTD_CACHE, config file, plugins
/// var kind = new ArtifactKind("trace", 1);
/// var r = await cache.GetOrCreateAsync(kind, hexKey, ct => RecordTraceBytesAsync(ct));
/// </code>
/// With Microsoft.Extensions.DependencyInjection:
/// <c>services.AddSingleton&lt;IArtifactCache&gt;(sp => ArtifactCache.FromEnvironment(meterFactory: sp.GetService&lt;IMeterFactory&gt;()))</c>.
/// </summary>
public static class ArtifactCache
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> that publishes the cache's counters.</summary>
    public const string MeterName = "Ptd.Cache";

    /// <summary>Builds a cache from options; tiers given by location are opened through <paramref name="registry"/>.</summary>
    /// <param name="options">The settings (validated here).</param>
    /// <param name="registry">The storage providers; null discovers plugins with the default search path (only if a tier needs it).</param>
    /// <returns>The cache; dispose it to close the stores it opened.</returns>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="PtdException">A tier could not be opened and <see cref="ArtifactCacheOptions.ThrowOnTierError"/> is set.</exception>
    public static IArtifactCache Create(ArtifactCacheOptions options, StorageProviderRegistry? registry = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var warnings = new List<string>();
        StorageProviderRegistry? owned = null;
        var tiers = new List<CacheTier>();
        try
        {
            for (var i = 0; i < options.Tiers.Count; i++)
            {
                var t = options.Tiers[i];
                if (t.Store is not null)
                {
                    tiers.Add(new CacheTier(i, t.Name ?? $"{i}-{SchemeOf(t.Store.DisplayName)}", t.Store.DisplayName, t.Store, ownsStore: false, t, options, null));
                    continue;
                }
                // Reserved parameters left in a programmatic location are honoured too.
                var parsed = Merge(t, CacheConfiguration.ParseTier(t.Location!, $"cache tier {i}"));
                var uri = StoreUri.Parse(parsed.Location!);
                if (registry is null)
                {
                    registry = owned = StorageProviderRegistry.Discover(new PluginDiscoveryOptions { GetEnvironmentVariable = options.StoreContext.GetEnvironmentVariable });
                    warnings.AddRange(owned.LoadErrors.Select(e => $"storage plugin {e}"));
                }
                var display = registry.Display(uri);
                var name = parsed.Name ?? $"{i}-{uri.Scheme}";
                try
                {
                    var store = registry.Open(uri, options.StoreContextForTiers());
                    tiers.Add(new CacheTier(i, name, store.DisplayName, store, ownsStore: true, parsed, options, null));
                }
                catch (PtdException e)
                {
                    if (options.ThrowOnTierError) throw;
                    warnings.Add($"cache tier {name} ({display}) left out: {e.Message}");
                    tiers.Add(new CacheTier(i, name, display, null, ownsStore: false, parsed, options, e.Message));
                }
            }
        }
        catch
        {
            foreach (var t in tiers.Where(t => t.OwnsStore)) _ = t.Store!.DisposeAsync();
            owned?.Dispose();
            throw;
        }
        foreach (var w in warnings) Safe(options.Log, w);
        return new TieredArtifactCache(tiers.ToArray(), options, warnings, owned);
    }

    /// <summary>
    /// Builds a cache configured by the environment (<c>PTD_CACHE</c>, <c>PTD_CACHE_CONFIG</c> or
    /// <c>~/.ptd/cache.json</c>, <c>PTD_CACHE_DIR</c>) with plugins discovered next to the application and on
    /// <c>PTD_PLUGIN_PATH</c>; its counters are added to the ledger named by <c>PTD_CACHE_STATS</c> when it is
    /// disposed (see <see cref="CacheStatisticsLedger"/>). See docs/configuration.md.
    /// </summary>
    /// <param name="getEnvironmentVariable">Reads variables (null: the process environment).</param>
    /// <param name="registry">The storage providers (null: discover them).</param>
    /// <param name="meterFactory">Creates the meter (e.g. from DI); null for a private meter.</param>
    /// <param name="log">Receives diagnostic messages.</param>
    /// <returns>The cache.</returns>
    /// <exception cref="PtdException">The configuration is malformed.</exception>
    public static IArtifactCache FromEnvironment(Func<string, string?>? getEnvironmentVariable = null, StorageProviderRegistry? registry = null,
        System.Diagnostics.Metrics.IMeterFactory? meterFactory = null, Action<string>? log = null)
    {
        var options = CacheConfiguration.FromEnvironment(getEnvironmentVariable);
        options.MeterFactory = meterFactory;
        options.Log = log;
        options.StatisticsLedger = CacheStatisticsLedger.FromEnvironment(getEnvironmentVariable);
        return Create(options, registry);
    }

    private static CacheTierOptions Merge(CacheTierOptions given, CacheTierOptions parsed)
    {
        var r = given.Clone();
        r.Location = parsed.Location;
        r.Name ??= parsed.Name;
        if (parsed.Access == CacheTierAccess.ReadOnly) r.Access = CacheTierAccess.ReadOnly;
        r.Timeout ??= parsed.Timeout;
        r.CoolDown ??= parsed.CoolDown;
        r.MaxSizeBytes ??= parsed.MaxSizeBytes;
        r.MaxAge ??= parsed.MaxAge;
        return r;
    }

    private static string SchemeOf(string display)
    {
        var i = display.IndexOf("://", StringComparison.Ordinal);
        return i > 0 && i <= 16 ? display[..i] : "store";
    }

    private static void Safe(Action<string>? log, string message)
    {
        try
        {
            log?.Invoke(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Logging must not break cache construction.
        }
    }
}
