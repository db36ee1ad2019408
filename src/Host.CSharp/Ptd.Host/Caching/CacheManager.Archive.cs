using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Export to and import from <c>.tar.gz</c> archives (see <see cref="CacheArchive"/>).</summary>
public sealed partial class CacheManager
{
    /// <summary>
    /// Writes the current, valid entries of the given layers in one tier to a <c>.tar.gz</c> archive with a manifest.
    /// Stale entries and entries failing verification are left out (and reported). The file appears atomically.
    /// </summary>
    /// <param name="path">The archive to write (replaced if it exists).</param>
    /// <param name="layers">The layers (null: all).</param>
    /// <param name="tier">The tier to export from (null: the first tier that can list).</param>
    /// <param name="progress">Receives progress per entry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="PtdException">No tier can be exported from, or the tier cannot be listed, or the file cannot be written.</exception>
    public async Task<ExportReport> ExportAsync(string path, IReadOnlyList<CacheLayer>? layers = null, string? tier = null,
        IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var source = tier is not null ? TierStore(tier)
            : TierStores().FirstOrDefault(t => t.Store?.Capabilities.Listing == true)
              ?? throw new PtdException("no cache tier can be exported from (none is available and able to list its entries)");
        var listing = await ListStoreAsync(source, cancellationToken).ConfigureAwait(false);
        if (listing.Problem is not null) throw new PtdException(listing.Problem);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new PtdException($"cannot write '{path}': the directory '{dir}' does not exist");
        var spool = Path.Combine(dir, $".ptd-export-{Guid.NewGuid():N}");
        var temp = full + $".{Guid.NewGuid():N}.tmp";
        var skipped = new List<string>();
        var entries = new List<CacheArchiveEntry>();
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        long bytes = 0;
        try
        {
            Directory.CreateDirectory(spool);
            var candidates = listing.Entries.Where(e => InLayers(e, layers)).ToList();
            foreach (var e in candidates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (e.IsStale)
                {
                    skipped.Add($"{e.StorageKey}: stale (another format revision or generation)");
                    continue;
                }
                byte[] content;
                try
                {
                    var r = await Within(c => source.Store!.GetAsync(BlobKey.Parse(e.StorageKey), c), source.Timeout, $"tier {source.Name}: read", cancellationToken).ConfigureAwait(false);
                    if (!r.Found)
                    {
                        skipped.Add($"{e.StorageKey}: removed while exporting");
                        continue;
                    }
                    content = r.Content;
                }
                catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
                {
                    skipped.Add($"{e.StorageKey}: read failed: {Describe(ex)}");
                    continue;
                }
                var v = CacheEnvelope.Verify(content, e.StorageKey, Options.MaxEntryBytes);
                if (!v.IsValid)
                {
                    skipped.Add($"{e.StorageKey}: fails verification ({v.Reason}: {v.Detail})");
                    continue;
                }
                var file = Path.Combine(spool, entries.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await File.WriteAllBytesAsync(file, content, cancellationToken).ConfigureAwait(false);
                var entry = new CacheArchiveEntry(CacheArchive.EntryPrefix + e.StorageKey, e.StorageKey, e.Kind, e.FormatRevision, e.Generation, e.Key,
                    v.Header!.ProducerVersion, v.Header.PayloadSha256, v.Header.PayloadLength, content.Length, CacheArchive.Sha256(content));
                files[entry.Path] = file;
                entries.Add(entry);
                bytes += content.Length;
                progress?.Report(new CacheProgress("export", entries.Count + skipped.Count, candidates.Count, bytes, e.StorageKey));
            }
            var manifest = new CacheArchiveManifest(CacheArchive.FormatName, Time.GetUtcNow(), Options.ProducerVersion, Generation, entries);
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await CacheArchive.WriteAsync(output, manifest, e => File.OpenRead(files[e.Path]), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PtdException($"cannot write '{path}': {e.Message}", e);
        }
        finally
        {
            TryDelete(temp);
            try
            {
                if (Directory.Exists(spool)) Directory.Delete(spool, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log($"could not remove the temporary directory {spool}: {e.Message}");
            }
        }
        return new ExportReport(source.Name, entries.Count, bytes, skipped);
    }

    /// <summary>
    /// Imports an archive written by <see cref="ExportAsync"/> into a read-write tier. The archive is read twice: first
    /// every member is checked (structure, manifest, envelope, revision) without writing anything, so an unsafe archive
    /// leaves the cache untouched; then the accepted entries are checked again and written (create-only).
    /// </summary>
    /// <param name="path">The archive.</param>
    /// <param name="tier">The tier to import into (null: the first read-write tier).</param>
    /// <param name="progress">Receives progress per entry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was imported and what was refused (foreign revision or generation, failed verification).</returns>
    /// <exception cref="UnsafeArchiveException">The archive is malformed or unsafe; nothing was written.</exception>
    /// <exception cref="PtdException">The file cannot be read, or there is no read-write tier.</exception>
    public async Task<ImportReport> ImportAsync(string path, string? tier = null, IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new PtdException($"archive '{path}' does not exist");
        var target = WritableTargets(tier).FirstOrDefault(t => t.Store is not null)
                     ?? throw new PtdException("there is no read-write cache tier to import into (PTD_CACHE names none)");
        // Pass 1: check everything, write nothing.
        var total = 0L;
        var refused = new Dictionary<string, ImportRefusal>(StringComparer.Ordinal);
        var missing = await ScanArchiveAsync(path, m => total = m.Entries.Count, (e, bytes) =>
        {
            if (CheckImport(e, bytes) is { } why) refused[e.StorageKey] = new ImportRefusal(e.StorageKey, why);
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
        foreach (var m in missing) refused[m.StorageKey] = new ImportRefusal(m.StorageKey, "listed in the manifest but missing from the archive");
        // Pass 2: write what passed (checked again: the file could have changed in between).
        long imported = 0, present = 0, bytesWritten = 0, done = 0;
        await ScanArchiveAsync(path, _ => { }, async (e, bytes) =>
        {
            done++;
            if (refused.ContainsKey(e.StorageKey)) return;
            if (CheckImport(e, bytes) is { } why)
            {
                refused[e.StorageKey] = new ImportRefusal(e.StorageKey, why);
                return;
            }
            BlobWriteOutcome outcome;
            try
            {
                outcome = await Within(c => target.Store!.PutAsync(BlobKey.Parse(e.StorageKey), bytes, BlobWriteMode.CreateOnly, c), target.Timeout,
                    $"tier {target.Name}: write", cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
            {
                refused[e.StorageKey] = new ImportRefusal(e.StorageKey, $"write failed: {Describe(ex)}");
                return;
            }
            if (outcome == BlobWriteOutcome.Written)
            {
                imported++;
                bytesWritten += bytes.Length;
            }
            else present++;
            progress?.Report(new CacheProgress("import", done, total, bytesWritten, e.StorageKey));
        }, cancellationToken).ConfigureAwait(false);
        var list = refused.Values.OrderBy(r => r.StorageKey, StringComparer.Ordinal).ToArray();
        foreach (var r in list) Log($"import: refused '{r.StorageKey}': {r.Reason}");
        return new ImportReport(target.Name, total, imported, present, list, bytesWritten);
    }

    private async Task<IReadOnlyList<CacheArchiveEntry>> ScanArchiveAsync(string path, Action<CacheArchiveManifest> onManifest,
        Func<CacheArchiveEntry, byte[], Task> onEntry, CancellationToken cancellationToken)
    {
        try
        {
            await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            return await CacheArchive.ReadAsync(input, Options.MaxEntryBytes, onManifest, onEntry, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PtdException($"cannot read archive '{path}': {e.Message}", e);
        }
    }

    /// <summary>Why an archive entry must not be imported, or null. Foreign revisions are refused before anything is parsed.</summary>
    private string? CheckImport(CacheArchiveEntry e, byte[] bytes)
    {
        var layer = CacheLayers.ForKind(e.Kind);
        if (layer is null) return $"kind '{e.Kind}' is not a cache layer of this build";
        if (layer.CurrentRevision is not { } current)
            return layer.NotBuilt is not null
                ? $"layer {layer.Name} is deliberately not built by this version (see docs/PERFORMANCE.md), so revision {e.Revision} cannot be checked"
                : $"layer {layer.Name} has no producer in this build, so revision {e.Revision} cannot be checked";
        if (e.Revision != current) return $"foreign format revision {e.Revision} of '{e.Kind}' (this build uses {current})";
        if (e.Generation != Generation) return $"generation {e.Generation} is not this cache's generation {Generation}";
        if (bytes.LongLength > Options.MaxEntryBytes + 64 * 1024) return $"{bytes.Length} bytes exceed the maximum entry size";
        if (CacheArchive.Sha256(bytes) != e.EnvelopeSha256) return "the envelope's SHA-256 differs from the manifest's";
        var v = CacheEnvelope.Verify(bytes, e.StorageKey, Options.MaxEntryBytes);
        if (!v.IsValid) return $"fails verification ({v.Reason}: {v.Detail})";
        if (v.Header!.PayloadSha256 != e.PayloadSha256 || v.Header.PayloadLength != e.PayloadLength || v.Header.ProducerVersion != e.ProducerVersion)
            return "the envelope header differs from the manifest";
        return null;
    }

    private void TryDelete(string file)
    {
        try
        {
            if (File.Exists(file)) File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log($"could not remove {file}: {e.Message}");
        }
    }
}
