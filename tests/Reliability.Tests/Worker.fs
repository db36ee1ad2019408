/// Worker processes: this executable started as `Ptd.Reliability.Tests.dll --worker MODE key=value...` (before
/// Expecto sees the arguments). Modes:
///   load    M get-or-record operations (payloads and traces) with C concurrent tasks against a tier chain; every
///           value read is checked; writes a JSON summary to out=FILE.
///   writer  writes 1–4 MB payloads to a tier chain in a loop until killed (the kill -9 test); prints a line per write.
module Ptd.Reliability.Tests.Worker

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Threading
open System.Threading.Tasks
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Host.Traces
open Ptd.Reliability.Tests.Workload

let private parse (args: string[]) =
    args
    |> Array.map (fun a ->
        match a.IndexOf '=' with
        | -1 -> failwithf "worker argument '%s' is not key=value" a
        | i -> a.Substring(0, i), a.Substring(i + 1))
    |> Map.ofArray

/// The summary a load worker writes (read back by the tests).
type LoadSummary =
    { Ops: int
      PayloadOps: int
      ReadOnlyOps: int
      TraceOps: int
      Verified: int
      Corrupted: int
      Exceptions: int
      ErrorSamples: string[]
      Hits: int
      Misses: int
      Computed: int
      SharedFlights: int
      /// Factory runs (payloads) or recordings (traces) in this process, by key.
      Recordings: Dictionary<string, int>
      Rejected: int64
      TierErrors: int64
      TierTimeouts: int64
      Logs: string[]
      Seconds: float }

let private runLoad (a: Map<string, string>) =
    let chain = a.["cache"]
    let generation = int (defaultArg (a.TryFind "gen") "1")
    let ops = int a.["ops"]
    let keys = int a.["keys"]
    let concurrency = int (defaultArg (a.TryFind "conc") "4")
    let seed = int a.["seed"]
    let traceEvery = int (defaultArg (a.TryFind "traceEvery") "5")
    let readEvery = int (defaultArg (a.TryFind "readEvery") "4")
    let delayMs = int (defaultArg (a.TryFind "delayMs") "3")
    let logs = ConcurrentQueue<string>()
    let options = cacheOptions chain generation (fun m -> if logs.Count < 50 then logs.Enqueue m)
    use registry = registry ()
    let cache = ArtifactCache.Create(options, registry)
    use store = new TraceStore(cache)
    let graphs = models |> List.map (fun (spec, theta) -> spec, ModelSpec.build spec, theta) |> List.toArray
    // The independent side: moments by direct elimination, before any cache access.
    let expected = graphs |> Array.map (fun (_, g, theta) -> referenceMoments g theta)
    let recordings = ConcurrentDictionary<string, int>()
    let count key = recordings.AddOrUpdate(key, 1, fun _ n -> n + 1) |> ignore
    let verified = ref 0
    let corrupted = ref 0
    let exceptions = ref 0
    let hits = ref 0
    let misses = ref 0
    let computed = ref 0
    let shared = ref 0
    let payloadOps = ref 0
    let readOps = ref 0
    let traceOps = ref 0
    let errors = ConcurrentQueue<string>()
    let next = ref -1
    let sw = Stopwatch.StartNew()
    let one (rng: Random) (op: int) =
        task {
            if traceEvery > 0 && op % traceEvery = 0 then
                Interlocked.Increment traceOps |> ignore
                let j = rng.Next graphs.Length
                let spec, g, theta = graphs.[j]
                let! lookup = store.GetOrRecordAsync g
                if lookup.Origin = TraceOrigin.Recorded && not lookup.SharedFlight then count ("trace:" + spec)
                if lookup.Origin = TraceOrigin.CacheHit then Interlocked.Increment hits |> ignore
                elif lookup.SharedFlight then Interlocked.Increment shared |> ignore
                else Interlocked.Increment computed |> ignore
                if sameMoments (traceMoments lookup.Trace g theta) expected.[j] then Interlocked.Increment verified |> ignore
                else
                    Interlocked.Increment corrupted |> ignore
                    errors.Enqueue(sprintf "trace of %s: moments differ from direct elimination" spec)
            else
                let i = int64 (rng.Next keys)
                let key = keyOf i
                if readEvery > 0 && op % readEvery = 1 then
                    // A pure reader: a hit must be the exact value, a miss is fine.
                    Interlocked.Increment readOps |> ignore
                    let! r = cache.TryGetAsync(payloadKind, key)
                    if r.Found then
                        Interlocked.Increment hits |> ignore
                        if r.Payload.AsSpan().SequenceEqual(ReadOnlySpan(payloadOf i)) then Interlocked.Increment verified |> ignore
                        else
                            Interlocked.Increment corrupted |> ignore
                            errors.Enqueue(sprintf "read of %d: %d bytes differ from the generator" i r.Payload.Length)
                    else Interlocked.Increment misses |> ignore
                else
                    Interlocked.Increment payloadOps |> ignore
                    let factory =
                        Func<CancellationToken, Task<byte[]>>(fun ct ->
                            task {
                                count (sprintf "payload:%d" i)
                                // A little work time widens the window in which other callers join (or race).
                                if delayMs > 0 then do! Task.Delay(delayMs, ct)
                                return payloadOf i
                            })
                    let! r = cache.GetOrCreateAsync(payloadKind, key, factory)
                    match r.Outcome with
                    | CacheOutcome.Hit -> Interlocked.Increment hits |> ignore
                    | _ when r.SharedFlight -> Interlocked.Increment shared |> ignore
                    | _ -> Interlocked.Increment computed |> ignore
                    if r.Payload.AsSpan().SequenceEqual(ReadOnlySpan(payloadOf i)) then Interlocked.Increment verified |> ignore
                    else
                        Interlocked.Increment corrupted |> ignore
                        errors.Enqueue(sprintf "get-or-create of %d: %d bytes differ from the generator" i r.Payload.Length)
        }
    let lane (n: int) =
        task {
            let rng = Random(seed * 1000 + n)
            let mutable op = Interlocked.Increment next
            while op < ops do
                try
                    do! one rng op
                with e ->
                    Interlocked.Increment exceptions |> ignore
                    if errors.Count < 20 then errors.Enqueue(sprintf "%s: %s" (e.GetType().Name) e.Message)
                op <- Interlocked.Increment next
        }
    Task.WaitAll [| for n in 0 .. concurrency - 1 -> lane n :> Task |]
    let stats = cache.GetStatistics()
    cache.DisposeAsync().AsTask().Wait()
    { Ops = payloadOps.Value + readOps.Value + traceOps.Value
      PayloadOps = payloadOps.Value
      ReadOnlyOps = readOps.Value
      TraceOps = traceOps.Value
      Verified = verified.Value
      Corrupted = corrupted.Value
      Exceptions = exceptions.Value
      ErrorSamples = errors |> Seq.truncate 10 |> Array.ofSeq
      Hits = hits.Value
      Misses = misses.Value
      Computed = computed.Value
      SharedFlights = shared.Value
      Recordings = Dictionary<string, int>(recordings)
      Rejected = stats.Tiers |> Seq.sumBy (fun t -> t.Rejected)
      TierErrors = stats.Tiers |> Seq.sumBy (fun t -> t.Errors)
      TierTimeouts = stats.Tiers |> Seq.sumBy (fun t -> t.Timeouts)
      Logs = Array.ofSeq logs
      Seconds = sw.Elapsed.TotalSeconds }

// Writes big payloads (distinct keys: every write is a real file write) until killed.
let private runWriter (a: Map<string, string>) =
    let chain = a.["cache"]
    let seed = int64 a.["seed"]
    let options = cacheOptions chain 1 ignore
    use registry = registry ()
    let cache = ArtifactCache.Create(options, registry)
    let mutable n = 0L
    while true do
        let i = 1_000_000_000L + seed * 10_000L + n
        cache.GetOrCreateAsync(payloadKind, keyOf i, fun _ -> Task.FromResult(payloadOf i)).Result |> ignore
        // The parent kills at a random time after the first write: from then on, writes follow each other.
        printfn "wrote %d" i
        Console.Out.Flush()
        n <- n + 1L

let jsonOptions = JsonSerializerOptions(WriteIndented = false)

/// Runs a worker; the process exit code says whether it ran (0) or crashed (1, message on stderr).
let run (argv: string[]) =
    try
        let a = parse argv.[1..]
        match argv.[0] with
        | "load" ->
            let summary = runLoad a
            File.WriteAllText(a.["out"], JsonSerializer.Serialize(summary, jsonOptions))
            0
        | "writer" ->
            runWriter a
            0
        | m -> failwithf "unknown worker mode '%s'" m
    with e ->
        eprintfn "worker failed: %O" e
        1

/// Reads a load worker's summary.
let readSummary (path: string) = JsonSerializer.Deserialize<LoadSummary>(File.ReadAllText path, jsonOptions)
