// PtdPipeline build script: `dotnet fsi build.fsx <target> [-- extra args for the test runners]`.
//
// Targets:
//   build   restore and build the whole solution
//   test    build, `npm ci` the storage emulators, start them on 127.0.0.1, run every Expecto
//           suite under tests/, stop the emulators, print exactly `N passed, N failed`
//   bench   run the BenchmarkDotNet suites in bench/ (Release)
//   demo    run `ptd demo`
//
// A plain script (no FAKE): targets are functions that run processes and fail on a non-zero exit.

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets
open System.Threading

let root = __SOURCE_DIRECTORY__
let solution = Path.Combine(root, "PtdPipeline.sln")

let log (msg: string) = printfn "[build] %s" msg

/// Runs a process to completion, streaming its output; returns the exit code.
let runProcess (exe: string) (args: string list) (env: (string * string) list) (cwd: string) =
    let psi = ProcessStartInfo(exe, args)
    psi.WorkingDirectory <- cwd
    psi.UseShellExecute <- false
    for k, v in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    p.WaitForExit()
    p.ExitCode

let runOrFail exe args env =
    let code = runProcess exe args env root
    if code <> 0 then
        eprintfn "[build] FAILED: %s %s (exit code %d)" exe (String.concat " " args) code
        exit code

let dotnetEnv = [ "DOTNET_CLI_TELEMETRY_OPTOUT", "1"; "DOTNET_NOLOGO", "1" ]

let build () =
    log "building the solution"
    runOrFail "dotnet" [ "build"; solution; "-nologo"; "-v"; "minimal"; "-clp:NoSummary" ] dotnetEnv

// ---------------------------------------------------------------------------------------------
// Storage emulators
// ---------------------------------------------------------------------------------------------

let freePort () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    port

let waitForPort (name: string) (port: int) (p: Process) =
    let deadline = DateTime.UtcNow.AddSeconds 60.0
    let mutable up = false
    while not up && DateTime.UtcNow < deadline && not p.HasExited do
        try
            use c = new TcpClient()
            c.Connect(IPAddress.Loopback, port)
            up <- true
        with _ -> Thread.Sleep 200
    if not up then
        eprintfn "[build] %s did not start on port %d%s" name port (if p.HasExited then sprintf " (exited with %d)" p.ExitCode else "")
    up

type Emulator = { Name: string; Process: Process; Env: (string * string) list }

let startProcess (exe: string) (args: string list) (logFile: string) =
    let psi = ProcessStartInfo(exe, args)
    psi.WorkingDirectory <- root
    psi.UseShellExecute <- false
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    // s3rver 3.7 makes its ListObjectsV2 continuation tokens with a cipher that OpenSSL 3 (Node >= 17) refuses
    // unless the legacy provider is enabled: every listing of more than 1,000 objects failed with HTTP 500.
    psi.Environment.["NODE_OPTIONS"] <- "--openssl-legacy-provider"
    let p = Process.Start psi
    let sink = new StreamWriter(logFile, false)
    sink.AutoFlush <- true
    p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock sink (fun () -> sink.WriteLine e.Data))
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock sink (fun () -> sink.WriteLine e.Data))
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p

let onPath (exe: string) =
    (Environment.GetEnvironmentVariable "PATH").Split(':')
    |> Array.exists (fun d -> d <> "" && File.Exists(Path.Combine(d, exe)))

let azuriteKey =
    // The documented, public Azurite development account key (not a secret).
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

let startEmulators (workDir: string) : Emulator list =
    let started = ResizeArray<Emulator>()
    let bin name = Path.Combine(root, "node_modules", ".bin", name)
    // Azurite (Azure Blob)
    if File.Exists(bin "azurite-blob") then
        let port = freePort ()
        let dir = Path.Combine(workDir, "azurite")
        Directory.CreateDirectory dir |> ignore
        let p =
            startProcess (bin "azurite-blob")
                [ "--blobHost"; "127.0.0.1"; "--blobPort"; string port; "--location"; dir
                  "--skipApiVersionCheck"; "--disableTelemetry"; "--silent"; "--loose" ]
                (Path.Combine(workDir, "azurite.log"))
        if waitForPort "azurite" port p then
            let conn =
                sprintf "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;" azuriteKey port
            started.Add { Name = "azurite"; Process = p; Env = [ "PTD_TEST_AZURITE_CONNECTION", conn ] }
            log (sprintf "azurite on 127.0.0.1:%d" port)
    else log "azurite not installed (npm ci failed?): Azure Blob tests will report it"
    // s3rver (S3, second server)
    if File.Exists(bin "s3rver") then
        let port = freePort ()
        let dir = Path.Combine(workDir, "s3rver")
        Directory.CreateDirectory dir |> ignore
        let p =
            startProcess (bin "s3rver")
                [ "-d"; dir; "-a"; "127.0.0.1"; "-p"; string port; "--no-vhost-buckets"; "--silent" ]
                (Path.Combine(workDir, "s3rver.log"))
        if waitForPort "s3rver" port p then
            started.Add { Name = "s3rver"; Process = p; Env = [ "PTD_TEST_S3RVER_ENDPOINT", sprintf "http://127.0.0.1:%d" port ] }
            log (sprintf "s3rver on 127.0.0.1:%d" port)
    // moto (S3, first choice)
    if onPath "moto_server" then
        let port = freePort ()
        let p = startProcess "moto_server" [ "-H"; "127.0.0.1"; "-p"; string port ] (Path.Combine(workDir, "moto.log"))
        if waitForPort "moto_server" port p then
            started.Add { Name = "moto"; Process = p; Env = [ "PTD_TEST_MOTO_ENDPOINT", sprintf "http://127.0.0.1:%d" port ] }
            log (sprintf "moto_server on 127.0.0.1:%d" port)
    else
        log "moto_server not found: S3 tests against moto will fail. Install it with: pip install \"moto[server]\""
    List.ofSeq started

let stopEmulators (emulators: Emulator list) =
    for e in emulators do
        try
            if not e.Process.HasExited then
                e.Process.Kill true
                e.Process.WaitForExit 10000 |> ignore
        with ex -> eprintfn "[build] could not stop %s: %s" e.Name ex.Message

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

let testProjects () =
    Directory.GetDirectories(Path.Combine(root, "tests"))
    |> Array.sort
    |> Array.collect (fun d -> Directory.GetFiles(d, "*.fsproj") |> Array.append (Directory.GetFiles(d, "*.csproj")))
    |> Array.filter (fun p -> File.ReadAllText(p).Contains("<OutputType>Exe</OutputType>"))

let test (extra: string list) =
    build ()
    if File.Exists(Path.Combine(root, "package-lock.json")) then
        log "npm ci (storage emulators)"
        let code = runProcess "npm" [ "ci"; "--no-audit"; "--no-fund"; "--loglevel=error" ] [] root
        if code <> 0 then eprintfn "[build] npm ci failed (exit %d): emulator-backed tests will fail" code
    let workDir = Path.Combine(root, ".test-run", DateTime.UtcNow.ToString "yyyyMMdd-HHmmss")
    Directory.CreateDirectory workDir |> ignore
    let emulators = startEmulators workDir
    let mutable passed = 0
    let mutable failed = 0
    let mutable ignored = 0
    let failures = ResizeArray<string>()
    try
        // Isolation: no suite may read or write the user's ~/.ptd (suites that test the cache
        // pass their own directories).
        let isolation =
            [ "PTD_CACHE_DIR", Path.Combine(workDir, "cache")
              "PTD_CACHE_STATS", "off"
              "PTD_CACHE_CONFIG", "" ]
        let env = dotnetEnv @ isolation @ (emulators |> List.collect (fun e -> e.Env))
        for proj in testProjects () do
            let name = Path.GetFileNameWithoutExtension proj
            let summary = Path.Combine(workDir, name + ".summary")
            log (sprintf "running %s" name)
            let code =
                runProcess "dotnet" ([ "run"; "--project"; proj; "--no-build"; "--" ] @ extra)
                    (("PTD_TEST_SUMMARY_FILE", summary) :: ("PTD_TEST_WORK_DIR", workDir) :: env) root
            if File.Exists summary then
                let lines = File.ReadAllLines summary
                let parts = lines.[0].Split(' ')
                for line in lines |> Array.skip 1 do failures.Add(sprintf "%s: %s" name line)
                passed <- passed + int parts.[0]
                failed <- failed + int parts.[1]
                ignored <- ignored + int parts.[2]
                if code <> 0 && int parts.[1] = 0 then
                    eprintfn "[build] %s exited with %d despite no failed test: counted as one failure" name code
                    failures.Add(sprintf "%s: exited with %d despite no failed test" name code)
                    failed <- failed + 1
            else
                eprintfn "[build] %s crashed (exit code %d) before reporting: counted as one failure" name code
                failures.Add(sprintf "%s: crashed (exit code %d) before reporting" name code)
                failed <- failed + 1
    finally
        stopEmulators emulators
    // Repeat the failures last: CI logs are often shown from the end only.
    for f in failures do printfn "[build] FAILED %s" f
    if ignored > 0 then printfn "%d passed, %d failed, %d skipped" passed failed ignored
    else printfn "%d passed, %d failed" passed failed
    if failed > 0 then exit 1

let bench (extra: string list) =
    log "running benchmarks (Release)"
    runOrFail "dotnet" ([ "run"; "-c"; "Release"; "--project"; Path.Combine(root, "bench", "Ptd.Bench"); "--" ] @ extra) dotnetEnv

let demo () =
    runOrFail "dotnet" [ "run"; "--project"; Path.Combine(root, "src", "Host.CSharp", "Ptd.Cli"); "--"; "demo" ] dotnetEnv

let args = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray
let target, extra =
    match args with
    | [] -> "build", []
    | t :: rest -> t, (match rest with "--" :: r -> r | r -> r)

match target with
| "build" -> build ()
| "test" -> test extra
| "bench" -> bench extra
| "demo" -> demo ()
| other ->
    eprintfn "unknown target '%s'. Targets: build, test, bench, demo" other
    exit 2
