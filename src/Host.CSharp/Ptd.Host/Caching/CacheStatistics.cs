using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ptd.Host.Caching;

/// <summary>Count, total and maximum of operation durations.</summary>
/// <param name="Count">Operations measured.</param>
/// <param name="TotalMilliseconds">Their summed duration.</param>
/// <param name="MaxMilliseconds">The longest one.</param>
public sealed record LatencyStatistics(long Count, double TotalMilliseconds, double MaxMilliseconds)
{
    /// <summary>The mean duration, or 0 when nothing was measured.</summary>
    public double MeanMilliseconds => Count == 0 ? 0 : TotalMilliseconds / Count;
}

/// <summary>Counters of one tier for one artifact kind since the cache was created or reset.</summary>
public sealed class TierStatistics
{
    /// <summary>The tier name.</summary>
    public required string Tier { get; init; }

    /// <summary>The artifact kind name.</summary>
    public required string Kind { get; init; }

    /// <summary>Reads that returned a valid entry.</summary>
    public long Hits { get; init; }

    /// <summary>Reads that found no entry.</summary>
    public long MissesNotFound { get; init; }

    /// <summary>Reads whose entry was rejected (corrupt, truncated, foreign version).</summary>
    public long MissesRejected { get; init; }

    /// <summary>Reads that failed with an error.</summary>
    public long MissesError { get; init; }

    /// <summary>Reads that timed out.</summary>
    public long MissesTimeout { get; init; }

    /// <summary>Reads skipped because the tier was cooling down after a failure.</summary>
    public long MissesSkipped { get; init; }

    /// <summary>All misses.</summary>
    public long Misses => MissesNotFound + MissesRejected + MissesError + MissesTimeout + MissesSkipped;

    /// <summary>Failed operations of any type (reads, writes, deletes, listings), excluding timeouts.</summary>
    public long Errors { get; init; }

    /// <summary>Timed-out operations of any type.</summary>
    public long Timeouts { get; init; }

    /// <summary>Entries rejected by envelope verification.</summary>
    public long Rejected { get; init; }

    /// <summary>Rejections by <see cref="EnvelopeRejectReason"/> name.</summary>
    public IReadOnlyDictionary<string, long> RejectedByReason { get; init; } = new Dictionary<string, long>();

    /// <summary>Envelope bytes read (hits and rejected entries).</summary>
    public long BytesRead { get; init; }

    /// <summary>Envelope bytes written.</summary>
    public long BytesWritten { get; init; }

    /// <summary>Entries written (including back-fills).</summary>
    public long Writes { get; init; }

    /// <summary>Writes that found the entry already present (create-only).</summary>
    public long WritesAlreadyPresent { get; init; }

    /// <summary>Writes skipped because the tier was cooling down.</summary>
    public long WritesSkipped { get; init; }

    /// <summary>Entries copied into this tier after a hit in a slower one.</summary>
    public long Backfills { get; init; }

    /// <summary>Entries removed by size or age eviction (or vacuum).</summary>
    public long Evictions { get; init; }

    /// <summary>Bytes removed by eviction.</summary>
    public long BytesEvicted { get; init; }

    /// <summary>Durations of reads.</summary>
    public LatencyStatistics ReadLatency { get; init; } = new(0, 0, 0);

    /// <summary>Durations of writes.</summary>
    public LatencyStatistics WriteLatency { get; init; } = new(0, 0, 0);
}

/// <summary>Cache-level counters of one artifact kind.</summary>
public sealed class KindStatistics
{
    /// <summary>The artifact kind name.</summary>
    public required string Kind { get; init; }

    /// <summary>Lookups requested (<see cref="IArtifactCache.GetOrCreateAsync"/> and <see cref="IArtifactCache.TryGetAsync"/>).</summary>
    public long Requests { get; init; }

    /// <summary>Lookups answered from some tier.</summary>
    public long Hits { get; init; }

    /// <summary>Lookups no tier could answer.</summary>
    public long Misses { get; init; }

    /// <summary>Factory runs (values computed because of a miss).</summary>
    public long Computations { get; init; }

    /// <summary>Factory runs that threw.</summary>
    public long ComputationFailures { get; init; }

    /// <summary>Callers that joined a lookup already in flight for the same key instead of starting their own.</summary>
    public long SharedFlights { get; init; }
}

/// <summary>A snapshot of the cache's counters (<see cref="IArtifactCache.GetStatistics"/>).</summary>
public sealed class CacheStatistics
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>When counting started (creation or the last reset).</summary>
    public DateTimeOffset Since { get; init; }

    /// <summary>Per tier and kind, ordered by tier position then kind name.</summary>
    public IReadOnlyList<TierStatistics> Tiers { get; init; } = Array.Empty<TierStatistics>();

    /// <summary>Per kind, ordered by name.</summary>
    public IReadOnlyList<KindStatistics> Kinds { get; init; } = Array.Empty<KindStatistics>();

    /// <summary>The counters of one tier and kind (all zero when nothing happened).</summary>
    /// <param name="tier">The tier name.</param>
    /// <param name="kind">The kind name.</param>
    /// <returns>The counters.</returns>
    public TierStatistics For(string tier, string kind) =>
        Tiers.FirstOrDefault(t => t.Tier == tier && t.Kind == kind) ?? new TierStatistics { Tier = tier, Kind = kind };

    /// <summary>The counters of one kind (all zero when nothing happened).</summary>
    /// <param name="kind">The kind name.</param>
    /// <returns>The counters.</returns>
    public KindStatistics For(string kind) => Kinds.FirstOrDefault(k => k.Kind == kind) ?? new KindStatistics { Kind = kind };

    /// <summary>The snapshot as indented JSON (camelCase), e.g. for <c>ptd cache stats --json</c>.</summary>
    /// <returns>The JSON text.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}
