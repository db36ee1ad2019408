// The whole pipeline from F# Interactive: model -> trace (through the cache) -> moments -> SVGD posterior from simulated
// data -> cache status. Every step checks its result against a value computed another way and fails (non-zero exit
// code) when it is wrong.
//   dotnet build src/Host.CSharp/Ptd.Cli   (once; makes the Debug output of ptd, with its plugins folder, used below)
//   dotnet fsi examples/pipeline-tour.fsx
// The script references the build output directly (#r on the DLLs of ptd's output folder, which also holds the
// dependencies, e.g. System.Composition). The same works with a local package:
// `dotnet pack src/Host.CSharp/Ptd.Host -o ~/pkgs` then `#i "nuget: ~/pkgs"` and `#r "nuget: Ptd.Host"`.
// The test command runs it (tests/Cache.Tests/ExampleTests.fs); it takes about 30 s, most of it fsi compiling the script.
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.AttributedModel.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.Runtime.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.Hosting.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/System.Composition.TypedParts.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Storage.Abstractions.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Core.dll"
#r "../src/Host.CSharp/Ptd.Cli/bin/Debug/net10.0/Ptd.Host.dll"

open System
open System.IO
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Host.Composition
open Ptd.Host.Kernels
open Ptd.Host.Svgd
open Ptd.Host.Traces

let clock = Diagnostics.Stopwatch.StartNew()

// A failed check raises: fsi then exits with a non-zero code (after the cleanup in `finally` below).
let check (ok: bool) (what: string) =
    if ok then printfn "  ok: %s" what else failwithf "FAILED: %s" what

// 1. A model: Kingman's coalescent with n = 6 samples; θ₁ is the pair-coalescence rate.
let n = 6
let graph = ModelSpec.build (sprintf "coalescent:n=%d" n)
printfn "1. model coalescent:n=%d: %d vertices, %d edges, %d parameter(s)" n graph.VertexCount graph.EdgeCount graph.ParamLength
check (graph.ParamLength = 1) "one parameter"

// The cache: one local tier in a scratch directory, opened through ptd's storage plugins.
let pluginDir = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", "src", "Host.CSharp", "Ptd.Cli", "bin", "Debug", "net10.0", "plugins"))
if not (Directory.Exists pluginDir) then failwithf "%s is missing: build the solution first (dotnet build PtdPipeline.sln)" pluginDir
let discovery = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
discovery.Directories.Add pluginDir
let plugins = StorageProviderRegistry.Discover discovery
let dir = Path.Combine(Path.GetTempPath(), "ptd-pipeline-tour-" + Guid.NewGuid().ToString("N").Substring(0, 8))
let cacheOptions = ArtifactCacheOptions()
// A generous timeout: on a busy machine a slow first write must not be mistaken for a failure.
cacheOptions.Tiers.Add(CacheTierOptions(Location = "file://" + dir, Name = "local", Timeout = Nullable(TimeSpan.FromSeconds 120.0)))
let manager = CacheManager.Create(cacheOptions, plugins)

try
    // 2. The trace through the cache: the first store records it and writes it to the tier; a second store (as a
    //    second process would) reads it back without eliminating the model.
    let first = (new TraceStore(manager.Cache)).GetOrRecord graph
    let second = (new TraceStore(manager.Cache)).GetOrRecord graph
    printfn "2. trace %s…: %d ops; first lookup %O, second lookup %O (tier %s)" (first.Key.Hex.Substring(0, 12)) first.Trace.OpCount first.Origin second.Origin second.Tier
    check (first.Origin = TraceOrigin.Recorded && second.Origin = TraceOrigin.CacheHit) "recorded once, then read from the cache"

    // 3. Moments at θ = 2 from the cached trace, against the closed form: T_MRCA is a sum of independent
    //    Exp(θ k(k−1)/2), k = 2..n, so E = 2(1 − 1/n)/θ and Var = Σ (2 / (θ k(k−1)))².
    let theta = 2.0
    let m = TraceEval.moments second.Trace [| theta |] (Rewards.ones graph) 2
    let mean = 2.0 * (1.0 - 1.0 / float n) / theta
    let variance = [ 2 .. n ] |> List.sumBy (fun k -> (2.0 / (theta * float (k * (k - 1)))) ** 2.0)
    printfn "3. at θ = %g: E[T] = %.15f (closed form %.15f), Var[T] = %.15f (closed form %.15f)" theta m.[0] mean (m.[1] - m.[0] * m.[0]) variance
    check (abs (m.[0] - mean) < 1e-12 && abs (m.[1] - m.[0] * m.[0] - variance) < 1e-12) "moments equal the closed form to 1e-12"

    // 4. Data simulated at a known θ, then the posterior of θ by SVGD (Gamma(2, 1) prior). The likelihood kernel goes
    //    through the same cache (layer 2). The answer is checked against the exact posterior by quadrature on a grid,
    //    computed with the core's likelihood (not the kernel, not SVGD).
    let truth = 1.5
    let data = Sampling.sample graph (graph.Weights [| truth |]) 150 11
    let registry = KernelRegistry(manager.Cache)
    let iterations = 200
    let svgd =
        SvgdOptions(ParticleCount = 32, Iterations = iterations, StepSize = 0.1, Seed = 1,
                    Schedule = StepSchedule.Exponential, ExponentialDecay = 0.1 ** (1.0 / float iterations),
                    Priors = ParameterPrior.ParseList "gamma:2,1", ParameterNames = [| "theta" |])
    let result = InferenceService.RunAsync(graph, Observations.FromValues(data, "simulated"), InferenceOptions(Registry = registry, Svgd = svgd)).Result
    let p = result.Svgd.Parameters.[0]
    let logPosterior th = TraceLikelihood.logLikelihood second.Trace [| th |] data + log th - th // + log Gamma(2, 1) density
    let grid = Array.init 2001 (fun i -> 0.3 + 4.7 * float i / 2000.0)
    let lp = grid |> Array.map logPosterior
    let top = Array.max lp
    let w = lp |> Array.map (fun x -> exp (x - top))
    let exactMean = Array.fold2 (fun acc x wi -> acc + x * wi) 0.0 grid w / Array.sum w
    let exactSd = sqrt (Array.fold2 (fun acc x wi -> acc + (x - exactMean) ** 2.0 * wi) 0.0 grid w / Array.sum w)
    printfn "4. %d observations simulated at θ = %g; SVGD posterior mean %.4f, sd %.4f, 95%% interval [%.4f, %.4f]" data.Length truth p.Mean p.Sd p.Q025 p.Q975
    printfn "   exact posterior (quadrature): mean %.4f, sd %.4f; likelihood kernel %s" exactMean exactSd (string result.LikelihoodKernel.Source)
    check (abs (p.Mean - exactMean) / exactMean < 0.02) "the SVGD posterior mean is within 2 % of the exact posterior mean"
    check (abs (p.Sd - exactSd) / exactSd < 0.15) "the SVGD posterior sd is within 15 % of the exact posterior sd"
    check (abs (p.Mean - truth) < 4.0 * exactSd) "the truth is within 4 posterior sd of the posterior mean"
    check (result.LikelihoodKernel.Source = KernelSource.Built) "the kernel was built (first use) and stored"
    let struct (_, again) = KernelRegistry(manager.Cache).GetLikelihoodKernelAsync(graph).Result
    check (again.Source = KernelSource.Cache) "a fresh registry (a second process) loads the kernel from the cache"

    // 5. Cache status: one trace (layer 1) and one kernel (layer 2), all valid.
    let status = manager.GetStatusAsync().Result
    for t in status.Tiers do
        printfn "5. tier %s (%s): %d entries, %d bytes, %d stale, healthy: %b" t.Tier t.Location t.Entries t.Bytes t.StaleEntries t.Health.IsHealthy
        for k in t.Kinds do printfn "     %-8s %d entries" (defaultArg (Option.ofObj k.Layer) k.Kind) k.Entries
    let report = manager.VerifyAsync().Result
    let kinds = status.Tiers.[0].Kinds |> Seq.map (fun k -> k.Kind, k.Entries) |> Map.ofSeq
    check (kinds = Map.ofList [ "trace", 1L; "kernel", 1L ]) "the tier holds one trace and one kernel"
    check (report.Checked = 2L && report.Valid = 2L) "both entries verify"
finally
    manager.DisposeAsync().AsTask().Wait()
    plugins.Dispose()
    if Directory.Exists dir then Directory.Delete(dir, true)
printfn "pipeline tour: ok (%.1f s after compilation)" clock.Elapsed.TotalSeconds
