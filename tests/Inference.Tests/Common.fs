/// Shared helpers: models, simulated data, oracles, and running the real `ptd`.
module Ptd.Inference.Tests.Common

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Ptd.Core
open Ptd.Host.Kernels

let trace (g: Graph) = Trace.record g |> TracePasses.optimize

/// Data simulated by the core's sampler (an independent code path from the likelihood).
let simulate (g: Graph) (theta: float[]) (n: int) (seed: int) = Sampling.sample g (g.Weights theta) n seed

let observations (xs: float[]) = Observations.FromValues(xs, "test data")

/// A small discrete model with two parameters: from state 1 move on with probability θ₀, stop
/// with 0.1; from state 2 stop with probability θ₁ (self-loops carry the rest).
let discreteModel () =
    let b = GraphBuilder(1, 2, true)
    let s1 = b.FindOrCreate [| 1 |]
    let s2 = b.FindOrCreate [| 2 |]
    let s3 = b.FindOrCreate [| 3 |]
    b.AddStartEdge(s1, 0.7)
    b.AddStartEdge(s2, 0.3)
    b.AddEdge(s1, s2, 0.0, [| 1.0; 0.0 |])
    b.AddEdge(s1, s3, 0.1)
    b.AddEdge(s2, s3, 0.0, [| 0.0; 1.0 |])
    b.Build()

let relErr (a: float) (b: float) = abs (a - b) / max 1e-300 (max (abs a) (abs b))

/// Log-likelihood and gradient through a registry's kernel (single particle).
let kernelLoglik (kernel: LikelihoodKernel) (theta: float[]) (data: float[]) =
    let g = Array.zeroCreate theta.Length
    let ll = kernel.LogLikelihood(ReadOnlySpan theta, observations data, Span g)
    ll, g

let likelihoodKernel (g: Graph) =
    let struct (k, _) = KernelRegistry().GetLikelihoodKernelAsync(g).Result
    k

/// A cache with one local-disk tier at `dir` (a fresh cache object each time, as a new process would have).
type DiskCache(dir: string) =
    let cache =
        let o = Ptd.Host.Caching.ArtifactCacheOptions(AutoEvict = false)
        o.Tiers.Add(Ptd.Host.Caching.CacheTierOptions(Store = Ptd.Storage.LocalDisk.LocalDiskStore(dir, "file://" + dir), Name = "disk"))
        Ptd.Host.Caching.ArtifactCache.Create(o, null)
    member _.Cache = cache
    interface IDisposable with
        member _.Dispose() = cache.DisposeAsync().AsTask().Wait()

let diskCache (dir: string) = new DiskCache(dir)

let bits (x: float) = BitConverter.DoubleToInt64Bits x

// ---- the real ptd ------------------------------------------------------------------------------

let repoRoot = Ptd.Tests.Repo.root

/// The ptd.dll of the most recent build (Debug or Release).
let ptdDll = Ptd.Tests.Repo.ptdDll

type Result = { Code: int; Out: string; Err: string }

let runPtd (cwd: string) (env: (string * string) list) (args: string list) =
    let psi = ProcessStartInfo("dotnet", ptdDll :: args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- cwd
    for k, v in env do psi.Environment.[k] <- v
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120_000) then
        p.Kill true
        failwithf "ptd %s did not finish within 120 s" (String.Join(" ", args))
    { Code = p.ExitCode; Out = out.Result; Err = err.Result }

let tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "ptd-inference-tests", Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let json (text: string) = JsonDocument.Parse(text).RootElement
