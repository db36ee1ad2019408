using System.Diagnostics;
using Ptd.Host.Caching;
using Ptd.Storage;
using Ptd.Storage.LocalDisk;

namespace Ptd.Bench;

/// <summary>
/// `-- vacuum [entries] [repeats]`: <c>CacheManager.VacuumAsync(Stale)</c> of an old generation on the local disk,
/// with the native prefix delete (one directory rename + delete) against the portable path (list, then delete entry
/// by entry: what a store without the capability gets). Fresh directories each run; the two ways alternate so that
/// load changes hit both alike; medians are printed with the ratio.
/// </summary>
public static class VacuumHarness
{
    public static int Run(string[] args)
    {
        // `-- vacuum moto [entries] [repeats]`: the same against moto's S3 server at $PTD_TEST_MOTO_ENDPOINT.
        var moto = args.Length > 0 && args[0] == "moto";
        if (moto) args = args[1..];
        var entries = args.Length > 0 ? int.Parse(args[0]) : moto ? 1_000 : 10_000;
        var repeats = args.Length > 1 ? int.Parse(args[1]) : 5;
        var kind = CacheLayers.Traces.CurrentKind!;
        var times = new Dictionary<string, List<double>> { ["list+delete"] = [], ["prefix delete"] = [], ["listing alone"] = [] };
        // CPU time (user + system) of this process: on a machine shared with other work it varies far less than wall time.
        var cpu = new Dictionary<string, List<double>> { ["list+delete"] = [], ["prefix delete"] = [] };
        Console.WriteLine($"vacuum --stale of {entries:N0} {(moto ? "moto (S3)" : "local")} entries in an old generation (+100 current ones), {repeats} repeats; load {Load()}");
        for (var r = 0; r < repeats; r++)
        {
            foreach (var native in r % 2 == 0 ? new[] { false, true } : new[] { true, false })
            {
                var root = Path.Combine(Path.GetTempPath(), "ptd-vacuum-bench", Guid.NewGuid().ToString("N"));
                var disk = moto ? OpenMoto() : new LocalDiskStore(root, "file://" + root, fsync: false);
                Seed(disk, kind, 1, entries);
                Seed(disk, kind, 2, 100);
                var listing = Stopwatch.StartNew();
                var listed = disk.ListAsync("").GetAwaiter().GetResult().Count;
                if (!native) times["listing alone"].Add(listing.Elapsed.TotalMilliseconds);
                if (listed != entries + 100) throw new InvalidOperationException($"seeded {listed} entries");
                var store = native ? (IBlobStore)disk : new WithoutPrefixDelete(disk);
                var options = new ArtifactCacheOptions { AutoEvict = false, Generation = 2 };
                options.Tiers.Add(new CacheTierOptions { Store = store, Name = "disk" });
                using var manager = CacheManager.Create(options);
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                var report = manager.VacuumAsync(new VacuumOptions { Stale = true }).GetAwaiter().GetResult();
                var ms = watch.Elapsed.TotalMilliseconds;
                cpu[native ? "prefix delete" : "list+delete"].Add((Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds);
                if (report.EntriesRemoved != entries || report.Tiers[0].EntriesKept != 100)
                    throw new InvalidOperationException($"removed {report.EntriesRemoved}, kept {report.Tiers[0].EntriesKept}");
                times[native ? "prefix delete" : "list+delete"].Add(ms);
                if (!moto) Directory.Delete(root, true);
            }
        }
        foreach (var (name, list) in times)
            Console.WriteLine($"{name,-14} median {Median(list),8:F1} ms   (min {list.Min():F1}, max {list.Max():F1})");
        foreach (var (name, list) in cpu)
            Console.WriteLine($"{name,-14} CPU median {Median(list),8:F1} ms   (min {list.Min():F1}, max {list.Max():F1})");
        Console.WriteLine($"ratio list+delete / prefix delete: wall {Median(times["list+delete"]) / Median(times["prefix delete"]):F2}x, " +
                          $"CPU {Median(cpu["list+delete"]) / Median(cpu["prefix delete"]):F2}x; load {Load()}");
        return 0;
    }

    private static IBlobStore OpenMoto()
    {
        var endpoint = Environment.GetEnvironmentVariable("PTD_TEST_MOTO_ENDPOINT")
                       ?? throw new InvalidOperationException("PTD_TEST_MOTO_ENDPOINT is not set: start moto_server and set it (http://127.0.0.1:PORT)");
        var secrets = new Dictionary<string, string> { ["PTD_BENCH_ACCESS"] = "testing", ["PTD_BENCH_SECRET"] = "testing" };
        var context = new BlobStoreContext { GetEnvironmentVariable = n => secrets.TryGetValue(n, out var v) ? v : Environment.GetEnvironmentVariable(n) };
        var prefix = "v" + Guid.NewGuid().ToString("N")[..10];
        return new Ptd.Storage.S3.S3Provider().Open(StoreUri.Parse(
            $"s3://ptd-vacuum/{prefix}?endpoint={Uri.EscapeDataString(endpoint)}&accessKeyEnv=PTD_BENCH_ACCESS&secretKeyEnv=PTD_BENCH_SECRET&region=us-east-1&create=true"), context);
    }

    private static void Seed(IBlobStore store, ArtifactKind kind, int generation, int count)
    {
        var payload = new byte[1024];
        // The bucket is created by the first write (create=true), before the parallel ones.
        store.PutAsync(CacheKeyLayout.StorageKey(kind, generation, KeyOf(generation, 0)), payload, BlobWriteMode.Overwrite).GetAwaiter().GetResult();
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var key = CacheKeyLayout.StorageKey(kind, generation, KeyOf(generation, i));
            store.PutAsync(key, payload, BlobWriteMode.Overwrite).GetAwaiter().GetResult();
        });
    }

    // Content keys are digests, spread over the 256 fan-out directories like real ones.
    private static string KeyOf(int generation, int i) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(generation * 1_000_003L + i))).ToLowerInvariant()[..32];

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string Load()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "?";
        }
    }

    /// <summary>A store without the capability: the interface's default prefix delete, and the cache deletes entry by entry.</summary>
    private sealed class WithoutPrefixDelete(IBlobStore inner) : IBlobStore
    {
        public string DisplayName => inner.DisplayName;
        public BlobStoreCapabilities Capabilities { get; } = new()
        {
            ConditionalPut = inner.Capabilities.ConditionalPut, Listing = true, TracksAccessTime = inner.Capabilities.TracksAccessTime, PrefixDelete = false,
        };
        public Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken ct = default) => inner.GetAsync(key, ct);
        public Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken ct = default) => inner.PutAsync(key, content, mode, ct);
        public Task<bool> ExistsAsync(BlobKey key, CancellationToken ct = default) => inner.ExistsAsync(key, ct);
        public Task<bool> DeleteAsync(BlobKey key, CancellationToken ct = default) => inner.DeleteAsync(key, ct);
        public Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);
        public Task<BlobStoreHealth> CheckHealthAsync(CancellationToken ct = default) => inner.CheckHealthAsync(ct);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
