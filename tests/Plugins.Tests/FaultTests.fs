/// Faults with real servers and real plugins: an emulator stopped mid-run, objects damaged behind the cache's
/// back, another format revision on disk, a plugin assembly that fails to load.
module Ptd.Plugins.Tests.FaultTests

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets
open System.Threading
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Host.Caching
open Ptd.Plugins.Tests.TestEnv
open Ptd.Plugins.Tests.CacheTests

/// Azurite's documented development account key (public, not a secret).
let private azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

let private waitForPort (port: int) (p: Process) =
    let deadline = DateTime.UtcNow.AddSeconds 30.0
    let mutable up = false
    while not up && not p.HasExited && DateTime.UtcNow < deadline do
        try
            use c = new TcpClient()
            c.Connect(IPAddress.Loopback, port)
            up <- true
        with _ -> Thread.Sleep 100
    up

/// Starts a private Azurite for one test (so that stopping it disturbs nobody else).
let private startAzurite () =
    let bin = Path.Combine(repoRoot, "node_modules", ".bin", "azurite-blob")
    if not (File.Exists bin) then
        failwithf "Azurite is not installed (%s is missing): run `npm ci` in %s (the test command does it)" bin repoRoot
    let port = freePort ()
    let dir = tempDir "azurite-private"
    let psi =
        ProcessStartInfo(bin, [ "--blobHost"; "127.0.0.1"; "--blobPort"; string port; "--location"; dir
                                "--skipApiVersionCheck"; "--disableTelemetry"; "--silent"; "--loose" ])
    psi.UseShellExecute <- false
    let p = Process.Start psi
    if not (waitForPort port p) then
        (try p.Kill true with _ -> ())
        failwithf "a private Azurite did not start on port %d" port
    p, $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={azuriteKey};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"

let private tierAt (location: string) = CacheTierOptions(Location = location)

let private cacheOver (env: (string * string) list) (tiers: string list) =
    let o = ArtifactCacheOptions(AutoEvict = false, StoreContext = contextWith env, ThrowOnTierError = true)
    for t in tiers do o.Tiers.Add(tierAt t)
    ArtifactCache.Create(o, registry.Value)

[<Tests>]
let tests =
    testSequenced <| testList "faults" [
        testT "an emulator stopped mid-run: reads become counted misses within the timeout, results stay correct" <| fun () -> task {
            let azurite, conn = startAzurite ()
            try
                let env = [ "PTD_TEST_PRIVATE_AZURITE", conn ]
                let remote = "azblob://ptd-fault/run?connectionStringEnv=PTD_TEST_PRIVATE_AZURITE&create=true&name=remote&timeout=3s&cooldown=1m"
                let payload k = randomBytes (hash k) 50_000
                let factory k = counting (ref 0) (payload k)
                let writer = cacheOver env [ "file://" + tempDir "mid-a" + "?name=local"; remote ]
                let! _ = get writer trace "k1" (factory "k1")
                Expect.equal ((writer.GetStatistics()).For("remote", "trace")).Writes 1L "written to Azurite"
                dispose writer
                let cache = cacheOver env [ "file://" + tempDir "mid-b" + "?name=local"; remote ]
                let! fromRemote = get cache trace "k1" (factory "k1")
                Expect.equal (fromRemote.Outcome, fromRemote.Tier) (CacheOutcome.Hit, "remote") "served by Azurite, back-filled locally"
                // Stop the server under the running cache.
                azurite.Kill true
                azurite.WaitForExit 10_000 |> ignore
                let! local = get cache trace "k1" (factory "k1")
                Expect.equal (local.Outcome, local.Tier, local.Payload) (CacheOutcome.Hit, "local", payload "k1") "the local copy still serves"
                let watch = Stopwatch.StartNew()
                let! computed = get cache trace "k2" (factory "k2")
                Expect.equal (computed.Outcome, computed.Payload) (CacheOutcome.Computed, payload "k2") "computed, correct"
                Expect.isLessThan watch.Elapsed.TotalSeconds 10.0 "bounded by the 3 s timeout and the SDK's short retries"
                let s = (cache.GetStatistics()).For("remote", "trace")
                Expect.equal (s.MissesError + s.MissesTimeout) 1L "the failed read is a counted miss"
                Expect.equal s.WritesSkipped 1L "the write is skipped during the cool-down"
                let! third = get cache trace "k3" (factory "k3")
                Expect.equal third.Payload (payload "k3") "still correct"
                Expect.equal ((cache.GetStatistics()).For("remote", "trace")).MissesSkipped 1L "the dead server is not asked again"
                dispose cache
            finally
                if not azurite.HasExited then azurite.Kill true
        }

        testT "an object corrupted behind the cache's back on S3 (moto) is detected, evicted and recomputed" <| fun () -> task {
            let ep = requireEnv Ptd.Tests.Emulators.motoVariable Ptd.Tests.Emulators.motoServer
            let prefix = uniqueSegment "fault"
            let location = $"s3://ptd-faults/{prefix}?endpoint={Uri.EscapeDataString(ep: string)}&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET"
            let cache = cacheOver [] [ location + "&name=s3" ]
            let payload = randomBytes 11 100_000
            let calls = ref 0
            let! _ = get cache trace "obj" (counting calls payload)
            let raw = openStore location
            let sk = storageKey trace "obj"
            let! stored = raw.GetAsync sk
            let damaged = Array.copy stored.Content
            damaged.[damaged.Length - 1] <- damaged.[damaged.Length - 1] ^^^ 0xFFuy
            let! _ = raw.PutAsync(sk, ReadOnlyMemory damaged, BlobWriteMode.Overwrite)
            let! again = get cache trace "obj" (counting calls payload)
            Expect.equal (again.Outcome, again.Payload) (CacheOutcome.Computed, payload) "recomputed, correct"
            Expect.equal calls.Value 2 "the factory ran again"
            Expect.equal ((cache.GetStatistics()).For("s3", "trace")).RejectedByReason.["HashMismatch"] 1L "rejected by hash"
            let! repaired = raw.GetAsync sk
            Expect.isTrue (CacheEnvelope.Decode(ReadOnlySpan repaired.Content, trace, sk.Value, 1L <<< 30)).IsValid "replaced by a valid entry"
            do! raw.DisposeAsync()
            dispose cache
        }

        testT "a local file truncated behind the cache's back is detected, removed and rewritten" <| fun () -> task {
            let dir = tempDir "truncate"
            let cache = cacheOver [] [ $"file://{dir}?name=disk" ]
            let payload = randomBytes 12 200_000
            let calls = ref 0
            let! _ = get cache trace "cut" (counting calls payload)
            let file = Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.exactlyOne
            let fullLength = FileInfo(file).Length
            do
                use fs = new FileStream(file, FileMode.Open)
                fs.SetLength(fullLength / 3L)
            let! again = get cache trace "cut" (counting calls payload)
            Expect.equal (again.Outcome, again.Payload) (CacheOutcome.Computed, payload) "recomputed, correct"
            Expect.equal ((cache.GetStatistics()).For("disk", "trace")).RejectedByReason.["Truncated"] 1L "rejected as truncated"
            Expect.equal (FileInfo(file).Length) fullLength "rewritten in full"
            let! hit = get cache trace "cut" (counting calls payload)
            Expect.equal hit.Outcome CacheOutcome.Hit "valid again"
            dispose cache
        }

        testT "an entry of another format revision on disk is ignored, not parsed, and left alone" <| fun () -> task {
            let dir = tempDir "revision"
            let cache = cacheOver [] [ $"file://{dir}?name=disk" ]
            let calls = ref 0
            let! _ = get cache (ArtifactKind("trace", 1)) "m" (counting calls [| 1uy |])
            let r1File = Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.exactlyOne
            let r1Bytes = File.ReadAllBytes r1File
            let! r2 = get cache (ArtifactKind("trace", 2)) "m" (counting calls [| 2uy |])
            Expect.equal (r2.Outcome, r2.Payload) (CacheOutcome.Computed, [| 2uy |]) "revision 2 computed its own value"
            let s = (cache.GetStatistics()).For("disk", "trace")
            Expect.equal (s.Rejected, s.MissesNotFound) (0L, 2L) "a plain miss, nothing parsed or rejected"
            Expect.equal (File.ReadAllBytes r1File) r1Bytes "the revision-1 entry is untouched"
            dispose cache
        }

        testT "a plugin assembly that fails to load: a clear warning, the cache still works" <| fun () -> task {
            let broken = Directory.CreateDirectory(Path.Combine(tempDir "env-plugins", "bad")).FullName
            File.WriteAllBytes(Path.Combine(broken, "Bad.Plugin.dll"), randomBytes 3 1000)
            File.WriteAllText(Path.Combine(broken, "Bad.Plugin.deps.json"), """{"runtimeTarget":{"name":".NETCoreApp,Version=v10.0"}}""")
            let dir = tempDir "env-cache"
            let env =
                envWith [ "PTD_CACHE", $"file://{dir}"
                          "PTD_PLUGIN_PATH", Path.GetDirectoryName broken + string Path.PathSeparator + pluginsDir
                          "HOME", dir ]
            let cache = ArtifactCache.FromEnvironment(env)
            let warnings = String.concat "\n" cache.Warnings
            Expect.stringContains warnings "Bad.Plugin.dll" "names the broken plugin"
            Expect.stringContains warnings "not a valid .NET assembly" "says why"
            let calls = ref 0
            let! _ = get cache trace "env" (counting calls [| 1uy |])
            let! r = get cache trace "env" (counting calls [| 1uy |])
            Expect.equal (r.Outcome, calls.Value) (CacheOutcome.Hit, 1) "the file tier works"
            dispose cache
        }
    ]
