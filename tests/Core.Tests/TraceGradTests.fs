/// Exact gradients over traces vs central finite differences (issue 3 §3, §6).
module Ptd.Core.Tests.TraceGradTests

open System
open System.Runtime.Intrinsics
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Core.Tests.TraceGraphs

/// Central differences with one Richardson step (error O(h⁴)): accurate to ~1e-10 relative for
/// the smooth functions here, far below the 1e-6 tolerance.
let fd (f: float[] -> float) (theta: float[]) (k: int) =
    let at (h: float) =
        let p = Array.copy theta
        let m = Array.copy theta
        p.[k] <- p.[k] + h
        m.[k] <- m.[k] - h
        (f p - f m) / (2.0 * h)
    let h = 1e-3 * max 0.1 (abs theta.[k])
    (4.0 * at (h / 2.0) - at h) / 3.0

/// Gradient check: relative error ≤ 1e-6, with an absolute floor `scale`·1e-6 for components
/// that are ~0 (there a relative error is meaningless).
let checkGradient (label: string) (f: float[] -> float) (theta: float[]) (grad: float[]) (scale: float) =
    Expect.equal grad.Length theta.Length (sprintf "%s: gradient length" label)
    for k in 0 .. theta.Length - 1 do
        let expected = fd f theta k
        let err = abs (grad.[k] - expected)
        let tol = 1e-6 * max (abs expected) scale
        if not (err <= tol) then
            failtestf "%s: ∂/∂θ_%d = %.15g, finite differences %.15g (error %.3g > %.3g) at θ = %A" label k grad.[k] expected err tol theta

/// A typical gradient size for f at θ: |f| / max|θ_k| (the floor for components that are ~0).
let scaleOf (value: float) (theta: float[]) = 1e-3 * abs value / (theta |> Array.fold (fun m x -> max m (abs x)) 1e-3)

/// Programs exercising one op each, over θ = (θ0, θ1): (name, build → output op).
let ruleCases: (string * (TraceBuilder -> int)) list =
    let basis (b: TraceBuilder) =
        let x = b.Param 0
        let y = b.Param 1
        // u = θ0·θ1 + 0.5 keeps every operand away from 0 and makes the chain rule matter
        let u = b.Add(b.Mul(x, y), b.Const 0.5)
        x, y, u
    [ "add", (fun b -> let x, y, u = basis b in b.Add(u, b.Mul(x, y)))
      "sub", (fun b -> let x, _, u = basis b in b.Sub(u, b.Mul(x, x)))
      "mul", (fun b -> let x, _, u = basis b in b.Mul(u, x))
      "div", (fun b -> let _, y, u = basis b in b.Div(u, b.Add(y, b.Const 1.0)))
      "div (numerator only)", (fun b -> let _, _, u = basis b in b.Div(u, b.Const 3.0))
      "inv", (fun b -> let _, _, u = basis b in b.Inv u)
      "sum", (fun b -> let x, y, u = basis b in b.Sum([| u; x; y; u |], 0, 4))
      "one_minus", (fun b -> let _, _, u = basis b in b.Mul(b.OneMinus u, u))
      "neg", (fun b -> let x, _, u = basis b in b.Mul(b.Neg u, x))
      "log", (fun b -> let _, _, u = basis b in b.Log u)
      "exp", (fun b -> let _, _, u = basis b in b.Exp(b.Neg u))
      "dot", (fun b -> let _, _, u = basis b in b.Mul(b.Dot(0.3, [| 1.5; -0.7 |], 0), u))
      "param", (fun b -> let _, y, _ = basis b in b.Mul(y, y))
      "const", (fun b -> let x, _, _ = basis b in b.Mul(b.Const 2.5, x)) ]

/// Two tangent vectors equal lane by lane, bit for bit.
let sameLanes (a: Vector256<float>) (b: Vector256<float>) =
    Seq.forall (fun k -> BitConverter.DoubleToInt64Bits(a.GetElement k) = BitConverter.DoubleToInt64Bits(b.GetElement k)) [ 0 .. 3 ]

let ruleTests =
    testList "derivative rules" [
        for name, make in ruleCases do
            test (sprintf "%s: reverse and forward mode = finite differences" name) {
                let b = TraceBuilder(2, false, false)
                let out = make b
                let p = b.ToProgram()
                let f (th: float[]) = (TraceEval.programValues p th).[out]
                for theta in [ [| 0.7; 1.3 |]; [| 2.1; 0.4 |]; [| -0.3; 0.9 |] ] do
                    let values = TraceEval.programValues p theta
                    let adj = Array.zeroCreate p.OpCount
                    adj.[out] <- 1.0
                    let reverse = TraceGrad.backwardOps p values adj
                    checkGradient (name + " (reverse)") f theta reverse (scaleOf values.[out] theta)
                    let forward = Array.init 2 (fun k -> (TraceGrad.tangentOps p values (Array.init 2 (fun j -> if j = k then 1.0 else 0.0))).[out])
                    checkGradient (name + " (forward)") f theta forward (scaleOf values.[out] theta)
                    let lanesValues = Array.zeroCreate p.OpCount
                    let lanes = Array.zeroCreate p.OpCount
                    TraceTangents.opsInto p theta lanesValues lanes
                    Expect.isTrue (bitsEqual lanesValues values) (name + ": forward-mode lanes leave the values bit for bit")
                    let inLanes = Array.init 2 (fun k -> lanes.[out].GetElement k)
                    checkGradient (name + " (forward, vector lanes)") f theta inLanes (scaleOf values.[out] theta)
                    for k in 2 .. 3 do Expect.equal (lanes.[out].GetElement k) 0.0 (name + ": unused lanes stay 0")
                    // the same rule through an evaluation plan (every op its own slot; a ring of 4)
                    for w in [ 0; 4 ] do
                        let pinned = Array.init p.OpCount (fun i -> i = out)
                        let plan = TracePlan.opsOf p (TracePlan.slotsOf p pinned w) w
                        let pv = Array.zeroCreate plan.Slots
                        let pt = Array.zeroCreate plan.Slots
                        TraceTangentPlan.opsPlanned plan p theta pv pt
                        Expect.equal (BitConverter.DoubleToInt64Bits pv.[out]) (BitConverter.DoubleToInt64Bits values.[out]) (sprintf "%s, window %d: planned value" name w)
                        Expect.isTrue (sameLanes pt.[out] lanes.[out]) (sprintf "%s, window %d: planned tangent = op by op, bit for bit" name w)
            }
    ]

/// The two derivative modes a moment gradient can run in (`TraceGrad.Work`): forward mode
/// (`TraceTangents`, the default for ≤ 4 parameters) and reverse mode (the default above that).
let modes = [ "forward mode", true; "reverse mode", false ]

/// Moments straight from direct elimination (no trace): the function finite differences see.
let directMoments (g: Graph) (r: float[]) (k: int) (theta: float[]) = Moments.moments (Elimination.eliminate g theta) r k

let checkMomentGradients (label: string) (g: Graph) (t: Trace) (theta: float[]) =
    let rewards = [ yield "ones", Rewards.ones g
                    if g.StateLength > 0 then yield "slot 0", Rewards.ofSlot g 0 |> Array.map abs ]
    for mode, forward in modes do
        for rname, r in rewards do
            let l = sprintf "%s, reward %s, %s" label rname mode
            let w () = TraceGrad.Work(t, false, forward)
            let ms, gm = TraceGrad.momentsWithGradientOn (w ()) t theta r [| 1.0 |]
            let m = ms.[0]
            Expect.equal m (directMoments g r 1 theta).[0] (l + ": mean = direct, bit for bit")
            checkGradient (l + ": ∂E[Y]") (fun th -> (directMoments g r 1 th).[0]) theta gm (scaleOf m theta)
            let v, gv = TraceGrad.varianceWithGradientOn (w ()) t theta r
            checkGradient (l + ": ∂Var[Y]") (fun th -> let x = directMoments g r 2 th in x.[1] - x.[0] * x.[0]) theta gv (scaleOf v theta)
            let m3s, g3 = TraceGrad.momentsWithGradientOn (w ()) t theta r [| 0.0; 0.0; 1.0 |]
            checkGradient (l + ": ∂E[Y³]") (fun th -> (directMoments g r 3 th).[2]) theta g3 (scaleOf m3s.[2] theta)

let momentTests =
    testList "moment gradients" [
        for name, g, sample in TraceTests.namedModels do
            test (sprintf "%s: ∂mean, ∂variance, ∂E[Y³] = finite differences" name) {
                let t = Trace.record g |> TracePasses.optimize
                let rng = Random 41
                for _ in 1 .. 5 do checkMomentGradients name g t (sample rng)
            }

        test "coalescent: ∂E[T_MRCA]/∂θ = −2(1 − 1/n)/θ² (closed form)" {
            for n in [ 2; 5; 9 ] do
                let t = Models.coalescent n None |> Trace.record |> TracePasses.optimize
                for theta in [ 0.5; 1.0; 3.0 ] do
                    let _, grad = TraceGrad.meanWithGradient t [| theta |] (Rewards.ones t.Model)
                    let expected = -2.0 * (1.0 - 1.0 / float n) / (theta * theta)
                    Expect.isLessThanOrEqual (rel grad.[0] expected) 1e-13 (sprintf "n = %d, θ = %g" n theta)
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (FsCheck, cyclic included, discrete included): forward mode = reverse mode, moments bit for bit" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                if g.ParamLength > 0 && g.ParamLength <= TraceTangents.MaxParams then
                    let t = Trace.record g |> TracePasses.optimize
                    let theta = randomTheta (Random case.Seed) g.ParamLength
                    let r = Rewards.ones g
                    let mf, jf = TraceGrad.momentsJacobianOn (TraceGrad.Work(t, false, true)) t theta r 3
                    let mr, jr = TraceGrad.momentsJacobianOn (TraceGrad.Work(t, false, false)) t theta r 3
                    Expect.isTrue (bitsEqual mf mr) (sprintf "%O: moments" case)
                    Expect.isTrue (bitsEqual mf (Moments.moments (Elimination.eliminate g theta) r 3)) (sprintf "%O: moments = Moments.moments" case)
                    // the two modes sum the same chain-rule products in different orders: equal to
                    // rounding, relative to the row's largest entry (floor: the moment's own scale)
                    for j in 0 .. 2 do
                        let scale = jr.[j] |> Array.fold (fun s x -> max s (abs x)) (scaleOf mr.[j] theta)
                        for p in 0 .. g.ParamLength - 1 do
                            let err = abs (jf.[j].[p] - jr.[j].[p])
                            if not (err <= 1e-10 * scale) then
                                failtestf "%O: ∂E[Y^%d]/∂θ_%d forward %.17g, reverse %.17g" case (j + 1) p jf.[j].[p] jr.[j].[p])

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (FsCheck, cyclic and discrete included): forward mode through the replay plan = op by op, values and tangents bit for bit (rings of 4, 8, 4096 slots)" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                if g.ParamLength > 0 && g.ParamLength <= TraceTangents.MaxParams then
                    let raw = Trace.record g
                    for t in [ raw; TracePasses.optimize raw ] do
                        let theta = randomTheta (Random case.Seed) g.ParamLength
                        let values = Array.zeroCreate t.OpCount
                        let tangents = Array.zeroCreate t.OpCount
                        TraceTangents.opsInto t.Program theta values tangents
                        let x = Rewards.ones g
                        let xt = Array.zeroCreate g.VertexCount
                        TraceTangents.replay t values tangents x xt
                        for w in [ 4; 8; TracePlan.Window ] do
                            let ops, commands, multSlot = TracePlan.replayPlan t w
                            let pv = Array.zeroCreate ops.Slots
                            let pt = Array.zeroCreate ops.Slots
                            TraceTangentPlan.opsPlanned ops t.Program theta pv pt
                            let label = sprintf "%O, %d ops, ring %d" case t.OpCount w
                            for c in 0 .. t.CommandCount - 1 do
                                let o = t.CmdMult.[c]
                                if BitConverter.DoubleToInt64Bits pv.[multSlot.[c]] <> BitConverter.DoubleToInt64Bits values.[o] || not (sameLanes pt.[multSlot.[c]] tangents.[o]) then
                                    failtestf "%s: command %d's multiplier (op %d)" label c o
                            for o in Array.append t.EdgeWeight t.VertexRate do
                                if BitConverter.DoubleToInt64Bits pv.[o] <> BitConverter.DoubleToInt64Bits values.[o] || not (sameLanes pt.[o] tangents.[o]) then
                                    failtestf "%s: weight or rate op %d" label o
                            let px = Rewards.ones g
                            let pxt = Array.zeroCreate g.VertexCount
                            TraceTangentPlan.replayPlanned commands t pv pt px pxt
                            Expect.isTrue (bitsEqual px x) (label + ": replayed x")
                            for v in 0 .. g.VertexCount - 1 do
                                if not (sameLanes pxt.[v] xt.[v]) then failtestf "%s: replayed tangent of vertex %d" label v)

        test "TraceGradient switches to the plan after CutAfter passes (rabbits3 R = 12, forward mode): results bit for bit as op by op" {
            let t = Trace.record (Models.rabbits3 12) |> TracePasses.optimize
            Expect.isGreaterThanOrEqual t.OpCount t.CommandCount "a trace the replay evaluator plans"
            let tg = TraceGradient(t)
            let r = Rewards.ofSlot t.Model 0 |> Array.map abs
            let rng = Random 17
            for call in 1 .. TracePlan.CutAfter + 4 do
                let theta = Array.init 3 (fun _ -> 0.5 + rng.NextDouble())
                let m, jac = tg.MomentsJacobian(theta, r, 3)
                let mo, jo = TraceGrad.momentsJacobianOn (TraceGrad.Work(t, false, true)) t theta r 3
                Expect.isTrue (bitsEqual m mo) (sprintf "call %d: moments" call)
                for j in 0 .. 2 do Expect.isTrue (bitsEqual jac.[j] jo.[j]) (sprintf "call %d: ∂E[Y^%d]" call (j + 1))
        }

        test "the default mode: forward for ≤ 4 parameters, reverse above (a 6-parameter cyclic chain = finite differences)" {
            let small = Models.rabbits3 3 |> Trace.record
            Expect.isSome (TraceGrad.Work(small, false, true).Tangents) "rabbits3: 3 parameters, forward mode"
            Expect.isNone (TraceGrad.Work(small, false, false).Tangents) "forced reverse mode"
            // 0 → 1 → 2 → 3 → 4 → absorbing, rate θ_k on step k, and back edges 2 → 1 (θ_5), 4 → 2 (0.3)
            let spec =
                { Discrete = false
                  StateLength = 1
                  ParamCount = 6
                  States = Array.init 5 (fun i -> [| i + 1 |])
                  Edges =
                    [ for k in 0 .. 4 do yield { From = k; To = k + 1; Base = 0.0; Coef = Array.init 6 (fun j -> if j = k then 1.0 else 0.0) }
                      yield { From = 2; To = 1; Base = 0.0; Coef = Array.init 6 (fun j -> if j = 5 then 1.0 else 0.0) }
                      yield { From = 4; To = 2; Base = 0.3; Coef = Array.zeroCreate 6 } ] }
            let g = build spec
            let t = Trace.record g
            Expect.isNone (TraceGrad.Work(t, false, true).Tangents) "6 parameters: reverse mode"
            let theta = [| 1.1; 0.7; 1.9; 0.4; 1.3; 0.8 |]
            let m, grad = TraceGrad.meanWithGradient t theta (Rewards.ones g)
            checkGradient "6-parameter chain, ∂E[T]" (fun th -> (directMoments g (Rewards.ones g) 1 th).[0]) theta grad (scaleOf m theta)
        }

        test "Jacobian rows = single-moment gradients; moments = Moments.moments bit for bit" {
            let g = Models.twoDeme 3
            let t = Trace.record g |> TracePasses.optimize
            let theta = [| 1.3; 0.6 |]
            let r = Rewards.ones g
            let m, jac = TraceGrad.momentsJacobian t theta r 4
            Expect.isTrue (bitsEqual m (Moments.moments (Elimination.eliminate g theta) r 4)) "moments"
            for j in 1 .. 4 do
                let mj, gj = TraceGrad.momentWithGradient t theta r j
                Expect.equal mj m.[j - 1] "moment"
                Expect.isTrue (bitsEqual gj jac.[j - 1]) (sprintf "row %d" j)
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (FsCheck, cyclic included, discrete included): moment gradients = finite differences" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                if g.ParamLength > 0 then
                    let t = Trace.record g |> TracePasses.optimize
                    let theta = randomTheta (Random case.Seed) g.ParamLength
                    checkMomentGradients (string case) g t theta)

        test "TraceGradient (reused buffers) = the module functions, call after call" {
            let g = Models.rabbits3 3
            let t = Trace.record g |> TracePasses.optimize
            let tg = TraceGradient t
            let r = Rewards.ones g
            let rng = Random 43
            for _ in 1 .. 5 do
                let theta = Array.init 3 (fun _ -> 0.2 + 3.0 * rng.NextDouble())
                let m1, g1 = tg.MeanWithGradient(theta, r)
                let m2, g2 = TraceGrad.meanWithGradient t theta r
                Expect.equal m1 m2 "mean"
                Expect.isTrue (bitsEqual g1 g2) "mean gradient"
                let v1, h1 = tg.VarianceWithGradient(theta, r)
                let v2, h2 = TraceGrad.varianceWithGradient t theta r
                Expect.equal v1 v2 "variance"
                Expect.isTrue (bitsEqual h1 h2) "variance gradient"
        }

        test "gradients through the original edge weights: ∂(Σ a_e w_e)/∂θ_k = Σ a_e c_ek" {
            let g = Models.rabbits3 3
            let t = Trace.record g |> TracePasses.optimize
            let theta = [| 0.8; 1.7; 2.2 |]
            let ev = TraceEval.evaluate t theta
            let a = Array.init g.EdgeCount (fun e -> float (e % 5) - 1.5)
            let grad = TraceGrad.backwardOutputs t ev.Values null a
            for k in 0 .. 2 do
                let expected = Seq.sum (seq { for e in 0 .. g.EdgeCount - 1 -> a.[e] * g.Coef(e, k) })
                Expect.floatClose Accuracy.veryHigh grad.[k] expected (sprintf "k = %d" k)
            let tangents = TraceGrad.weightTangents t ev.Values
            for k in 0 .. 2 do
                for e in 0 .. g.EdgeCount - 1 do
                    Expect.equal tangents.[k].[e] (g.Coef(e, k)) "∂w_e/∂θ_k = c_ek"
        }
    ]

[<Tests>]
let tests = testList "trace" [ testList "gradient" [ ruleTests; momentTests ] ]
