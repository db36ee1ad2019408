/// Log-likelihood and its gradient from traces (issue 3 §3, second bullet).
module Ptd.Core.Tests.TraceLikelihoodTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Tests
open Ptd.Core.Tests.TraceGraphs
open Ptd.Core.Tests.TraceGradTests

/// e^A by scaling and squaring with a long Taylor series: an oracle independent of uniformization.
let expm (a: float[,]) =
    let n = Array2D.length1 a
    let norm = Seq.max (seq { for i in 0 .. n - 1 -> Seq.sum (seq { for j in 0 .. n - 1 -> abs a.[i, j] }) })
    let mutable s = 0
    while norm / (2.0 ** float s) > 0.25 do s <- s + 1
    let b = Array2D.map (fun x -> x / (2.0 ** float s)) a
    let mul (x: float[,]) (y: float[,]) =
        let r = Array2D.zeroCreate n n
        for i in 0 .. n - 1 do
            for k in 0 .. n - 1 do
                let xik = x.[i, k]
                for j in 0 .. n - 1 do r.[i, j] <- r.[i, j] + xik * y.[k, j]
        r
    let mutable result = Array2D.init n n (fun i j -> if i = j then 1.0 else 0.0)
    let mutable term = Array2D.copy result
    for k in 1 .. 30 do
        term <- Array2D.map (fun x -> x / float k) (mul term b)
        result <- Array2D.init n n (fun i j -> result.[i, j] + term.[i, j])
    for _ in 1 .. s do result <- mul result result
    result

/// f(t) = α e^{St} s (continuous) or P(τ = k) = α T^{k−1} t, P(τ = 0) = defect (discrete), densely.
let denseDensity (g: Graph) (theta: float[]) (x: float) =
    let _, alpha, s = Dense.ofGraph g theta
    let n = alpha.Length
    if not g.IsDiscrete then
        let exitv = Array.init n (fun i -> -(Seq.sum (seq { for j in 0 .. n - 1 -> s.[i, j] })))
        let e = expm (Array2D.map (fun v -> v * x) s)
        Seq.sum (seq { for i in 0 .. n - 1 do for j in 0 .. n - 1 -> alpha.[i] * e.[i, j] * exitv.[j] })
    else
        let k = int x
        if k = 0 then 1.0 - Array.sum alpha
        else
            let exitv = Array.init n (fun i -> 1.0 - Seq.sum (seq { for j in 0 .. n - 1 -> s.[i, j] }))
            let mutable row = Array.copy alpha
            for _ in 1 .. k - 1 do
                row <- Array.init n (fun j -> Seq.sum (seq { for i in 0 .. n - 1 -> row.[i] * s.[i, j] }))
            Array.fold2 (fun acc r e -> acc + r * e) 0.0 row exitv

let densityTests =
    testList "density" [
        test "closed forms: exponential, Erlang(3), coalescent n = 3 (hypoexponential)" {
            let cases =
                [ "exponential", Models.exponential None, (fun (th: float) (t: float) -> th * exp (-th * t))
                  "erlang 3", Models.erlang 3 None, (fun th t -> th ** 3.0 * t * t * exp (-th * t) / 2.0)
                  "coalescent 3", Models.coalescent 3 None, (fun th t -> 3.0 * th * th / (2.0 * th) * (exp (-th * t) - exp (-3.0 * th * t))) ]
            for name, g, f in cases do
                let tr = Trace.record g |> TracePasses.optimize
                for th in [ 0.5; 1.0; 2.5 ] do
                    let times = [| 0.0; 0.01; 0.3; 1.0; 2.7; 10.0; 40.0 |]
                    let got = TraceLikelihood.density tr [| th |] times
                    for i in 0 .. times.Length - 1 do
                        let expected = f th times.[i]
                        let err = abs (got.[i] - expected)
                        // absolute accuracy of uniformization, relative where the density is not tiny
                        Expect.isLessThanOrEqual err (1e-12 * max expected 1e-3) (sprintf "%s θ = %g t = %g: %.17g vs %.17g" name th times.[i] got.[i] expected)
        }

        test "the start vertex is instantaneous: Exp(θ) has density θ at t = 0 (phasic returns Exp(1) + T)" {
            let tr = Trace.record (Models.exponential None)
            Expect.floatClose Accuracy.veryHigh (TraceLikelihood.density tr [| 3.0 |] [| 0.0 |]).[0] 3.0 "f(0) = θ"
        }

        test "named cyclic models vs dense e^{St}" {
            for name, g, sample in TraceTests.namedModels do
                let tr = Trace.record g |> TracePasses.optimize
                let rng = Random 31
                for _ in 1 .. 3 do
                    let theta = sample rng
                    let times = [| 0.05; 0.4; 1.5; 4.0 |]
                    let got = TraceLikelihood.density tr theta times
                    for i in 0 .. times.Length - 1 do
                        let expected = denseDensity g theta times.[i]
                        Expect.isLessThanOrEqual (abs (got.[i] - expected)) (1e-10 * max expected 1e-3) (sprintf "%s t = %g" name times.[i])
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (cyclic, discrete included) vs dense e^{St} / α T^{k−1} t" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                let tr = Trace.record g |> TracePasses.optimize
                let theta = randomTheta (Random case.Seed) g.ParamLength
                let data = if g.IsDiscrete then [| 0.0; 1.0; 2.0; 5.0; 13.0 |] else [| 0.0; 0.2; 1.0; 3.0 |]
                let got = TraceLikelihood.density tr theta data
                for i in 0 .. data.Length - 1 do
                    let expected = denseDensity g theta data.[i]
                    Expect.isLessThanOrEqual (abs (got.[i] - expected)) (1e-10 * max expected 1e-3) (sprintf "%O x = %g: %.17g vs %.17g" case data.[i] got.[i] expected))

        test "trace densities = densities from the concrete weights (same chain, bit for bit)" {
            // The trace's weight outputs equal Graph.Weights bit for bit (replay tests), so any
            // distribution function fed from them agrees with the direct one; spot-check here.
            let g = Models.rabbits3 3
            let tr = Trace.record g |> TracePasses.optimize
            let theta = [| 0.7; 1.9; 3.1 |]
            Expect.isTrue (bitsEqual (TraceEval.evaluate tr theta).Weights (g.Weights theta)) "weights"
        }

        test "observations are validated" {
            let tr = Trace.record (Models.exponential None)
            Expect.throwsT<PtdException> (fun () -> TraceLikelihood.logLikelihood tr [| 1.0 |] [| -1.0 |] |> ignore) "negative time"
            Expect.throwsT<PtdException> (fun () -> TraceLikelihood.logLikelihood tr [| 1.0 |] [| nan |] |> ignore) "NaN"
            Expect.throwsT<PtdException> (fun () -> TraceLikelihood.logLikelihood tr [| 1.0 |] [| 1e300 |] |> ignore) "a time no sweep can reach fails at once"
            let d = { Seed = 3; Cyclic = false; Discrete = true }.Graph |> Trace.record
            Expect.throwsT<PtdException> (fun () -> TraceLikelihood.logLikelihood d (Array.create d.ParamCount 1.0) [| 1.5 |] |> ignore) "fractional jumps"
            Expect.throwsT<PtdException> (fun () -> TraceLikelihood.logLikelihood d (Array.create d.ParamCount 1.0) [| 1e300 |] |> ignore) "too many jumps"
        }
    ]

let gradientTests =
    testList "gradient" [
        test "exponential: d/dθ Σ log(θ e^{−θ t}) = n/θ − Σ t (closed form)" {
            let tr = Trace.record (Models.exponential None)
            let data = [| 0.1; 0.5; 2.0; 3.3 |]
            let r = TraceLikelihood.logLikelihoodWithGradient tr [| 1.7 |] data
            Expect.floatClose Accuracy.veryHigh r.LogLikelihood (4.0 * log 1.7 - 1.7 * Array.sum data) "value"
            Expect.floatClose Accuracy.veryHigh r.Gradient.[0] (4.0 / 1.7 - Array.sum data) "gradient"
        }

        test "named models: gradient = finite differences" {
            let cases =
                [ "coalescent 10", Models.coalescent 10 None, [| 0.8 |], [| 0.3; 0.9; 1.7; 2.2; 4.0; 0.05 |]
                  "rabbits3 3", Models.rabbits3 3, [| 0.9; 1.8; 3.5 |], [| 0.1; 0.2; 0.45; 1.0 |]
                  "twoDeme 3", Models.twoDeme 3, [| 1.2; 0.4 |], [| 0.5; 1.0; 2.0; 6.0 |] ]
            for name, g, theta, data in cases do
                let tr = Trace.record g |> TracePasses.optimize
                let r = TraceLikelihood.logLikelihoodWithGradient tr theta data
                Expect.equal r.LogLikelihood (TraceLikelihood.logLikelihood tr theta data) (name + ": same value")
                checkGradient name (fun th -> TraceLikelihood.logLikelihood tr th data) theta r.Gradient (scaleOf r.LogLikelihood theta)
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (cyclic, discrete included): gradient = finite differences" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                if g.ParamLength > 0 then
                    let tr = Trace.record g |> TracePasses.optimize
                    let theta = randomTheta (Random case.Seed) g.ParamLength
                    let data = if g.IsDiscrete then [| 1.0; 2.0; 3.0; 7.0 |] else [| 0.1; 0.7; 2.0 |]
                    let r = TraceLikelihood.logLikelihoodWithGradient tr theta data
                    if Double.IsFinite r.LogLikelihood then
                        checkGradient (string case) (fun th -> TraceLikelihood.logLikelihood tr th data) theta r.Gradient (scaleOf r.LogLikelihood theta))

        test "batched over particles = one by one" {
            let g = Models.coalescent 6 None
            let tr = Trace.record g |> TracePasses.optimize
            let data = [| 0.2; 0.8; 1.5; 3.0 |]
            let thetas = Array.init 33 (fun i -> [| 0.3 + 0.1 * float i |])
            let batched = TraceLikelihood.logLikelihoodWithGradientBatch tr thetas data
            let values = TraceLikelihood.logLikelihoodBatch tr thetas data
            for i in 0 .. thetas.Length - 1 do
                let one = TraceLikelihood.logLikelihoodWithGradient tr thetas.[i] data
                Expect.equal batched.[i].LogLikelihood one.LogLikelihood "value"
                Expect.equal values.[i] one.LogLikelihood "value only"
                Expect.isTrue (bitsEqual batched.[i].Gradient one.Gradient) "gradient"
        }
    ]

[<Tests>]
let tests = testList "trace" [ testList "likelihood" [ densityTests; gradientTests ] ]
