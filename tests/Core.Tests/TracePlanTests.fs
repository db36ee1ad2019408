/// The evaluation plan of the repeated-evaluation paths (`TracePlan`: vectorized runs of products,
/// a ring of slots for intermediates, command runs) against the reference interpreter, bit for bit.
module Ptd.Core.Tests.TracePlanTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Core.Tests.TraceGraphs

let private bits (x: float) = BitConverter.DoubleToInt64Bits x

/// Evaluates through a plan with the given window and checks every op that has its own slot
/// (all of them for window 0, the pinned ones otherwise) against `TraceEval.referenceValues`.
/// Returns the reference values.
let private checkValues (label: string) (p: OpProgram) (pinned: bool[]) (window: int) (theta: float[]) =
    let slot = TracePlan.slotsOf p pinned window
    let plan = TracePlan.opsOf p slot window
    let values = Array.create plan.Slots Double.NaN
    TracePlan.valuesInto plan p theta values
    let reference = TraceEval.referenceValues p theta
    for i in 0 .. p.OpCount - 1 do
        if pinned.[i] || window = 0 then
            Expect.equal slot.[i] i (sprintf "%s, window %d: op %d must keep its own slot" label window i)
        if slot.[i] = i && bits values.[i] <> bits reference.[i] then
            failtestf "%s, window %d: op %d (%s) = %.17g, reference interpreter %.17g" label window i (OpKind.name (p.Kind i)) values.[i] reference.[i]
    plan, reference

/// The trace's evaluator and the planned replay against the plain replay on reference values.
let private checkTrace (label: string) (t: Trace) (theta: float[]) =
    let pinned = TracePlan.pinned t
    for w in [ 0; 4; 8; 64; TracePlan.Window ] do
        let plan, reference = checkValues label t.Program pinned w theta
        let ones = Rewards.ones t.Model
        let expected = Array.copy ones
        TraceEval.replayValues t reference expected
        let values = Array.zeroCreate plan.Slots
        TracePlan.valuesInto plan t.Program theta values
        let x = Array.copy ones
        TracePlan.replayCommands (TracePlan.commands t) t values x
        Expect.isTrue (bitsEqual x expected) (sprintf "%s, window %d: planned command replay differs from the plain replay" label w)
    // the evaluator's first calls run op by op, later ones through its plan
    let ev = TraceEvaluator t
    let expected = TraceEval.expectation t theta (Rewards.ones t.Model)
    for call in 1 .. TracePlan.CutAfter + 2 do
        let e = ev.Expectation(theta, Rewards.ones t.Model)
        Expect.equal (bits e) (bits expected) (sprintf "%s, call %d: TraceEvaluator.Expectation vs TraceEval.expectation" label call)
        Expect.isTrue (bitsEqual (ev.Multipliers()) (TraceEval.evaluate t theta).Multipliers) (sprintf "%s, call %d: evaluator multipliers" label call)

/// A program whose product runs read their own earlier results (op i = c·op(i − d)): runs that
/// trail their outputs by fewer than a vector's lanes must run op by op.
let private recurrence (d: int) (left: bool) =
    let b = TraceBuilder(1, false, false)
    let c = b.Const 1.0000001
    let start = [| for k in 0 .. d - 1 -> b.Dot(0.5 + float k, [| 1.0 + float k |], 0) |]
    let first = start.[0]
    for _ in 1 .. 37 do
        let i = b.Count
        let x = i - d
        ignore (if left then b.Mul(c, x) else b.Mul(x, c))
    ignore first
    b.ToProgram()

let tests =
    testList "plan" [
        test "named and cyclic models: planned values and replays = reference interpreter, bit for bit, for several windows" {
            let models =
                [ "coalescent 8", Models.coalescent 8 None, [| 1.3 |]
                  "rabbits3 12", Models.rabbits3 12, [| 1.0; 2.0; 4.0 |]
                  "twoDeme 4", Models.twoDeme 4, [| 1.1; 0.4 |] ]
            for name, g, theta in models do
                let raw = Trace.record g
                checkTrace (name + " raw") raw theta
                checkTrace (name + " optimized") (TracePasses.optimize raw) theta
        }

        test "the plan of a cyclic model really uses vector runs, the ring and command runs" {
            let t = Trace.record (Models.rabbits3 12)
            let plan = TracePlan.ops t TracePlan.Window
            let has k = plan.Kind |> Array.contains k
            Expect.isTrue (has TracePlan.MulLeft && has TracePlan.Gather && has TracePlan.Pairs && has TracePlan.Dots) "run kinds"
            Expect.isTrue (has TracePlan.SumInv) "sums with their inverse"
            let ring = TracePlan.slots t TracePlan.Window |> Array.filter (fun s -> s >= t.OpCount) |> Array.length
            Expect.isGreaterThan ring (t.OpCount / 4) "a good share of the ops are transient"
            let commands = TracePlan.commands t
            Expect.isTrue (commands.Mult |> Array.exists (fun m -> m >= 0)) "command runs"
            // the replay evaluator's plan: multipliers in command order, the runs cover most commands
            let ops, replayCommands, multSlot = TracePlan.replayPlan t TracePlan.Window
            let region = t.OpCount + TracePlan.Window
            let inRegion = multSlot |> Array.indexed |> Array.filter (fun (c, s) -> s = region + c) |> Array.length
            // (a parent command whose multiplier is an edge weight op — a row whose normalization
            // is still deferred — reads it in its op slot, which the weight checks read by index)
            Expect.isGreaterThan inRegion (4 * t.CommandCount / 5) "most multipliers in command order"
            Expect.equal ops.Slots (region + t.CommandCount) "the value buffer holds the region"
            let inRuns = Array.fold2 (fun acc n m -> if m >= 0 then acc + n else acc) 0 replayCommands.Count replayCommands.Mult
            Expect.isGreaterThan inRuns (t.CommandCount / 2) "command runs cover most commands"
        }

        test "runs that read their own results (distance 1 .. 6, both operand orders) equal the reference" {
            for d in 1 .. 6 do
                for left in [ true; false ] do
                    let p = recurrence d left
                    let pinned = Array.init p.OpCount (fun i -> i = p.OpCount - 1 || i % 5 = 0)
                    for w in [ 0; 4; 8; 1024 ] do
                        let plan, _ = checkValues (sprintf "recurrence d = %d, left = %b" d left) p pinned w [| 0.9 |]
                        let expectedKind = if left then TracePlan.MulLeft else TracePlan.MulRight
                        // the product runs (a Gather runs in op order, scalar: it may read its own results)
                        let kinds = plan.Kind |> Array.filter (fun k -> k = TracePlan.MulLeft || k = TracePlan.MulRight || k = TracePlan.MulLeft + TracePlan.Scalar || k = TracePlan.MulRight + TracePlan.Scalar)
                        if w = 0 then Expect.isNonEmpty kinds "the products form a run"
                        let vector = d >= Numerics.Vector<float>.Count
                        Expect.isTrue (kinds |> Array.forall (fun k -> k = (if vector then expectedKind else expectedKind + TracePlan.Scalar)))
                            (sprintf "d = %d: kinds %A" d kinds)
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 100 } "random graphs (FsCheck): planned evaluation = reference interpreter, bit for bit" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                let raw = Trace.record g
                let rng = Random case.Seed
                let theta = randomTheta rng g.ParamLength
                checkTrace (string case) raw theta
                checkTrace (string case + " optimized") (TracePasses.optimize raw) theta)

        test "one replay plan per trace object, shared by its evaluators" {
            let t = Trace.record (Models.rabbits3 6)
            let shared = TracePlan.replayPlanShared t
            Expect.isTrue (LanguagePrimitives.PhysicalEquality shared (TracePlan.replayPlanShared t)) "cut once, then the same plan"
            let other = Trace.record (Models.rabbits3 6)
            Expect.isFalse (LanguagePrimitives.PhysicalEquality shared (TracePlan.replayPlanShared other)) "another trace object has its own"
            let ops, commands, slots = shared
            let ops2, commands2, slots2 = TracePlan.replayPlan t TracePlan.Window
            Expect.equal (ops.Kind, ops.Out, ops.Index, ops.Slots) (ops2.Kind, ops2.Out, ops2.Index, ops2.Slots) "the replay plan for the window"
            Expect.equal (commands.Start, commands.Mult, slots) (commands2.Start, commands2.Mult, slots2) "and its commands"
            // the evaluators that cut it give the results they gave before (bit for bit, as the tests above check)
            let ev = TraceEvaluator(t)
            let tg = TraceGradient(t)
            let theta = [| 0.9; 1.7; 3.1 |]
            let ones = Rewards.ones t.Model
            for _ in 1 .. TracePlan.CutAfter + 2 do
                Expect.equal (bits (ev.Expectation(theta, ones))) (bits (TraceEval.expectation t theta ones)) "evaluator"
                Expect.equal (bits (fst (tg.MeanWithGradient(theta, ones)))) (bits (TraceEval.expectation t theta ones)) "gradient's mean"
        }

        test "TraceGradient (planned forward pass) = one-shot gradient, bit for bit" {
            let t = Trace.record (Models.rabbits3 8)
            let theta = [| 1.0; 2.0; 4.0 |]
            let ones = Rewards.ones t.Model
            let m1, g1 = TraceGrad.meanWithGradient t theta ones
            let tg = TraceGradient(t)
            for call in 1 .. TracePlan.CutAfter + 2 do // the first calls op by op, later ones planned
                let m2, g2 = tg.MeanWithGradient(theta, ones)
                Expect.equal (bits m2) (bits m1) (sprintf "call %d: mean" call)
                Expect.isTrue (bitsEqual g2 g1) (sprintf "call %d: gradient" call)
        }
    ]
