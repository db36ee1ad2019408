module Ptd.Host.Tests.CliTests

open System
open System.IO
open Expecto
open Ptd.Host.Tests.Cli

let ok (r: Result) =
    if r.Code <> 0 then failtestf "ptd failed with exit code %d:\n%s" r.Code r.Err
    r

/// Bad input: exit code 2, a message containing every fragment, and never a stack trace.
let badInput (fragments: string list) (r: Result) =
    Expect.equal r.Code 2 (sprintf "exit code 2 expected; stderr: %s" r.Err)
    for f in fragments do Expect.stringContains r.Err f "error message"
    Expect.isFalse (r.Err.Contains "   at ") "no stack trace"
    Expect.equal r.Out "" "nothing on stdout"

let close tol actual expected msg =
    let e = relErr actual expected
    if e > tol then failtestf "%s: got %.17g expected %.17g (rel. error %.2g)" msg actual expected e

[<Tests>]
let tests =
    testList "cli" [
        test "demo: the whole pipeline, closed forms, posterior covers the truth, second run hits the caches" {
            let dir = tempDir ()
            let env = [ "PTD_CACHE", "file://"; "PTD_CACHE_DIR", Path.Combine(dir, "cache") ]
            let first = runIn dir env [ "demo" ] |> ok
            Expect.stringContains first.Out "E[T_MRCA]" "moments table"
            Expect.stringContains first.Out "1.8" "E[T_MRCA] for n = 10"
            Expect.stringContains first.Out "density of T_MRCA" "pdf table"
            Expect.stringContains first.Out "recorded and stored in the cache" "first run records the trace"
            Expect.stringContains first.Out "(inside)" "the truth lies in the 95 % posterior interval"
            let png = Path.Combine(dir, "ptd-demo-posterior.png")
            Expect.isTrue (File.Exists png) "plot written"
            let header = File.ReadAllBytes(png) |> Array.truncate 8
            Expect.equal header [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |] "a PNG file"
            let second = runIn dir env [ "demo"; "--plot"; "none" ] |> ok
            Expect.stringContains second.Out "cache hit" "second run loads the trace from the cache"
            Expect.stringContains second.Out "Trace and kernel came from the cache" "and says so"
        }
        test "moments --json: coalescent n=10 at θ=1 gives E = 2(1 − 1/n)" {
            let r = run [ "moments"; "coalescent:n=10"; "--theta"; "1"; "-k"; "3"; "--json" ] |> ok
            let j = json r.Out
            close 1e-12 (j.GetProperty("mean").GetDouble()) 1.8 "mean"
            close 1e-12 (j.GetProperty("variance").GetDouble()) 1.1581418493323252 "variance (reference table)"
            Expect.equal (j.GetProperty("moments").GetArrayLength()) 3 "k = 3 moments"
        }
        test "moments of cyclic rabbits match the C library's reference" {
            let table = reference "rabbits.json"
            let j = run [ "moments"; "rabbits:R=2"; "--json" ] |> ok |> fun r -> json r.Out
            close 1e-12 (j.GetProperty("mean").GetDouble()) (table.GetProperty("E_T").GetDouble()) "E[T]"
            close 1e-12 (j.GetProperty("variance").GetDouble()) (table.GetProperty("Var_T").GetDouble()) "Var[T]"
            let j3 = run [ "moments"; "rabbits3:R=2"; "--theta"; "1,2,4"; "--json" ] |> ok |> fun r -> json r.Out
            close 1e-12 (j3.GetProperty("mean").GetDouble()) 0.508305647840531 "rabbits3 θ = (1,2,4)"
        }
        test "moments --reward-slot gives the site frequency spectrum 2/i" {
            for i in 1 .. 3 do
                let j = run [ "moments"; "coalescent:n=6"; "--theta"; "1"; "--reward-slot"; string (i - 1); "--json" ] |> ok |> fun r -> json r.Out
                close 1e-12 (j.GetProperty("mean").GetDouble()) (2.0 / float i) (sprintf "SFS %d" i)
        }
        test "pdf --json: exact and euler columns of the reference table" {
            let table = reference "coalescent.json"
            let rows = table.GetProperty("distribution").EnumerateArray() |> Seq.filter (fun r -> r.GetProperty("n").GetInt32() = 4) |> Array.ofSeq
            let times = rows |> Array.map (fun r -> r.GetProperty("t").GetDouble())
            let arg = String.Join(",", times |> Array.map (fun t -> t.ToString("R", Globalization.CultureInfo.InvariantCulture)))
            let exact = run [ "pdf"; "coalescent:n=4"; "--theta"; "1"; "--times"; arg; "--json" ] |> ok |> fun r -> json r.Out
            let euler = run [ "pdf"; "coalescent:n=4"; "--theta"; "1"; "--times"; arg; "--method"; "euler"; "--json" ] |> ok |> fun r -> json r.Out
            let pdf, cdf = numbers (exact.GetProperty "pdf"), numbers (exact.GetProperty "cdf")
            let epdf, ecdf = numbers (euler.GetProperty "pdf"), numbers (euler.GetProperty "cdf")
            rows |> Array.iteri (fun i row ->
                close 1e-9 pdf.[i] (row.GetProperty("exact_pdf").GetDouble()) "exact pdf"
                close 1e-9 cdf.[i] (row.GetProperty("exact_cdf").GetDouble()) "exact cdf"
                close 1e-12 epdf.[i] (row.GetProperty("euler_g1024_pdf").GetDouble()) "euler pdf"
                close 1e-12 ecdf.[i] (row.GetProperty("euler_g1024_cdf").GetDouble()) "euler cdf")
        }
        test "model -o writes a file that info and moments read back" {
            let dir = tempDir ()
            let file = Path.Combine(dir, "coal.json")
            run [ "model"; "coalescent"; "--n"; "5"; "-o"; file ] |> ok |> ignore
            let info = run [ "info"; file; "--json" ] |> ok |> fun r -> json r.Out
            Expect.equal (info.GetProperty("vertices").GetInt32()) 8 "p(5) + 1 = 8 vertices"
            Expect.isTrue (info.GetProperty("acyclic").GetBoolean()) "acyclic"
            Expect.equal (info.GetProperty("parameters").GetInt32()) 1 "θ = rate"
            let m = run [ "moments"; file; "--theta"; "2"; "--json" ] |> ok |> fun r -> json r.Out
            close 1e-12 (m.GetProperty("mean").GetDouble()) (2.0 * (1.0 - 1.0 / 5.0) / 2.0) "E at θ = 2"
        }
        test "model --matrix exports (α, S) at θ that reads back with the same moments" {
            let dir = tempDir ()
            let file = Path.Combine(dir, "erlang-matrix.json")
            run [ "model"; "erlang"; "--k"; "3"; "--matrix"; "--theta"; "2"; "-o"; file ] |> ok |> ignore
            Expect.stringContains (File.ReadAllText file) "ptd-matrix/1" "matrix format"
            let m = run [ "moments"; file; "--json" ] |> ok |> fun r -> json r.Out
            close 1e-14 (m.GetProperty("mean").GetDouble()) 1.5 "Erlang(3, 2) mean"
            close 1e-14 (m.GetProperty("variance").GetDouble()) 0.75 "Erlang(3, 2) variance"
            run [ "model"; "erlang"; "--k"; "3"; "--theta"; "2" ] |> badInput [ "--theta applies to --matrix only" ]
        }
        test "sample --json" {
            let j = run [ "sample"; "exponential:rate=2"; "-n"; "10"; "--json" ] |> ok |> fun r -> json r.Out
            Expect.equal (j.GetProperty("samples").GetArrayLength()) 10 "10 samples"
        }
        test "info on a cyclic model" {
            let info = run [ "info"; "rabbits:R=3"; "--json" ] |> ok |> fun r -> json r.Out
            Expect.isFalse (info.GetProperty("acyclic").GetBoolean()) "cyclic"
            Expect.equal (info.GetProperty("vertices").GetInt32()) 11 "(R+1)(R+2)/2 + 1"
        }
        test "pmf of a discrete model file: geometric law" {
            let dir = tempDir ()
            let file = Path.Combine(dir, "geo.json")
            File.WriteAllText(file, """{"format":"ptd-graph/1","discrete":true,"stateLength":1,"states":[[1],[0]],"start":[{"to":0,"w":1}],"edges":[{"from":0,"to":1,"w":0.25}]}""")
            let j = run [ "pmf"; file; "--jumps"; "0,1,2,5"; "--json" ] |> ok |> fun r -> json r.Out
            let pmf = numbers (j.GetProperty "pmf")
            let expected = [| 0.0; 0.25; 0.75 * 0.25; (0.75 ** 4.0) * 0.25 |]
            for i in 0 .. 3 do
                if abs (pmf.[i] - expected.[i]) > 1e-15 then failtestf "pmf[%d] = %g, expected %g" i pmf.[i] expected.[i]
            let m = run [ "moments"; file; "--json" ] |> ok |> fun r -> json r.Out
            close 1e-14 (m.GetProperty("variance").GetDouble()) 12.0 "DPH variance (1 − p)/p²"
        }
        test "sample: reproducible for a seed, mean within 5 standard errors of E[T]" {
            let a = run [ "sample"; "erlang:k=3,rate=2"; "-n"; "4000"; "--seed"; "7" ] |> ok
            let b = run [ "sample"; "erlang:k=3,rate=2"; "-n"; "4000"; "--seed"; "7" ] |> ok
            Expect.equal a.Out b.Out "same seed, same samples"
            let xs = a.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun s -> Double.Parse(s, Globalization.CultureInfo.InvariantCulture))
            Expect.equal xs.Length 4000 "n values"
            let mean = Array.average xs
            let se = sqrt (0.75 / 4000.0)
            if abs (mean - 1.5) > 5.0 * se then failtestf "sample mean %g far from 1.5" mean
        }
        test "help and version" {
            let h = run [ "--help" ] |> ok
            for c in [ "demo"; "model"; "info"; "moments"; "pdf"; "pmf"; "sample" ] do Expect.stringContains h.Out c "command listed"
            let hm = run [ "moments"; "--help" ] |> ok
            Expect.stringContains hm.Out "--reward-slot" "command usage"
            Expect.stringContains (run [ "--version" ] |> ok).Out "ptd " "version"
        }
        test "bad input: unknown command and option" {
            run [ "frobnicate" ] |> badInput [ "unknown command 'frobnicate'"; "moments" ]
            run [ "moments"; "coalescent:n=4"; "--thetta"; "1" ] |> badInput [ "unknown option '--thetta'"; "--theta" ]
        }
        test "bad input: an output file in a directory that does not exist (models, traces)" {
            let missing = Path.Combine(tempDir (), "no-such-dir")
            run [ "model"; "erlang"; "--k"; "3"; "-o"; Path.Combine(missing, "m.json") ] |> badInput [ "cannot write"; "does not exist" ]
            run [ "trace"; "record"; "coalescent:n=4"; "-o"; Path.Combine(missing, "t.ptdt") ] |> badInput [ "cannot write"; "does not exist" ]
            Expect.isFalse (Directory.Exists missing) "nothing created"
        }
        test "bad input: θ missing, wrong length, not a number" {
            run [ "moments"; "coalescent:n=4" ] |> badInput [ "1 parameter(s)"; "--theta" ]
            run [ "moments"; "rabbits3:R=2"; "--theta"; "1,2" ] |> badInput [ "2 value(s)"; "3 parameter(s)" ]
            run [ "moments"; "coalescent:n=4"; "--theta"; "abc" ] |> badInput [ "--theta"; "('abc') is not a finite number" ]
            run [ "moments"; "rabbits3:R=2"; "--theta"; "-1,2,4" ] |> badInput [ "weight -2"; "non-negative" ]
        }
        test "bad input: times, jumps, methods" {
            run [ "pdf"; "coalescent:n=4"; "--theta"; "1" ] |> badInput [ "missing --times" ]
            run [ "pdf"; "coalescent:n=4"; "--theta"; "1"; "--times"; "1,x" ] |> badInput [ "item 2 ('x')" ]
            run [ "pdf"; "coalescent:n=4"; "--theta"; "1"; "--times"; "-1" ] |> badInput [ "-1" ]
            run [ "pdf"; "coalescent:n=4"; "--theta"; "1"; "--times"; "1"; "--method"; "magic" ] |> badInput [ "expected exact or euler" ]
            run [ "pmf"; "coalescent:n=4"; "--theta"; "1"; "--jumps"; "1" ] |> badInput [ "continuous" ]
        }
        test "bad input: models" {
            run [ "info"; "no-such-file.json" ] |> badInput [ "neither a file nor a built-in model spec" ]
            run [ "info"; "coalescent:n=1" ] |> badInput [ "n ≥ 2" ]
            run [ "info"; "coalescent:m=4" ] |> badInput [ "unknown key 'm'" ]
            run [ "info"; "koalescent:n=4" ] |> badInput [ "Built-in models: coalescent" ]
            let dir = tempDir ()
            let file = Path.Combine(dir, "broken.json")
            File.WriteAllText(file, "{\"format\": \"ptd-graph/1\",\n \"states\": [[1], }")
            run [ "info"; file ] |> badInput [ "broken.json"; "line" ]
            let file2 = Path.Combine(dir, "badedge.json")
            File.WriteAllText(file2, """{"format":"ptd-graph/1","stateLength":1,"states":[[1],[0]],"start":[{"to":0,"w":1}],"edges":[{"from":0,"to":7,"w":1}]}""")
            run [ "info"; file2 ] |> badInput [ "edges[0].to" ]
        }
        test "--verbose reports stages on stderr, results stay on stdout" {
            let r = run [ "moments"; "coalescent:n=8"; "--theta"; "1"; "--json"; "--verbose" ] |> ok
            Expect.stringContains r.Err "trace" "stage timing"
            json r.Out |> ignore
        }
    ]
