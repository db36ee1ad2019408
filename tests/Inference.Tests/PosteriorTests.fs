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

/// The range of a 1-D grid where the log posterior is within `drop` of its maximum (from a coarse scan).
let massRange (lo: float) (hi: float) (drop: float) (f: float -> float) =
    let coarse = Array.init 401 (fun i -> lo + (hi - lo) * float i / 400.0)
    let values = coarse |> Array.map f
    let top = Array.max values
    let inside = [| for i in 0 .. 400 do if values.[i] > top - drop then i |]
    let step = (hi - lo) / 400.0
    max lo (coarse.[Array.min inside] - step), min hi (coarse.[Array.max inside] + step)

[<Tests>]
let tests =
    testList "posterior" [
        test "coalescent n = 4, 200 observations: SVGD mean and sd within 5 % of quadrature" {
            let g = Models.coalescent 4 None
            let truth = 1.3
            let data = simulate g [| truth |] 200 2024
            let tr = trace g
            let logPost th = TraceLikelihood.logLikelihood tr [| th |] data + logGamma 2.0 1.0 th
            let lo, hi = massRange 0.05 10.0 40.0 logPost
            let grid = Array.init 1201 (fun i -> lo + (hi - lo) * float i / 1200.0)
            let qMean, qSd = moments1 grid (grid |> Array.map logPost)
            let options =
                // AdaGrad's step stays near η by design, which jitters particles by ~η in φ: a
                // decaying step lets them settle to the posterior's own width.
                SvgdOptions(ParticleCount = 100, Iterations = 500, StepSize = 0.1, Seed = 5,
                            Schedule = StepSchedule.Exponential, ExponentialDecay = 0.99,
                            Priors = ParameterPrior.ParseList "gamma:2,1")
            let r = InferenceService.RunAsync(g, observations data, InferenceOptions(Svgd = options)).Result
            let p = r.Svgd.Parameters.[0]
            Expect.isLessThan (relErr p.Mean qMean) 0.05 (sprintf "mean %.5g vs quadrature %.5g" p.Mean qMean)
            Expect.isLessThan (relErr p.Sd qSd) 0.05 (sprintf "sd %.5g vs quadrature %.5g" p.Sd qSd)
        }

        test "two-deme coalescent (cyclic, θ = coalescence, migration): truth in the 95 % interval, sd within 15 % of 2-D quadrature" {
            let g = Models.twoDeme 2
            let truth = [| 1.0; 0.5 |]
            let data = simulate g truth 500 77
            let tr = trace g
            let logPost (a: float) (b: float) = TraceLikelihood.logLikelihood tr [| a; b |] data + logGamma 2.0 1.0 a + logGamma 2.0 1.0 b
            // Coarse scan of a wide box, then a fine grid over the region that carries the mass.
            let cn = 31
            let cAx = Array.init cn (fun i -> 0.05 + 4.0 * float i / float (cn - 1))
            let coarse = Array2D.init cn cn (fun i j -> logPost cAx.[i] cAx.[j])
            let ctop = Seq.max (Seq.cast<float> coarse)
            let cells = [ for i in 0 .. cn - 1 do for j in 0 .. cn - 1 do if coarse.[i, j] > ctop - 25.0 then yield i, j ]
            let span (pick: int * int -> int) =
                let idx = cells |> List.map pick
                cAx.[max 0 (List.min idx - 1)], cAx.[min (cn - 1) (List.max idx + 1)]
            let (lo0, hi0), (lo1, hi1) = span fst, span snd
            let n = 81
            let ax0 = Array.init n (fun i -> lo0 + (hi0 - lo0) * float i / float (n - 1))
            let ax1 = Array.init n (fun i -> lo1 + (hi1 - lo1) * float i / float (n - 1))
            let lp = Array2D.init n n (fun i j -> logPost ax0.[i] ax1.[j])
            let top = Seq.max (Seq.cast<float> lp)
            let w = Array2D.map (fun l -> exp (l - top)) lp
            let z = Seq.sum (Seq.cast<float> w)
            let marg k = if k = 0 then Array.init n (fun i -> Seq.sum (seq { for j in 0 .. n - 1 -> w.[i, j] })) else Array.init n (fun j -> Seq.sum (seq { for i in 0 .. n - 1 -> w.[i, j] }))
            let stats (ax: float[]) (m: float[]) =
                let mean = Array.fold2 (fun s x wi -> s + x * wi) 0.0 ax m / z
                mean, sqrt (Array.fold2 (fun s x wi -> s + (x - mean) ** 2.0 * wi) 0.0 ax m / z)
            let q = [| stats ax0 (marg 0); stats ax1 (marg 1) |]
            let options =
                SvgdOptions(ParticleCount = 64, Iterations = 500, StepSize = 0.1, Seed = 9,
                            Schedule = StepSchedule.Exponential, ExponentialDecay = 0.99,
                            Priors = ParameterPrior.ParseList "gamma:2,1,gamma:2,1", ParameterNames = [| "coalescence"; "migration" |])
            let r = InferenceService.RunAsync(g, observations data, InferenceOptions(Svgd = options)).Result
            for k in 0 .. 1 do
                let p = r.Svgd.Parameters.[k]
                let qMean, qSd = q.[k]
                Expect.isTrue (p.Q025 <= truth.[k] && truth.[k] <= p.Q975) (sprintf "%s: truth %g in [%.4g, %.4g]" p.Name truth.[k] p.Q025 p.Q975)
                Expect.isLessThan (relErr p.Sd qSd) 0.15 (sprintf "%s: sd %.4g vs quadrature %.4g (mean %.4g vs %.4g)" p.Name p.Sd qSd p.Mean qMean)
        }
    ]
