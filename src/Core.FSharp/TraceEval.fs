namespace Ptd.Core

open System
open System.Numerics

/// A trace evaluated at one θ: the value of every op. Multipliers, weights and rates are read
/// off the outputs; `CommandList` gives the elimination result the `Moments` functions take.
type EvaluatedTrace =
    { Trace: Trace
      Theta: float[]
      Values: float[] }

    /// Command multipliers, in command order.
    member e.Multipliers = e.Trace.CmdMult |> Array.map (fun o -> e.Values.[o])
    /// Edge weights of the original chain (CSR order of the model graph) — equal bit for bit to
    /// `Graph.Weights θ`.
    member e.Weights = e.Trace.EdgeWeight |> Array.map (fun o -> e.Values.[o])
    /// Total out-weight λ_v of every vertex of the original chain (0 for absorbing vertices).
    member e.Rates = e.Trace.VertexRate |> Array.map (fun o -> e.Values.[o])

    /// The command list at this θ, the same as `Elimination.eliminate model θ` computes.
    member e.CommandList: CommandList<float> =
        { Graph = e.Trace.Graph
          Order = e.Trace.Order
          From = e.Trace.CmdFrom
          To = e.Trace.CmdTo
          Mult = e.Multipliers }

module TraceEval =

    /// θ must have ParamCount finite entries (same messages as `Graph.Weights`).
    let internal checkTheta (paramCount: int) (theta: float[]) =
        let theta = if isNull theta then [||] else theta
        if paramCount > 0 && theta.Length <> paramCount then
            Fail.format
                "θ has %d value(s) but the model has %d parameter(s); pass --theta with %d comma-separated numbers"
                theta.Length paramCount paramCount
        if paramCount = 0 && theta.Length > 0 then
            Fail.format "θ was given (%d value(s)) but the model has no parameters" theta.Length
        for k in 0 .. theta.Length - 1 do
            if not (Double.IsFinite theta.[k]) then Fail.format "θ[%d] = %g is not a finite number" k theta.[k]
        theta

    /// The weight checks of `Graph.Weights`, on evaluated edge weights (w.[e] for edge e),
    /// with its messages.
    let internal checkWeightsSlow (g: Graph) (theta: float[]) (weightOf: int -> float) =
        for v in 0 .. g.VertexCount - 1 do
            let mutable total = 0.0
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                let x = weightOf e
                if not (Double.IsFinite x) || x < 0.0 then
                    Fail.format
                        "edge %d (vertex %d -> %d) has weight %g at θ = [%s]; weights must be finite and non-negative — check the parameter values or the edge's base/coefficients"
                        e v (g.Target e) x (String.Join(", ", theta))
                total <- total + x
            if total = 0.0 && g.OutDegree v > 0 then
                Fail.format
                    "vertex %d has out-edges but their weights sum to 0 at θ = [%s]; it could never be left — choose θ so that at least one out-edge is positive"
                    v (String.Join(", ", theta))
            if g.IsDiscrete && v <> 0 && total > 1.0 + 1e-12 then
                Fail.format
                    "vertex %d: out-probabilities sum to %.17g > 1 at θ = [%s]; a discrete model's out-edges are probabilities (the self-loop is the missing mass)"
                    v total (String.Join(", ", theta))

    /// The same checks on a trace's evaluated values, without a closure call per edge; only a
    /// failure takes the slow path that words the message.
    let internal checkWeights (t: Trace) (theta: float[]) (values: float[]) =
        let g = t.Graph
        let offsets = g.Offsets
        let ew = t.EdgeWeight
        let mutable ok = true
        let mutable v = 0
        while ok && v < g.VertexCount do
            let mutable total = 0.0
            for e in offsets.[v] .. offsets.[v + 1] - 1 do
                let x = values.[ew.[e]]
                // NaN fails both comparisons
                if not (x >= 0.0 && x < Double.PositiveInfinity) then ok <- false
                total <- total + x
            if offsets.[v + 1] > offsets.[v] && not (total > 0.0) then ok <- false
            if g.IsDiscrete && v <> 0 && total > 1.0 + 1e-12 then ok <- false
            v <- v + 1
        if not ok then checkWeightsSlow g theta (fun e -> values.[ew.[e]])

    /// The per-vertex part of the weight checks: the distinct weight ops (after CSE far fewer
    /// than the edges) and, per vertex with out-edges, its rate op — used only when that op is
    /// structurally the left-to-right Sum of the vertex's weight ops, so that its value IS the
    /// total `Graph.Weights` checks.
    type internal RateCheck =
        { /// The distinct weight ops as ranges of consecutive ops (phase A records the weights
          /// one after another, so usually a single range): checked with vectors, no index list.
          WeightStart: int[]
          WeightCount: int[]
          RateVertices: int[]
          RateOps: int[] }

    /// What the weight checks need to look at, worked out once per trace.
    type internal CheckPlan =
        { /// A continuous model's weight classes (`TracePasses.weightClasses`: one op per set of
          /// edge weights equal bit for bit at every θ; empty for a discrete model). When each is
          /// finite and > 0, every check passes — each edge's weight is one of them, and a vertex's
          /// total of positive weights is > 0 — so the common case reads a few hundred values
          /// (rabbits3 R = 200: 203 classes for 80,401 edges and 20,302 rates; coalescent n = 30,
          /// optimized: 88 for 48,298 edges) instead of every edge or rate.
          Classes: int[]
          /// Otherwise (a class is 0 or fails, or the model is discrete) the per-vertex checks:
          /// through the rate ops when they are the vertices' sums, else edge by edge (None).
          Rates: RateCheck option }

    let internal checkPlan (t: Trace) : CheckPlan =
        let g = t.Graph
        let p = t.Program
        let isRateSum v =
            let o = t.VertexRate.[v]
            let e0 = g.EdgeStart v
            let d = g.OutDegree v
            p.Kinds.[o] = OpKind.Sum && p.B.[o] = d
            && Seq.forall (fun j -> p.Operands.[p.A.[o] + j] = t.EdgeWeight.[e0 + j]) (seq { 0 .. d - 1 })
        let vertices = [| for v in 0 .. g.VertexCount - 1 do if g.OutDegree v > 0 then v |]
        let rates =
            if vertices |> Array.forall isRateSum then
                let ops = Array.distinct t.EdgeWeight |> Array.sort
                let starts = ResizeArray<int>()
                let counts = ResizeArray<int>()
                for j in 0 .. ops.Length - 1 do
                    if j > 0 && ops.[j] = ops.[j - 1] + 1 then counts.[counts.Count - 1] <- counts.[counts.Count - 1] + 1
                    else
                        starts.Add ops.[j]
                        counts.Add 1
                Some
                    { WeightStart = starts.ToArray()
                      WeightCount = counts.ToArray()
                      RateVertices = vertices
                      RateOps = vertices |> Array.map (fun v -> t.VertexRate.[v]) }
            else None
        { Classes = (if g.IsDiscrete then [||] else TracePasses.weightClasses t); Rates = rates }

    /// Every weight class finite and > 0 (then every weight check passes; see CheckPlan).
    let internal classesPositive (plan: CheckPlan) (values: float[]) =
        let classes = plan.Classes
        let mutable ok = classes.Length > 0
        for o in classes do
            let x = values.[o]
            // NaN fails the comparison
            if not (x > 0.0 && x < Double.PositiveInfinity) then ok <- false
        ok

    /// `checkWeights` through a plan (same verdicts, same messages).
    let internal checkWeightsPlanned (plan: CheckPlan) (t: Trace) (theta: float[]) (values: float[]) =
        if not (classesPositive plan values) then
            match plan.Rates with
            | None -> checkWeights t theta values
            | Some plan ->
                let mutable ok = true
                let lanes = Vector<float>.Count
                let infinity = Vector<float>(Double.PositiveInfinity)
                for r in 0 .. plan.WeightStart.Length - 1 do
                    let start = plan.WeightStart.[r]
                    let stop = start + plan.WeightCount.[r]
                    let mutable o = start
                    while o + lanes <= stop do
                        let x = Vector<float>(values, o)
                        // NaN fails both comparisons
                        if not (Vector.GreaterThanOrEqualAll(x, Vector<float>.Zero) && Vector.LessThanAll(x, infinity)) then ok <- false
                        o <- o + lanes
                    while o < stop do
                        let x = values.[o]
                        if not (x >= 0.0 && x < Double.PositiveInfinity) then ok <- false
                        o <- o + 1
                let discrete = t.Graph.IsDiscrete
                for i in 0 .. plan.RateOps.Length - 1 do
                    let total = values.[plan.RateOps.[i]]
                    if not (total > 0.0) then ok <- false
                    if discrete && plan.RateVertices.[i] <> 0 && total > 1.0 + 1e-12 then ok <- false
                if not ok then checkWeightsSlow t.Graph theta (fun e -> values.[t.EdgeWeight.[e]])

    /// THE REFERENCE INTERPRETER: the definition of what a program means. Slow and plain; every
    /// fast path is tested against it.
    let referenceValues (p: OpProgram) (theta: float[]) : float[] =
        let stride = p.ParamCount + 1
        let v = Array.zeroCreate p.OpCount
        for i in 0 .. p.OpCount - 1 do
            let a = p.A.[i]
            v.[i] <-
                match p.Kinds.[i] with
                | OpKind.Const -> p.Constants.[a]
                | OpKind.Param -> theta.[a]
                | OpKind.Dot ->
                    // b + c_0 θ_0 + c_1 θ_1 + …, from the left
                    List.fold (fun s k -> s + p.DotRows.[a * stride + 1 + k] * theta.[k]) p.DotRows.[a * stride] [ 0 .. p.ParamCount - 1 ]
                | OpKind.Sum -> List.fold (fun s j -> s + v.[p.Operands.[j]]) 0.0 [ a .. a + p.B.[i] - 1 ]
                | k when OpKind.isUnary k -> OpMath.unary k v.[a]
                | k -> OpMath.binary k v.[a] v.[p.B.[i]]
        v

    /// The fast evaluator: one pass over the struct-of-arrays program into `values` (length
    /// OpCount), no allocation. θ is not checked here. (`TracePlan.valuesInto` is the same
    /// arithmetic in segments, for evaluators that run one trace many times.)
    let valuesInto (p: OpProgram) (theta: float[]) (values: float[]) =
        if values.Length < p.Kinds.Length then
            Fail.format "internal error: value buffer of %d for %d ops" values.Length p.Kinds.Length
        TracePlan.valuesRange p theta values 0 p.Kinds.Length

    /// Replays the commands on x with multipliers read from the op values. A run of adds into the
    /// same x[from] is accumulated in a register instead of through memory: the same additions in
    /// the same order (bit-identical to a plain replay), without a store-to-load round trip each.
    let replayValues (t: Trace) (values: float[]) (x: float[]) =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let m = t.CmdMult
        let n = f.Length
        let mutable i = 0
        while i < n do
            let a = f.[i]
            if tt.[i] = a then
                x.[a] <- x.[a] * values.[m.[i]]
                i <- i + 1
            else
                let mutable acc = x.[a]
                acc <- acc + values.[m.[i]] * x.[tt.[i]]
                i <- i + 1
                while i < n && f.[i] = a && tt.[i] <> a do
                    acc <- acc + values.[m.[i]] * x.[tt.[i]]
                    i <- i + 1
                x.[a] <- acc

    /// Evaluates a bare program (fast path), checking θ's length and finiteness.
    let programValues (p: OpProgram) (theta: float[]) : float[] =
        let theta = checkTheta p.ParamCount theta
        let v = Array.zeroCreate p.OpCount
        valuesInto p theta v
        v

    let private finish (t: Trace) (theta: float[]) (values: float[]) =
        checkWeights t theta values
        { Trace = t; Theta = Array.copy theta; Values = values }

    /// Evaluates a trace at θ with the fast evaluator. Fails (like `Graph.Weights`) when an edge
    /// weight comes out negative or not finite, or a vertex's weights sum to 0.
    let evaluate (t: Trace) (theta: float[]) : EvaluatedTrace =
        let theta = checkTheta t.ParamCount theta
        let v = Array.zeroCreate t.OpCount
        valuesInto t.Program theta v
        finish t theta v

    /// Evaluates a trace at θ with the reference interpreter.
    let evaluateReference (t: Trace) (theta: float[]) : EvaluatedTrace =
        let theta = checkTheta t.ParamCount theta
        finish t theta (referenceValues t.Program theta)

    /// The command list at θ (what `Elimination.eliminate model θ` returns).
    let commandList (t: Trace) (theta: float[]) : CommandList<float> = (evaluate t theta).CommandList

    /// Raw moments E[Y], …, E[Y^k] at θ (the `Moments` formulas on the replayed trace).
    let moments (t: Trace) (theta: float[]) (reward: float[]) (k: int) : float[] =
        Moments.moments (commandList t theta) reward k

    let expectation (t: Trace) (theta: float[]) (reward: float[]) = Moments.expectation (commandList t theta) reward
    let variance (t: Trace) (theta: float[]) (reward: float[]) = Moments.variance (commandList t theta) reward
    let covariance (t: Trace) (theta: float[]) (r1: float[]) (r2: float[]) = Moments.covariance (commandList t theta) r1 r2
    let expectedWaitingTimes (t: Trace) (theta: float[]) (reward: float[]) =
        Moments.expectedWaitingTimes (commandList t theta) reward

/// Repeated evaluation of one trace without allocation: owns its value and replay buffers and,
/// after `TracePlan.CutAfter` evaluations, the trace's evaluation plan (`TracePlan.replayPlan`: runs
/// of products in vectors, intermediates that only feed nearby ops in a small ring of slots, the
/// command multipliers in command order, command runs). The first evaluations run op by op:
/// cutting the plan costs a few evaluations, which a handful of θ would not win back. A trace
/// with fewer ops than commands (an optimized acyclic one, whose commands share multipliers) is
/// never cut: its op values fit in cache, and the plan's command-order copy of the multipliers is
/// larger than they are (measured, alternating, session 5: coalescent n = 20 / 30 / 40 replays
/// 0.93 / 0.88 / 0.66× as fast with the plan; cyclic traces 1.1–1.5× faster with it). Not
/// thread-safe: use one per thread.
[<Sealed>]
type TraceEvaluator(trace: Trace) =
    let mutable values: float[] = Array.zeroCreate (trace.OpCount + TracePlan.Window)
    let x: float[] = Array.zeroCreate trace.VertexCount
    let plan = TraceEval.checkPlan trace
    let mutable plans: (OpPlan * CommandPlan * int[]) option = None
    let mutable evaluations = 0
    let planPays = trace.OpCount >= trace.CommandCount

    member _.Trace = trace

    /// Op values of the last evaluation. Edge weights and vertex rates are at their op index; the
    /// command multipliers are read with `Multipliers()` (once the plan is cut they live in a
    /// region of their own); other intermediates may live in a ring of slots and be overwritten.
    /// Use `TraceEval.evaluate` for the value of every op.
    member _.Values = values

    /// Evaluates all ops at θ (checked like `Graph.Weights`).
    member _.Evaluate(theta: float[]) =
        let theta = TraceEval.checkTheta trace.ParamCount theta
        if plans.IsNone && planPays && evaluations >= TracePlan.CutAfter then
            let (ops, _, _) as cut = TracePlan.replayPlanShared trace
            values <- Array.zeroCreate ops.Slots
            plans <- Some cut
        evaluations <- evaluations + 1
        match plans with
        | Some (ops, _, _) -> TracePlan.valuesInto ops trace.Program theta values
        | None -> TraceEval.valuesInto trace.Program theta values
        TraceEval.checkWeightsPlanned plan trace theta values

    /// Command multipliers of the last evaluation (a new array).
    member _.Multipliers() =
        let slots = match plans with Some (_, _, slots) -> slots | None -> trace.CmdMult
        slots |> Array.map (fun s -> values.[s])

    /// E[reward accumulated] at θ: evaluate, then replay once (reward[0] is the start vertex's).
    member this.Expectation(theta: float[], reward: float[]) : float =
        Rewards.check trace.Graph reward
        this.Evaluate theta
        Array.blit reward 0 x 0 x.Length
        match plans with
        | Some (_, commands, _) -> TracePlan.replayCommands commands trace values x
        | None -> TraceEval.replayValues trace values x
        x.[0]
