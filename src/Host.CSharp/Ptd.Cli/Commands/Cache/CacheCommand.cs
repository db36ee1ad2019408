using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ptd.Host.Caching;

namespace Ptd.Cli.Commands.Cache;

/// <summary>
/// <c>ptd cache SUBCOMMAND</c>: management of the artifact cache over every layer and tier. The work is done by
/// <see cref="CacheManager"/>; the sub-command classes only parse arguments and print reports.
/// </summary>
public sealed class CacheCommand : ICommand
{
    /// <summary>Exit code when a command ran but found problems (bad entries, refused imports, tiers that failed).</summary>
    public const int Problems = 1;

    private static readonly CacheSubcommand[] Subcommands =
    [
        new StatusSubcommand(), new ListSubcommand(), new ShowSubcommand(),
        new VerifySubcommand(), new ClearSubcommand(), new VacuumSubcommand(),
        new ExportSubcommand(), new ImportSubcommand(), new SyncSubcommand(),
        new PrewarmSubcommand(), new StatsSubcommand(), new PluginsSubcommand(),
    ];

    /// <inheritdoc />
    public string Name => "cache";

    /// <inheritdoc />
    public string Summary => "inspect and manage the trace/kernel/code cache (status, verify, vacuum, export, sync, …)";

    /// <inheritdoc />
    public string Usage =>
        "ptd cache SUBCOMMAND [options]\n\n" +
        string.Join("\n", Subcommands.Select(s => $"  {s.Name,-8} {s.Summary}")) + "\n\n" +
        string.Join("\n", Subcommands.Select(s => "  " + s.Usage)) + "\n\n" +
        "Every sub-command takes --json (one JSON document on stdout) and --verbose (diagnostics on stderr).\n" +
        "KINDS: traces, kernels, code (comma-separated) or all. SIZE: 500MB, 10GB. DURATION: 12h, 30d.\n" +
        "Layer 3 (code: persisted emitted code) is deliberately not built: kernels are interpreted plans (docs/PERFORMANCE.md).\n" +
        "The cache is configured by PTD_CACHE / PTD_CACHE_CONFIG (docs/configuration.md).\n" +
        "Exit codes: 0 success, 1 done but problems were found (bad entries, refused imports, failing tiers),\n" +
        "2 bad input (usage, unsafe archive, unknown tier), 70 internal error.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0) throw new UsageException($"missing sub-command; one of: {string.Join(", ", Subcommands.Select(s => s.Name))} (ptd cache --help)");
        var sub = Subcommands.FirstOrDefault(s => s.Name == args[0])
                  ?? throw new UsageException($"unknown sub-command '{args[0]}'; one of: {string.Join(", ", Subcommands.Select(s => s.Name))} (ptd cache --help)");
        var parsed = Args.Parse($"cache {sub.Name}", args.Skip(1).ToArray(), sub.Valued, sub.Flags.Append("--json"));
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var invocation = new CacheInvocation(parsed, new Output(stdout, stderr, parsed.Has("--verbose")), cancel.Token);
            return sub.RunAsync(invocation).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            stderr.WriteLine($"ptd cache {sub.Name}: interrupted");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}

/// <summary>One <c>ptd cache</c> sub-command.</summary>
internal abstract class CacheSubcommand
{
    public abstract string Name { get; }

    public abstract string Summary { get; }

    /// <summary>The usage line.</summary>
    public abstract string Usage { get; }

    public virtual string[] Valued => [];

    public virtual string[] Flags => [];

    public abstract Task<int> RunAsync(CacheInvocation c);
}

/// <summary>What a sub-command gets: its arguments, where to write, and helpers shared by all of them.</summary>
internal sealed class CacheInvocation(Args args, Output output, CancellationToken token)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public Args Args { get; } = args;

    public Output Output { get; } = output;

    public CancellationToken Token { get; } = token;

    public bool Json => Args.Has("--json");

    public TextWriter Out => Output.Out;

    public TextWriter Err => Output.Err;

    /// <summary>The manager over the configured cache. Configuration warnings always go to stderr; other diagnostics with --verbose.</summary>
    public CacheManager OpenManager()
    {
        var manager = CacheManager.FromEnvironment(log: m => Output.Progress(m));
        foreach (var w in manager.Cache.Warnings) Err.WriteLine($"ptd cache: warning: {w}");
        return manager;
    }

    /// <summary>The layers of <c>--kind</c> (null when not given); a note on stderr when a layer this build does not build is named.</summary>
    public CacheLayer[]? Layers()
    {
        if (Args.Get("--kind") is not { } k) return null;
        var layers = CacheLayers.Parse([k]);
        NoteNotBuilt(layers, explicitOnly: k.Split(',').Select(n => n.Trim().ToLowerInvariant()).ToArray());
        return layers;
    }

    /// <summary>
    /// Says on stderr (also with --json, whose stdout stays one document) why a named layer has no entries of this
    /// build: layer 3 (code) is deliberately not built. Only for layers named explicitly, not through <c>all</c>.
    /// </summary>
    public void NoteNotBuilt(IEnumerable<CacheLayer> layers, IReadOnlyCollection<string> explicitOnly)
    {
        foreach (var l in layers)
            if (l.NotBuilt is { } why && (explicitOnly.Contains(l.Name) || explicitOnly.Contains(l.KindName)))
                Err.WriteLine($"ptd cache: note: {why}. Entries of kind '{l.KindName}' can only come from elsewhere; they are listed, verified and cleared like any other.");
    }

    /// <summary>Prints the report as JSON, or runs the human printer.</summary>
    public void Emit(object report, Action human)
    {
        if (Json) Out.WriteLine(JsonSerializer.Serialize(report, report.GetType(), JsonOptions));
        else human();
    }

    /// <summary>Progress on stderr: a bar redrawn in place on a terminal, otherwise a line at most every 2 s (and the last one).</summary>
    public IProgress<CacheProgress> Progress() => new StderrProgress(Err, Console.IsErrorRedirected);

    private sealed class StderrProgress(TextWriter err, bool redirected) : IProgress<CacheProgress>
    {
        private DateTime _last = DateTime.MinValue;

        public void Report(CacheProgress p)
        {
            var final = p.Done >= p.Total;
            var now = DateTime.UtcNow;
            if (!final && now - _last < (redirected ? TimeSpan.FromSeconds(2) : TimeSpan.FromMilliseconds(100))) return;
            _last = now;
            if (redirected)
            {
                err.WriteLine($"{p.Operation}: {p.Done}/{p.Total} entries, {Fmt.Bytes(p.Bytes)}");
                return;
            }
            const int width = 30;
            var filled = p.Total == 0 ? width : (int)(width * Math.Min(1.0, (double)p.Done / p.Total));
            err.Write($"\r{p.Operation} [{new string('#', filled)}{new string('.', width - filled)}] {p.Done}/{p.Total} {Fmt.Bytes(p.Bytes),10}");
            if (final) err.WriteLine();
        }
    }
}

/// <summary>Formatting shared by the sub-commands.</summary>
internal static class Fmt
{
    public static string Bytes(long n)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double v = n;
        var u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{n} B" : v.ToString(v >= 100 ? "F0" : "F1", CultureInfo.InvariantCulture) + " " + units[u];
    }

    public static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";

    public static string Duration(TimeSpan? d) => d is not { } x ? "-"
        : x.TotalDays >= 1 ? $"{x.TotalDays:0.#}d" : x.TotalHours >= 1 ? $"{x.TotalHours:0.#}h" : x.TotalMinutes >= 1 ? $"{x.TotalMinutes:0.#}m" : $"{x.TotalSeconds:0.#}s";

    public static string Short(string key) => key.Length > 16 ? key[..16] + "…" : key;
}
