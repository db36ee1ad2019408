/// Test plumbing: the real ptd executable, scratch directories, cache locations on local disk and on the emulators
/// that build.fsx starts (moto, Azurite), and in-process access to the same stores to check effects.
module Ptd.Cache.Tests.CacheEnv

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Host.Composition
open Ptd.Tests

/// ptd's plugins folder (the build deploys localdisk, s3 and azureblob there).
let pluginsDir = BuildInfo.metadata "PtdPluginsDir"

/// Debug or Release, as this test assembly was built.
let configuration = BuildInfo.metadata "Configuration"

/// The directory holding PtdPipeline.sln.
let repoRoot = Repo.root

/// ptd.dll of this configuration (built before this project: see the project reference).
let ptdDll =
    let p = Path.Combine(repoRoot, "src", "Host.CSharp", "Ptd.Cli", "bin", configuration, "net10.0", "ptd.dll")
    if not (File.Exists p) then failwithf "%s not found: build the solution first (dotnet fsi build.fsx build)" p
    p

let private scratch = TempDirs.Scratch("ptd-cache-tests", "cache-tests")

/// A fresh directory for one test.
let tempDir (name: string) = scratch.Dir name

let uniqueSegment (name: string) = TempDirs.uniqueSegment name

type Result = { Code: int; Out: string; Err: string }

/// Runs `dotnet <dll> args` with a closed standard input (not a terminal), the given environment on top of a clean
/// cache environment (no ~/.ptd files of the user), and a timeout.
let runDll (dll: string) (env: (string * string) list) (args: string list) =
    let psi = ProcessStartInfo("dotnet", dll :: args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.RedirectStandardInput <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- repoRoot
    for v in [ "PTD_CACHE"; "PTD_CACHE_CONFIG"; "PTD_CACHE_DIR"; "PTD_CACHE_STATS"; "PTD_PLUGIN_PATH" ] do
        psi.Environment.Remove v |> ignore
    for k, v in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    p.StandardInput.Close()
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120_000) then
        p.Kill true
        failwithf "%s %s did not finish within 120 s" (Path.GetFileName dll) (String.Join(" ", args))
    { Code = p.ExitCode; Out = out.Result; Err = err.Result }

let json (text: string) =
    try JsonDocument.Parse(text).RootElement
    with e -> failwithf "not JSON (%s): %s" e.Message text

/// Where a test's cache lives and what the ptd process needs to reach it.
type Site =
    { Backend: string
      /// The tier location given to PTD_CACHE.
      Location: string
      /// Variables the plugin reads (credential *names* point at these).
      Env: (string * string) list
      /// A directory for the ledger, HOME and archives.
      Home: string }

    /// The environment of a ptd process using this site as its only tier.
    member s.ProcessEnv =
        [ "PTD_CACHE", s.Location
          "PTD_CACHE_STATS", Path.Combine(s.Home, "stats.json")
          "HOME", s.Home ]
        @ s.Env

    member s.Ptd(args: string list) = runDll ptdDll s.ProcessEnv args

    /// Runs ptd and fails the test (with both streams) unless it exits with `code`.
    member s.Expect (code: int) (args: string list) =
        let r = s.Ptd args
        if r.Code <> code then
            failtestf "ptd %s on %s: exit %d, expected %d\nstdout: %s\nstderr: %s" (String.Join(" ", args)) s.Backend r.Code code r.Out r.Err
        r

/// A secret value that must never show up in any output (moto accepts any signature, so it can be random).
let motoSecret = "moto-secret-" + Guid.NewGuid().ToString("N")

/// An emulator endpoint from the environment; a missing one fails the test (Expecto's failtest) with how to start it.
let private requireEnv (variable: string) (server: string) = Emulators.require failtest { How = ""; SeeAlso = "" } variable server

let localSite () =
    let home = tempDir "local"
    { Backend = "local disk"; Location = "file://" + Path.Combine(home, "cache"); Env = []; Home = home }

let motoSite () =
    let ep = requireEnv Emulators.motoVariable Emulators.motoServer
    { Backend = "moto (S3)"
      Location =
        sprintf "s3://ptd-cache-cli/%s?endpoint=%s&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET"
            (uniqueSegment "cli") (Uri.EscapeDataString ep)
      Env = [ "PTD_TEST_MOTO_ACCESS", "testing"; "PTD_TEST_MOTO_SECRET", motoSecret ]
      Home = tempDir "moto" }

let azuriteSite () =
    let conn = requireEnv Emulators.azuriteVariable Emulators.azuriteServer
    { Backend = "Azurite (Azure Blob)"
      Location = sprintf "azblob://ptd-cache-cli/%s?connectionStringEnv=PTD_TEST_AZURITE_CONNECTION&create=true" (uniqueSegment "cli")
      Env = [ "PTD_TEST_AZURITE_CONNECTION", conn ]
      Home = tempDir "azurite" }

/// Every storage plugin ptd ships, loaded in this process to look at the stores behind ptd's back.
let registry =
    lazy (
        let o = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
        o.Directories.Add pluginsDir
        StorageProviderRegistry.Discover o)

let openStore (site: Site) =
    let env = Map.ofList site.Env
    let context =
        BlobStoreContext(GetEnvironmentVariable = Func<string, string>(fun n -> match Map.tryFind n env with Some v -> v | None -> Environment.GetEnvironmentVariable n))
    registry.Value.Open(site.Location, context)

let run (t: Task<'a>) = t.GetAwaiter().GetResult()

let keysOf (store: IBlobStore) = run (store.ListAsync "") |> Seq.map (fun b -> b.Key.Value) |> Set.ofSeq

let getBytes (store: IBlobStore) (key: string) =
    let r = run (store.GetAsync(BlobKey.Parse key))
    if r.Found then Some r.Content else None

let put (store: IBlobStore) (key: string) (bytes: byte[]) =
    run (store.PutAsync(BlobKey.Parse key, ReadOnlyMemory bytes, BlobWriteMode.Overwrite)) |> ignore

let testT name (body: unit -> Task<unit>) = testCase name (fun () -> body().GetAwaiter().GetResult())
