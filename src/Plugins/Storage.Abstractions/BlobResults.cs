namespace Ptd.Storage;

/// <summary>The result of <see cref="IBlobStore.GetAsync"/>: either the stored bytes or a miss. A miss is a value, not an exception.</summary>
public sealed class BlobReadResult
{
    private static readonly BlobReadResult MissingInstance = new(false, Array.Empty<byte>());

    private BlobReadResult(bool found, byte[] content)
    {
        Found = found;
        Content = content;
    }

    /// <summary>True when the key exists and <see cref="Content"/> holds its bytes.</summary>
    public bool Found { get; }

    /// <summary>The stored bytes; empty on a miss.</summary>
    public byte[] Content { get; }

    /// <summary>The result for a key that does not exist.</summary>
    public static BlobReadResult Missing => MissingInstance;

    /// <summary>The result for a key that exists.</summary>
    /// <param name="content">The stored bytes (the result takes ownership of the array).</param>
    /// <returns>A found result.</returns>
    public static BlobReadResult Hit(byte[] content) => new(true, content ?? throw new ArgumentNullException(nameof(content)));
}

/// <summary>How <see cref="IBlobStore.PutAsync"/> treats an existing value under the same key.</summary>
public enum BlobWriteMode
{
    /// <summary>Replace any existing value (last writer wins).</summary>
    Overwrite = 0,

    /// <summary>
    /// Write only if the key does not exist. Atomic on stores whose <see cref="BlobStoreCapabilities.ConditionalPut"/>
    /// is true; elsewhere a best-effort existence check followed by a write (safe for content-determined values).
    /// </summary>
    CreateOnly = 1,
}

/// <summary>What <see cref="IBlobStore.PutAsync"/> did.</summary>
public enum BlobWriteOutcome
{
    /// <summary>The value was stored.</summary>
    Written = 0,

    /// <summary>Nothing was written because the key already existed (<see cref="BlobWriteMode.CreateOnly"/> only).</summary>
    AlreadyExists = 1,
}

/// <summary>One entry returned by <see cref="IBlobStore.ListAsync"/>.</summary>
public sealed class BlobInfo
{
    /// <summary>Creates a listing entry.</summary>
    /// <param name="key">The key.</param>
    /// <param name="length">The stored length in bytes.</param>
    /// <param name="lastModified">When the value was last written.</param>
    /// <param name="lastAccessed">When the value was last read, for stores that track it; otherwise null.</param>
    public BlobInfo(BlobKey key, long length, DateTimeOffset lastModified, DateTimeOffset? lastAccessed = null)
    {
        Key = key ?? throw new ArgumentNullException(nameof(key));
        Length = length;
        LastModified = lastModified;
        LastAccessed = lastAccessed;
    }

    /// <summary>The key.</summary>
    public BlobKey Key { get; }

    /// <summary>The stored length in bytes.</summary>
    public long Length { get; }

    /// <summary>When the value was last written.</summary>
    public DateTimeOffset LastModified { get; }

    /// <summary>When the value was last read, for stores that track it (see <see cref="BlobStoreCapabilities.TracksAccessTime"/>); otherwise null.</summary>
    public DateTimeOffset? LastAccessed { get; }

    /// <summary>The time used for least-recently-used ordering: <see cref="LastAccessed"/> when known, else <see cref="LastModified"/>.</summary>
    public DateTimeOffset LastUsed => LastAccessed is { } a && a > LastModified ? a : LastModified;
}

/// <summary>What a store can do; the host adapts its policies to it.</summary>
public sealed class BlobStoreCapabilities
{
    /// <summary>True when <see cref="BlobWriteMode.CreateOnly"/> is atomic on the server (e.g. Azure or S3 <c>If-None-Match: *</c>, or an exclusive rename).</summary>
    public bool ConditionalPut { get; init; }

    /// <summary>True when <see cref="IBlobStore.ListAsync"/> is supported (needed for eviction and vacuum).</summary>
    public bool Listing { get; init; }

    /// <summary>True when the server checks an integrity hash of uploaded content (e.g. Content-MD5 or a CRC).</summary>
    public bool ServerSideHashes { get; init; }

    /// <summary>True when the store refuses writes and deletes (for example an anonymous S3 bucket).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>True when <see cref="BlobInfo.LastAccessed"/> is maintained on reads (needed for true LRU eviction).</summary>
    public bool TracksAccessTime { get; init; }

    /// <summary>
    /// True when <see cref="IBlobStore.DeletePrefixAsync"/> is implemented natively and is much cheaper than listing the
    /// prefix and deleting one value at a time (e.g. one directory rename, or batched deletes of 1,000 objects per
    /// request). False means the default implementation (list, then delete each value) is used: it works, just slowly.
    /// </summary>
    public bool PrefixDelete { get; init; }
}

/// <summary>The result of <see cref="IBlobStore.CheckHealthAsync"/>.</summary>
public sealed class BlobStoreHealth
{
    /// <summary>Creates a health report.</summary>
    /// <param name="isHealthy">Whether the store answered as expected.</param>
    /// <param name="message">A short description, free of credentials.</param>
    /// <param name="latency">How long the check took.</param>
    public BlobStoreHealth(bool isHealthy, string message, TimeSpan latency)
    {
        IsHealthy = isHealthy;
        Message = message ?? "";
        Latency = latency;
    }

    /// <summary>Whether the store answered as expected.</summary>
    public bool IsHealthy { get; }

    /// <summary>A short description, free of credentials.</summary>
    public string Message { get; }

    /// <summary>How long the check took.</summary>
    public TimeSpan Latency { get; }

    /// <inheritdoc />
    public override string ToString() => $"{(IsHealthy ? "healthy" : "unhealthy")} ({Latency.TotalMilliseconds:F0} ms): {Message}";
}
