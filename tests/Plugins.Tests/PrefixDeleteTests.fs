/// Dropping a whole generation: the local disk's rename-to-trash (readers never see a torn entry, leftovers are
/// cleaned up) and the cache's vacuum and clear using one prefix delete per generation directory.
module Ptd.Plugins.Tests.PrefixDeleteTests

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Storage.LocalDisk
open Ptd.Host.Caching
open Ptd.TestPlugins
open Ptd.Plugins.Tests.TestEnv
open Ptd.Plugins.Tests.CacheTests

let private disk name = snd (localDisk name)

/// Writes entries of `kind` in `generation` through a cache of that generation.
let private seed (store: IBlobStore) generation (kind: ArtifactKind) (keys: string list) =
    task {
        let c = create [ tier store "t" ] (fun o -> o.Generation <- generation)
        for k in keys do
            let! _ = c.SetAsync(kind, k, ReadOnlyMemory(randomBytes k.Length 300))
            ()
        dispose c
    }

let private names (xs: Collections.Generic.IReadOnlyList<BlobInfo>) = xs |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq

[<Tests>]
let tests =
    testList "prefix delete" [
        testT "local disk: readers racing a prefix delete see whole values or misses, never torn ones" <| fun () -> task {
            let store = disk "pd-race"
            let values = Array.init 64 (fun i -> sprintf "trace/r1/g1/k%02d" i, randomBytes (1000 + i) (64 * 1024))
            for k, v in values do
                let! _ = store.PutAsync(BlobKey.Parse k, ReadOnlyMemory v, BlobWriteMode.Overwrite)
                ()
            let expected = values |> Array.map (fun (k, v) -> k, sha256 v) |> dict
            use stop = new CancellationTokenSource()
            let mutable hits = 0
            let mutable misses = 0
            let reader (seed: int) =
                Task.Run<unit>(Func<Task<unit>>(fun () -> task {
                    let rnd = Random seed
                    while not stop.IsCancellationRequested do
                        let k, _ = values.[rnd.Next values.Length]
                        let! r = store.GetAsync(BlobKey.Parse k)
                        if r.Found then
                            Expect.equal (sha256 r.Content) expected.[k] $"{k} read whole"
                            Interlocked.Increment &hits |> ignore
                        else Interlocked.Increment &misses |> ignore
                })) :> Task
            let readers = Array.init 4 reader
            do! Task.Delay 50
            let! n = store.DeletePrefixAsync "trace/r1/g1/"
            // Every read after the delete is a miss; wait until a reader has made one (a fixed delay
            // was not enough on a loaded machine, where the readers may not run for a while).
            let deadline = DateTime.UtcNow.AddSeconds 30.0
            while Volatile.Read &misses = 0 && DateTime.UtcNow < deadline do
                do! Task.Delay 10
            stop.Cancel()
            do! Task.WhenAll readers
            Expect.equal n 64L "every entry counted"
            Expect.isGreaterThan misses 0 "readers saw the entries go"
            let! left = store.ListAsync ""
            Expect.isEmpty left "nothing listed afterwards"
            Expect.isEmpty (Directory.GetDirectories(store.Root, ".trash-*")) "the trash was deleted"
            Expect.isFalse (Directory.Exists(Path.Combine(store.Root, "trace", "r1", "g1"))) "the generation directory is gone"
        }

        testT "local disk: trash left by a process that died half-way is never listed and is removed by the next prefix delete" <| fun () -> task {
            let store = disk "pd-trash"
            let! _ = store.PutAsync(BlobKey.Parse "trace/r1/g2/aa11", ReadOnlyMemory [| 1uy |], BlobWriteMode.Overwrite)
            // What a rename leaves before the deletion finished: the old generation under a trash name (stamp 0 = 1970).
            let dead = Path.Combine(store.Root, ".trash-0-deadbeef", "=aa")
            Directory.CreateDirectory dead |> ignore
            File.WriteAllBytes(Path.Combine(dead, "aa22"), [| 2uy |])
            // A fresh trash of another process still deleting it is left alone.
            let fresh = Path.Combine(store.Root, sprintf ".trash-%d-cafe" (DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
            Directory.CreateDirectory fresh |> ignore
            let! listed = store.ListAsync ""
            Expect.equal (names listed) [ "trace/r1/g2/aa11" ] "trash is invisible"
            let! n = store.DeletePrefixAsync "trace/r1/g1/"
            Expect.equal n 0L "nothing under the prefix"
            Expect.isFalse (Directory.Exists(Path.Combine(store.Root, ".trash-0-deadbeef"))) "old trash removed"
            Expect.isTrue (Directory.Exists fresh) "recent trash kept"
        }

        testT "vacuum drops each whole old generation with one prefix delete, no per-entry deletes" <| fun () -> task {
            let inner = disk "pd-vacuum"
            let store = CountingBlobStore(inner, true)
            do! seed store 1 trace [ "a1"; "a2"; "a3"; "a4"; "a5" ]
            do! seed store 1 (ArtifactKind("trace", 2)) [ "b1"; "b2" ]
            do! seed store 2 (ArtifactKind("trace", 2)) [ "c1"; "c2"; "c3" ]
            do! seed store 1 (ArtifactKind("gradient", 1)) [ "d1" ]
            let! before = inner.ListAsync "trace/"
            let staleBytes = before |> Seq.filter (fun i -> not (i.Key.Value.StartsWith "trace/r2/g2/")) |> Seq.sumBy (fun i -> i.Length)
            let cache = create [ tier store "t" ] (fun o -> o.Generation <- 2)
            let! report = cache.VacuumAsync [ ArtifactKind("trace", 2) ]
            Expect.equal (report.EntriesRemoved, report.EntriesKept) (7L, 3L) "r1/g1 and r2/g1 removed, r2/g2 kept"
            Expect.equal report.BytesRemoved staleBytes "bytes reported from the listing"
            Expect.equal (store.PrefixDeletes, store.Deletes) (2, 0) "two directories, no single deletes"
            Expect.equal ((cache.GetStatistics()).For("t", "trace")).Evictions 7L "counted as evictions"
            let! left = inner.ListAsync ""
            Expect.equal (names left) [ "gradient/r1/g1/d1"; "trace/r2/g2/c1"; "trace/r2/g2/c2"; "trace/r2/g2/c3" ] "what is left"
            dispose cache
        }

        testT "the same vacuum through a store without a native prefix delete removes the same entries one by one" <| fun () -> task {
            let inner = disk "pd-vacuum-default"
            let store = CountingBlobStore(inner, false)
            do! seed store 1 trace [ "a1"; "a2"; "a3" ]
            do! seed store 2 trace [ "c1" ]
            let cache = create [ tier store "t" ] (fun o -> o.Generation <- 2)
            let! report = cache.VacuumAsync [ trace ]
            Expect.equal (report.EntriesRemoved, report.EntriesKept) (3L, 1L) "r1/g1 removed"
            Expect.equal (store.PrefixDeletes, store.Deletes) (0, 3) "entry by entry"
            let! left = inner.ListAsync ""
            Expect.equal (names left) [ "trace/r1/g2/c1" ] "what is left"
            dispose cache
        }

        testT "cache manager: vacuum --stale and clear drop generation directories whole; age and size vacuum stay per entry" <| fun () -> task {
            let inner = disk "pd-manager"
            let store = CountingBlobStore(inner, true)
            let current = CacheLayers.Traces.CurrentKind
            do! seed store 1 current [ "a1"; "a2"; "a3" ]
            do! seed store 2 current [ "c1"; "c2" ]
            let o = ArtifactCacheOptions(AutoEvict = false, Generation = 2)
            o.Tiers.Add(CacheTierOptions(Store = store, Name = "t"))
            use m = CacheManager.Create o
            let! stale = m.VacuumAsync(VacuumOptions(Stale = true))
            Expect.equal stale.EntriesRemoved 3L "the old generation"
            Expect.equal (store.PrefixDeletes, store.Deletes) (1, 0) "one prefix delete"
            let! bySize = m.VacuumAsync(VacuumOptions(MaxSizeBytes = Nullable 0L))
            Expect.equal bySize.EntriesRemoved 2L "the current generation, by size"
            Expect.equal (store.PrefixDeletes, store.Deletes) (1, 2) "size vacuum deletes entry by entry"
            do! seed store 2 current [ "e1"; "e2" ]
            do! seed store 3 current [ "f1" ]
            let! cleared = m.ClearAsync [ CacheLayers.Traces ]
            Expect.equal cleared.EntriesRemoved 3L "both generations cleared"
            Expect.equal (store.PrefixDeletes, store.Deletes) (3, 2) "one prefix delete per generation directory"
            let! left = inner.ListAsync ""
            Expect.isEmpty left "nothing left"
        }
    ]
