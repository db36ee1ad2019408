/// §2 kill -9 of writer processes at random points, many times: afterwards `ptd cache verify` finds no partial entry,
/// every entry is the exact value, and the temporary files the dead writers left are removed by the next vacuum
/// (only those older than the grace period: a live writer's temporary file stays).
module Ptd.Reliability.Tests.KillTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Core
open Ptd.Host.Traces
open Ptd.Reliability.Tests.Env
open Ptd.Reliability.Tests.Workload
open Ptd.Reliability.Tests.LoadTests

let private killTarget () = setting "PTD_RELIABILITY_KILLS" 30

/// Models the killed `ptd` writers record: 0.5–2 s each on an idle machine, traces of 0.3–1.5 MB.
let private ptdModels = [| for n in 22 .. 27 -> sprintf "coalescent:n=%d" n |]

type private Victim =
    { Process: Process
      What: string
      /// When to kill it (after its first write, for workers; after the start, for ptd).
      Delay: TimeSpan
      mutable ReadyAt: DateTime option }

[<Tests>]
let tests =
    testSequencedGroup "reliability"
    <| testList "kill" [
        testCase "kill -9 of writers (workers and the real ptd) at random points; verify; vacuum removes their temporary files" (fun () ->
            let test = "kill/local"
            let dir = tempDir "kill"
            let cacheDir = Path.Combine(dir, "cache")
            let chain = "file://" + cacheDir
            let env = [ "PTD_CACHE", chain; "PTD_CACHE_STATS", Path.Combine(dir, "stats.json") ]
            let rng = Random 20261127
            let target = killTarget ()
            let sw = Stopwatch.StartNew()
            let mutable kills, exitedBeforeKill, started, workerKills, ptdKills = 0, 0, 0, 0, 0
            let startVictim () =
                started <- started + 1
                if started % 3 = 0 then
                    // The real CLI: record a trace (cache write of 0.8–4.4 MB) or compute moments through it.
                    let model = ptdModels.[rng.Next ptdModels.Length]
                    let args =
                        if rng.Next 2 = 0 then [ ptdDll; "trace"; "record"; model; "-o"; Path.Combine(dir, sprintf "t%d.ptdt" started) ]
                        else [ ptdDll; "moments"; model; "--theta"; "1" ]
                    let p = start "dotnet" args env
                    p.StandardOutput.ReadToEndAsync() |> ignore
                    p.StandardError.ReadToEndAsync() |> ignore
                    { Process = p; What = "ptd"; Delay = TimeSpan.FromMilliseconds(float (500 + rng.Next 5500)); ReadyAt = Some DateTime.UtcNow }
                else
                    let p = start "dotnet" [ selfDll; "--worker"; "writer"; sprintf "cache=%s" chain; sprintf "seed=%d" started ] env
                    p.StandardError.ReadToEndAsync() |> ignore
                    { Process = p; What = "worker"; Delay = TimeSpan.FromMilliseconds(float (rng.Next 800)); ReadyAt = None }
            let live = Collections.Generic.List<Victim>()
            let readyTasks = Collections.Generic.Dictionary<Process, Threading.Tasks.Task<string>>()
            while kills < target do
                while live.Count < 6 && kills + live.Count < target do
                    let v = startVictim ()
                    if v.What = "worker" then readyTasks.[v.Process] <- v.Process.StandardOutput.ReadLineAsync()
                    live.Add v
                for v in List.ofSeq live do
                    if v.ReadyAt.IsNone && readyTasks.[v.Process].IsCompleted then
                        v.ReadyAt <- Some DateTime.UtcNow
                        v.Process.StandardOutput.ReadToEndAsync() |> ignore
                    match v.ReadyAt with
                    | Some t when DateTime.UtcNow - t >= v.Delay || v.Process.HasExited ->
                        if v.Process.HasExited then
                            exitedBeforeKill <- exitedBeforeKill + 1
                            if v.What = "worker" then failtestf "a writer worker died by itself (exit %d)" v.Process.ExitCode
                        else
                            // Process.Kill is SIGKILL on Unix: no handler, no finally block, no flush runs.
                            v.Process.Kill()
                            v.Process.WaitForExit()
                            kills <- kills + 1
                            if v.What = "ptd" then ptdKills <- ptdKills + 1 else workerKills <- workerKills + 1
                        live.Remove v |> ignore
                        v.Process.Dispose()
                    | _ -> ()
                Threading.Thread.Sleep 10
            let leftovers = tempFiles cacheDir
            report test "%d SIGKILLs injected (%d writer workers writing 1–4 MB payloads, %d ptd trace record/moments on coalescent n=22..27), %d ptd runs finished before their kill time; %.1f s"
                kills workerKills ptdKills exitedBeforeKill sw.Elapsed.TotalSeconds
            report test "temporary files left by the killed writers: %d" leftovers.Length
            Expect.isGreaterThanOrEqual kills target "the kills were injected"
            // No partial entry: the real CLI checks every envelope and payload hash.
            let checkedCount = verifyWithPtd test chain []
            Expect.isGreaterThan checkedCount 0L "the writers stored entries before they were killed"
            // Every payload is the generator's, every trace replays to the moments of a direct elimination.
            let payloads = checkStoredPayloads chain
            let mutable traces = 0
            (
                use registry = registry ()
                let cache = Ptd.Host.Caching.ArtifactCache.Create(cacheOptions chain 1 ignore, registry)
                use store = new TraceStore(cache)
                for spec in ptdModels do
                    let g = ModelSpec.build spec
                    let key = ModelKey.compute g
                    let hit = cache.TryGetAsync(TraceStore.Kind, key.Hex).Result
                    if hit.Found then
                        let lookup = store.GetOrRecord g
                        Expect.equal lookup.Origin TraceOrigin.CacheHit (sprintf "%s: the stored trace is used" spec)
                        Expect.isTrue (sameMoments (traceMoments lookup.Trace g [| 1.0 |]) (referenceMoments g [| 1.0 |])) (sprintf "%s: cached trace replays to the direct elimination's moments" spec)
                        traces <- traces + 1
                cache.DisposeAsync().AsTask().Wait()
            )
            report test "after the kills: %d entries verified by ptd cache verify, %d payloads equal to the generator, %d cached traces replay to the direct elimination's moments" checkedCount payloads traces
            // The statistics ledger written by ptd processes (some killed) is still readable.
            ptdExpect 0 env [ "cache"; "stats"; "--json" ] |> ignore
            // Vacuum: temporary files older than the grace period go; a live writer's (fresh) one stays.
            let fanOut = Directory.GetDirectories(cacheDir, "=*", SearchOption.AllDirectories) |> Array.head
            let synthetic = Path.Combine(fanOut, ".tmp-synthetic-abandoned")
            File.WriteAllBytes(synthetic, Array.zeroCreate 1000)
            let old = DateTime.UtcNow.AddHours -2.0
            for f in Array.append leftovers [| synthetic |] do File.SetLastWriteTimeUtc(f, old)
            let live = Path.Combine(fanOut, ".tmp-live-writer")
            File.WriteAllBytes(live, Array.zeroCreate 1000)
            let r = ptdExpect 0 env [ "cache"; "vacuum"; "--stale"; "--json" ]
            let scratch = (json r.Out).GetProperty("tiers").[0].GetProperty("scratchRemoved").GetInt64()
            report test "ptd cache vacuum --stale removed %d abandoned temporary files (%d from kills + 1 planted), kept the fresh one" scratch leftovers.Length
            Expect.equal scratch (int64 leftovers.Length + 1L) "vacuum removes every temporary file older than the grace period"
            Expect.sequenceEqual (tempFiles cacheDir) [| live |] "only the live writer's temporary file is left"
            // The cache still works after all that.
            ptdExpect 0 env [ "moments"; ptdModels.[0]; "--theta"; "1" ] |> ignore)

        testCase "vacuum's grace period and dry run for abandoned temporary files" (fun () ->
            let cacheDir = Path.Combine(tempDir "scratch", "cache")
            let fanOut = Path.Combine(cacheDir, "kernel", "r1", "g1", "=ab")
            Directory.CreateDirectory fanOut |> ignore
            let file name (age: TimeSpan) =
                let f = Path.Combine(fanOut, name)
                File.WriteAllBytes(f, Array.zeroCreate 100)
                File.SetLastWriteTimeUtc(f, DateTime.UtcNow - age)
                f
            let old = file ".tmp-old" (TimeSpan.FromHours 2.0)
            let recent = file ".tmp-recent" (TimeSpan.FromMinutes 50.0)
            // Not a temporary file: vacuum must not touch foreign files, however old.
            let foreign = file "not-a-temp" (TimeSpan.FromDays 3.0)
            use registry = registry ()
            use manager = Ptd.Host.Caching.CacheManager.Create(cacheOptions ("file://" + cacheDir) 1 ignore, registry)
            let vacuum dryRun grace =
                manager.VacuumAsync(Ptd.Host.Caching.VacuumOptions(Stale = true, DryRun = dryRun, ScratchGracePeriod = grace)).Result.Tiers.[0]
            let dry = vacuum true (TimeSpan.FromHours 1.0)
            Expect.equal dry.ScratchRemoved 1L "a dry run counts the file older than the grace period"
            Expect.isTrue (File.Exists old) "a dry run removes nothing"
            let real = vacuum false (TimeSpan.FromHours 1.0)
            Expect.equal (real.ScratchRemoved, real.ScratchBytesRemoved) (1L, 100L) "the old temporary file is removed"
            Expect.isFalse (File.Exists old) "gone"
            Expect.isTrue (File.Exists recent) "a file younger than the grace period stays"
            let shorter = vacuum false (TimeSpan.FromMinutes 30.0)
            Expect.equal shorter.ScratchRemoved 1L "a shorter grace period takes it"
            Expect.isTrue (File.Exists foreign) "a file that is not a temporary file is never removed")
    ]
