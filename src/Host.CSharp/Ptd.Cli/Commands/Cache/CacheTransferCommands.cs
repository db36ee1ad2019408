using Ptd.Host.Caching;
using Ptd.Host.Kernels;

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

/// <summary><c>ptd cache prewarm</c>: layers 1 (traces) and 2 (kernels); layer 3 (code) is deliberately not built.</summary>
internal sealed class PrewarmSubcommand : CacheSubcommand
{
    public override string Name => "prewarm";

    public override string Summary => "record traces and build likelihood kernels of models ahead of a run (layers 1-2)";

    public override string Usage => "ptd cache prewarm MODEL... [--theta-dim D] [--data-layout times|counts|moments] [--kind KINDS] [--json]";

    public override string[] Valued => ["--kind", "--theta-dim", "--data-layout"];

    public override async Task<int> RunAsync(CacheInvocation c)
    {
        if (c.Args.Positionals.Count == 0) throw new UsageException("name at least one MODEL, e.g. ptd cache prewarm coalescent:n=30 rabbits:R=200");
        // Not c.Layers(): a code layer's note is part of this report (below), not a separate stderr line.
        var layers = c.Args.Get("--kind") is { } k ? CacheLayers.Parse([k]) : null;
        var settings = new Dictionary<string, string>();
        if (c.Args.Get("--theta-dim") is { } d) settings[KernelWarmer.ThetaDimSetting] = d;
        if (c.Args.Get("--data-layout") is { } layout)
        {
            foreach (var name in layout.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) DataLayout.Parse(name);
            settings[KernelWarmer.DataLayoutSetting] = layout;
        }
        if (settings.Count > 0 && layers is not null && !layers.Contains(CacheLayers.Kernels))
            throw new UsageException("--theta-dim and --data-layout set up kernels; add kernels to --kind (e.g. --kind traces,kernels) or drop them");
        await using var manager = c.OpenManager();
        var items = await manager.PrewarmAsync(c.Args.Positionals, layers, settings, c.Progress(), c.Token);
        var stored = items.Where(i => i.Outcome == "stored").ToArray();
        var summary = new
        {
            stored = stored.Length,
            storedBytes = stored.Sum(i => i.Bytes),
            present = items.Count(i => i.Outcome == "present"),
            skipped = items.Count(i => i.Outcome == "skipped"),
            failed = items.Count(i => i.Outcome is "failed" or "unavailable"),
        };
        var notes = items.Where(i => i.Outcome == "not-built").Select(i => i.Detail).Distinct().ToArray();
        c.Emit(new { items = items.Where(i => i.Outcome != "not-built").ToArray(), summary, notes }, () =>
        {
            foreach (var i in items.Where(i => i.Outcome != "not-built"))
                c.Out.WriteLine($"{i.Model,-22} {i.Layer,-7} {i.Outcome,-8} {Fmt.Short(i.Key),-17} {Fmt.Bytes(i.Bytes),10} {i.Milliseconds,8:F1} ms  {i.Detail}");
            c.Out.WriteLine($"stored {summary.stored} entries ({Fmt.Bytes(summary.storedBytes)}): " +
                            string.Join(", ", CacheLayers.All.Where(l => l.NotBuilt is null).Select(l => $"{stored.Count(i => i.Layer == l.Name)} {l.Name}")) +
                            $"; {summary.present} already present, {summary.skipped} skipped, {summary.failed} failed");
            foreach (var n in notes) c.Out.WriteLine($"note: {n}");
        });
        return summary.failed > 0 ? CacheCommand.Problems : 0;
    }
}
