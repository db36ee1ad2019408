using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Copying entries between stores.</summary>
public sealed partial class CacheManager
{
    /// <summary>
    /// Copies the current entries of the given layers that <paramref name="to"/> lacks from <paramref name="from"/>,
    /// verifying each envelope before writing it (create-only). Resumable: a second run skips what is already there, so
    /// an interrupted sync continues where it stopped; every copy is atomic in the destination.
    /// </summary>
    /// <param name="from">A tier name or a location (<c>s3://team/ptd?...</c>).</param>
    /// <param name="to">A tier name or a location; must be writable.</param>
    /// <param name="layers">The layers (null: all).</param>
    /// <param name="progress">Receives progress per entry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was copied.</returns>
    /// <exception cref="PtdException">A location is malformed or cannot be opened or listed, or the destination is read-only.</exception>
    public async Task<SyncReport> SyncAsync(string from, string to, IReadOnlyList<CacheLayer>? layers = null, IProgress<CacheProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(from);
        ArgumentException.ThrowIfNullOrWhiteSpace(to);
        var src = Resolve(from, "--from");
        var dst = Resolve(to, "--to");
        if (src.Store is null) throw new PtdException($"--from {src.Name} ({src.Display}) is unavailable: {src.Problem}");
        if (dst.Store is null) throw new PtdException($"--to {dst.Name} ({dst.Display}) is unavailable: {dst.Problem}");
        if (!dst.Writable) throw new PtdException($"--to {dst.Name} ({dst.Display}) is read-only");
        if (src.Display == dst.Display) throw new PtdException($"--from and --to name the same store ({src.Display})");
        var listing = await ListStoreAsync(src, cancellationToken).ConfigureAwait(false);
        if (listing.Problem is not null) throw new PtdException(listing.Problem);
        var candidates = listing.Entries.Where(e => e.Layer is not null && !e.IsStale && InLayers(e, layers)).ToList();
        HashSet<string>? present = null;
        if (dst.Store.Capabilities.Listing)
        {
            var d = await ListStoreAsync(dst, cancellationToken).ConfigureAwait(false);
            if (d.Problem is not null) throw new PtdException(d.Problem);
            present = d.Entries.Select(e => e.StorageKey).ToHashSet(StringComparer.Ordinal);
        }
        long already = 0, copied = 0, bytes = 0, rejected = 0, done = 0;
        var problems = new List<string>();
        foreach (var e in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            done++;
            var key = BlobKey.Parse(e.StorageKey);
            try
            {
                if (present?.Contains(e.StorageKey) ?? await Within(c => dst.Store.ExistsAsync(key, c), dst.Timeout, $"{dst.Display}: exists", cancellationToken).ConfigureAwait(false))
                {
                    already++;
                    continue;
                }
                var r = await Within(c => src.Store.GetAsync(key, c), src.Timeout, $"{src.Display}: read", cancellationToken).ConfigureAwait(false);
                if (!r.Found) continue; // removed from the source meanwhile
                var v = CacheEnvelope.Verify(r.Content, e.StorageKey, Options.MaxEntryBytes);
                if (!v.IsValid)
                {
                    rejected++;
                    problems.Add($"{e.StorageKey}: not copied, fails verification in the source ({v.Reason}: {v.Detail})");
                    continue;
                }
                var outcome = await Within(c => dst.Store.PutAsync(key, r.Content, BlobWriteMode.CreateOnly, c), dst.Timeout, $"{dst.Display}: write", cancellationToken)
                    .ConfigureAwait(false);
                if (outcome == BlobWriteOutcome.Written)
                {
                    copied++;
                    bytes += r.Content.Length;
                }
                else already++;
            }
            catch (BlobStoreException ex) when (ex.Kind is BlobStoreErrorKind.Corrupt or BlobStoreErrorKind.TooLarge)
            {
                rejected++;
                problems.Add($"{e.StorageKey}: not copied, the source reports it {(ex.Kind == BlobStoreErrorKind.TooLarge ? "too large" : "damaged")} ({ex.Message})");
            }
            catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
            {
                problems.Add($"{e.StorageKey}: {Describe(ex)}");
            }
            finally
            {
                progress?.Report(new CacheProgress("sync", done, candidates.Count, bytes, e.StorageKey));
            }
        }
        return new SyncReport(src.Display, dst.Display, candidates.Count, already, copied, bytes, rejected, problems);
    }
}
