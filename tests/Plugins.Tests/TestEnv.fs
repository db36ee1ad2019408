/// Shared test plumbing: where plugins are, the emulator endpoints passed by build.fsx, temp directories.
module Ptd.Plugins.Tests.TestEnv

open System
open System.IO
open System.Security.Cryptography
open Ptd.Storage
open Ptd.Storage.LocalDisk
open Ptd.Host.Composition
open Ptd.Tests

/// ptd's plugins folder (where the build deploys localdisk, s3 and azureblob).
let pluginsDir = BuildInfo.metadata "PtdPluginsDir"

/// The test plugin's build output, itself a plugin directory.
let testPluginsDir = BuildInfo.metadata "PtdTestPluginsDir"

/// The repository root (holds PtdPipeline.sln and node_modules).
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "cannot find the repository root (PtdPipeline.sln) above the test assembly"
        elif File.Exists(Path.Combine(d.FullName, "PtdPipeline.sln")) then d.FullName
        else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// This run's scratch root, under build.fsx's work dir (PTD_TEST_WORK_DIR) or the system temp dir; removed at exit
/// (the conformance suite writes 20 MB values).
let private scratch = TempDirs.Scratch("ptd-plugins-tests", "plugins-tests")

/// A fresh directory for one test.
let tempDir (name: string) = scratch.Dir name

/// A local disk store in a fresh directory, and that directory (no fsync: tests need no durability).
let localDisk (name: string) =
    let root = tempDir name
    root, LocalDiskStore(root, "file://" + root, fsync = false)

/// A unique, key-safe segment for isolating tests that share a server.
let uniqueSegment (name: string) = TempDirs.uniqueSegment name

let randomBytes (seed: int) (n: int) =
    let b = Array.zeroCreate<byte> n
    Random(seed).NextBytes b
    b

let sha256 (b: byte[]) = Convert.ToHexString(SHA256.HashData b)

let freePort () = Emulators.freePort ()

/// An emulator endpoint from the environment, or a failure that names the missing server.
let requireEnv (variable: string) (server: string) =
    Emulators.require failwith { How = " yourself"; SeeAlso = " (see docs/writing-a-storage-plugin.md, Testing)" } variable server

/// The Azurite connection string; checks that its account key is base64 (a wrong key makes every call fail obscurely).
let azuriteConnection () =
    let conn = requireEnv Emulators.azuriteVariable Emulators.azuriteServer
    let m = Text.RegularExpressions.Regex.Match(conn, "AccountKey=([^;]*)")
    let valid =
        m.Success
        && (let buffer = Array.zeroCreate<byte> 256
            Convert.TryFromBase64String(m.Groups.[1].Value, Span buffer, ref 0))
    if not valid then
        failwith "PTD_TEST_AZURITE_CONNECTION has an AccountKey that is not valid base64, so the Azure SDK rejects the connection string. Azurite's documented development key is Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw== (check build.fsx's azuriteKey)."
    conn

/// Credentials handed to plugins through the store context, never through the process environment.
let private testSecrets =
    dict [ "PTD_TEST_MOTO_ACCESS", "testing"
           "PTD_TEST_MOTO_SECRET", "testing-secret"
           "PTD_TEST_S3RVER_ACCESS", "S3RVER"
           "PTD_TEST_S3RVER_SECRET", "S3RVER"
           "PTD_TEST_S3RVER_BAD_ACCESS", "NOT-S3RVER"
           "PTD_TEST_S3RVER_BAD_SECRET", "not-the-s3rver-secret-4f1c"
           "PTD_TEST_MEM_PASSWORD", "right-password"
           "PTD_TEST_MEM_BAD_PASSWORD", "wrong-password-77" ]

let envWith (extra: (string * string) list) : Func<string, string> =
    let m = Map.ofList extra
    Func<string, string>(fun name ->
        match Map.tryFind name m with
        | Some v -> v
        | None ->
            match testSecrets.TryGetValue name with
            | true, v -> v
            | _ -> Environment.GetEnvironmentVariable name)

let context () = BlobStoreContext(GetEnvironmentVariable = envWith [])

let contextWith extra = BlobStoreContext(GetEnvironmentVariable = envWith extra)

/// The registry every test shares: the shipped plugins plus the test plugins, nothing from the environment.
let registry =
    lazy (
        let o = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
        o.Directories.Add pluginsDir
        o.Directories.Add testPluginsDir
        StorageProviderRegistry.Discover o)

let openStore (location: string) = registry.Value.Open(location, context ())

let run (t: Threading.Tasks.Task<'a>) = t.GetAwaiter().GetResult()

let runUnit (t: Threading.Tasks.Task) = t.GetAwaiter().GetResult()

/// A TimeProvider whose clock the test moves.
type ManualTime(start: DateTimeOffset) =
    inherit TimeProvider()
    let mutable now = start
    member _.Advance(d: TimeSpan) = now <- now + d
    override _.GetUtcNow() = now
