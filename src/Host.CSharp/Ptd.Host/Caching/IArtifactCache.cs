using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>
/// A tiered, versioned cache of artifacts (opaque payload bytes identified by kind, format revision and a content
/// key). Create one with <see cref="ArtifactCache"/>; register it as a singleton; it is thread-safe.
/// </summary>
/// <remarks>
/// <para>Reads try the tiers in order; a hit in a slower tier is copied into the faster read-write tiers (back-fill).
/// Write policy: after a computation (or <see cref="SetAsync"/>) the entry is written to every read-write tier
/// that is not cooling down, concurrently, create-only where the tier supports it; the call returns when all
/// writes have finished or timed out.</para>
/// <para>No cache failure ever reaches the caller: a tier that errs or exceeds its timeout counts a miss (or a failed
/// write) and is skipped for its cool-down. Only the caller's own cancellation and the factory's own exceptions
/// propagate.</para>
/// </remarks>
public interface IArtifactCache : IAsyncDisposable
{
    /// <summary>The tiers, fastest first, including any that could not be opened.</summary>
    IReadOnlyList<CacheTierInfo> Tiers { get; }

    /// <summary>Configuration problems found when the cache was built (tiers left out, plugins that failed to load).</summary>
    IReadOnlyList<string> Warnings { get; }

    /// <summary>The generation segment of this cache's keys.</summary>
    int Generation { get; }

    /// <summary>
    /// Returns the cached payload for (<paramref name="kind"/>, <paramref name="key"/>), or runs
    /// <paramref name="factory"/> once, stores its result and returns it. Concurrent calls for the same entry in this
    /// process share one lookup and one factory run (single flight).
    /// </summary>
    /// <param name="kind">The artifact kind and format revision.</param>
    /// <param name="key">The content key: storage-key segments (see <see cref="BlobKey"/>), typically a lowercase hex digest.</param>
    /// <param name="factory">Computes the payload on a miss. Its token is cancelled only when every waiting caller has cancelled.</param>
    /// <param name="cancellationToken">Cancels this caller's wait.</param>
    /// <returns>The payload and where it came from. The array may be shared with other callers: do not modify it.</returns>
    Task<CacheResult> GetOrCreateAsync(ArtifactKind kind, string key, Func<CancellationToken, Task<byte[]>> factory, CancellationToken cancellationToken = default);

    /// <summary>Looks an entry up without computing it (back-filling faster tiers on a hit).</summary>
    /// <param name="kind">The artifact kind and format revision.</param>
    /// <param name="key">The content key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A hit, or a result with <see cref="CacheResult.Found"/> false.</returns>
    Task<CacheResult> TryGetAsync(ArtifactKind kind, string key, CancellationToken cancellationToken = default);

    /// <summary>Stores an entry in every read-write tier, replacing what is there.</summary>
    /// <param name="kind">The artifact kind and format revision.</param>
    /// <param name="key">The content key.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The number of tiers that stored it.</returns>
    Task<int> SetAsync(ArtifactKind kind, string key, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default);

    /// <summary>Removes an entry from every read-write tier.</summary>
    /// <param name="kind">The artifact kind and format revision.</param>
    /// <param name="key">The content key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The number of tiers that held it.</returns>
    Task<int> RemoveAsync(ArtifactKind kind, string key, CancellationToken cancellationToken = default);

    /// <summary>Runs size and age eviction now on every read-write tier that has limits and can list.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was removed.</returns>
    Task<MaintenanceReport> EvictAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes, from every read-write tier that can list, the entries of the given kinds' names that belong to another
    /// format revision or generation than the current ones. Entries of other kinds are left alone.
    /// </summary>
    /// <param name="currentKinds">The kinds (with their current revisions) whose stale entries are dropped.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was removed.</returns>
    Task<MaintenanceReport> VacuumAsync(IEnumerable<ArtifactKind> currentKinds, CancellationToken cancellationToken = default);

    /// <summary>Checks every tier (each within its timeout).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One report per tier, in tier order.</returns>
    Task<IReadOnlyList<TierHealth>> CheckHealthAsync(CancellationToken cancellationToken = default);

    /// <summary>A snapshot of the counters.</summary>
    /// <returns>The statistics.</returns>
    CacheStatistics GetStatistics();

    /// <summary>Sets every counter to zero.</summary>
    void ResetStatistics();
}

/// <summary>Where a <see cref="CacheResult"/> came from.</summary>
public enum CacheOutcome
{
    /// <summary>No tier had the entry (only from <see cref="IArtifactCache.TryGetAsync"/>).</summary>
    Miss = 0,

    /// <summary>Read from a tier.</summary>
    Hit = 1,

    /// <summary>Computed by the factory after a miss.</summary>
    Computed = 2,
}

/// <summary>The result of a cache lookup.</summary>
public sealed class CacheResult
{
    internal CacheResult(CacheOutcome outcome, byte[] payload, string? tier, int tierIndex, bool shared)
    {
        Outcome = outcome;
        Payload = payload;
        Tier = tier;
        TierIndex = tierIndex;
        SharedFlight = shared;
    }

    /// <summary>Hit, computed or miss.</summary>
    public CacheOutcome Outcome { get; }

    /// <summary>True unless <see cref="Outcome"/> is <see cref="CacheOutcome.Miss"/>.</summary>
    public bool Found => Outcome != CacheOutcome.Miss;

    /// <summary>The payload (empty on a miss). Shared between concurrent callers: do not modify it.</summary>
    public byte[] Payload { get; }

    /// <summary>The name of the tier that answered, or null.</summary>
    public string? Tier { get; }

    /// <summary>The position of the tier that answered (0 = fastest), or -1.</summary>
    public int TierIndex { get; }

    /// <summary>True when this caller joined a lookup another caller had started.</summary>
    public bool SharedFlight { get; }

    internal CacheResult AsShared() => new(Outcome, Payload, Tier, TierIndex, true);

    /// <inheritdoc />
    public override string ToString() => Outcome switch
    {
        CacheOutcome.Hit => $"hit in tier {Tier} ({Payload.Length} bytes)",
        CacheOutcome.Computed => $"computed ({Payload.Length} bytes)",
        _ => "miss",
    };
}

/// <summary>A tier as configured and its current state.</summary>
/// <param name="Index">Its position (0 = fastest).</param>
/// <param name="Name">The name used in statistics.</param>
/// <param name="DisplayName">The store location with credentials redacted.</param>
/// <param name="Access">Read-write or read-only (a read-only store forces read-only).</param>
/// <param name="IsAvailable">False when the tier could not be opened.</param>
/// <param name="Problem">Why the tier is unavailable, or null.</param>
/// <param name="CoolingDownUntil">Until when the tier is skipped after a failure, or null.</param>
/// <param name="Timeout">The per-call timeout.</param>
/// <param name="MaxSizeBytes">The size limit for eviction, or null.</param>
/// <param name="MaxAge">The age limit for eviction, or null.</param>
public sealed record CacheTierInfo(int Index, string Name, string DisplayName, CacheTierAccess Access, bool IsAvailable, string? Problem,
    DateTimeOffset? CoolingDownUntil, TimeSpan Timeout, long? MaxSizeBytes, TimeSpan? MaxAge);

/// <summary>The health of one tier.</summary>
/// <param name="Tier">The tier name.</param>
/// <param name="DisplayName">The redacted location.</param>
/// <param name="Health">The store's report (unhealthy on timeout or when the tier is unavailable).</param>
public sealed record TierHealth(string Tier, string DisplayName, BlobStoreHealth Health);

/// <summary>What eviction or vacuum removed.</summary>
/// <param name="EntriesRemoved">Entries deleted.</param>
/// <param name="BytesRemoved">Their stored size.</param>
/// <param name="EntriesKept">Entries examined and kept.</param>
/// <param name="BytesKept">Their stored size.</param>
/// <param name="Problems">Tiers that could not be processed, with the reason.</param>
public sealed record MaintenanceReport(long EntriesRemoved, long BytesRemoved, long EntriesKept, long BytesKept, IReadOnlyList<string> Problems)
{
    internal static MaintenanceReport Sum(IEnumerable<MaintenanceReport> reports)
    {
        var list = reports.ToList();
        return new MaintenanceReport(list.Sum(r => r.EntriesRemoved), list.Sum(r => r.BytesRemoved), list.Sum(r => r.EntriesKept), list.Sum(r => r.BytesKept),
            list.SelectMany(r => r.Problems).ToArray());
    }
}
