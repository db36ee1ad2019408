/// Keys and paths: no key, configuration value or archive entry makes a plugin (local disk, S3 on moto, Azure Blob on
/// Azurite, loaded as real plugins) read or write outside its root or prefix. Each hostile input is either refused
/// with a message that says what is wrong, or confined; confinement is checked on the file system and by raw listings
/// of the buckets (which show every object, valid key or not).
module Ptd.RemoteFaults.Tests.PathTests

open System
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Text.Json
open System.Threading.Tasks
open Amazon.Runtime
open Amazon.S3
open Amazon.S3.Model
open Azure.Storage.Blobs
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Storage
open Ptd.Host.Caching
open Ptd.RemoteFaults.Tests.Env

let private bucket = "ptd-paths"

/// Hand-made hostile keys: traversal, absolute paths, separators, encodings, NUL, length, look-alikes.
let hostileKeys =
    [ ".."; "../x"; "a/../../x"; "trace/r1/g1/../../../../etc/passwd"; "/etc/passwd"; "/abs"; "\\"; "a\\..\\..\\x"
      "C:/x"; "c:\\x"; "%2e%2e"; "%2e%2e/x"; "..%2fx"; "%2F"; "a%00b"; "a\u0000b"; "a/\u0000"; "x/./y"; "."; "./x"
      String('a', 600); String('a', 129); "\uFF0E\uFF0E/x"; "\u2024\u2024/x"; "a\u2215..\u2215b"; "a\uFF0F..\uFF0Fb"
      "\u202Eexe.txt"; "~/x"; "a/\n/b"; ""; " "; "a/"; "a//b"; "A"; "e\u0301" ]

/// Segments for generated keys: mostly harmless ones, mixed with every dangerous kind.
let private segments =
    [ "a"; "b0"; "x.y"; "k-1"; "z_2"; ".."; "."; ""; "%2e%2e"; "\\"; "\u0000"; "\uFF0E\uFF0E"; "\u2215"; "C:"; "~"; "A"; " "; ".hidden"
      String('q', 130) ]

let private generatedKeys =
    gen {
        let! n = Gen.choose (1, 5)
        // Half of the segments harmless, so that valid keys come up often enough to check where they land.
        let segment = Gen.frequency [ 1, Gen.elements segments; 1, Gen.elements [ "a"; "b0"; "x.y"; "k-1"; "z_2"; "deep"; "0f" ] ]
        let! parts = Gen.listOfLength n segment
        let! lead = Gen.elements [ ""; ""; ""; ""; ""; "/" ]
        return lead + String.Join("/", parts)
    }
    |> Arb.fromGen

let private show (s: string) = String(s |> Seq.truncate 40 |> Seq.map (fun c -> if Char.IsControl c then '?' else c) |> Seq.toArray)

// ---------------------------------------------------------------------------------------------
// Raw views of the emulators (independent of the plugins)
// ---------------------------------------------------------------------------------------------

let private s3Client () =
    let cfg = AmazonS3Config(ServiceURL = (motoEndpoint ()).ToString(), ForcePathStyle = true, AuthenticationRegion = "us-east-1")
    new AmazonS3Client(BasicAWSCredentials("testing", "testing-secret"), cfg)

/// Every object name in the bucket (empty when the bucket does not exist).
let s3Objects (b: string) =
    task {
        use c = s3Client ()
        let names = Collections.Generic.List<string>()
        try
            let req = ListObjectsV2Request(BucketName = b)
            let mutable more = true
            while more do
                let! r = c.ListObjectsV2Async req
                for o in (if isNull r.S3Objects then Collections.Generic.List<S3Object>() else r.S3Objects) do names.Add o.Key
                more <- r.IsTruncated.GetValueOrDefault false
                req.ContinuationToken <- r.NextContinuationToken
        with :? AmazonS3Exception as e when e.ErrorCode = "NoSuchBucket" -> ()
        return Set.ofSeq names
    }

/// Every blob name in the container (empty when it does not exist).
let azureObjects (container: string) =
    task {
        let conn, _ = azurite ()
        let c = BlobContainerClient(conn, container)
        let names = Collections.Generic.List<string>()
        let! exists = c.ExistsAsync()
        if exists.Value then
            let e = c.GetBlobsAsync().GetAsyncEnumerator()
            let mutable go = true
            while go do
                let! more = e.MoveNextAsync()
                if more then names.Add e.Current.Name else go <- false
        return Set.ofSeq names
    }

let private filesUnder (dir: string) =
    if Directory.Exists dir then Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Set.ofArray else Set.empty

/// A local root nested in a sandbox, and a prefix on each remote: the places writes may go, and where to look for
/// writes that went elsewhere.
type Site =
    { Sandbox: string
      Root: string
      Prefix: string
      Local: string
      S3: string
      Azure: string
      Context: BlobStoreContext }

let site (name: string) =
    let sandbox = tempDir name
    let root = Path.Combine(sandbox, "inner", "root")
    Directory.CreateDirectory(Path.Combine(sandbox, "inner", "sibling")) |> ignore
    let prefix = uniqueSegment name + "/inner"
    let conn, _ = azurite ()
    let moto = Uri.EscapeDataString((motoEndpoint ()).GetLeftPart(UriPartial.Authority))
    { Sandbox = sandbox
      Root = root
      Prefix = prefix
      Local = $"file://{root}?fsync=false"
      S3 = $"s3://{bucket}/{prefix}?endpoint={moto}&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET&retries=0"
      Azure = $"azblob://{bucket}/{prefix}?connectionStringEnv=PTD_TEST_PATHS_AZURITE&create=true&retries=0"
      Context = contextWith [ "PTD_TEST_PATHS_AZURITE", conn ] }

/// What exists now in the sandbox and the two buckets.
let snapshot () =
    task {
        let! s3 = s3Objects bucket
        let! az = azureObjects bucket
        return s3, az
    }

/// Checks that everything created since `before` is inside the site's root or prefix; returns the new names.
let confined (s: Site) (before: Set<string> * Set<string>) =
    task {
        let! s3, az = snapshot ()
        let newS3 = s3 - fst before
        let newAz = az - snd before
        let newFiles = filesUnder s.Sandbox
        for f in newFiles do
            Expect.isTrue (f.StartsWith(s.Root + string Path.DirectorySeparatorChar, StringComparison.Ordinal)) $"file '{f}' is outside the root {s.Root}"
        for o in newS3 do
            Expect.isTrue (o.StartsWith(s.Prefix + "/", StringComparison.Ordinal)) $"S3 object '{o}' is outside the prefix {s.Prefix}/"
        for o in newAz do
            Expect.isTrue (o.StartsWith(s.Prefix + "/", StringComparison.Ordinal)) $"Azure blob '{o}' is outside the prefix {s.Prefix}/"
        return newFiles, newS3, newAz
    }

let private trace = ArtifactKind("trace", 1)

let private cacheFor (s: Site) =
    let o = ArtifactCacheOptions(AutoEvict = false, StoreContext = s.Context, ThrowOnTierError = true)
    for name, loc in [ "local", s.Local; "s3", s.S3; "azure", s.Azure ] do
        o.Tiers.Add(CacheTierOptions(Location = loc, Name = name, Timeout = Nullable(TimeSpan.FromSeconds 10.0)))
    ArtifactCache.Create(o, registry.Value)

let private throwsArgument (what: string) (f: unit -> Task) =
    let e =
        try
            runUnit (f ())
            None
        with
        | :? ArgumentException as e -> Some e
        | :? AggregateException as a when (a.InnerException :? ArgumentException) -> Some(a.InnerException :?> ArgumentException)
    match e with
    | Some e ->
        Expect.stringContains e.Message "key" $"{what}: the message names the key"
        Expect.isFalse (e.Message |> Seq.exists (fun c -> c = '\u0000' || c = '\n')) $"{what}: the message echoes no control characters"
    | None -> failtestf "%s: accepted" what

// ---------------------------------------------------------------------------------------------
// Archives with hostile storage keys
// ---------------------------------------------------------------------------------------------

let private sha (b: byte[]) = Convert.ToHexString(Security.Cryptography.SHA256.HashData b).ToLowerInvariant()

/// An archive whose manifest lists `storageKey` (and a member named after it) holding `envelope`.
let private writeArchive (path: string) (storageKey: string) (envelope: byte[]) =
    let entry =
        CacheArchiveEntry("entries/" + storageKey, storageKey, "trace", 1, 1, "k", "test", sha envelope, 10L, envelope.LongLength, sha envelope)
    let m = CacheArchiveManifest(CacheArchive.FormatName, DateTimeOffset.UtcNow, "test", 1, [| entry |])
    let bytes = JsonSerializer.SerializeToUtf8Bytes(m, JsonSerializerOptions(PropertyNamingPolicy = JsonNamingPolicy.CamelCase))
    use f = File.Create path
    use z = new GZipStream(f, CompressionLevel.Fastest)
    use w = new TarWriter(z, TarEntryFormat.Pax)
    w.WriteEntry(PaxTarEntry(TarEntryType.RegularFile, CacheArchive.ManifestName, DataStream = new MemoryStream(bytes)))
    w.WriteEntry(PaxTarEntry(TarEntryType.RegularFile, "entries/" + storageKey, DataStream = new MemoryStream(envelope)))

/// Imports an archive naming `storageKey` into each tier; true when it was refused (whole, or the entry).
let private importRefused (manager: CacheManager) (dir: string) (storageKey: string) =
    let path = Path.Combine(dir, Guid.NewGuid().ToString("N") + ".tar.gz")
    let written =
        try
            writeArchive path storageKey (Array.init 300 byte)
            true
        with _ -> false // a name no tar writer can even store: nothing to import
    if not written then true
    else
        [ "local"; "s3"; "azure" ]
        |> List.forall (fun tier ->
            try
                let r = run (manager.ImportAsync(path, tier))
                r.Imported = 0L && r.Refused.Count = 1
            with :? UnsafeArchiveException as e ->
                not (String.IsNullOrWhiteSpace e.Message) && not (e.Message.Contains '\u0000'))

[<Tests>]
let tests =
    testSequencedGroup "keys-and-paths"
    <| testList "keys-and-paths" [
        testCase "hostile keys are refused by every cache entry point with a message, and nothing is written anywhere" <| fun () ->
            let s = site "hostile"
            let before = run (snapshot ())
            let cache = cacheFor s
            let mutable factoryRuns = 0
            for k in hostileKeys do
                Expect.isNotNull (BlobKey.Validate k) $"'{show k}' is not a key"
                throwsArgument $"GetOrCreate '{show k}'" (fun () ->
                    cache.GetOrCreateAsync(trace, k, fun _ -> task { factoryRuns <- factoryRuns + 1; return [| 1uy |] }) :> Task)
                throwsArgument $"TryGet '{show k}'" (fun () -> cache.TryGetAsync(trace, k) :> Task)
                throwsArgument $"Set '{show k}'" (fun () -> cache.SetAsync(trace, k, ReadOnlyMemory [| 1uy |]) :> Task)
                throwsArgument $"Remove '{show k}'" (fun () -> cache.RemoveAsync(trace, k) :> Task)
            Expect.equal factoryRuns 0 "no factory ran for a refused key"
            runUnit (cache.DisposeAsync().AsTask())
            let files, s3, az = run (confined s before)
            Expect.equal (files.Count, s3.Count, az.Count) (0, 0, 0) "nothing was written at all"
            note $"keys | {hostileKeys.Length} hand-made hostile keys × 4 cache entry points × 3 plugins | all refused with a message; 0 files, 0 objects written"

        testCase "generated keys: valid ones land exactly at root/prefix + key in every plugin, others are refused (FsCheck)" <| fun () ->
            let s = site "generated"
            let before = run (snapshot ())
            let stores = [ "local", openStore s.Local s.Context; "s3", openStore s.S3 s.Context; "azure", openStore s.Azure s.Context ]
            let accepted = Collections.Generic.HashSet<string>()
            let mutable rejected = 0
            let prop (k: string) =
                match BlobKey.TryParse k with
                | true, key ->
                    for _, st in stores do
                        run (st.PutAsync(key, ReadOnlyMemory [| 7uy |], BlobWriteMode.Overwrite)) |> ignore
                        let back = run (st.GetAsync key)
                        if not back.Found then failtestf "%s: '%s' written but not read back" st.DisplayName k
                    accepted.Add k |> ignore
                    true
                | _ ->
                    rejected <- rejected + 1
                    let msg = BlobKey.Validate k
                    not (String.IsNullOrWhiteSpace msg) && not (msg.Contains '\u0000')
            Check.One(Config.QuickThrowOnFailure.WithMaxTest(100), Prop.forAll generatedKeys prop)
            let files, s3, az = run (confined s before)
            let sep = string Path.DirectorySeparatorChar
            let expectedFiles =
                accepted
                |> Seq.map (fun k ->
                    let parts = k.Split '/'
                    let last = parts.[parts.Length - 1]
                    Path.Combine(Array.concat [ [| s.Root |]; parts.[.. parts.Length - 2]; [| "=" + (if last.Length > 2 then last.[..1] else last); last |] ]))
                |> Set.ofSeq
            Expect.equal files expectedFiles $"local files are exactly root{sep}key (fan-out layout)"
            let expectedObjects = accepted |> Seq.map (fun k -> s.Prefix + "/" + k) |> Set.ofSeq
            Expect.equal s3 expectedObjects "S3 objects are exactly prefix/key"
            Expect.equal az expectedObjects "Azure blobs are exactly prefix/key"
            for _, st in stores do runUnit (st.DisposeAsync().AsTask())
            Expect.isGreaterThan accepted.Count 5 "the generator produced valid keys too"
            Expect.isGreaterThan rejected 20 "and hostile ones"
            note $"keys | 100 generated keys (FsCheck): {accepted.Count} distinct valid keys written to 3 plugins, each exactly at root/prefix + key; {rejected} refused with a message; 0 writes outside"

        testCase "configuration locations: traversal, encodings, NUL and look-alikes are refused; plain ones confine" <| fun () ->
            let s = site "config"
            let before = run (snapshot ())
            let moto = Uri.EscapeDataString((motoEndpoint ()).GetLeftPart(UriPartial.Authority))
            let s3q = $"?endpoint={moto}&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET"
            let azq = "?connectionStringEnv=PTD_TEST_PATHS_AZURITE&create=true"
            let refusedCases =
                [ $"file://{s.Root}/../sibling", "'..'"
                  $"file://{s.Root}/%%2e%%2e/sibling", "'..'"
                  $"file://{s.Root}/%%2E%%2E%%2Fsibling", "'..'"
                  $"file://{s.Root}/./x", "'.'"
                  $"file://{s.Root}/a%%00b", "control character"
                  "file://~/../x", "'..'"
                  "file://evil-host/x", "host"
                  "file://relative/x", "host"
                  $"s3://{bucket}/../other{s3q}", "prefix"
                  $"s3://{bucket}/%%2e%%2e/other{s3q}", "prefix"
                  $"s3://{bucket}/a/..%%2F..%%2Fb{s3q}", "prefix"
                  $"s3://{bucket}/a%%00b{s3q}", "prefix"
                  $"s3://{bucket}/\uFF0E\uFF0E/x{s3q}", "prefix"
                  $"s3://{bucket}/a\\..\\b{s3q}", "prefix"
                  $"s3://{bucket}/{String('a', 600)}{s3q}", "prefix"
                  $"s3://../other{s3q}", "bucket name"
                  $"s3://.../x{s3q}", "bucket name"
                  $"s3://a..b/x{s3q}", "bucket name"
                  $"s3://{bucket}%%2F..%%2Fother/x{s3q}", "bucket name"
                  $"azblob://{bucket}/../x{azq}", "prefix"
                  $"azblob://{bucket}/%%2e%%2e{azq}", "prefix"
                  $"azblob://../x{azq}", "container name"
                  $"azblob://{bucket}%%2F..%%2Fx/y{azq}", "container name" ]
            for loc, expected in refusedCases do
                let shown = show loc
                match (try Ok(openStore loc s.Context) with :? PtdException as e -> Error e.Message) with
                | Ok st ->
                    runUnit (st.DisposeAsync().AsTask())
                    failtestf "'%s' was accepted" loc
                | Error msg ->
                    Expect.stringContains msg expected $"'{shown}': the message says what is wrong"
                    Expect.isFalse (msg.Contains '\u0000') "no NUL echoed"
            // Plain locations confine every write to their root or prefix.
            let key = BlobKey.Parse "trace/r1/g1/abcdef"
            for loc in [ s.Local; s.S3; s.Azure ] do
                let st = openStore loc s.Context
                run (st.PutAsync(key, ReadOnlyMemory [| 1uy |], BlobWriteMode.Overwrite)) |> ignore
                runUnit (st.DisposeAsync().AsTask())
            let files, s3, az = run (confined s before)
            Expect.equal (files.Count, s3.Count, az.Count) (1, 1, 1) "one write each, inside"
            Expect.isEmpty (filesUnder (Path.Combine(s.Sandbox, "inner", "sibling"))) "the sibling directory is untouched"
            note $"paths | {refusedCases.Length} hostile locations (file, s3, azblob) refused with a message naming the problem; 3 plain ones confined"

        testCase "archives: a manifest naming a hostile storage key is refused for every plugin, nothing is written" <| fun () ->
            let s = site "archive"
            let before = run (snapshot ())
            let o = ArtifactCacheOptions(AutoEvict = false, StoreContext = s.Context, ThrowOnTierError = true)
            for name, loc in [ "local", s.Local; "s3", s.S3; "azure", s.Azure ] do
                o.Tiers.Add(CacheTierOptions(Location = loc, Name = name))
            let manager = CacheManager.Create(o, registry.Value)
            let work = tempDir "archives"
            let hand =
                hostileKeys @ [ "trace/r1/g1/../../../x"; "trace/r1/g1/%2e%2e"; "trace/r1/../g1/x"; "trace/r1/g1/\u0000"; "/trace/r1/g1/x" ]
            for k in hand do
                Expect.isTrue (importRefused manager work k) $"archive naming '{show k}' refused"
            let mutable generated = 0
            Check.One(Config.QuickThrowOnFailure.WithMaxTest(40),
                      Prop.forAll generatedKeys (fun k ->
                          generated <- generated + 1
                          importRefused manager work ("trace/r1/g1/" + k)))
            (manager :> IAsyncDisposable).DisposeAsync().AsTask() |> runUnit
            let files, s3, az = run (confined s before)
            Expect.equal (files.Count, s3.Count, az.Count) (0, 0, 0) "nothing was imported anywhere"
            note $"archives | {hand.Length} hand-made + {generated} generated hostile storage keys in manifests, imported into 3 plugins: all refused, 0 files, 0 objects written"
    ]
