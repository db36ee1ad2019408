/// §1 Concurrent `vacuum` and `clear` (and a user's `rm -rf`) while readers and writers run: every read is a hit with
/// the exact value or a miss, never a torn or damaged value, and no write fails.
module Ptd.Reliability.Tests.ChurnTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Host.Caching
open Ptd.Reliability.Tests.Env
open Ptd.Reliability.Tests.Workload
open Ptd.Reliability.Tests.LoadTests

let private opsPerProcess () = setting "PTD_RELIABILITY_CHURN_OPS" 250

[<Tests>]
let tests =
    testSequencedGroup "reliability"
    <| testList "churn" [
        testCase "clear, vacuum (in-process and the real ptd) and rm -rf while 6 processes read and write" (fun () ->
            let test = "churn/local"
            let dir = tempDir "churn"
            let chain = "file://" + Path.Combine(dir, "cache")
            let m = opsPerProcess ()
            // Four generation-1 workers and two generation-2 workers: the generation-1 vacuum removes the
            // generation-2 entries (stale to it) while their writers and readers are running.
            let workers =
                [ for w in 0 .. 5 ->
                      let gen = if w < 4 then 1 else 2
                      startWorker dir w [ sprintf "cache=%s" chain; sprintf "gen=%d" gen; sprintf "ops=%d" m; "keys=32"; "conc=4"; "traceEvery=6"; "readEvery=3"; "delayMs=1" ] [] ]
            let sw = Stopwatch.StartNew()
            let clears, vacuums, ptdRuns, removed = ref 0, ref 0, ref 0, ref 0L
            let problems = Collections.Concurrent.ConcurrentQueue<string>()
            let running () = workers |> List.exists (fun (p, _, _) -> not p.HasExited)
            // In this process: clear, vacuum of stale entries, vacuum to a size, round and round.
            let inProcess =
                Threading.Tasks.Task.Run(fun () ->
                    use registry = registry ()
                    use manager = CacheManager.Create(cacheOptions chain 1 ignore, registry)
                    let mutable cycle = 0
                    while running () do
                        let r =
                            match cycle % 3 with
                            | 0 ->
                                Threading.Interlocked.Increment clears |> ignore
                                manager.ClearAsync(CacheLayers.All).Result
                            | 1 ->
                                Threading.Interlocked.Increment vacuums |> ignore
                                manager.VacuumAsync(VacuumOptions(Stale = true)).Result
                            | _ ->
                                Threading.Interlocked.Increment vacuums |> ignore
                                manager.VacuumAsync(VacuumOptions(MaxSizeBytes = Nullable 100_000L)).Result
                        Threading.Interlocked.Add(removed, r.EntriesRemoved) |> ignore
                        for p in r.Problems do problems.Enqueue p
                        cycle <- cycle + 1
                        Threading.Thread.Sleep 50)
            // Meanwhile the real CLI, alternating clear and vacuum.
            let cli =
                Threading.Tasks.Task.Run(fun () ->
                    let mutable cycle = 0
                    while running () do
                        let args =
                            if cycle % 2 = 0 then [ "cache"; "clear"; "--all"; "--yes"; "--json" ]
                            else [ "cache"; "vacuum"; "--stale"; "--max-size"; "200KB"; "--json" ]
                        let p = ptd [ "PTD_CACHE", chain ] args
                        Threading.Interlocked.Increment ptdRuns |> ignore
                        if p.Code <> 0 then problems.Enqueue(sprintf "ptd %s: exit %d: %s" (String.Join(" ", args)) p.Code p.Err)
                        else Threading.Interlocked.Add(removed, (json p.Out).GetProperty("entriesRemoved").GetInt64()) |> ignore
                        cycle <- cycle + 1)
            // And a user's `rm -rf` of the payload layer's directory tree (removes directories, not only files).
            let wipes = ref 0
            let rmrf =
                Threading.Tasks.Task.Run(fun () ->
                    let layerDir = Path.Combine(dir, "cache", payloadKind.Name)
                    while running () do
                        Threading.Thread.Sleep 150
                        let r = runWith 30 "rm" [ "-rf"; layerDir ] []
                        if r.Code = 0 then Threading.Interlocked.Increment wipes |> ignore)
            Threading.Tasks.Task.WaitAll(inProcess, cli, rmrf)
            let summaries = finish workers
            report test "6 processes × %d operations (4 on generation 1, 2 on generation 2) on 32 payload keys + %d models, for %.1f s" m models.Length sw.Elapsed.TotalSeconds
            report test "meanwhile: %d in-process clears, %d in-process vacuums, %d ptd clear/vacuum runs (%d entries removed by these in all), %d `rm -rf` of the payload directory tree"
                clears.Value vacuums.Value ptdRuns.Value removed.Value wipes.Value
            checkClean test summaries
            let _, maxTotal, keysRecorded, total, _ = recordingFigures summaries
            report test "recordings: %d over %d keys, at most %d for one key (entries keep being removed, so there is no bound here)" total keysRecorded maxTotal
            Expect.isEmpty problems "clear and vacuum report no problem; ptd cache clear/vacuum exit 0"
            Expect.isGreaterThan removed.Value 0L "entries were removed while the workers ran"
            // A directory removed under a writer is recreated, not a tier failure (which would switch caching off for 30 s).
            Expect.equal (summaries |> List.sumBy (fun s -> s.TierErrors)) 0L (sprintf "no tier error (logs: %A)" (summaries |> List.collect (fun s -> List.ofArray s.Logs) |> List.truncate 3))
            Expect.isGreaterThan (summaries |> List.sumBy (fun s -> s.Misses)) 0 "readers saw misses (entries disappeared under them)"
            verifyWithPtd test chain [] |> ignore
            checkStoredPayloads chain |> ignore)
    ]
