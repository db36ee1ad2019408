namespace Ptd.Storage;

/// <summary>
/// A flat key/value store of immutable byte blobs: the one small interface every storage plugin implements.
/// </summary>
/// <remarks>
/// <para>Rules for implementers (the conformance suite in <c>tests/Plugins.Tests</c> checks them):</para>
/// <list type="bullet">
/// <item>A missing key is a value (<see cref="BlobReadResult.Missing"/>, <c>false</c>), never an exception.</item>
/// <item>Other failures throw <see cref="BlobStoreException"/> (or <see cref="OperationCanceledException"/> when
/// the token is cancelled); messages contain no credentials.</item>
/// <item>A reader never sees a partially written value. A store on a server that cannot guarantee this (s3rver under
/// concurrent overwrites of one key) must at least detect the damage and throw <see cref="BlobStoreException"/> of kind
/// <see cref="BlobStoreErrorKind.Corrupt"/> rather than return wrong bytes; the cache's envelope checks the rest.</item>
/// <item>Every method honours its <see cref="CancellationToken"/>; all methods are safe to call concurrently.</item>
/// </list>
/// </remarks>
public interface IBlobStore : IAsyncDisposable
{
    /// <summary>The store's location for display: the URI with every credential and unknown query value redacted.</summary>
    string DisplayName { get; }

    /// <summary>What the store can do.</summary>
    BlobStoreCapabilities Capabilities { get; }

    /// <summary>Reads a value.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The bytes, or <see cref="BlobReadResult.Missing"/>.</returns>
    Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default);

    /// <summary>Stores a value atomically (readers see the old value, nothing, or the whole new value).</summary>
    /// <param name="key">The key.</param>
    /// <param name="content">The bytes to store.</param>
    /// <param name="mode">Whether an existing value is replaced.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the value was written.</returns>
    Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default);

    /// <summary>Says whether a key exists.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when the key exists.</returns>
    Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default);

    /// <summary>Deletes a value.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when a value was deleted, false when there was none.</returns>
    Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default);

    /// <summary>Lists the keys that start with <paramref name="prefix"/> (plain text match), in ordinal key order.</summary>
    /// <param name="prefix">Empty, a key, or a key followed by <c>/</c> (see <see cref="BlobKey.ValidatePrefix"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The matching entries.</returns>
    /// <exception cref="ArgumentException">The prefix is not valid.</exception>
    /// <exception cref="NotSupportedException">The store cannot list (<see cref="BlobStoreCapabilities.Listing"/> is false).</exception>
    Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes every value whose key starts with <paramref name="prefix"/>, a whole "directory" such as
    /// <c>trace/r4/g1/</c> (the cache drops an old generation this way).
    /// </summary>
    /// <remarks>
    /// <para>The default implementation lists the prefix and deletes the values one at a time, so stores written
    /// before this method existed keep working. Stores that can do better (a directory rename, batched or parallel
    /// deletes) override it and say so with <see cref="BlobStoreCapabilities.PrefixDelete"/>.</para>
    /// <para>Every value that existed when the call began is deleted whole; readers see each value complete or
    /// missing, never torn. A value written under the prefix while the call runs may survive or not.</para>
    /// </remarks>
    /// <param name="prefix">A valid key followed by <c>/</c> (see <see cref="BlobPrefixDeletion.EnsureValidPrefix"/>); the empty prefix is refused.</param>
    /// <param name="cancellationToken">Cancels the call (values already deleted stay deleted).</param>
    /// <returns>How many values were deleted.</returns>
    /// <exception cref="ArgumentException">The prefix is empty, invalid or does not end with <c>/</c>.</exception>
    /// <exception cref="NotSupportedException">The store cannot list and has no native prefix delete.</exception>
    Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default) =>
        BlobPrefixDeletion.ByListingAsync(this, prefix, cancellationToken);

    /// <summary>Checks that the store is reachable and usable; never throws except on cancellation.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A health report.</returns>
    Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default);
}
