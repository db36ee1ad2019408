using Ptd.Host.Caching;

namespace Ptd.Cli.Commands.Cache;

/// <summary><c>ptd cache verify</c>.</summary>
internal sealed class VerifySubcommand : CacheSubcommand
{
    public override string Name => "verify";

    public override string Summary => "re-check every envelope and payload hash; --remove deletes bad entries";

    public override string Usage => "ptd cache verify [--kind KINDS] [--tier NAME] [--remove] [--json]";

    public override string[] Valued => ["--kind", "--tier"];

    public override string[] Flags => ["--remove"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var layers = c.Layers();
        await using var manager = c.OpenManager();
        var r = await manager.VerifyAsync(layers, c.Args.Get("--tier"), c.Args.Has("--remove"), c.Progress(), c.Token);
        c.Emit(r, () =>
        {
            c.Out.WriteLine($"checked {r.Checked} entries ({Fmt.Bytes(r.BytesChecked)}): {r.Valid} valid, {r.Bad} bad, {r.Removed} removed");
            foreach (var p in r.Problems) c.Out.WriteLine($"  bad  {p.Tier}  {p.StorageKey}  {p.Reason}: {p.Detail}{(p.Removed ? " (removed)" : "")}");
            if (r.ProducerVersions.Count > 0) c.Out.WriteLine("producers: " + string.Join(", ", r.ProducerVersions.Select(p => $"{p.Key}: {p.Value}")));
        });
        foreach (var p in r.TierProblems) c.Err.WriteLine($"ptd cache verify: {p}");
        return r.Bad > r.Removed || r.TierProblems.Count > 0 ? CacheCommand.Problems : 0;
    }
}

/// <summary><c>ptd cache clear</c>.</summary>
internal sealed class ClearSubcommand : CacheSubcommand
{
    public override string Name => "clear";

    public override string Summary => "delete every entry of some layers (all revisions), after confirmation";

    public override string Usage => "ptd cache clear --traces|--kernels|--code|--all [--tier NAME] [--yes] [--json]";

    public override string[] Valued => ["--tier"];

    public override string[] Flags => ["--traces", "--kernels", "--code", "--all", "--yes"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var names = new[] { "traces", "kernels", "code" }.Where(n => c.Args.Has("--" + n)).ToList();
        if (c.Args.Has("--all")) names.Add("all");
        if (names.Count == 0) throw new UsageException("say what to clear: --traces, --kernels, --code or --all");
        var layers = CacheLayers.Parse(names);
        c.NoteNotBuilt(layers, names);
        var tier = c.Args.Get("--tier");
        await using var manager = c.OpenManager();
        if (!c.Args.Has("--yes"))
        {
            if (Console.IsInputRedirected)
                throw new UsageException("refusing to delete without confirmation: standard input is not a terminal; pass --yes to clear non-interactively");
            var (entries, _) = await manager.ListAsync(layers, tier, c.Token);
            var writable = manager.Tiers.Where(t => t.Access == CacheTierAccess.ReadWrite && (tier is null || t.Name == tier)).Select(t => t.Name).ToHashSet();
            var doomed = entries.Where(e => writable.Contains(e.Tier)).ToArray();
            c.Err.Write($"Delete {doomed.Length} {string.Join("/", layers.Select(l => l.Name))} entries ({Fmt.Bytes(doomed.Sum(e => e.Bytes))}) from tier(s) {string.Join(", ", writable)}? [y/N] ");
            var answer = Console.In.ReadLine()?.Trim().ToLowerInvariant();
            if (answer is not ("y" or "yes"))
            {
                c.Err.WriteLine("ptd cache clear: nothing deleted");
                return CacheCommand.Problems;
            }
        }
        var r = await manager.ClearAsync(layers, tier, c.Token);
        c.Emit(r, () => PrintRemoval(c, r, "removed"));
        foreach (var p in r.Problems) c.Err.WriteLine($"ptd cache clear: {p}");
        return r.Problems.Count > 0 ? CacheCommand.Problems : 0;
    }

    internal static void PrintRemoval(CacheInvocation c, RemovalReport r, string verb)
    {
        foreach (var t in r.Tiers)
        {
            var reasons = t.RemovedByReason.Count == 0 ? "" : " (" + string.Join(", ", t.RemovedByReason.Select(p => $"{p.Key}: {p.Value}")) + ")";
            c.Out.WriteLine($"tier {t.Tier}: {verb} {t.EntriesRemoved} entries, {Fmt.Bytes(t.BytesRemoved)}{reasons}; kept {t.EntriesKept} entries, {Fmt.Bytes(t.BytesKept)}");
            if (t.ScratchRemoved > 0)
                c.Out.WriteLine($"tier {t.Tier}: {verb} {t.ScratchRemoved} abandoned temporary file(s), {Fmt.Bytes(t.ScratchBytesRemoved)}");
        }
        c.Out.WriteLine($"total: {verb} {r.EntriesRemoved} entries, freed {Fmt.Bytes(r.BytesRemoved)}{(r.DryRun ? " (dry run: nothing was deleted)" : "")}");
    }
}

/// <summary><c>ptd cache vacuum</c>.</summary>
internal sealed class VacuumSubcommand : CacheSubcommand
{
    public override string Name => "vacuum";

    public override string Summary => "remove stale revisions, old entries, and LRU entries beyond a size";

    public override string Usage => "ptd cache vacuum [--max-size 10GB] [--max-age 30d] [--stale] [--kind KINDS] [--tier NAME] [--dry-run] [--json]";

    public override string[] Valued => ["--max-size", "--max-age", "--kind", "--tier"];

    public override string[] Flags => ["--stale", "--dry-run"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var options = new VacuumOptions
        {
            MaxSizeBytes = c.Args.Get("--max-size") is { } s ? CacheConfiguration.ParseSize(s, "--max-size") : null,
            MaxAge = c.Args.Get("--max-age") is { } a ? CacheConfiguration.ParseDuration(a, "--max-age") : null,
            Stale = c.Args.Has("--stale"),
            Tier = c.Args.Get("--tier"),
            Layers = c.Layers(),
            DryRun = c.Args.Has("--dry-run"),
        };
        if (!options.Stale && options.MaxAge is null && options.MaxSizeBytes is null)
            throw new UsageException("say what to vacuum: --max-size SIZE, --max-age DURATION and/or --stale");
        await using var manager = c.OpenManager();
        var r = await manager.VacuumAsync(options, c.Token);
        c.Emit(r, () => ClearSubcommand.PrintRemoval(c, r, r.DryRun ? "would remove" : "removed"));
        foreach (var p in r.Problems) c.Err.WriteLine($"ptd cache vacuum: {p}");
        return r.Problems.Count > 0 ? CacheCommand.Problems : 0;
    }
}
