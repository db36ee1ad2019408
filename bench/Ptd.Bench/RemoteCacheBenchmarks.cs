using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Ptd.Host.Caching;
using Ptd.Storage;
using Ptd.Storage.AzureBlob;
using Ptd.Storage.S3;

namespace Ptd.Bench;

/// <summary>
/// A verified cache hit from a loopback emulator (Azurite, moto, s3rver) for 1 KB and 1 MB entries: one GET, the
/// envelope checks and the payload SHA-256. The endpoints come from the variables the test suite uses
/// (PTD_TEST_AZURITE_CONNECTION, PTD_TEST_MOTO_ENDPOINT, PTD_TEST_S3RVER_ENDPOINT); `-- remote` starts the emulators.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 15)]
public class RemoteHitBenchmarks
{
    private IBlobStore _store = null!;
    private IArtifactCache _cache = null!;
    private readonly ArtifactKind _kind = new("bench", 1);
    private string _key = "";

    /// <summary>The emulator.</summary>
    [Params("azurite", "moto", "s3rver")]
    public string Server { get; set; } = "";

    /// <summary>The payload size in bytes.</summary>
    [Params(1024, 1048576)]
    public int Size { get; set; }

    /// <summary>Opens the store and writes the entry.</summary>
    [GlobalSetup]
    public void Setup()
    {
        string Need(string v) => Environment.GetEnvironmentVariable(v) is { Length: > 0 } x ? x
            : throw new InvalidOperationException($"{v} is not set: run `dotnet run -c Release --project bench/Ptd.Bench -- remote`, which starts the emulators");
        var secrets = new Dictionary<string, string> { ["PTD_BENCH_ACCESS"] = "S3RVER", ["PTD_BENCH_SECRET"] = "S3RVER" };
        var context = new BlobStoreContext { GetEnvironmentVariable = n => secrets.TryGetValue(n, out var s) ? s : Environment.GetEnvironmentVariable(n) };
        var prefix = "b" + Guid.NewGuid().ToString("N")[..10];
        const string creds = "&accessKeyEnv=PTD_BENCH_ACCESS&secretKeyEnv=PTD_BENCH_SECRET&region=us-east-1&create=true";
        _store = Server switch
        {
            "azurite" => new AzureBlobProvider().Open(StoreUri.Parse($"azblob://ptd-bench/{prefix}?connectionStringEnv=PTD_TEST_AZURITE_CONNECTION&create=true"), context),
            "moto" => new S3Provider().Open(StoreUri.Parse($"s3://ptd-bench/{prefix}?endpoint={Uri.EscapeDataString(Need("PTD_TEST_MOTO_ENDPOINT"))}{creds}"), context),
            "s3rver" => new S3Provider().Open(StoreUri.Parse($"s3://ptd-bench/{prefix}?endpoint={Uri.EscapeDataString(Need("PTD_TEST_S3RVER_ENDPOINT"))}{creds}&conditionalPut=false"), context),
            _ => throw new ArgumentException(Server),
        };
        if (Server == "azurite") Need("PTD_TEST_AZURITE_CONNECTION");
        var options = new ArtifactCacheOptions { AutoEvict = false, DefaultCoolDown = TimeSpan.Zero };
        options.Tiers.Add(new CacheTierOptions { Store = _store, Name = Server });
        _cache = ArtifactCache.Create(options);
        var payload = new byte[Size];
        new Random(Size).NextBytes(payload);
        _key = "k" + Size;
        if (_cache.SetAsync(_kind, _key, payload).GetAwaiter().GetResult() != 1) throw new InvalidOperationException($"{Server}: the entry was not stored");
        if (Hit().Length != Size) throw new InvalidOperationException($"{Server}: the entry does not read back");
    }

    /// <summary>Closes the store.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>One verified hit.</summary>
    [Benchmark]
    public byte[] Hit()
    {
        var r = _cache.TryGetAsync(_kind, _key).GetAwaiter().GetResult();
        return r.Found ? r.Payload : throw new InvalidOperationException($"{Server}: expected a hit");
    }
}

/// <summary>`-- remote`: starts Azurite, moto and s3rver on free loopback ports, runs <see cref="RemoteHitBenchmarks"/>, stops them.</summary>
internal static class RemoteHarness
{
    private const string AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="; // public development key

    public static int Run(string[] args)
    {
        var root = FindRoot();
        var work = Path.Combine(Path.GetTempPath(), "ptd-bench-emulators-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        var started = new List<Process>();
        try
        {
            var bin = Path.Combine(root, "node_modules", ".bin");
            var az = FreePort();
            started.Add(Start(Path.Combine(bin, "azurite-blob"), ["--blobHost", "127.0.0.1", "--blobPort", $"{az}", "--location", Path.Combine(work, "azurite"), "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"], az));
            Environment.SetEnvironmentVariable("PTD_TEST_AZURITE_CONNECTION",
                $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AzuriteKey};BlobEndpoint=http://127.0.0.1:{az}/devstoreaccount1;");
            var s3 = FreePort();
            Directory.CreateDirectory(Path.Combine(work, "s3rver"));
            started.Add(Start(Path.Combine(bin, "s3rver"), ["-d", Path.Combine(work, "s3rver"), "-a", "127.0.0.1", "-p", $"{s3}", "--no-vhost-buckets", "--silent"], s3));
            Environment.SetEnvironmentVariable("PTD_TEST_S3RVER_ENDPOINT", $"http://127.0.0.1:{s3}");
            var moto = FreePort();
            started.Add(Start("moto_server", ["-H", "127.0.0.1", "-p", $"{moto}"], moto));
            Environment.SetEnvironmentVariable("PTD_TEST_MOTO_ENDPOINT", $"http://127.0.0.1:{moto}");
            BenchmarkRunner.Run<RemoteHitBenchmarks>(args: args);
            return 0;
        }
        finally
        {
            foreach (var p in started)
            {
                try
                {
                    if (!p.HasExited) p.Kill(entireProcessTree: true);
                    p.WaitForExit(10_000);
                }
                catch (InvalidOperationException)
                {
                    // Already gone.
                }
            }
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
                // Emulator files may linger briefly; the temp directory is disposable.
            }
        }
    }

    private static Process Start(string exe, string[] args, int port)
    {
        var psi = new ProcessStartInfo(exe, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        // s3rver's listing continuation tokens need OpenSSL's legacy provider on Node >= 17 (see build.fsx).
        psi.Environment["NODE_OPTIONS"] = "--openssl-legacy-provider";
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"{exe} did not start");
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !p.HasExited)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, port);
                return p;
            }
            catch (SocketException)
            {
                Thread.Sleep(200);
            }
        }
        throw new InvalidOperationException($"{exe} did not listen on 127.0.0.1:{port}");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "PtdPipeline.sln"))) return d.FullName;
        throw new InvalidOperationException("the repository root (PtdPipeline.sln) was not found above the benchmark binary");
    }
}
