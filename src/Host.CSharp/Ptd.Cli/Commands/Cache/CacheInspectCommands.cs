using Ptd.Host.Caching;

namespace Ptd.Cli.Commands.Cache;

/// <summary><c>ptd cache status</c>.</summary>
internal sealed class StatusSubcommand : CacheSubcommand
{
    public override string Name => "status";

    public override string Summary => "per layer and tier: location, entries, bytes, stale entries, oldest/newest, health, counters";

    public override string Usage => "ptd cache status [--deep] [--json]      --deep reads every envelope to count producer versions";

    public override string[] Flags => ["--deep"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        await using var manager = c.OpenManager();
        var report = await manager.GetStatusAsync(c.Args.Has("--deep"), c.Token);
        c.Emit(report, () =>
        {
            c.Out.WriteLine($"generation {report.Generation}; this build writes {report.ProducerVersion}");
            c.Out.WriteLine("layers: " + string.Join(", ", report.Layers.Select(l => $"{l.Name} (kind {l.KindName}, {(l.NotBuilt is not null ? "not built by this version: see docs/PERFORMANCE.md" : "revision " + (l.CurrentRevision?.ToString() ?? "none yet"))})")));
            if (report.Tiers.Count == 0) c.Out.WriteLine("caching is off (no tiers)");
            foreach (var t in report.Tiers)
            {
                c.Out.WriteLine();
                c.Out.WriteLine($"tier {t.Tier}: {t.Location} ({t.Access}{(t.MaxSizeBytes is { } m ? $", maxSize {Fmt.Bytes(m)}" : "")}{(t.MaxAge is { } a ? $", maxAge {Fmt.Duration(a)}" : "")})");
                if (t.Health is { } h) c.Out.WriteLine($"  health   {(h.IsHealthy ? "ok" : "FAILING")} ({h.Latency.TotalMilliseconds:F0} ms){(h.IsHealthy ? "" : ": " + h.Message)}");
                if (t.Problem is not null) c.Out.WriteLine($"  problem  {t.Problem}");
                c.Out.WriteLine($"  entries  {t.Entries} ({Fmt.Bytes(t.Bytes)}); stale {t.StaleEntries} ({Fmt.Bytes(t.StaleBytes)}); oldest {Fmt.Time(t.Oldest)}, newest {Fmt.Time(t.Newest)}" +
                                (t.ForeignObjects > 0 ? $"; {t.ForeignObjects} foreign object(s) ignored" : ""));
                foreach (var k in t.Kinds)
                {
                    var revs = string.Join(", ", k.ByRevision.Select(p => $"{p.Key}: {p.Value}"));
                    c.Out.WriteLine($"  {k.Layer ?? k.Kind,-8} {k.Entries} entries ({Fmt.Bytes(k.Bytes)}), stale {k.StaleEntries} ({Fmt.Bytes(k.StaleBytes)}) [{revs}]");
                    if (k.ProducerVersions is { } pv) c.Out.WriteLine($"           producers: {string.Join(", ", pv.Select(p => $"{p.Key}: {p.Value}"))}");
                }
                if (report.Counters?.Tiers.Where(s => s.Tier == t.Tier).ToArray() is { Length: > 0 } counters)
                    c.Out.WriteLine($"  counters hits {counters.Sum(s => s.Hits)}, misses {counters.Sum(s => s.Misses)}, errors {counters.Sum(s => s.Errors)}, timeouts {counters.Sum(s => s.Timeouts)}, rejected {counters.Sum(s => s.Rejected)} (since {Fmt.Time(report.Counters.Since)}; ptd cache stats)");
            }
            foreach (var w in report.Warnings) c.Out.WriteLine($"warning: {w}");
        });
        return report.Tiers.Any(t => t.Problem is not null || t.Health is { IsHealthy: false }) ? CacheCommand.Problems : 0;
    }
}

/// <summary><c>ptd cache list</c>.</summary>
internal sealed class ListSubcommand : CacheSubcommand
{
    public override string Name => "list";

    public override string Summary => "list entries (tier, kind, revision, key, size, last use)";

    public override string Usage => "ptd cache list [--kind KINDS] [--tier NAME] [--stale] [--json]";

    public override string[] Valued => ["--kind", "--tier"];

    public override string[] Flags => ["--stale"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var layers = c.Layers();
        await using var manager = c.OpenManager();
        var (entries, problems) = await manager.ListAsync(layers, c.Args.Get("--tier"), c.Token);
        if (c.Args.Has("--stale")) entries = entries.Where(e => e.IsStale).ToArray();
        c.Emit(new { entries, problems }, () =>
        {
            c.Out.WriteLine($"{"TIER",-10} {"KIND",-7} {"REV",-4} {"GEN",-4} {"KEY",-64} {"SIZE",10}  LAST USED");
            foreach (var e in entries)
                c.Out.WriteLine($"{e.Tier,-10} {e.Kind,-7} {"r" + e.FormatRevision,-4} {"g" + e.Generation,-4} {e.Key,-64} {Fmt.Bytes(e.Bytes),10}  {Fmt.Time(e.LastUsed)}{(e.IsStale ? "  stale" : "")}");
            c.Out.WriteLine($"{entries.Length} entries, {Fmt.Bytes(entries.Sum(e => e.Bytes))}");
        });
        foreach (var p in problems) c.Err.WriteLine($"ptd cache list: {p}");
        return problems.Length > 0 ? CacheCommand.Problems : 0;
    }
}

/// <summary><c>ptd cache show KEY</c>.</summary>
internal sealed class ShowSubcommand : CacheSubcommand
{
    public override string Name => "show";

    public override string Summary => "one entry in every tier: envelope header, verification, content facts";

    public override string Usage => "ptd cache show KEY [--json]      KEY: kind/rN/gN/key, a content key, or its first 6+ characters";

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var key = c.Args.Positional("KEY");
        await using var manager = c.OpenManager();
        var details = await manager.ShowAsync(key, c.Token);
        c.Emit(new { key, copies = details }, () =>
        {
            if (details.Length == 0) c.Out.WriteLine($"no entry matches '{key}'");
            foreach (var d in details)
            {
                var e = d.Entry;
                c.Out.WriteLine($"{e.StorageKey} in tier {e.Tier}{(e.IsStale ? " (stale)" : "")}");
                c.Out.WriteLine($"  size        {Fmt.Bytes(e.Bytes)} ({e.Bytes} bytes); written {Fmt.Time(e.LastModified)}; last used {Fmt.Time(e.LastUsed)}");
                if (d.Header is { } h)
                {
                    c.Out.WriteLine($"  envelope    v{h.EnvelopeVersion}, kind {h.Kind} r{h.FormatRevision}, producer {h.ProducerVersion}, compression {h.Compression}");
                    c.Out.WriteLine($"  payload     {h.PayloadLength} bytes, sha256 {h.PayloadSha256}");
                }
                c.Out.WriteLine(d.Valid ? "  verified    ok" : $"  verified    FAILED ({d.Reason}: {d.Detail})");
                foreach (var (k, v) in d.Content ?? new Dictionary<string, string>()) c.Out.WriteLine($"  {k,-11} {v}");
            }
        });
        if (details.Length == 0)
        {
            c.Err.WriteLine($"ptd cache show: no entry matches '{key}'");
            return CacheCommand.Problems;
        }
        return details.All(d => d.Valid) ? 0 : CacheCommand.Problems;
    }
}
