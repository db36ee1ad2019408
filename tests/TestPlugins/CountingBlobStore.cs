using Ptd.Storage;

namespace Ptd.TestPlugins;

/// <summary>
/// Wraps a store and counts the calls that remove entries. With <c>nativePrefixDelete = false</c> it hides the inner
/// store's native <see cref="IBlobStore.DeletePrefixAsync"/> and behaves like a plugin written before that method
/// existed (the interface's default: list, then delete one by one), which is the baseline the benchmark and the
/// tests compare against.
/// </summary>
public sealed class CountingBlobStore : IBlobStore
{
    private readonly IBlobStore _inner;
    private readonly bool _native;
    private int _deletes;
    private int _prefixDeletes;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public CountingBlobStore(IBlobStore inner, bool nativePrefixDelete)
    {
        _inner = inner;
        _native = nativePrefixDelete && inner.Capabilities.PrefixDelete;
        var c = inner.Capabilities;
        Capabilities = new BlobStoreCapabilities
        {
            ConditionalPut = c.ConditionalPut, Listing = c.Listing, ServerSideHashes = c.ServerSideHashes,
            ReadOnly = c.ReadOnly, TracksAccessTime = c.TracksAccessTime, PrefixDelete = _native,
        };
    }

    /// <summary>Calls of <see cref="DeleteAsync"/> (including those made by the default prefix delete).</summary>
    public int Deletes => Volatile.Read(ref _deletes);

    /// <summary>Calls of <see cref="DeletePrefixAsync"/>.</summary>
    public int PrefixDeletes => Volatile.Read(ref _prefixDeletes);

    public string DisplayName => _inner.DisplayName;

    public BlobStoreCapabilities Capabilities { get; }

    public Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default) => _inner.GetAsync(key, cancellationToken);

    public Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default) =>
        _inner.PutAsync(key, content, mode, cancellationToken);

    public Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default) => _inner.ExistsAsync(key, cancellationToken);

    public Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _deletes);
        return _inner.DeleteAsync(key, cancellationToken);
    }

    public Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _prefixDeletes);
        return _native ? _inner.DeletePrefixAsync(prefix, cancellationToken) : BlobPrefixDeletion.ByListingAsync(this, prefix, cancellationToken);
    }

    public Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default) => _inner.ListAsync(prefix, cancellationToken);

    public Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default) => _inner.CheckHealthAsync(cancellationToken);

    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
