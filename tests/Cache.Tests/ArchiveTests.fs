/// `ptd cache import` against crafted archives: path traversal, absolute paths, links, devices, oversized members,
/// decompression bombs, members the manifest does not list, foreign revisions. Unsafe archives are refused whole and
/// nothing is written, inside the cache or outside it.
module Ptd.Cache.Tests.ArchiveTests

open System
open System.Collections.Generic
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Security.Cryptography
open System.Text.Json
open Expecto
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Cache.Tests.CacheEnv

let private sha (b: byte[]) = Convert.ToHexString(SHA256.HashData b).ToLowerInvariant()

type private Prepared = { StorageKey: string; Key: string; Payload: byte[]; Envelope: byte[]; Revision: int }

/// A real trace entry of a model, wrapped for `revision` (the current one unless a test fakes a version bump).
let private prepare (spec: string) (revision: int) =
    let g = ModelSpec.build spec
    let key = (ModelKey.compute g).Hex
    let sk = $"trace/r{revision}/g1/{key}"
    let payload = TraceEncoding.encode (Trace.record g)
    let envelope = CacheEnvelope.Encode(ArtifactKind("trace", revision), sk, "Ptd.Host/test", ReadOnlySpan payload)
    { StorageKey = sk; Key = key; Payload = payload; Envelope = envelope; Revision = revision }

let private entryOf (p: Prepared) =
    CacheArchiveEntry("entries/" + p.StorageKey, p.StorageKey, "trace", p.Revision, 1, p.Key, "Ptd.Host/test", sha p.Payload,
                      p.Payload.LongLength, p.Envelope.LongLength, sha p.Envelope)

let private manifestBytes (entries: CacheArchiveEntry list) =
    let m = CacheArchiveManifest(CacheArchive.FormatName, DateTimeOffset.UtcNow, "Ptd.Host/test", 1, List.toArray entries)
    JsonSerializer.SerializeToUtf8Bytes(m, JsonSerializerOptions(PropertyNamingPolicy = JsonNamingPolicy.CamelCase))

let private file (name: string) (bytes: byte[]) : TarEntry =
    PaxTarEntry(TarEntryType.RegularFile, name, DataStream = new MemoryStream(bytes)) :> TarEntry

/// Writes a .tar.gz with exactly the given members, in order.
let private writeArchive (path: string) (members: TarEntry list) =
    use f = File.Create path
    use z = new GZipStream(f, CompressionLevel.Fastest)
    use w = new TarWriter(z, TarEntryFormat.Pax)
    for m in members do w.WriteEntry m

/// A local site with the archive's cache dir nested two levels down, so that "../" targets stay in the test's dir.
let private site () =
    let s = localSite ()
    { s with Location = "file://" + Path.Combine(s.Home, "a", "cache") }

let private cacheDir (s: Site) = Path.Combine(s.Home, "a", "cache")

let private filesUnder (dir: string) =
    if Directory.Exists dir then Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Set.ofArray else Set.empty

/// Imports `members` as an archive and expects a refusal of the whole archive that mentions `reason`, with nothing written.
let private refused (reason: string) (members: Site -> TarEntry list) () =
    let s = site ()
    let archive = Path.Combine(s.Home, "attack.tar.gz")
    writeArchive archive (members s)
    let before = filesUnder s.Home
    let r = s.Ptd [ "cache"; "import"; archive ]
    Expect.equal r.Code 2 $"the archive is refused as bad input (stdout: {r.Out}, stderr: {r.Err})"
    Expect.stringContains r.Err reason "the message names the problem"
    Expect.isEmpty (filesUnder (cacheDir s)) "nothing was written into the cache"
    Expect.equal (filesUnder s.Home) before "nothing was written anywhere else in the test's directory"
    Expect.isFalse (File.Exists(Path.Combine(s.Home, "evil"))) "no file escaped the cache directory"
    Expect.isFalse (File.Exists "/tmp/ptd-evil-absolute") "no file was written at the absolute path"

let private valid = lazy (prepare "coalescent:n=5" Trace.FormatRevision)

let private withManifest (entries: Prepared list) (rest: TarEntry list) =
    file CacheArchive.ManifestName (manifestBytes (entries |> List.map entryOf)) :: rest

[<Tests>]
let tests =
    testList "cache archives" [
        testCase "a well-formed archive imports and its entry verifies" <| fun () ->
            let s = site ()
            let p = valid.Value
            let archive = Path.Combine(s.Home, "ok.tar.gz")
            writeArchive archive (withManifest [ p ] [ file ("entries/" + p.StorageKey) p.Envelope ])
            let r = s.Expect 0 [ "cache"; "import"; archive; "--json" ]
            Expect.equal ((json r.Out).GetProperty("imported").GetInt64()) 1L "one entry imported"
            let store = openStore s
            Expect.equal (getBytes store p.StorageKey) (Some p.Envelope) "stored byte for byte under its key"

        testCase "a foreign format revision is refused, the current entry beside it is imported" <| fun () ->
            let s = site ()
            let p = valid.Value
            let future = prepare "erlang:k=2" (Trace.FormatRevision + 1)
            let archive = Path.Combine(s.Home, "mixed.tar.gz")
            writeArchive archive (withManifest [ p; future ] [ file ("entries/" + p.StorageKey) p.Envelope; file ("entries/" + future.StorageKey) future.Envelope ])
            let r = s.Expect 1 [ "cache"; "import"; archive; "--json" ]
            let j = json r.Out
            Expect.equal (j.GetProperty("imported").GetInt64()) 1L "the current entry is imported"
            let refusal = j.GetProperty("refused").EnumerateArray() |> Seq.exactlyOne
            Expect.equal (refusal.GetProperty("storageKey").GetString()) future.StorageKey "the future revision is refused"
            Expect.stringContains (refusal.GetProperty("reason").GetString()) "foreign format revision" "as foreign"
            let store = openStore s
            Expect.equal (keysOf store) (set [ p.StorageKey ]) "only the current entry is in the cache"

        testCase "a tampered envelope (manifest hash differs) is refused" <| fun () ->
            let s = site ()
            let p = valid.Value
            let tampered = Array.copy p.Envelope
            tampered.[tampered.Length - 1] <- tampered.[tampered.Length - 1] ^^^ 0xFFuy
            let archive = Path.Combine(s.Home, "tampered.tar.gz")
            writeArchive archive (withManifest [ p ] [ file ("entries/" + p.StorageKey) tampered ])
            let r = s.Expect 1 [ "cache"; "import"; archive ]
            Expect.stringContains r.Out "SHA-256 differs" "the refusal says why"
            let store = openStore s
            Expect.isEmpty (keysOf store) "nothing imported"

        testCase "../ in a member name" (refused "'..' segment" (fun _ ->
            withManifest [ valid.Value ] [ file "../../evil" [| 1uy |] ]))
        testCase "an absolute member name" (refused "absolute path" (fun _ ->
            withManifest [ valid.Value ] [ file "/tmp/ptd-evil-absolute" [| 1uy |] ]))
        testCase "a symbolic link" (refused "SymbolicLink" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ PaxTarEntry(TarEntryType.SymbolicLink, "entries/" + p.StorageKey, LinkName = "/etc/passwd") :> TarEntry ]))
        testCase "a hard link" (refused "HardLink" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ PaxTarEntry(TarEntryType.HardLink, "entries/" + p.StorageKey, LinkName = "../../evil") :> TarEntry ]))
        testCase "a character device" (refused "CharacterDevice" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ PaxTarEntry(TarEntryType.CharacterDevice, "entries/" + p.StorageKey, DeviceMajor = 1, DeviceMinor = 3) :> TarEntry ]))
        testCase "a member larger than its manifest entry declares" (refused "more than the" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ file ("entries/" + p.StorageKey) (Array.append p.Envelope (Array.zeroCreate (4 <<< 20))) ]))
        testCase "a member the manifest does not list" (refused "not listed in the manifest" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ file ("entries/" + p.StorageKey) p.Envelope; file "entries/trace/r1/g1/abcdef" [| 1uy; 2uy |] ]))
        testCase "a member given twice" (refused "appears twice" (fun _ ->
            let p = valid.Value
            withManifest [ p ] [ file ("entries/" + p.StorageKey) p.Envelope; file ("entries/" + p.StorageKey) p.Envelope ]))
        testCase "no manifest first" (refused "expected manifest.json" (fun _ ->
            let p = valid.Value
            [ file ("entries/" + p.StorageKey) p.Envelope ]))
        testCase "a decompression bomb in the headers" (refused "decompression bomb" (fun _ ->
            // 80 MB of one letter compresses to ~80 KB; the reader stops at the manifest's allowance.
            let huge = Dictionary<string, string>()
            huge.["comment"] <- String('a', 80_000_000)
            [ PaxTarEntry(TarEntryType.RegularFile, CacheArchive.ManifestName, huge, DataStream = new MemoryStream(manifestBytes [ entryOf valid.Value ])) :> TarEntry ]))
        testCase "not a gzip file" <| fun () ->
            let s = site ()
            let archive = Path.Combine(s.Home, "plain.tar.gz")
            File.WriteAllText(archive, "this is not gzip")
            let r = s.Ptd [ "cache"; "import"; archive ]
            Expect.equal r.Code 2 "refused"
            Expect.stringContains r.Err "not a valid cache archive" "says so"
    ]
