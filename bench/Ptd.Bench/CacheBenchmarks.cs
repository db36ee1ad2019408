using BenchmarkDotNet.Attributes;
using Ptd.Core;
using Ptd.Host.Caching;
using Ptd.Storage;
using Ptd.Storage.LocalDisk;

namespace Ptd.Bench;

/// <summary>A cache with one local-disk tier in a scratch directory, holding one trace (issue 4 §5).</summary>
internal sealed class LocalTraceCache : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ptd-bench-cache-" + Guid.NewGuid().ToString("N")[..8]);

    public LocalTraceCache(string model)
    {
        Graph = ModelSpec.build(model);
        Key = ModelKey.compute(Graph);
        Payload = TraceEncoding.encode(TraceModule.record(Graph));
        var store = new LocalDiskProvider().Open(StoreUri.Parse("file://" + _dir), BlobStoreContext.Default);
        var options = new ArtifactCacheOptions { AutoEvict = false };
        options.Tiers.Add(new CacheTierOptions { Store = store, Name = "local" });
        Store = store;
        Cache = ArtifactCache.Create(options);
        if (Cache.SetAsync(Kind, Key.Hex, Payload).GetAwaiter().GetResult() != 1) throw new InvalidOperationException("the trace was not stored");
    }

    public static ArtifactKind Kind { get; } = CacheLayers.Traces.CurrentKind!;
    public Graph Graph { get; }
    public TraceKey Key { get; }
    public byte[] Payload { get; }
    public IBlobStore Store { get; }
    public IArtifactCache Cache { get; }

    public byte[] Hit()
    {
        var r = Cache.TryGetAsync(Kind, Key.Hex).GetAwaiter().GetResult();
        return r.Found ? r.Payload : throw new InvalidOperationException("expected a hit");
    }

    public void Dispose()
    {
        Cache.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>
/// A local-disk hit for a 1 MB trace (coalescent n = 24: 1,008,058 payload bytes): the file read, the access-time
/// update, the envelope checks and the payload SHA-256; and the same followed by decoding the trace.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 20)]
public class LocalHitBenchmarks
{
    private LocalTraceCache _cache = null!;

    /// <summary>Stores the trace.</summary>
    [GlobalSetup]
    public void Setup() => _cache = new LocalTraceCache("coalescent:n=24");

    /// <summary>Removes the scratch directory.</summary>
    [GlobalCleanup]
    public void Cleanup() => _cache.Dispose();

    /// <summary>A verified hit: the payload bytes.</summary>
    [Benchmark]
    public byte[] Hit1MB() => _cache.Hit();

    /// <summary>A verified hit, decoded into a usable trace.</summary>
    [Benchmark]
    public Trace Hit1MBAndDecode() => TraceEncoding.decodeFor(_cache.Key, _cache.Hit());
}

/// <summary>What a local hit saves: recording the trace (Trace.record + encode, the baseline) against a verified hit decoded into a trace.</summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class HitVersusRecordBenchmarks
{
    private LocalTraceCache _cache = null!;

    /// <summary>The model.</summary>
    [Params("coalescent:n=30", "rabbits:R=200")]
    public string Model { get; set; } = "";

    /// <summary>Records and stores the trace once.</summary>
    [GlobalSetup]
    public void Setup() => _cache = new LocalTraceCache(Model);

    /// <summary>Removes the scratch directory.</summary>
    [GlobalCleanup]
    public void Cleanup() => _cache.Dispose();

    /// <summary>A miss: record the elimination and encode it.</summary>
    [Benchmark(Baseline = true)]
    public byte[] Record() => TraceEncoding.encode(TraceModule.record(_cache.Graph));

    /// <summary>A hit: read and verify the entry, decode the trace.</summary>
    [Benchmark]
    public Trace HitAndDecode() => TraceEncoding.decodeFor(_cache.Key, _cache.Hit());

    /// <summary>A hit without decoding (the verified bytes only).</summary>
    [Benchmark]
    public byte[] HitBytes() => _cache.Hit();
}
