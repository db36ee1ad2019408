/// SVGD posteriors through the trace likelihood against quadrature of the exact posterior, where the
/// log-likelihood on the grid comes from the core's TraceLikelihood.logLikelihood (an independent
/// code path from the kernel and the SVGD machinery).
module Ptd.Inference.Tests.PosteriorTests

open System
open Expecto
open Ptd.Core
open Ptd.Host.Kernels
open Ptd.Host.Svgd
open Ptd.Inference.Tests.Common

/// Posterior mean and sd on a uniform grid (trapezoid weights are uniform inside; the grid spans
/// the posterior's mass, so the ends carry none).
let moments1 (grid: float[]) (logPost: float[]) =
    let top = Array.max logPost
    let w = logPost |> Array.map (fun l -> exp (l - top))
    let z = Array.sum w
    let mean = Array.fold2 (fun s x wi -> s + x * wi) 0.0 grid w / z
    let var = Array.fold2 (fun s x wi -> s + (x - mean) * (x - mean) * wi) 0.0 grid w / z
    mean, sqrt var

let logGamma (shape: float) (rate: float) (x: float) = (shape - 1.0) * log x - rate * x

[<Tests>]
let tests =
    testList "posterior" [
        test "coalescent n = 4, 200 observations: SVGD mean and sd within 5 % of quadrature" {
            let g = Models.coalescent 4 None
            let truth = 1.3
            let data = simulate g [| truth |] 200 2024
            let tr = trace g
            let grid = Array.init 1201 (fun i -> 0.6 + 1.6 * float i / 1200.0)
            let logPost = grid |> Array.map (fun th -> TraceLikelihood.logLikelihood tr [| th |] data + logGamma 2.0 1.0 th)
            let qMean, qSd = moments1 grid logPost
            Expect.isLessThan (abs (logPost.[0] - Array.max logPost)) infinity "grid sanity"
            Expect.isGreaterThan (Array.max logPost - logPost.[0]) 30.0 "the grid's left end carries no mass"
            Expect.isGreaterThan (Array.max logPost - logPost.[grid.Length - 1]) 30.0 "nor its right end"
            let options =
                SvgdOptions(ParticleCount = 100, Iterations = 1500, StepSize = 0.05, Seed = 5,
                            Priors = ParameterPrior.ParseList "gamma:2,1")
            let r = InferenceService.RunAsync(g, observations data, InferenceOptions(Svgd = options)).Result
            let p = r.Svgd.Parameters.[0]
            Expect.isLessThan (relErr p.Mean qMean) 0.05 (sprintf "mean %.5g vs quadrature %.5g" p.Mean qMean)
            Expect.isLessThan (relErr p.Sd qSd) 0.05 (sprintf "sd %.5g vs quadrature %.5g" p.Sd qSd)
        }

        test "two-deme coalescent (cyclic, θ = coalescence, migration): truth in the 95 % interval, sd within 15 % of 2-D quadrature" {
            let g = Models.twoDeme 2
            let truth = [| 1.0; 0.5 |]
            let data = simulate g truth 1500 77
            let tr = trace g
            let n = 121
            let ax0 = Array.init n (fun i -> 0.7 + 0.6 * float i / float (n - 1))
            let ax1 = Array.init n (fun i -> 0.15 + 1.0 * float i / float (n - 1))
            let prior (a, b) = logGamma 2.0 1.0 a + logGamma 2.0 1.0 b
            let logPost = Array2D.init n n (fun i j -> TraceLikelihood.logLikelihood tr [| ax0.[i]; ax1.[j] |] data + prior (ax0.[i], ax1.[j]))
            let top = Seq.max (Seq.cast<float> logPost)
            let edge = Seq.max (seq { for i in 0 .. n - 1 do yield logPost.[i, 0]; yield logPost.[i, n - 1]; yield logPost.[0, i]; yield logPost.[n - 1, i] })
            Expect.isGreaterThan (top - edge) 25.0 "the grid holds the posterior's mass"
            let w = Array2D.map (fun l -> exp (l - top)) logPost
            let z = Seq.sum (Seq.cast<float> w)
            let marg k = if k = 0 then Array.init n (fun i -> Seq.sum (seq { for j in 0 .. n - 1 -> w.[i, j] })) else Array.init n (fun j -> Seq.sum (seq { for i in 0 .. n - 1 -> w.[i, j] }))
            let stats (ax: float[]) (m: float[]) =
                let mean = Array.fold2 (fun s x wi -> s + x * wi) 0.0 ax m / z
                mean, sqrt (Array.fold2 (fun s x wi -> s + (x - mean) ** 2.0 * wi) 0.0 ax m / z)
            let q = [| stats ax0 (marg 0); stats ax1 (marg 1) |]
            let options =
                SvgdOptions(ParticleCount = 100, Iterations = 1000, StepSize = 0.05, Seed = 9,
                            Priors = ParameterPrior.ParseList "gamma:2,1,gamma:2,1", ParameterNames = [| "coalescence"; "migration" |])
            let r = InferenceService.RunAsync(g, observations data, InferenceOptions(Svgd = options)).Result
            for k in 0 .. 1 do
                let p = r.Svgd.Parameters.[k]
                let qMean, qSd = q.[k]
                Expect.isTrue (p.Q025 <= truth.[k] && truth.[k] <= p.Q975) (sprintf "%s: truth %g in [%.4g, %.4g]" p.Name truth.[k] p.Q025 p.Q975)
                Expect.isLessThan (relErr p.Sd qSd) 0.15 (sprintf "%s: sd %.4g vs quadrature %.4g (mean %.4g vs %.4g)" p.Name p.Sd qSd p.Mean qMean)
        }
    ]
