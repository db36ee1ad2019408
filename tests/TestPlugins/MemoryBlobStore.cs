using System.Collections.Concurrent;
using System.Diagnostics;
using Ptd.Storage;

namespace Ptd.TestPlugins;

/// <summary>
/// An in-memory store. Stores opened with the same name share their contents (like a server), so tests can
/// open one location twice. Optional password: the first store of a name fixes it; later stores with another
/// password get <see cref="BlobStoreErrorKind.Unauthorized"/> on every call.
/// </summary>
public sealed class MemoryBlobStore : IBlobStore
{
    private static readonly ConcurrentDictionary<string, Bucket> Buckets = new(StringComparer.Ordinal);
    private readonly Bucket _bucket;
    private readonly bool _authorized;
    private readonly TimeProvider _time;

    /// <summary>Opens (or creates) the shared in-memory bucket <paramref name="name"/>.</summary>
    public MemoryBlobStore(string name, string? password = null, TimeProvider? time = null)
    {
        _bucket = Buckets.GetOrAdd(name, _ => new Bucket(password));
        _authorized = _bucket.Password == password;
        _time = time ?? TimeProvider.System;
        DisplayName = "mem://" + name + (password is null ? "" : "?passwordEnv=***");
    }

    /// <summary>Forgets every bucket (test isolation).</summary>
    public static void Clear() => Buckets.Clear();

    /// <summary>Number of stored entries.</summary>
    public int Count => _bucket.Items.Count;

    public string DisplayName { get; }

    public BlobStoreCapabilities Capabilities { get; } = new()
    {
        ConditionalPut = true,
        Listing = true,
        ServerSideHashes = false,
        ReadOnly = false,
        TracksAccessTime = true,
    };

    public Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        Check(cancellationToken);
        if (!_bucket.Items.TryGetValue(key.Value, out var item)) return Task.FromResult(BlobReadResult.Missing);
        item.LastAccessed = _time.GetUtcNow();
        return Task.FromResult(BlobReadResult.Hit(item.Content.ToArray()));
    }

    public Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default)
    {
        Check(cancellationToken);
        var now = _time.GetUtcNow();
        var item = new Item(content.ToArray(), now);
        if (mode == BlobWriteMode.CreateOnly)
            return Task.FromResult(_bucket.Items.TryAdd(key.Value, item) ? BlobWriteOutcome.Written : BlobWriteOutcome.AlreadyExists);
        _bucket.Items[key.Value] = item;
        return Task.FromResult(BlobWriteOutcome.Written);
    }

    public Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        Check(cancellationToken);
        return Task.FromResult(_bucket.Items.ContainsKey(key.Value));
    }

    public Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        Check(cancellationToken);
        return Task.FromResult(_bucket.Items.TryRemove(key.Value, out _));
    }

    public Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobKey.EnsureValidPrefix(prefix);
        Check(cancellationToken);
        IReadOnlyList<BlobInfo> list = _bucket.Items
            .Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => new BlobInfo(BlobKey.Parse(p.Key), p.Value.Content.Length, p.Value.Modified, p.Value.LastAccessed))
            .ToArray();
        return Task.FromResult(list);
    }

    public Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_authorized
            ? new BlobStoreHealth(true, DisplayName + ": in memory", TimeSpan.Zero)
            : new BlobStoreHealth(false, DisplayName + ": wrong password", TimeSpan.Zero));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void Check(CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        if (!_authorized) throw new BlobStoreException(BlobStoreErrorKind.Unauthorized, DisplayName + ": wrong password");
    }

    private sealed class Bucket(string? password)
    {
        public string? Password { get; } = password;
        public ConcurrentDictionary<string, Item> Items { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Item(byte[] content, DateTimeOffset modified)
    {
        public byte[] Content { get; } = content;
        public DateTimeOffset Modified { get; } = modified;
        public DateTimeOffset LastAccessed { get; set; } = modified;
    }
}
