/// Runs the real `ptd` executable (built by the solution) as a child process.
module Ptd.Host.Tests.Cli

open System
open System.Diagnostics
open System.IO
open System.Text.Json

let repoRoot = Ptd.Tests.Repo.root

/// The ptd.dll of the most recent build (Debug or Release).
let ptdDll = Ptd.Tests.Repo.ptdDll

type Result = { Code: int; Out: string; Err: string }

/// A cache directory private to this test run, so that the suite never reads or writes the
/// user's ~/.ptd (tests that care about the cache pass their own PTD_CACHE_DIR).
let private isolatedCache =
    let d = Path.Combine(Path.GetTempPath(), "ptd-tests", "cache-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// Runs `ptd args` with an optional working directory and extra environment (applied after the
/// isolation defaults: a private cache directory, no statistics ledger, no config file).
let runIn (cwd: string) (env: (string * string) list) (args: string list) =
    let psi = ProcessStartInfo("dotnet", ptdDll :: args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- cwd
    psi.Environment.["PTD_CACHE_DIR"] <- isolatedCache
    psi.Environment.["PTD_CACHE_STATS"] <- "off"
    psi.Environment.["PTD_CACHE_CONFIG"] <- ""
    for k, v in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120_000) then
        p.Kill true
        failwithf "ptd %s did not finish within 120 s" (String.Join(" ", args))
    { Code = p.ExitCode; Out = out.Result; Err = err.Result }

let run (args: string list) = runIn repoRoot [] args

/// A fresh temporary directory for one test.
let tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "ptd-tests", Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let json (text: string) = JsonDocument.Parse(text).RootElement

let numbers (e: JsonElement) = e.EnumerateArray() |> Seq.map (fun x -> x.GetDouble()) |> Array.ofSeq

let reference name =
    JsonDocument.Parse(File.ReadAllText(Path.Combine(repoRoot, "tests", "data", "reference", name))).RootElement

let relErr (a: float) (b: float) = if b = 0.0 then abs a else abs (a - b) / abs b
