using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Eviction by size (least recently used) and age, and vacuum of stale revisions and generations.</summary>
internal sealed partial class TieredArtifactCache
{
    /// <summary>After a size-driven eviction the tier is brought down to this fraction of its limit, so that eviction does not run on every write.</summary>
    private const double LowWatermark = 0.9;

    private static readonly TimeSpan ListingTimeout = TimeSpan.FromMinutes(5);

    public async Task<MaintenanceReport> EvictAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var reports = new List<MaintenanceReport>();
        foreach (var tier in _tiers.Where(t => t.IsWritable && t.HasLimits))
        {
            while (!tier.TryBeginEviction()) await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            try
            {
                reports.Add(await EvictTierAsync(tier, cancellationToken).ConfigureAwait(false));
            }
            finally
            {
                tier.EndEviction(_time.GetUtcNow());
            }
        }
        return MaintenanceReport.Sum(reports);
    }

    public async Task<MaintenanceReport> VacuumAsync(IEnumerable<ArtifactKind> currentKinds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(currentKinds);
        ThrowIfDisposed();
        var current = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var k in currentKinds)
        {
            if (current.TryGetValue(k.Name, out var rev) && rev != k.FormatRevision)
                throw new ArgumentException($"kind '{k.Name}' is listed with two format revisions ({rev} and {k.FormatRevision})", nameof(currentKinds));
            current[k.Name] = k.FormatRevision;
        }
        var reports = new List<MaintenanceReport>();
        foreach (var tier in _tiers.Where(t => t.IsWritable))
        {
            var listing = await ListAsync(tier, cancellationToken).ConfigureAwait(false);
            if (listing.Problem is not null)
            {
                reports.Add(new MaintenanceReport(0, 0, 0, 0, [listing.Problem]));
                continue;
            }
            var stale = new List<(BlobInfo Entry, string Kind)>();
            var keptKeys = new List<BlobKey>();
            long kept = 0, keptBytes = 0;
            foreach (var e in listing.Entries)
            {
                if (!CacheKeyLayout.TryParse(e.Key, out var kind, out var rev, out var gen) || !current.TryGetValue(kind, out var currentRev))
                {
                    keptKeys.Add(e.Key); // never deleted, so its directory is never dropped whole
                    continue;
                }
                if (rev != currentRev || gen != Generation) stale.Add((e, kind));
                else
                {
                    kept++;
                    keptBytes += e.Length;
                    keptKeys.Add(e.Key);
                }
            }
            reports.Add(await RemoveEntriesAsync(tier, stale, kept, keptBytes, keptKeys, cancellationToken).ConfigureAwait(false));
        }
        return MaintenanceReport.Sum(reports);
    }

    private void ScheduleEviction(CacheTier tier)
    {
        if (Volatile.Read(ref _disposed) != 0 || !tier.TryBeginEviction()) return;
        Task task = null!;
        task = Task.Run(async () =>
        {
            try
            {
                // Writes that land while a pass runs would otherwise be forgotten (the pass resets the
                // counter when it ends): run another pass while writes arrived during the last one.
                tier.TakeBytesSinceEviction();
                var passes = 0;
                do
                {
                    var report = await EvictTierAsync(tier, CancellationToken.None).ConfigureAwait(false);
                    foreach (var p in report.Problems) Log(p);
                }
                while (tier.TakeBytesSinceEviction() > 0 && ++passes < 8);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log($"cache tier {tier.Name} ({tier.DisplayName}): eviction failed: {Describe(e)}");
            }
            finally
            {
                tier.EndEviction(_time.GetUtcNow());
                lock (_gate) _background.Remove(task);
            }
        });
        lock (_gate)
        {
            if (!task.IsCompleted) _background.Add(task);
        }
    }

    private async Task<MaintenanceReport> EvictTierAsync(CacheTier tier, CancellationToken cancellationToken)
    {
        var listing = await ListAsync(tier, cancellationToken).ConfigureAwait(false);
        if (listing.Problem is not null) return new MaintenanceReport(0, 0, 0, 0, [listing.Problem]);
        var now = _time.GetUtcNow();
        // Only entries with the cache's key layout are candidates: a misconfigured root never loses foreign files.
        var entries = listing.Entries
            .Select(e => (Entry: e, Ok: CacheKeyLayout.TryParse(e.Key, out var kind, out _, out _), Kind: kind))
            .Where(x => x.Ok)
            .OrderBy(x => x.Entry.LastUsed)
            .ThenBy(x => x.Entry.Key)
            .Select(x => (x.Entry, x.Kind))
            .ToList();
        var remove = new List<(BlobInfo Entry, string Kind)>();
        if (tier.MaxAge is { } maxAge)
        {
            remove.AddRange(entries.Where(x => now - x.Entry.LastUsed > maxAge));
            entries.RemoveAll(x => now - x.Entry.LastUsed > maxAge);
        }
        var total = entries.Sum(x => x.Entry.Length);
        if (tier.MaxSizeBytes is { } max && total > max)
        {
            var target = (long)(max * LowWatermark);
            var i = 0;
            while (total > target && i < entries.Count)
            {
                remove.Add(entries[i]);
                total -= entries[i].Entry.Length;
                i++;
            }
            entries.RemoveRange(0, i);
        }
        return await RemoveEntriesAsync(tier, remove, entries.Count, total, null, cancellationToken).ConfigureAwait(false);
    }

    // keptKeys: the listed entries that stay, when whole generation directories may be dropped by prefix (vacuum); null
    // deletes entry by entry (eviction, which never empties a generation on purpose).
    private async Task<MaintenanceReport> RemoveEntriesAsync(CacheTier tier, List<(BlobInfo Entry, string Kind)> remove, long kept, long keptBytes,
        IReadOnlyList<BlobKey>? keptKeys, CancellationToken cancellationToken)
    {
        long removed = 0, removedBytes = 0;
        var problems = new List<string>();
        if (keptKeys is not null && tier.Store!.Capabilities.PrefixDelete)
        {
            // A whole old generation goes with one prefix delete (a directory rename on the local disk, 1,000 objects
            // per request on S3) instead of one delete per entry.
            var (whole, single) = CacheKeyLayout.SplitByGeneration(remove, x => x.Entry.Key, keptKeys);
            foreach (var (prefix, group) in whole)
            {
                var r = await RunAsync(tier, (s, c) => s.DeletePrefixAsync(prefix, c), ListingTimeout, cancellationToken).ConfigureAwait(false);
                if (r.Status != OpStatus.Ok)
                {
                    _metrics.OtherFailure(tier.Index, tier.Name, group[0].Kind, "delete", r.Status == OpStatus.Timeout);
                    problems.Add($"cache tier {tier.Name} ({tier.DisplayName}): could not remove '{prefix}': {(r.Error is null ? "timed out" : Describe(r.Error))}");
                    return new MaintenanceReport(removed, removedBytes, kept, keptBytes, problems);
                }
                foreach (var (entry, kind) in group.Take((int)Math.Min(r.Value, group.Count)))
                {
                    removed++;
                    removedBytes += entry.Length;
                    _metrics.Eviction(tier.Index, tier.Name, kind, entry.Length);
                }
            }
            remove = single;
        }
        foreach (var (entry, kind) in remove)
        {
            // One entry is one blob, so deleting it removes the whole entry at once.
            var r = await RunAsync(tier, (s, c) => s.DeleteAsync(entry.Key, c), tier.Timeout, cancellationToken).ConfigureAwait(false);
            if (r.Status == OpStatus.Ok)
            {
                if (!r.Value) continue; // already gone
                removed++;
                removedBytes += entry.Length;
                _metrics.Eviction(tier.Index, tier.Name, kind, entry.Length);
                continue;
            }
            _metrics.OtherFailure(tier.Index, tier.Name, kind, "delete", r.Status == OpStatus.Timeout);
            problems.Add($"cache tier {tier.Name} ({tier.DisplayName}): could not remove '{entry.Key}': {(r.Error is null ? "timed out" : Describe(r.Error))}");
            break; // a tier that fails deletes is not hammered further
        }
        return new MaintenanceReport(removed, removedBytes, kept, keptBytes, problems);
    }

    private async Task<(IReadOnlyList<BlobInfo> Entries, string? Problem)> ListAsync(CacheTier tier, CancellationToken cancellationToken)
    {
        if (!tier.Store!.Capabilities.Listing)
            return (Array.Empty<BlobInfo>(), $"cache tier {tier.Name} ({tier.DisplayName}) cannot list its entries; skipped");
        var r = await RunAsync(tier, (s, c) => s.ListAsync("", c), ListingTimeout, cancellationToken).ConfigureAwait(false);
        return r.Status switch
        {
            OpStatus.Ok => (r.Value!, null),
            OpStatus.Timeout => (Array.Empty<BlobInfo>(), $"cache tier {tier.Name} ({tier.DisplayName}): listing timed out"),
            _ => (Array.Empty<BlobInfo>(), $"cache tier {tier.Name} ({tier.DisplayName}): listing failed: {Describe(r.Error!)}"),
        };
    }
}
