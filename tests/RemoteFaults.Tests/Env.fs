/// Test plumbing: the deployed plugins, the emulators build.fsx starts (moto, Azurite), scratch directories,
/// a clock the tests move (cool-downs), and small task helpers.
module Ptd.RemoteFaults.Tests.Env

open System
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Host.Composition
open Ptd.Tests

/// ptd's plugins folder (where the build deploys localdisk, s3 and azureblob).
let pluginsDir = BuildInfo.metadata "PtdPluginsDir"

let private scratch = TempDirs.Scratch("ptd-remote-faults", "remote-faults")

/// A fresh directory for one test.
let tempDir (name: string) = scratch.Dir name

/// A unique, key-safe segment that isolates tests sharing a server.
let uniqueSegment (name: string) = TempDirs.uniqueSegment name

let freePort () = Emulators.freePort ()

/// An emulator endpoint from the environment, or a failure that names the missing server and how to start it.
let requireEnv (variable: string) (server: string) =
    Emulators.require failwith { How = " yourself on 127.0.0.1"; SeeAlso = " (see docs/RELIABILITY.md)" } variable server

/// moto's base URL, e.g. http://127.0.0.1:5000.
let motoEndpoint () = Uri(requireEnv Emulators.motoVariable Emulators.motoServer)

/// Azurite's connection string and its blob endpoint.
let azurite () =
    let conn = requireEnv Emulators.azuriteVariable Emulators.azuriteServer
    let m = Text.RegularExpressions.Regex.Match(conn, "BlobEndpoint=(http://[^;/]+)(/[^;]*)?;?")
    if not m.Success then failwithf "PTD_TEST_AZURITE_CONNECTION has no BlobEndpoint=http://host:port/account part"
    conn, Uri(m.Groups.[1].Value)

/// Credentials handed to plugins through the store context, never through the process environment.
let private secrets = dict [ "PTD_TEST_MOTO_ACCESS", "testing"; "PTD_TEST_MOTO_SECRET", "testing-secret" ]

let contextWith (extra: (string * string) list) =
    let m = Map.ofList extra
    BlobStoreContext(
        GetEnvironmentVariable =
            Func<string, string>(fun name ->
                match Map.tryFind name m with
                | Some v -> v
                | None ->
                    match secrets.TryGetValue name with
                    | true, v -> v
                    | _ -> Environment.GetEnvironmentVariable name))

/// The shipped plugins only, loaded the way ptd loads them; nothing from the environment.
let registry =
    lazy (
        let o = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
        o.Directories.Add pluginsDir
        let r = StorageProviderRegistry.Discover o
        for s in [ "file"; "s3"; "azblob" ] do
            if not (r.Schemes |> Seq.contains s) then
                failwithf "the '%s' plugin was not found in %s (build tests/RemoteFaults.Tests first: it deploys the plugins)" s pluginsDir
        r)

let openStore (location: string) (ctx: BlobStoreContext) = registry.Value.Open(location, ctx)

let run (t: Task<'a>) = t.GetAwaiter().GetResult()

let runUnit (t: Task) = t.GetAwaiter().GetResult()

/// A test whose body is an F# task. A hang (a cache that never gives up on a dead remote) fails the test after
/// 30 s instead of stalling the suite.
let testT name (body: unit -> Task<unit>) =
    testCase name (fun () ->
        try
            body().WaitAsync(TimeSpan.FromSeconds 30.0).GetAwaiter().GetResult()
        with :? TimeoutException -> failtestf "%s: no result within 30 s (hung)" name)

/// A TimeProvider whose clock the test moves (cool-downs end when the test says so, not after real seconds).
type ManualTime(start: DateTimeOffset) =
    inherit TimeProvider()
    let mutable now = start
    member _.Advance(d: TimeSpan) = now <- now + d
    override _.GetUtcNow() = now

/// One line per measured scenario, collected for docs/RELIABILITY.md (printed at the end of the run).
let figures = Collections.Concurrent.ConcurrentQueue<string>()

let note (line: string) =
    figures.Enqueue line
    printfn "[figure] %s" line
