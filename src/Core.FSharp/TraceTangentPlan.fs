namespace Ptd.Core

open System
open System.Runtime.Intrinsics

/// Forward-mode tangents (`TraceTangents`) through the replay evaluator's plan (`TracePlan.replayPlan`):
/// the same segments, ring of slots and command-order multiplier region as `TracePlan.valuesInto`
/// and `TracePlan.replayCommands`, with each slot's ∂/∂θ_1..θ_4 in a Vector256 beside its value. Why:
/// op by op, a large trace's tangents (32 bytes per op; rabbits3 R = 200: 28 MB) stream through
/// memory on every pass, while the mean it is compared with runs on the plan — mean + gradient was
/// 5.8× the mean there. Every value is the IEEE operation `TracePlan.valuesInto` performs (so
/// moments stay bit-identical) and every tangent the expression `TraceTangents.opsInto` evaluates
/// for that op, with the same operands in the same order up to the commutativity of IEEE + and ·
/// (so the tangents are bit-identical to op-by-op forward mode too).
module internal TraceTangentPlan =

    /// The tangent of parameter k: 1 in lane k.
    let unit (k: int) =
        Vector256.Create((if k = 0 then 1.0 else 0.0), (if k = 1 then 1.0 else 0.0), (if k = 2 then 1.0 else 0.0), (if k = 3 then 1.0 else 0.0))

    /// The constant tangent of a Dot op: its coefficients c_0 .. c_{P−1}, zero in unused lanes.
    let coefficients (rows: float[]) (r: int) (pc: int) =
        Vector256.Create(
            rows.[r + 1],
            (if pc > 1 then rows.[r + 2] else 0.0),
            (if pc > 2 then rows.[r + 3] else 0.0),
            (if pc > 3 then rows.[r + 4] else 0.0))

    /// A plan's op-by-op ops j0 .. j1 − 1 (slots), as `TraceTangents.opsInto` evaluates each kind.
    let private plainRange (plan: OpPlan) (p: OpProgram) (theta: float[]) (values: float[]) (tangents: Vector256<float>[]) (j0: int) (j1: int) =
        let kinds = plan.PlainKind
        let a = plan.PlainA
        let b = plan.PlainB
        let out = plan.PlainOut
        let operands = plan.PlainOperands
        let pc = p.ParamCount
        let stride = pc + 1
        let rows = p.DotRows
        for i in j0 .. j1 - 1 do
            let o = out.[i]
            match kinds.[i] with
            | OpKind.Mul ->
                let x = a.[i]
                let y = b.[i]
                let vx = values.[x]
                let vy = values.[y]
                values.[o] <- vx * vy
                tangents.[o] <- tangents.[x] * vy + vx * tangents.[y]
            | OpKind.Add ->
                values.[o] <- values.[a.[i]] + values.[b.[i]]
                tangents.[o] <- tangents.[a.[i]] + tangents.[b.[i]]
            | OpKind.Inv ->
                let x = a.[i]
                let y = 1.0 / values.[x]
                values.[o] <- y
                tangents.[o] <- tangents.[x] * (-(y * y))
            | OpKind.Sum ->
                let s0 = a.[i]
                let mutable s = 0.0
                let mutable d = Vector256<float>.Zero
                for j in s0 .. s0 + b.[i] - 1 do
                    let x = operands.[j]
                    s <- s + values.[x]
                    d <- d + tangents.[x]
                values.[o] <- s
                tangents.[o] <- d
            | OpKind.Dot ->
                let r = a.[i] * stride
                let mutable s = rows.[r]
                for k in 0 .. pc - 1 do
                    s <- s + rows.[r + 1 + k] * theta.[k]
                values.[o] <- s
                tangents.[o] <- if pc = 0 then Vector256<float>.Zero else coefficients rows r pc
            | OpKind.Const ->
                values.[o] <- p.Constants.[a.[i]]
                tangents.[o] <- Vector256<float>.Zero
            | OpKind.Param ->
                values.[o] <- theta.[a.[i]]
                tangents.[o] <- unit a.[i]
            | OpKind.Sub ->
                values.[o] <- values.[a.[i]] - values.[b.[i]]
                tangents.[o] <- tangents.[a.[i]] - tangents.[b.[i]]
            | OpKind.Div ->
                let x = a.[i]
                let y = b.[i]
                let q = values.[x] / values.[y]
                values.[o] <- q
                tangents.[o] <- (tangents.[x] - q * tangents.[y]) / values.[y]
            | OpKind.OneMinus ->
                values.[o] <- 1.0 - values.[a.[i]]
                tangents.[o] <- -tangents.[a.[i]]
            | OpKind.Neg ->
                values.[o] <- -values.[a.[i]]
                tangents.[o] <- -tangents.[a.[i]]
            | OpKind.Log ->
                let x = a.[i]
                values.[o] <- Math.Log values.[x]
                tangents.[o] <- tangents.[x] / values.[x]
            | OpKind.Exp ->
                let x = a.[i]
                let e = Math.Exp values.[x]
                values.[o] <- e
                tangents.[o] <- tangents.[x] * e
            | k -> Fail.format "internal error: unknown op kind %d" (int k)

    /// Values and tangents of every op at θ through the plan (buffers of length ≥ plan.Slots).
    /// Segments run in op order and each op reads its operands before it is stored, as in
    /// `TracePlan.valuesInto`; here every segment runs op by op (a tangent is already a vector).
    let opsPlanned (plan: OpPlan) (p: OpProgram) (theta: float[]) (values: float[]) (tangents: Vector256<float>[]) =
        if values.Length < plan.Slots || tangents.Length < plan.Slots then
            Fail.format "internal error: buffers of %d / %d for %d slots" values.Length tangents.Length plan.Slots
        let kind = plan.Kind
        let out = plan.Out
        let count = plan.Count
        let shared = plan.Shared
        let range = plan.Range
        let index = plan.Index
        for s in 0 .. kind.Length - 1 do
            let o = out.[s]
            let c = count.[s]
            match kind.[s] with
            | TracePlan.MulLeft | TracePlan.MulRight | 5uy | 6uy ->
                // 5, 6: MulLeft/MulRight + Scalar, the same products
                let k = kind.[s]
                let left = k = TracePlan.MulLeft || k = TracePlan.MulLeft + TracePlan.Scalar
                let sh = shared.[s]
                let r = range.[s]
                let vs = values.[sh]
                let ts = tangents.[sh]
                for j in 0 .. c - 1 do
                    let vr = values.[r + j]
                    let tr = tangents.[r + j]
                    if left then
                        // op (a = shared, b = r + j)
                        values.[o + j] <- vs * vr
                        tangents.[o + j] <- ts * vr + vs * tr
                    else
                        // op (a = r + j, b = shared)
                        values.[o + j] <- vr * vs
                        tangents.[o + j] <- tr * vs + vr * ts
            | TracePlan.Gather ->
                let sh = shared.[s]
                let vs = values.[sh]
                let ts = tangents.[sh]
                let r = range.[s]
                for j in 0 .. c - 1 do
                    let x = index.[r + j]
                    let vx = values.[x]
                    values.[o + j] <- vs * vx
                    tangents.[o + j] <- ts * vx + vs * tangents.[x]
            | TracePlan.SumRange ->
                let r = range.[s]
                let mutable acc = 0.0
                let mutable d = Vector256<float>.Zero
                for j in r .. r + c - 1 do
                    acc <- acc + values.[j]
                    d <- d + tangents.[j]
                values.[o] <- acc
                tangents.[o] <- d
            | TracePlan.SumInv ->
                let r = range.[s]
                let mutable acc = 0.0
                let mutable d = Vector256<float>.Zero
                for j in r .. r + c - 1 do
                    let x = index.[j]
                    acc <- acc + values.[x]
                    d <- d + tangents.[x]
                values.[o] <- acc
                tangents.[o] <- d
                let y = 1.0 / acc
                values.[shared.[s]] <- y
                tangents.[shared.[s]] <- d * (-(y * y))
            | TracePlan.Pairs ->
                let r = range.[s]
                for j in 0 .. c - 1 do
                    let x = index.[r + 2 * j]
                    let y = index.[r + 2 * j + 1]
                    values.[o + j] <- values.[x] + values.[y]
                    tangents.[o + j] <- tangents.[x] + tangents.[y]
            | TracePlan.Dots ->
                let pc = p.ParamCount
                let stride = pc + 1
                let rows = p.DotRows
                let mutable row = range.[s] * stride
                for j in o .. o + c - 1 do
                    let mutable acc = rows.[row]
                    for k in 0 .. pc - 1 do
                        acc <- acc + rows.[row + 1 + k] * theta.[k]
                    values.[j] <- acc
                    tangents.[j] <- if pc = 0 then Vector256<float>.Zero else coefficients rows row pc
                    row <- row + stride
            | TracePlan.Ops -> plainRange plan p theta values tangents o (o + c)
            | k -> Fail.format "internal error: unknown segment kind %d" (int k)

    /// Replays the commands on x and its tangents xt through the plan: the value arithmetic of
    /// `TracePlan.replayCommands`, the tangent arithmetic of `TraceTangents.replay`.
    let replayPlanned (plan: CommandPlan) (t: Trace) (values: float[]) (tangents: Vector256<float>[]) (x: float[]) (xt: Vector256<float>[]) =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let m = plan.Slot
        let from = plan.From
        let start = plan.Start
        let count = plan.Count
        let mult = plan.Mult
        for s in 0 .. from.Length - 1 do
            let c0 = start.[s]
            let c1 = c0 + count.[s]
            if mult.[s] >= 0 then
                let a = from.[s]
                let m0 = mult.[s] - c0
                let mutable acc = x.[a]
                let mutable d = xt.[a]
                for c in c0 .. c1 - 1 do
                    let o = m0 + c
                    let b = tt.[c]
                    let mv = values.[o]
                    let xc = x.[b]
                    acc <- acc + mv * xc
                    d <- d + (tangents.[o] * xc + mv * xt.[b])
                x.[a] <- acc
                xt.[a] <- d
            else
                let mutable i = c0
                while i < c1 do
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
                        while i < c1 && f.[i] = a && tt.[i] <> a do
                            let o = m.[i]
                            let b = tt.[i]
                            let mv = values.[o]
                            let xc = x.[b]
                            acc <- acc + mv * xc
                            d <- d + (tangents.[o] * xc + mv * xt.[b])
                            i <- i + 1
                        x.[a] <- acc
                        xt.[a] <- d
