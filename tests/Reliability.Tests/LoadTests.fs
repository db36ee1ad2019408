/// §1 Load: N worker processes × M get-or-record operations on overlapping keys against one local cache directory,
/// and against local tiers plus a shared S3 tier (moto). Every value read is checked independently (Workload.fs).
module Ptd.Reliability.Tests.LoadTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Host.Caching
open Ptd.Reliability.Tests.Env
open Ptd.Reliability.Tests.Workload
open Ptd.Reliability.Tests.Worker

/// Processes, operations per process and distinct payload keys (PTD_RELIABILITY_PROCS/OPS/KEYS override them).
let procs () = setting "PTD_RELIABILITY_PROCS" 8
let opsPerProcess () = setting "PTD_RELIABILITY_OPS" 500
let keyCount () = setting "PTD_RELIABILITY_KEYS" 64

/// The same with the S3 tier (moto answers slowly: a smaller default; PTD_RELIABILITY_S3_PROCS/S3_OPS override).
let s3Procs () = setting "PTD_RELIABILITY_S3_PROCS" 4
let s3Ops () = setting "PTD_RELIABILITY_S3_OPS" 120

/// Starts one load worker.
let startWorker (dir: string) (w: int) (args: string list) (env: (string * string) list) =
    let out = Path.Combine(dir, sprintf "worker-%d.json" w)
    let p = start "dotnet" ([ selfDll; "--worker"; "load"; sprintf "out=%s" out; sprintf "seed=%d" (w + 1) ] @ args) env
    let err = p.StandardError.ReadToEndAsync()
    p.StandardOutput.ReadToEndAsync() |> ignore
    p, out, err

/// Waits for workers and reads their summaries; a worker that crashed or hung fails the test.
let finish (workers: (Process * string * Threading.Tasks.Task<string>) list) =
    workers
    |> List.mapi (fun w (p, out, err) ->
        if not (p.WaitForExit 300_000) then
            p.Kill true
            failtestf "worker %d did not finish within 300 s" w
        p.WaitForExit()
        if p.ExitCode <> 0 then failtestf "worker %d exited with %d: %s" w p.ExitCode err.Result
        readSummary out)

/// Totals over workers, checked: no corrupted value, no exception, no rejected (damaged) entry.
let checkClean (test: string) (summaries: LoadSummary list) =
    let sum f = summaries |> List.sumBy f
    let samples = summaries |> List.collect (fun s -> List.ofArray s.ErrorSamples) |> List.truncate 5
    report test "%d processes, %d operations (%d get-or-create, %d read-only, %d trace), %d values verified, %d corrupted, %d exceptions, %d rejected entries"
        summaries.Length (sum (fun s -> s.Ops)) (sum (fun s -> s.PayloadOps)) (sum (fun s -> s.ReadOnlyOps)) (sum (fun s -> s.TraceOps))
        (sum (fun s -> s.Verified)) (sum (fun s -> s.Corrupted)) (sum (fun s -> s.Exceptions)) (summaries |> List.sumBy (fun s -> s.Rejected))
    report test "hits %d, read-only misses %d, computed %d, joined another caller's flight %d; tier errors %d, timeouts %d; slowest worker %.1f s"
        (sum (fun s -> s.Hits)) (sum (fun s -> s.Misses)) (sum (fun s -> s.Computed)) (sum (fun s -> s.SharedFlights))
        (summaries |> List.sumBy (fun s -> s.TierErrors)) (summaries |> List.sumBy (fun s -> s.TierTimeouts)) (summaries |> List.map (fun s -> s.Seconds) |> List.max)
    Expect.equal (sum (fun s -> s.Corrupted)) 0 (sprintf "no corrupted read (samples: %A)" samples)
    Expect.equal (sum (fun s -> s.Exceptions)) 0 (sprintf "no unhandled exception (samples: %A)" samples)
    Expect.equal (summaries |> List.sumBy (fun s -> s.Rejected)) 0L "no damaged entry was ever read"
    Expect.equal (sum (fun s -> s.Verified)) (sum (fun s -> s.Ops) - sum (fun s -> s.Misses)) "every value returned was verified"

/// Recordings per key: (max in one process, max over processes summed, keys recorded, total recordings).
let recordingFigures (summaries: LoadSummary list) =
    let perKey =
        summaries
        |> List.collect (fun s -> s.Recordings |> Seq.map (fun p -> p.Key, p.Value) |> List.ofSeq)
        |> List.groupBy fst
        |> List.map (fun (k, xs) -> k, xs |> List.sumBy snd, xs |> List.map snd |> List.max)
    let maxInProcess = perKey |> List.map (fun (_, _, m) -> m) |> List.fold max 0
    let maxTotal = perKey |> List.map (fun (_, t, _) -> t) |> List.fold max 0
    let histogram = perKey |> List.countBy (fun (_, t, _) -> t) |> List.sort
    maxInProcess, maxTotal, perKey.Length, perKey |> List.sumBy (fun (_, t, _) -> t), histogram

/// ptd cache verify on a chain: no bad entry; returns the number checked.
let verifyWithPtd (test: string) (chain: string) (env: (string * string) list) =
    let r = ptdExpect 0 (("PTD_CACHE", chain) :: env) [ "cache"; "verify"; "--json" ]
    let j = json r.Out
    let checkedCount = j.GetProperty("checked").GetInt64()
    report test "ptd cache verify: %d entries checked, %d bad, %d tier problems" checkedCount (j.GetProperty("bad").GetInt64()) (j.GetProperty("tierProblems").GetArrayLength())
    Expect.equal (j.GetProperty("bad").GetInt64()) 0L "ptd cache verify finds no bad entry"
    Expect.equal (j.GetProperty("tierProblems").GetArrayLength()) 0 "ptd cache verify reports no tier problem"
    checkedCount

/// Reads every payload entry of a local cache directory back through a fresh cache and compares it with the generator.
let checkStoredPayloads (chain: string) =
    use registry = registry ()
    use manager = CacheManager.Create(cacheOptions chain 1 ignore, registry)
    let struct (entries, _) = manager.ListAsync([| CacheLayers.Kernels |], null).Result
    let mutable good = 0
    for e in entries do
        match indexOf e.Key with
        | Some i ->
            let r = manager.Cache.TryGetAsync(payloadKind, e.Key).Result
            if r.Found then
                Expect.isTrue (r.Payload.AsSpan().SequenceEqual(ReadOnlySpan(payloadOf i))) (sprintf "stored payload %d equals the generator's" i)
                good <- good + 1
        | None -> failtestf "unexpected payload key %s" e.Key
    good

let private runLoad (test: string) (n: int) (m: int) (chainOf: int -> string) (env: (string * string) list) =
    let k = keyCount ()
    let dir = tempDir "load"
    let sw = Stopwatch.StartNew()
    let workers =
        [ for w in 0 .. n - 1 ->
              startWorker dir w [ sprintf "cache=%s" (chainOf w); sprintf "ops=%d" m; sprintf "keys=%d" k; "conc=4"; "traceEvery=5"; "readEvery=4" ] env ]
    let summaries = finish workers
    report test "%d processes × %d operations on %d payload keys + %d models, 4 concurrent tasks each: %.1f s wall" n m k models.Length sw.Elapsed.TotalSeconds
    checkClean test summaries
    let maxInProcess, maxTotal, keysRecorded, total, histogram = recordingFigures summaries
    report test "recordings: %d in all over %d keys; per key at most %d in one process, at most %d over all processes (bound: %d); keys by recordings: %A"
        total keysRecorded maxInProcess maxTotal n histogram
    Expect.equal maxInProcess 1 "single flight: a process records each key at most once"
    Expect.isLessThanOrEqual maxTotal n "recordings per key are bounded by the number of processes"
    summaries

[<Tests>]
let tests =
    testSequencedGroup "reliability"
    <| testList "load" [
        testCase "N processes × M get-or-record operations on one local cache directory" (fun () ->
            let dir = tempDir "cache"
            let chain = "file://" + Path.Combine(dir, "cache")
            runLoad "load/local" (procs ()) (opsPerProcess ()) (fun _ -> chain) [] |> ignore
            let checkedCount = verifyWithPtd "load/local" chain []
            Expect.isGreaterThan checkedCount 0L "the cache holds entries"
            let good = checkStoredPayloads chain
            report "load/local" "every stored payload re-read and compared with the generator: %d" good)

        testCase "N processes × M get-or-record operations on local tiers + a shared S3 tier (moto)" (fun () ->
            match motoEndpoint.Value with
            | None -> skiptest "moto_server is not available (install moto[server] or run via build.fsx, which sets PTD_TEST_MOTO_ENDPOINT)"
            | Some endpoint ->
                let remote = motoLocation endpoint "load"
                // Two "machines": each has its own local directory; all share the remote tier.
                let locals = [| for h in 0 .. 1 -> "file://" + Path.Combine(tempDir (sprintf "host%d" h), "cache") |]
                let chainOf w = sprintf "%s;%s" locals.[w % 2] remote
                runLoad "load/local+s3" (s3Procs ()) (s3Ops ()) chainOf motoEnv |> ignore
                for l in locals do verifyWithPtd "load/local+s3" (sprintf "%s;%s" l remote) motoEnv |> ignore)
    ]
