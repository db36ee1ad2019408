using System.Diagnostics.Metrics;
using System.Reflection;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Whether a tier is written to.</summary>
public enum CacheTierAccess
{
    /// <summary>Read from, and written after a computation or a back-fill.</summary>
    ReadWrite = 0,

    /// <summary>Only read from (e.g. a team bucket populated by CI).</summary>
    ReadOnly = 1,
}

/// <summary>One tier of the cache chain. Tiers are consulted in the order given: put the fastest first.</summary>
public sealed class CacheTierOptions
{
    /// <summary>
    /// The store location, e.g. <c>file:///var/cache/ptd</c> or <c>s3://bucket/prefix?region=eu-west-1</c>; opened
    /// through the plugin registry. Ignored when <see cref="Store"/> is set.
    /// </summary>
    public string? Location { get; set; }

    /// <summary>An already opened store to use instead of <see cref="Location"/> (the cache does not dispose it).</summary>
    public IBlobStore? Store { get; set; }

    /// <summary>A short name used in statistics and metrics tags; default <c>{index}-{scheme}</c>, e.g. <c>0-file</c>.</summary>
    public string? Name { get; set; }

    /// <summary>Read-write (default) or read-only.</summary>
    public CacheTierAccess Access { get; set; } = CacheTierAccess.ReadWrite;

    /// <summary>The limit for each call to this tier; null for <see cref="ArtifactCacheOptions.DefaultTimeout"/>.</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>How long the tier is skipped after a failure or timeout; null for <see cref="ArtifactCacheOptions.DefaultCoolDown"/>.</summary>
    public TimeSpan? CoolDown { get; set; }

    /// <summary>Evict least recently used entries when the tier holds more than this many bytes (null: no limit).</summary>
    public long? MaxSizeBytes { get; set; }

    /// <summary>Evict entries not used for this long (null: no limit).</summary>
    public TimeSpan? MaxAge { get; set; }

    /// <summary>A copy of these options.</summary>
    /// <returns>The copy.</returns>
    public CacheTierOptions Clone() => (CacheTierOptions)MemberwiseClone();
}

/// <summary>Settings of an <see cref="IArtifactCache"/> (see docs/configuration.md).</summary>
public sealed class ArtifactCacheOptions
{
    /// <summary>The tiers, fastest first. Empty means caching is off.</summary>
    public IList<CacheTierOptions> Tiers { get; } = new List<CacheTierOptions>();

    /// <summary>The generation segment of every key; bump it to start afresh (old generations are dropped by vacuum or eviction).</summary>
    public int Generation { get; set; } = 1;

    /// <summary>Recorded in every envelope (informational).</summary>
    public string ProducerVersion { get; set; } = DefaultProducerVersion;

    /// <summary>Compression for payloads of at least <see cref="CompressionThreshold"/> bytes (default none).</summary>
    public CacheCompression Compression { get; set; } = CacheCompression.None;

    /// <summary>Payloads smaller than this are stored uncompressed.</summary>
    public int CompressionThreshold { get; set; } = 64 * 1024;

    /// <summary>The per-call timeout of tiers that set none (default 10 s).</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a failing tier is skipped when it sets no cool-down (default 30 s; zero disables skipping).</summary>
    public TimeSpan DefaultCoolDown { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest payload read or written (default 1 GiB).</summary>
    public long MaxEntryBytes { get; set; } = 1L << 30;

    /// <summary>Run size/age eviction in the background as entries are written (default true).</summary>
    public bool AutoEvict { get; set; } = true;

    /// <summary>Fail <see cref="ArtifactCache.Create(ArtifactCacheOptions, Ptd.Host.Composition.StorageProviderRegistry?)"/> when a tier cannot be opened, instead of leaving it out with a warning.</summary>
    public bool ThrowOnTierError { get; set; }

    /// <summary>The clock for cool-downs and ages.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Creates the <see cref="Meter"/> (pass the DI container's factory); null creates a private meter named <see cref="ArtifactCache.MeterName"/>.</summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>Receives diagnostic messages (tier failures, rejected entries). Messages never contain credentials.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>
    /// Where the cache adds its counters when it is disposed, so that they outlive the process (<c>ptd cache stats</c>);
    /// null (the default) keeps them in memory only. <see cref="ArtifactCache.FromEnvironment"/> sets it from
    /// <c>PTD_CACHE_STATS</c>.
    /// </summary>
    public CacheStatisticsLedger? StatisticsLedger { get; set; }

    /// <summary>Services passed to storage providers (environment access).</summary>
    public BlobStoreContext StoreContext { get; set; } = BlobStoreContext.Default;

    /// <summary>
    /// The context stores are opened with: <see cref="StoreContext"/> with its read limit set to the largest envelope of a
    /// <see cref="MaxEntryBytes"/> payload, so a store stops reading a bigger (or endless) body instead of buffering it.
    /// </summary>
    /// <returns>The context for <see cref="Ptd.Host.Composition.StorageProviderRegistry.Open(StoreUri, BlobStoreContext?)"/>.</returns>
    public BlobStoreContext StoreContextForTiers() => StoreContext.WithMaxReadBytes(CacheEnvelope.MaxEnvelopeBytes(MaxEntryBytes));

    /// <summary>The default <see cref="ProducerVersion"/>: <c>Ptd.Host/</c> and the assembly's informational version.</summary>
    public static string DefaultProducerVersion { get; } =
        "Ptd.Host/" + (typeof(ArtifactCacheOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0");

    /// <summary>Checks the settings, throwing <see cref="ArgumentException"/> with the field and the fix.</summary>
    public void Validate()
    {
        if (Generation < 0) throw new ArgumentException($"{nameof(Generation)} must be 0 or more, not {Generation}");
        if (CompressionThreshold < 0) throw new ArgumentException($"{nameof(CompressionThreshold)} must be 0 or more");
        if (DefaultTimeout <= TimeSpan.Zero) throw new ArgumentException($"{nameof(DefaultTimeout)} must be positive");
        if (DefaultCoolDown < TimeSpan.Zero) throw new ArgumentException($"{nameof(DefaultCoolDown)} must not be negative");
        if (MaxEntryBytes <= 0) throw new ArgumentException($"{nameof(MaxEntryBytes)} must be positive");
        for (var i = 0; i < Tiers.Count; i++)
        {
            var t = Tiers[i] ?? throw new ArgumentException($"tier {i} is null");
            if (t.Store is null && string.IsNullOrWhiteSpace(t.Location)) throw new ArgumentException($"tier {i} has neither a Location nor a Store");
            if (t.Timeout is { } to && to <= TimeSpan.Zero) throw new ArgumentException($"tier {i}: Timeout must be positive");
            if (t.CoolDown is { } cd && cd < TimeSpan.Zero) throw new ArgumentException($"tier {i}: CoolDown must not be negative");
            if (t.MaxSizeBytes is { } ms && ms < 0) throw new ArgumentException($"tier {i}: MaxSizeBytes must not be negative");
            if (t.MaxAge is { } ma && ma <= TimeSpan.Zero) throw new ArgumentException($"tier {i}: MaxAge must be positive");
        }
    }
}
