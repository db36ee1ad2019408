/// The storage emulators the remote-tier tests use. build.fsx starts them and passes their endpoints in
/// PTD_TEST_MOTO_ENDPOINT, PTD_TEST_S3RVER_ENDPOINT and PTD_TEST_AZURITE_CONNECTION; a suite run by hand reads the
/// same variables, and fails or skips (its own choice) with a message saying how to start the missing server.
module Ptd.Tests.Emulators

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets

let motoVariable = "PTD_TEST_MOTO_ENDPOINT"
let s3rverVariable = "PTD_TEST_S3RVER_ENDPOINT"
let azuriteVariable = "PTD_TEST_AZURITE_CONNECTION"

let motoServer = "moto_server (S3 emulator)"
let s3rverServer = "s3rver (S3 emulator)"
let azuriteServer = "Azurite (Azure Blob emulator)"

/// The variable's value, None when unset or empty.
let tryEnv (variable: string) =
    match Environment.GetEnvironmentVariable variable with
    | null | "" -> None
    | v -> Some v

/// How a suite tells the user to start a server by hand: `How` follows "start <server>" (e.g. " yourself"),
/// `SeeAlso` ends the sentence (e.g. " (see docs/RELIABILITY.md)"); either may be "".
type StartHint = { How: string; SeeAlso: string }

/// The message for a missing emulator: which server, which variable, how to get it.
let missingMessage (hint: StartHint) (variable: string) (server: string) =
    sprintf "%s is not available: %s is not set. Run the suite with `dotnet fsi build.fsx test` (which starts it), or start %s%s and set %s%s."
        server variable server hint.How variable hint.SeeAlso

/// The variable's value, or `fail` (failwith: the test errors; Expecto's failtest: it fails) with missingMessage.
let require (fail: string -> string) (hint: StartHint) (variable: string) (server: string) =
    match tryEnv variable with
    | Some v -> v
    | None -> fail (missingMessage hint variable server)

/// A TCP port that is free on 127.0.0.1 right now (the OS picks it; a race with other processes is possible but rare).
let freePort () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    port

let private onPath (exe: string) =
    (Environment.GetEnvironmentVariable "PATH").Split(':')
    |> Array.exists (fun d -> d <> "" && File.Exists(Path.Combine(d, exe)))

/// Starts moto_server on a free 127.0.0.1 port, stopped when the tests end; its URL once it accepts connections
/// (within 30 s), else None.
let private startMoto () =
    let port = freePort ()
    let psi = ProcessStartInfo("moto_server", [ "-H"; "127.0.0.1"; "-p"; string port ])
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    let p = Process.Start psi
    p.OutputDataReceived.Add ignore
    p.ErrorDataReceived.Add ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try p.Kill true with _ -> ())
    let deadline = DateTime.UtcNow.AddSeconds 30.0
    let rec wait () =
        if p.HasExited then None
        elif DateTime.UtcNow > deadline then None
        else
            try
                use c = new TcpClient()
                c.Connect(IPAddress.Loopback, port)
                Some(sprintf "http://127.0.0.1:%d" port)
            with _ ->
                Threading.Thread.Sleep 200
                wait ()
    wait ()

/// The S3 emulator for suites that can start their own: build.fsx's moto (PTD_TEST_MOTO_ENDPOINT), else a
/// moto_server started here if it is on PATH; None when neither is available.
let motoOrStart =
    lazy (
        match tryEnv motoVariable with
        | Some ep -> Some ep
        | None when onPath "moto_server" -> startMoto ()
        | None -> None)
