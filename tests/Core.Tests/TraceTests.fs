/// Trace recording, passes and evaluation against direct elimination (issue 3 §1, §2, §6).
module Ptd.Core.Tests.TraceTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Tests
open Ptd.Core.Tests.TraceGraphs

/// The named models with θ samplers: (name, graph, θ for a random source).
let namedModels =
    [ "coalescent 8", Models.coalescent 8 None, (fun (r: Random) -> [| 0.1 + 5.0 * r.NextDouble() |])
      "rabbits3 3", Models.rabbits3 3, (fun r -> Array.init 3 (fun _ -> 0.05 + 5.0 * r.NextDouble()))
      "twoDeme 3", Models.twoDeme 3, (fun r -> Array.init 2 (fun _ -> 0.05 + 5.0 * r.NextDouble())) ]

/// Everything a replay must reproduce at θ: multipliers bit for bit, raw moments to 1e-12.
let checkReplay (label: string) (g: Graph) (traces: (string * Trace) list) (theta: float[]) =
    let direct = Elimination.eliminate g theta
    let rewards = [ yield "ones", Rewards.ones g
                    for s in 0 .. g.StateLength - 1 do yield sprintf "slot %d" s, Rewards.ofSlot g s ]
    for name, t in traces do
        let ev = TraceEval.evaluate t theta
        Expect.isTrue (bitsEqual ev.Multipliers direct.Mult) (sprintf "%s, %s trace, θ = %A: multipliers differ from direct elimination" label name theta)
        let w = g.Weights theta
        Expect.isTrue (bitsEqual ev.Weights w) (sprintf "%s, %s: edge weights differ from Graph.Weights" label name)
        let rates = Array.init g.VertexCount (fun v -> Seq.fold (fun s e -> s + w.[e]) 0.0 (seq { g.EdgeStart v .. g.EdgeEnd v - 1 }))
        Expect.isTrue (bitsEqual ev.Rates rates) (sprintf "%s, %s: vertex rates differ from the sums of the weights" label name)
        for rname, r in rewards do
            let expected = Moments.moments direct r 3
            let got = TraceEval.moments t theta r 3
            for j in 0 .. 2 do
                Expect.isLessThanOrEqual (rel got.[j] expected.[j]) 1e-12 (sprintf "%s, %s, reward %s: E[Y^%d]" label name rname (j + 1))

let private config n = { FsCheckConfig.defaultConfig with maxTest = n }

let replayTests =
    testList "replay" [
        for name, g, sample in namedModels do
            test (sprintf "%s: 100 random θ, trace replay = direct elimination" name) {
                let raw = Trace.record g
                let opt = TracePasses.optimize raw
                let rng = Random 17
                for _ in 1 .. 100 do
                    checkReplay name g [ "raw", raw; "optimized", opt ] (sample rng)
            }

        test "cyclic rabbits R = 2, θ = (1, 2, 4): E[T] = 0.508305647840531 (algorithms.md §6)" {
            let t = Models.rabbits3 2 |> Trace.record |> TracePasses.optimize
            let e = TraceEval.expectation t [| 1.0; 2.0; 4.0 |] (Rewards.ones t.Model)
            Expect.isLessThanOrEqual (rel e 0.508305647840531) 1e-14 (sprintf "E[T] = %.17g" e)
        }

        test "coalescent n = 10 at θ = 1: E[T_MRCA] = 2(1 − 1/n) and Var = Σ (2/(k(k−1)))² from the trace" {
            let t = Models.coalescent 10 None |> Trace.record |> TracePasses.optimize
            let ones = Rewards.ones t.Model
            Expect.isLessThanOrEqual (rel (TraceEval.expectation t [| 1.0 |] ones) (2.0 * (1.0 - 0.1))) 1e-13 "mean"
            let var = Seq.sum (seq { for k in 2 .. 10 -> (2.0 / float (k * (k - 1))) ** 2.0 })
            Expect.isLessThanOrEqual (rel (TraceEval.variance t [| 1.0 |] ones) var) 1e-12 "variance"
            // θ scales time: E[T] ∝ 1/θ
            Expect.isLessThanOrEqual (rel (TraceEval.expectation t [| 4.0 |] ones) (2.0 * 0.9 / 4.0)) 1e-13 "mean at θ = 4"
        }

        testPropertyWithConfig (config 150) "random graphs (FsCheck, cyclic and acyclic, continuous and discrete): replay = direct elimination = dense oracle" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                let raw = Trace.record g
                let opt = TracePasses.optimize raw
                let rng = Random case.Seed
                for _ in 1 .. 3 do
                    let theta = randomTheta rng g.ParamLength
                    checkReplay (string case) g [ "raw", raw; "optimized", opt ] theta
                    // ... and the numbers are right: dense linear algebra, independent of elimination
                    let dense = Dense.momentsUnrewarded g theta 2
                    let m = TraceEval.moments opt theta (Rewards.ones g) 2
                    for j in 0 .. 1 do
                        Expect.isLessThanOrEqual (rel m.[j] dense.[j]) 1e-9 (sprintf "%O: E[T^%d] vs dense" case (j + 1)))

        test "cyclic random graphs really are cyclic and really do self-loop eliminations" {
            // Guards the property above against testing only easy graphs.
            let cases = [ for s in 0 .. 199 -> { Seed = s; Cyclic = true; Discrete = false } ]
            let withLoops =
                cases |> List.filter (fun c ->
                    let t = Trace.record c.Graph
                    // every self-loop removal records a 1/Σ; phase A records one per vertex with out-edges
                    let inverses = t.Program.Kinds |> Array.filter (fun k -> k = OpKind.Inv) |> Array.length
                    let leavable = Seq.init t.VertexCount c.Graph.OutDegree |> Seq.filter (fun d -> d > 0) |> Seq.length
                    inverses > leavable)
            Expect.isGreaterThan withLoops.Length 100 "most cyclic cases need self-loop renormalization"
        }

        test "reference interpreter = fast evaluator, bit for bit" {
            for name, g, sample in namedModels do
                let t = Trace.record g
                let rng = Random 3
                for _ in 1 .. 20 do
                    let theta = sample rng
                    let a = TraceEval.referenceValues t.Program theta
                    let b = TraceEval.programValues t.Program theta
                    Expect.isTrue (bitsEqual a b) (sprintf "%s: values differ" name)
        }

        test "TraceEvaluator (no allocation per call) = direct expectation" {
            let g = Models.rabbits3 4
            let t = Trace.record g |> TracePasses.optimize
            let ev = TraceEvaluator t
            let ones = Rewards.ones g
            let rng = Random 5
            for _ in 1 .. 20 do
                let theta = Array.init 3 (fun _ -> 0.1 + 3.0 * rng.NextDouble())
                let e = ev.Expectation(theta, ones)
                Expect.equal e (Moments.expectation (Elimination.eliminate g theta) ones) "bit-identical expectation"
        }

        test "TraceEvaluator checks θ and weights like Graph.Weights (through its check plan and without one)" {
            let t = Trace.record (Models.rabbits3 2) |> TracePasses.optimize
            // A trace whose vertex rates are not the sums of its weights cannot use the plan's
            // shortcut (edited JSON here): both must still reject a vertex that cannot be left.
            let json = TraceJson.export t
            let i = json.IndexOf "\"vertexRates\": ["
            let edited = json.Substring(0, i) + "\"vertexRates\": [" + String.Join(", ", Array.create t.VertexCount 0) + "]\n}\n"
            let noPlan = TraceJson.import edited
            for tr in [ t; noPlan ] do
                let ev = TraceEvaluator tr
                let ones = Rewards.ones tr.Model
                Expect.throwsT<PtdException> (fun () -> ev.Expectation([| 1.0; 2.0 |], ones) |> ignore) "wrong length"
                Expect.throwsT<PtdException> (fun () -> ev.Expectation([| -1.0; 2.0; 2.0 |], ones) |> ignore) "negative weight"
                Expect.throwsT<PtdException> (fun () -> ev.Expectation([| 0.0; 0.0; 0.0 |], ones) |> ignore) "vertex that cannot be left"
                Expect.equal (ev.Expectation([| 1.0; 2.0; 4.0 |], ones)) (TraceEval.expectation t [| 1.0; 2.0; 4.0 |] ones) "value"
            let be = TraceBatchEvaluator noPlan
            Expect.throwsT<PtdException> (fun () -> be.Expectations([| [| 1.0; 1.0; 1.0 |]; [| 0.0; 0.0; 0.0 |] |], Rewards.ones t.Model) |> ignore) "batched, no plan"
        }

        test "weight checks through the check plan = Graph.Weights's checks (verdict and message), random graphs, θ with zeros and negatives" {
            // The plan's shortcut (every weight class finite and > 0) must never pass what the edge-by-edge
            // check or Graph.Weights rejects, and must reject with the same message.
            let message f = try f (); None with :? PtdException as e -> Some e.Message
            let mutable rejected = 0
            let mutable accepted = 0
            for seed in 0 .. 299 do
                let g = TraceGraphs.build (TraceGraphs.randomSpec seed (seed % 2 = 0) (seed % 5 = 0))
                let raw = Trace.record g
                for t in [ raw; TracePasses.optimize raw ] do
                    let plan = TraceEval.checkPlan t
                    let rng = Random seed
                    for _ in 1 .. 6 do
                        let theta = Array.init t.ParamCount (fun _ -> [| -1.0; 0.0; 0.5; 1.3 |].[rng.Next 4])
                        let values = Array.zeroCreate t.OpCount
                        TraceEval.valuesInto t.Program theta values
                        let model = message (fun () -> g.Weights theta |> ignore)
                        let edgeByEdge = message (fun () -> TraceEval.checkWeights t theta values)
                        let planned = message (fun () -> TraceEval.checkWeightsPlanned plan t theta values)
                        Expect.equal edgeByEdge model (sprintf "edge by edge, seed %d, θ %A" seed theta)
                        Expect.equal planned model (sprintf "through the plan, seed %d, θ %A" seed theta)
                        if model.IsSome then rejected <- rejected + 1 else accepted <- accepted + 1
                    // The batched evaluator's lane-wise shortcut: three particles in one chunk of lanes.
                    let thetas = Array.init 3 (fun _ -> Array.init t.ParamCount (fun _ -> [| -1.0; 0.0; 0.5; 1.3 |].[rng.Next 4]))
                    let expected =
                        thetas |> Array.indexed |> Array.tryPick (fun (j, th) ->
                            message (fun () -> g.Weights th |> ignore) |> Option.map (sprintf "particle %d: %s" j))
                    let batched = message (fun () -> TraceBatchEvaluator(t).Expectations(thetas, Rewards.ones g) |> ignore)
                    Expect.equal batched expected (sprintf "batched, seed %d, θs %A" seed thetas)
            Expect.isGreaterThan rejected 200 "θ the checks reject"
            Expect.isGreaterThan accepted 200 "θ they accept"
        }

        test "θ is validated like Graph.Weights" {
            let t = Trace.record (Models.rabbits3 2)
            Expect.throwsT<PtdException> (fun () -> TraceEval.evaluate t [| 1.0; 2.0 |] |> ignore) "wrong length"
            Expect.throwsT<PtdException> (fun () -> TraceEval.evaluate t [| 1.0; nan; 2.0 |] |> ignore) "NaN"
            Expect.throwsT<PtdException> (fun () -> TraceEval.evaluate t [| -1.0; 2.0; 2.0 |] |> ignore) "negative weight"
            Expect.throwsT<PtdException> (fun () -> TraceEval.evaluate t [| 0.0; 0.0; 0.0 |] |> ignore) "vertex that cannot be left"
        }
    ]

let passTests =
    testList "passes" [
        test "each pass keeps every output bit-identical and never grows the trace" {
            for name, g, sample in namedModels do
                let raw = Trace.record g
                let variants =
                    [ "cse", TracePasses.cse raw
                      "fold", TracePasses.fold raw
                      "dce", TracePasses.dce raw
                      "optimize", TracePasses.optimize raw
                      "optimize twice", TracePasses.optimize (TracePasses.optimize raw) ]
                let rng = Random 11
                for _ in 1 .. 10 do
                    let theta = sample rng
                    let expected = TraceEval.evaluate raw theta
                    for vname, v in variants do
                        let got = TraceEval.evaluate v theta
                        Expect.isTrue (bitsEqual got.Multipliers expected.Multipliers) (sprintf "%s/%s: multipliers" name vname)
                        Expect.isTrue (bitsEqual got.Weights expected.Weights) (sprintf "%s/%s: weights" name vname)
                        Expect.isTrue (bitsEqual got.Rates expected.Rates) (sprintf "%s/%s: rates" name vname)
                        Expect.isLessThanOrEqual v.OpCount raw.OpCount (sprintf "%s/%s grew the trace" name vname)
        }

        test "CSE shares every Dot row and every vertex sum (recording makes each twice)" {
            let g = Models.coalescent 8 None
            let raw = Trace.record g
            let t = TracePasses.cse raw
            let stats = TraceStats.compute t
            let count kind = stats.OpsByKind |> Array.find (fun (n, _) -> n = kind) |> snd
            let distinctRows = Seq.init g.EdgeCount (fun e -> g.Coef(e, 0)) |> Seq.distinct |> Seq.length
            Expect.equal (count "dot") distinctRows "one Dot per distinct coefficient row"
            let rawSums = (TraceStats.compute raw).OpsByKind |> Array.find (fun (n, _) -> n = "sum") |> snd
            Expect.isLessThan (count "sum") rawSums "vertex-rate sums merged with phase A's sums"
            Expect.equal (TracePasses.optimize (TracePasses.optimize raw)).OpCount (TracePasses.optimize raw).OpCount "optimize is idempotent in size"
        }

        test "the hash-consing table finds every op it holds, across growth, and no key it does not hold" {
            // a Dictionary over the same keys is the reference; kinds, negative and equal a/b included
            let rng = Random 5
            let kinds = [| OpKind.Mul; OpKind.Add; OpKind.Sum; OpKind.Inv; OpKind.Dot |]
            let reference = Collections.Generic.Dictionary<struct (OpKind * int * int), int>()
            let table = OpTable()
            for v in 0 .. 99_999 do
                let key = struct (kinds.[rng.Next kinds.Length], rng.Next(-3, 40_000), rng.Next 40_000)
                if not (reference.ContainsKey key) then
                    let struct (k, a, b) = key
                    Expect.equal (table.Find(k, a, b)) -1 "absent before it is added"
                    table.Add(k, a, b, v)
                    reference.Add(key, v)
            for KeyValue (struct (k, a, b), v) in reference do
                Expect.equal (table.Find(k, a, b)) v "found after growth"
            for _ in 1 .. 10_000 do
                let key = struct (kinds.[rng.Next kinds.Length], rng.Next(40_000, 80_000), rng.Next 80_000)
                let struct (k, a, b) = key
                Expect.equal (table.Find(k, a, b)) -1 "a key never added"
            let sized = OpTable(50_000)
            for KeyValue (struct (k, a, b), v) in reference do
                if v < 50_000 then sized.Add(k, a, b, v)
            for KeyValue (struct (k, a, b), v) in reference do
                Expect.equal (sized.Find(k, a, b)) (if v < 50_000 then v else -1) "a table sized up front"
        }

        test "constant folding turns an unparameterized model into constants only" {
            let t = Models.rabbits 3 2.0 4.0 |> Trace.record |> TracePasses.optimize
            let stats = TraceStats.compute t
            Expect.equal stats.Ops stats.Constants "only constants remain"
            Expect.isTrue (stats.OpsByKind |> Array.forall (fun (n, c) -> n = "const" || c = 0)) "no arithmetic left"
        }

        test "dead-op removal drops exactly the ops no output reads" {
            let g = Models.twoDeme 3
            let raw = Trace.record g
            let live = TracePasses.liveOps raw |> Array.filter id |> Array.length
            Expect.isLessThan live raw.OpCount "recording leaves dead ops (the start vertex's unused scale inverse, …)"
            Expect.equal (TracePasses.dce raw).OpCount live "dce keeps the live ops"
        }

        test "stats: counts add up; an acyclic graph gives |V| + |E| commands" {
            let g = Models.coalescent 6 None
            let t = Trace.record g
            let s = TraceStats.compute t
            Expect.equal (s.OpsByKind |> Array.sumBy snd) s.Ops "kinds sum to ops"
            Expect.equal s.Commands (g.VertexCount + g.EdgeCount) "|V| + |E| commands"
            Expect.equal s.Outputs (s.Commands + g.EdgeCount + g.VertexCount) "outputs"
            Expect.equal s.Parameters 1 "parameters"
            Expect.stringContains (string s) "dot" "printable"
        }
    ]

let batchTests =
    testList "batch" [
        test "batched = scalar, bit for bit, for partial and full lane chunks" {
            for name, g, sample in namedModels do
                let t = Trace.record g |> TracePasses.optimize
                let rng = Random 23
                for p in [ 1; 3; 4; 5; 9; 64 ] do
                    let thetas = Array.init p (fun _ -> sample rng)
                    let ones = Rewards.ones g
                    let batched = TraceBatch.moments t thetas ones 3
                    let mults = TraceBatch.multipliers t thetas
                    for i in 0 .. p - 1 do
                        Expect.isTrue (bitsEqual batched.[i] (TraceEval.moments t thetas.[i] ones 3)) (sprintf "%s, P = %d, particle %d: moments" name p i)
                        Expect.isTrue (bitsEqual mults.[i] (TraceEval.evaluate t thetas.[i]).Multipliers) (sprintf "%s, P = %d, particle %d: multipliers" name p i)
        }

        test "batched = scalar on the parallel path (many particles, discrete moments too)" {
            let g = Models.coalescent 12 None
            let t = Trace.record g |> TracePasses.optimize
            let rng = Random 29
            let thetas = Array.init 1001 (fun _ -> [| 0.1 + 3.0 * rng.NextDouble() |])
            let ones = Rewards.ones g
            let e = TraceBatch.expectations t thetas ones
            for i in 0 .. thetas.Length - 1 do
                Expect.equal e.[i] (TraceEval.expectation t thetas.[i] ones) (sprintf "particle %d" i)
            // discrete random graph, batched formula = scalar formula
            let case = { Seed = 4; Cyclic = true; Discrete = true }
            let dg = case.Graph
            let dt = Trace.record dg
            let dth = Array.init 7 (fun _ -> randomTheta rng dg.ParamLength)
            let bm = TraceBatch.moments dt dth (Rewards.ones dg) 3
            for i in 0 .. dth.Length - 1 do
                Expect.isTrue (bitsEqual bm.[i] (TraceEval.moments dt dth.[i] (Rewards.ones dg) 3)) "discrete batched"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 60 } "random graphs (FsCheck, cyclic and discrete included): lanes through the replay plan = the scalar planned evaluator, bit for bit (rings of 4, 8, 4096 slots)" <|
            Prop.forAll (arbCase None) (fun case ->
                let g = case.Graph
                let raw = Trace.record g
                for t in [ raw; TracePasses.optimize raw ] do
                    let lanes = Numerics.Vector<float>.Count
                    let rng = Random case.Seed
                    let thetas = Array.init lanes (fun _ -> randomTheta rng g.ParamLength)
                    let theta = Array.init g.ParamLength (fun k -> Numerics.Vector<float>(Array.init lanes (fun j -> thetas.[j].[k])))
                    for w in [ 4; 8; TracePlan.Window ] do
                        let ops, commands, multSlot = TracePlan.replayPlan t w
                        let lv = Array.zeroCreate ops.Slots
                        TraceBatchPlan.opsPlanned ops t.Program theta lv (Array.zeroCreate lanes)
                        let x = Array.init g.VertexCount (fun _ -> Numerics.Vector<float>.One)
                        TraceBatchPlan.replayPlanned commands t lv x
                        for j in 0 .. lanes - 1 do
                            let label = sprintf "%O, %d ops, ring %d, lane %d" case t.OpCount w j
                            let sv = Array.zeroCreate ops.Slots
                            TracePlan.valuesInto ops t.Program thetas.[j] sv
                            for c in 0 .. t.CommandCount - 1 do
                                if BitConverter.DoubleToInt64Bits lv.[multSlot.[c]].[j] <> BitConverter.DoubleToInt64Bits sv.[multSlot.[c]] then
                                    failtestf "%s: command %d's multiplier" label c
                            for o in Array.append t.EdgeWeight t.VertexRate do
                                if BitConverter.DoubleToInt64Bits lv.[o].[j] <> BitConverter.DoubleToInt64Bits sv.[o] then
                                    failtestf "%s: weight or rate op %d" label o
                            let sx = Rewards.ones g
                            TracePlan.replayCommands commands t sv sx
                            Expect.isTrue (bitsEqual (Array.init g.VertexCount (fun v -> x.[v].[j])) sx) (label + ": replayed x"))

        test "TraceBatchEvaluator cuts the plan and stays bit-identical to scalar across calls (rabbits3 R = 12; 3, 5 and 64 particles)" {
            let t = Trace.record (Models.rabbits3 12) |> TracePasses.optimize
            Expect.isGreaterThanOrEqual t.OpCount t.CommandCount "a trace the evaluators plan"
            let ev = TraceBatchEvaluator(t)
            let ones = Rewards.ones t.Model
            let rng = Random 31
            for call, p in List.indexed [ 3; 5; 3; 64; 5 ] do
                let thetas = Array.init p (fun _ -> Array.init 3 (fun _ -> 0.5 + rng.NextDouble()))
                let batched = ev.Moments(thetas, ones, 2)
                // op by op for the first calls' few chunks of lanes; the 64-particle call reaches CutAfter
                Expect.equal ev.IsPlanned (call >= 3) (sprintf "after call %d: planned" call)
                for i in 0 .. p - 1 do
                    Expect.isTrue (bitsEqual batched.[i] (TraceEval.moments t thetas.[i] ones 2)) (sprintf "call %d, particle %d: moments" call i)
            let thetas = Array.init 9 (fun _ -> Array.init 3 (fun _ -> 0.5 + rng.NextDouble()))
            let mults = ev.Multipliers thetas
            for i in 0 .. thetas.Length - 1 do
                Expect.isTrue (bitsEqual mults.[i] (TraceEval.evaluate t thetas.[i]).Multipliers) (sprintf "planned, particle %d: multipliers" i)
        }

        test "a bad particle is reported by index" {
            let t = Trace.record (Models.rabbits3 2)
            let thetas = Array.init 2000 (fun i -> if i = 1234 then [| -1.0; 1.0; 1.0 |] else [| 1.0; 1.0; 1.0 |])
            try
                TraceBatch.expectations t thetas (Rewards.ones t.Model) |> ignore
                failtest "expected an error"
            with
            | :? PtdException as e -> Expect.stringContains e.Message "particle 1234" "names the particle"
        }
    ]

[<Tests>]
let tests = testList "trace" [ replayTests; passTests; batchTests; TracePlanTests.tests ]
