/// One conformance suite, run against every backend: local disk, Azurite, moto, s3rver and the in-memory test plugin.
/// Every store is opened through the plugin registry, i.e. through MEF and the plugin load contexts.
module Ptd.Plugins.Tests.Conformance

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Ptd.Core
open Ptd.Storage
open Ptd.Plugins.Tests.TestEnv

type Backend =
    { Name: string
      /// Opens a fresh store isolated from every other test (its own directory, prefix or name).
      Open: unit -> IBlobStore
      /// Opens (or fails to open) the backend with wrong or missing credentials.
      BadAccess: unit -> IBlobStore
      /// The secret used by BadAccess, which must never appear in any message.
      Secret: string
      /// The error kind a bad-access store reports.
      BadKind: BlobStoreErrorKind
      /// False for servers known to interleave concurrent writes of one key (s3rver): there the suite demands
      /// that the damage is detected (a Corrupt error), never returned as data.
      AtomicConcurrentWrites: bool
      /// True when the plugin implements DeletePrefixAsync natively (the in-memory plugin keeps the interface's default,
      /// which is how a plugin written before the method existed behaves).
      NativePrefixDelete: bool }

let private s3Location endpoint (unique: string) extra =
    $"s3://ptd-conformance/{unique}?endpoint={Uri.EscapeDataString(endpoint: string)}&region=us-east-1&create=true{extra}"

let backends : Backend list =
    [ { Name = "local disk"
        Open = fun () -> openStore ("file://" + tempDir "conf-local")
        BadAccess =
          fun () ->
              // A root that is a regular file cannot hold entries (the tests run as root, so permissions cannot be used).
              let file = Path.Combine(tempDir "conf-local-bad", "not-a-directory")
              File.WriteAllText(file, "x")
              openStore $"file://{file}"
        Secret = "\u0000no-secret"
        BadKind = BlobStoreErrorKind.Unavailable
        AtomicConcurrentWrites = true
        NativePrefixDelete = true }
      { Name = "in-memory plugin"
        Open = fun () -> openStore ("mem://" + uniqueSegment "conf")
        BadAccess =
          fun () ->
              let name = uniqueSegment "conf-auth"
              openStore $"mem://{name}?passwordEnv=PTD_TEST_MEM_PASSWORD" |> ignore
              openStore $"mem://{name}?passwordEnv=PTD_TEST_MEM_BAD_PASSWORD"
        Secret = "wrong-password-77"
        BadKind = BlobStoreErrorKind.Unauthorized
        AtomicConcurrentWrites = true
        NativePrefixDelete = false }
      { Name = "azurite"
        Open =
          fun () ->
              azuriteConnection () |> ignore
              let prefix = uniqueSegment "conf"
              openStore $"azblob://ptd-conformance/{prefix}?connectionStringEnv=PTD_TEST_AZURITE_CONNECTION&create=true"
        BadAccess =
          fun () ->
              let conn = azuriteConnection ()
              let badKey = Convert.ToBase64String(randomBytes 77 64)
              let bad = Text.RegularExpressions.Regex.Replace(conn, "AccountKey=[^;]+", "AccountKey=" + badKey)
              registry.Value.Open(
                  "azblob://ptd-conformance/bad?connectionStringEnv=PTD_TEST_BAD_AZURE",
                  contextWith [ "PTD_TEST_BAD_AZURE", bad ])
        Secret = Convert.ToBase64String(randomBytes 77 64)
        BadKind = BlobStoreErrorKind.Unauthorized
        AtomicConcurrentWrites = true
        NativePrefixDelete = true }
      { Name = "moto"
        Open =
          fun () ->
              let ep = requireEnv Ptd.Tests.Emulators.motoVariable Ptd.Tests.Emulators.motoServer
              openStore (s3Location ep (uniqueSegment "conf") "&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET")
        BadAccess =
          fun () ->
              // moto accepts any signature, so the bad case is a credential variable that is not set.
              let ep = requireEnv Ptd.Tests.Emulators.motoVariable Ptd.Tests.Emulators.motoServer
              openStore (s3Location ep "bad" "&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_UNSET_SECRET_VARIABLE")
        Secret = "testing-secret"
        BadKind = BlobStoreErrorKind.Unauthorized
        AtomicConcurrentWrites = true
        NativePrefixDelete = true }
      { Name = "s3rver"
        Open =
          fun () ->
              let ep = requireEnv Ptd.Tests.Emulators.s3rverVariable Ptd.Tests.Emulators.s3rverServer
              openStore (s3Location ep (uniqueSegment "conf") "&accessKeyEnv=PTD_TEST_S3RVER_ACCESS&secretKeyEnv=PTD_TEST_S3RVER_SECRET&conditionalPut=false")
        BadAccess =
          fun () ->
              let ep = requireEnv Ptd.Tests.Emulators.s3rverVariable Ptd.Tests.Emulators.s3rverServer
              // s3rver checks the access key id (it does not verify version-4 signatures).
              openStore (s3Location ep "bad" "&accessKeyEnv=PTD_TEST_S3RVER_BAD_ACCESS&secretKeyEnv=PTD_TEST_S3RVER_BAD_SECRET&conditionalPut=false")
        Secret = "not-the-s3rver-secret-4f1c"
        BadKind = BlobStoreErrorKind.Unauthorized
        AtomicConcurrentWrites = false
        NativePrefixDelete = true } ]

let private key (s: string) = BlobKey.Parse s

let private withStore (b: Backend) (f: IBlobStore -> Task<unit>) =
    task {
        let store = b.Open()
        try
            do! f store
        finally
            store.DisposeAsync().AsTask().GetAwaiter().GetResult()
    }

let private put (store: IBlobStore) (k: string) (bytes: byte[]) mode =
    store.PutAsync(key k, ReadOnlyMemory bytes, mode)

let private suite (b: Backend) =
    testList b.Name [
        testTask "round trip, exists and delete" {
            do! withStore b (fun store -> task {
                let data = randomBytes 1 1000
                let! outcome = put store "rt/x" data BlobWriteMode.Overwrite
                Expect.equal outcome BlobWriteOutcome.Written "written"
                let! r = store.GetAsync(key "rt/x")
                Expect.isTrue r.Found "found"
                Expect.equal r.Content data "same bytes"
                let! exists = store.ExistsAsync(key "rt/x")
                Expect.isTrue exists "exists"
                let! deleted = store.DeleteAsync(key "rt/x")
                Expect.isTrue deleted "deleted"
                let! after = store.GetAsync(key "rt/x")
                Expect.isFalse after.Found "gone"
                let! empty = put store "rt/empty" [||] BlobWriteMode.Overwrite
                Expect.equal empty BlobWriteOutcome.Written "empty value"
                let! e = store.GetAsync(key "rt/empty")
                Expect.isTrue (e.Found && e.Content.Length = 0) "empty value found"
                let! health = store.CheckHealthAsync()
                Expect.isTrue health.IsHealthy (string health)
            })
        }

        testTask "a missing key is a value, not an exception" {
            do! withStore b (fun store -> task {
                let! r = store.GetAsync(key "missing/x")
                Expect.isFalse r.Found "not found"
                Expect.isEmpty r.Content "no bytes"
                let! exists = store.ExistsAsync(key "missing/x")
                Expect.isFalse exists "does not exist"
                let! deleted = store.DeleteAsync(key "missing/x")
                Expect.isFalse deleted "nothing deleted"
            })
        }

        testTask "overwrite replaces; create-only keeps the first value" {
            do! withStore b (fun store -> task {
                let! _ = put store "ow/k" [| 1uy |] BlobWriteMode.Overwrite
                let! o2 = put store "ow/k" [| 2uy |] BlobWriteMode.Overwrite
                Expect.equal o2 BlobWriteOutcome.Written "overwritten"
                let! r = store.GetAsync(key "ow/k")
                Expect.equal r.Content [| 2uy |] "second value"
                let! o3 = put store "ow/k" [| 3uy |] BlobWriteMode.CreateOnly
                Expect.equal o3 BlobWriteOutcome.AlreadyExists "create-only refused"
                let! r2 = store.GetAsync(key "ow/k")
                Expect.equal r2.Content [| 2uy |] "value kept"
                let! o4 = put store "ow/new" [| 4uy |] BlobWriteMode.CreateOnly
                Expect.equal o4 BlobWriteOutcome.Written "create-only on a new key"
            })
        }

        testTask "listing by prefix is a plain text match, sorted, with lengths" {
            do! withStore b (fun store -> task {
                for k, n in [ "list/a/1", 10; "list/a/2", 20; "list/b/1", 30; "lista", 40; "other/x", 50 ] do
                    let! _ = put store k (Array.zeroCreate n) BlobWriteMode.Overwrite
                    ()
                let names (xs: Collections.Generic.IReadOnlyList<BlobInfo>) = xs |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq
                let! a = store.ListAsync "list/a/"
                Expect.equal (names a) [ "list/a/1"; "list/a/2" ] "list/a/"
                Expect.equal (a |> Seq.map (fun i -> i.Length) |> List.ofSeq) [ 10L; 20L ] "lengths"
                let! l = store.ListAsync "list/"
                Expect.equal (names l) [ "list/a/1"; "list/a/2"; "list/b/1" ] "list/"
                let! t = store.ListAsync "list"
                Expect.equal (names t) [ "list/a/1"; "list/a/2"; "list/b/1"; "lista" ] "text prefix"
                let! all = store.ListAsync ""
                Expect.equal (names all) [ "list/a/1"; "list/a/2"; "list/b/1"; "lista"; "other/x" ] "everything"
                let! none = store.ListAsync "zzz/"
                Expect.isEmpty none "nothing"
                let recent = DateTimeOffset.UtcNow.AddHours -1.0
                Expect.all all (fun i -> i.LastModified > recent) "modification times are real"
            })
        }

        testTask "invalid keys and prefixes are refused; the longest and widest keys round-trip" {
            do! withStore b (fun store -> task {
                for bad in [ "../"; "/"; "a//"; "A"; "a/../b" ] do
                    Expect.throwsT<ArgumentException> (fun () -> store.ListAsync(bad).GetAwaiter().GetResult() |> ignore) $"prefix {bad}"
                let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_."
                let segment = String.init 127 (fun i -> string alphabet.[i % alphabet.Length])
                let longest = String.Join("/", Array.create 4 segment)
                Expect.equal longest.Length 511 "near the limit"
                let wide = String.Join("/", Array.init BlobKey.MaxSegments (fun i -> sprintf "s%d" i))
                for k in [ longest; wide ] do
                    let data = randomBytes k.Length 64
                    let! _ = put store k data BlobWriteMode.Overwrite
                    let! r = store.GetAsync(key k)
                    Expect.equal r.Content data $"round trip of a {k.Length}-character key"
                    let! listed = store.ListAsync(k)
                    Expect.equal (listed |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq) [ k ] "listed under its own name"
            })
        }

        testTask "a 20 MB value round-trips intact" {
            do! withStore b (fun store -> task {
                let data = randomBytes 20 (20 * 1024 * 1024)
                let! _ = put store "large/v" data BlobWriteMode.CreateOnly
                let! r = store.GetAsync(key "large/v")
                Expect.equal r.Content.Length data.Length "length"
                Expect.equal (sha256 r.Content) (sha256 data) "content"
            })
        }

        testTask "concurrent writers of one key: one intact value wins" {
            do! withStore b (fun store -> task {
                let values = Array.init 6 (fun i -> randomBytes (100 + i) (128 * 1024))
                // Reads the key: Some hash of an intact value, or None when the store reports the damage itself.
                let read k =
                    task {
                        try
                            let! r = store.GetAsync(key k)
                            return Some(sha256 r.Content)
                        with :? BlobStoreException as e when e.Kind = BlobStoreErrorKind.Corrupt && not b.AtomicConcurrentWrites ->
                            return None
                    }
                let! outcomes = values |> Array.map (fun v -> put store "race/one" v BlobWriteMode.CreateOnly) |> Task.WhenAll
                let winners = outcomes |> Array.indexed |> Array.filter (fun (_, o) -> o = BlobWriteOutcome.Written) |> Array.map fst
                let! stored = read "race/one"
                if store.Capabilities.ConditionalPut then
                    Expect.equal winners.Length 1 "exactly one create-only writer wins"
                    Expect.equal stored (Some(sha256 values.[winners.[0]])) "the winner's value is stored"
                else
                    Expect.isGreaterThanOrEqual winners.Length 1 "at least one writer"
                    match stored with
                    | Some h -> Expect.contains (winners |> Array.map (fun i -> sha256 values.[i])) h "one written value, intact"
                    | None -> () // interleaved writes, detected (non-atomic server)
                let! _ = values |> Array.map (fun v -> put store "race/two" v BlobWriteMode.Overwrite) |> Task.WhenAll
                let! last = read "race/two"
                match last with
                | Some h -> Expect.contains (values |> Array.map sha256) h "an overwrite race leaves one intact value"
                | None -> ()
            })
        }

        testTask "prefix delete removes a whole directory, its subdirectories and nothing else" {
            do! withStore b (fun store -> task {
                Expect.equal store.Capabilities.PrefixDelete b.NativePrefixDelete "declared capability"
                for k in [ "pd/g1/a"; "pd/g1/b/c"; "pd/g10/x"; "pd/g1x"; "pd/g2/y" ] do
                    let! _ = put store k (randomBytes k.Length 100) BlobWriteMode.Overwrite
                    ()
                let! n = store.DeletePrefixAsync "pd/g1/"
                Expect.equal n 2L "two values under pd/g1/"
                let! left = store.ListAsync "pd/"
                Expect.equal (left |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq) [ "pd/g10/x"; "pd/g1x"; "pd/g2/y" ] "siblings kept"
                let! gone = store.GetAsync(key "pd/g1/a")
                Expect.isFalse gone.Found "a deleted value is a miss"
                let! again = store.DeletePrefixAsync "pd/g1/"
                Expect.equal again 0L "nothing left to delete"
                let! none = store.DeletePrefixAsync "pd/never/"
                Expect.equal none 0L "a prefix that never existed"
                let! _ = put store "pd/g1/a" [| 7uy |] BlobWriteMode.CreateOnly
                let! back = store.GetAsync(key "pd/g1/a")
                Expect.equal back.Content [| 7uy |] "the directory can be written again"
                for bad in [ ""; "pd/g1"; "../"; "pd//"; "PD/" ] do
                    Expect.throwsT<ArgumentException> (fun () -> store.DeletePrefixAsync(bad).GetAwaiter().GetResult() |> ignore) $"prefix '{bad}' refused"
            })
        }

        testTask "prefix delete of more than one S3 batch (1,001 values)" {
            do! withStore b (fun store -> task {
                let keys = Array.init 1001 (fun i -> sprintf "many/g1/k%04d" i)
                let gate = new Threading.SemaphoreSlim(16)
                let! _ =
                    keys
                    |> Array.map (fun k -> task {
                        do! gate.WaitAsync()
                        try
                            let! _ = put store k [| 1uy |] BlobWriteMode.Overwrite
                            ()
                        finally
                            gate.Release() |> ignore })
                    |> Task.WhenAll
                let! _ = put store "many/keep" [| 2uy |] BlobWriteMode.Overwrite
                let! n = store.DeletePrefixAsync "many/g1/"
                Expect.equal n 1001L "every value counted"
                let! left = store.ListAsync "many/"
                Expect.equal (left |> Seq.map (fun i -> i.Key.Value) |> List.ofSeq) [ "many/keep" ] "all deleted, the sibling kept"
            })
        }

        testTask "bad credentials are a clear error without the secret" {
            let failure =
                try
                    let store = b.BadAccess()
                    try
                        store.PutAsync(key "auth/x", ReadOnlyMemory [| 1uy |], BlobWriteMode.Overwrite).GetAwaiter().GetResult() |> ignore
                        store.GetAsync(key "auth/x").GetAwaiter().GetResult() |> ignore
                        None
                    finally
                        store.DisposeAsync().AsTask().Wait()
                with e -> Some e
            match failure with
            | None -> failtest "operations with bad credentials succeeded"
            | Some e ->
                let kind =
                    match e with
                    | :? BlobStoreException as s -> s.Kind
                    | :? PtdException as p when (p.InnerException :? BlobStoreException) -> (p.InnerException :?> BlobStoreException).Kind
                    | other -> failtestf "unexpected exception type %s: %s" (other.GetType().Name) other.Message
                Expect.equal kind b.BadKind $"error kind ({e.Message})"
                Expect.isFalse (e.ToString().Contains b.Secret) "the secret is not in the message or any inner exception"
                Expect.isNotEmpty e.Message "a message"
            do! Task.CompletedTask
        }
    ]

[<Tests>]
let tests = testList "conformance" (backends |> List.map suite)
