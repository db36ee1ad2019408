/// Every F# Interactive example under examples/ runs to completion (the scripts check their own results and fail
/// with a message when a value is wrong); the C# console example (examples/SvgdConsole) prints a posterior near the truth.
module Ptd.Cache.Tests.ExampleTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Cache.Tests.CacheEnv

let private scripts () =
    Directory.GetFiles(Path.Combine(repoRoot, "examples"), "*.fsx") |> Array.sort |> List.ofArray

let private runDotnet (args: string list) (what: string) =
    let psi = ProcessStartInfo("dotnet", args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.RedirectStandardInput <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- repoRoot
    use p = Process.Start psi
    p.StandardInput.Close()
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    // Generous: fsi compiles the script first, and the machine is shared.
    if not (p.WaitForExit 300_000) then
        p.Kill true
        failtestf "%s did not finish within 300 s" what
    p.ExitCode, out.Result, err.Result

let private runScript (script: string) = runDotnet [ "fsi"; "--quiet"; "--exec"; script ] (Path.GetFileName script)

let private svgdConsoleDll () =
    let p = Path.Combine(repoRoot, "examples", "SvgdConsole", "bin", configuration, "net10.0", "Ptd.Examples.SvgdConsole.dll")
    if not (File.Exists p) then failtestf "%s not found: build the solution first" p
    p

[<Tests>]
let tests =
    testList "examples" [
        testCase "there are example scripts" <| fun () ->
            Expect.isNonEmpty (scripts ()) "examples/*.fsx exist"
        yield!
            scripts () |> List.map (fun script ->
                testCase (sprintf "dotnet fsi %s" (Path.GetFileName script)) <| fun () ->
                    let code, out, err = runScript script
                    if code <> 0 then failtestf "%s exited with %d\nstdout:\n%s\nstderr:\n%s" (Path.GetFileName script) code out err)
        testCase "the pipeline tour script is among them" <| fun () ->
            Expect.contains (scripts () |> List.map Path.GetFileName) "pipeline-tour.fsx" "examples/pipeline-tour.fsx is run"
        testCase "examples/SvgdConsole (C#) prints a posterior of θ near the truth it simulated from" <| fun () ->
            let code, out, err = runDotnet [ svgdConsoleDll () ] "SvgdConsole"
            if code <> 0 then failtestf "SvgdConsole exited with %d\nstdout:\n%s\nstderr:\n%s" code out err
            let m = Text.RegularExpressions.Regex.Match(out, @"mean ([0-9.]+), sd ([0-9.]+), 95% interval \[([0-9.]+), ([0-9.]+)\]; truth ([0-9.]+)")
            if not m.Success then failtestf "no posterior line in the output:\n%s" out
            let v (i: int) = Double.Parse(m.Groups.[i].Value, Globalization.CultureInfo.InvariantCulture)
            let mean, sd, lo, hi, truth = v 1, v 2, v 3, v 4, v 5
            Expect.equal truth 1.5 "the truth the example simulates from"
            // 300 times to the MRCA of n = 6 give a posterior sd of about 5 % of θ: the mean lies well within 15 %.
            Expect.isLessThan (abs (mean - truth) / truth) 0.15 $"posterior mean {mean} near the truth {truth}"
            Expect.isTrue (lo < truth && truth < hi) $"the truth inside the 95 %% interval [{lo}, {hi}]"
            Expect.isTrue (sd > 0.0 && sd < 0.3) $"a plausible posterior sd ({sd})"
    ]
