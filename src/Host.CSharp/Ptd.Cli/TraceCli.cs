using Ptd.Host.Models;
using Ptd.Host.Traces;

namespace Ptd.Cli;

/// <summary>How commands get traces: the trace store (cache) setup, and what <c>--verbose</c> says about it.</summary>
internal static class TraceCli
{
    /// <summary>The flag that bypasses the cache (same as <c>PTD_CACHE=off</c>).</summary>
    public const string NoCache = "--no-cache";

    /// <summary>The usage line for <see cref="NoCache"/>.</summary>
    public const string NoCacheUsage = "  --no-cache     record the trace without the cache (same as PTD_CACHE=off)";

    /// <summary>
    /// The store for this command: the environment's cache (PTD_CACHE, PTD_CACHE_DIR, ~/.ptd/cache), or none with
    /// <c>--no-cache</c>. Cache problems are printed as warnings on stderr and never fail the command.
    /// </summary>
    public static TraceStore OpenStore(Args args, Output output)
    {
        output.StartupTime();
        var options = new TraceStoreOptions { Log = m => output.Err.WriteLine($"ptd: warning: {m}") };
        return args.Has(NoCache) ? TraceStore.Uncached(options) : output.Stage("open cache", () => TraceStore.FromEnvironment(options: options));
    }

    /// <summary>Gets the model's trace as a stage, and says where it came from (verbose).</summary>
    public static TraceLookup Trace(PhaseTypeModel model, Output output)
    {
        var lookup = output.Stage("trace", model.GetTraceLookup);
        output.Progress($"trace: {lookup.Describe()}");
        return lookup;
    }

    /// <summary>One verbose line with the store's counters (and the cache's, for traces).</summary>
    public static void Statistics(TraceStore store, Output output)
    {
        if (!output.Verbose) return;
        var s = store.GetStatistics();
        var line = $"trace store: requests {s.Requests}, hits {s.Hits}, recordings {s.Recordings}, decode failures {s.DecodeFailures}, cache failures {s.CacheFailures}";
        if (s.Cache is { } c)
        {
            var k = c.For(TraceStore.Kind.Name);
            var tiers = c.Tiers.Where(t => t.Kind == TraceStore.Kind.Name)
                .Select(t => $"{t.Tier}: {t.Hits} hit(s), {t.Misses} miss(es), {t.Rejected} rejected, {t.Writes} write(s), {t.Errors} error(s)");
            line += $"; cache (trace): requests {k.Requests}, hits {k.Hits}, misses {k.Misses}, computations {k.Computations}";
            var detail = string.Join("; ", tiers);
            if (detail.Length > 0) line += $" [{detail}]";
        }
        else
        {
            line += "; cache off";
        }
        output.Progress(line);
    }
}
