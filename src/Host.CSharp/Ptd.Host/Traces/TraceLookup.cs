using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Traces;

/// <summary>Where a trace came from.</summary>
public enum TraceOrigin
{
    /// <summary>Read from a cache tier (no elimination).</summary>
    CacheHit,

    /// <summary>Recorded by eliminating the model (a cache miss, an unusable cache entry, or no cache).</summary>
    Recorded,

    /// <summary>Read from a trace file, or handed over by the caller.</summary>
    Provided,
}

/// <summary>
/// How <see cref="TraceStore.GetOrRecordAsync"/> (or a trace file) produced a trace, with timings for
/// <c>--verbose</c> and logs. <see cref="Describe"/> gives the one-line summary.
/// </summary>
public sealed record TraceLookup
{
    /// <summary>The trace.</summary>
    public required Trace Trace { get; init; }

    /// <summary>The structural key of the model (the cache key).</summary>
    public required TraceKey Key { get; init; }

    /// <summary>Cache hit, recorded, or provided.</summary>
    public required TraceOrigin Origin { get; init; }

    /// <summary>True when a cache with at least one tier was consulted.</summary>
    public bool CacheEnabled { get; init; }

    /// <summary>The name of the tier that answered (hits only), e.g. <c>0-file</c>.</summary>
    public string? Tier { get; init; }

    /// <summary>The redacted location of that tier, e.g. <c>file:///home/me/.ptd/cache</c>.</summary>
    public string? TierLocation { get; init; }

    /// <summary>True when this lookup joined a recording another caller in this process had started.</summary>
    public bool SharedFlight { get; init; }

    /// <summary>True when a recorded trace was written to at least one tier.</summary>
    public bool Stored { get; init; }

    /// <summary>True when the optimization passes (CSE, folding, dead ops) ran after recording.</summary>
    public bool Optimized { get; init; }

    /// <summary>Why a cached entry could not be used although the cache returned it (it was re-recorded), or null.</summary>
    public string? DecodeFailure { get; init; }

    /// <summary>Why the cache could not be used at all (the trace was recorded without it), or null.</summary>
    public string? CacheFailure { get; init; }

    /// <summary>The trace file read (origin <see cref="TraceOrigin.Provided"/>), or null.</summary>
    public string? SourceFile { get; init; }

    /// <summary>Bytes of the encoded trace (read or written; 0 when not encoded).</summary>
    public long PayloadBytes { get; init; }

    /// <summary>Computing the model key.</summary>
    public TimeSpan KeyTime { get; init; }

    /// <summary>Recording (the elimination over symbolic values), 0 on a hit.</summary>
    public TimeSpan RecordTime { get; init; }

    /// <summary>The optimization passes, 0 when they did not run.</summary>
    public TimeSpan OptimizeTime { get; init; }

    /// <summary>Encoding for the cache, 0 when not encoded.</summary>
    public TimeSpan EncodeTime { get; init; }

    /// <summary>Decoding a cached or file payload, 0 otherwise.</summary>
    public TimeSpan DecodeTime { get; init; }

    /// <summary>The whole lookup, from the key to the usable trace.</summary>
    public TimeSpan TotalTime { get; init; }

    /// <summary>True for a cache hit.</summary>
    public bool IsHit => Origin == TraceOrigin.CacheHit;

    /// <summary>
    /// One line for <c>--verbose</c>, e.g. <c>hit in 0-file (file:///…), 3.1 ms: decode 1.9 ms, 12.0 KB</c> or
    /// <c>miss → recorded in 812.0 ms, stored (total 830.2 ms)</c>.
    /// </summary>
    /// <returns>The summary.</returns>
    public string Describe()
    {
        switch (Origin)
        {
            case TraceOrigin.CacheHit:
                return $"hit in {Tier} ({TierLocation}), {Ms(TotalTime)}: read {Ms(TotalTime - DecodeTime - KeyTime)}, decode {Ms(DecodeTime)}, {Size(PayloadBytes)}";
            case TraceOrigin.Provided:
                return SourceFile is null
                    ? "provided by the caller"
                    : $"from the trace file {SourceFile} ({Size(PayloadBytes)}, decoded in {Ms(DecodeTime)})";
        }
        var recorded = $"recorded in {Ms(RecordTime)}" + (Optimized ? $" + optimized in {Ms(OptimizeTime)}" : "");
        if (CacheFailure is not null) return $"{recorded} (cache unusable: {CacheFailure})";
        if (!CacheEnabled) return $"{recorded} (cache off)";
        var prefix = DecodeFailure is not null ? $"cached entry unusable ({DecodeFailure}) → re-{recorded}" : $"miss → {recorded}";
        if (SharedFlight) return $"miss → recorded by a concurrent request, {Ms(TotalTime)}";
        return $"{prefix}, {(Stored ? "stored" : "not stored")} ({Size(PayloadBytes)}, total {Ms(TotalTime)})";
    }

    /// <inheritdoc />
    public override string ToString() => Describe();

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture) + " ms";

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " KB",
        _ => (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MB",
    };
}
