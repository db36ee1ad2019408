/// Numerically hard models (issue 7 §3): rates over 16 orders of magnitude, near-singular cycles,
/// θ at the edge of validity, data far in the tail. The core's log-likelihood and gradient must be
/// finite and accurate (closed forms, stated tolerances) or a PtdException — never NaN, and −∞
/// only for a true zero density (with a zero gradient, the documented policy).
module Ptd.Core.Tests.HardNumericsTests

open System
open Expecto
open FsCheck.FSharp
open Ptd.Core

let private tr (g: Graph) = Trace.record g |> TracePasses.optimize
let private ll (t: Trace) theta data = TraceLikelihood.logLikelihoodWithGradient t theta data

let private close (tol: float) (actual: float) (expected: float) (what: string) =
    let err = abs (actual - expected) / max 1.0 (abs expected)
    if not (err <= tol) then failtestf "%s: %.17g, expected %.17g (relative error %.3g > %.3g)" what actual expected err tol

/// Two phases in sequence with rates θ₀ then θ₁ (hypoexponential).
let private hypo =
    lazy
        (ModelFile.parse
            """{"format": "ptd-graph/1", "paramLength": 2, "stateLength": 1, "states": [[1], [2], [3]],
                "start": [{"to": 0, "w": 1}],
                "edges": [{"from": 0, "to": 1, "coef": [1, 0]}, {"from": 1, "to": 2, "coef": [0, 1]}]}"""
         |> tr)

/// Discrete: leave state 1 with probability θ per step (geometric number of jumps).
let private geometric =
    lazy
        (ModelFile.parse
            """{"format": "ptd-graph/1", "discrete": true, "paramLength": 1, "stateLength": 1, "states": [[1], [2]],
                "start": [{"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "coef": [1]}]}"""
         |> tr)

/// A near-singular cycle: 1 → 2 at rate 1, 2 → 1 at rate r, 2 → absorbed at rate δ; the return
/// probability r/(r + δ) is 1 − ~1e-12 for δ = 1e-12 r.
let private cycle (r: float) (delta: float) =
    let b = GraphBuilder(1, 0, false)
    let s1 = b.FindOrCreate [| 1 |]
    let s2 = b.FindOrCreate [| 2 |]
    let s3 = b.FindOrCreate [| 3 |]
    b.AddStartEdge(s1, 1.0)
    b.AddEdge(s1, s2, 1.0)
    b.AddEdge(s2, s1, r)
    b.AddEdge(s2, s3, delta)
    b.Build()

/// f(t) = δ (e^{λ₁t} − e^{λ₂t})/(λ₁ − λ₂) for S = [[−1, 1], [r, −(r+δ)]], α = (1, 0): the
/// eigenvalues from the stable quadratic formula (no cancellation for δ ≪ 1).
let private cycleLogPdf (r: float) (delta: float) (t: float) =
    let a = 1.0
    let trace = a + r + delta
    let det = a * delta
    let q = (trace + sqrt (trace * trace - 4.0 * det)) / 2.0
    let l2 = -q
    let l1 = -det / q
    log delta + log (exp (l1 * t) - exp (l2 * t)) - log (l1 - l2)

/// The property's models, recorded once.
let private randomModels = lazy [| tr (Models.coalescent 4 None), 1; tr (Models.rabbits3 2), 3; tr (Models.erlang 5 None), 1 |]

[<Tests>]
let tests =
    testList "hard numerics" [
        test "exponential far in the tail (t up to 10⁵ × the mean): log f = log θ − θt, ∂ = 1/θ − t (1e-12)" {
            let t = tr (Models.exponential None)
            for x in [ 1.0; 100.0; 700.0; 746.0; 1e3; 1e4; 1e5 ] do
                for theta in [ 1.0; 0.5 ] do
                    let r = ll t [| theta |] [| x |]
                    close 1e-12 r.LogLikelihood (log theta - theta * x) (sprintf "log f(%g; %g)" x theta)
                    close 1e-10 r.Gradient.[0] (1.0 / theta - x) (sprintf "∂ log f(%g; %g)" x theta)
        }

        test "Erlang(3) far in the tail: log f = 3 log θ + 2 log t − log 2 − θt (1e-11)" {
            let t = tr (Models.erlang 3 None)
            for x in [ 1.0; 100.0; 1e3; 1e4 ] do
                let r = ll t [| 1.0 |] [| x |]
                close 1e-11 r.LogLikelihood (2.0 * log x - log 2.0 - x) (sprintf "log f(%g)" x)
                close 1e-9 r.Gradient.[0] (3.0 - x) (sprintf "∂ log f(%g)" x)
        }

        test "discrete pmf underflow (0.5^2000) and a near-certain self-loop (1 − 1e-12): closed form (1e-12)" {
            let t = geometric.Value
            for p, k in [ 0.5, 1200.0; 0.5, 2000.0; 1e-12, 1e6; 1e-12, 1.0; 0.999999, 3.0 ] do
                let r = ll t [| p |] [| k |]
                close 1e-12 r.LogLikelihood ((k - 1.0) * Math.Log(1.0 - p) + log p) (sprintf "log P(τ = %g; p = %g)" k p)
                close 1e-9 r.Gradient.[0] (-(k - 1.0) / (1.0 - p) + 1.0 / p) (sprintf "∂ log P(τ = %g; p = %g)" k p)
        }

        test "rates 1e-3 … 1e3 (six orders apart) and 1e-4 … 1e4 at short times: closed form (1e-9)" {
            for a, b, x in [ 1e3, 1e-3, 1e3; 1e3, 1e-3, 10.0; 1e4, 1e-2, 100.0; 1e4, 1e-4, 1.0 ] do
                let r = ll hypo.Value [| a; b |] [| x |]
                let exact = log (a * b / (a - b)) + log (exp (-b * x) - exp (-a * x))
                close 1e-9 r.LogLikelihood exact (sprintf "rates %g, %g at t = %g" a b x)
                Expect.all r.Gradient Double.IsFinite "gradient finite"
        }

        test "rates 1e-8 … 1e8: beyond the sweep's step budget, a PtdException that says how to fix it" {
            let e = Expect.throwsC (fun () -> ll hypo.Value [| 1e8; 1e-8 |] [| 1e8 |] |> ignore) id
            Expect.isTrue (e :? PtdException) "PtdException"
            Expect.stringContains e.Message "uniformization steps" "says why"
            Expect.stringContains e.Message "rescale" "says how to fix"
        }

        test "near-singular cycle (return probability 1 − 1e-12): closed form via stable eigenvalues (1e-9)" {
            for r, delta in [ 1.0, 1e-12; 10.0, 1e-11; 1.0, 1e-6 ] do
                let t = tr (cycle r delta)
                for x in [ 0.1; 1.0; 10.0; 300.0 ] do
                    let got = TraceLikelihood.logLikelihood t [||] [| x |]
                    close 1e-9 got (cycleLogPdf r delta x) (sprintf "cycle r = %g, δ = %g, t = %g" r delta x)
        }

        test "θ at the boundary: 0 and negative → PtdException naming θ; tiny θ exact; huge θ → PtdException" {
            let t = tr (Models.exponential None)
            for bad in [ 0.0; -1.0; -1e-300 ] do
                let e = Expect.throwsC (fun () -> ll t [| bad |] [| 1.0 |] |> ignore) id
                Expect.isTrue (e :? PtdException) (sprintf "θ = %g: PtdException" bad)
                Expect.stringContains e.Message "θ" (sprintf "θ = %g: names θ" bad)
            let r = ll t [| 1e-300 |] [| 1.0 |]
            close 1e-12 r.LogLikelihood (log 1e-300 - 1e-300) "θ = 1e-300"
            close 1e-12 r.Gradient.[0] 1e300 "∂ at θ = 1e-300"
            for huge in [ 1e8; 1e300 ] do
                Expect.throwsT<PtdException> (fun () -> ll t [| huge |] [| 1.0 |] |> ignore) (sprintf "θ = %g" huge)
            for nonFinite in [ nan; infinity ] do
                Expect.throwsT<PtdException> (fun () -> ll t [| nonFinite |] [| 1.0 |] |> ignore) (sprintf "θ = %g" nonFinite)
        }

        test "a true zero density: −∞ with a zero gradient (the documented policy), not NaN" {
            // Erlang(2) in discrete form: at least 2 jumps, so P(τ = 1) = 0 exactly.
            let t =
                ModelFile.parse
                    """{"format": "ptd-graph/1", "discrete": true, "paramLength": 1, "stateLength": 1, "states": [[1], [2], [3]],
                        "start": [{"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "coef": [1]}, {"from": 1, "to": 2, "coef": [1]}]}"""
                |> tr
            let r = ll t [| 0.5 |] [| 1.0; 3.0 |]
            Expect.isTrue (Double.IsNegativeInfinity r.LogLikelihood) "−∞"
            Expect.equal r.Gradient [| 0.0 |] "zero gradient"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 300 } "never NaN: random θ ∈ [1e-6, 1e3], t ∈ [1e-8, 1e4]/θ on coalescent, rabbits3, Erlang" <|
            Prop.forAll
                (Arb.fromGen (Gen.zip3 (Gen.choose (0, 2)) (Gen.choose (-6000, 3000)) (Gen.choose (-8000, 4000))))
                (fun (which, a, b) ->
                    let t, d = randomModels.Value.[which]
                    let theta = Array.create d (10.0 ** (float a / 1000.0))
                    let x = 10.0 ** (float b / 1000.0) / theta.[0]
                    try
                        let r = ll t theta [| x; x / 2.0 |]
                        Expect.isFalse (Double.IsNaN r.LogLikelihood) "log-likelihood NaN"
                        Expect.isFalse (Double.IsPositiveInfinity r.LogLikelihood) "+∞"
                        Expect.all r.Gradient (fun v -> not (Double.IsNaN v)) "gradient NaN"
                    with :? PtdException as e -> Expect.isNotEmpty e.Message "message")

        test "far-tail gradients match central differences of the log-likelihood (coalescent n = 4, 1e-6)" {
            let t = tr (Models.coalescent 4 None)
            for x in [ 50.0; 400.0 ] do
                let theta = 1.3
                let r = ll t [| theta |] [| x |]
                let h = 1e-5
                let fd = (TraceLikelihood.logLikelihood t [| theta + h |] [| x |] - TraceLikelihood.logLikelihood t [| theta - h |] [| x |]) / (2.0 * h)
                Expect.isTrue (Double.IsFinite r.LogLikelihood) (sprintf "finite at t = %g" x)
                close 1e-6 r.Gradient.[0] fd (sprintf "∂ at t = %g" x)
        }
    ]
