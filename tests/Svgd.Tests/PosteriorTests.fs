module Ptd.Svgd.Tests.PosteriorTests

open System
open Expecto
open Ptd.Host.Svgd
open Ptd.Svgd.Tests.Targets

/// Checks PhiPosterior's φ-gradient against central differences of its own log posterior, and
/// returns the log posteriors for closed-form checks.
let checkGradient (posterior: PhiPosterior) (phi: float[]) (tol: float) =
    let d = posterior.Dimension
    let n = phi.Length / d
    let eval (x: float[]) =
        let theta = Array.zeroCreate x.Length
        let lp = Array.zeroCreate n
        let g = Array.zeroCreate x.Length
        posterior.Evaluate(ReadOnlySpan x, Span theta, Span lp, Span g)
        lp, g
    let lp, g = eval phi
    for i in 0 .. phi.Length - 1 do
        let h = 1e-5 * max 1.0 (abs phi.[i])
        let plus = Array.copy phi
        let minus = Array.copy phi
        plus.[i] <- plus.[i] + h
        minus.[i] <- minus.[i] - h
        let numeric = ((fst (eval plus)).[i / d] - (fst (eval minus)).[i / d]) / (2.0 * h)
        let err = abs (g.[i] - numeric) / max 1.0 (abs numeric)
        if err > tol then
            failtestf "∂/∂φ[%d]: analytic %.12g, finite difference %.12g (error %.2g)" i g.[i] numeric err
    lp

[<Tests>]
let tests =
    testList "svgd" [
        testList "posterior" [
            test "φ-gradient (transforms, θ- and φ-priors, Jacobians) matches central differences" {
                let options =
                    SvgdOptions(
                        Transforms = [| ParameterTransform.Softplus; ParameterTransform.Exp; ParameterTransform.Identity |],
                        Priors =
                            [| ParameterPrior(Prior.Gamma(2.0, 1.5))
                               ParameterPrior(Prior.Normal(0.3, 0.7), PriorSpace.Phi)
                               ParameterPrior(Prior.Normal(-1.0, 2.0)) |])
                let posterior = PhiPosterior(CoupledTarget 3, options)
                let phi = [| 0.3; -0.2; 1.1; -1.5; 0.8; -0.4; 2.5; 1.3; 0.05 |]
                let lp = checkGradient posterior phi 1e-6
                // Closed form of particle 0's log posterior, written out by hand.
                let sp x = log (1.0 + exp x)
                let t0, t1, t2 = sp 0.3, exp -0.2, 1.1
                let target = -0.25 * (t0 * t0 + t1 * t1 + t2 * t2) + 0.3 * (t0 * sin t1 + t1 * sin t2 + t2 * sin t0)
                let gammaTerm = 2.0 * log 1.5 + log t0 - 1.5 * t0 + log (1.0 / (1.0 + exp -0.3))
                let normalPhi = -log 0.7 - 0.5 * log (2.0 * Math.PI) - 0.5 * ((-0.2 - 0.3) / 0.7) ** 2.0
                let normalTheta = -log 2.0 - 0.5 * log (2.0 * Math.PI) - 0.5 * ((1.1 + 1.0) / 2.0) ** 2.0
                Expect.floatClose { absolute = 1e-12; relative = 1e-12 } lp.[0] (target + gammaTerm + normalPhi + normalTheta) "log posterior"
            }

            test "moment penalty: value and gradient" {
                let data = exponentialDraws 5 40 2.0
                let sample = MomentPenalty.SampleRawMoments(data, 3)
                Expect.floatClose Accuracy.veryHigh sample.[0] (mean data) "first raw moment"
                Expect.floatClose Accuracy.veryHigh sample.[2] (data |> Array.averageBy (fun x -> x ** 3.0)) "third raw moment"
                let penalty = MomentPenalty(ToyMoments 3, sample, 0.7, standardize = true)
                let options = SvgdOptions(Penalty = penalty, Priors = [| ParameterPrior(Prior.Gamma(2.0, 1.0)); ParameterPrior(Prior.LogNormal(0.0, 1.0)) |])
                let posterior = PhiPosterior(NormalTarget(2, 0.5, 1.0), options)
                let phi = [| 0.4; -0.3; 1.2; 0.9 |]
                checkGradient posterior phi 1e-6 |> ignore
                // The penalty alone, at θ = (2, 1): E[T^k] = k!/2^k.
                let v = Array.zeroCreate 1
                let g = Array.zeroCreate 2
                (penalty :> ILogDensity).LogDensityAndGradient(ReadOnlySpan [| 2.0; 1.0 |], Span v, Span g)
                let expected =
                    -0.7 * Seq.sum (seq { for k, f in [ 1, 1.0; 2, 2.0; 3, 6.0 ] -> ((f / 2.0 ** float k - sample.[k - 1]) / sample.[k - 1]) ** 2.0 })
                Expect.floatClose Accuracy.veryHigh v.[0] expected "−λ Σ ((E − m)/m)²"
            }

            test "penalty of the wrong dimension is rejected" {
                let penalty = MomentPenalty(ToyMoments 2, [| 1.0; 2.0 |], 1.0)
                let options = SvgdOptions(Penalty = penalty, InitialParticles = [| [| 1.0 |]; [| 2.0 |] |], ParticleCount = 2)
                let e = throws<ArgumentException> (fun () -> options.Validate 1)
                Expect.equal e.ParamName "Penalty" "names the field"
            }
        ]
    ]
