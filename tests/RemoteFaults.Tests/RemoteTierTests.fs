/// The real tiered cache (a local disk tier + an S3 or Azure tier) behind a fault-injecting proxy, driven by the real
/// TraceStore over real models. Every scenario checks: each result equals the dense oracle; the cache's counters say
/// what happened; damaged remote entries are rejected and never copied into the local tier; and waiting on a broken
/// remote costs at most (timeout × remote calls before the cool-down) plus slack.
module Ptd.RemoteFaults.Tests.RemoteTierTests

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.Threading.Tasks
open Expecto
open Ptd.Core
open Ptd.Storage
open Ptd.Host.Caching
open Ptd.Host.Traces
open Ptd.RemoteFaults.Tests.Env
open Ptd.RemoteFaults.Tests.FaultProxy
open Ptd.RemoteFaults.Tests.Oracle

type Backend =
    | S3
    | Azure

/// One remote location reachable through a proxy and directly (the direct route is for setting up and checking).
type Remote =
    { Backend: Backend
      Proxy: FaultProxy
      ViaProxy: string
      Direct: string
      Context: BlobStoreContext }

    interface IDisposable with
        member r.Dispose() = (r.Proxy :> IDisposable).Dispose()

let private bucket = "ptd-remote-faults"

/// A fresh prefix on the backend, behind a new proxy. `retries` is the SDK's own retry count (0: every fault reaches
/// the cache, so the counters are exact).
let remoteFor (backend: Backend) (scenario: string) (retries: int) =
    let prefix = uniqueSegment scenario
    match backend with
    | S3 ->
        let moto = motoEndpoint ()
        let proxy = new FaultProxy(moto)
        let loc (ep: Uri) =
            let e = Uri.EscapeDataString(ep.GetLeftPart(UriPartial.Authority))
            $"s3://{bucket}/{prefix}?endpoint={e}&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET&retries={retries}"
        { Backend = S3; Proxy = proxy; ViaProxy = loc proxy.Endpoint; Direct = loc moto; Context = contextWith [] }
    | Azure ->
        let conn, blob = azurite ()
        let proxy = new FaultProxy(blob)
        let proxied = conn.Replace(blob.GetLeftPart(UriPartial.Authority), proxy.Endpoint.GetLeftPart(UriPartial.Authority))
        let loc var = $"azblob://{bucket}/{prefix}?connectionStringEnv={var}&create=true&retries={retries}"
        { Backend = Azure; Proxy = proxy; ViaProxy = loc "PTD_TEST_PROXY_AZURITE"; Direct = loc "PTD_TEST_DIRECT_AZURITE"
          Context = contextWith [ "PTD_TEST_PROXY_AZURITE", proxied; "PTD_TEST_DIRECT_AZURITE", conn ] }

/// A cache: an optional local disk tier ("local"), then the remote tier ("remote") through the proxy.
type Rig =
    { Cache: IArtifactCache
      Store: TraceStore
      Time: ManualTime
      LocalDir: string option
      Log: ConcurrentQueue<string> }

    member r.Remote = r.Cache.GetStatistics().For("remote", "trace")
    member r.Local = r.Cache.GetStatistics().For("local", "trace")
    member r.Logged = String.Join("\n", r.Log)

    interface IDisposable with
        member r.Dispose() =
            r.Store.Dispose()
            r.Cache.DisposeAsync().AsTask() |> runUnit

let rigWith (configure: ArtifactCacheOptions -> unit) (remote: Remote) (location: string) (withLocal: bool) (timeout: TimeSpan) (coolDown: TimeSpan) =
    let time = ManualTime(DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    let log = ConcurrentQueue<string>()
    let o = ArtifactCacheOptions(AutoEvict = false, StoreContext = remote.Context, ThrowOnTierError = true, TimeProvider = time, Log = Action<string>(log.Enqueue))
    configure o
    let localDir = if withLocal then Some(tempDir "local") else None
    localDir |> Option.iter (fun d -> o.Tiers.Add(CacheTierOptions(Location = $"file://{d}?fsync=false", Name = "local")))
    o.Tiers.Add(CacheTierOptions(Location = location, Name = "remote", Timeout = Nullable timeout, CoolDown = Nullable coolDown))
    let cache = ArtifactCache.Create(o, registry.Value)
    { Cache = cache; Store = new TraceStore(cache); Time = time; LocalDir = localDir; Log = log }

let rig remote location withLocal timeout coolDown = rigWith ignore remote location withLocal timeout coolDown

/// The result of running models through a store: how many disagreed with the oracle, where they came from, how long.
type RunResult =
    { Lookups: int
      Wrong: int
      Hits: int
      Recorded: int
      Elapsed: TimeSpan }

let runCases (store: TraceStore) (cases: Case list) =
    task {
        let watch = Stopwatch.StartNew()
        let mutable wrong = 0
        let mutable hits = 0
        let mutable recorded = 0
        for c in cases do
            let! l = store.GetOrRecordAsync c.Graph
            if not (agrees c l.Trace) then wrong <- wrong + 1
            if l.Origin = TraceOrigin.CacheHit then hits <- hits + 1 else recorded <- recorded + 1
        return { Lookups = cases.Length; Wrong = wrong; Hits = hits; Recorded = recorded; Elapsed = watch.Elapsed }
    }

let generous = TimeSpan.FromSeconds 10.0
let longCoolDown = TimeSpan.FromMinutes 5.0

/// Writes every workload trace to the remote prefix directly (not through the proxy).
let populate (remote: Remote) (cases: Case list) =
    task {
        use r = rig remote remote.Direct false generous longCoolDown
        let! res = runCases r.Store cases
        Expect.equal res.Wrong 0 "the populating run is correct"
        Expect.equal r.Remote.Writes (int64 cases.Length) $"every trace written to the remote:\n{r.Logged}"
    }

/// One cheap call through the proxy so that SDK start-up (JIT, first connection) is not measured as fault latency.
let warm (remote: Remote) =
    task {
        let store = openStore remote.ViaProxy remote.Context
        let! _ = store.GetAsync(BlobKey.Parse "warm-up/none")
        do! store.DisposeAsync()
    }

/// Every local entry decodes as a valid envelope whose trace agrees with the oracle (nothing damaged got in).
let checkLocalEntries (r: Rig) (cases: Case list) =
    task {
        let store = openStore $"file://{r.LocalDir.Value}" (contextWith [])
        let! entries = store.ListAsync ""
        let mutable valid = 0
        for e in entries do
            let! got = store.GetAsync e.Key
            let d = CacheEnvelope.Decode(ReadOnlySpan got.Content, TraceStore.Kind, e.Key.Value, 1L <<< 30)
            Expect.isTrue d.IsValid $"local entry {e.Key} is a valid envelope ({d.Reason}: {d.Detail})"
            let matching =
                cases |> List.filter (fun c -> e.Key.Value.EndsWith(ModelKey.compute(c.Graph).Hex, StringComparison.Ordinal))
            for c in matching do
                Expect.isTrue (agrees c (TraceEncoding.decodeForModel c.Graph d.Payload)) $"local entry of {c.Name} agrees with the oracle"
            valid <- valid + 1
        do! store.DisposeAsync()
        return valid
    }

/// Entries under the remote prefix, read directly, that are valid envelopes.
let remoteValidEntries (remote: Remote) =
    task {
        let store = openStore remote.Direct remote.Context
        let! entries = store.ListAsync ""
        let mutable valid = 0
        for e in entries do
            let! got = store.GetAsync e.Key
            if (CacheEnvelope.Decode(ReadOnlySpan got.Content, TraceStore.Kind, e.Key.Value, 1L <<< 30)).IsValid then valid <- valid + 1
        do! store.DisposeAsync()
        return entries.Count, valid
    }

let private name b = match b with S3 -> "s3/moto" | Azure -> "azblob/azurite"

let private countersText (s: TierStatistics) =
    $"hits {s.Hits}, not-found {s.MissesNotFound}, rejected {s.Rejected}, errors {s.MissesError}, timeouts {s.MissesTimeout}, skipped {s.MissesSkipped}, writes {s.Writes}, writes skipped {s.WritesSkipped}, error ops {s.Errors}, timeout ops {s.Timeouts}"

let scenarios (backend: Backend) =
    let all = workload
    let half = all.Length / 2
    let first, second = List.splitAt half all
    let tag = name backend
    [
        testT "pass-through: remote hits are back-filled locally, results agree" <| fun () -> task {
            use remote = remoteFor backend "pass" 0
            do! populate remote all
            use r = rig remote remote.ViaProxy true generous longCoolDown
            let! res = runCases r.Store all
            let! again = runCases r.Store all
            Expect.equal (res.Wrong, again.Wrong) (0, 0) "no wrong result"
            Expect.equal (r.Remote.Hits, r.Local.Backfills) (int64 all.Length, int64 all.Length) $"served by the remote, back-filled:\n{r.Logged}"
            Expect.equal r.Local.Hits (int64 all.Length) "the second run is served locally"
            let! localValid = checkLocalEntries r all
            Expect.equal localValid all.Length "every back-filled entry is valid"
            note $"{tag} | pass-through | {2 * all.Length} lookups, wrong 0 | remote: {countersText r.Remote} | elapsed {res.Elapsed.TotalSeconds:F2} s"
        }

        testT "down at start: every lookup recorded correctly, one refused call then cool-down; the remote is used again after it" <| fun () -> task {
            use remote = remoteFor backend "down" 0
            do! warm remote
            remote.Proxy.SetMode Down
            let timeout = TimeSpan.FromSeconds 2.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! res = runCases r.Store first
            Expect.equal res.Wrong 0 "no wrong result"
            Expect.equal res.Recorded first.Length "all recorded"
            let s = r.Remote
            Expect.equal (s.MissesError, s.MissesTimeout, s.MissesSkipped) (1L, 0L, int64 (first.Length - 1)) $"one refused read, then skipped ({countersText s}):\n{r.Logged}"
            Expect.equal (s.Writes, s.WritesSkipped) (0L, int64 first.Length) "no write attempted during the cool-down"
            Expect.isLessThan res.Elapsed.TotalSeconds (timeout.TotalSeconds + 3.0) "a refused connection costs less than one timeout"
            Expect.equal r.Local.Writes (int64 first.Length) "the local tier still stores"
            // Recovery: the server is back and the cool-down has passed.
            remote.Proxy.SetMode PassThrough
            r.Time.Advance(longCoolDown + TimeSpan.FromSeconds 1.0)
            let! after = runCases r.Store second
            Expect.equal after.Wrong 0 "no wrong result after recovery"
            Expect.equal r.Remote.Writes (int64 second.Length) $"the remote stores again:\n{r.Logged}"
            let! count, valid = remoteValidEntries remote
            Expect.equal (count, valid) (second.Length, second.Length) "the remote holds exactly the post-recovery entries, all valid"
            note $"{tag} | down at start, then recovered | {all.Length} lookups, wrong 0 | remote: {countersText r.Remote} | outage run {res.Elapsed.TotalSeconds:F2} s (bound {timeout.TotalSeconds + 3.0:F1} s)"
        }

        testT "stopping mid-run: hits until the stop, then one failed call, cool-down, correct recordings" <| fun () -> task {
            use remote = remoteFor backend "stop" 0
            do! populate remote all
            let timeout = TimeSpan.FromSeconds 2.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! before = runCases r.Store first
            remote.Proxy.SetMode Down
            let! after = runCases r.Store second
            Expect.equal (before.Wrong, after.Wrong) (0, 0) "no wrong result"
            Expect.equal (before.Hits, after.Recorded) (first.Length, second.Length) "hits before, recordings after"
            let s = r.Remote
            Expect.equal (s.Hits, s.MissesError, s.MissesSkipped) (int64 first.Length, 1L, int64 (second.Length - 1)) $"{countersText s}:\n{r.Logged}"
            Expect.equal r.Local.Backfills (int64 first.Length) "only the good hits were back-filled"
            Expect.isLessThan after.Elapsed.TotalSeconds (timeout.TotalSeconds + 3.0) "bounded by one timeout"
            note $"{tag} | stopped mid-run | {all.Length} lookups, wrong 0 | remote: {countersText s} | after-stop run {after.Elapsed.TotalSeconds:F2} s (bound {timeout.TotalSeconds + 3.0:F1} s)"
        }

        testT "slow below the timeout: the remote still serves, the latency shows" <| fun () -> task {
            use remote = remoteFor backend "slow" 0
            do! populate remote all
            do! warm remote
            let latency = TimeSpan.FromMilliseconds 150.0
            remote.Proxy.SetMode(Slow latency)
            use r = rig remote remote.ViaProxy true (TimeSpan.FromSeconds 3.0) longCoolDown
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            Expect.equal (r.Remote.Hits, r.Remote.Timeouts) (int64 all.Length, 0L) $"all served, no timeout:\n{r.Logged}"
            Expect.isGreaterThanOrEqual res.Elapsed.TotalSeconds (latency.TotalSeconds * float all.Length) "the injected latency was paid"
            Expect.isLessThan res.Elapsed.TotalSeconds (latency.TotalSeconds * float all.Length + 3.0) "and not much more"
            note $"{tag} | slow 150 ms (timeout 3 s) | {all.Length} lookups, wrong 0 | remote: {countersText r.Remote} | elapsed {res.Elapsed.TotalSeconds:F2} s"
        }

        testT "slow beyond the timeout: one timed-out read, then cool-down; elapsed within one timeout plus slack" <| fun () -> task {
            use remote = remoteFor backend "slower" 0
            do! populate remote all
            do! warm remote
            remote.Proxy.SetMode(Slow(TimeSpan.FromSeconds 5.0))
            let timeout = TimeSpan.FromMilliseconds 500.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesTimeout, s.MissesSkipped, s.WritesSkipped) (1L, int64 (all.Length - 1), int64 all.Length) $"{countersText s}:\n{r.Logged}"
            let bound = timeout.TotalSeconds * 1.0 + 2.0
            Expect.isLessThan res.Elapsed.TotalSeconds bound "bounded by the timeout"
            note $"{tag} | slow 5 s (timeout 0.5 s, cool-down on) | {all.Length} lookups, wrong 0 | remote: {countersText s} | elapsed {res.Elapsed.TotalSeconds:F2} s (bound 1 × 0.5 s + 2 s)"
        }

        testT "black-holed, cool-down on: one timeout, skipped afterwards, used again after the cool-down" <| fun () -> task {
            use remote = remoteFor backend "hole" 0
            do! warm remote
            remote.Proxy.SetMode BlackHole
            let timeout = TimeSpan.FromMilliseconds 600.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! res = runCases r.Store first
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesTimeout, s.Timeouts, s.MissesSkipped, s.WritesSkipped) (1L, 1L, int64 (first.Length - 1), int64 first.Length) $"{countersText s}:\n{r.Logged}"
            let bound = timeout.TotalSeconds * 1.0 + 2.0
            Expect.isGreaterThanOrEqual res.Elapsed.TotalSeconds (timeout.TotalSeconds * 0.9) "the timeout was waited for"
            Expect.isLessThan res.Elapsed.TotalSeconds bound "bounded by timeout × calls before the cool-down"
            Expect.isGreaterThanOrEqual remote.Proxy.Counters.BlackHoled 1 "the proxy swallowed the request"
            let remoteTier () = r.Cache.Tiers |> Seq.find (fun t -> t.Name = "remote")
            Expect.equal (remoteTier ()).CoolingDownUntil (Nullable(r.Time.GetUtcNow() + longCoolDown)) "the tier reports its cool-down"
            let said = r.Log |> Seq.filter (fun m -> m.Contains "cache tier remote" && m.Contains "no answer within 600 ms") |> Seq.length
            Expect.equal said 1 $"the timeout is logged once, not once per skipped call:\n{r.Logged}"
            remote.Proxy.SetMode PassThrough
            r.Time.Advance(longCoolDown + TimeSpan.FromSeconds 1.0)
            Expect.isFalse (remoteTier ()).CoolingDownUntil.HasValue "the cool-down is over"
            let! after = runCases r.Store second
            Expect.equal after.Wrong 0 "correct after recovery"
            Expect.equal (r.Remote.Writes, r.Remote.MissesNotFound) (int64 second.Length, int64 second.Length) $"the remote is read and written again:\n{r.Logged}"
            note $"{tag} | black-holed, cool-down 5 min | {first.Length} lookups, wrong 0 | remote: {countersText s} | elapsed {res.Elapsed.TotalSeconds:F2} s (bound 1 × {timeout.TotalSeconds:F1} s + 2 s); after recovery: {countersText r.Remote}"
        }

        testT "black-holed, no cool-down: every call times out; elapsed within timeout × calls plus slack" <| fun () -> task {
            use remote = remoteFor backend "hole0" 0
            do! warm remote
            remote.Proxy.SetMode BlackHole
            let timeout = TimeSpan.FromMilliseconds 300.0
            let cases = List.take 3 all
            use r = rig remote remote.ViaProxy true timeout TimeSpan.Zero
            let! res = runCases r.Store cases
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            // Each lookup: one read (times out), then one write of the recording (times out).
            let calls = 2 * cases.Length
            Expect.equal (s.MissesTimeout, s.Timeouts) (int64 cases.Length, int64 calls) $"{countersText s}:\n{r.Logged}"
            let bound = timeout.TotalSeconds * float calls + 2.0
            Expect.isLessThan res.Elapsed.TotalSeconds bound "bounded by timeout × calls"
            Expect.isGreaterThanOrEqual res.Elapsed.TotalSeconds (timeout.TotalSeconds * float calls * 0.9) "every timeout was waited for"
            Expect.equal r.Local.Writes (int64 cases.Length) "the local tier stored every recording"
            note $"{tag} | black-holed, no cool-down | {cases.Length} lookups, wrong 0 | remote: {countersText s} | elapsed {res.Elapsed.TotalSeconds:F2} s (bound {calls} × {timeout.TotalSeconds:F1} s + 2 s = {bound:F1} s)"
        }

        testT "trickled bodies (headers at once, 16 bytes per 100 ms): one timed-out read, cool-down; elapsed within one timeout plus slack" <| fun () -> task {
            use remote = remoteFor backend "trickle" 0
            do! populate remote all
            do! warm remote
            remote.Proxy.SetMode(Trickle(16, TimeSpan.FromMilliseconds 100.0))
            let timeout = TimeSpan.FromSeconds 1.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesTimeout, s.MissesSkipped, s.Hits) (1L, int64 (all.Length - 1), 0L) $"{countersText s}:\n{r.Logged}"
            Expect.equal r.Local.Backfills 0L "nothing back-filled"
            let bound = timeout.TotalSeconds + 2.0
            Expect.isLessThan res.Elapsed.TotalSeconds bound "a body that never finishes is bounded by the timeout too"
            Expect.isGreaterThanOrEqual remote.Proxy.Counters.Trickled 1 "the proxy trickled a body"
            note $"{tag} | trickled body (16 B / 100 ms, timeout 1 s) | {all.Length} lookups, wrong 0 | remote: {countersText s} | elapsed {res.Elapsed.TotalSeconds:F2} s (bound 1 × 1 s + 2 s)"
        }

        testT "black-holed under concurrent lookups: the waits overlap; elapsed within one timeout plus slack" <| fun () -> task {
            use remote = remoteFor backend "holepar" 0
            do! warm remote
            remote.Proxy.SetMode BlackHole
            let timeout = TimeSpan.FromMilliseconds 800.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let watch = Stopwatch.StartNew()
            let! results = all |> List.map (fun c -> runCases r.Store [ c ]) |> Task.WhenAll
            let elapsed = watch.Elapsed
            Expect.equal (results |> Array.sumBy (fun x -> x.Wrong)) 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesTimeout + s.MissesSkipped) (int64 all.Length) $"every read timed out or was skipped ({countersText s}):\n{r.Logged}"
            Expect.isGreaterThanOrEqual s.MissesTimeout 1L "at least one read waited"
            let bound = timeout.TotalSeconds + 2.0
            Expect.isLessThan elapsed.TotalSeconds bound "concurrent waits overlap"
            note $"{tag} | black-holed, {all.Length} concurrent lookups | wrong 0 | remote: {countersText s} | elapsed {elapsed.TotalSeconds:F2} s (bound 1 × {timeout.TotalSeconds:F1} s + 2 s)"
        }

        testT "black-holed, caller cancels: the wait ends at the caller's cancellation, not at the tier timeout; later lookups work" <| fun () -> task {
            use remote = remoteFor backend "cancel" 0
            do! warm remote
            remote.Proxy.SetMode BlackHole
            use r = rig remote remote.ViaProxy true generous longCoolDown
            let c = List.head all
            use cts = new Threading.CancellationTokenSource(TimeSpan.FromMilliseconds 300.0)
            let watch = Stopwatch.StartNew()
            let! outcome =
                task {
                    try
                        let! _ = r.Store.GetOrRecordAsync(c.Graph, cts.Token)
                        return "completed"
                    with
                    | :? OperationCanceledException -> return "cancelled"
                    | e -> return e.GetType().Name
                }
            let waited = watch.Elapsed
            Expect.equal outcome "cancelled" "the caller's cancellation is what ends the call"
            Expect.isLessThan waited.TotalSeconds 2.0 "well before the 10 s tier timeout"
            Expect.equal (r.Remote.MissesTimeout, r.Remote.MissesError) (0L, 0L) "a cancelled wait is not a tier failure"
            remote.Proxy.SetMode PassThrough
            let! after = runCases r.Store all
            Expect.equal after.Wrong 0 "later lookups are correct"
            Expect.equal r.Remote.MissesNotFound (int64 all.Length) $"the remote is asked again (no stale flight, no cool-down):\n{r.Logged}"
            note $"{tag} | black-holed, caller cancels after 0.3 s (tier timeout 10 s) | 1 + {all.Length} lookups, wrong 0 | cancelled after {waited.TotalSeconds:F2} s; remote: {countersText r.Remote}"
        }

        testT "uploads answered with HTTP 500: counted write errors, nothing stored remotely, results correct" <| fun () -> task {
            use remote = remoteFor backend "putfail" 0
            do! warm remote
            remote.Proxy.SetMode(FailWrites(500, 1000))
            use r = rig remote remote.ViaProxy true generous TimeSpan.Zero
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesNotFound, s.Writes, s.Errors) (int64 all.Length, 0L, int64 all.Length) $"reads fine, every write failed ({countersText s}):\n{r.Logged}"
            Expect.equal r.Local.Writes (int64 all.Length) "the local tier stored every recording"
            Expect.equal remote.Proxy.Counters.ErrorsServed all.Length "one failed upload per recording"
            let! count, _ = remoteValidEntries remote
            Expect.equal count 0 "nothing was stored remotely"
            note $"{tag} | uploads answered HTTP 500 (no cool-down) | {all.Length} lookups, wrong 0 | remote: {countersText s}"
        }

        testT "uploads corrupted in transit: never stored as valid-looking data; a later reader gets only correct results" <| fun () -> task {
            use remote = remoteFor backend "putcorrupt" 0
            do! warm remote
            remote.Proxy.SetMode CorruptUploads
            use w = rig remote remote.ViaProxy true generous TimeSpan.Zero
            let! res = runCases w.Store all
            Expect.equal res.Wrong 0 "no wrong result while uploading"
            let ws = w.Remote
            Expect.equal (ws.Writes + ws.Errors) (int64 all.Length) $"every upload either failed or was acknowledged ({countersText ws}):\n{w.Logged}"
            remote.Proxy.SetMode PassThrough
            let! count, valid = remoteValidEntries remote
            use r = rig remote remote.ViaProxy true generous longCoolDown
            let! read = runCases r.Store all
            Expect.equal read.Wrong 0 "a later reader gets no wrong result"
            let rs = r.Remote
            Expect.equal valid 0 "no uploaded entry is a valid envelope"
            Expect.equal (rs.Hits, rs.Rejected, rs.MissesNotFound) (0L, int64 count, int64 (all.Length - count)) $"stored damaged entries are rejected, the rest are missing ({countersText rs}):\n{r.Logged}"
            note $"{tag} | uploads corrupted in transit (1 byte) | {all.Length} uploads: acknowledged {ws.Writes}, refused {ws.Errors}; stored {count}, valid 0 | later reader: wrong 0, {countersText rs}"
        }

        for label, mode, detail in
            [ "corrupted bodies (3 bytes flipped)", CorruptBodies 3, "corrupt"
              "truncated bodies (half, consistent Content-Length)", TruncateBodies, "trunc" ] do
            testT $"{label}: every remote entry rejected, never back-filled, recomputed and repaired" <| fun () -> task {
                use remote = remoteFor backend detail 0
                do! populate remote all
                remote.Proxy.SetMode mode
                use r = rig remote remote.ViaProxy true generous longCoolDown
                let! res = runCases r.Store all
                Expect.equal res.Wrong 0 "no wrong result"
                Expect.equal res.Recorded all.Length "all recomputed"
                let s = r.Remote
                Expect.equal (s.Rejected, s.Hits, s.MissesError) (int64 all.Length, 0L, 0L) $"every damaged entry rejected ({countersText s}):\n{r.Logged}"
                Expect.equal r.Local.Backfills 0L "nothing back-filled from the damaged remote"
                let! localValid = checkLocalEntries r all
                Expect.equal localValid all.Length "the local tier holds only valid recomputed entries"
                Expect.equal (r.Store.GetStatistics().CacheFailures) 0L "no cache failure reached the store"
                // The remote entries were replaced by the recomputed values: a clean reader now hits.
                remote.Proxy.SetMode PassThrough
                let! count, valid = remoteValidEntries remote
                Expect.equal (count, valid) (all.Length, all.Length) "the remote was repaired"
                let reasons = s.RejectedByReason |> Seq.map (fun kv -> $"{kv.Key} {kv.Value}") |> String.concat ", "
                note $"{tag} | {label} | {all.Length} lookups, wrong 0 | remote: {countersText s} (reasons: {reasons}); local back-fills 0 | elapsed {res.Elapsed.TotalSeconds:F2} s"
            }

        testT "connection cut mid-body: a read error, cool-down, nothing back-filled" <| fun () -> task {
            use remote = remoteFor backend "cut" 0
            do! populate remote all
            remote.Proxy.SetMode CutBodies
            let timeout = TimeSpan.FromSeconds 3.0
            use r = rig remote remote.ViaProxy true timeout longCoolDown
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.Hits, s.MissesError + s.Rejected, s.MissesSkipped) (0L, 1L, int64 (all.Length - 1)) $"{countersText s}:\n{r.Logged}"
            Expect.equal r.Local.Backfills 0L "nothing back-filled"
            Expect.isLessThan res.Elapsed.TotalSeconds (timeout.TotalSeconds + 3.0) "bounded by one timeout"
            note $"{tag} | connection cut mid-body | {all.Length} lookups, wrong 0 | remote: {countersText s} | elapsed {res.Elapsed.TotalSeconds:F2} s"
        }

        testT "HTTP 500 for two requests, then recovery: two failed reads (each followed by a cool-down), then hits" <| fun () -> task {
            use remote = remoteFor backend "err" 0
            do! populate remote all
            do! warm remote
            remote.Proxy.SetMode(Errors(500, 2))
            use r = rig remote remote.ViaProxy true generous longCoolDown
            let lookup i = runCases r.Store [ List.item i all ]
            let! a = lookup 0
            let! b = lookup 1
            Expect.equal (r.Remote.MissesError, r.Remote.MissesSkipped) (1L, 1L) $"one error, then skipped:\n{r.Logged}"
            r.Time.Advance(longCoolDown + TimeSpan.FromSeconds 1.0)
            let! c = lookup 2
            Expect.equal (r.Remote.MissesError, r.Remote.MissesSkipped) (2L, 1L) $"the second injected error fails the first read after the cool-down:\n{r.Logged}"
            r.Time.Advance(longCoolDown + TimeSpan.FromSeconds 1.0)
            let rest = List.skip 3 all
            let! d = runCases r.Store rest
            Expect.equal (a.Wrong + b.Wrong + c.Wrong + d.Wrong) 0 "no wrong result"
            let s = r.Remote
            Expect.equal (s.MissesError, s.Hits, d.Hits) (2L, int64 rest.Length, rest.Length) $"recovered: every later read hits ({countersText s}):\n{r.Logged}"
            Expect.equal remote.Proxy.Counters.ErrorsServed 2 "exactly the injected errors were served"
            note $"{tag} | HTTP 500 × 2 then recovery (SDK retries 0) | {all.Length} lookups, wrong 0 | remote: {countersText r.Remote}"
        }

        testT "HTTP 503 for two requests with the SDK's default retries: absorbed, every read hits" <| fun () -> task {
            use remote = remoteFor backend "retry" 2
            do! populate remote all
            do! warm remote
            remote.Proxy.SetMode(Errors(503, 2))
            use r = rig remote remote.ViaProxy true generous longCoolDown
            let! res = runCases r.Store all
            Expect.equal res.Wrong 0 "no wrong result"
            Expect.equal (r.Remote.Hits, r.Remote.MissesError) (int64 all.Length, 0L) $"the SDK retried past the errors:\n{r.Logged}"
            Expect.equal remote.Proxy.Counters.ErrorsServed 2 "the errors were served"
            note $"{tag} | HTTP 503 × 2 (SDK retries 2) | {all.Length} lookups, wrong 0 | remote: {countersText r.Remote} | elapsed {res.Elapsed.TotalSeconds:F2} s"
        }
    ]

/// Oversized bodies. They measure the process's allocations (GC.GetTotalAllocatedBytes counts every thread), so they
/// run alone: sequenced, after the parallel tests, never beside the other backend's scenarios.
let private testTAlone name body = testSequenced (testT name body)

let floodScenarios (backend: Backend) =
    let all = workload
    let tag = name backend
    // The largest entry the cache accepts in the flood scenarios; every workload trace is far smaller.
    let maxEntry = 4L <<< 20
    let readLimit = CacheEnvelope.MaxEnvelopeBytes maxEntry
    let mib (b: int64) = float b / 1048576.0
    [
    for label, detail, declare, bytes in
        [ "endless body (no Content-Length, 1 TiB offered per read)", "flood", false, 1L <<< 40
          "huge declared Content-Length (8 GiB)", "hugelen", true, 8L <<< 30 ] do
        testTAlone $"{label}: refused at the read limit, memory bounded, counted as rejections, results correct" <| fun () -> task {
            use remote = remoteFor backend detail 0
            do! populate remote all
            do! warm remote
            let small (o: ArtifactCacheOptions) = o.MaxEntryBytes <- maxEntry
            // Baseline: the same lookups recorded against an empty remote (what the flood run does besides reading).
            use empty = remoteFor backend (detail + "-base") 0
            use b = rigWith small empty empty.ViaProxy true generous longCoolDown
            let before0 = GC.GetTotalAllocatedBytes true
            let! baseRes = runCases b.Store all
            let baseline = GC.GetTotalAllocatedBytes true - before0
            Expect.equal baseRes.Recorded all.Length "the baseline records everything"
            remote.Proxy.SetMode(Flood(declare, bytes))
            use r = rigWith small remote remote.ViaProxy true generous longCoolDown
            let before = GC.GetTotalAllocatedBytes true
            let! res = runCases r.Store all
            let allocated = GC.GetTotalAllocatedBytes true - before
            Expect.equal res.Wrong 0 "no wrong result"
            Expect.equal res.Recorded all.Length "all recomputed"
            let s = r.Remote
            Expect.equal (s.Rejected, s.Hits, s.MissesError, s.MissesTimeout) (int64 all.Length, 0L, 0L, 0L) $"every oversized read refused and counted as a rejection ({countersText s}):
{r.Logged}"
            Expect.equal (match s.RejectedByReason.TryGetValue "TooLargeInStore" with | true, n -> n | _ -> 0L) (int64 all.Length) $"rejected as too large:
{r.Logged}"
            Expect.stringContains r.Logged "refused" "the log says the read was refused"
            Expect.equal r.Local.Backfills 0L "nothing back-filled"
            Expect.equal (r.Store.GetStatistics().CacheFailures) 0L "no cache failure reached the store"
            let c = remote.Proxy.Counters
            Expect.equal c.Flooded all.Length "every read was flooded"
            // An unbounded reader allocates at least what it receives; this one stops at the limit. Beyond the baseline,
            // each read may cost its buffers (doubled up to the limit: the discarded ones sum to < 2 × limit, the last is
            // at most the limit) plus the SDK's per-request
            // allocations and the extra delete of the rejected entry (measured at about 1.2 MiB with the S3 SDK): 2 MiB.
            let overhead = allocated - baseline
            let perRequest = 2L <<< 20
            let bound = int64 all.Length * (3L * readLimit + perRequest)
            Expect.isLessThan overhead bound $"allocated {mib allocated:F1} MiB, baseline {mib baseline:F1} MiB: the reads cost more than {all.Length} × (3 × limit + 2 MiB)"
            if declare then
                // Refused on the header: no body buffer at all, less than one limit's worth per read.
                Expect.isLessThan overhead (int64 all.Length * perRequest) $"refused before reading: overhead {mib overhead:F1} MiB"
            else
                Expect.isGreaterThan c.FloodBytes (int64 all.Length * readLimit) "the client was offered more than the limit on every read"
            remote.Proxy.SetMode PassThrough
            let! count, valid = remoteValidEntries remote
            Expect.equal (count, valid) (all.Length, all.Length) "the remote was repaired"
            let offered = if declare then sprintf "%.0f MiB" (mib bytes) else "an endless body"
            note $"{tag} | {label}, read limit {mib readLimit:F2} MiB | {all.Length} reads; offered {offered} each, into the socket {mib c.FloodBytes:F1} MiB in all | allocated {mib allocated:F1} MiB, recording baseline {mib baseline:F1} MiB, so {mib overhead / float all.Length:F2} MiB per read | remote: {countersText s}; wrong 0 | elapsed {res.Elapsed.TotalSeconds:F2} s"
        }

    ]

// Each backend's scenarios run one after another (they measure elapsed time); the two backends, which use different
// emulators, run side by side to keep the suite short.
[<Tests>]
let tests =
    testList "remote-faults" [
        testSequencedGroup "remote-faults-s3" (testList "s3" (scenarios S3))
        testSequencedGroup "remote-faults-azure" (testList "azure" (scenarios Azure))
        testList "s3" (floodScenarios S3)
        testList "azure" (floodScenarios Azure)
    ]
