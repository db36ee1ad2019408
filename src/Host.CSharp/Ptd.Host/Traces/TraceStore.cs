using System.Diagnostics;
using Ptd.Core;
using Trace = Ptd.Core.Trace;
using Ptd.Host.Caching;

namespace Ptd.Host.Traces;

/// <summary>When <see cref="TraceStore"/> runs <c>TracePasses.optimize</c> after recording.</summary>
public enum TraceOptimization
{
    /// <summary>
    /// When the trace's repeated edge-weight ops are at least <see cref="TraceStoreOptions.OptimizeThreshold"/> of its
    /// ops (<c>TracePasses.duplicateWeightShare</c>). Equal weights make equal rate sums, inverses and products
    /// downstream, so the passes remove about twice that share: coalescent n = 30 (45%) 82% of the ops, a replay 2×
    /// faster; rabbits3 R = 200 (7.7%, trace revision 4) 17% of the ops, a replay 1.45× faster, for 0.30 s, 3× its
    /// recording time, paid once per model structure since the store caches the optimized trace. Below the
    /// threshold they would cost that time for a few percent.
    /// </summary>
    Auto,

    /// <summary>Always optimize.</summary>
    Always,

    /// <summary>Never optimize (fastest recording).</summary>
    Never,
}

/// <summary>Settings of a <see cref="TraceStore"/>.</summary>
public sealed class TraceStoreOptions
{
    /// <summary>When to optimize recorded traces (default <see cref="TraceOptimization.Auto"/>).</summary>
    public TraceOptimization Optimize { get; set; } = TraceOptimization.Auto;

    /// <summary>The share of repeated weight ops from which <see cref="TraceOptimization.Auto"/> optimizes (default 0.05).</summary>
    public double OptimizeThreshold { get; set; } = 0.05;

    /// <summary>Receives warnings (unusable cache entries, cache failures). Never throws into the store.</summary>
    public Action<string>? Log { get; set; }
}

/// <summary>Counters of a <see cref="TraceStore"/> since it was created.</summary>
/// <param name="Requests">Lookups.</param>
/// <param name="Hits">Lookups answered by a cache tier with a usable trace.</param>
/// <param name="Recordings">Traces recorded (misses, unusable entries, no cache).</param>
/// <param name="DecodeFailures">Cached payloads that passed the cache's checks but did not decode as the requested model's trace.</param>
/// <param name="CacheFailures">Lookups where the cache itself failed and the trace was recorded without it.</param>
/// <param name="Cache">The cache's own statistics (per tier and kind), or null without a cache.</param>
public sealed record TraceStoreStatistics(long Requests, long Hits, long Recordings, long DecodeFailures, long CacheFailures, CacheStatistics? Cache);

/// <summary>
/// Gets elimination traces through the artifact cache: <see cref="GetOrRecordAsync"/> computes the model's structural
/// key (<c>ModelKey.compute</c>), returns the cached trace (kind <c>trace</c>, revision <c>Trace.FormatRevision</c>,
/// payload = <c>TraceEncoding</c> binary), or records, optionally optimizes, stores and returns it. A cache never
/// makes a lookup fail: a failing tier is a miss (the cache's policy), a payload that does not decode is counted,
/// logged, re-recorded and overwritten, and any other cache failure is logged and the trace recorded without it.
/// Thread-safe; concurrent lookups of one model in a process record it once (the cache's single flight).
/// </summary>
public sealed class TraceStore : IAsyncDisposable, IDisposable
{
    private static readonly Lazy<TraceStore> SharedStore = new(() => FromEnvironment(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly IArtifactCache? _cache;
    private readonly bool _ownsCache;
    private readonly TraceStoreOptions _options;
    private readonly string? _configurationProblem;
    private long _requests, _hits, _recordings, _decodeFailures, _cacheFailures;
    private int _disposed;

    /// <summary>Creates a store over a cache (null: no caching, every lookup records).</summary>
    /// <param name="cache">The cache; not disposed by the store.</param>
    /// <param name="options">Settings (null: defaults).</param>
    public TraceStore(IArtifactCache? cache, TraceStoreOptions? options = null)
        : this(cache, ownsCache: false, options, configurationProblem: null)
    {
    }

    private TraceStore(IArtifactCache? cache, bool ownsCache, TraceStoreOptions? options, string? configurationProblem)
    {
        _options = options ?? new TraceStoreOptions();
        if (_options.OptimizeThreshold is < 0 or > 1 || double.IsNaN(_options.OptimizeThreshold))
            throw new ArgumentException($"{nameof(TraceStoreOptions.OptimizeThreshold)} must be between 0 and 1, not {_options.OptimizeThreshold}");
        // A cache without tiers (PTD_CACHE=off) is no cache.
        if (cache is not null && cache.Tiers.Count == 0)
        {
            if (ownsCache) _ = cache.DisposeAsync().AsTask();
            cache = null;
        }
        _cache = cache;
        _ownsCache = ownsCache && cache is not null;
        _configurationProblem = configurationProblem;
    }

    /// <summary>The artifact kind of traces: name <c>trace</c>, revision <c>Trace.FormatRevision</c>.</summary>
    public static ArtifactKind Kind { get; } = new("trace", TraceModule.FormatRevision);

    /// <summary>
    /// A process-wide store configured by the environment (see <see cref="FromEnvironment"/>), created on first use
    /// and never disposed; what <see cref="Models.PhaseTypeModel"/> uses unless given a store.
    /// </summary>
    public static TraceStore Shared => SharedStore.Value;

    /// <summary>The cache consulted, or null when caching is off.</summary>
    public IArtifactCache? Cache => _cache;

    /// <summary>True when lookups go through a cache with at least one tier.</summary>
    public bool IsCaching => _cache is not null;

    /// <summary>Why the environment's cache configuration could not be used, or null.</summary>
    public string? ConfigurationProblem => _configurationProblem;

    /// <summary>
    /// A store over the cache the environment configures (<c>PTD_CACHE</c>, <c>PTD_CACHE_DIR</c>, the config file;
    /// default: the local disk tier <c>~/.ptd/cache</c>; <c>PTD_CACHE=off</c> disables it). A malformed configuration
    /// does not fail: it is logged and the store records without a cache.
    /// </summary>
    /// <param name="getEnvironmentVariable">Reads variables (null: the process environment).</param>
    /// <param name="options">Settings; its <see cref="TraceStoreOptions.Log"/> also receives the cache's messages.</param>
    /// <returns>The store; dispose it to close the cache.</returns>
    public static TraceStore FromEnvironment(Func<string, string?>? getEnvironmentVariable = null, TraceStoreOptions? options = null)
    {
        options ??= new TraceStoreOptions();
        var log = options.Log;
        try
        {
            var cache = ArtifactCache.FromEnvironment(getEnvironmentVariable, log: log is null ? null : m => SafeLog(log, $"cache: {m}"));
            return new TraceStore(cache, ownsCache: true, options, null);
        }
        catch (Exception e) when (e is PtdException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            SafeLog(log, $"cache configuration unusable, continuing without a cache: {e.Message}");
            return new TraceStore(null, ownsCache: false, options, e.Message);
        }
    }

    /// <summary>A store without a cache: every lookup records.</summary>
    /// <param name="options">Settings (null: defaults).</param>
    /// <returns>The store.</returns>
    public static TraceStore Uncached(TraceStoreOptions? options = null) => new(null, ownsCache: false, options, null);

    /// <summary>The store's counters and the cache's statistics.</summary>
    /// <returns>A snapshot.</returns>
    public TraceStoreStatistics GetStatistics() =>
        new(Interlocked.Read(ref _requests), Interlocked.Read(ref _hits), Interlocked.Read(ref _recordings),
            Interlocked.Read(ref _decodeFailures), Interlocked.Read(ref _cacheFailures), _cache?.GetStatistics());

    /// <summary>Synchronous <see cref="GetOrRecordAsync"/>.</summary>
    /// <param name="model">The model.</param>
    /// <returns>The trace and how it was obtained.</returns>
    public TraceLookup GetOrRecord(Graph model) => GetOrRecordAsync(model).GetAwaiter().GetResult();

    /// <summary>
    /// The trace of <paramref name="model"/>: from the cache when a tier has it (no elimination), else recorded (and
    /// optimized per <see cref="TraceStoreOptions.Optimize"/>) and stored in every writable tier.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="cancellationToken">Cancels the wait (a recording already running for other callers continues).</param>
    /// <returns>The trace, where it came from, and timings.</returns>
    /// <exception cref="PtdException">Recording failed (the model cannot be eliminated); never because of the cache.</exception>
    public async Task<TraceLookup> GetOrRecordAsync(Graph model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Interlocked.Increment(ref _requests);
        var start = Stopwatch.GetTimestamp();
        var key = ModelKey.compute(model);
        var keyTime = Stopwatch.GetElapsedTime(start);
        if (_cache is null)
        {
            var r = Record(model);
            return new TraceLookup
            {
                Trace = r.Trace, Key = key, Origin = TraceOrigin.Recorded, Optimized = r.Optimized,
                RecordTime = r.RecordTime, OptimizeTime = r.OptimizeTime, KeyTime = keyTime,
                CacheFailure = _configurationProblem, TotalTime = Stopwatch.GetElapsedTime(start),
            };
        }

        // The factory runs at most once per flight; what it recorded is kept so that it is not decoded again.
        Recording? mine = null;
        Exception? factoryError = null;
        var writesBefore = Writes();
        CacheResult result;
        try
        {
            result = await _cache.GetOrCreateAsync(Kind, key.Hex, _ =>
            {
                try
                {
                    var r = Record(model);
                    var sw = Stopwatch.GetTimestamp();
                    var bytes = TraceEncoding.encode(r.Trace);
                    mine = r with { EncodeTime = Stopwatch.GetElapsedTime(sw) };
                    return Task.FromResult(bytes);
                }
                catch (Exception e)
                {
                    factoryError = e;
                    throw;
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (!ReferenceEquals(e, factoryError))
        {
            // Not the recording's own failure: the cache broke in a way it did not absorb. Record without it.
            Interlocked.Increment(ref _cacheFailures);
            var problem = $"{e.GetType().Name}: {e.Message}";
            Log($"trace cache failed for model {Short(key)} ({problem}); recording without the cache");
            var r = mine ?? Record(model);
            return new TraceLookup
            {
                Trace = r.Trace, Key = key, Origin = TraceOrigin.Recorded, CacheEnabled = true, Optimized = r.Optimized,
                RecordTime = r.RecordTime, OptimizeTime = r.OptimizeTime, KeyTime = keyTime, CacheFailure = problem,
                TotalTime = Stopwatch.GetElapsedTime(start),
            };
        }

        if (result.Outcome == CacheOutcome.Computed && mine is { } own)
        {
            return new TraceLookup
            {
                Trace = own.Trace, Key = key, Origin = TraceOrigin.Recorded, CacheEnabled = true, Optimized = own.Optimized,
                Stored = Writes() > writesBefore, PayloadBytes = result.Payload.Length, RecordTime = own.RecordTime,
                OptimizeTime = own.OptimizeTime, EncodeTime = own.EncodeTime, KeyTime = keyTime, TotalTime = Stopwatch.GetElapsedTime(start),
            };
        }

        // A hit, or a recording another caller ran: decode, strictly, onto this model (its canonical bytes must be the
        // payload's model section). The cache's envelope has verified a SHA-256 of exactly these bytes, so the trace's
        // own checksum is not recomputed; every structural check still runs.
        var decodeStart = Stopwatch.GetTimestamp();
        Trace trace;
        try
        {
            trace = TraceEncoding.decodeForModelPreverified(model, result.Payload);
        }
        catch (PtdException e)
        {
            return await ReRecordAsync(model, key, keyTime, start, e.Message, cancellationToken).ConfigureAwait(false);
        }
        var decodeTime = Stopwatch.GetElapsedTime(decodeStart);
        var hit = result.Outcome == CacheOutcome.Hit;
        if (hit) Interlocked.Increment(ref _hits);
        var tier = result.TierIndex >= 0 && result.TierIndex < _cache.Tiers.Count ? _cache.Tiers[result.TierIndex] : null;
        return new TraceLookup
        {
            Trace = trace, Key = key, Origin = hit ? TraceOrigin.CacheHit : TraceOrigin.Recorded, CacheEnabled = true,
            Tier = result.Tier, TierLocation = tier?.DisplayName, SharedFlight = result.SharedFlight, Stored = !hit,
            PayloadBytes = result.Payload.Length, DecodeTime = decodeTime, KeyTime = keyTime, TotalTime = Stopwatch.GetElapsedTime(start),
        };
    }

    // The cache accepted the entry (its envelope checks passed) but it is not a trace of this model: a producer bug,
    // or an entry written by hand. Count it, say so, and replace it with a fresh recording.
    private async Task<TraceLookup> ReRecordAsync(Graph model, TraceKey key, TimeSpan keyTime, long start, string reason, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _decodeFailures);
        Log($"cached trace for model {Short(key)} is unusable ({reason}); re-recording it");
        var r = Record(model);
        var encodeStart = Stopwatch.GetTimestamp();
        var bytes = TraceEncoding.encode(r.Trace);
        var encodeTime = Stopwatch.GetElapsedTime(encodeStart);
        var stored = false;
        try
        {
            stored = await _cache!.SetAsync(Kind, key.Hex, bytes, cancellationToken).ConfigureAwait(false) > 0;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _cacheFailures);
            Log($"could not replace the unusable cached trace for model {Short(key)}: {e.GetType().Name}: {e.Message}");
        }
        return new TraceLookup
        {
            Trace = r.Trace, Key = key, Origin = TraceOrigin.Recorded, CacheEnabled = true, Optimized = r.Optimized, Stored = stored,
            DecodeFailure = reason, PayloadBytes = bytes.Length, RecordTime = r.RecordTime, OptimizeTime = r.OptimizeTime,
            EncodeTime = encodeTime, KeyTime = keyTime, TotalTime = Stopwatch.GetElapsedTime(start),
        };
    }

    private sealed record Recording(Trace Trace, bool Optimized, TimeSpan RecordTime, TimeSpan OptimizeTime, TimeSpan EncodeTime);

    private Recording Record(Graph model)
    {
        var start = Stopwatch.GetTimestamp();
        var trace = TraceModule.record(model);
        var recordTime = Stopwatch.GetElapsedTime(start);
        Interlocked.Increment(ref _recordings);
        var optimize = _options.Optimize switch
        {
            TraceOptimization.Always => true,
            TraceOptimization.Never => false,
            _ => TracePasses.duplicateWeightShare(trace) >= _options.OptimizeThreshold,
        };
        if (!optimize) return new Recording(trace, false, recordTime, TimeSpan.Zero, TimeSpan.Zero);
        var optStart = Stopwatch.GetTimestamp();
        var optimized = TracePasses.optimize(trace);
        return new Recording(optimized, true, recordTime, Stopwatch.GetElapsedTime(optStart), TimeSpan.Zero);
    }

    // Entries written (or found already present) for traces in any tier: tells whether a recording was stored.
    private long Writes()
    {
        try
        {
            return _cache?.GetStatistics().Tiers.Where(t => t.Kind == Kind.Name).Sum(t => t.Writes + t.WritesAlreadyPresent) ?? 0;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return 0;
        }
    }

    private static string Short(TraceKey key) => key.Hex[..12];

    private void Log(string message) => SafeLog(_options.Log, message);

    private static void SafeLog(Action<string>? log, string message)
    {
        try
        {
            log?.Invoke(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failing logger must not fail a lookup.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_ownsCache && _cache is not null) await _cache.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
