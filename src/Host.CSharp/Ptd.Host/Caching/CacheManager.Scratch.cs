using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>Vacuum's removal of scratch objects that dead writers left behind (a local tier's <c>.tmp-*</c> files).</summary>
public sealed partial class CacheManager
{
    // A writer killed (kill -9, power loss) between creating its temporary file and renaming it into place leaves the
    // temporary file: never a visible entry, but disk space nobody reclaims. Only files older than the grace period
    // go, so a writer that is still running keeps its file.
    private async Task<TierRemoval> WithScratchRemovedAsync(ManagedStore t, TierRemoval removal, VacuumOptions options, CancellationToken cancellationToken)
    {
        if (t.Store is not IBlobStoreHousekeeping housekeeping) return removal;
        if (options.ScratchGracePeriod < TimeSpan.Zero) throw new Core.PtdException("the grace period for temporary files must not be negative");
        try
        {
            var cutoff = Time.GetUtcNow() - options.ScratchGracePeriod;
            var r = await Within(c => housekeeping.RemoveAbandonedScratchAsync(cutoff, options.DryRun, c), ListingTimeout,
                $"tier {t.Name} ({t.Display}): removing abandoned temporary files", cancellationToken).ConfigureAwait(false);
            if (r.Removed > 0) Log($"tier {t.Name}: {(options.DryRun ? "would remove" : "removed")} {r.Removed} abandoned temporary file(s), {r.Bytes} bytes");
            return removal with { ScratchRemoved = r.Removed, ScratchBytesRemoved = r.Bytes };
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return removal with { Problems = [.. removal.Problems, $"tier {t.Name} ({t.Display}): abandoned temporary files not removed: {Describe(e)}"] };
        }
    }
}
