using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Verification, clearing and vacuum.</summary>
public sealed partial class CacheManager
{
    /// <summary>
    /// Reads every entry of the given layers and re-checks its envelope and payload hash against the key it is stored
    /// under; optionally deletes the bad ones (from read-write tiers).
    /// </summary>
    /// <param name="layers">The layers (null: all).</param>
    /// <param name="tier">One tier, or null for all.</param>
    /// <param name="remove">Delete bad entries.</param>
    /// <param name="progress">Receives progress per entry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The report.</returns>
    public async Task<VerifyReport> VerifyAsync(IReadOnlyList<CacheLayer>? layers = null, string? tier = null, bool remove = false,
        IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        long checkedCount = 0, valid = 0, bytes = 0, removed = 0;
        var problems = new List<VerifyProblem>();
        var tierProblems = new List<string>();
        var producers = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var stores = tier is null ? TierStores().ToArray() : [TierStore(tier)];
        var listings = new List<(ManagedStore Store, List<CacheEntryInfo> Entries)>();
        foreach (var t in stores)
        {
            var l = await ListStoreAsync(t, cancellationToken).ConfigureAwait(false);
            if (l.Problem is not null) tierProblems.Add(l.Problem);
            listings.Add((t, l.Entries.Where(e => InLayers(e, layers)).ToList()));
        }
        var total = listings.Sum(l => (long)l.Entries.Count);
        foreach (var (t, entries) in listings)
        {
            foreach (var e in entries)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var key = BlobKey.Parse(e.StorageKey);
                string? reason = null, detail = null;
                try
                {
                    var r = await Within(c => t.Store!.GetAsync(key, c), t.Timeout, $"tier {t.Name}: read", cancellationToken).ConfigureAwait(false);
                    if (r.Found)
                    {
                        checkedCount++;
                        bytes += r.Content.Length;
                        var v = CacheEnvelope.Verify(r.Content, e.StorageKey, Options.MaxEntryBytes);
                        if (v.IsValid)
                        {
                            valid++;
                            producers[v.Header!.ProducerVersion] = producers.GetValueOrDefault(v.Header.ProducerVersion) + 1;
                        }
                        else (reason, detail) = (v.Reason.ToString(), v.Detail);
                    }
                }
                catch (BlobStoreException ex) when (ex.Kind is BlobStoreErrorKind.Corrupt or BlobStoreErrorKind.TooLarge)
                {
                    checkedCount++;
                    (reason, detail) = (ex.Kind == BlobStoreErrorKind.TooLarge ? "TooLargeInStore" : "CorruptInStore", ex.Message);
                }
                catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
                {
                    tierProblems.Add($"tier {t.Name}: could not read '{e.StorageKey}': {Describe(ex)}");
                }
                if (reason is not null)
                {
                    var gone = false;
                    if (remove && t.Writable) gone = await TryDeleteAsync(t, key, tierProblems, cancellationToken).ConfigureAwait(false);
                    if (gone) removed++;
                    problems.Add(new VerifyProblem(t.Name, e.StorageKey, reason, detail!, gone));
                    Log($"tier {t.Name}: entry '{e.StorageKey}' is bad ({reason}: {detail}){(gone ? "; removed" : "")}");
                }
                progress?.Report(new CacheProgress("verify", checkedCount + tierProblems.Count, total, bytes, e.StorageKey));
            }
            if (remove && !t.Writable && problems.Any(p => p.Tier == t.Name))
                tierProblems.Add($"tier {t.Name} is read-only: its bad entries were reported, not removed");
        }
        return new VerifyReport(checkedCount, valid, problems.Count, removed, bytes, problems, tierProblems, producers);
    }

    /// <summary>Deletes every entry (all revisions and generations) of the given layers from every read-write tier, or from one tier.</summary>
    /// <param name="layers">The layers to clear (at least one).</param>
    /// <param name="tier">One tier, or null for every read-write tier.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was removed.</returns>
    /// <exception cref="PtdException">No layer given, the tier is unknown, or it is read-only.</exception>
    public async Task<RemovalReport> ClearAsync(IReadOnlyList<CacheLayer> layers, string? tier = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new PtdException("name the layers to clear (traces, kernels, code or all)");
        var reports = new List<TierRemoval>();
        foreach (var t in WritableTargets(tier))
        {
            var l = await ListStoreAsync(t, cancellationToken).ConfigureAwait(false);
            if (l.Problem is not null)
            {
                reports.Add(new TierRemoval(t.Name, 0, 0, 0, 0, new Dictionary<string, long>(), [l.Problem]));
                continue;
            }
            var scope = l.Entries.Where(e => InLayers(e, layers)).ToList();
            var kept = l.Entries.Except(scope).ToList();
            reports.Add(await RemoveAsync(t, scope.Select(e => (e, "clear")).ToList(), kept, dryRun: false, cancellationToken).ConfigureAwait(false));
        }
        return new RemovalReport(reports, false);
    }

    /// <summary>
    /// Removes, from every read-write tier (or one): with <see cref="VacuumOptions.Stale"/> every entry of another format
    /// revision or generation; then entries not used within <see cref="VacuumOptions.MaxAge"/>; then least recently used
    /// entries until the tier's entries take at most <see cref="VacuumOptions.MaxSizeBytes"/>. Each entry is one object,
    /// removed whole. Last, scratch files of writers that died (older than <see cref="VacuumOptions.ScratchGracePeriod"/>)
    /// are removed from tiers whose store implements <see cref="IBlobStoreHousekeeping"/>.
    /// </summary>
    /// <param name="options">What to remove.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What was (or, on a dry run, would be) removed, by reason.</returns>
    /// <exception cref="PtdException">Nothing to do was asked for, or the tier is unknown or read-only.</exception>
    public async Task<RemovalReport> VacuumAsync(VacuumOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Stale && options.MaxAge is null && options.MaxSizeBytes is null)
            throw new PtdException("say what to vacuum: --max-size SIZE, --max-age DURATION and/or --stale");
        if (options.MaxSizeBytes is < 0) throw new PtdException("the maximum size must not be negative");
        if (options.MaxAge is { } age && age <= TimeSpan.Zero) throw new PtdException("the maximum age must be positive");
        var now = Time.GetUtcNow();
        var reports = new List<TierRemoval>();
        foreach (var t in WritableTargets(options.Tier))
        {
            var l = await ListStoreAsync(t, cancellationToken).ConfigureAwait(false);
            if (l.Problem is not null)
            {
                reports.Add(new TierRemoval(t.Name, 0, 0, 0, 0, new Dictionary<string, long>(), [l.Problem]));
                continue;
            }
            // Entries of kinds no layer owns are never touched (another tool's data under the same root).
            var scope = l.Entries.Where(e => e.Layer is not null && InLayers(e, options.Layers)).ToList();
            var remove = new List<(CacheEntryInfo Entry, string Reason)>();
            if (options.Stale)
            {
                remove.AddRange(scope.Where(e => e.IsStale).Select(e => (e, "stale")));
                scope.RemoveAll(e => e.IsStale);
            }
            if (options.MaxAge is { } maxAge)
            {
                remove.AddRange(scope.Where(e => now - e.LastUsed > maxAge).Select(e => (e, "age")));
                scope.RemoveAll(e => now - e.LastUsed > maxAge);
            }
            if (options.MaxSizeBytes is { } max)
            {
                scope.Sort((a, b) => a.LastUsed != b.LastUsed ? a.LastUsed.CompareTo(b.LastUsed) : string.CompareOrdinal(a.StorageKey, b.StorageKey));
                var total = scope.Sum(e => e.Bytes);
                var i = 0;
                while (total > max && i < scope.Count)
                {
                    remove.Add((scope[i], "size"));
                    total -= scope[i].Bytes;
                    i++;
                }
                scope.RemoveRange(0, i);
            }
            var removal = await RemoveAsync(t, remove, scope, options.DryRun, cancellationToken).ConfigureAwait(false);
            reports.Add(await WithScratchRemovedAsync(t, removal, options, cancellationToken).ConfigureAwait(false));
        }
        return new RemovalReport(reports, options.DryRun);
    }

    private IEnumerable<ManagedStore> WritableTargets(string? tier)
    {
        if (tier is not null)
        {
            var t = TierStore(tier);
            if (t.Store is null) throw new PtdException($"tier {t.Name} ({t.Display}) is unavailable: {t.Problem}");
            if (!t.Writable) throw new PtdException($"tier {t.Name} ({t.Display}) is read-only: nothing can be removed from it");
            return [t];
        }
        return TierStores().Where(t => t.Writable).ToArray();
    }

    private async Task<TierRemoval> RemoveAsync(ManagedStore t, List<(CacheEntryInfo Entry, string Reason)> remove, List<CacheEntryInfo> kept, bool dryRun,
        CancellationToken cancellationToken)
    {
        long removed = 0, removedBytes = 0;
        var byReason = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var problems = new List<string>();
        if (!dryRun && t.Store!.Capabilities.PrefixDelete)
        {
            // Whole old generations (or whole kinds, for clear) go with one prefix delete each: a directory rename on
            // the local disk, 1,000 objects per request on S3. What is not a whole directory is deleted entry by entry.
            // Only for stale and cleared entries: a current generation emptied by age or size may be receiving new
            // entries right now, which a directory drop would take along.
            var wholeReasons = remove.Where(x => x.Reason is "stale" or "clear").ToList();
            var (whole, single) = CacheKeyLayout.SplitByGeneration(wholeReasons, x => BlobKey.Parse(x.Entry.StorageKey),
                kept.Select(e => BlobKey.Parse(e.StorageKey)).Concat(remove.Where(x => x.Reason is not ("stale" or "clear")).Select(x => BlobKey.Parse(x.Entry.StorageKey))));
            single.AddRange(remove.Where(x => x.Reason is not ("stale" or "clear")));
            foreach (var (prefix, group) in whole)
            {
                cancellationToken.ThrowIfCancellationRequested();
                long deleted;
                try
                {
                    deleted = await Within(c => t.Store.DeletePrefixAsync(prefix, c), ListingTimeout, $"tier {t.Name}: delete of '{prefix}'", cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (IsStoreFailure(e, cancellationToken))
                {
                    problems.Add($"tier {t.Name} ({t.Display}): could not remove '{prefix}': {Describe(e)}");
                    return new TierRemoval(t.Name, removed, removedBytes, kept.Count, kept.Sum(e => e.Bytes), byReason, problems);
                }
                // Entries that vanished in between are not counted; ones written meanwhile are not listed, hence not counted.
                foreach (var (e, reason) in group.Take((int)Math.Min(deleted, group.Count)))
                {
                    removed++;
                    removedBytes += e.Bytes;
                    byReason[reason] = byReason.GetValueOrDefault(reason) + 1;
                }
            }
            remove = single;
        }
        foreach (var (e, reason) in remove)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!dryRun)
            {
                var before = problems.Count;
                // One entry is one object: deleting it removes the entry whole, never half of it.
                var deleted = await TryDeleteAsync(t, BlobKey.Parse(e.StorageKey), problems, cancellationToken).ConfigureAwait(false);
                if (problems.Count > before) break; // a tier that fails deletes is not hammered further
                if (!deleted) continue; // already gone
            }
            removed++;
            removedBytes += e.Bytes;
            byReason[reason] = byReason.GetValueOrDefault(reason) + 1;
        }
        return new TierRemoval(t.Name, removed, removedBytes, kept.Count, kept.Sum(e => e.Bytes), byReason, problems);
    }

    private async Task<bool> TryDeleteAsync(ManagedStore t, BlobKey key, List<string> problems, CancellationToken cancellationToken)
    {
        try
        {
            return await Within(c => t.Store!.DeleteAsync(key, c), t.Timeout, $"tier {t.Name}: delete", cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            problems.Add($"tier {t.Name} ({t.Display}): could not remove '{key}': {Describe(e)}");
            return false;
        }
    }
}
