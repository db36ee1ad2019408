/// CacheManager in-process on the in-memory test store with a clock the test moves: LRU and age vacuum, stale
/// revisions, verification, resumable sync, the statistics ledger.
module Ptd.Cache.Tests.ManagerTests

open System
open System.IO
open System.Threading
open Expecto
open Ptd.Storage
open Ptd.Host.Caching
open Ptd.TestPlugins
open Ptd.Cache.Tests.CacheEnv

type ManualTime(start: DateTimeOffset) =
    inherit TimeProvider()
    let mutable now = start
    member _.Advance(d: TimeSpan) = now <- now + d
    override _.GetUtcNow() = now

let private trace = CacheLayers.Traces.CurrentKind
/// The storage key of a current trace entry (this build's revision, generation 1).
let private k (name: string) = sprintf "trace/r%d/g1/%s" trace.FormatRevision name
let private t0 = DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)

/// A manager over one or more fresh in-memory tiers sharing a manual clock.
let private managerOver (names: string list) =
    let time = ManualTime t0
    let o = ArtifactCacheOptions(TimeProvider = time, AutoEvict = false, DefaultCoolDown = TimeSpan.Zero)
    let stores =
        names |> List.map (fun n ->
            let s = new MemoryBlobStore(uniqueSegment n, null, time)
            o.Tiers.Add(CacheTierOptions(Store = s, Name = n))
            s)
    CacheManager.Create o, stores, time

let private payload (n: int) (seed: int) = Array.init n (fun i -> byte ((i * 31 + seed) % 251))

let private setEntry (m: CacheManager) (key: string) (bytes: byte[]) = run (m.Cache.SetAsync(trace, key, ReadOnlyMemory bytes)) |> ignore

let private storedKeys (s: MemoryBlobStore) = keysOf s

let private progressThat (f: CacheProgress -> unit) = { new IProgress<CacheProgress> with member _.Report p = f p }

[<Tests>]
let tests =
    testList "cache manager" [
        testT "vacuum --max-size removes least recently used entries whole until the limit holds, and reports what it freed" <| fun () -> task {
            let m, stores, time = managerOver [ "mem" ]
            use _ = { new IDisposable with member _.Dispose() = m.DisposeAsync().AsTask().Wait() }
            let store = stores.Head
            setEntry m "aa01" (payload 1000 1)
            time.Advance(TimeSpan.FromHours 1.0)
            setEntry m "aa02" (payload 1000 2)
            time.Advance(TimeSpan.FromHours 1.0)
            setEntry m "aa03" (payload 1000 3)
            time.Advance(TimeSpan.FromHours 1.0)
            // Reading aa01 makes it the most recently used: aa02 is now the oldest.
            let! hit = m.Cache.TryGetAsync(trace, "aa01")
            Expect.isTrue hit.Found "aa01 is cached"
            let sizes = run (store.ListAsync "") |> Seq.map (fun b -> b.Key.Value, b.Length) |> Map.ofSeq
            let envelope = sizes.[(k "aa01")]
            let! r = m.VacuumAsync(VacuumOptions(MaxSizeBytes = Nullable(2L * envelope)))
            Expect.equal (storedKeys store) (set [ (k "aa01"); (k "aa03") ]) "the least recently used entry (aa02) is gone, the others are whole"
            Expect.equal r.EntriesRemoved 1L "one entry removed"
            Expect.equal r.BytesRemoved sizes.[(k "aa02")] "the freed bytes are the removed entry's stored size"
            Expect.equal (r.Tiers.[0].RemovedByReason.["size"]) 1L "removed for size"
            for k in [ "aa01"; "aa03" ] do
                let! e = m.Cache.TryGetAsync(trace, k)
                Expect.isTrue e.Found $"{k} still reads as a valid entry"
        }

        testT "vacuum --max-age removes entries unused for longer than the limit; --dry-run removes nothing" <| fun () -> task {
            let m, stores, time = managerOver [ "mem" ]
            use _ = { new IDisposable with member _.Dispose() = m.DisposeAsync().AsTask().Wait() }
            setEntry m "bb01" (payload 100 1)
            time.Advance(TimeSpan.FromDays 10.0)
            setEntry m "bb02" (payload 100 2)
            time.Advance(TimeSpan.FromDays 5.0)
            let! dry = m.VacuumAsync(VacuumOptions(MaxAge = Nullable(TimeSpan.FromDays 7.0), DryRun = true))
            Expect.equal dry.EntriesRemoved 1L "a dry run says one entry would go"
            Expect.equal (storedKeys stores.Head).Count 2 "but removes nothing"
            let! r = m.VacuumAsync(VacuumOptions(MaxAge = Nullable(TimeSpan.FromDays 7.0)))
            Expect.equal (storedKeys stores.Head) (set [ (k "bb02") ]) "only the entry used within 7 days is left"
            Expect.equal r.Tiers.[0].RemovedByReason.["age"] 1L "removed for age"
        }

        testT "another format revision or generation is stale: listed as such, never read as current, removed by vacuum --stale; foreign objects stay" <| fun () -> task {
            let m, stores, _ = managerOver [ "mem" ]
            use _ = { new IDisposable with member _.Dispose() = m.DisposeAsync().AsTask().Wait() }
            let store = stores.Head
            setEntry m "cc01" (payload 64 1)
            // A "future" revision of the same entry and an old generation, written by another build.
            let future = CacheEnvelope.Encode(ArtifactKind("trace", 99), "trace/r99/g1/cc02", "Ptd.Host/9.9", ReadOnlySpan(payload 64 2))
            put store "trace/r99/g1/cc02" future
            let oldGenKey = sprintf "trace/r%d/g0/cc03" trace.FormatRevision
            let oldGen = CacheEnvelope.Encode(trace, oldGenKey, "Ptd.Host/0.0", ReadOnlySpan(payload 64 3))
            put store oldGenKey oldGen
            put store "notes/readme" [| 1uy; 2uy |]
            put store "other-tool/r1/g1/x" [| 3uy |]
            let! hit = m.Cache.TryGetAsync(trace, "cc02")
            Expect.isFalse hit.Found "the r99 entry is not found as the current revision's cc02"
            let! status = m.GetStatusAsync()
            let tier = status.Tiers.[0]
            Expect.equal tier.StaleEntries 2L "r99 and g0 are stale"
            Expect.equal tier.ForeignObjects 1L "notes/readme is not a cache entry"
            let! r = m.VacuumAsync(VacuumOptions(Stale = true))
            Expect.equal r.Tiers.[0].RemovedByReason.["stale"] 2L "both stale entries removed"
            Expect.equal (storedKeys store) (set [ (k "cc01"); "notes/readme"; "other-tool/r1/g1/x" ]) "current entries, foreign objects and unknown kinds stay"
        }

        testT "verify finds damaged, truncated and misplaced entries and --remove deletes exactly those" <| fun () -> task {
            let m, stores, _ = managerOver [ "mem" ]
            use _ = { new IDisposable with member _.Dispose() = m.DisposeAsync().AsTask().Wait() }
            let store = stores.Head
            for i in 1 .. 4 do setEntry m (sprintf "dd0%d" i) (payload 500 i)
            let good = (getBytes store (k "dd01")).Value
            let flipped = Array.copy (getBytes store (k "dd02")).Value
            flipped.[flipped.Length - 10] <- flipped.[flipped.Length - 10] ^^^ 0x40uy
            put store (k "dd02") flipped
            let cut = (getBytes store (k "dd03")).Value
            put store (k "dd03") cut.[.. cut.Length - 100]
            put store (k "dd04") good // a valid envelope of dd01 copied under dd04's key
            let! report = m.VerifyAsync()
            Expect.equal (report.Checked, report.Valid, report.Bad, report.Removed) (4L, 1L, 3L, 0L) "three bad, none removed without --remove"
            let reasons = report.Problems |> Seq.map (fun p -> p.StorageKey, p.Reason) |> Map.ofSeq
            Expect.equal reasons.[(k "dd02")] "HashMismatch" "a flipped payload bit fails the hash"
            Expect.equal reasons.[(k "dd03")] "Truncated" "a cut entry is truncated"
            Expect.equal reasons.[(k "dd04")] "KeyMismatch" "a copied envelope names another key"
            let! removed = m.VerifyAsync(remove = true)
            Expect.equal removed.Removed 3L "all three removed"
            Expect.equal (storedKeys store) (set [ (k "dd01") ]) "only the valid entry is left"
        }

        testT "sync copies missing entries, verifies them, and resumes after an interruption" <| fun () -> task {
            let m, stores, _ = managerOver [ "a"; "b" ]
            use _ = { new IDisposable with member _.Dispose() = m.DisposeAsync().AsTask().Wait() }
            let a, b = stores.[0], stores.[1]
            for i in 1 .. 5 do put a (k (sprintf "ee0%d" i)) (CacheEnvelope.Encode(trace, k (sprintf "ee0%d" i), "p", ReadOnlySpan(payload 100 i)))
            put a (k "ee09") [| 1uy; 2uy; 3uy |] // damaged in the source: never copied
            use cts = new CancellationTokenSource()
            let stopAfterTwo = progressThat (fun p -> if p.Done = 2L then cts.Cancel())
            let! interrupted =
                task {
                    try
                        let! _ = m.SyncAsync("a", "b", progress = stopAfterTwo, cancellationToken = cts.Token)
                        return false
                    with :? OperationCanceledException -> return true
                }
            Expect.isTrue interrupted "the first sync was interrupted"
            let copiedFirst = (keysOf b).Count
            Expect.isTrue (copiedFirst >= 1 && copiedFirst < 5) $"some but not all entries were copied before the interruption ({copiedFirst})"
            let! r = m.SyncAsync("a", "b")
            Expect.equal r.AlreadyPresent (int64 copiedFirst) "the second run skips what the first copied"
            Expect.equal (r.Copied + r.AlreadyPresent) 5L "and copies the rest"
            Expect.equal r.Rejected 1L "the damaged source entry is rejected"
            Expect.equal (keysOf b) (set [ for i in 1 .. 5 -> k (sprintf "ee0%d" i) ]) "every valid entry is in b, the damaged one is not"
            for i in 1 .. 5 do
                let k = k (sprintf "ee0%d" i)
                Expect.equal (getBytes b k) (getBytes a k) $"{k} copied byte for byte"
        }

        testT "the statistics ledger sums the counters of successive caches and resets" <| fun () -> task {
            let path = Path.Combine(tempDir "ledger", "stats.json")
            let ledger = CacheStatisticsLedger(path)
            for _ in 1 .. 2 do
                let o = ArtifactCacheOptions(AutoEvict = false, StatisticsLedger = ledger)
                o.Tiers.Add(CacheTierOptions(Store = new MemoryBlobStore(uniqueSegment "ledger"), Name = "mem"))
                let cache = ArtifactCache.Create o
                let! _ = cache.GetOrCreateAsync(trace, "ff01", fun _ -> Threading.Tasks.Task.FromResult(payload 10 1))
                let! _ = cache.GetOrCreateAsync(trace, "ff01", fun _ -> Threading.Tasks.Task.FromResult(payload 10 1))
                do! cache.DisposeAsync()
            let s = ledger.Read()
            Expect.isNotNull s "the ledger exists"
            Expect.equal s.Runs 2L "two caches added their counters"
            let k = s.Kinds |> Seq.find (fun k -> k.Kind = "trace")
            Expect.equal (k.Requests, k.Hits, k.Misses, k.Computations) (4L, 2L, 2L, 2L) "per run one miss + computation and one hit, summed"
            Expect.equal (s.Tiers |> Seq.find (fun t -> t.Tier = "mem")).Hits 2L "tier hits summed"
            Expect.isTrue (ledger.Reset()) "reset removes the ledger"
            Expect.isFalse (File.Exists path) "the file is gone"
        }
    ]
