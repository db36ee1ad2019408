namespace Ptd.Core

open System
open System.Runtime.Intrinsics

/// Moment gradients in forward mode, for traces with at most four parameters: every op's value
/// (a plain float from the same IEEE operation as the evaluator, so moments stay bit-identical)
/// and its derivatives ∂/∂θ_1..θ_4 in the lanes of one Vector256 — one pass over the ops and one
/// over the commands per moment order. Why not reverse mode here: reverse mode needs a forward
/// pass, a taped command replay, a reverse command sweep and a reverse op sweep whose scattered
/// adjoint updates cost two to three forward passes; with ≤ 4 parameters the tangents cost one
/// vector operation beside each scalar one (measured in docs/PERFORMANCE.md, "Session 7").
/// `TraceGrad` picks this path when `applies` holds and keeps reverse mode for more parameters.
module internal TraceTangents =

    /// Parameters one Vector256 of tangents holds.
    [<Literal>]
    let MaxParams = 4

    /// Forward mode pays when the tangents fit in one hardware vector.
    let applies (t: Trace) =
        Vector256.IsHardwareAccelerated && t.ParamCount <= MaxParams

    /// Values (exactly `TraceEval.valuesInto`'s) and tangents of every op at θ (θ checked by the
    /// caller; both buffers of length ≥ OpCount).
    let opsInto (p: OpProgram) (theta: float[]) (values: float[]) (tangents: Vector256<float>[]) =
        let pc = p.ParamCount
        if pc > MaxParams then
            Fail.format "internal error: forward-mode tangents hold %d parameters, the program has %d" MaxParams pc
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let consts = p.Constants
        let rows = p.DotRows
        let operands = p.Operands
        let stride = pc + 1
        for i in 0 .. kinds.Length - 1 do
            match kinds.[i] with
            | OpKind.Mul ->
                let x = a.[i]
                let y = b.[i]
                let vx = values.[x]
                let vy = values.[y]
                values.[i] <- vx * vy
                tangents.[i] <- tangents.[x] * vy + vx * tangents.[y]
            | OpKind.Add ->
                values.[i] <- values.[a.[i]] + values.[b.[i]]
                tangents.[i] <- tangents.[a.[i]] + tangents.[b.[i]]
            | OpKind.Inv ->
                let x = a.[i]
                let y = 1.0 / values.[x]
                values.[i] <- y
                tangents.[i] <- tangents.[x] * (-(y * y))
            | OpKind.Sum ->
                let s0 = a.[i]
                let mutable s = 0.0
                let mutable d = Vector256<float>.Zero
                for j in s0 .. s0 + b.[i] - 1 do
                    let o = operands.[j]
                    s <- s + values.[o]
                    d <- d + tangents.[o]
                values.[i] <- s
                tangents.[i] <- d
            | OpKind.Dot ->
                let r = a.[i] * stride
                let mutable s = rows.[r]
                for k in 0 .. pc - 1 do
                    s <- s + rows.[r + 1 + k] * theta.[k]
                values.[i] <- s
                tangents.[i] <- if pc = 0 then Vector256<float>.Zero else TraceTangentPlan.coefficients rows r pc
            | OpKind.Const ->
                values.[i] <- consts.[a.[i]]
                tangents.[i] <- Vector256<float>.Zero
            | OpKind.Param ->
                values.[i] <- theta.[a.[i]]
                tangents.[i] <- TraceTangentPlan.unit a.[i]
            | OpKind.Sub ->
                values.[i] <- values.[a.[i]] - values.[b.[i]]
                tangents.[i] <- tangents.[a.[i]] - tangents.[b.[i]]
            | OpKind.Div ->
                // d(x/y) = (dx − (x/y)·dy)/y
                let x = a.[i]
                let y = b.[i]
                let q = values.[x] / values.[y]
                values.[i] <- q
                tangents.[i] <- (tangents.[x] - q * tangents.[y]) / values.[y]
            | OpKind.OneMinus ->
                values.[i] <- 1.0 - values.[a.[i]]
                tangents.[i] <- -tangents.[a.[i]]
            | OpKind.Neg ->
                values.[i] <- -values.[a.[i]]
                tangents.[i] <- -tangents.[a.[i]]
            | OpKind.Log ->
                let x = a.[i]
                values.[i] <- Math.Log values.[x]
                tangents.[i] <- tangents.[x] / values.[x]
            | OpKind.Exp ->
                let x = a.[i]
                let e = Math.Exp values.[x]
                values.[i] <- e
                tangents.[i] <- tangents.[x] * e
            | k -> Fail.format "internal error: unknown op kind %d at op %d" (int k) i

    /// Replays the commands on x and its tangents xt: the value arithmetic is exactly
    /// `TraceEval.replayValues`'s (a run of adds accumulated in a register), the tangents follow
    /// d(x_a + m·x_b) = dx_a + dm·x_b + m·dx_b and d(m·x_a) = dm·x_a + m·dx_a.
    let replay (t: Trace) (values: float[]) (tangents: Vector256<float>[]) (x: float[]) (xt: Vector256<float>[]) =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let m = t.CmdMult
        let n = f.Length
        let mutable i = 0
        while i < n do
            let a = f.[i]
            if tt.[i] = a then
                let o = m.[i]
                let mv = values.[o]
                xt.[a] <- tangents.[o] * x.[a] + mv * xt.[a]
                x.[a] <- x.[a] * mv
                i <- i + 1
            else
                let mutable acc = x.[a]
                let mutable d = xt.[a]
                while i < n && f.[i] = a && tt.[i] <> a do
                    let o = m.[i]
                    let c = tt.[i]
                    let mv = values.[o]
                    let xc = x.[c]
                    acc <- acc + mv * xc
                    d <- d + (tangents.[o] * xc + mv * xt.[c])
                    i <- i + 1
                x.[a] <- acc
                xt.[a] <- d

    /// Buffers of one trace's forward-mode gradients, reusable across calls; `checkPlan` is the
    /// trace's `TraceEval.checkPlan` (the caller's, built once). `planned`: after
    /// `TracePlan.CutAfter` passes, run through the replay evaluator's plan (`TraceTangentPlan`),
    /// for traces the replay evaluator would plan too (at least as many ops as commands).
    [<Sealed>]
    type Work(t: Trace, checkPlan: TraceEval.CheckPlan, planned: bool) =
        let mutable values: float[] = Array.zeroCreate t.OpCount
        let mutable tangents: Vector256<float>[] = Array.zeroCreate t.OpCount
        let mutable plans: (OpPlan * CommandPlan) option = None
        let mutable passes = 0
        new(t, checkPlan) = Work(t, checkPlan, false)
        member _.Values = values
        member _.Tangents = tangents
        member val X: float[] = Array.zeroCreate t.VertexCount
        member val XT: Vector256<float>[] = Array.zeroCreate t.VertexCount
        member _.CheckPlan = checkPlan
        /// The plan to run this pass with (None: op by op); cuts it, and sizes the buffers for its
        /// slots, once the pass count reaches `TracePlan.CutAfter`.
        member _.NextPlan() =
            if planned && plans.IsNone && passes >= TracePlan.CutAfter && t.OpCount >= t.CommandCount then
                let ops, commands, _ = TracePlan.replayPlanShared t
                values <- Array.zeroCreate ops.Slots
                tangents <- Array.zeroCreate ops.Slots
                plans <- Some(ops, commands)
            passes <- passes + 1
            plans

    /// Moments 1..k exactly as `Moments.moments` computes them (bit for bit) and their Jacobian:
    /// jacobian.[j − 1].[p] = ∂E[Y^j]/∂θ_p. θ, reward and k checked as the reverse mode checks them.
    let moments (w: Work) (t: Trace) (theta: float[]) (reward: float[]) (k: int) : float[] * float[][] =
        Rewards.check t.Graph reward
        if k < 1 then Fail.format "moment order must be ≥ 1 (got %d)" k
        let theta = TraceEval.checkTheta t.ParamCount theta
        let plans = w.NextPlan()
        let values = w.Values
        let tangents = w.Tangents
        match plans with
        | Some (ops, _) -> TraceTangentPlan.opsPlanned ops t.Program theta values tangents
        | None -> opsInto t.Program theta values tangents
        TraceEval.checkWeightsPlanned w.CheckPlan t theta values
        let replay (x: float[]) (xt: Vector256<float>[]) =
            match plans with
            | Some (_, commands) -> TraceTangentPlan.replayPlanned commands t values tangents x xt
            | None -> replay t values tangents x xt
        let pc = t.ParamCount
        let n = reward.Length
        let result = Array.zeroCreate k
        let jacobian = Array.init k (fun _ -> Array.zeroCreate pc)
        let record j (scale: float) (d: Vector256<float>) =
            for p in 0 .. pc - 1 do jacobian.[j - 1].[p] <- scale * d.GetElement p
        let x = w.X
        let xt = w.XT
        if not t.Graph.IsDiscrete then
            Array.blit reward 0 x 0 n
            Array.Clear xt
            replay x xt
            result.[0] <- x.[0]
            record 1 1.0 xt.[0]
            for j in 2 .. k do
                for v in 0 .. n - 1 do
                    x.[v] <- x.[v] * reward.[v]
                    xt.[v] <- xt.[v] * reward.[v]
                replay x xt
                let f = Moments.factorial j
                result.[j - 1] <- f * x.[0]
                record j f xt.[0]
        else
            // m_j = ewt(b_j), b_j = r^j + Σ_{i<j} C(j,i) r^{j−i} ⊙ (m_i − b_i) (as Moments.moments);
            // r^j is constant, so the tangents of b_j are the same sum over the tangents of m_i, b_i.
            let m = Array.zeroCreate (k + 1)
            let b = Array.zeroCreate (k + 1)
            let mt = Array.zeroCreate (k + 1)
            let bt = Array.zeroCreate (k + 1)
            for j in 1 .. k do
                let bj = Array.init n (fun v -> Math.Pow(reward.[v], float j))
                let btj: Vector256<float>[] = Array.zeroCreate n
                for i in 1 .. j - 1 do
                    let coef = Moments.binomial j i
                    let mi: float[] = m.[i]
                    let bi: float[] = b.[i]
                    let mti: Vector256<float>[] = mt.[i]
                    let bti: Vector256<float>[] = bt.[i]
                    for v in 0 .. n - 1 do
                        let c = coef * Math.Pow(reward.[v], float (j - i))
                        bj.[v] <- bj.[v] + c * (mi.[v] - bi.[v])
                        btj.[v] <- btj.[v] + c * (mti.[v] - bti.[v])
                b.[j] <- bj
                bt.[j] <- btj
                let mj = Array.copy bj
                let mtj = Array.copy btj
                replay mj mtj
                m.[j] <- mj
                mt.[j] <- mtj
                result.[j - 1] <- mj.[0]
                record j 1.0 mtj.[0]
        result, jacobian
