using System.Diagnostics;

namespace Ptd.Storage.LocalDisk;

/// <summary>
/// A store in a local directory. Layout: every key segment but the last is a directory; the file sits in a
/// fan-out directory named <c>=</c> plus the first two characters of the last segment, e.g. key
/// <c>trace/r1/g1/0a1b2c</c> is the file <c>root/trace/r1/g1/=0a/0a1b2c</c>. <c>=</c> is not a key character,
/// so fan-out directories never collide with key directories, and temporary files start with <c>.</c>, which
/// no key segment can.
/// </summary>
/// <remarks>
/// Writes go to a temporary file in the destination directory, are flushed, then renamed over the target, so
/// readers in any process see either the old file, no file or the complete new one. Create-only writes publish with
/// <c>link(2)</c> on Unix (fails when the target exists) and a non-replacing move on Windows, both atomic across processes.
/// Reads set the file's last-access time so that eviction can be least-recently-used even on
/// <c>noatime</c>/<c>relatime</c> mounts. A writer killed between creating its temporary file and renaming it
/// leaves the temporary file behind (never a partial entry); <see cref="RemoveAbandonedScratchAsync"/> removes such
/// files once they are older than a grace period.
/// </remarks>
public sealed class LocalDiskStore : IBlobStore, IBlobStoreHousekeeping
{
    private const string FanOutMarker = "=";
    private const string TempPrefix = ".tmp-";
    private const string TrashPrefix = ".trash-";
    private readonly bool _fsync;
    private readonly long _maxReadBytes;
    private readonly TimeProvider _time;
    private readonly string _rootWithSeparator;

    /// <summary>Creates a store rooted at <paramref name="root"/> (created on first write).</summary>
    /// <param name="root">An absolute directory path.</param>
    /// <param name="displayName">How the store is shown.</param>
    /// <param name="fsync">Whether to flush files to the device before publishing them.</param>
    /// <param name="timeProvider">The clock used for access times.</param>
    /// <param name="maxReadBytes">The largest file read (see <see cref="BlobStoreContext.MaxReadBytes"/>); larger ones are refused unread.</param>
    public LocalDiskStore(string root, string displayName, bool fsync = true, TimeProvider? timeProvider = null, long maxReadBytes = BlobStoreContext.DefaultMaxReadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxReadBytes);
        _maxReadBytes = maxReadBytes;
        ArgumentNullException.ThrowIfNull(root);
        if (!Path.IsPathFullyQualified(root))
            throw new ArgumentException($"the store root '{root}' must be an absolute path", nameof(root));
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _rootWithSeparator = Root + Path.DirectorySeparatorChar;
        DisplayName = displayName ?? "file://" + Root;
        _fsync = fsync;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The absolute root directory.</summary>
    public string Root { get; }

    /// <inheritdoc />
    public string DisplayName { get; }

    /// <inheritdoc />
    public BlobStoreCapabilities Capabilities { get; } = new()
    {
        ConditionalPut = true,
        Listing = true,
        ServerSideHashes = false,
        ReadOnly = false,
        TracksAccessTime = true,
        PrefixDelete = true,
    };

    /// <summary>The file that holds <paramref name="key"/> (whether or not it exists).</summary>
    /// <param name="key">A key.</param>
    /// <returns>An absolute path inside <see cref="Root"/>.</returns>
    public string PathOf(BlobKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var segments = key.Value.Split('/');
        var last = segments[^1];
        var parts = new string[segments.Length + 2];
        parts[0] = Root;
        Array.Copy(segments, 0, parts, 1, segments.Length - 1);
        parts[^2] = FanOutMarker + (last.Length > 2 ? last[..2] : last);
        parts[^1] = last;
        var path = Path.Combine(parts);
        // Defence in depth: BlobKey's alphabet already makes this impossible.
        if (!path.StartsWith(_rootWithSeparator, StringComparison.Ordinal))
            throw new InvalidOperationException($"key '{key}' maps outside the store root");
        return path;
    }

    /// <inheritdoc />
    public async Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        try
        {
            byte[] bytes;
            await using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous | FileOptions.SequentialScan))
            {
                // The file's length is the declared length: an oversized file is refused before a byte is read.
                bytes = await BlobBodyReader.ReadAsync(file, file.Length, _maxReadBytes, $"{DisplayName}: read of '{key}'", cancellationToken).ConfigureAwait(false);
            }
            TouchAccessTime(path);
            return BlobReadResult.Hit(bytes);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return BlobReadResult.Missing;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Wrap("read", key, e);
        }
    }

    /// <inheritdoc />
    /// <remarks>A directory removed while the write runs (a concurrent <c>rm -rf</c> or clear of the cache) is
    /// recreated and the write started again (up to 40 times, pausing up to 20 ms between the later attempts): it is
    /// not a failure of the store.</remarks>
    public async Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await PutOnceAsync(path, content, mode, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < MaxWriteAttempts && e is DirectoryNotFoundException or FileNotFoundException)
            {
                // The directory (and our temporary file with it) vanished between creating and renaming: again —
                // at once the first times, then after a short pause, so that a recursive delete still walking the
                // tree (it removes what we recreate) can finish first.
                if (attempt >= 3) await Task.Delay(Math.Min(attempt, 20), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
            {
                // .NET reports EFBIG (a file over `ulimit -f` or the file system's limit) as ArgumentOutOfRangeException.
                throw Wrap("write", key, e);
            }
        }
    }

    // Each retry means the tree was removed during this very write; a cache cleared in a loop (the reliability
    // churn test; `LocalDiskRaceTests`: an `rm -rf` every millisecond or so) can do that several times in a row.
    // With the pauses above, 40 attempts wait up to about 0.6 s in all before the write is reported as failed.
    private const int MaxWriteAttempts = 40;

    /// <summary>Directory.CreateDirectory, with its race against a concurrent removal made retryable: mkdir reports
    /// EEXIST when the directory existed a moment ago, .NET then finds no directory there (a concurrent <c>rm -rf</c>
    /// removed it in between) and throws "the file already exists" (errno EEXIST). Without a file in the way that is
    /// the vanished-directory case the write loop retries (the directory may even exist again by now: another writer
    /// recreated it). A file in the way (at the path or one of its parents inside the store; .NET reports a parent as a
    /// missing directory) is an error that names the file, and is not retried.</summary>
    private void CreateDirectoryRacingRemoval(string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (IOException e) when (FileInTheWay(dir) is { } file)
        {
            throw new IOException($"'{file}' is a file where the cache needs a directory; move it away (or choose another cache directory)", e);
        }
        catch (IOException e) when (IsAlreadyExists(e))
        {
            throw new DirectoryNotFoundException($"the directory '{dir}' was removed while it was being created", e);
        }
    }

    private string? FileInTheWay(string dir)
    {
        for (var d = dir; d is not null && d.Length >= Root.Length; d = Path.GetDirectoryName(d))
            if (File.Exists(d)) return d;
        return null;
    }

    private async Task<BlobWriteOutcome> PutOnceAsync(string path, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken)
    {
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(dir, TempPrefix + Guid.NewGuid().ToString("N"));
        try
        {
            if (mode == BlobWriteMode.CreateOnly && File.Exists(path)) return BlobWriteOutcome.AlreadyExists;
            CreateDirectoryRacingRemoval(dir);
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                if (_fsync) stream.Flush(flushToDisk: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            if (mode == BlobWriteMode.Overwrite)
            {
                File.Move(temp, path, overwrite: true);
                return BlobWriteOutcome.Written;
            }
            if (TryLink(temp, path) is { } linked) return linked ? BlobWriteOutcome.Written : BlobWriteOutcome.AlreadyExists;
            try
            {
                File.Move(temp, path, overwrite: false);
                return BlobWriteOutcome.Written;
            }
            catch (IOException e) when (IsAlreadyExists(e) || File.Exists(path))
            {
                // Another writer got there first. Decided by the error itself, not only by looking again: a concurrent
                // clear may remove the winner's file between the failed rename and File.Exists.
                return BlobWriteOutcome.AlreadyExists;
            }
        }
        finally
        {
            TryDelete(temp);
        }
    }

    // EEXIST on Unix (.NET puts the errno in HResult); ERROR_FILE_EXISTS / ERROR_ALREADY_EXISTS on Windows.
    private static bool IsAlreadyExists(IOException e) =>
        OperatingSystem.IsWindows() ? e.HResult is unchecked((int)0x80070050) or unchecked((int)0x800700B7) : e.HResult == 17;

    /// <inheritdoc />
    public Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(File.Exists(PathOf(key)));
    }

    /// <inheritdoc />
    public Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var path = PathOf(key);
        try
        {
            if (!File.Exists(path)) return Task.FromResult(false);
            // Unlinking is atomic: a concurrent reader that already opened the file still reads all of it.
            File.Delete(path);
            return Task.FromResult(true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Wrap("delete", key, e);
        }
    }

    /// <summary>
    /// Deletes a whole directory of entries: renames it to a hidden trash directory at the root (one atomic
    /// <c>rename</c>), then deletes the trash. Readers see a miss from the moment of the rename, never a partial entry
    /// (a reader that already opened a file still reads all of it). Trash left by a process that died half-way is
    /// removed by the next call.
    /// </summary>
    /// <inheritdoc />
    public Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobPrefixDeletion.EnsureValidPrefix(prefix);
        cancellationToken.ThrowIfCancellationRequested();
        var dir = Path.Combine(Root, prefix[..^1].Replace('/', Path.DirectorySeparatorChar));
        // The creation time is in the name: renaming does not reliably change a directory's own timestamps.
        var trash = Path.Combine(Root, $"{TrashPrefix}{_time.GetUtcNow().ToUnixTimeSeconds()}-{Guid.NewGuid():N}");
        try
        {
            RemoveOldTrash();
            if (!Directory.Exists(dir)) return Task.FromResult(0L);
            Directory.Move(dir, trash);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.FromResult(0L); // deleted concurrently
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlobStoreException(e is UnauthorizedAccessException ? BlobStoreErrorKind.Unauthorized : BlobStoreErrorKind.Unavailable,
                $"{DisplayName}: delete of '{prefix}' failed: {e.Message}", e);
        }
        // The entries are gone for every reader now; what remains is freeing the space, counting entries as they go.
        // Unlinking is CPU-bound in the kernel, so the fan-out directories are deleted in parallel.
        long count = 0;
        string[] subdirectories;
        try
        {
            subdirectories = Directory.GetDirectories(trash);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            subdirectories = [];
        }
        Parallel.ForEach(subdirectories, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount), CancellationToken = cancellationToken },
            () => 0L, (dir, _, local) =>
            {
                DeleteTree(dir, ref local);
                return local;
            }, local => Interlocked.Add(ref count, local));
        DeleteTree(trash, ref count);
        return Task.FromResult(Interlocked.Read(ref count));
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobKey.EnsureValidPrefix(prefix);
        // Walk only below the deepest directory the prefix fully names.
        var cut = prefix.LastIndexOf('/');
        var start = cut < 0 ? Root : Path.Combine(Root, prefix[..cut].Replace('/', Path.DirectorySeparatorChar));
        var result = new List<BlobInfo>();
        try
        {
            if (Directory.Exists(start))
            {
                foreach (var file in Directory.EnumerateFiles(start, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 }))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (KeyOf(file) is not { } key || !key.Value.StartsWith(prefix, StringComparison.Ordinal)) continue;
                    var info = new FileInfo(file);
                    if (!info.Exists) continue; // deleted while listing
                    result.Add(new BlobInfo(key, info.Length, info.LastWriteTimeUtc, info.LastAccessTimeUtc));
                }
            }
        }
        catch (DirectoryNotFoundException) when (!Directory.Exists(start))
        {
            // Removed while being walked (a concurrent clear or rm -rf): what was listed so far is what exists.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: listing '{prefix}' failed: {e.Message}", e);
        }
        result.Sort((a, b) => a.Key.CompareTo(b.Key));
        return Task.FromResult<IReadOnlyList<BlobInfo>>(result);
    }

    /// <inheritdoc />
    public async Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var probe = Path.Combine(Root, TempPrefix + "health-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(Root);
            await File.WriteAllBytesAsync(probe, [1, 2, 3], cancellationToken).ConfigureAwait(false);
            var back = await File.ReadAllBytesAsync(probe, cancellationToken).ConfigureAwait(false);
            return back.Length == 3
                ? new BlobStoreHealth(true, $"{DisplayName}: writable", watch.Elapsed)
                : new BlobStoreHealth(false, $"{DisplayName}: a probe file read back wrong", watch.Elapsed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new BlobStoreHealth(false, $"{DisplayName}: {e.Message}", watch.Elapsed);
        }
        finally
        {
            TryDelete(probe);
        }
    }

    /// <inheritdoc />
    /// <remarks>Scratch files are the <c>.tmp-*</c> files of writes (and health probes) anywhere below the root; their
    /// age is their last write time, which a live writer keeps moving while it writes.</remarks>
    public Task<HousekeepingResult> RemoveAbandonedScratchAsync(DateTimeOffset olderThan, bool dryRun, CancellationToken cancellationToken = default)
    {
        long removed = 0, bytes = 0, kept = 0;
        try
        {
            if (!Directory.Exists(Root)) return Task.FromResult(new HousekeepingResult(0, 0, 0));
            var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
            foreach (var file in Directory.EnumerateFiles(Root, TempPrefix + "*", options))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var info = new FileInfo(file);
                if (!info.Exists) continue; // renamed into place or removed meanwhile
                if (info.LastWriteTimeUtc >= olderThan.UtcDateTime)
                {
                    kept++;
                    continue;
                }
                if (!dryRun && !TryDelete(file)) continue;
                removed++;
                bytes += info.Length;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: looking for abandoned temporary files failed: {Explain(e)}", e);
        }
        return Task.FromResult(new HousekeepingResult(removed, bytes, kept));
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <inheritdoc />
    public override string ToString() => DisplayName;

    // Inverse of PathOf; null for anything that is not a stored entry (temp files, foreign files).
    private BlobKey? KeyOf(string file)
    {
        var name = Path.GetFileName(file);
        var fanOut = Path.GetDirectoryName(file);
        if (fanOut is null || name.StartsWith('.')) return null;
        var fanOutName = Path.GetFileName(fanOut);
        if (!fanOutName.StartsWith(FanOutMarker, StringComparison.Ordinal)) return null;
        var parent = Path.GetDirectoryName(fanOut)!;
        var relative = parent.Length <= Root.Length ? "" : parent[(Root.Length + 1)..].Replace(Path.DirectorySeparatorChar, '/');
        var text = relative.Length == 0 ? name : relative + "/" + name;
        if (!BlobKey.TryParse(text, out var key)) return null;
        return PathOf(key!) == file ? key : null;
    }

    // Create-only publish on Unix: link(2) fails with EEXIST when the target exists, atomically, whereas .NET's
    // File.Move(overwrite: false) is an existence check followed by rename(2), which replaces a file created in
    // between (two concurrent writers could both "win"). True: linked (the caller deletes the temp name); false: the
    // target exists; null: not available here (Windows, or a file system without hard links), use File.Move (on
    // Windows MoveFileEx without REPLACE_EXISTING is atomic).
    private static bool? TryLink(string temp, string path)
    {
        if (OperatingSystem.IsWindows() || !_linkAvailable) return null;
        try
        {
            if (Link(temp, path) == 0) return true;
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            return errno == EExist ? false : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _linkAvailable = false;
            return null;
        }
    }

    private const int EExist = 17; // EEXIST on Linux and macOS
    private static bool _linkAvailable = true;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link(string oldPath, string newPath);

    private void TouchAccessTime(string path)
    {
        try
        {
            File.SetLastAccessTimeUtc(path, _time.GetUtcNow().UtcDateTime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The entry may have been evicted right after the read; the read itself succeeded.
        }
    }

    // Deletes a renamed directory in one pass: each file is unlinked as the enumeration meets it (no stat calls), and
    // counted when it is an entry (a file not starting with '.' inside a fan-out directory). Best effort: whatever
    // cannot be deleted stays in the trash, invisible, for a later call.
    private static void DeleteTree(string dir, ref long count)
    {
        try
        {
            var isFanOut = Path.GetFileName(dir).StartsWith(FanOutMarker, StringComparison.Ordinal);
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                try
                {
                    File.Delete(file);
                    if (isFanOut && !Path.GetFileName(file.AsSpan()).StartsWith(".")) count++;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left in the trash.
                }
            }
            foreach (var sub in Directory.EnumerateDirectories(dir)) DeleteTree(sub, ref count);
            Directory.Delete(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left in the trash.
        }
    }

    private void RemoveOldTrash()
    {
        if (!Directory.Exists(Root)) return;
        foreach (var old in Directory.EnumerateDirectories(Root, TrashPrefix + "*"))
        {
            // Another process may be deleting this trash right now; only leftovers older than a minute are taken.
            var stamp = Path.GetFileName(old)[TrashPrefix.Length..].Split('-')[0];
            if (long.TryParse(stamp, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) &&
                _time.GetUtcNow().ToUnixTimeSeconds() - seconds > 60)
                TryDeleteDirectory(old);
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Trash is invisible (its name starts with '.'); a later prefix delete removes what is left.
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            if (!File.Exists(path)) return false;
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temp file is invisible to readers (it starts with '.'); vacuum removes it later.
            return false;
        }
    }

    private BlobStoreException Wrap(string operation, BlobKey key, Exception e) =>
        new(e is UnauthorizedAccessException ? BlobStoreErrorKind.Unauthorized : BlobStoreErrorKind.Unavailable,
            $"{DisplayName}: {operation} of '{key}' failed: {Explain(e)}", e);

    // The usual ways a cache directory stops accepting writes, said plainly with the fix. On Unix .NET puts the errno
    // in IOException.HResult; EPERM/EACCES (chattr +i, permissions) arrive as UnauthorizedAccessException.
    private static string Explain(Exception e) => e switch
    {
        IOException { HResult: 28 or 122 } => $"the disk is full ({e.Message}); free space there or move the cache to another directory (PTD_CACHE_DIR or PTD_CACHE)",
        IOException { HResult: 30 } => $"the file system is read-only ({e.Message}); remount it read-write or move the cache to a writable directory (PTD_CACHE_DIR or PTD_CACHE)",
        IOException { HResult: 27 } or ArgumentOutOfRangeException =>
            $"the file is larger than allowed ({e.Message}: a file size limit such as `ulimit -f`, or the file system's); raise the limit or turn the cache off (PTD_CACHE=off)",
        UnauthorizedAccessException => $"permission denied ({e.Message}); make the directory writable (owner, mode, no immutable attribute) or move the cache to a writable directory (PTD_CACHE_DIR or PTD_CACHE)",
        _ => e.Message,
    };
}
