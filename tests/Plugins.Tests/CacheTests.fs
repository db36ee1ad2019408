/// The tiered cache: single flight, back-fill, write policy, failures that never reach the caller, rejection of
/// damaged or foreign entries, eviction, vacuum and statistics (API and System.Diagnostics.Metrics).
module Ptd.Plugins.Tests.CacheTests

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.Diagnostics.Metrics
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Ptd.Core
open Ptd.Storage
open Ptd.Storage.LocalDisk
open Ptd.Host.Caching
open Ptd.TestPlugins
open Ptd.Plugins.Tests.TestEnv

let trace = ArtifactKind("trace", 1)

let mem () = MemoryBlobStore(uniqueSegment "cache")

let tier (store: IBlobStore) (name: string) = CacheTierOptions(Store = store, Name = name)

let create (tiers: CacheTierOptions list) (configure: ArtifactCacheOptions -> unit) =
    let o = ArtifactCacheOptions(AutoEvict = false)
    for t in tiers do o.Tiers.Add t
    configure o
    ArtifactCache.Create(o, null)

let noOptions (_: ArtifactCacheOptions) = ()

/// A factory that counts its runs and returns fixed bytes.
let counting (calls: int ref) (bytes: byte[]) =
    Func<CancellationToken, Task<byte[]>>(fun _ ->
        task {
            Interlocked.Increment(&calls.contents) |> ignore
            return bytes
        })

let get (cache: IArtifactCache) kind key factory = cache.GetOrCreateAsync(kind, key, factory)

let storageKey kind key = CacheKeyLayout.StorageKey(kind, 1, key)

let dispose (c: IArtifactCache) = c.DisposeAsync().AsTask() |> runUnit

/// A test whose body is an F# task (Expecto's own task builder infers types poorly).
let testT name (body: unit -> Task<unit>) = testCase name (fun () -> body().GetAwaiter().GetResult())

/// The exception a task ends with, or None.
let failureOf (t: Task<'a>) : Task<exn option> =
    task {
        try
            let! _ = t
            return None
        with e -> return Some e
    }

[<Tests>]
let tests =
    testList "cache" [
        testT "a request after another has finished is a hit, never a join of the finished flight (8 × 2,000 sequential pairs)" <| fun () -> task {
            // Regression: the flight was removed from the table only after its result was published, so a caller
            // that asked again right after getting that result could join the finished flight and be told
            // "Computed" (shared) instead of reading the entry just written — seen once in CI in examples/cache-tour.fsx.
            // The window is a few instructions wide, so widen the chance: 8 loops at once keep the thread pool busy
            // (the finished flight's thread is then more often preempted between publishing and removing).
            let cache = create [ tier (mem ()) "m" ] noOptions
            let calls = ref 0
            let joined = ref 0
            let loop (l: int) =
                Task.Run<unit>(Func<Task<unit>>(fun () -> task {
                    for i in 1 .. 2000 do
                        let key = sprintf "seq%d-%05d" l i
                        let! first = get cache trace key (counting calls [| byte i |])
                        let! second = get cache trace key (counting calls [| byte i |])
                        if first.Outcome <> CacheOutcome.Computed || second.Outcome <> CacheOutcome.Hit || second.SharedFlight then
                            Interlocked.Increment(&joined.contents) |> ignore
                }))
            let! _ = Task.WhenAll(Array.init 8 loop)
            Expect.equal joined.Value 0 "every first request computes, every second one is a hit of its own"
            Expect.equal calls.Value 16000 "one computation per key"
            dispose cache
        }

        testT "a second request is a hit with the factory's bytes" <| fun () -> task {
            let calls = ref 0
            let payload = randomBytes 1 5000
            let cache = create [ tier (mem ()) "m" ] noOptions
            let! first = get cache trace "abc123" (counting calls payload)
            let! second = get cache trace "abc123" (counting calls payload)
            Expect.equal first.Outcome CacheOutcome.Computed "first computed"
            Expect.equal second.Outcome CacheOutcome.Hit "second hit"
            Expect.equal second.Tier "m" "from tier m"
            Expect.equal second.Payload payload "same bytes"
            Expect.equal calls.Value 1 "factory ran once"
            let s = cache.GetStatistics()
            let k = s.For "trace"
            Expect.equal (k.Requests, k.Hits, k.Misses, k.Computations) (2L, 1L, 1L, 1L) "kind counters"
            let t = s.For("m", "trace")
            Expect.equal (t.Hits, t.MissesNotFound, t.Writes) (1L, 1L, 1L) "tier counters"
            Expect.isGreaterThan t.BytesWritten 5000L "envelope bytes written"
            Expect.equal t.BytesRead t.BytesWritten "the same envelope read back"
            Expect.equal t.ReadLatency.Count 2L "two reads timed"
            dispose cache
        }

        testT "concurrent requests for one entry share one computation" <| fun () -> task {
            let calls = ref 0
            let gate = TaskCompletionSource()
            let factory =
                Func<CancellationToken, Task<byte[]>>(fun _ ->
                    task {
                        Interlocked.Increment(&calls.contents) |> ignore
                        do! gate.Task
                        return [| 7uy |]
                    })
            let cache = create [ tier (mem ()) "m" ] noOptions
            let waiters = Array.init 16 (fun _ -> get cache trace "shared" factory)
            do! Task.Delay 100
            gate.SetResult()
            let! results = Task.WhenAll waiters
            Expect.equal calls.Value 1 "one computation"
            Expect.all results (fun r -> r.Payload = [| 7uy |]) "everyone gets the value"
            Expect.equal (results |> Array.filter (fun r -> not r.SharedFlight) |> Array.length) 1 "one owner"
            Expect.equal ((cache.GetStatistics()).For "trace").SharedFlights 15L "fifteen joined"
            dispose cache
        }

        testT "a failing factory reaches every waiter and nothing is cached" <| fun () -> task {
            let calls = ref 0
            let gate = TaskCompletionSource()
            let failing =
                Func<CancellationToken, Task<byte[]>>(fun _ ->
                    task {
                        Interlocked.Increment(&calls.contents) |> ignore
                        do! gate.Task
                        return raise (InvalidOperationException "model is invalid")
                    })
            let cache = create [ tier (mem ()) "m" ] noOptions
            let waiters = Array.init 3 (fun _ -> get cache trace "bad" failing)
            do! Task.Delay 50
            gate.SetResult()
            for w in waiters do
                let! failure = failureOf w
                match failure with
                | Some (:? InvalidOperationException as e) -> Expect.equal e.Message "model is invalid" "the factory's exception"
                | other -> failtestf "expected the factory's exception, got %A" other
            let! _ = get cache trace "bad" (counting calls [| 1uy |])
            Expect.equal calls.Value 2 "ran again: failures are not cached"
            Expect.equal ((cache.GetStatistics()).For "trace").ComputationFailures 1L "counted"
            dispose cache
        }

        testT "one caller cancelling does not cancel the others; all cancelling cancels the factory" <| fun () -> task {
            let cache = create [ tier (mem ()) "m" ] noOptions
            let gate = TaskCompletionSource()
            let mutable factoryCancelled = false
            let slow =
                Func<CancellationToken, Task<byte[]>>(fun ct ->
                    task {
                        use _ = ct.Register(fun () -> factoryCancelled <- true)
                        do! gate.Task
                        return [| 9uy |]
                    })
            let cts = new CancellationTokenSource()
            let a = cache.GetOrCreateAsync(trace, "cancel-one", slow, cts.Token)
            let b = get cache trace "cancel-one" slow
            cts.Cancel()
            let! aFailure = failureOf a
            Expect.isTrue (match aFailure with Some (:? OperationCanceledException) -> true | _ -> false) "the cancelled caller stops waiting"
            gate.SetResult()
            let! r = b
            Expect.equal r.Payload [| 9uy |] "the other caller gets the value"
            Expect.isFalse factoryCancelled "the factory was not cancelled"
            let never = TaskCompletionSource<byte[]>()
            let observed = TaskCompletionSource()
            let watched =
                Func<CancellationToken, Task<byte[]>>(fun ct ->
                    ct.Register(fun () -> observed.TrySetResult() |> ignore) |> ignore
                    never.Task)
            let cts2 = new CancellationTokenSource()
            let c = cache.GetOrCreateAsync(trace, "cancel-all", watched, cts2.Token)
            do! Task.Delay 50
            cts2.Cancel()
            let! _ = failureOf c
            let! finished = Task.WhenAny(observed.Task, Task.Delay 5000)
            Expect.isTrue (obj.ReferenceEquals(finished, observed.Task)) "the factory's token was cancelled"
            dispose cache
        }

        testT "a hit in a slower tier back-fills the faster ones" <| fun () -> task {
            let fast, slow = mem (), mem ()
            let seed = create [ tier slow "slow" ] noOptions
            let! _ = seed.SetAsync(trace, "bf", ReadOnlyMemory [| 1uy; 2uy |])
            dispose seed
            let cache = create [ tier fast "fast"; tier slow "slow" ] noOptions
            let! r1 = cache.TryGetAsync(trace, "bf")
            Expect.equal (r1.Outcome, r1.TierIndex) (CacheOutcome.Hit, 1) "hit in the slow tier"
            Expect.equal fast.Count 1 "copied into the fast tier"
            let! r2 = cache.TryGetAsync(trace, "bf")
            Expect.equal r2.TierIndex 0 "now served by the fast tier"
            Expect.equal r2.Payload [| 1uy; 2uy |] "same bytes"
            let s = cache.GetStatistics()
            Expect.equal (s.For("fast", "trace")).Backfills 1L "one back-fill"
            let! miss = cache.TryGetAsync(trace, "absent")
            Expect.isFalse miss.Found "TryGet misses without computing"
            dispose cache
        }

        testT "computed entries go to every read-write tier and never to a read-only one" <| fun () -> task {
            let a, b, ro = mem (), mem (), mem ()
            let readOnly = tier ro "ro"
            readOnly.Access <- CacheTierAccess.ReadOnly
            let cache = create [ tier a "a"; readOnly; tier b "b" ] noOptions
            let calls = ref 0
            let! _ = get cache trace "wp" (counting calls [| 5uy |])
            Expect.equal (a.Count, b.Count, ro.Count) (1, 1, 0) "write-through to read-write tiers only"
            let! removed = cache.RemoveAsync(trace, "wp")
            Expect.equal removed 2 "removed from both read-write tiers"
            Expect.equal (cache.Tiers |> Seq.map (fun t -> t.Access) |> List.ofSeq) [ CacheTierAccess.ReadWrite; CacheTierAccess.ReadOnly; CacheTierAccess.ReadWrite ] "tier info"
            dispose cache
        }

        testT "a failing tier is a counted miss, then skipped for its cool-down" <| fun () -> task {
            let time = ManualTime(DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero))
            let local = mem ()
            let remote = FaultyBlobStore(mem (), FaultMode.Error)
            let logs = ConcurrentQueue<string>()
            let cache =
                create [ tier local "local"; tier remote "remote" ] (fun o ->
                    o.TimeProvider <- time
                    o.DefaultCoolDown <- TimeSpan.FromMinutes 1.0
                    o.Log <- Action<string>(logs.Enqueue))
            let calls = ref 0
            let! r = get cache trace "k1" (counting calls [| 1uy |])
            Expect.equal r.Payload [| 1uy |] "the computation succeeded"
            let s1 = (cache.GetStatistics()).For("remote", "trace")
            Expect.equal (s1.MissesError, s1.WritesSkipped) (1L, 1L) "read error counted, write skipped during cool-down"
            Expect.equal cache.Tiers.[1].CoolingDownUntil (Nullable(time.GetUtcNow().AddMinutes 1.0)) "cooling down for a minute"
            let callsBefore = remote.Calls
            let! _ = get cache trace "k2" (counting calls [| 2uy |])
            Expect.equal remote.Calls callsBefore "not called while cooling down"
            Expect.equal ((cache.GetStatistics()).For("remote", "trace")).MissesSkipped 1L "skip counted"
            Expect.exists logs (fun l -> l.Contains "remote" && l.Contains "injected failure" && l.Contains "skipping it for 60 s") "logged once with the reason"
            Expect.equal (logs |> Seq.filter (fun l -> l.Contains "injected failure") |> Seq.length) 1 "logged once"
            time.Advance(TimeSpan.FromMinutes 2.0)
            remote.Mode <- FaultMode.None
            let! _ = get cache trace "k3" (counting calls [| 3uy |])
            let s3 = (cache.GetStatistics()).For("remote", "trace")
            Expect.equal (s3.MissesNotFound, s3.Writes) (1L, 1L) "used again after the cool-down"
            dispose cache
        }

        testT "a hung tier times out and the computation goes on" <| fun () -> task {
            let hung = FaultyBlobStore(mem (), FaultMode.Hang)
            let t = tier hung "hung"
            t.Timeout <- TimeSpan.FromMilliseconds 300.0
            let cache = create [ tier (mem ()) "local"; t ] noOptions
            let watch = Stopwatch.StartNew()
            let calls = ref 0
            let! r = get cache trace "h" (counting calls [| 4uy |])
            Expect.equal r.Payload [| 4uy |] "value"
            Expect.isLessThan watch.Elapsed.TotalSeconds 10.0 "bounded by the timeout, not by the hang"
            let s = (cache.GetStatistics()).For("hung", "trace")
            Expect.equal (s.MissesTimeout, s.Timeouts) (1L, 1L) "timeout counted"
            let! health = cache.CheckHealthAsync()
            Expect.equal (health |> Seq.map (fun h -> h.Health.IsHealthy) |> List.ofSeq) [ true; false ] "health per tier"
            dispose cache
        }

        testT "the computation never fails because a cache did (crashing plugin, every tier failing)" <| fun () -> task {
            let crash = FaultyBlobStore(mem (), FaultMode.Crash)
            let error = FaultyBlobStore(mem (), FaultMode.Error)
            let cache = create [ tier crash "crash"; tier error "error" ] noOptions
            let calls = ref 0
            let! r = get cache trace "n" (counting calls [| 8uy |])
            Expect.equal r.Payload [| 8uy |] "value"
            let! set = cache.SetAsync(trace, "n2", ReadOnlyMemory [| 1uy |])
            Expect.equal set 0 "nothing stored, nothing thrown"
            Expect.equal ((cache.GetStatistics()).For("crash", "trace")).MissesError 1L "the crash is a counted error"
            dispose cache
        }

        testT "an entry damaged behind the cache's back is rejected, removed and replaced" <| fun () -> task {
            let store = mem ()
            let cache = create [ tier store "m" ] noOptions
            let calls = ref 0
            let payload = randomBytes 5 3000
            let! _ = get cache trace "dmg" (counting calls payload)
            let sk = storageKey trace "dmg"
            for damage, reason in [ (fun (b: byte[]) -> b.[b.Length - 10] <- b.[b.Length - 10] ^^^ 1uy; b), "HashMismatch"
                                    (fun (b: byte[]) -> b.[.. b.Length / 2]), "Truncated" ] do
                let! raw = store.GetAsync sk
                let! _ = store.PutAsync(sk, ReadOnlyMemory(damage (Array.copy raw.Content)), BlobWriteMode.Overwrite)
                let before = calls.Value
                let! r = get cache trace "dmg" (counting calls payload)
                Expect.equal r.Outcome CacheOutcome.Computed $"{reason}: recomputed"
                Expect.equal r.Payload payload "correct value"
                Expect.equal calls.Value (before + 1) "factory ran"
                let! repaired = store.GetAsync sk
                Expect.isTrue (CacheEnvelope.Decode(ReadOnlySpan repaired.Content, trace, sk.Value, 1L <<< 30)).IsValid "the tier holds a valid entry again"
            let s = (cache.GetStatistics()).For("m", "trace")
            Expect.equal s.Rejected 2L "two rejections"
            Expect.equal (s.RejectedByReason.["HashMismatch"], s.RejectedByReason.["Truncated"]) (1L, 1L) "by reason"
            dispose cache
        }

        testT "an entry the store reports as corrupt is rejected and rewritten, and the tier stays in use" <| fun () -> task {
            let store = FaultyBlobStore(mem (), FaultMode.None)
            let cache = create [ tier store "s" ] noOptions
            let calls = ref 0
            let! _ = get cache trace "rc" (counting calls [| 1uy; 2uy |])
            store.Mode <- FaultMode.ReportCorrupt
            let! r = get cache trace "rc" (counting calls [| 1uy; 2uy |])
            Expect.equal (r.Outcome, r.Payload) (CacheOutcome.Computed, [| 1uy; 2uy |]) "recomputed"
            let s = (cache.GetStatistics()).For("s", "trace")
            Expect.equal (s.RejectedByReason.["CorruptInStore"], s.MissesError, s.Writes) (1L, 0L, 2L) "rejected, not an error; rewritten"
            Expect.isFalse cache.Tiers.[0].CoolingDownUntil.HasValue "no cool-down"
            dispose cache
        }

        testT "another format revision is never parsed as current" <| fun () -> task {
            let store = mem ()
            let cache = create [ tier store "m" ] noOptions
            let r1, r2 = ArtifactKind("trace", 1), ArtifactKind("trace", 2)
            let calls = ref 0
            let! _ = get cache r1 "rev" (counting calls [| 1uy; 1uy |])
            let! second = get cache r2 "rev" (counting calls [| 2uy; 2uy |])
            Expect.equal second.Payload [| 2uy; 2uy |] "r2 computed its own value"
            Expect.equal ((cache.GetStatistics()).For("m", "trace")).Rejected 0L "a plain miss: other revisions live under other keys"
            // Now plant the r1 envelope where r2 looks.
            let! old = store.GetAsync(CacheKeyLayout.StorageKey(r1, 1, "rev2"))
            Expect.isFalse old.Found "precondition"
            let! _ = get cache r1 "planted" (counting calls [| 1uy |])
            let! r1Bytes = store.GetAsync(CacheKeyLayout.StorageKey(r1, 1, "planted"))
            let! _ = store.PutAsync(CacheKeyLayout.StorageKey(r2, 1, "planted"), ReadOnlyMemory r1Bytes.Content, BlobWriteMode.Overwrite)
            let! planted = get cache r2 "planted" (counting calls [| 2uy |])
            Expect.equal planted.Payload [| 2uy |] "the r1 bytes were not returned"
            Expect.equal ((cache.GetStatistics()).For("m", "trace")).RejectedByReason.["RevisionMismatch"] 1L "rejected as a revision mismatch"
            dispose cache
        }

        testT "vacuum drops other revisions and generations of the named kinds only" <| fun () -> task {
            let store = mem ()
            let write generation (kind: ArtifactKind) key =
                task {
                    let c = create [ tier store "m" ] (fun o -> o.Generation <- generation)
                    let! _ = c.SetAsync(kind, key, ReadOnlyMemory [| 1uy |])
                    dispose c
                }
            do! write 1 (ArtifactKind("trace", 1)) "a"
            do! write 1 (ArtifactKind("trace", 2)) "b"
            do! write 2 (ArtifactKind("trace", 2)) "c"
            do! write 1 (ArtifactKind("gradient", 1)) "d"
            let cache = create [ tier store "m" ] (fun o -> o.Generation <- 2)
            let! report = cache.VacuumAsync [ ArtifactKind("trace", 2) ]
            Expect.equal (report.EntriesRemoved, report.EntriesKept) (2L, 1L) "removed r1/g1 and r2/g1, kept r2/g2"
            let! left = store.ListAsync ""
            Expect.equal (left |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq) [ "gradient/r1/g1/d"; "trace/r2/g2/c" ] "what is left"
            Expect.equal ((cache.GetStatistics()).For("m", "trace")).Evictions 2L "counted as evictions"
            dispose cache
        }

        testT "eviction by size removes least recently used entries, whole" <| fun () -> task {
            let root = tempDir "evict-size"
            let store = LocalDiskStore(root, "file://" + root)
            let seed = create [ tier store "disk" ] noOptions
            for i in 0 .. 9 do
                let! _ = seed.SetAsync(trace, sprintf "e%02d" i, ReadOnlyMemory(randomBytes i 10_000))
                ()
            dispose seed
            let size = (FileInfo(store.PathOf(storageKey trace "e00"))).Length
            let start = DateTime.UtcNow.AddHours -1.0
            for i in 0 .. 9 do
                let path = store.PathOf(storageKey trace (sprintf "e%02d" i))
                File.SetLastWriteTimeUtc(path, start.AddMinutes(float i))
                File.SetLastAccessTimeUtc(path, start.AddMinutes(float i))
            let t = tier store "disk"
            t.MaxSizeBytes <- Nullable(size * 11L / 2L)
            let cache = create [ t ] noOptions
            let! touched = cache.TryGetAsync(trace, "e00") // the oldest becomes the most recently used
            Expect.isTrue touched.Found "read"
            let! report = cache.EvictAsync()
            Expect.equal report.EntriesRemoved 6L "down to 90% of the limit: four entries of 5.5"
            let! left = store.ListAsync ""
            Expect.equal (left |> Seq.map (fun i -> i.Key.Segments.[3]) |> List.ofSeq) [ "e00"; "e07"; "e08"; "e09" ] "the most recently used survive"
            let files = Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            Expect.equal files.Length 4 "no leftovers or partial entries on disk"
            Expect.equal ((cache.GetStatistics()).For("disk", "trace")).Evictions 6L "counted"
            dispose cache
        }

        testT "eviction by age removes entries unused for longer than the limit" <| fun () -> task {
            let root = tempDir "evict-age"
            let store = LocalDiskStore(root, "file://" + root)
            let t = tier store "disk"
            t.MaxAge <- Nullable(TimeSpan.FromHours 1.0)
            let cache = create [ t ] noOptions
            for i in 0 .. 3 do
                let! _ = cache.SetAsync(trace, sprintf "a%d" i, ReadOnlyMemory [| byte i |])
                ()
            for i in 0 .. 1 do
                let path = store.PathOf(storageKey trace (sprintf "a%d" i))
                let old = DateTime.UtcNow.AddHours -2.0
                File.SetLastWriteTimeUtc(path, old)
                File.SetLastAccessTimeUtc(path, old)
            let! report = cache.EvictAsync()
            Expect.equal report.EntriesRemoved 2L "two stale entries"
            let! left = store.ListAsync ""
            Expect.equal (left |> Seq.map (fun i -> i.Key.Segments.[3]) |> List.ofSeq) [ "a2"; "a3" ] "recent ones kept"
            dispose cache
        }

        testT "automatic eviction keeps a tier under its size limit" <| fun () -> task {
            let root = tempDir "evict-auto"
            let store = LocalDiskStore(root, "file://" + root)
            let t = tier store "disk"
            t.MaxSizeBytes <- Nullable 50_000L
            let cache = create [ t ] (fun o -> o.AutoEvict <- true)
            for i in 0 .. 19 do
                let! _ = cache.SetAsync(trace, sprintf "x%02d" i, ReadOnlyMemory(randomBytes i 5_000))
                ()
            dispose cache // waits for background eviction
            let! left = store.ListAsync ""
            Expect.isLessThanOrEqual (left |> Seq.sumBy (fun i -> i.Length)) 50_000L "under the limit"
        }

        testT "statistics are published through System.Diagnostics.Metrics" <| fun () -> task {
            let tierName = uniqueSegment "metrics"
            let seen = ConcurrentDictionary<string, int64>()
            use listener = new MeterListener()
            listener.InstrumentPublished <- fun instrument l -> if instrument.Meter.Name = ArtifactCache.MeterName then l.EnableMeasurementEvents instrument
            let record (instrument: Instrument) (value: int64) (tags: Collections.Generic.KeyValuePair<string, obj>[]) =
                let mutable mine = false
                let mutable reason = ""
                for t in tags do
                    if t.Key = "tier" && string t.Value = tierName then mine <- true
                    if t.Key = "reason" then reason <- string t.Value
                if mine then seen.AddOrUpdate(instrument.Name + (if reason = "" then "" else "/" + reason), value, fun _ v -> v + value) |> ignore
            listener.SetMeasurementEventCallback<int64>(MeasurementCallback<int64>(fun i v tags _ -> record i v (tags.ToArray())))
            listener.SetMeasurementEventCallback<float>(MeasurementCallback<float>(fun i _ tags _ -> record i 1L (tags.ToArray())))
            listener.Start()
            let cache = create [ tier (mem ()) tierName ] noOptions
            let calls = ref 0
            let! _ = get cache trace "met" (counting calls (randomBytes 3 777))
            let! _ = get cache trace "met" (counting calls (randomBytes 3 777))
            let s = (cache.GetStatistics()).For(tierName, "trace")
            Expect.equal seen.["ptd.cache.hits"] s.Hits "hits"
            Expect.equal seen.["ptd.cache.misses/not_found"] s.MissesNotFound "misses by reason"
            Expect.equal seen.["ptd.cache.bytes_written"] s.BytesWritten "bytes written"
            Expect.equal seen.["ptd.cache.bytes_read"] s.BytesRead "bytes read"
            Expect.equal seen.["ptd.cache.operation.duration"] 3L "three timed operations"
            Expect.stringContains ((cache.GetStatistics()).ToJson()) "\"hits\": 1" "JSON form"
            cache.ResetStatistics()
            Expect.isEmpty ((cache.GetStatistics()).Tiers) "reset"
            dispose cache
        }

        testT "a tier that cannot be opened is left out with a warning; the rest works" <| fun () -> task {
            let dir = tempDir "cfg-tiers"
            let o = ArtifactCacheOptions(AutoEvict = false)
            o.Tiers.Add(CacheTierOptions(Location = "gcs://bucket/p?token=SECRET-TOKEN"))
            o.Tiers.Add(CacheTierOptions(Location = $"file://{dir}?name=disk&maxSize=1GB"))
            let cache = ArtifactCache.Create(o, registry.Value)
            let warnings = String.concat "\n" cache.Warnings
            Expect.stringContains warnings "'gcs'" "names the scheme"
            Expect.isFalse (warnings.Contains "SECRET-TOKEN") "no secrets"
            Expect.isFalse cache.Tiers.[0].IsAvailable "left out"
            Expect.equal (cache.Tiers.[1].Name, cache.Tiers.[1].MaxSizeBytes) ("disk", Nullable(1L <<< 30)) "reserved options honoured"
            let calls = ref 0
            let! _ = get cache trace "cfg" (counting calls [| 3uy |])
            let! r = get cache trace "cfg" (counting calls [| 3uy |])
            Expect.equal (r.Outcome, r.Tier) (CacheOutcome.Hit, "disk") "the file tier works"
            dispose cache
            o.ThrowOnTierError <- true
            Expect.throwsT<PtdException> (fun () -> ArtifactCache.Create(o, registry.Value) |> ignore) "strict mode throws"
        }

        testT "compression is transparent" <| fun () -> task {
            let store = mem ()
            let cache = create [ tier store "m" ] (fun o -> o.Compression <- CacheCompression.Brotli; o.CompressionThreshold <- 0)
            let payload = Array.init 200_000 (fun i -> byte (i % 7))
            let! _ = cache.SetAsync(trace, "z", ReadOnlyMemory payload)
            let! raw = store.GetAsync(storageKey trace "z")
            Expect.isLessThan raw.Content.Length 10_000 "stored compressed"
            let! r = cache.TryGetAsync(trace, "z")
            Expect.equal r.Payload payload "round trip"
            dispose cache
        }

        testT "a cache without tiers (PTD_CACHE=off) computes every time" <| fun () -> task {
            let o = CacheConfiguration.FromEnvironment(ConfigTests.env [ "PTD_CACHE", "off" ])
            let cache = ArtifactCache.Create(o, registry.Value)
            Expect.isEmpty cache.Tiers "no tiers"
            let calls = ref 0
            let! a = get cache trace "off" (counting calls [| 1uy |])
            let! b = get cache trace "off" (counting calls [| 1uy |])
            Expect.equal (a.Outcome, b.Outcome, calls.Value) (CacheOutcome.Computed, CacheOutcome.Computed, 2) "computed twice"
            dispose cache
        }

        test "invalid content keys and a disposed cache are refused" {
            let cache = create [ tier (mem ()) "m" ] noOptions
            Expect.throwsT<ArgumentException> (fun () -> cache.TryGetAsync(trace, "../x") |> run |> ignore) "bad key"
            dispose cache
            Expect.throwsT<ObjectDisposedException> (fun () -> cache.TryGetAsync(trace, "ok") |> run |> ignore) "disposed"
        }
    ]
