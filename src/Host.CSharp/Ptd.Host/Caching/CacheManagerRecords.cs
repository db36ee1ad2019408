using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>One stored cache entry as a listing shows it.</summary>
/// <param name="Tier">The tier (or store) holding it.</param>
/// <param name="StorageKey">The full storage key, <c>{kind}/r{revision}/g{generation}/{key}</c>.</param>
/// <param name="Layer">The layer name (<c>traces</c>, …), or null for kinds no layer owns.</param>
/// <param name="Kind">The artifact kind name.</param>
/// <param name="FormatRevision">The format revision in the key.</param>
/// <param name="Generation">The generation in the key.</param>
/// <param name="Key">The content key (for traces the ModelKey hex).</param>
/// <param name="Bytes">The stored (envelope) size.</param>
/// <param name="LastModified">When it was written.</param>
/// <param name="LastUsed">When it was last read or written (as far as the store tracks it).</param>
/// <param name="IsStale">True when it belongs to another format revision or generation: never read as current.</param>
public sealed record CacheEntryInfo(string Tier, string StorageKey, string? Layer, string Kind, int FormatRevision, int Generation, string Key,
    long Bytes, DateTimeOffset LastModified, DateTimeOffset LastUsed, bool IsStale);

/// <summary>What a tier holds of one artifact kind.</summary>
/// <param name="Kind">The artifact kind name.</param>
/// <param name="Layer">The layer name, or null.</param>
/// <param name="CurrentRevision">The revision this build uses, or null when unknown.</param>
/// <param name="Entries">All entries of the kind (every revision and generation).</param>
/// <param name="Bytes">Their size.</param>
/// <param name="StaleEntries">Entries of another revision or generation.</param>
/// <param name="StaleBytes">Their size.</param>
/// <param name="Oldest">The oldest entry's write time, or null.</param>
/// <param name="Newest">The newest entry's write time, or null.</param>
/// <param name="ByRevision">Entry counts by <c>r{revision}/g{generation}</c>.</param>
/// <param name="ProducerVersions">Entry counts by the producer version in their envelopes (only when headers were read), else null.</param>
public sealed record KindStatus(string Kind, string? Layer, int? CurrentRevision, long Entries, long Bytes, long StaleEntries, long StaleBytes,
    DateTimeOffset? Oldest, DateTimeOffset? Newest, IReadOnlyDictionary<string, long> ByRevision, IReadOnlyDictionary<string, long>? ProducerVersions);

/// <summary>The state of one tier.</summary>
/// <param name="Tier">The tier name.</param>
/// <param name="Index">Its position (0 = fastest).</param>
/// <param name="Location">The location with credentials redacted.</param>
/// <param name="Access">read-write or read-only.</param>
/// <param name="Available">False when the tier could not be opened.</param>
/// <param name="CanList">Whether the store can list its entries (needed for everything but reads).</param>
/// <param name="Problem">Why the tier could not be examined, or null.</param>
/// <param name="Timeout">The per-call timeout.</param>
/// <param name="MaxSizeBytes">The size limit for automatic eviction, or null.</param>
/// <param name="MaxAge">The age limit for automatic eviction, or null.</param>
/// <param name="Entries">Cache entries (every kind, revision and generation).</param>
/// <param name="Bytes">Their size.</param>
/// <param name="StaleEntries">Entries of another revision or generation of a known layer.</param>
/// <param name="StaleBytes">Their size.</param>
/// <param name="ForeignObjects">Objects without the cache key layout (never touched).</param>
/// <param name="Oldest">The oldest entry's write time.</param>
/// <param name="Newest">The newest entry's write time.</param>
/// <param name="Kinds">Per kind, layers first.</param>
/// <param name="Health">The store's health report (when checked).</param>
public sealed record TierStatus(string Tier, int Index, string Location, string Access, bool Available, bool CanList, string? Problem,
    TimeSpan Timeout, long? MaxSizeBytes, TimeSpan? MaxAge, long Entries, long Bytes, long StaleEntries, long StaleBytes, long ForeignObjects,
    DateTimeOffset? Oldest, DateTimeOffset? Newest, IReadOnlyList<KindStatus> Kinds, BlobStoreHealth? Health);

/// <summary>The state of the whole cache (<c>ptd cache status</c>).</summary>
/// <param name="Generation">The cache generation.</param>
/// <param name="ProducerVersion">What this build writes into envelopes.</param>
/// <param name="Layers">The layers and their current revisions.</param>
/// <param name="Tiers">Per tier.</param>
/// <param name="Warnings">Configuration warnings (tiers left out, plugins that failed).</param>
/// <param name="Counters">The persisted hit/miss counters (see <see cref="CacheStatisticsLedger"/>), or null.</param>
public sealed record CacheStatusReport(int Generation, string ProducerVersion, IReadOnlyList<CacheLayer> Layers, IReadOnlyList<TierStatus> Tiers,
    IReadOnlyList<string> Warnings, PersistedCacheStatistics? Counters);

/// <summary>An entry found bad by verification.</summary>
/// <param name="Tier">The tier.</param>
/// <param name="StorageKey">The storage key.</param>
/// <param name="Reason">The rejection reason (<see cref="EnvelopeRejectReason"/> name, or <c>ReadFailed</c>).</param>
/// <param name="Detail">What was wrong.</param>
/// <param name="Removed">Whether it was deleted.</param>
public sealed record VerifyProblem(string Tier, string StorageKey, string Reason, string Detail, bool Removed);

/// <summary>The outcome of <see cref="CacheManager.VerifyAsync"/>.</summary>
/// <param name="Checked">Entries read and checked.</param>
/// <param name="Valid">Entries whose envelope and payload hash are correct.</param>
/// <param name="Bad">Entries that failed.</param>
/// <param name="Removed">Bad entries deleted.</param>
/// <param name="BytesChecked">Bytes read.</param>
/// <param name="Problems">The bad entries.</param>
/// <param name="TierProblems">Tiers that could not be verified, with the reason.</param>
/// <param name="ProducerVersions">Valid entries by producer version.</param>
public sealed record VerifyReport(long Checked, long Valid, long Bad, long Removed, long BytesChecked, IReadOnlyList<VerifyProblem> Problems,
    IReadOnlyList<string> TierProblems, IReadOnlyDictionary<string, long> ProducerVersions);

/// <summary>What was removed from one tier by clear or vacuum.</summary>
/// <param name="Tier">The tier.</param>
/// <param name="EntriesRemoved">Entries deleted (each one whole: one object per entry).</param>
/// <param name="BytesRemoved">Their size.</param>
/// <param name="EntriesKept">Entries examined and kept.</param>
/// <param name="BytesKept">Their size.</param>
/// <param name="RemovedByReason">Counts by reason (<c>stale</c>, <c>age</c>, <c>size</c>, <c>clear</c>).</param>
/// <param name="Problems">What could not be done.</param>
/// <param name="ScratchRemoved">Abandoned temporary files removed (vacuum only; see <see cref="VacuumOptions.ScratchGracePeriod"/>).</param>
/// <param name="ScratchBytesRemoved">Their size.</param>
public sealed record TierRemoval(string Tier, long EntriesRemoved, long BytesRemoved, long EntriesKept, long BytesKept,
    IReadOnlyDictionary<string, long> RemovedByReason, IReadOnlyList<string> Problems, long ScratchRemoved = 0, long ScratchBytesRemoved = 0);

/// <summary>The outcome of clear or vacuum over several tiers.</summary>
/// <param name="Tiers">Per tier.</param>
/// <param name="DryRun">True when nothing was deleted (the figures say what would be).</param>
public sealed record RemovalReport(IReadOnlyList<TierRemoval> Tiers, bool DryRun)
{
    /// <summary>Entries removed in all tiers.</summary>
    public long EntriesRemoved => Tiers.Sum(t => t.EntriesRemoved);

    /// <summary>Bytes removed in all tiers.</summary>
    public long BytesRemoved => Tiers.Sum(t => t.BytesRemoved);

    /// <summary>Every problem.</summary>
    public IReadOnlyList<string> Problems => Tiers.SelectMany(t => t.Problems).ToArray();
}

/// <summary>What <see cref="CacheManager.VacuumAsync"/> removes.</summary>
public sealed class VacuumOptions
{
    /// <summary>Remove least recently used entries until each tier holds at most this many bytes (null: no limit).</summary>
    public long? MaxSizeBytes { get; set; }

    /// <summary>Remove entries not used for this long (null: no limit).</summary>
    public TimeSpan? MaxAge { get; set; }

    /// <summary>Remove every entry of a known layer written by another format revision or generation.</summary>
    public bool Stale { get; set; }

    /// <summary>Only this tier (null: every read-write tier).</summary>
    public string? Tier { get; set; }

    /// <summary>Only these layers (null: all).</summary>
    public IReadOnlyList<CacheLayer>? Layers { get; set; }

    /// <summary>Report what would be removed without removing it.</summary>
    public bool DryRun { get; set; }

    /// <summary>
    /// Temporary files of writes older than this are abandoned (their writer died) and removed; younger ones may
    /// belong to a running writer and are kept (default 1 hour: far longer than any single write).
    /// </summary>
    public TimeSpan ScratchGracePeriod { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>One entry of an export archive's manifest.</summary>
/// <param name="Path">The archive member holding the envelope, <c>entries/{storageKey}</c>.</param>
/// <param name="StorageKey">The storage key.</param>
/// <param name="Kind">The artifact kind name.</param>
/// <param name="Revision">The format revision.</param>
/// <param name="Generation">The generation.</param>
/// <param name="Key">The content key.</param>
/// <param name="ProducerVersion">The producer version recorded in the envelope.</param>
/// <param name="PayloadSha256">The payload's SHA-256 (lowercase hex), as recorded in the envelope.</param>
/// <param name="PayloadLength">The payload length.</param>
/// <param name="Size">The member's size: the whole envelope, in bytes.</param>
/// <param name="EnvelopeSha256">The SHA-256 of the whole envelope (lowercase hex).</param>
public sealed record CacheArchiveEntry(string Path, string StorageKey, string Kind, int Revision, int Generation, string Key,
    string ProducerVersion, string PayloadSha256, long PayloadLength, long Size, string EnvelopeSha256);

/// <summary>The outcome of <see cref="CacheManager.ExportAsync"/>.</summary>
/// <param name="Tier">The tier exported from.</param>
/// <param name="Entries">Entries written to the archive.</param>
/// <param name="Bytes">Their envelope bytes.</param>
/// <param name="Skipped">Entries left out (stale or failing verification), with the reason.</param>
public sealed record ExportReport(string Tier, long Entries, long Bytes, IReadOnlyList<string> Skipped);

/// <summary>An archive entry that was not imported.</summary>
/// <param name="StorageKey">Its storage key.</param>
/// <param name="Reason">Why.</param>
public sealed record ImportRefusal(string StorageKey, string Reason);

/// <summary>The outcome of <see cref="CacheManager.ImportAsync"/>.</summary>
/// <param name="Tier">The tier imported into.</param>
/// <param name="Entries">Entries in the manifest.</param>
/// <param name="Imported">Entries written.</param>
/// <param name="AlreadyPresent">Entries the tier already held.</param>
/// <param name="Refused">Entries refused (foreign revision or generation, failed verification).</param>
/// <param name="Bytes">Bytes written.</param>
public sealed record ImportReport(string Tier, long Entries, long Imported, long AlreadyPresent, IReadOnlyList<ImportRefusal> Refused, long Bytes);

/// <summary>The outcome of <see cref="CacheManager.SyncAsync"/>.</summary>
/// <param name="From">The source (redacted).</param>
/// <param name="To">The destination (redacted).</param>
/// <param name="Considered">Current entries in the source.</param>
/// <param name="AlreadyPresent">Entries the destination already held (skipped: this is what makes sync resumable).</param>
/// <param name="Copied">Entries copied.</param>
/// <param name="BytesCopied">Their size.</param>
/// <param name="Rejected">Source entries that failed verification (not copied).</param>
/// <param name="Problems">Failures (reads, writes), with the key.</param>
public sealed record SyncReport(string From, string To, long Considered, long AlreadyPresent, long Copied, long BytesCopied, long Rejected, IReadOnlyList<string> Problems);

/// <summary>Progress of a long management operation.</summary>
/// <param name="Operation">What is running, e.g. <c>sync</c>.</param>
/// <param name="Done">Items done.</param>
/// <param name="Total">Items in all.</param>
/// <param name="Bytes">Bytes moved so far.</param>
/// <param name="Current">The item being processed, or null.</param>
public sealed record CacheProgress(string Operation, long Done, long Total, long Bytes, string? Current);

/// <summary>What prewarming did for one model and layer.</summary>
/// <param name="Model">The model as given.</param>
/// <param name="Layer">The layer (<c>traces</c>, <c>kernels</c>, <c>code</c>).</param>
/// <param name="Key">The content key (a trace's ModelKey hex; a kernel's digest), or empty when nothing was looked up.</param>
/// <param name="Outcome">
/// <c>stored</c> (computed now and written), <c>present</c> (already cached), <c>skipped</c> (nothing to do for this
/// model, e.g. no parameters, so no likelihood kernel), <c>not-built</c> (a layer this build deliberately does not
/// produce), <c>unavailable</c> (no producer) or <c>failed</c>.
/// </param>
/// <param name="Bytes">The payload size.</param>
/// <param name="Milliseconds">How long it took.</param>
/// <param name="Detail">Extra facts (ops, vertices) or the failure.</param>
public sealed record PrewarmItem(string Model, string Layer, string Key, string Outcome, long Bytes, double Milliseconds, string? Detail);
