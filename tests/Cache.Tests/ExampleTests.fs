/// Every F# Interactive example under examples/ runs to completion (the scripts check their own results and fail
/// with a message when a value is wrong).
module Ptd.Cache.Tests.ExampleTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Cache.Tests.CacheEnv

let private scripts () =
    Directory.GetFiles(Path.Combine(repoRoot, "examples"), "*.fsx") |> Array.sort |> List.ofArray

let private runScript (script: string) =
    let psi = ProcessStartInfo("dotnet", [ "fsi"; "--quiet"; "--exec"; script ])
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
        failtestf "%s did not finish within 300 s" (Path.GetFileName script)
    p.ExitCode, out.Result, err.Result

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
    ]
