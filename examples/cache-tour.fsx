// A tour of layer 1 of the cache from F# Interactive: model -> trace -> moments -> cache -> cache status.
//   dotnet build src/Host.CSharp/Ptd.Cli   (once; makes the Debug output of ptd, with its plugins folder, used below)
//   dotnet fsi examples/cache-tour.fsx
// The script references the build output directly (#r on the DLLs of ptd's output folder, which also holds the
// dependencies, e.g. System.Composition). The same works with a local package:
// `dotnet pack src/Host.CSharp/Ptd.Host -o ~/pkgs` then `#i "nuget: ~/pkgs"` and `#r "nuget: Ptd.Host"`.
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.AttributedModel.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.Runtime.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.Hosting.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.TypedParts.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Storage.Abstractions.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Core.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Host.dll"

open System
open System.IO
open System.Threading.Tasks
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Host.Composition

// 1. A model: Kingman's coalescent with n = 10 samples; θ₁ is the pair-coalescence rate.
let n = 10
let graph = ModelSpec.build (sprintf "coalescent:n=%d" n)
printfn "model: %d vertices, %d edges, %d parameter(s)" graph.VertexCount graph.EdgeCount graph.ParamLength

// 2. Its trace: the elimination recorded once as a program over θ, and the model's content key.
let key = ModelKey.compute graph
let trace = Trace.record graph
printfn "trace: %d ops, key %s…" trace.OpCount (key.Hex.Substring(0, 16))

// 3. Moments at θ = 1 from the trace, checked against the closed form E[T_MRCA] = 2(1 − 1/n).
let moments = TraceEval.moments trace [| 1.0 |] (Rewards.ones graph) 2
let expected = 2.0 * (1.0 - 1.0 / float n)
printfn "E[T_MRCA] = %.15f (closed form %.15f)" moments.[0] expected
if abs (moments.[0] - expected) > 1e-12 then failwithf "moments from the trace disagree with the closed form: %g vs %g" moments.[0] expected

// 4. The cache: one local tier in a scratch directory, opened through ptd's storage plugins.
let pluginDir = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", "src", "Host.CSharp", "Ptd.Cli", "bin", "Debug", "net10.0", "plugins"))
if not (Directory.Exists pluginDir) then failwithf "%s is missing: build the solution first (dotnet build PtdPipeline.sln)" pluginDir
let discovery = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
discovery.Directories.Add pluginDir
let registry = StorageProviderRegistry.Discover discovery
let dir = Path.Combine(Path.GetTempPath(), "ptd-cache-tour-" + Guid.NewGuid().ToString("N").Substring(0, 8))
let options = ArtifactCacheOptions()
// A generous timeout: on a busy machine a slow first write must not be mistaken for a failure.
options.Tiers.Add(CacheTierOptions(Location = "file://" + dir, Name = "local", Timeout = Nullable(TimeSpan.FromSeconds 120.0)))
let manager = CacheManager.Create(options, registry)
try
    // The shared convention for traces: kind "trace", revision Trace.FormatRevision, key = ModelKey hex, payload = encoded trace.
    let kind = CacheLayers.Traces.CurrentKind
    let record = Func<Threading.CancellationToken, Task<byte[]>>(fun _ -> Task.FromResult(TraceEncoding.encode trace))
    let first = manager.Cache.GetOrCreateAsync(kind, key.Hex, record).Result
    let second = manager.Cache.GetOrCreateAsync(kind, key.Hex, record).Result
    printfn "first lookup: %O; second lookup: %O" first.Outcome second.Outcome
    if second.Outcome <> CacheOutcome.Hit then
        failwithf "the second lookup should be a cache hit; cache statistics: %s; warnings: %A" (manager.Cache.GetStatistics().ToJson()) (List.ofSeq manager.Cache.Warnings)
    let fromCache = TraceEncoding.decodeFor key second.Payload
    let again = TraceEval.moments fromCache [| 1.0 |] (Rewards.ones graph) 2
    if again <> moments then failwith "the cached trace gives other moments"

    // 5. Cache status: what `ptd cache status` prints, as a record.
    let status = manager.GetStatusAsync().Result
    for t in status.Tiers do
        printfn "tier %s (%s): %d entries, %d bytes, %d stale, healthy: %b" t.Tier t.Location t.Entries t.Bytes t.StaleEntries t.Health.IsHealthy
    let report = manager.VerifyAsync().Result
    printfn "verify: %d checked, %d valid" report.Checked report.Valid
    if status.Tiers.[0].Entries <> 1L || report.Valid <> 1L then failwith "expected exactly one valid entry"
finally
    manager.DisposeAsync().AsTask().Wait()
    registry.Dispose()
    if Directory.Exists dir then Directory.Delete(dir, true)
printfn "cache tour: ok"
