/// `ptd cache` as a real process against a populated cache on local disk, moto (S3) and Azurite (Azure Blob),
/// checking the effects in the store itself: entries really gone, really verified, really copied.
module Ptd.Cache.Tests.CommandTests

open System
open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Text.Json
open Expecto
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Cache.Tests.CacheEnv

let private models = [ "erlang:k=3"; "coalescent:n=6"; "rabbits:R=5" ]

let private graphOf (spec: string) = ModelSpec.build spec

let private keyOf (spec: string) = (ModelKey.compute (graphOf spec)).Hex

let private storageKey (hex: string) = $"trace/r{Trace.FormatRevision}/g1/{hex}"

let private str (e: JsonElement) (name: string) = e.GetProperty(name).GetString()

let private num (e: JsonElement) (name: string) = e.GetProperty(name).GetInt64()

let private arr (e: JsonElement) (name: string) = e.GetProperty(name).EnumerateArray() |> List.ofSeq

/// The archive's member names and sizes, read with the BCL tar reader (outside the code under test).
let private members (path: string) =
    use f = File.OpenRead path
    use z = new GZipStream(f, CompressionMode.Decompress)
    use r = new TarReader(z)
    [ let mutable e = r.GetNextEntry()
      while not (isNull e) do
          yield e.Name, e.Length
          e <- r.GetNextEntry() ]

/// The whole command walk-through on one site. `full` adds the checks that do not depend on the backend (a second
/// prewarm, the statistics ledger), run on local disk only to keep the suite short.
let private walkThrough (full: bool) (site: Site) =
    let outputs = ResizeArray<Result>()
    let ptd code args =
        let r = site.Expect code ("cache" :: args)
        outputs.Add r
        r
    let store = openStore site
    let expected = models |> List.map (fun m -> m, keyOf m) |> Map.ofList
    let traceKeys = expected |> Map.toList |> List.map (snd >> storageKey) |> Set.ofList

    // prewarm: traces recorded and stored under the shared convention (kind trace, revision, ModelKey hex).
    // (--kind traces: this walk-through counts trace entries; kernels have their own test below.)
    let r = ptd 0 ([ "prewarm" ] @ models @ [ "--kind"; "traces"; "--json" ])
    let items = arr (json r.Out) "items"
    Expect.equal (items |> List.map (fun i -> str i "outcome")) [ "stored"; "stored"; "stored" ] "every model is stored"
    Expect.equal (keysOf store) traceKeys "the store holds exactly the three trace entries"
    for m in models do
        let bytes = (getBytes store (storageKey expected.[m])).Value
        let v = CacheEnvelope.Verify(ReadOnlySpan bytes, storageKey expected.[m], 1L <<< 30)
        Expect.isTrue v.IsValid $"{m}: the stored envelope verifies"
        let t = TraceEncoding.decodeFor (TraceKey.Parse expected.[m]) v.Payload
        Expect.equal t.VertexCount (graphOf m).VertexCount $"{m}: the payload is the model's trace"
    if full then
        let again = ptd 0 [ "prewarm"; "coalescent:n=6"; "--kind"; "traces"; "--json" ]
        Expect.equal (str (arr (json again.Out) "items").Head "outcome") "present" "a second prewarm finds the entry"

    // status and list
    let s = json (ptd 0 [ "status"; "--json" ]).Out
    let tier = (arr s "tiers").Head
    Expect.equal (num tier "entries") 3L "status counts three entries"
    Expect.equal (num tier "staleEntries") 0L "none stale"
    Expect.isTrue (tier.GetProperty("health").GetProperty("isHealthy").GetBoolean()) "the tier is healthy"
    Expect.equal (str (arr tier "kinds").Head "layer") "traces" "under the traces layer"
    let listed = arr (json (ptd 0 [ "list"; "--kind"; "traces"; "--json" ]).Out) "entries" |> List.map (fun e -> str e "storageKey") |> Set.ofList
    Expect.equal listed traceKeys "list shows the three entries"

    // show by a key prefix
    let shown = arr (json (ptd 0 [ "show"; expected.["coalescent:n=6"].Substring(0, 10); "--json" ]).Out) "copies"
    Expect.equal shown.Length 1 "one copy"
    Expect.isTrue (shown.Head.GetProperty("valid").GetBoolean()) "it verifies"
    Expect.equal (shown.Head.GetProperty("content").GetProperty("vertices").GetString()) (string (graphOf "coalescent:n=6").VertexCount) "show decodes the trace"

    // verify: a damaged entry is found; --remove deletes exactly it
    let erlang = storageKey expected.["erlang:k=3"]
    let damaged = Array.copy (getBytes store erlang).Value
    damaged.[damaged.Length - 5] <- damaged.[damaged.Length - 5] ^^^ 1uy
    put store erlang damaged
    let v = json (ptd 1 [ "verify"; "--json" ]).Out
    Expect.equal (num v "checked", num v "bad") (3L, 1L) "verify reads three entries and finds one bad"
    Expect.equal (str (arr v "problems").Head "storageKey") erlang "the damaged one"
    let v2 = json (ptd 0 [ "verify"; "--remove"; "--json" ]).Out
    Expect.equal (num v2 "removed") 1L "--remove deletes it"
    Expect.equal (keysOf store) (Set.remove erlang traceKeys) "it is really gone, the others are not"

    // A version bump: entries of another revision and generation are stale, never read as current, vacuumed.
    let erlangHex = expected.["erlang:k=3"]
    let rabbitsHex = expected.["rabbits:R=5"]
    let futureKey = $"trace/r{Trace.FormatRevision + 7}/g1/{erlangHex}"
    put store futureKey (CacheEnvelope.Encode(ArtifactKind("trace", Trace.FormatRevision + 7), futureKey, "Ptd.Host/99", ReadOnlySpan("not a trace of this revision"B)))
    let oldGen = $"trace/r{Trace.FormatRevision}/g0/{rabbitsHex}"
    put store oldGen [| 0uy; 1uy; 2uy |]
    put store "notes/readme" "a file that is not a cache entry"B
    let st = (arr (json (ptd 0 [ "status"; "--json" ]).Out) "tiers").Head
    Expect.equal (num st "staleEntries") 2L "status sees the two stale entries"
    let pre = arr (json (ptd 0 [ "prewarm"; "erlang:k=3"; "--kind"; "traces"; "--json" ]).Out) "items"
    Expect.equal (str pre.Head "outcome") "stored" "the other revision's entry was not taken for the current one"
    let vac = json (ptd 0 [ "vacuum"; "--stale"; "--json" ]).Out
    Expect.equal (num vac "entriesRemoved") 2L "vacuum --stale removes both"
    Expect.equal (keysOf store) (Set.add "notes/readme" traceKeys) "stale entries gone; current entries and the foreign object stay"

    // export; clear needs --yes when stdin is not a terminal; import restores byte for byte.
    let archive = Path.Combine(site.Home, "cache.tar.gz")
    let ex = json (ptd 0 [ "export"; "--to"; archive; "--kind"; "traces"; "--json" ]).Out
    Expect.equal (num ex "entries") 3L "three entries exported"
    let m = members archive
    Expect.equal (fst m.Head) "manifest.json" "the manifest comes first"
    Expect.equal (m.Tail |> List.map fst |> Set.ofList) (traceKeys |> Set.map (fun k -> "entries/" + k)) "one member per entry"
    let before = traceKeys |> Set.toList |> List.map (fun k -> k, (getBytes store k).Value)
    let refused = site.Ptd [ "cache"; "clear"; "--traces" ]
    Expect.equal refused.Code 2 "clear without --yes and without a terminal is refused"
    Expect.stringContains refused.Err "--yes" "the message says how to proceed"
    Expect.equal (keysOf store) (Set.add "notes/readme" traceKeys) "nothing was deleted"
    let cl = json (ptd 0 [ "clear"; "--traces"; "--yes"; "--json" ]).Out
    Expect.equal (arr cl "tiers" |> List.sumBy (fun t -> num t "entriesRemoved")) 3L "clear removes three"
    Expect.equal (keysOf store) (set [ "notes/readme" ]) "only the foreign object is left"
    let im = json (ptd 0 [ "import"; archive; "--json" ]).Out
    Expect.equal (num im "imported") 3L "three imported"
    for k, bytes in before do
        Expect.equal (getBytes store k) (Some bytes) $"{k} is back byte for byte"

    // sync to another store, resumable: a second run copies nothing
    let mirrorDir = Path.Combine(site.Home, "mirror")
    let mirror = "file://" + mirrorDir
    let sy = json (ptd 0 [ "sync"; "--from"; site.Location; "--to"; mirror; "--json" ]).Out
    Expect.equal (num sy "copied", num sy "alreadyPresent") (3L, 0L) "three copied"
    let mirrorStore = openStore { site with Location = mirror; Env = [] }
    for k, bytes in before do
        Expect.equal (getBytes mirrorStore k) (Some bytes) $"{k} copied byte for byte"
    let sy2 = json (ptd 0 [ "sync"; "--from"; site.Location; "--to"; mirror; "--json" ]).Out
    Expect.equal (num sy2 "copied", num sy2 "alreadyPresent") (0L, 3L) "a second sync only confirms"

    // vacuum by size: 0 bytes leaves no entry (each removed whole), the foreign object stays
    let vs = json (ptd 0 [ "vacuum"; "--max-size"; "0"; "--json" ]).Out
    Expect.equal (num vs "entriesRemoved") 3L "all three removed"
    Expect.equal (keysOf store) (set [ "notes/readme" ]) "the tier holds no entry any more"

    // stats: the runs that used the cache (prewarm) left counters in the ledger
    if full then
        let stats = json (ptd 0 [ "stats"; "--json" ]).Out
        let kinds = stats.GetProperty("counters").GetProperty("kinds").EnumerateArray() |> List.ofSeq
        Expect.isGreaterThanOrEqual (num kinds.Head "requests") 5L "the prewarm lookups were counted across processes"
        ptd 0 [ "stats"; "--reset" ] |> ignore
        Expect.isFalse (File.Exists(Path.Combine(site.Home, "stats.json"))) "reset removes the ledger"
    outputs |> List.ofSeq

/// Secrets the site's plugin reads that must never be printed.
let private secretsOf (site: Site) =
    site.Env
    |> List.collect (fun (_, v) ->
        let key = Text.RegularExpressions.Regex.Match(v, "AccountKey=([^;]+)")
        if key.Success then [ key.Groups.[1].Value ] elif v.StartsWith "moto-secret" then [ v ] else [])

let private onSite (full: bool) (mk: unit -> Site) () =
    let site = mk ()
    let outputs = walkThrough full site
    for secret in secretsOf site do
        for o in outputs do
            Expect.isFalse (o.Out.Contains secret || o.Err.Contains secret) "no credential is ever printed"

/// The documented key of a likelihood kernel (docs/inference.md): SHA-256 of its canonical text, computed here.
let private kernelDigest (modelHex: string) (kind: string) (layout: string) =
    let text = $"ptd-kernel|trace={modelHex}|kind={kind}|parameters=1|transform=theta|layout={layout}|generator=2"
    Convert.ToHexStringLower(Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text))

/// `ptd infer` with a tiny SVGD run: only where the likelihood kernel came from matters here.
let private inferVerbose (site: Site) (data: string) =
    site.Expect 0 [ "infer"; "coalescent:n=6"; "--data"; data; "--prior"; "gamma:2,1"; "--particles"; "4"; "--iterations"; "2"; "--verbose" ]

let private prewarmKernels () =
    let site = localSite ()
    let store = openStore site
    let modelHex = keyOf "coalescent:n=6"
    let traceKey = storageKey modelHex
    let kernelHex = kernelDigest modelHex "ContinuousLikelihood" "times"
    let kernelKey = $"kernel/r2/g1/{kernelHex}"
    let data = Path.Combine(site.Home, "data.txt")
    File.WriteAllText(data, "0.4\n1.1\n0.7\n2.3\n0.9\n")

    // Without prewarm, infer builds the kernel (the control: the message below must depend on prewarm).
    let control = localSite ()
    let cold = inferVerbose control data
    Expect.stringContains cold.Err "likelihood kernel: ContinuousLikelihood kernel" "infer --verbose names the likelihood kernel"
    Expect.stringContains cold.Err ": built (" "on an empty cache the kernel is built"

    // A bad setting fails the whole prewarm up front: nothing is written.
    for args, message in [ [ "--theta-dim"; "2" ], "--theta-dim 2 does not fit model 'coalescent:n=6'"
                           [ "--data-layout"; "counts" ], "--data-layout counts does not fit model 'coalescent:n=6'"
                           [ "--data-layout"; "pictures" ], "unknown data layout 'pictures'" ] do
        let r = site.Ptd([ "cache"; "prewarm"; "coalescent:n=6" ] @ args)
        Expect.equal r.Code 2 $"prewarm {String.Join(' ', args)} is bad input (stderr: {r.Err})"
        Expect.stringContains r.Err message "and says why"
    Expect.isEmpty (keysOf store) "nothing was written by the refused prewarms"

    // prewarm fills layers 1 and 2 and reports both (JSON).
    let doc = json (site.Expect 0 [ "cache"; "prewarm"; "coalescent:n=6"; "--theta-dim"; "1"; "--data-layout"; "times"; "--json" ]).Out
    let items = arr doc "items" |> List.map (fun i -> str i "layer", str i "outcome", str i "key")
    Expect.equal items [ "traces", "stored", modelHex; "kernels", "stored", kernelHex ] "a trace and a likelihood kernel stored, under their content keys"
    Expect.equal (num (doc.GetProperty "summary") "stored") 2L "the summary counts both"
    Expect.equal (keysOf store) (set [ traceKey; kernelKey ]) "the store holds exactly the trace and the kernel"
    let v = CacheEnvelope.Verify(ReadOnlySpan (getBytes store kernelKey).Value, kernelKey, 1L <<< 30)
    Expect.isTrue v.IsValid "the kernel's envelope verifies"
    Expect.equal (Text.Encoding.ASCII.GetString(v.Payload, 0, 8)) "PTDKERNL" "and holds a persisted kernel"

    // list --kind kernels shows it; show describes it; a model without parameters is skipped, not failed.
    let listed = arr (json (site.Expect 0 [ "cache"; "list"; "--kind"; "kernels"; "--json" ]).Out) "entries" |> List.map (fun e -> str e "storageKey")
    Expect.equal listed [ kernelKey ] "ptd cache list --kind kernels shows the kernel entry"
    let human = (site.Expect 0 [ "cache"; "list"; "--kind"; "kernels" ]).Out
    Expect.stringContains human (kernelHex) "also in the table"
    let shown = (site.Expect 0 [ "cache"; "show"; kernelHex.Substring(0, 12) ]).Out
    Expect.stringContains shown "ContinuousLikelihood" "show decodes the kernel's header"
    let again = (site.Expect 0 [ "cache"; "prewarm"; "coalescent:n=6"; "erlang:k=2,rate=3" ]).Out
    Expect.stringContains again "already in tier" "a second prewarm finds both entries"
    Expect.stringContains again "no parameters" "a model without parameters has no kernel: skipped, with the reason"
    Expect.stringContains again "stored 1 entries" "only the new model's trace was stored"

    // ptd infer on the same model and data layout now loads the kernel from the cache instead of building it.
    let warm = inferVerbose site data
    Expect.stringContains warm.Err "likelihood kernel: ContinuousLikelihood kernel" "infer --verbose names the likelihood kernel"
    Expect.stringContains warm.Err "loaded from cache tier" "after prewarm it comes from the cache"
    Expect.stringContains warm.Err "0 build(s)" "and nothing is built"

    // Layer 3 is not built: prewarm and --kind code say so and succeed.
    let code = site.Expect 0 [ "cache"; "prewarm"; "coalescent:n=6"; "--kind"; "code"; "--json" ]
    let note = (arr (json code.Out) "notes" |> List.map (fun n -> n.GetString()) |> List.exactlyOne)
    Expect.stringContains note "deliberately not built" "prewarm --kind code explains that layer 3 is not built"
    Expect.stringContains note "PERFORMANCE.md" "and where the reason is documented"
    Expect.isEmpty (arr (json code.Out) "items") "and does nothing else"
    let listCode = site.Expect 0 [ "cache"; "list"; "--kind"; "code" ]
    Expect.stringContains listCode.Err "deliberately not built" "list --kind code explains the empty layer"
    Expect.stringContains listCode.Out "0 entries" "and lists nothing"
    let status = (site.Expect 0 [ "cache"; "status" ]).Out
    Expect.stringContains status "code (kind code, not built by this version" "status says so too"
    Expect.stringContains status "kernels (kind kernel, revision 2)" "and gives the kernel layer's revision"

[<Tests>]
let tests =
    testList "ptd cache" [
        testCase "every command on local disk" (onSite true localSite)
        testCase "every command on moto (S3)" (onSite false motoSite)
        testCase "every command on Azurite (Azure Blob)" (onSite false azuriteSite)
        testCase "prewarm fills traces and kernels; infer then loads its kernel from the cache; layer 3 is explained" prewarmKernels

        testCase "bad input exits with 2 and says what is wrong" <| fun () ->
            let site = localSite ()
            let cases =
                [ [ "cache" ], "missing sub-command"
                  [ "cache"; "frobnicate" ], "unknown sub-command"
                  [ "cache"; "vacuum" ], "say what to vacuum"
                  [ "cache"; "vacuum"; "--max-size"; "ten" ], "is not a size"
                  [ "cache"; "vacuum"; "--max-age"; "soon" ], "is not a duration"
                  [ "cache"; "list"; "--kind"; "pictures" ], "not a cache layer"
                  [ "cache"; "clear"; "--all"; "--yes"; "--tier"; "nosuch" ], "no cache tier is named 'nosuch'"
                  [ "cache"; "show"; "ab" ], "at least its first 6"
                  [ "cache"; "import"; Path.Combine(site.Home, "missing.tar.gz") ], "does not exist"
                  [ "cache"; "sync"; "--from"; "0-file"; "--to"; "nowhere" ], "neither a tier name"
                  [ "cache"; "prewarm"; "nosuchmodel:n=3" ], "neither a file nor a built-in model"
                  [ "cache"; "status"; "--bogus" ], "unknown option" ]
            for args, message in cases do
                let r = site.Ptd args
                Expect.equal r.Code 2 $"ptd {String.Join(' ', args)} exits with 2 (stderr: {r.Err})"
                Expect.stringContains r.Err message $"ptd {String.Join(' ', args)} explains itself"

        testCase "plugins lists the shipped storage plugins and their schemes" <| fun () ->
            let r = (localSite ()).Expect 0 [ "cache"; "plugins"; "--json" ]
            let schemes = arr (json r.Out) "providers" |> List.map (fun p -> str p "scheme") |> Set.ofList
            Expect.isTrue (Set.isSubset (set [ "file"; "s3"; "azblob" ]) schemes) $"file, s3 and azblob are found ({schemes})"
    ]
