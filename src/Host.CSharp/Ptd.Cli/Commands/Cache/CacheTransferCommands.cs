namespace Ptd.Cli.Commands.Cache;

/// <summary><c>ptd cache export</c>.</summary>
internal sealed class ExportSubcommand : CacheSubcommand
{
    public override string Name => "export";

    public override string Summary => "write current, verified entries to a .tar.gz with a manifest";

    public override string Usage => "ptd cache export --to cache.tar.gz [--kind KINDS] [--tier NAME] [--json]";

    public override string[] Valued => ["--to", "--kind", "--tier"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var to = c.Args.Get("--to") ?? throw new UsageException("missing --to FILE (the .tar.gz to write)");
        var layers = c.Layers();
        await using var manager = c.OpenManager();
        var r = await manager.ExportAsync(to, layers, c.Args.Get("--tier"), c.Progress(), c.Token);
        c.Emit(new { path = Path.GetFullPath(to), r.Tier, r.Entries, r.Bytes, r.Skipped }, () =>
        {
            c.Out.WriteLine($"exported {r.Entries} entries ({Fmt.Bytes(r.Bytes)}) from tier {r.Tier} to {to}");
            foreach (var s in r.Skipped) c.Out.WriteLine($"  skipped {s}");
        });
        return 0;
    }
}

/// <summary><c>ptd cache import</c>.</summary>
internal sealed class ImportSubcommand : CacheSubcommand
{
    public override string Name => "import";

    public override string Summary => "verify and import an exported archive (refuses foreign revisions and unsafe archives)";

    public override string Usage => "ptd cache import cache.tar.gz [--tier NAME] [--json]";

    public override string[] Valued => ["--tier"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var file = c.Args.Positional("ARCHIVE");
        await using var manager = c.OpenManager();
        var r = await manager.ImportAsync(file, c.Args.Get("--tier"), c.Progress(), c.Token);
        c.Emit(r, () =>
        {
            c.Out.WriteLine($"{r.Entries} entries in the archive: imported {r.Imported} ({Fmt.Bytes(r.Bytes)}) into tier {r.Tier}, {r.AlreadyPresent} already present, {r.Refused.Count} refused");
            foreach (var x in r.Refused) c.Out.WriteLine($"  refused {x.StorageKey}: {x.Reason}");
        });
        return r.Refused.Count > 0 ? CacheCommand.Problems : 0;
    }
}

/// <summary><c>ptd cache sync</c>.</summary>
internal sealed class SyncSubcommand : CacheSubcommand
{
    public override string Name => "sync";

    public override string Summary => "copy missing current entries between tiers or locations, verifying each (resumable)";

    public override string Usage => "ptd cache sync --from TIER|URI --to TIER|URI [--kind KINDS] [--json]";

    public override string[] Valued => ["--from", "--to", "--kind"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        var from = c.Args.Get("--from") ?? throw new UsageException("missing --from TIER|URI");
        var to = c.Args.Get("--to") ?? throw new UsageException("missing --to TIER|URI");
        var layers = c.Layers();
        await using var manager = c.OpenManager();
        var r = await manager.SyncAsync(from, to, layers, c.Progress(), c.Token);
        c.Emit(r, () =>
        {
            c.Out.WriteLine($"{r.From} -> {r.To}: {r.Considered} current entries, copied {r.Copied} ({Fmt.Bytes(r.BytesCopied)}), {r.AlreadyPresent} already present, {r.Rejected} rejected");
            foreach (var p in r.Problems) c.Out.WriteLine($"  {p}");
        });
        return r.Problems.Count > 0 ? CacheCommand.Problems : 0;
    }
}

/// <summary><c>ptd cache prewarm</c>.</summary>
internal sealed class PrewarmSubcommand : CacheSubcommand
{
    public override string Name => "prewarm";

    public override string Summary => "record and store the traces of models ahead of a run (layer 1; kernels later)";

    public override string Usage => "ptd cache prewarm MODEL... [--kind KINDS] [--json]";

    public override string[] Valued => ["--kind"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        if (c.Args.Positionals.Count == 0) throw new UsageException("name at least one MODEL, e.g. ptd cache prewarm coalescent:n=30 rabbits:R=200");
        var layers = c.Layers();
        await using var manager = c.OpenManager();
        var items = await manager.PrewarmAsync(c.Args.Positionals, layers, null, c.Progress(), c.Token);
        c.Emit(new { items }, () =>
        {
            foreach (var i in items)
                c.Out.WriteLine($"{i.Model,-22} {i.Layer,-7} {i.Outcome,-11} {Fmt.Short(i.Key),-17} {Fmt.Bytes(i.Bytes),10} {i.Milliseconds,8:F1} ms  {i.Detail}");
        });
        return items.Any(i => i.Outcome is "failed" or "unavailable") ? CacheCommand.Problems : 0;
    }
}
