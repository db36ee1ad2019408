namespace Ptd.Storage;

/// <summary>
/// Optional: a store that leaves its own scratch objects behind when a writer dies (a local directory's temporary
/// files after <c>kill -9</c>, a power loss or a full disk) and can find and remove them. The host's vacuum calls it;
/// stores without such leftovers (object stores that upload atomically) need not implement it.
/// </summary>
public interface IBlobStoreHousekeeping
{
    /// <summary>
    /// Removes the store's abandoned scratch objects last written before <paramref name="olderThan"/>. Newer ones are
    /// kept: they may belong to a writer that is still running (the grace period is the caller's choice).
    /// </summary>
    /// <param name="olderThan">Only scratch objects last written before this instant are removed.</param>
    /// <param name="dryRun">Count them without removing them.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was (or would be) removed.</returns>
    Task<HousekeepingResult> RemoveAbandonedScratchAsync(DateTimeOffset olderThan, bool dryRun, CancellationToken cancellationToken = default);
}

/// <summary>What <see cref="IBlobStoreHousekeeping.RemoveAbandonedScratchAsync"/> removed.</summary>
/// <param name="Removed">Scratch objects removed (or, on a dry run, that would be).</param>
/// <param name="Bytes">Their size.</param>
/// <param name="Kept">Scratch objects younger than the grace period, left alone.</param>
public sealed record HousekeepingResult(long Removed, long Bytes, long Kept);
