using Ptd.Storage;

namespace Ptd.TestPlugins;

/// <summary>What a <see cref="FaultyBlobStore"/> does to each call.</summary>
public enum FaultMode
{
    /// <summary>Pass through.</summary>
    None,

    /// <summary>Throw <see cref="BlobStoreException"/> (kind Unavailable).</summary>
    Error,

    /// <summary>Never answer and ignore cancellation (a hung server).</summary>
    Hang,

    /// <summary>Throw an exception that is not a <see cref="BlobStoreException"/> (a buggy plugin).</summary>
    Crash,

    /// <summary>Return the stored bytes with one byte flipped.</summary>
    CorruptReads,

    /// <summary>Return only the first half of the stored bytes.</summary>
    TruncateReads,

    /// <summary>Reads throw <see cref="BlobStoreException"/> of kind Corrupt (the store detected damage itself).</summary>
    ReportCorrupt,
}

/// <summary>
/// Wraps a store and injects faults. The mode is read before every call from <see cref="ModeSource"/>, so a test can
/// change it mid-run even when the store was created inside a plugin load context.
/// </summary>
public sealed class FaultyBlobStore : IBlobStore
{
    private readonly IBlobStore _inner;
    private int _calls;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="modeSource"/> returns the current fault mode.</summary>
    public FaultyBlobStore(IBlobStore inner, Func<FaultMode> modeSource, string? displayName = null)
    {
        _inner = inner;
        ModeSource = modeSource;
        DisplayName = displayName ?? "faulty+" + inner.DisplayName;
    }

    /// <summary>Creates a store whose mode is set through <see cref="Mode"/>.</summary>
    public FaultyBlobStore(IBlobStore inner, FaultMode mode = FaultMode.None)
        : this(inner, () => FaultMode.None)
    {
        Mode = mode;
        ModeSource = () => Mode;
    }

    /// <summary>The mode used when the store was built without a mode source.</summary>
    public FaultMode Mode { get; set; }

    /// <summary>Where the mode is read from.</summary>
    public Func<FaultMode> ModeSource { get; }

    /// <summary>Calls made to the store (including failed ones).</summary>
    public int Calls => Volatile.Read(ref _calls);

    public string DisplayName { get; }

    // Prefix deletes go through the interface's default (list, then delete), so that every removal meets the faults.
    public BlobStoreCapabilities Capabilities => new()
    {
        ConditionalPut = _inner.Capabilities.ConditionalPut, Listing = _inner.Capabilities.Listing,
        ServerSideHashes = _inner.Capabilities.ServerSideHashes, ReadOnly = _inner.Capabilities.ReadOnly,
        TracksAccessTime = _inner.Capabilities.TracksAccessTime, PrefixDelete = false,
    };

    public async Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        var mode = await Enter().ConfigureAwait(false);
        var r = await _inner.GetAsync(key, cancellationToken).ConfigureAwait(false);
        if (mode == FaultMode.ReportCorrupt && r.Found)
            throw new BlobStoreException(BlobStoreErrorKind.Corrupt, DisplayName + $": '{key}' does not match its checksum");
        if (!r.Found) return r;
        var bytes = r.Content.ToArray();
        return mode switch
        {
            FaultMode.CorruptReads when bytes.Length > 0 => BlobReadResult.Hit(Flip(bytes)),
            FaultMode.TruncateReads => BlobReadResult.Hit(bytes[..(bytes.Length / 2)]),
            _ => r,
        };
    }

    public async Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default)
    {
        await Enter().ConfigureAwait(false);
        return await _inner.PutAsync(key, content, mode, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        await Enter().ConfigureAwait(false);
        return await _inner.ExistsAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        await Enter().ConfigureAwait(false);
        return await _inner.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        await Enter().ConfigureAwait(false);
        return await _inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
    }

    public async Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        var mode = ModeSource();
        if (mode == FaultMode.Hang) await Task.Delay(Timeout.Infinite, CancellationToken.None).ConfigureAwait(false);
        return mode is FaultMode.Error or FaultMode.Crash
            ? new BlobStoreHealth(false, DisplayName + ": injected fault", TimeSpan.Zero)
            : await _inner.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task<FaultMode> Enter()
    {
        Interlocked.Increment(ref _calls);
        var mode = ModeSource();
        switch (mode)
        {
            case FaultMode.Error:
                throw new BlobStoreException(BlobStoreErrorKind.Unavailable, DisplayName + ": injected failure");
            case FaultMode.Crash:
                throw new InvalidOperationException("injected plugin bug");
            case FaultMode.Hang:
                // Deliberately ignores cancellation: the host must time out on its own.
                await Task.Delay(TimeSpan.FromMinutes(10), CancellationToken.None).ConfigureAwait(false);
                break;
        }
        return mode;
    }

    private static byte[] Flip(byte[] bytes)
    {
        bytes[bytes.Length / 2] ^= 0x5A;
        return bytes;
    }
}
