module Ptd.Svgd.Tests.TransformPriorTests

open System
open Expecto
open Ptd.Core
open Ptd.Host.Svgd
open Ptd.Svgd.Tests.Targets

let transforms = [ ParameterTransform.Softplus; ParameterTransform.Exp; ParameterTransform.Identity ]
let phis = [ -30.0; -8.0; -2.5; -0.3; 0.0; 0.4; 1.7; 6.0; 25.0 ]

let expectClose (tol: float) (actual: float) (expected: float) (msg: string) =
    if abs (actual - expected) > tol * max 1.0 (abs expected) then
        failtestf "%s: got %.17g, expected %.17g (tolerance %g relative)" msg actual expected tol

let logPi = log Math.PI

[<Tests>]
let tests =
    testList "svgd" [
        testList "transforms" [
            for t in transforms do
                test $"{t.Name}: T′ and d/dφ log T′ match central differences, T⁻¹∘T = id" {
                    for phi in phis do
                        let h = 1e-5 * max 1.0 (abs phi)
                        let dT = t.Derivative phi
                        expectClose 1e-6 dT (fd t.Forward phi h) $"T′({phi})"
                        expectClose 1e-6 (t.LogJacobianDerivative phi) (fd t.LogJacobian phi h) $"(log T′)′({phi})"
                        if dT > 0.0 && not (Double.IsInfinity(log dT)) then
                            expectClose 1e-12 (t.LogJacobian phi) (log dT) $"log T′({phi})"
                        let theta = t.Forward phi
                        if t.InRange theta && theta > 1e-300 then
                            expectClose 1e-10 (t.Inverse theta) phi $"T⁻¹(T({phi}))"
                }
            test "softplus closed forms" {
                let sp = ParameterTransform.Softplus
                expectClose 1e-15 (sp.Forward 0.0) (log 2.0) "softplus(0) = ln 2"
                expectClose 1e-15 (sp.Forward 2.0) (log (1.0 + exp 2.0)) "softplus(2)"
                expectClose 1e-15 (sp.Forward 800.0) 800.0 "no overflow for large φ"
                expectClose 1e-12 (sp.Forward -40.0) (exp -40.0) "softplus(φ) ≈ e^φ for φ ≪ 0"
                expectClose 1e-15 (sp.Derivative 0.0) 0.5 "σ(0)"
                expectClose 1e-12 (sp.LogJacobian -3.0) (log (1.0 / (1.0 + exp 3.0))) "log σ(−3)"
                expectClose 1e-15 (sp.Inverse 1e-8) (log 1e-8 + 0.5e-8) "inverse near 0: log(expm1 θ) = log θ + θ/2 + O(θ²)"
                expectClose 1e-15 (sp.Inverse 50.0) (50.0 + log (1.0 - exp -50.0)) "inverse for large θ"
            }
            test "out of range θ is a PtdException with a hint" {
                let e = throws<PtdException> (fun () -> ParameterTransform.Softplus.Inverse -1.0 |> ignore)
                Expect.stringContains e.Message "θ > 0" "says the range"
                throws<PtdException> (fun () -> ParameterTransform.Exp.Inverse 0.0 |> ignore) |> ignore
                Expect.equal (ParameterTransform.Parse "Softplus") ParameterTransform.Softplus "parse"
                Expect.equal (ParameterTransform.Parse "identity") ParameterTransform.Identity "parse"
                let p = throws<PtdException> (fun () -> ParameterTransform.Parse "logit" |> ignore)
                Expect.stringContains p.Message "softplus" "lists the choices"
            }
        ]

        testList "priors" [
            test "log densities equal closed forms" {
                let xs = [ 0.05; 0.3; 1.0; 2.2; 7.5 ]
                for x in xs do
                    expectClose 1e-13 ((Prior.Gamma(2.0, 1.0)).LogDensity x) (log x - x) $"gamma:2,1 at {x}"
                    // Γ(0.5) = √π.
                    expectClose 1e-13 ((Prior.Gamma(0.5, 2.0)).LogDensity x) (0.5 * log 2.0 - 0.5 * logPi - 0.5 * log x - 2.0 * x) $"gamma:0.5,2 at {x}"
                    // Γ(4.5) = 3.5·2.5·1.5·0.5·√π.
                    let lg45 = log (3.5 * 2.5 * 1.5 * 0.5) + 0.5 * logPi
                    expectClose 1e-13 ((Prior.Gamma(4.5, 3.0)).LogDensity x) (4.5 * log 3.0 - lg45 + 3.5 * log x - 3.0 * x) $"gamma:4.5,3 at {x}"
                    expectClose 1e-13 ((Prior.LogNormal(0.0, 1.0)).LogDensity x) (-log x - 0.5 * log (2.0 * Math.PI) - 0.5 * (log x) ** 2.0) $"lognormal:0,1 at {x}"
                    expectClose 1e-13 ((Prior.LogNormal(0.5, 2.0)).LogDensity x) (-log x - log 2.0 - 0.5 * log (2.0 * Math.PI) - (log x - 0.5) ** 2.0 / 8.0) $"lognormal:0.5,2 at {x}"
                    expectClose 1e-13 ((Prior.Normal(1.0, 2.0)).LogDensity x) (-log 2.0 - 0.5 * log (2.0 * Math.PI) - (x - 1.0) ** 2.0 / 8.0) $"normal:1,2 at {x}"
                    expectClose 1e-15 ((Prior.Uniform(0.0, 10.0)).LogDensity x) (-log 10.0) $"uniform:0,10 at {x}"
                Expect.equal ((Prior.Uniform(0.0, 10.0)).LogDensity 10.5) Double.NegativeInfinity "outside the uniform"
                Expect.equal ((Prior.Gamma(2.0, 1.0)).LogDensity -1.0) Double.NegativeInfinity "gamma at x < 0"
                Expect.equal ((Prior.LogNormal(0.0, 1.0)).LogDensity 0.0) Double.NegativeInfinity "lognormal at 0"
                Expect.equal (Prior.Flat.LogDensity 3.0) 0.0 "flat"
            }
            test "log-density derivatives match central differences" {
                let priors = [ Prior.Gamma(2.0, 1.0); Prior.Gamma(0.7, 3.0); Prior.LogNormal(0.3, 0.8); Prior.Normal(-1.0, 0.5); Prior.Uniform(0.0, 10.0) ]
                for prior in priors do
                    for x in [ 0.1; 0.9; 2.0; 4.4 ] do
                        expectClose 1e-7 (prior.LogDensityDerivative x) (fd prior.LogDensity x 1e-6) $"{prior.Spec} at {x}"
            }
            test "specs parse" {
                Expect.equal (Prior.Parse "gamma:2,1").Spec "gamma:2,1" "gamma"
                Expect.equal (Prior.Parse " LogNormal: 0 , 1.5 ").Spec "lognormal:0,1.5" "spaces and case"
                Expect.equal (Prior.Parse "normal:0,1").Spec "normal:0,1" "normal"
                Expect.equal (Prior.Parse "uniform:0,10").Spec "uniform:0,10" "uniform"
                Expect.equal (Prior.Parse "uniform:-1e-3,2.5E2").Spec "uniform:-0.001,250" "exponents"
                Expect.equal (Prior.Parse "flat").Spec "flat" "flat"
                let list = Prior.ParseList "gamma:2,1,normal:0,1,flat,uniform:0,10"
                Expect.equal (list |> Seq.map (fun p -> p.Spec) |> List.ofSeq) [ "gamma:2,1"; "normal:0,1"; "flat"; "uniform:0,10" ] "list"
                let pp = ParameterPrior.ParseList "gamma:2,1,lognormal:0,1@phi"
                Expect.equal pp.[0].Space PriorSpace.Theta "default space θ"
                Expect.equal pp.[1].Space PriorSpace.Phi "@phi"
                Expect.equal (pp.[1].ToString()) "lognormal:0,1@phi" "round trip"
            }
            testList "spec errors are PtdExceptions saying what and how" [
                for spec, fragment in
                    [ "gama:2,1", "unknown family"
                      "gamma:2", "takes 2 argument"
                      "gamma:2,1,3", "takes 2 argument"
                      "normal:0,-1", "sigma must be a positive"
                      "gamma:0,1", "shape must be a positive"
                      "uniform:5,1", "must be less than"
                      "gamma:a,1", "not a number"
                      "normal:0,1@psi", "unknown space"
                      "", "unknown family" ] do
                    test $"'{spec}'" {
                        let e = throws<PtdException> (fun () -> ParameterPrior.Parse spec |> ignore)
                        Expect.stringContains e.Message fragment "message"
                    }
                test "a list starting with a number" {
                    let e = throws<PtdException> (fun () -> Prior.ParseList "2,gamma:2,1" |> ignore)
                    Expect.stringContains e.Message "does not start with a family" "message"
                }
            ]
            test "custom prior delegates" {
                let p = Prior.Custom("half-cauchy", (fun x -> -log (1.0 + x * x)), (fun x -> -2.0 * x / (1.0 + x * x)), (fun u -> tan (Math.PI * u / 2.0)))
                Expect.equal (p.LogDensity 1.0) (-log 2.0) "log density"
                Expect.isTrue p.CanSample "has an inverse CDF"
                Expect.isFalse (Prior.Custom("x", id, id)).CanSample "no inverse CDF"
            }
        ]
    ]
