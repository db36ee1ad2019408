namespace Ptd.Core

open System

/// Exact derivatives over a trace (our own autodiff: the trace is a straight-line program).
/// Reverse mode for moments: one backward sweep over the command replays and one over the ops.
/// Forward mode (tangents) for the likelihood sweep, where the parameter count is small.
module TraceGrad =

    // ---- op level -------------------------------------------------------------------------

    /// Reverse sweep over the ops. `adj` holds ∂J/∂(op value) for the ops J reads directly; it
    /// is overwritten with the full adjoints. Returns ∂J/∂θ. `values` from the forward pass.
    let backwardOps (p: OpProgram) (values: float[]) (adj: float[]) : float[] =
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let rows = p.DotRows
        let operands = p.Operands
        let pc = p.ParamCount
        let stride = pc + 1
        let grad = Array.zeroCreate pc
        for i in kinds.Length - 1 .. -1 .. 0 do
            let g = adj.[i]
            if g <> 0.0 then
                match kinds.[i] with
                | OpKind.Mul ->
                    adj.[a.[i]] <- adj.[a.[i]] + g * values.[b.[i]]
                    adj.[b.[i]] <- adj.[b.[i]] + g * values.[a.[i]]
                | OpKind.Add ->
                    adj.[a.[i]] <- adj.[a.[i]] + g
                    adj.[b.[i]] <- adj.[b.[i]] + g
                | OpKind.Inv ->
                    // d(1/x) = −dx/x² = −dx·y²
                    let y = values.[i]
                    adj.[a.[i]] <- adj.[a.[i]] - g * y * y
                | OpKind.Sum ->
                    for j in a.[i] .. a.[i] + b.[i] - 1 do
                        let o = operands.[j]
                        adj.[o] <- adj.[o] + g
                | OpKind.Dot ->
                    let r = a.[i] * stride
                    for k in 0 .. pc - 1 do
                        grad.[k] <- grad.[k] + g * rows.[r + 1 + k]
                | OpKind.Const -> ()
                | OpKind.Param -> grad.[a.[i]] <- grad.[a.[i]] + g
                | OpKind.Sub ->
                    adj.[a.[i]] <- adj.[a.[i]] + g
                    adj.[b.[i]] <- adj.[b.[i]] - g
                | OpKind.Div ->
                    // d(x/y) = dx/y − (x/y)·dy/y
                    let y = values.[b.[i]]
                    adj.[a.[i]] <- adj.[a.[i]] + g / y
                    adj.[b.[i]] <- adj.[b.[i]] - g * values.[i] / y
                | OpKind.OneMinus
                | OpKind.Neg -> adj.[a.[i]] <- adj.[a.[i]] - g
                | OpKind.Log -> adj.[a.[i]] <- adj.[a.[i]] + g / values.[a.[i]]
                | OpKind.Exp -> adj.[a.[i]] <- adj.[a.[i]] + g * values.[i]
                | k -> Fail.format "internal error: unknown op kind %d at op %d" (int k) i
        grad

    /// Forward-mode tangents: d(op value)/dε along θ + ε·thetaDot, for every op.
    let tangentOps (p: OpProgram) (values: float[]) (thetaDot: float[]) : float[] =
        if thetaDot.Length <> p.ParamCount then
            Fail.format "tangent has %d entries but the program has %d parameter(s)" thetaDot.Length p.ParamCount
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let rows = p.DotRows
        let pc = p.ParamCount
        let stride = pc + 1
        let d = Array.zeroCreate kinds.Length
        for i in 0 .. kinds.Length - 1 do
            d.[i] <-
                match kinds.[i] with
                | OpKind.Const -> 0.0
                | OpKind.Param -> thetaDot.[a.[i]]
                | OpKind.Dot ->
                    let r = a.[i] * stride
                    let mutable s = 0.0
                    for k in 0 .. pc - 1 do s <- s + rows.[r + 1 + k] * thetaDot.[k]
                    s
                | OpKind.Add -> d.[a.[i]] + d.[b.[i]]
                | OpKind.Sub -> d.[a.[i]] - d.[b.[i]]
                | OpKind.Mul -> d.[a.[i]] * values.[b.[i]] + values.[a.[i]] * d.[b.[i]]
                | OpKind.Div -> (d.[a.[i]] - values.[i] * d.[b.[i]]) / values.[b.[i]]
                | OpKind.Inv -> -d.[a.[i]] * values.[i] * values.[i]
                | OpKind.Sum ->
                    let mutable s = 0.0
                    for j in a.[i] .. a.[i] + b.[i] - 1 do s <- s + d.[p.Operands.[j]]
                    s
                | OpKind.OneMinus
                | OpKind.Neg -> -d.[a.[i]]
                | OpKind.Log -> d.[a.[i]] / values.[a.[i]]
                | OpKind.Exp -> d.[a.[i]] * values.[i]
                | k -> Fail.format "internal error: unknown op kind %d at op %d" (int k) i
        d

    /// ∂J/∂θ given ∂J/∂(command multipliers) and/or ∂J/∂(original edge weights) (either may be
    /// null): the chain rule through the ops.
    let backwardOutputs (t: Trace) (values: float[]) (multAdj: float[]) (weightAdj: float[]) : float[] =
        let adj = Array.zeroCreate t.OpCount
        if not (isNull multAdj) then
            for c in 0 .. t.CommandCount - 1 do
                let o = t.CmdMult.[c]
                adj.[o] <- adj.[o] + multAdj.[c]
        if not (isNull weightAdj) then
            for e in 0 .. t.EdgeCount - 1 do
                let o = t.EdgeWeight.[e]
                adj.[o] <- adj.[o] + weightAdj.[e]
        backwardOps t.Program values adj

    /// ∂(edge weight e)/∂θ_k for all e, k: result.[k].[e] (forward mode, one sweep per parameter).
    let weightTangents (t: Trace) (values: float[]) : float[][] =
        Array.init t.ParamCount (fun k ->
            let dir = Array.zeroCreate t.ParamCount
            dir.[k] <- 1.0
            let d = tangentOps t.Program values dir
            t.EdgeWeight |> Array.map (fun o -> d.[o]))

    // ---- command replay --------------------------------------------------------------------

    /// Replays the commands on x (multipliers read from the op values), recording per command
    /// the value the update reads (x[from] before a scale, x[to] for an add) — what the reverse
    /// sweep needs. Same arithmetic, same order as `TraceEval.replayValues`.
    let private replayTaped (t: Trace) (values: float[]) (x: float[]) (tape: float[]) =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let m = t.CmdMult
        let n = f.Length
        let mutable i = 0
        while i < n do
            let a = f.[i]
            if tt.[i] = a then
                tape.[i] <- x.[a]
                x.[a] <- x.[a] * values.[m.[i]]
                i <- i + 1
            else
                let mutable acc = x.[a]
                while i < n && f.[i] = a && tt.[i] <> a do
                    let xb = x.[tt.[i]]
                    tape.[i] <- xb
                    acc <- acc + values.[m.[i]] * xb
                    i <- i + 1
                x.[a] <- acc

    /// Reverse of `replayTaped`: xbar (adjoint of the output) becomes the adjoint of the input;
    /// the multipliers' adjoints are added to their ops' adjoints in `adj`.
    let private replayBackward (t: Trace) (values: float[]) (tape: float[]) (xbar: float[]) (adj: float[]) =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let m = t.CmdMult
        for i in f.Length - 1 .. -1 .. 0 do
            let a = f.[i]
            let g = xbar.[a]
            if g <> 0.0 then
                let o = m.[i]
                adj.[o] <- adj.[o] + g * tape.[i]
                let b = tt.[i]
                if a = b then xbar.[a] <- g * values.[o] else xbar.[b] <- xbar.[b] + values.[o] * g

    /// Buffers of one moment-gradient computation, reusable across calls (`TraceGradient`).
    [<Sealed>]
    /// `planned`: after `TracePlan.CutAfter` forward passes, evaluate through a `TracePlan` — in
    /// reverse mode with window 0 (the reverse sweep needs every op's value), in forward mode the
    /// replay evaluator's plan with its ring (`TraceTangentPlan`) — its cut costs a few
    /// evaluations, won back only when the buffers are reused many times. `forward`: use forward
    /// mode (`TraceTangents`, only where it applies) instead of reverse mode.
    type internal Work(t: Trace, planned: bool, forward: bool) =
        let plan = TraceEval.checkPlan t
        let tangents = if forward && TraceTangents.applies t then Some(TraceTangents.Work(t, plan, planned)) else None
        // reverse mode's buffers, not allocated in forward mode
        let reverseBuffer () : float[] = if tangents.IsSome then null else Array.zeroCreate t.OpCount
        let mutable opPlan: OpPlan option = None
        let mutable passes = 0
        /// Forward-mode buffers when this computation runs in forward mode.
        member _.Tangents = tangents
        /// The plan to evaluate with on this pass (None: op by op).
        member _.NextPlan() =
            if planned && opPlan.IsNone && passes >= TracePlan.CutAfter then opPlan <- Some(TracePlan.ops t 0)
            passes <- passes + 1
            opPlan
        member val Values: float[] = reverseBuffer ()
        member val Adj: float[] = reverseBuffer ()
        member _.Plan = plan
        member val Tapes = ResizeArray<float[]>()
        member w.Tape(j: int) =
            while w.Tapes.Count <= j do w.Tapes.Add(Array.zeroCreate t.CommandCount)
            w.Tapes.[j]

    /// Moments 1..k exactly as `Moments.moments` computes them (bit for bit), taping every replay.
    let private forward (w: Work) (t: Trace) (theta: float[]) (reward: float[]) (k: int) : float[] =
        Rewards.check t.Graph reward
        if k < 1 then Fail.format "moment order must be ≥ 1 (got %d)" k
        let theta = TraceEval.checkTheta t.ParamCount theta
        match w.NextPlan() with
        | Some plan -> TracePlan.valuesInto plan t.Program theta w.Values
        | None -> TraceEval.valuesInto t.Program theta w.Values
        TraceEval.checkWeightsPlanned w.Plan t theta w.Values
        let values = w.Values
        let n = reward.Length
        let result = Array.zeroCreate k
        if not t.Graph.IsDiscrete then
            let x = Array.copy reward
            replayTaped t values x (w.Tape 0)
            result.[0] <- x.[0]
            for j in 2 .. k do
                for v in 0 .. n - 1 do x.[v] <- x.[v] * reward.[v]
                replayTaped t values x (w.Tape(j - 1))
                result.[j - 1] <- Moments.factorial j * x.[0]
        else
            let m = Array.zeroCreate (k + 1)
            let b = Array.zeroCreate (k + 1)
            for j in 1 .. k do
                let bj = Array.init n (fun v -> Math.Pow(reward.[v], float j))
                for i in 1 .. j - 1 do
                    let coef = Moments.binomial j i
                    let mi: float[] = m.[i]
                    let bi: float[] = b.[i]
                    for v in 0 .. n - 1 do
                        bj.[v] <- bj.[v] + coef * Math.Pow(reward.[v], float (j - i)) * (mi.[v] - bi.[v])
                b.[j] <- bj
                let mj = Array.copy bj
                replayTaped t values mj (w.Tape(j - 1))
                m.[j] <- mj
                result.[j - 1] <- mj.[0]
        result

    /// ∂(Σ_j seed.[j−1] · E[Y^j])/∂θ after `forward` with k = seed.Length.
    let private backward (w: Work) (t: Trace) (reward: float[]) (seed: float[]) : float[] =
        let k = seed.Length
        let n = reward.Length
        let adj = w.Adj
        Array.Clear adj
        if not t.Graph.IsDiscrete then
            // r_j = ewt(r_{j−1} ⊙ r): one adjoint vector walks back through the chain of replays.
            let ybar = Array.zeroCreate n
            for j in k .. -1 .. 1 do
                ybar.[0] <- ybar.[0] + seed.[j - 1] * Moments.factorial j
                replayBackward t w.Values (w.Tape(j - 1)) ybar adj
                if j > 1 then
                    for v in 0 .. n - 1 do ybar.[v] <- ybar.[v] * reward.[v]
        else
            // m_j = ewt(b_j), b_j = r^j + Σ_{i<j} C(j,i) r^{j−i} ⊙ (m_i − b_i).
            let mAdj = Array.init (k + 1) (fun _ -> Array.zeroCreate n)
            let bAdj = Array.init (k + 1) (fun _ -> Array.zeroCreate n)
            for j in k .. -1 .. 1 do
                let mj: float[] = mAdj.[j]
                mj.[0] <- mj.[0] + seed.[j - 1]
                replayBackward t w.Values (w.Tape(j - 1)) mj adj
                let bj: float[] = bAdj.[j]
                for v in 0 .. n - 1 do bj.[v] <- bj.[v] + mj.[v]
                for i in 1 .. j - 1 do
                    let coef = Moments.binomial j i
                    let mi: float[] = mAdj.[i]
                    let bi: float[] = bAdj.[i]
                    for v in 0 .. n - 1 do
                        let g = coef * Math.Pow(reward.[v], float (j - i)) * bj.[v]
                        mi.[v] <- mi.[v] + g
                        bi.[v] <- bi.[v] - g
        backwardOps t.Program w.Values adj

    let private checkSeed (seed: float[]) =
        if isNull seed || seed.Length < 1 then Fail.withMessage "seed must have at least one entry (one per moment order)"

    /// Σ_j seed.[j−1] · jacobian.[j−1] (the forward-mode counterpart of seeding the reverse sweep).
    let private seeded (seed: float[]) (jacobian: float[][]) (pc: int) =
        let grad = Array.zeroCreate pc
        for j in 0 .. seed.Length - 1 do
            for p in 0 .. pc - 1 do
                grad.[p] <- grad.[p] + seed.[j] * jacobian.[j].[p]
        grad

    let internal momentsWithGradientOn (w: Work) (t: Trace) (theta: float[]) (reward: float[]) (seed: float[]) =
        checkSeed seed
        match w.Tangents with
        | Some tw ->
            let m, jacobian = TraceTangents.moments tw t theta reward seed.Length
            m, seeded seed jacobian t.ParamCount
        | None ->
            let m = forward w t theta reward seed.Length
            m, backward w t reward seed

    let internal varianceWithGradientOn (w: Work) (t: Trace) (theta: float[]) (reward: float[]) =
        match w.Tangents with
        | Some tw ->
            let m, jacobian = TraceTangents.moments tw t theta reward 2
            m.[1] - m.[0] * m.[0], seeded [| -2.0 * m.[0]; 1.0 |] jacobian t.ParamCount
        | None ->
            let m = forward w t theta reward 2
            m.[1] - m.[0] * m.[0], backward w t reward [| -2.0 * m.[0]; 1.0 |]

    let internal momentsJacobianOn (w: Work) (t: Trace) (theta: float[]) (reward: float[]) (k: int) =
        match w.Tangents with
        | Some tw -> TraceTangents.moments tw t theta reward k
        | None ->
            let m = forward w t theta reward k
            m,
            Array.init k (fun j ->
                let seed = Array.zeroCreate k
                seed.[j] <- 1.0
                backward w t reward seed)

    /// Moments E[Y], …, E[Y^k] (k = seed.Length) and the gradient of Σ_j seed.[j−1]·E[Y^j].
    let momentsWithGradient (t: Trace) (theta: float[]) (reward: float[]) (seed: float[]) : float[] * float[] =
        momentsWithGradientOn (Work(t, false, true)) t theta reward seed

    /// E[Y] and ∂E[Y]/∂θ.
    let meanWithGradient (t: Trace) (theta: float[]) (reward: float[]) : float * float[] =
        let m, g = momentsWithGradient t theta reward [| 1.0 |]
        m.[0], g

    /// E[Y^k] and ∂E[Y^k]/∂θ.
    let momentWithGradient (t: Trace) (theta: float[]) (reward: float[]) (k: int) : float * float[] =
        if k < 1 then Fail.format "moment order must be ≥ 1 (got %d)" k
        let seed = Array.zeroCreate k
        seed.[k - 1] <- 1.0
        let m, g = momentsWithGradient t theta reward seed
        m.[k - 1], g

    /// Var[Y] and ∂Var[Y]/∂θ (Var = E[Y²] − E[Y]², so the seed is (−2E[Y], 1)).
    let varianceWithGradient (t: Trace) (theta: float[]) (reward: float[]) : float * float[] =
        varianceWithGradientOn (Work(t, false, true)) t theta reward

    /// Moments 1..k and the Jacobian: result.[j − 1] = ∂E[Y^j]/∂θ (one reverse sweep per order).
    let momentsJacobian (t: Trace) (theta: float[]) (reward: float[]) (k: int) : float[] * float[][] =
        momentsJacobianOn (Work(t, false, true)) t theta reward k

/// Moment gradients of one trace with buffers kept between calls (the per-θ loop of an
/// optimizer or sampler). Not thread-safe: use one per thread.
[<Sealed>]
type TraceGradient(trace: Trace) =
    let work = TraceGrad.Work(trace, true, true)
    member _.Trace = trace
    member _.MomentsWithGradient(theta: float[], reward: float[], seed: float[]) =
        TraceGrad.momentsWithGradientOn work trace theta reward seed
    member _.MeanWithGradient(theta: float[], reward: float[]) =
        let m, g = TraceGrad.momentsWithGradientOn work trace theta reward [| 1.0 |]
        m.[0], g
    member _.VarianceWithGradient(theta: float[], reward: float[]) =
        TraceGrad.varianceWithGradientOn work trace theta reward
    member _.MomentsJacobian(theta: float[], reward: float[], k: int) =
        TraceGrad.momentsJacobianOn work trace theta reward k
