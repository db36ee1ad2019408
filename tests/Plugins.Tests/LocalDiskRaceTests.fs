/// The local disk store while its directory tree is removed under it (a user's `rm -rf` of the cache, a
/// concurrent `ptd cache clear`): every write either lands whole or is retried, never reported as a failure.
module Ptd.Plugins.Tests.LocalDiskRaceTests

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Plugins.Tests.TestEnv
open Ptd.Plugins.Tests.CacheTests

[<Tests>]
let tests =
    testList "local disk races" [
        testT "writes into one shard directory while another thread removes the tree: no write fails" <| fun () -> task {
            let root, store = localDisk "ld-rmrf"
            let payload = ReadOnlyMemory(Array.init 512 byte)
            use stop = new CancellationTokenSource()
            let mutable removals = 0
            // `rm -rf root/kernel` every millisecond or so: directory creation races its removal
            let remover =
                Task.Run(fun () ->
                    while not stop.IsCancellationRequested do
                        try
                            Directory.Delete(Path.Combine(root, "kernel"), true)
                            Interlocked.Increment(&removals) |> ignore
                        with :? DirectoryNotFoundException | :? IOException -> ()
                        Thread.Sleep 1)
            let failures = Collections.Concurrent.ConcurrentQueue<string>()
            let writer (w: int) =
                Task.Run(fun () ->
                    for i in 0 .. 1499 do
                        // the same few shard directories (=c2, =c3) for every writer
                        let key = BlobKey.Parse(sprintf "kernel/r2/g1/c%d%04d%02d" (2 + i % 2) i w)
                        try
                            store.PutAsync(key, payload, BlobWriteMode.CreateOnly).GetAwaiter().GetResult() |> ignore
                        with e -> failures.Enqueue(e.Message))
            do! Task.WhenAll [| for w in 0 .. 3 -> writer w |]
            stop.Cancel()
            do! remover
            printfn "[local disk races] 4 writers × 1500 writes, %d removals of the tree meanwhile, %d failed" removals failures.Count
            for m in List.ofSeq failures |> List.truncate 3 do printfn "  %s" m
            Expect.isGreaterThan removals 10 "the tree was removed many times during the writes"
            Expect.isEmpty (List.ofSeq failures |> List.truncate 3) "no write failed"
        }

        testT "a file where a directory belongs is an error that says so, not a vanished directory retried" <| fun () -> task {
            let root, store = localDisk "ld-file-in-the-way"
            File.WriteAllText(Path.Combine(root, "kernel"), "not a directory")
            let sw = Diagnostics.Stopwatch.StartNew()
            let! outcome =
                task {
                    try
                        let! _ = store.PutAsync(BlobKey.Parse "kernel/r2/g1/abc123", ReadOnlyMemory [| 1uy |], BlobWriteMode.CreateOnly)
                        return None
                    with e -> return Some e.Message
                }
            match outcome with
            | None -> failtest "the write succeeded through a file"
            | Some message ->
                Expect.stringContains message (Path.Combine(root, "kernel") + "' is a file where the cache needs a directory") "names the file"
                Expect.isFalse (message.Contains "was removed while it was being created") (sprintf "not reported as a race: %s" message)
            Expect.isLessThan sw.Elapsed.TotalSeconds 0.5 "no retries with pauses"
        }
    ]
