/// `ptd simulate` and `ptd infer` end to end (the real executable).
module Ptd.Inference.Tests.CliTests

open System
open System.IO
open Expecto
open Ptd.Inference.Tests.Common

let ok (r: Result) =
    if r.Code <> 0 then failtestf "ptd failed with exit code %d:\n%s" r.Code r.Err
    r

let badInput (fragments: string list) (r: Result) =
    Expect.equal r.Code 2 (sprintf "exit code 2 expected; stderr: %s" r.Err)
    for f in fragments do Expect.stringContains r.Err f "error message"
    Expect.isFalse (r.Err.Contains "   at ") "no stack trace"

/// A private cache directory, so that runs see exactly the kernels these tests store.
let cacheEnv (dir: string) = [ "PTD_CACHE", "file://"; "PTD_CACHE_DIR", Path.Combine(dir, "cache"); "PTD_CACHE_CONFIG", "" ]

let simulateInto (dir: string) (args: string list) =
    runPtd dir [] ([ "simulate" ] @ args @ [ "-o"; "data.txt" ]) |> ok |> ignore
    Path.Combine(dir, "data.txt")

let isPng (path: string) =
    let b = File.ReadAllBytes path
    b.Length > 1000 && b.[0..7] = [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]

[<Tests>]
let tests =
    testList "cli-infer" [
        test "simulate prints one observation per line, deterministic for a seed" {
            let a = runPtd repoRoot [] [ "simulate"; "coalescent:n=4"; "--theta"; "1.5"; "-n"; "50"; "--seed"; "3" ] |> ok
            let b = runPtd repoRoot [] [ "simulate"; "coalescent:n=4"; "--theta"; "1.5"; "-n"; "50"; "--seed"; "3" ] |> ok
            let lines = a.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.equal lines.Length 50 "n lines"
            Expect.equal a.Out b.Out "same seed, same data"
            for l in lines do Expect.isTrue (Double.Parse(l, Globalization.CultureInfo.InvariantCulture) > 0.0) "positive times"
        }

        test "infer end to end: exit 0, summary table, result.json fields, PNG and SVG plots; a second process loads the kernel" {
            let dir = tempDir ()
            simulateInto dir [ "coalescent:n=4"; "--theta"; "1.5"; "-n"; "200"; "--seed"; "5" ] |> ignore
            let args =
                [ "infer"; "coalescent:n=4"; "--data"; "data.txt"; "--particles"; "16"; "--iterations"; "150"; "--prior"; "gamma:2,1"
                  "--truth"; "1.5"; "-o"; "result.json"; "--plot"; "posterior.png"; "--verbose" ]
            let r = runPtd dir (cacheEnv dir) args |> ok
            Expect.stringContains r.Out "theta1" "summary table"
            Expect.stringContains r.Out "truth" "truth column"
            Expect.stringContains r.Err "iteration 150/150" "progress lines on stderr"
            Expect.stringContains r.Err "built" "first run builds the kernel"
            let j = json (File.ReadAllText(Path.Combine(dir, "result.json")))
            let p = j.GetProperty("parameters").[0]
            for field in [ "name"; "mean"; "sd"; "q025"; "q975" ] do
                Expect.isTrue (fst (p.TryGetProperty field)) (sprintf "parameters[0].%s" field)
            let mean = p.GetProperty("mean").GetDouble()
            Expect.isTrue (mean > 1.0 && mean < 2.2) (sprintf "posterior mean %g near the truth 1.5" mean)
            Expect.equal (j.GetProperty("particles").GetArrayLength()) 16 "one row per particle"
            Expect.equal (j.GetProperty("particles").[0].GetArrayLength()) 1 "θ per row"
            Expect.isTrue (isPng (Path.Combine(dir, "posterior.png"))) "a valid PNG"
            let first = File.ReadAllBytes(Path.Combine(dir, "result.json"))
            // Second process, same cache directory: the kernel is loaded, and the answer is the same bits.
            let r2 = runPtd dir (cacheEnv dir) ([ "infer"; "coalescent:n=4"; "--data"; "data.txt"; "--particles"; "16"; "--iterations"; "150"; "--prior"; "gamma:2,1"; "-o"; "result2.json"; "--plot"; "posterior.svg"; "--verbose" ]) |> ok
            Expect.stringContains r2.Err "loaded from cache" "the second process loads the persisted kernel"
            Expect.equal (File.ReadAllBytes(Path.Combine(dir, "result2.json")) |> Text.Encoding.UTF8.GetString |> json |> fun e -> e.GetProperty("particles").GetRawText())
                         (first |> Text.Encoding.UTF8.GetString |> json |> fun e -> e.GetProperty("particles").GetRawText())
                         "bit-identical particles from the loaded kernel"
            let svg = File.ReadAllText(Path.Combine(dir, "posterior.svg"))
            Expect.isTrue (svg.StartsWith "<svg") "an SVG document"
            Xml.Linq.XDocument.Parse svg |> ignore
        }

        test "infer --json on a two-parameter cyclic model, priors repeated" {
            let dir = tempDir ()
            simulateInto dir [ "twodeme:n=2"; "--theta"; "1,0.5"; "-n"; "100"; "--seed"; "8" ] |> ignore
            let r =
                runPtd dir [ "PTD_CACHE", "off" ]
                    [ "infer"; "twodeme:n=2"; "--data"; "data.txt"; "--particles"; "8"; "--iterations"; "40"
                      "--prior"; "gamma:2,1"; "--prior"; "gamma:2,2"; "--names"; "coal,mig"; "--json" ] |> ok
            let j = json r.Out
            Expect.equal (j.GetProperty("parameters").GetArrayLength()) 2 "two parameters"
            Expect.equal (j.GetProperty("parameters").[1].GetProperty("name").GetString()) "mig" "names"
        }

        test "bad priors, data and options exit with 2 and say what is wrong" {
            let dir = tempDir ()
            let data = simulateInto dir [ "coalescent:n=4"; "--theta"; "1"; "-n"; "20" ]
            let infer extra = runPtd dir [ "PTD_CACHE", "off" ] ([ "infer"; "coalescent:n=4"; "--data"; data; "--iterations"; "5" ] @ extra)
            infer [ "--prior"; "gamma:2" ] |> badInput [ "gamma takes 2 argument(s)" ]
            infer [ "--prior"; "beta:1,2" ] |> badInput [ "unknown family 'beta'" ]
            infer [ "--prior"; "gamma:2,1"; "--prior"; "gamma:1,1" ] |> badInput [ "2 prior(s)"; "1 parameter(s)" ]
            infer [ "--prior"; "gamma:-1,1" ] |> badInput [ "shape" ]
            infer [ "--truth"; "1,2" ] |> badInput [ "--truth" ]
            infer [ "--particles"; "1" ] |> badInput [ "--particles" ]
            infer [ "--plot"; "out.gif" ] |> badInput [ ".png or .svg" ]
            File.WriteAllText(Path.Combine(dir, "bad.txt"), "0.5\n# fine\n1.2\nabc\n")
            runPtd dir [] [ "infer"; "coalescent:n=4"; "--data"; "bad.txt" ] |> badInput [ "bad.txt line 4"; "'abc' is not a number" ]
            File.WriteAllText(Path.Combine(dir, "neg.txt"), "0.5\n-1\n")
            runPtd dir [] [ "infer"; "coalescent:n=4"; "--data"; "neg.txt" ] |> badInput [ "neg.txt line 2"; "negative" ]
            File.WriteAllText(Path.Combine(dir, "zero.txt"), "0.5\n0\n")
            runPtd dir [ "PTD_CACHE", "off" ] [ "infer"; "coalescent:n=4"; "--data"; "zero.txt"; "--prior"; "gamma:2,1"; "--iterations"; "3" ]
            |> badInput [ "zero.txt line 2"; "density 0" ]
            runPtd dir [] [ "infer"; "coalescent:n=4" ] |> badInput [ "--data" ]
            runPtd dir [] [ "infer"; "coalescent:n=4,rate=1"; "--data"; data ] |> badInput [ "no parameters" ]
            runPtd dir [] [ "infer"; "coalescent:n=4"; "--data"; "missing.txt" ] |> badInput [ "missing.txt" ]
            runPtd dir [] [ "simulate"; "coalescent:n=4" ] |> badInput [ "--theta" ]
        }
    ]
