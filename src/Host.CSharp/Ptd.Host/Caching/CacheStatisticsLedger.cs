using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ptd.Host.Caching;

/// <summary>Counters summed over many processes (the content of a <see cref="CacheStatisticsLedger"/>).</summary>
public sealed class PersistedCacheStatistics
{
    /// <summary>When counting started (the first run recorded after a reset).</summary>
    public DateTimeOffset Since { get; init; }

    /// <summary>When a run was last added.</summary>
    public DateTimeOffset Updated { get; init; }

    /// <summary>How many runs (processes, or disposed caches) were added.</summary>
    public long Runs { get; init; }

    /// <summary>Per tier and kind, summed.</summary>
    public IReadOnlyList<TierStatistics> Tiers { get; init; } = Array.Empty<TierStatistics>();

    /// <summary>Per kind, summed.</summary>
    public IReadOnlyList<KindStatistics> Kinds { get; init; } = Array.Empty<KindStatistics>();
}

/// <summary>
/// A small JSON file that sums the cache counters of every process that used the cache, so that
/// <c>ptd cache stats</c> (a fresh process) can show hits and misses of earlier <c>ptd</c> runs.
/// </summary>
/// <remarks>
/// <para>Why a file: each <c>ptd</c> invocation is its own process, so in-memory counters die with it. A cache built by
/// <see cref="ArtifactCache.FromEnvironment"/> adds its counters here when it is disposed (only if it served any
/// request). Services embedding the cache use <c>System.Diagnostics.Metrics</c> instead and leave the ledger off.</para>
/// <para>Location: <c>PTD_CACHE_STATS</c> (a path, or <c>off</c>), default <c>~/.ptd/cache-stats.json</c>. Updates are
/// serialized between processes with a lock file and published by an atomic rename; a failure to update is logged
/// and ignored (statistics must never fail a computation).</para>
/// </remarks>
public sealed class CacheStatisticsLedger
{
    /// <summary>The variable that names the ledger file (or <c>off</c>).</summary>
    public const string Variable = "PTD_CACHE_STATS";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Uses the file at <paramref name="path"/>.</summary>
    /// <param name="path">The ledger file.</param>
    public CacheStatisticsLedger(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
    }

    /// <summary>The ledger file.</summary>
    public string Path { get; }

    /// <summary>The ledger named by the environment, or null when it is switched off (<c>PTD_CACHE_STATS=off</c>) or no home directory is known.</summary>
    /// <param name="getEnvironmentVariable">Reads variables (null: the process environment).</param>
    /// <returns>The ledger or null.</returns>
    public static CacheStatisticsLedger? FromEnvironment(Func<string, string?>? getEnvironmentVariable = null)
    {
        var env = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var value = env(Variable);
        if (value is not null)
        {
            var v = value.Trim();
            if (v.Length == 0 || v.Equals("off", StringComparison.OrdinalIgnoreCase) || v.Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
            return new CacheStatisticsLedger(v);
        }
        var home = env("HOME") ?? env("USERPROFILE");
        return string.IsNullOrEmpty(home) ? null : new CacheStatisticsLedger(System.IO.Path.Combine(home, ".ptd", "cache-stats.json"));
    }

    /// <summary>Reads the ledger; null when there is none yet (or it is unreadable, which is reported through <paramref name="log"/>).</summary>
    /// <param name="log">Receives a message when the file exists but cannot be read.</param>
    /// <returns>The summed counters, or null.</returns>
    public PersistedCacheStatistics? Read(Action<string>? log = null)
    {
        if (!File.Exists(Path)) return null;
        try
        {
            return JsonSerializer.Deserialize<PersistedCacheStatistics>(File.ReadAllText(Path), JsonOptions);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            log?.Invoke($"cache statistics file {Path} cannot be read ({e.GetType().Name}: {e.Message}); ignoring it");
            return null;
        }
    }

    /// <summary>Adds one run's counters (does nothing when the run did nothing).</summary>
    /// <param name="run">The counters of the run.</param>
    /// <param name="log">Receives a message when the update fails.</param>
    /// <returns>True when the ledger was updated.</returns>
    public bool Add(CacheStatistics run, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Kinds.All(k => k.Requests == 0) && run.Tiers.All(t => t.Hits + t.Misses + t.Writes + t.Evictions + t.Errors + t.Timeouts == 0)) return false;
        try
        {
            var dir = System.IO.Path.GetDirectoryName(Path)!;
            Directory.CreateDirectory(dir);
            using var _ = AcquireLock();
            var current = Read(log);
            var now = DateTimeOffset.UtcNow;
            var merged = new PersistedCacheStatistics
            {
                Since = current?.Since ?? run.Since,
                Updated = now,
                Runs = (current?.Runs ?? 0) + 1,
                Tiers = MergeTiers(current?.Tiers ?? [], run.Tiers),
                Kinds = MergeKinds(current?.Kinds ?? [], run.Kinds),
            };
            var temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(Path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
            File.WriteAllText(temp, JsonSerializer.Serialize(merged, JsonOptions));
            File.Move(temp, Path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException)
        {
            log?.Invoke($"cache statistics file {Path} was not updated ({e.GetType().Name}: {e.Message}); point {Variable} at a writable file, or set {Variable}=off");
            return false;
        }
    }

    /// <summary>Deletes the ledger (counting starts afresh with the next run).</summary>
    /// <returns>True when a ledger existed.</returns>
    public bool Reset()
    {
        if (!File.Exists(Path)) return false;
        using (AcquireLock()) File.Delete(Path);
        return true;
    }

    // Another process holding the lock for long (it only merges a small file) means it died: give up after 5 s.
    private FileStream AcquireLock()
    {
        var lockPath = Path + ".lock";
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }

    private static TierStatistics[] MergeTiers(IEnumerable<TierStatistics> a, IEnumerable<TierStatistics> b) =>
        a.Concat(b)
            .GroupBy(t => (t.Tier, t.Kind))
            .OrderBy(g => g.Key.Tier, StringComparer.Ordinal).ThenBy(g => g.Key.Kind, StringComparer.Ordinal)
            .Select(g => g.Aggregate((x, y) => new TierStatistics
            {
                Tier = x.Tier,
                Kind = x.Kind,
                Hits = x.Hits + y.Hits,
                MissesNotFound = x.MissesNotFound + y.MissesNotFound,
                MissesRejected = x.MissesRejected + y.MissesRejected,
                MissesError = x.MissesError + y.MissesError,
                MissesTimeout = x.MissesTimeout + y.MissesTimeout,
                MissesSkipped = x.MissesSkipped + y.MissesSkipped,
                Errors = x.Errors + y.Errors,
                Timeouts = x.Timeouts + y.Timeouts,
                Rejected = x.Rejected + y.Rejected,
                RejectedByReason = x.RejectedByReason.Concat(y.RejectedByReason).GroupBy(p => p.Key, StringComparer.Ordinal)
                    .ToDictionary(p => p.Key, p => p.Sum(q => q.Value), StringComparer.Ordinal),
                BytesRead = x.BytesRead + y.BytesRead,
                BytesWritten = x.BytesWritten + y.BytesWritten,
                Writes = x.Writes + y.Writes,
                WritesAlreadyPresent = x.WritesAlreadyPresent + y.WritesAlreadyPresent,
                WritesSkipped = x.WritesSkipped + y.WritesSkipped,
                Backfills = x.Backfills + y.Backfills,
                Evictions = x.Evictions + y.Evictions,
                BytesEvicted = x.BytesEvicted + y.BytesEvicted,
                ReadLatency = Sum(x.ReadLatency, y.ReadLatency),
                WriteLatency = Sum(x.WriteLatency, y.WriteLatency),
            }))
            .ToArray();

    private static KindStatistics[] MergeKinds(IEnumerable<KindStatistics> a, IEnumerable<KindStatistics> b) =>
        a.Concat(b)
            .GroupBy(k => k.Kind)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Aggregate((x, y) => new KindStatistics
            {
                Kind = x.Kind,
                Requests = x.Requests + y.Requests,
                Hits = x.Hits + y.Hits,
                Misses = x.Misses + y.Misses,
                Computations = x.Computations + y.Computations,
                ComputationFailures = x.ComputationFailures + y.ComputationFailures,
                SharedFlights = x.SharedFlights + y.SharedFlights,
            }))
            .ToArray();

    private static LatencyStatistics Sum(LatencyStatistics x, LatencyStatistics y) =>
        new(x.Count + y.Count, x.TotalMilliseconds + y.TotalMilliseconds, Math.Max(x.MaxMilliseconds, y.MaxMilliseconds));
}
