using Ptd.Host.Caching;
using Ptd.Host.Composition;

namespace Ptd.Cli.Commands.Cache;

/// <summary>
/// <c>ptd cache stats</c>: every <c>ptd</c> run is its own process, so its in-memory counters die with it. A cache
/// opened from the environment adds its counters to the ledger file (<c>PTD_CACHE_STATS</c>, default
/// <c>~/.ptd/cache-stats.json</c>) when it closes; this command shows those sums. Entry counts and sizes are not
/// counters: <c>ptd cache status</c> derives them from the tiers themselves.
/// </summary>
internal sealed class StatsSubcommand : CacheSubcommand
{
    public override string Name => "stats";

    public override string Summary => "hit/miss/error counters summed over earlier ptd runs; --reset starts afresh";

    public override string Usage => "ptd cache stats [--reset] [--json]";

    public override string[] Flags => ["--reset"];

    public override Task<int> RunAsync(CacheInvocation c)
    {
        var ledger = CacheStatisticsLedger.FromEnvironment();
        if (ledger is null)
        {
            c.Emit(new { enabled = false, ledger = (string?)null, counters = (object?)null },
                () => c.Out.WriteLine($"statistics are not persisted ({CacheStatisticsLedger.Variable}=off, or no home directory): each ptd run keeps its counters to itself"));
            return Task.FromResult(0);
        }
        if (c.Args.Has("--reset"))
        {
            var existed = ledger.Reset();
            c.Emit(new { enabled = true, ledger = ledger.Path, reset = existed },
                () => c.Out.WriteLine(existed ? $"statistics reset ({ledger.Path} removed)" : $"nothing to reset ({ledger.Path} does not exist)"));
            return Task.FromResult(0);
        }
        var s = ledger.Read(m => c.Err.WriteLine($"ptd cache stats: {m}"));
        c.Emit(new { enabled = true, ledger = ledger.Path, counters = s }, () =>
        {
            if (s is null)
            {
                c.Out.WriteLine($"no statistics yet ({ledger.Path}): they accumulate as ptd commands use the cache");
                return;
            }
            c.Out.WriteLine($"{s.Runs} run(s) since {Fmt.Time(s.Since)}, last {Fmt.Time(s.Updated)} ({ledger.Path})");
            foreach (var k in s.Kinds)
                c.Out.WriteLine($"  {k.Kind,-8} requests {k.Requests}, hits {k.Hits}, misses {k.Misses}, computed {k.Computations} ({k.ComputationFailures} failed), shared flights {k.SharedFlights}");
            foreach (var t in s.Tiers)
            {
                c.Out.WriteLine($"  tier {t.Tier} / {t.Kind}: hits {t.Hits}, misses {t.Misses} (not found {t.MissesNotFound}, rejected {t.MissesRejected}, error {t.MissesError}, timeout {t.MissesTimeout}, skipped {t.MissesSkipped})");
                c.Out.WriteLine($"      errors {t.Errors}, timeouts {t.Timeouts}, read {Fmt.Bytes(t.BytesRead)}, written {Fmt.Bytes(t.BytesWritten)} ({t.Writes} writes, {t.Backfills} back-fills), evicted {t.Evictions}, read latency mean {t.ReadLatency.MeanMilliseconds:F2} ms");
                if (t.RejectedByReason.Count > 0) c.Out.WriteLine("      rejected: " + string.Join(", ", t.RejectedByReason.Select(p => $"{p.Key}: {p.Value}")));
            }
        });
        return Task.FromResult(0);
    }
}

/// <summary><c>ptd cache plugins</c>.</summary>
internal sealed class PluginsSubcommand : CacheSubcommand
{
    public override string Name => "plugins";

    public override string Summary => "the storage plugins found, their URI schemes, and plugins that failed to load";

    public override string Usage => "ptd cache plugins [--json]";

    public override Task<int> RunAsync(CacheInvocation c)
    {
        using var registry = StorageProviderRegistry.Discover();
        var providers = registry.Providers.Select(p =>
        {
            string description;
            try
            {
                description = registry.TryGetProvider(p.Scheme, out var provider) ? provider!.Description : "";
            }
            catch (Ptd.Core.PtdException e)
            {
                description = "(cannot be created: " + e.Message + ")";
            }
            return new { p.Scheme, p.Source, description };
        }).ToArray();
        var errors = registry.LoadErrors;
        c.Emit(new { providers, loadErrors = errors, warnings = registry.Warnings, searched = registry.SearchedDirectories }, () =>
        {
            foreach (var p in providers) c.Out.WriteLine($"{p.Scheme + "://",-10} {p.description}  ({p.Source})");
            if (providers.Length == 0) c.Out.WriteLine("no storage plugins found");
            c.Out.WriteLine("searched: " + string.Join(", ", registry.SearchedDirectories));
            foreach (var w in registry.Warnings) c.Out.WriteLine($"warning: {w}");
            foreach (var e in errors) c.Out.WriteLine($"failed: {e}");
        });
        return Task.FromResult(errors.Count > 0 ? CacheCommand.Problems : 0);
    }
}
