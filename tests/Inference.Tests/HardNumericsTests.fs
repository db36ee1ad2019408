/// Numerically hard models through the host's LikelihoodKernel and the SVGD target
/// TraceLogDensity (issue 7 §3): the same closed forms as the core's HardNumericsTests. The
/// kernel's contract: a finite, accurate value, or a PtdException naming the observation and θ —
/// never NaN (TraceLogDensity turns a zero density into a PtdException before SVGD sees it).
module Ptd.Inference.Tests.HardNumericsTests

open System
open Expecto
open FsCheck.FSharp
open Ptd.Core
open Ptd.Host.Kernels
open Ptd.Inference.Tests.Common

let private close (tol: float) (actual: float) (expected: float) (what: string) =
    let err = abs (actual - expected) / max 1.0 (abs expected)
    if not (err <= tol) then failtestf "%s: %.17g, expected %.17g (relative error %.3g > %.3g)" what actual expected err tol

let private geometric () =
    ModelFile.parse
        """{"format": "ptd-graph/1", "discrete": true, "paramLength": 1, "stateLength": 1, "states": [[1], [2]],
            "start": [{"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "coef": [1]}]}"""

let private density (g: Graph) (theta: float[]) (data: float[]) =
    let target = TraceLogDensity(likelihoodKernel g, observations data)
    let lp = Array.zeroCreate 1
    let grad = Array.zeroCreate theta.Length
    target.LogDensityAndGradient(ReadOnlySpan theta, Span lp, Span grad)
    lp.[0], grad

[<Tests>]
let tests =
    testList "hard numerics (host)" [
        test "exponential and Erlang(3) far in the tail (t up to 10⁴ × the mean): closed forms (1e-11)" {
            let e = likelihoodKernel (Models.exponential None)
            for x in [ 100.0; 746.0; 1e4 ] do
                let ll, g = kernelLoglik e [| 1.0 |] [| x |]
                close 1e-12 ll -x (sprintf "exp log f(%g)" x)
                close 1e-10 g.[0] (1.0 - x) (sprintf "exp ∂(%g)" x)
            let k = likelihoodKernel (Models.erlang 3 None)
            for x in [ 100.0; 1e3; 1e4 ] do
                let ll, g = kernelLoglik k [| 1.0 |] [| x |]
                close 1e-11 ll (2.0 * log x - log 2.0 - x) (sprintf "Erlang log f(%g)" x)
                close 1e-9 g.[0] (3.0 - x) (sprintf "Erlang ∂(%g)" x)
        }

        test "discrete pmf underflow (0.5^2000) and a near-certain self-loop (1 − 1e-12): closed form (1e-12)" {
            let k = likelihoodKernel (geometric ())
            for p, n in [ 0.5, 2000.0; 1e-12, 1e6; 0.999999, 3.0 ] do
                let ll, g = kernelLoglik k [| p |] [| n |]
                close 1e-12 ll ((n - 1.0) * Math.Log(1.0 - p) + log p) (sprintf "log P(τ = %g; p = %g)" n p)
                close 1e-9 g.[0] (-(n - 1.0) / (1.0 - p) + 1.0 / p) (sprintf "∂ log P(τ = %g; p = %g)" n p)
        }

        test "θ at the boundary: 0, negative, NaN, huge → PtdException; tiny θ exact" {
            let k = likelihoodKernel (Models.exponential None)
            for bad in [ 0.0; -1.0; nan; infinity; 1e300 ] do
                Expect.throwsT<PtdException> (fun () -> kernelLoglik k [| bad |] [| 1.0 |] |> ignore) (sprintf "θ = %g" bad)
            let ll, g = kernelLoglik k [| 1e-300 |] [| 1.0 |]
            close 1e-12 ll (log 1e-300) "θ = 1e-300"
            close 1e-12 g.[0] 1e300 "∂ at θ = 1e-300"
        }

        test "SVGD target: a zero density is a PtdException naming the observation, not −∞ or NaN" {
            let g =
                ModelFile.parse
                    """{"format": "ptd-graph/1", "discrete": true, "paramLength": 1, "stateLength": 1, "states": [[1], [2], [3]],
                        "start": [{"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "coef": [1]}, {"from": 1, "to": 2, "coef": [1]}]}"""
            let e = Expect.throwsC (fun () -> density g [| 0.5 |] [| 3.0; 1.0 |] |> ignore) id
            Expect.isTrue (e :? PtdException) "PtdException"
            Expect.stringContains e.Message "observation 2" "names the observation"
            Expect.stringContains e.Message "density 0" "says why"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 150 } "never NaN: random θ ∈ [1e-4, 1e3], t ∈ [1e-8, 1e4]/θ, kernel and SVGD target" <|
            Prop.forAll
                (Arb.fromGen (Gen.zip3 (Gen.choose (0, 1)) (Gen.choose (-4000, 3000)) (Gen.choose (-8000, 4000))))
                (fun (which, a, b) ->
                    let g = [| Models.coalescent 4 None; Models.erlang 5 None |].[which]
                    let theta = [| 10.0 ** (float a / 1000.0) |]
                    let x = 10.0 ** (float b / 1000.0) / theta.[0]
                    for f in [ (fun () -> kernelLoglik (likelihoodKernel g) theta [| x; x / 3.0 |]); (fun () -> density g theta [| x; x / 3.0 |]) ] do
                        try
                            let ll, grad = f ()
                            Expect.isTrue (Double.IsFinite ll) (sprintf "log-likelihood %g at θ = %g, t = %g" ll theta.[0] x)
                            Expect.all grad Double.IsFinite "gradient finite"
                        with :? PtdException as e -> Expect.isNotEmpty e.Message "message")
    ]
