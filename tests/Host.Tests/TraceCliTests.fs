/// Traces through the cache, trace files and the likelihood, end to end: the real `ptd` executable
/// (each test with its own cache directory) and the C# API (TraceStore, PhaseTypeModel).
module Ptd.Host.Tests.TraceCliTests

open System
open System.Globalization
open System.IO
open Expecto
open Ptd.Core
open Ptd.Host.Models
open Ptd.Host.Traces
open Ptd.Host.Tests.Cli
open Ptd.Host.Tests.CliTests

/// The environment of one test: its own cache directory, the default (file://) tier, no config file.
let private cacheEnv (dir: string) = [ "PTD_CACHE", "file://"; "PTD_CACHE_DIR", dir; "PTD_CACHE_CONFIG", "" ]

let private inv (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

/// The plugins next to the ptd executable the CLI tests run (for API-level stores).
let private pluginDir = Path.Combine(Path.GetDirectoryName ptdDll, "plugins")

/// A TraceStore over a file:// cache in `dir`, as ptd builds it from the environment.
let private store (dir: string) (log: string -> unit) =
    let env (name: string) : string =
        match name with
        | "PTD_CACHE" -> "file://"
        | "PTD_CACHE_DIR" -> dir
        | "PTD_PLUGIN_PATH" -> pluginDir
        | _ -> null
    TraceStore.FromEnvironment(Func<string, string>(env), TraceStoreOptions(Log = Action<string>(log)))

let private cacheFiles (dir: string) =
    if Directory.Exists dir then Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.filter (fun f -> not (Path.GetFileName(f).StartsWith ".")) else [||]

let private moments (r: Result) =
    let j = json r.Out
    j.GetProperty("mean").GetDouble(), j.GetProperty("variance").GetDouble(), numbers (j.GetProperty "moments")

let private loglik (cwd: string) (env: (string * string) list) (model: string) (data: string) (theta: float[]) (grad: bool) =
    let args = [ "loglik"; model; "--data"; data; "--theta"; String.Join(",", theta |> Array.map inv); "--json" ] @ (if grad then [ "--grad" ] else [])
    let j = runIn cwd env args |> ok |> fun r -> json r.Out
    j.GetProperty("loglik").GetDouble(), (if grad then numbers (j.GetProperty "gradient") else [||])

/// Central differences of the CLI's own log-likelihood values.
let private centralFd (cwd: string) (env: (string * string) list) (model: string) (data: string) (theta: float[]) =
    theta |> Array.mapi (fun k t ->
        let h = 1e-5 * max 1.0 (abs t)
        let at d = Array.mapi (fun i x -> if i = k then x + d else x) theta
        let up, _ = loglik cwd env model data (at h) false
        let down, _ = loglik cwd env model data (at -h) false
        (up - down) / (2.0 * h))

[<Tests>]
let tests =
    testList "traces" [
        test "trace record → info → export → info: same key, same ops; key is the model's structural key" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            let bin = Path.Combine(dir, "r3.ptdt")
            let rec_ = runIn dir env [ "trace"; "record"; "rabbits3:R=3"; "-o"; bin; "--json" ] |> ok |> fun r -> json r.Out
            Expect.isTrue (File.Exists bin) "binary trace written"
            let expectedKey = (ModelKey.compute (ModelSpec.build "rabbits3:R=3")).Hex
            Expect.equal (rec_.GetProperty("key").GetString()) expectedKey "record reports the model key"
            let info = runIn dir env [ "trace"; "info"; bin; "--json" ] |> ok |> fun r -> json r.Out
            Expect.equal (info.GetProperty("key").GetString()) expectedKey "info: key"
            Expect.equal (info.GetProperty("parameters").GetInt32()) 3 "info: 3 parameters"
            let decoded = TraceEncoding.decode (File.ReadAllBytes bin)
            let stats = TraceStats.compute decoded
            Expect.equal (info.GetProperty("ops").GetInt32()) stats.Ops "info: ops = the file's op count"
            Expect.equal (info.GetProperty("commands").GetInt32()) decoded.CommandCount "info: commands"
            Expect.equal (info.GetProperty("outputs").GetInt32()) (decoded.CommandCount + decoded.EdgeCount + decoded.VertexCount) "info: outputs"
            let byKind = info.GetProperty("opsByKind")
            let total = byKind.EnumerateObject() |> Seq.sumBy (fun p -> p.Value.GetInt32())
            Expect.equal total stats.Ops "ops by kind add up to the ops"
            Expect.isGreaterThan (byKind.GetProperty("mul").GetInt32()) 0 "elimination multiplies"
            let jsonFile = Path.Combine(dir, "r3.trace.json")
            runIn dir env [ "trace"; "export"; bin; "--json"; "-o"; jsonFile ] |> ok |> ignore
            let info2 = runIn dir env [ "trace"; "info"; jsonFile; "--json" ] |> ok |> fun r -> json r.Out
            Expect.equal (info2.GetProperty("key").GetString()) expectedKey "JSON export keeps the key"
            Expect.equal (info2.GetProperty("ops").GetInt32()) stats.Ops "JSON export keeps the ops"
            // The JSON is the same trace: re-encoding it gives the binary file byte for byte.
            Expect.equal (TraceEncoding.encode (TraceJson.import (File.ReadAllText jsonFile))) (File.ReadAllBytes bin) "JSON → binary round trip"
            let stdoutExport = runIn dir env [ "trace"; "export"; bin; "--json" ] |> ok
            Expect.equal stdoutExport.Out (File.ReadAllText jsonFile) "export to stdout = export to a file"
        }
        test "moments from a trace file (binary or JSON, any extension) equal moments from the model to 1e-12" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            for spec, theta in [ "rabbits3:R=2", "1,2,4"; "twodeme:n=3", "1,0.5" ] do
                // Extensions that lie: detection is by content.
                let bin = Path.Combine(dir, "trace-as.json")
                let js = Path.Combine(dir, "trace-as.ptdt")
                runIn dir env [ "trace"; "record"; spec; "-o"; bin ] |> ok |> ignore
                runIn dir env [ "trace"; "export"; bin; "--json"; "-o"; js ] |> ok |> ignore
                let m0, v0, ms0 = runIn dir [ "PTD_CACHE", "off" ] [ "moments"; spec; "--theta"; theta; "-k"; "3"; "--json" ] |> ok |> moments
                for file in [ bin; js ] do
                    let m, v, ms = runIn dir env [ "moments"; file; "--theta"; theta; "-k"; "3"; "--json" ] |> ok |> moments
                    close 1e-12 m m0 (sprintf "%s mean from %s" spec file)
                    close 1e-12 v v0 (sprintf "%s variance from %s" spec file)
                    Array.iteri2 (fun i a b -> close 1e-12 a b (sprintf "%s E[T^%d]" spec (i + 1))) ms ms0
            // And against values from outside: rabbits3 R = 2 at θ = (1, 2, 4) (the C library's table).
            let bin = Path.Combine(dir, "r2.ptdt")
            runIn dir env [ "trace"; "record"; "rabbits3:R=2"; "-o"; bin ] |> ok |> ignore
            let m, _, _ = runIn dir env [ "moments"; bin; "--theta"; "1,2,4"; "--json" ] |> ok |> moments
            close 1e-12 m 0.508305647840531 "rabbits3 R=2 mean from the trace file"
            // The density of a trace file's model equals the model's.
            let p0 = runIn dir env [ "pdf"; "rabbits3:R=2"; "--theta"; "1,2,4"; "--times"; "0.1,0.5,2"; "--json" ] |> ok
            let p1 = runIn dir env [ "pdf"; bin; "--theta"; "1,2,4"; "--times"; "0.1,0.5,2"; "--json" ] |> ok
            Expect.equal p1.Out p0.Out "pdf from the trace file"
        }
        test "second ptd moments --verbose is a cache hit with bit-identical output" {
            let dir = tempDir ()
            let cache = Path.Combine(dir, "cache")
            let env = cacheEnv cache
            let args = [ "moments"; "rabbits3:R=6"; "--theta"; "1,2,4"; "-k"; "4"; "--json"; "--verbose" ]
            let first = runIn dir env args |> ok
            Expect.stringContains first.Err "trace: miss → recorded" "first run records"
            Expect.stringContains first.Err "stored" "first run stores"
            Expect.equal (cacheFiles cache).Length 1 "one cache entry"
            let second = runIn dir env args |> ok
            Expect.stringContains second.Err "trace: hit in 0-file" "second run hits the local tier"
            Expect.stringContains second.Err "recordings 0" "no recording on a hit"
            Expect.isFalse (second.Err.Contains "recorded in") "no elimination on a hit"
            Expect.equal second.Out first.Out "bit-identical output"
            let third = runIn dir [ "PTD_CACHE", "off" ] [ "moments"; "rabbits3:R=6"; "--theta"; "1,2,4"; "-k"; "4"; "--json" ] |> ok
            Expect.equal third.Out first.Out "and identical to an uncached run"
        }
        test "a corrupted cache entry is rejected, re-recorded, replaced, and the answer is still right" {
            let dir = tempDir ()
            let cache = Path.Combine(dir, "cache")
            let env = cacheEnv cache
            let args = [ "moments"; "coalescent:n=9"; "--theta"; "1"; "--json"; "--verbose" ]
            let first = runIn dir env args |> ok
            let entry = (cacheFiles cache).[0]
            let bytes = File.ReadAllBytes entry
            for i in [ bytes.Length / 2; bytes.Length / 2 + 1; bytes.Length - 40 ] do bytes.[i] <- bytes.[i] ^^^ 0x5Auy
            File.WriteAllBytes(entry, bytes)
            let second = runIn dir env args |> ok
            Expect.stringContains second.Err "rejected" "the damage is reported"
            Expect.stringContains second.Err "trace: miss → recorded" "re-recorded"
            Expect.equal second.Out first.Out "same answer"
            close 1e-12 ((json second.Out).GetProperty("mean").GetDouble()) (2.0 * (1.0 - 1.0 / 9.0)) "E[T_MRCA] = 2(1 − 1/n)"
            let third = runIn dir env args |> ok
            Expect.stringContains third.Err "trace: hit" "the replaced entry is good"
            Expect.equal third.Out first.Out "same answer from the replaced entry"
        }
        test "PTD_CACHE=off and --no-cache record without touching the cache directory" {
            let dir = tempDir ()
            let cache = Path.Combine(dir, "cache")
            let reference = runIn dir (cacheEnv cache) [ "moments"; "twodeme:n=2"; "--theta"; "1,0.5"; "--json" ] |> ok
            Directory.Delete(cache, true)
            let off = runIn dir [ "PTD_CACHE", "off"; "PTD_CACHE_DIR", cache ] [ "moments"; "twodeme:n=2"; "--theta"; "1,0.5"; "--json"; "--verbose" ] |> ok
            Expect.stringContains off.Err "(cache off)" "verbose says the cache is off"
            Expect.equal off.Out reference.Out "same result"
            let noCache = runIn dir (cacheEnv cache) [ "moments"; "twodeme:n=2"; "--theta"; "1,0.5"; "--json"; "--no-cache"; "--verbose" ] |> ok
            Expect.stringContains noCache.Err "(cache off)" "--no-cache"
            Expect.equal noCache.Out reference.Out "same result"
            Expect.isFalse (Directory.Exists cache && (cacheFiles cache).Length > 0) "nothing written"
        }
        test "an unwritable cache directory gives a warning and the right result" {
            let dir = tempDir ()
            let cache = Path.Combine(dir, "cache")
            Directory.CreateDirectory cache |> ignore
            // Read-only by permission; root ignores that, so then block the trace/ subtree with a file instead.
            File.SetUnixFileMode(cache, UnixFileMode.UserRead ||| UnixFileMode.UserExecute)
            let writable =
                try
                    File.WriteAllText(Path.Combine(cache, "probe"), "x")
                    File.Delete(Path.Combine(cache, "probe"))
                    true
                with _ -> false
            if writable then
                File.SetUnixFileMode(cache, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute)
                File.WriteAllText(Path.Combine(cache, "trace"), "not a directory")
            try
                let r = runIn dir (cacheEnv cache) [ "moments"; "coalescent:n=6"; "--theta"; "2"; "--json"; "--verbose" ] |> ok
                Expect.stringContains r.Err "ptd: warning:" "a warning"
                Expect.stringContains r.Err "not stored" "the trace could not be stored"
                close 1e-12 ((json r.Out).GetProperty("mean").GetDouble()) ((1.0 - 1.0 / 6.0)) "E[T_MRCA] = 2(1 − 1/n)/θ at θ = 2"
            finally
                File.SetUnixFileMode(cache, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute)
        }
        test "loglik of exponential data: n log θ − θ Σx, gradient n/θ − Σx, also as coalescent n = 2" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            let xs = [| 0.5; 1.25; 2.0; 0.01; 3.7; 0.3 |]
            let data = Path.Combine(dir, "times.txt")
            File.WriteAllLines(data, Array.append [| "# absorption times"; "" |] (xs |> Array.map (fun x -> inv x + "  # a comment")))
            let theta = 1.7
            let n = float xs.Length
            let expected = n * log theta - theta * Array.sum xs
            let expectedGrad = n / theta - Array.sum xs
            for model in [ "exponential"; "coalescent:n=2" ] do
                let ll, g = loglik dir env model data [| theta |] true
                close 1e-12 ll expected (sprintf "%s loglik" model)
                close 1e-10 g.[0] expectedGrad (sprintf "%s d/dθ" model)
                let llOnly, _ = loglik dir env model data [| theta |] false
                Expect.equal llOnly ll "with and without --grad"
        }
        test "loglik --grad equals central differences of ptd's own loglik (3 parameters, cyclic)" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            let data = Path.Combine(dir, "times.txt")
            File.WriteAllLines(data, [| "0.2"; "0.45"; "0.9"; "1.6"; "0.05" |])
            let theta = [| 1.0; 2.0; 4.0 |]
            let _, g = loglik dir env "rabbits3:R=2" data theta true
            let fd = centralFd dir env "rabbits3:R=2" data theta
            Array.iteri2 (fun k a b -> close 1e-6 a b (sprintf "∂/∂θ%d" (k + 1))) g fd
        }
        test "loglik of a discrete model takes jump counts: geometric law" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            let file = Path.Combine(dir, "geo.json")
            File.WriteAllText(file, """{"format":"ptd-graph/1","discrete":true,"stateLength":1,"states":[[1],[0]],"start":[{"to":0,"w":1}],"edges":[{"from":0,"to":1,"w":0.25}]}""")
            let data = Path.Combine(dir, "jumps.txt")
            File.WriteAllLines(data, [| "1"; "3"; "2" |])
            let j = runIn dir env [ "loglik"; file; "--data"; data; "--json" ] |> ok |> fun r -> json r.Out
            // P(τ = k) = 0.75^{k−1} · 0.25
            let expected = [ 1; 3; 2 ] |> List.sumBy (fun k -> float (k - 1) * log 0.75 + log 0.25)
            close 1e-12 (j.GetProperty("loglik").GetDouble()) expected "geometric log-likelihood"
            File.WriteAllLines(data, [| "1"; "2.5" |])
            runIn dir env [ "loglik"; file; "--data"; data ] |> badInput [ "line 2"; "whole number" ]
        }
        test "loglik: bad data files and arguments exit 2 with the line named" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            let write name (lines: string[]) =
                let f = Path.Combine(dir, name)
                File.WriteAllLines(f, lines)
                f
            let run' args = runIn dir env args
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; write "nan.txt" [| "1"; "# c"; "NaN" |] ] |> badInput [ "nan.txt line 3"; "NaN" ]
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; write "neg.txt" [| "1"; "-0.5" |] ] |> badInput [ "neg.txt line 2"; "negative" ]
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; write "text.txt" [| "1"; "2"; ""; "1.5x" |] ] |> badInput [ "text.txt line 4"; "'1.5x' is not a number" ]
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; write "inf.txt" [| "Infinity" |] ] |> badInput [ "inf.txt line 1"; "not finite" ]
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; write "empty.txt" [| "# only a comment"; "" |] ] |> badInput [ "empty.txt"; "no observations" ]
            run' [ "loglik"; "exponential"; "--theta"; "1"; "--data"; Path.Combine(dir, "missing.txt") ] |> badInput [ "cannot read data file" ]
            run' [ "loglik"; "exponential"; "--theta"; "1" ] |> badInput [ "missing --data" ]
            run' [ "loglik"; "exponential"; "--data"; write "ok.txt" [| "1" |] ] |> badInput [ "--theta" ]
        }
        test "trace commands: bad input exits 2" {
            let dir = tempDir ()
            let env = cacheEnv (Path.Combine(dir, "cache"))
            runIn dir env [ "trace" ] |> badInput [ "missing sub-command" ]
            runIn dir env [ "trace"; "replay" ] |> badInput [ "unknown sub-command 'replay'" ]
            runIn dir env [ "trace"; "record"; "coalescent:n=4" ] |> badInput [ "missing -o" ]
            runIn dir env [ "trace"; "export"; "coalescent:n=4" ] |> badInput [ "pass --json" ]
            let junk = Path.Combine(dir, "junk.ptdt")
            File.WriteAllBytes(junk, Array.append (Text.Encoding.ASCII.GetBytes "PTDTRACE") (Array.create 40 7uy))
            runIn dir env [ "trace"; "info"; junk ] |> badInput [ "junk.ptdt" ]
            runIn dir env [ "moments"; junk; "--theta"; "1" ] |> badInput [ "junk.ptdt" ]
            // A damaged trace file (one flipped byte) is refused, never half-read.
            let good = Path.Combine(dir, "good.ptdt")
            runIn dir env [ "trace"; "record"; "coalescent:n=5"; "-o"; good ] |> ok |> ignore
            let bytes = File.ReadAllBytes good
            bytes.[bytes.Length / 2] <- bytes.[bytes.Length / 2] ^^^ 1uy
            File.WriteAllBytes(good, bytes)
            runIn dir env [ "moments"; good; "--theta"; "1" ] |> badInput [ "good.ptdt"; "checksum" ]
        }
        test "API: a second PhaseTypeModel on the same structure hits the cache; moments bit-identical to elimination" {
            let dir = tempDir ()
            let logs = Collections.Concurrent.ConcurrentQueue<string>()
            use s = store dir logs.Enqueue
            Expect.isTrue s.IsCaching "a file:// tier"
            let theta = [| 1.0; 2.0; 4.0 |]
            let a = PhaseTypeModel(Models.rabbits3 4, s)
            let ma = a.Moments(theta, 3)
            Expect.equal (a.GetTraceLookup().Origin) TraceOrigin.Recorded "first: recorded"
            Expect.isTrue (a.GetTraceLookup().Stored) "first: stored"
            // Rebuilt from scratch: same structure, same key, so a hit.
            let b = PhaseTypeModel(Models.rabbits3 4, s)
            let mb = b.Moments(theta, 3)
            let lb = b.GetTraceLookup()
            Expect.equal lb.Origin TraceOrigin.CacheHit "second: hit"
            Expect.equal lb.Tier "0-file" "in the local tier"
            Expect.stringStarts (lb.Describe()) "hit in 0-file" "describe"
            let direct = Moments.moments (Elimination.eliminate (Models.rabbits3 4) theta) (Rewards.ones (Models.rabbits3 4)) 3
            for i in 0 .. 2 do
                Expect.equal (BitConverter.DoubleToInt64Bits mb.Moments.[i]) (BitConverter.DoubleToInt64Bits direct.[i]) (sprintf "E[T^%d] bit-identical to direct elimination" (i + 1))
                Expect.equal mb.Moments.[i] ma.Moments.[i] "recorded and cached agree"
            let stats = s.GetStatistics()
            Expect.equal (stats.Requests, stats.Hits, stats.Recordings, stats.DecodeFailures) (2L, 1L, 1L, 0L) "store counters"
            let k = stats.Cache.For("trace")
            Expect.equal (k.Hits, k.Misses, k.Computations) (1L, 1L, 1L) "cache counters"
            Expect.isEmpty logs (sprintf "no warnings: %A" (Seq.toList logs))
        }
        test "API: a cached payload that is not this model's trace is counted, re-recorded and replaced" {
            let dir = tempDir ()
            let logs = Collections.Concurrent.ConcurrentQueue<string>()
            use s = store dir logs.Enqueue
            let g = Models.coalescent 6 None
            let key = ModelKey.compute g
            // A valid envelope around a wrong payload: another model's trace, then plain junk.
            for payload in [ TraceEncoding.encode (Trace.record (Models.coalescent 5 None)); Array.create 100 1uy ] do
                s.Cache.SetAsync(TraceStore.Kind, key.Hex, ReadOnlyMemory<byte> payload).GetAwaiter().GetResult() |> ignore
                let m = PhaseTypeModel(g, s)
                let mean = m.Moments([| 1.0 |], 2).Mean
                let l = m.GetTraceLookup()
                Expect.equal l.Origin TraceOrigin.Recorded "re-recorded"
                Expect.isNotNull l.DecodeFailure "the failure is reported"
                Expect.isTrue l.Stored "and the entry replaced"
                close 1e-12 mean (2.0 * (1.0 - 1.0 / 6.0)) "right answer"
                let again = PhaseTypeModel(g, s)
                again.GetTrace() |> ignore
                Expect.equal (again.GetTraceLookup().Origin) TraceOrigin.CacheHit "the replaced entry is used"
            Expect.equal (s.GetStatistics().DecodeFailures) 2L "two decode failures counted"
            Expect.isTrue (logs |> Seq.exists (fun m -> m.Contains "unusable")) "logged"
        }
        test "the store's default policy optimizes from 5% repeated weight ops (rabbits3 R = 80: 9.9%), bit-identical to the recording" {
            let g = Models.rabbits3 80
            let recorded = Trace.record g
            let share = TracePasses.duplicateWeightShare recorded
            Expect.isTrue (share >= 0.05 && share < 0.1) $"this model sits between the old and the new threshold (share {share})"
            use byDefault = TraceStore.Uncached()
            let l = byDefault.GetOrRecord g
            Expect.isTrue l.Optimized "optimized under the default threshold"
            Expect.isLessThan l.Trace.OpCount (recorded.OpCount * 9 / 10) "the passes remove more than 10% of the ops"
            use strict = TraceStore.Uncached(TraceStoreOptions(OptimizeThreshold = 0.1))
            let l2 = strict.GetOrRecord g
            Expect.isFalse l2.Optimized "not optimized when the threshold is above the share"
            Expect.equal l2.Trace.OpCount recorded.OpCount "the recording as it is"
            let theta = [| 0.8; 1.7; 2.9 |]
            let reward = Rewards.ones g
            let fromStore = TraceEvaluator(l.Trace).Expectation(theta, reward)
            let fromRecording = TraceEvaluator(recorded).Expectation(theta, reward)
            Expect.equal (BitConverter.DoubleToInt64Bits fromStore) (BitConverter.DoubleToInt64Bits fromRecording) "E[T] bit for bit"
            let x = Rewards.ones g
            Moments.replayInPlace (Elimination.eliminate g theta) x
            close 1e-12 fromStore x.[0] "E[T] of eliminating the concrete graph"
        }
        test "API: likelihood and gradient through PhaseTypeModel; trace files load as models" {
            let dir = tempDir ()
            use s = TraceStore.Uncached()
            let m = PhaseTypeModel(Models.exponential None, s)
            let xs = [| 0.2; 1.0; 2.5 |]
            let r = m.LogLikelihoodWithGradient(xs, [| 2.0 |])
            close 1e-12 r.LogLikelihood (3.0 * log 2.0 - 2.0 * Array.sum xs) "loglik"
            close 1e-12 r.Gradient.[0] (3.0 / 2.0 - Array.sum xs) "gradient"
            let file = Path.Combine(dir, "e.bin")
            TraceFile.Save(m.GetTrace(), file) |> ignore
            Expect.equal (TraceFile.Detect file) (Nullable TraceFileFormat.Binary) "detected by content"
            let fromFile = PhaseTypeModel.Load(file)
            Expect.isTrue fromFile.HasTrace "a trace file needs no store"
            Expect.equal (fromFile.GetTraceLookup().Origin) TraceOrigin.Provided "provided"
            close 1e-15 (fromFile.LogLikelihood(xs, [| 2.0 |])) r.LogLikelihood "same loglik from the file"
            Expect.equal (ModelSource.Load(file).EdgeCount) (Models.exponential None).EdgeCount "ModelSource reads a trace file's model"
            Expect.isFalse (TraceFile.Detect(Path.Combine(repoRoot, "PtdPipeline.sln")).HasValue) "a non-trace is not detected"
        }
    ]
