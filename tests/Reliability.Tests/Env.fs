/// Test plumbing: the built ptd and plugins, this executable as a worker, scratch directories, child processes,
/// the S3 emulator (moto), and the sizes of the runs (env-tunable).
module Ptd.Reliability.Tests.Env

open System
open System.Diagnostics
open System.IO
open System.Reflection
open System.Text.Json
open Ptd.Tests

/// ptd's plugins folder (the build deploys localdisk, s3 and azureblob there).
let pluginsDir = BuildInfo.metadata "PtdPluginsDir"

let configuration = BuildInfo.metadata "Configuration"

/// ptd.dll of this test assembly's configuration (built first: see the project reference).
let ptdDll =
    let p = Path.Combine(Ptd.Tests.Repo.root, "src", "Host.CSharp", "Ptd.Cli", "bin", configuration, "net10.0", "ptd.dll")
    if not (File.Exists p) then failwithf "%s not found: build the solution first (dotnet fsi build.fsx build)" p
    p

/// This test executable's dll: started with `--worker ...` it acts as a worker process (see Worker.fs).
let selfDll = Assembly.GetExecutingAssembly().Location

/// An integer setting from the environment (the full-size runs of docs/RELIABILITY.md set them).
let setting (name: string) (fallback: int) =
    match Environment.GetEnvironmentVariable name with
    | null | "" -> fallback
    | v ->
        match Int32.TryParse v with
        | true, n when n > 0 -> n
        | _ -> failwithf "%s=%s: expected a positive integer" name v

let private scratch = TempDirs.Scratch("ptd-reliability-tests", "reliability-tests")

/// A fresh directory for one test.
let tempDir (name: string) = scratch.Dir name

/// Variables a child must not inherit: the user's cache setup would leak into the runs.
let private cleared = [ "PTD_CACHE"; "PTD_CACHE_CONFIG"; "PTD_CACHE_DIR"; "PTD_CACHE_STATS"; "PTD_PLUGIN_PATH" ]

/// A process started with a clean cache environment plus `env`, stdout and stderr captured.
let start (file: string) (args: string list) (env: (string * string) list) =
    let psi = ProcessStartInfo(file, args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.RedirectStandardInput <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- Ptd.Tests.Repo.root
    for v in cleared do psi.Environment.Remove v |> ignore
    psi.Environment.["PTD_CACHE_STATS"] <- "off"
    for k, v in env do psi.Environment.[k] <- v
    let p = Process.Start psi
    p.StandardInput.Close()
    p

type Result = { Code: int; Out: string; Err: string; Seconds: float }

/// Runs a process to the end (fails after `timeoutSeconds`).
let runWith (timeoutSeconds: int) (file: string) (args: string list) (env: (string * string) list) =
    let sw = Stopwatch.StartNew()
    use p = start file args env
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(timeoutSeconds * 1000)) then
        p.Kill true
        failwithf "%s %s did not finish within %d s" file (String.Join(" ", args)) timeoutSeconds
    p.WaitForExit()
    { Code = p.ExitCode; Out = out.Result; Err = err.Result; Seconds = sw.Elapsed.TotalSeconds }

/// Runs the real ptd.
let ptd (env: (string * string) list) (args: string list) = runWith 120 "dotnet" (ptdDll :: args) env

/// Runs ptd and fails unless it exits with `code`.
let ptdExpect (code: int) (env: (string * string) list) (args: string list) =
    let r = ptd env args
    if r.Code <> code then
        failwithf "ptd %s: exit %d, expected %d\nstdout: %s\nstderr: %s" (String.Join(" ", args)) r.Code code r.Out r.Err
    r

let json (text: string) =
    try JsonDocument.Parse(text).RootElement
    with e -> failwithf "not JSON (%s): %s" e.Message text

/// The S3 emulator: build.fsx's moto (PTD_TEST_MOTO_ENDPOINT), else a moto_server started here on a free
/// 127.0.0.1 port and stopped when the tests end; None when neither is available.
let motoEndpoint = Emulators.motoOrStart

/// Credentials for moto (it accepts any); passed to workers as variables the location names.
let motoEnv = [ "PTD_TEST_MOTO_ACCESS", "testing"; "PTD_TEST_MOTO_SECRET", "moto-secret" ]

/// An S3 tier location on moto under a fresh prefix.
let motoLocation (endpoint: string) (prefix: string) =
    sprintf "s3://ptd-reliability/%s-%s?endpoint=%s&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET&timeout=30s"
        prefix (Guid.NewGuid().ToString("N").Substring(0, 10)) (Uri.EscapeDataString endpoint)

/// Temporary files of the local disk store (LocalDiskStore writes `.tmp-*`, then renames).
let tempFiles (cacheDir: string) =
    if Directory.Exists cacheDir then
        Directory.GetFiles(cacheDir, ".tmp-*", EnumerationOptions(RecurseSubdirectories = true, AttributesToSkip = FileAttributes.None))
    else [||]

/// Prints a measured figure (collected into docs/RELIABILITY.md by hand).
let report (test: string) (fmt: Printf.StringFormat<'a, unit>) =
    Printf.kprintf (fun s -> printfn "[reliability] %s: %s" test s) fmt
