namespace Ptd.Core

open System
open System.Numerics

/// The batched evaluator (`TraceBatch`, particles in `Vector<double>` lanes) through the replay
/// evaluator's plan (`TracePlan.replayPlan`): the same segments, ring of slots and command-order
/// multiplier region as `TracePlan.valuesInto` and `TracePlan.replayCommands`, with a vector of
/// lanes in each slot. Why: op by op, a large trace's lanes (32 bytes per op; rabbits3 R = 200:
/// 28 MB per chunk of particles) stream through memory on every chunk, and the batch lost most of
/// its advantage over the planned scalar replay there. Each lane performs the IEEE operations of
/// `TracePlan.valuesInto` for its particle, so results stay bit-identical to the scalar evaluator.
module internal TraceBatchPlan =

    /// f lane by lane (Log, Exp), through `scratch` (one float per lane). A module function, not
    /// a closure over `scratch` made per call: the plan calls `plainRange` once per op-by-op
    /// segment (rabbits3 R = 200: ≈ 26,000 per chunk).
    let private perLane (scratch: float[]) (f: float -> float) (x: Vector<double>) =
        for j in 0 .. Vector<double>.Count - 1 do scratch.[j] <- f x.[j]
        Vector<double>(scratch)

    /// A plan's op-by-op ops j0 .. j1 − 1 (slots), each kind as `TraceBatch`'s op-by-op loop
    /// evaluates it. `scratch`: one float per lane (Log and Exp run lane by lane).
    let private plainRange (plan: OpPlan) (p: OpProgram) (theta: Vector<double>[]) (values: Vector<double>[]) (scratch: float[]) (j0: int) (j1: int) =
        let kinds = plan.PlainKind
        let a = plan.PlainA
        let b = plan.PlainB
        let out = plan.PlainOut
        let operands = plan.PlainOperands
        let pc = p.ParamCount
        let stride = pc + 1
        let rows = p.DotRows
        for i in j0 .. j1 - 1 do
            values.[out.[i]] <-
                match kinds.[i] with
                | OpKind.Mul -> values.[a.[i]] * values.[b.[i]]
                | OpKind.Add -> values.[a.[i]] + values.[b.[i]]
                | OpKind.Inv -> Vector<double>.One / values.[a.[i]]
                | OpKind.Sum ->
                    let s0 = a.[i]
                    let mutable s = Vector<double>.Zero
                    for j in s0 .. s0 + b.[i] - 1 do
                        s <- s + values.[operands.[j]]
                    s
                | OpKind.Dot ->
                    let r = a.[i] * stride
                    let mutable s = Vector<double>(rows.[r])
                    for k in 0 .. pc - 1 do
                        s <- s + Vector<double>(rows.[r + 1 + k]) * theta.[k]
                    s
                | OpKind.Const -> Vector<double>(p.Constants.[a.[i]])
                | OpKind.Param -> theta.[a.[i]]
                | OpKind.Sub -> values.[a.[i]] - values.[b.[i]]
                | OpKind.Div -> values.[a.[i]] / values.[b.[i]]
                | OpKind.OneMinus -> Vector<double>.One - values.[a.[i]]
                | OpKind.Neg -> -values.[a.[i]]
                | OpKind.Log -> perLane scratch Math.Log values.[a.[i]]
                | OpKind.Exp -> perLane scratch Math.Exp values.[a.[i]]
                | k -> Fail.format "internal error: unknown op kind %d" (int k)

    /// Every op's lanes at θ (lane j of theta.[k]: θ_k of the chunk's particle j) through the plan
    /// into the slots (values.Length ≥ plan.Slots), op order kept segment by segment.
    let opsPlanned (plan: OpPlan) (p: OpProgram) (theta: Vector<double>[]) (values: Vector<double>[]) (scratch: float[]) =
        if values.Length < plan.Slots then
            Fail.format "internal error: lane buffer of %d for %d slots" values.Length plan.Slots
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
                // 5, 6: MulLeft/MulRight + Scalar; every product in op order here (the lanes are particles)
                let k = kind.[s]
                let left = k = TracePlan.MulLeft || k = TracePlan.MulLeft + TracePlan.Scalar
                let vs = values.[shared.[s]]
                let r = range.[s]
                for j in 0 .. c - 1 do
                    values.[o + j] <- if left then vs * values.[r + j] else values.[r + j] * vs
            | TracePlan.Gather ->
                let vs = values.[shared.[s]]
                let r = range.[s]
                for j in 0 .. c - 1 do
                    values.[o + j] <- vs * values.[index.[r + j]]
            | TracePlan.SumRange ->
                let r = range.[s]
                let mutable acc = Vector<double>.Zero
                for j in r .. r + c - 1 do
                    acc <- acc + values.[j]
                values.[o] <- acc
            | TracePlan.SumInv ->
                let r = range.[s]
                let mutable acc = Vector<double>.Zero
                for j in r .. r + c - 1 do
                    acc <- acc + values.[index.[j]]
                values.[o] <- acc
                values.[shared.[s]] <- Vector<double>.One / acc
            | TracePlan.Pairs ->
                let r = range.[s]
                for j in 0 .. c - 1 do
                    values.[o + j] <- values.[index.[r + 2 * j]] + values.[index.[r + 2 * j + 1]]
            | TracePlan.Dots ->
                let pc = p.ParamCount
                let stride = pc + 1
                let rows = p.DotRows
                let mutable row = range.[s] * stride
                for j in o .. o + c - 1 do
                    let mutable acc = Vector<double>(rows.[row])
                    for k in 0 .. pc - 1 do
                        acc <- acc + Vector<double>(rows.[row + 1 + k]) * theta.[k]
                    values.[j] <- acc
                    row <- row + stride
            | TracePlan.Ops -> plainRange plan p theta values scratch o (o + c)
            | k -> Fail.format "internal error: unknown segment kind %d" (int k)

    /// x ← x replayed by the commands through the plan (all lanes at once): the operations of
    /// `TracePlan.replayCommands`, multipliers read from the plan's slots.
    let replayPlanned (plan: CommandPlan) (t: Trace) (values: Vector<double>[]) (x: Vector<double>[]) =
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
                for c in c0 .. c1 - 1 do
                    acc <- acc + values.[m0 + c] * x.[tt.[c]]
                x.[a] <- acc
            else
                let mutable i = c0
                while i < c1 do
                    let a = f.[i]
                    if tt.[i] = a then
                        x.[a] <- x.[a] * values.[m.[i]]
                        i <- i + 1
                    else
                        let mutable acc = x.[a] + values.[m.[i]] * x.[tt.[i]]
                        i <- i + 1
                        while i < c1 && f.[i] = a && tt.[i] <> a do
                            acc <- acc + values.[m.[i]] * x.[tt.[i]]
                            i <- i + 1
                        x.[a] <- acc
