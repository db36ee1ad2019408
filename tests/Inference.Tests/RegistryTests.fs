/// Layer 2: content keys, single flight, data as a run-time input (the phasic bug), persistence.
module Ptd.Inference.Tests.RegistryTests

open System
open System.Threading.Tasks
open Expecto
open Ptd.Core
open Ptd.Host.Kernels
open Ptd.Host.Svgd
open Ptd.Inference.Tests.Common

let quickSvgd (seed: int) =
    SvgdOptions(ParticleCount = 16, Iterations = 60, StepSize = 0.1, Seed = seed, Priors = ParameterPrior.ParseList "gamma:2,1")

let infer (registry: KernelRegistry) (g: Graph) (data: float[]) =
    InferenceService.RunAsync(g, observations data, InferenceOptions(Registry = registry, Svgd = quickSvgd 3)).Result

let gradients (kernel: LikelihoodKernel) (data: float[]) =
    [| for th in [ 0.4; 1.0; 2.5 ] do
           let ll, g = kernelLoglik kernel [| th |] data
           yield bits ll
           yield bits g.[0] |]

[<Tests>]
let tests =
    testList "registry" [
        test "the key is the content: equal models from separate builds share one kernel" {
            let registry = KernelRegistry()
            let struct (k1, l1) = registry.GetLikelihoodKernelAsync(ModelSpec.build "coalescent:n=6").Result
            let struct (k2, l2) = registry.GetLikelihoodKernelAsync(Models.coalescent 6 None).Result
            Expect.isTrue (obj.ReferenceEquals(k1, k2)) "same kernel object"
            Expect.equal l1.Source KernelSource.Built "first: built"
            Expect.equal l2.Source KernelSource.Memory "second: memory hit"
            let s = registry.GetStatistics()
            Expect.equal (s.Builds, s.MemoryHits, s.MemoryMisses) (1L, 1L, 1L) "one build, one hit"
        }

        test "every key field changes the digest" {
            let g = Models.coalescent 6 None
            let k = KernelKey.For(g, KernelKind.ContinuousLikelihood)
            let variants =
                [ KernelKey.For(Models.coalescent 7 None, KernelKind.ContinuousLikelihood)
                  KernelKey.For(g, KernelKind.Moments)
                  KernelKey(k.TraceKey, k.Kind, 2, k.Transform, k.Layout, k.GeneratorRevision)
                  KernelKey(k.TraceKey, k.Kind, k.ParameterCount, "softplus", k.Layout, k.GeneratorRevision)
                  KernelKey(k.TraceKey, k.Kind, k.ParameterCount, k.Transform, DataLayout.Counts, k.GeneratorRevision)
                  KernelKey(k.TraceKey, k.Kind, k.ParameterCount, k.Transform, k.Layout, k.GeneratorRevision + 1) ]
            for v in variants do Expect.notEqual v.Digest k.Digest (sprintf "%s differs from %s" v.CanonicalText k.CanonicalText)
            Expect.equal k.TraceKey (ModelKey.compute g).Hex "the trace key is the model's content key"
            Expect.equal (KernelKey.For(ModelSpec.build "coalescent:n=6", KernelKind.ContinuousLikelihood).Digest) k.Digest "stable"
        }

        test "concurrent requests share one build" {
            let registry = KernelRegistry()
            let g = Models.twoDeme 4
            let tasks = [| for _ in 1 .. 16 -> Task.Run(fun () -> registry.GetLikelihoodKernelAsync(g).Result) |]
            let results = Task.WhenAll(tasks).Result
            let first = let struct (k, _) = results.[0] in k
            for struct (k, _) in results do Expect.isTrue (obj.ReferenceEquals(k, first)) "one kernel"
            Expect.equal (registry.GetStatistics().Builds) 1L "one build"
        }

        test "a second run with different data of the same shape answers for the second data (phasic's bug)" {
            let g = Models.coalescent 4 None
            let dataA = simulate g [| 0.5 |] 100 31
            let dataB = simulate g [| 2.0 |] 100 32
            let shared = KernelRegistry()
            let a = infer shared g dataA
            let b = infer shared g dataB
            Expect.equal b.LikelihoodKernel.Source KernelSource.Memory "the kernel was reused"
            let fresh = infer (KernelRegistry()) g dataB
            Expect.sequenceEqual (b.Svgd.Particles |> Array.concat |> Array.map bits) (fresh.Svgd.Particles |> Array.concat |> Array.map bits)
                "same particles as a fresh registry on the second data"
            let meanA, meanB = a.Svgd.Parameters.[0].Mean, b.Svgd.Parameters.[0].Mean
            Expect.isGreaterThan meanB (2.0 * meanA) (sprintf "θ̂ follows the data: %.3g (θ = 0.5 data) vs %.3g (θ = 2 data)" meanA meanB)
        }

        test "a persisted kernel loads in a fresh registry and cache and gives bit-identical gradients" {
            let dir = tempDir ()
            let g = Models.coalescent 8 None
            let data = simulate g [| 1.0 |] 200 41
            let first =
                use cache = diskCache dir
                let struct (k, l) = KernelRegistry(cache.Cache).GetLikelihoodKernelAsync(g).Result
                Expect.equal l.Source KernelSource.Built "built the first time"
                gradients k data
            use cache2 = diskCache dir
            let registry2 = KernelRegistry(cache2.Cache)
            let struct (k2, l2) = registry2.GetLikelihoodKernelAsync(Models.coalescent 8 None).Result
            Expect.equal l2.Source KernelSource.Cache "loaded from the disk tier"
            Expect.equal (registry2.GetStatistics().Builds) 0L "nothing built"
            Expect.sequenceEqual (gradients k2 data) first "bit-identical values and gradients"
            Expect.sequenceEqual (gradients (likelihoodKernel g) data) first "and equal to a kernel built without a cache"
            // the moments kernel (the optimized trace) persists too
            let struct (_, ml) = KernelRegistry(cache2.Cache).GetMomentKernelAsync(g).Result
            Expect.equal ml.Source KernelSource.Built "moments: built"
            use cache3 = diskCache dir
            let struct (mk, ml3) = KernelRegistry(cache3.Cache).GetMomentKernelAsync(g).Result
            Expect.equal ml3.Source KernelSource.Cache "moments: loaded"
            let struct (m, _) = mk.MomentsJacobian([| 1.0 |], null, 1)
            Expect.floatClose Accuracy.veryHigh m.[0] (2.0 * (1.0 - 1.0 / 8.0)) "E[T] from the loaded trace"
        }

        test "a damaged payload under the right key is rejected and rebuilt" {
            let dir = tempDir ()
            let g = Models.coalescent 5 None
            let key = KernelKey.For(g, KernelKind.ContinuousLikelihood)
            use cache = diskCache dir
            cache.Cache.SetAsync(KernelRegistry.ArtifactKind, key.Digest, ReadOnlyMemory(Text.Encoding.ASCII.GetBytes "PTDKERNL garbage")).Wait()
            let registry = KernelRegistry(cache.Cache)
            let struct (k, l) = registry.GetLikelihoodKernelAsync(g).Result
            Expect.equal l.Source KernelSource.Built "rebuilt"
            Expect.equal (registry.GetStatistics().Rejected) 1L "counted"
            let data = simulate g [| 1.0 |] 50 7
            Expect.sequenceEqual (gradients k data) (gradients (likelihoodKernel g) data) "correct kernel"
            use cache2 = diskCache dir
            let struct (_, l2) = KernelRegistry(cache2.Cache).GetLikelihoodKernelAsync(g).Result
            Expect.equal l2.Source KernelSource.Cache "the good one replaced it"
        }

        test "prewarm fills memory and the cache and says what it stored" {
            let dir = tempDir ()
            let g = Models.twoDeme 3
            use cache = diskCache dir
            let report = KernelRegistry(cache.Cache).PrewarmAsync(g, 2, [ DataLayout.Times; DataLayout.Moments ]).Result
            Expect.equal report.Kernels.Count 2 "two kernels"
            Expect.equal report.Stored 2 "both stored"
            use cache2 = diskCache dir
            let again = KernelRegistry(cache2.Cache).PrewarmAsync(g, 2, [ DataLayout.Times; DataLayout.Moments ]).Result
            Expect.isTrue (again.Kernels |> Seq.forall (fun l -> l.Source = KernelSource.Cache)) "a fresh process finds both"
            Expect.equal again.Stored 0 "nothing new stored"
            Expect.throwsT<PtdException> (fun () -> KernelRegistry().PrewarmAsync(g, 1, [ DataLayout.Times ]).GetAwaiter().GetResult() |> ignore) "wrong dimension"
            Expect.throwsT<PtdException> (fun () -> KernelRegistry().PrewarmAsync(g, 2, [ DataLayout.Counts ]).GetAwaiter().GetResult() |> ignore) "counts for a continuous model"
        }
    ]
