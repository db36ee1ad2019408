module Ptd.Svgd.Tests.KernelTests

open System
open Expecto
open Ptd.Host.Svgd

/// The Stein direction written out naively from svgd.md §2 (double sum, scalar exp): the oracle.
let naiveDirection (x: float[]) (g: float[]) (d: int) (h2: float) =
    let n = x.Length / d
    Array.init (n * d) (fun idx ->
        let i, k = idx / d, idx % d
        let mutable s = 0.0
        for j in 0 .. n - 1 do
            let mutable sq = 0.0
            for l in 0 .. d - 1 do
                sq <- sq + (x.[i * d + l] - x.[j * d + l]) ** 2.0
            let kij = exp (-sq / (2.0 * h2))
            s <- s + kij * (g.[j * d + k] + (x.[i * d + k] - x.[j * d + k]) / h2)
        s / float n)

/// Liu & Wang's rule computed the obvious way: sort the full n×n matrix, numpy-style median.
let naiveMedianH2 (x: float[]) (d: int) =
    let n = x.Length / d
    let all =
        [| for i in 0 .. n - 1 do
               for j in 0 .. n - 1 do
                   yield Seq.sum (seq { for l in 0 .. d - 1 -> (x.[i * d + l] - x.[j * d + l]) ** 2.0 }) |]
        |> Array.sort
    let m = all.Length
    let med = if m % 2 = 1 then all.[m / 2] else 0.5 * (all.[m / 2 - 1] + all.[m / 2])
    0.5 * med / log (float n + 1.0)

[<Tests>]
let tests =
    testList "svgd" [
        testList "kernel" [
            test "worked example of svgd.md §2 (x = {0,1,3}, N(0,1) target)" {
                let x = [| 0.0; 1.0; 3.0 |]
                let g = x |> Array.map (fun v -> -v)
                let h2 = SteinKernel.BandwidthSquared(ReadOnlySpan x, 1)
                Expect.floatClose { absolute = 1e-6; relative = 0.0 } h2 0.360674 "h² (svgd.md)"
                Expect.floatClose { absolute = 1e-14; relative = 0.0 } h2 (0.5 / log 4.0) "h² = ½·1/ln 4"
                let k = SteinKernel.KernelMatrix(ReadOnlySpan x, 1, h2)
                Expect.floatClose { absolute = 1e-12; relative = 0.0 } k.[1] 0.25 "K01"
                Expect.floatClose { absolute = 1e-6; relative = 1e-9 } k.[2] 3.8147e-6 "K02"
                Expect.floatClose { absolute = 1e-15; relative = 0.0 } k.[2] (4.0 ** -9.0) "K02 = 4⁻⁹"
                Expect.floatClose { absolute = 1e-12; relative = 0.0 } k.[5] 0.00390625 "K12"
                Expect.equal k.[3] k.[1] "K symmetric"
                Expect.equal k.[0] 1.0 "K00"
                let phi = Array.zeroCreate 3
                let used = SteinKernel.Direction(ReadOnlySpan x, ReadOnlySpan g, 1, Span phi)
                Expect.equal used h2 "Direction reports h²"
                let expected = [| -0.314397; -0.113411; -0.994071 |]
                for i in 0..2 do
                    Expect.floatClose { absolute = 1e-6; relative = 0.0 } phi.[i] expected.[i] $"φ̂[{i}]"
            }

            test "repulsive sign: two particles on a flat target move apart" {
                let x = [| -0.5; 0.5 |]
                let phi = Array.zeroCreate 2
                SteinKernel.Direction(ReadOnlySpan x, ReadOnlySpan [| 0.0; 0.0 |], 1, Span phi) |> ignore
                Expect.isLessThan phi.[0] 0.0 "left particle pushed left"
                Expect.isGreaterThan phi.[1] 0.0 "right particle pushed right"
            }

            testList "direction equals the naive double sum (random particles, vectorized and tail paths)" [
                for n, d in [ (2, 1); (3, 2); (7, 3); (16, 1); (33, 4); (200, 2); (520, 2) ] ->
                    test $"n = {n}, d = {d}" {
                        let r = Random(n * 31 + d)
                        let x = Array.init (n * d) (fun _ -> r.NextDouble() * 4.0 - 2.0)
                        let g = Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0)
                        let h2 = SteinKernel.BandwidthSquared(ReadOnlySpan x, d)
                        Expect.floatClose { absolute = 0.0; relative = 1e-12 } h2 (naiveMedianH2 x d) "median rule"
                        let phi = Array.zeroCreate (n * d)
                        SteinKernel.Direction(ReadOnlySpan x, ReadOnlySpan g, d, Span phi) |> ignore
                        let oracle = naiveDirection x g d h2
                        for i in 0 .. n * d - 1 do
                            Expect.floatClose { absolute = 1e-13; relative = 1e-11 } phi.[i] oracle.[i] $"φ̂[{i}]"
                    }
            ]

            test "phasic's bandwidth: h = median of the n(n−1)/2 distances / ln(n+1)" {
                let x = [| 0.0; 1.0; 3.0; 7.0 |]
                // distances 1, 3, 7, 2, 6, 4 → sorted 1 2 3 4 6 7 → median 3.5
                let h = 3.5 / log 5.0
                let h2 = SteinKernel.BandwidthSquared(ReadOnlySpan x, 1, BandwidthRule.PhasicMedian)
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } h2 (h * h) "h²"
            }

            test "fixed bandwidth" {
                let h2 = SteinKernel.BandwidthSquared(ReadOnlySpan [| 0.0; 1.0 |], 1, BandwidthRule.Fixed, 0.7)
                Expect.floatClose { absolute = 0.0; relative = 1e-15 } h2 0.49 "h = 0.7"
            }

            test "h stays positive when particles coincide" {
                let same = Array.create 6 2.5
                let h2 = SteinKernel.BandwidthSquared(ReadOnlySpan same, 1)
                Expect.isGreaterThan h2 0.0 "identical particles"
                // 4 of 5 coincide: the median of the full matrix is 0, the guard uses the mean.
                let mostly = [| 1.0; 1.0; 1.0; 1.0; 2.0 |]
                let h2b = SteinKernel.BandwidthSquared(ReadOnlySpan mostly, 1)
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } h2b (0.5 * (4.0 / 10.0) / log 6.0) "mean fallback"
            }
        ]
    ]
