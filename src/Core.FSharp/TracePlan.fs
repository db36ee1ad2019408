namespace Ptd.Core

open System
open System.Numerics

/// How the repeated-evaluation paths run a trace's ops: the op list cut into segments. A cyclic
/// elimination records, per eliminated vertex and parent, a run of products that share one factor
/// (p·q_j for the parent's edge weight p and the eliminated vertex's row q; and q_j·σ when a
/// deferred self-loop renormalization is applied) whose other factors and results are consecutive ops. Such a run is
/// evaluated as one "scaled range" — `out[o + j] = x[s] · x[r + j]` (or `x[r + j] · x[s]`, the
/// recorded operand order is kept) — with `Vector<double>` and a few numbers instead of a kind
/// and two operands per op; a Sum over consecutive ops reads no operand list. Everything else runs
/// op by op.
///
/// Values live in slots. With a window w > 0, an op that no output needs (not a command
/// multiplier, edge weight or vertex rate) and whose last reader comes fewer than w ops later is
/// transient: it gets a slot in a ring of w slots after the OpCount op slots (slot OpCount + i mod w),
/// which stays in the L1 cache, instead of its own slot in a buffer of tens of megabytes; about half
/// of a cyclic model's ops are (the products of fill-in, read once by the renormalization right
/// after). Every other op's slot is its index. w = 0: every op in its own slot (what reverse mode
/// needs). The plan is derived from the program (never stored or encoded), and every segment
/// performs exactly the IEEE operations of the op-by-op evaluator in op order, so the values are
/// bit-identical to `TraceEval.referenceValues`.
type internal OpPlan =
    { /// Segment kinds (`TracePlan.Ops`, `MulLeft`, `MulRight`, `SumRange`, `Gather`, `Pairs`,
      /// `Dots`, `SumInv`; + `Scalar` on MulLeft/MulRight when the run's range is too close behind
      /// its outputs for vectors).
      Kind: byte[]
      /// Slot of the segment's first result; for an op-by-op segment the first index into `Plain*`.
      Out: int[]
      /// Ops in the segment (SumRange, SumInv: the number of summed ops).
      Count: int[]
      /// Slot of the shared factor (MulLeft/MulRight/Gather), of the inverse (SumInv); unused otherwise.
      Shared: int[]
      /// Slot of the first of the other factors (MulLeft/MulRight), of the summed ops (SumRange);
      /// the first index into `Index` (Gather, Pairs, SumInv); the first Dot row (Dots).
      Range: int[]
      /// Operand slots of Gather (one per op: the factor that is not shared), Pairs (two per op)
      /// and SumInv (the summed ops).
      Index: int[]
      /// The op-by-op ops in op order: kind, operands as slots (Sum: A = start in PlainOperands;
      /// Const/Param/Dot: the program's payload), result slot.
      PlainKind: OpKind[]
      PlainA: int[]
      PlainB: int[]
      PlainOut: int[]
      PlainOperands: int[]
      /// Length of the value buffer: OpCount + window.
      Slots: int }

    member p.SegmentCount = p.Kind.Length

/// The command list cut into segments: runs of adds into one x[from] whose multipliers are in
/// consecutive slots (phase C emits each row's probabilities, which the last renormalization
/// produced in a row): `x[from] += Σ_j value(m + j) · x[to_j]`, accumulated left to right in a
/// register; and ranges of other commands replayed one by one. The same operations in the same
/// order as the command-by-command replay.
type internal CommandPlan =
    { /// x[From] is updated (add runs); unused for a plain range.
      From: int[]
      /// First command (its CmdTo entry starts the targets).
      Start: int[]
      /// Commands in the segment.
      Count: int[]
      /// Slot of the first multiplier (add runs); −1: a plain range of commands.
      Mult: int[]
      /// The slot of every command's multiplier (the plain ranges read it).
      Slot: int[] }

    member p.SegmentCount = p.From.Length

module internal TracePlan =

    [<Literal>]
    let Ops = 0uy

    [<Literal>]
    let MulLeft = 1uy

    [<Literal>]
    let MulRight = 2uy

    [<Literal>]
    let SumRange = 3uy

    /// Added to MulLeft/MulRight: the run reads results of its own first lanes, so it must run op by op.
    [<Literal>]
    let Scalar = 4uy

    /// Products that share one factor, with consecutive result slots but scattered other factors
    /// (a row scaled by its self-loop renormalization: old entries, new products and sums):
    /// `out[o + j] = x[s] · x[Index[r + j]]`, in op order, without a kind and two operands per op.
    /// (IEEE multiplication and addition are commutative bit for bit, so the recorded operand
    /// order need not be kept.)
    [<Literal>]
    let Gather = 7uy

    /// Sums with consecutive result slots: `out[o + j] = x[Index[r + 2j]] + x[Index[r + 2j + 1]]`
    /// (the merge's additions where a parent's row and the eliminated row share a target).
    [<Literal>]
    let Pairs = 8uy

    /// Consecutive Dot ops over consecutive rows (phase A's edge weights): no kind per op.
    [<Literal>]
    let Dots = 9uy

    /// A Sum and the Inv of it, the next op (1/Σ: every phase A normalization and every self-loop
    /// renormalization): `out[o] = Σ_j x[Index[r + j]]` left to right from 0, `x[s] = 1 / out[o]`
    /// (the Inv's slot, in Shared: the sum is often a vertex rate and the inverse a command
    /// multiplier, in different regions) — one segment instead of two op-by-op ops.
    [<Literal>]
    let SumInv = 10uy

    /// The ring window of the replay evaluator (a power of two; 32 KB of slots). rabbits3 R = 200
    /// (fill-reducing order), 40 alternating evaluations each: 1024 slots 5.8–8.9 ms best, 4096
    /// slots 4.9–8.1 ms (10–15% faster; 8192 … 65536 no better).
    [<Literal>]
    let Window = 4096

    /// Evaluators run op by op for this many evaluations before they cut a plan: the cut costs
    /// about as much as 3–5 op-by-op evaluations (rabbits3 R = 200: ≈ 100 ms of CPU against 30 ms per
    /// evaluation) and saves about a quarter of each later one, so a trace evaluated only a few
    /// times is never slowed down by more than about its own evaluations' cost (ski rental).
    [<Literal>]
    let CutAfter = 8

    /// Runs shorter than this stay op by op (a segment costs about as much as two plain ops).
    [<Literal>]
    let private MinRun = 3

    /// Add runs shorter than this stay in plain command ranges.
    [<Literal>]
    let private MinCommandRun = 4

    let private lanes = Vector<double>.Count

    /// Ops i0 .. i1 − 1, one by one — THE fast evaluator's per-op semantics (same operations as
    /// the reference interpreter, `OpMath`).
    let valuesRange (p: OpProgram) (theta: float[]) (values: float[]) (i0: int) (i1: int) =
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let consts = p.Constants
        let rows = p.DotRows
        let operands = p.Operands
        let pc = p.ParamCount
        let stride = pc + 1
        for i in i0 .. i1 - 1 do
            match kinds.[i] with
            | OpKind.Mul -> values.[i] <- values.[a.[i]] * values.[b.[i]]
            | OpKind.Add -> values.[i] <- values.[a.[i]] + values.[b.[i]]
            | OpKind.Inv -> values.[i] <- 1.0 / values.[a.[i]]
            | OpKind.Sum ->
                let s0 = a.[i]
                let mutable s = 0.0
                for j in s0 .. s0 + b.[i] - 1 do
                    s <- s + values.[operands.[j]]
                values.[i] <- s
            | OpKind.Dot ->
                let r = a.[i] * stride
                let mutable s = rows.[r]
                for k in 0 .. pc - 1 do
                    s <- s + rows.[r + 1 + k] * theta.[k]
                values.[i] <- s
            | OpKind.Const -> values.[i] <- consts.[a.[i]]
            | OpKind.Param -> values.[i] <- theta.[a.[i]]
            | OpKind.Sub -> values.[i] <- values.[a.[i]] - values.[b.[i]]
            | OpKind.Div -> values.[i] <- values.[a.[i]] / values.[b.[i]]
            | OpKind.OneMinus -> values.[i] <- 1.0 - values.[a.[i]]
            | OpKind.Neg -> values.[i] <- -values.[a.[i]]
            | OpKind.Log -> values.[i] <- Math.Log values.[a.[i]]
            | OpKind.Exp -> values.[i] <- Math.Exp values.[a.[i]]
            | k -> Fail.format "internal error: unknown op kind %d at op %d" (int k) i

    /// The same per-op semantics on a plan's remapped op-by-op ops j0 .. j1 − 1 (slots).
    let private plainRange (plan: OpPlan) (p: OpProgram) (theta: float[]) (values: float[]) (j0: int) (j1: int) =
        let kinds = plan.PlainKind
        let a = plan.PlainA
        let b = plan.PlainB
        let out = plan.PlainOut
        let operands = plan.PlainOperands
        let consts = p.Constants
        let rows = p.DotRows
        let pc = p.ParamCount
        let stride = pc + 1
        for i in j0 .. j1 - 1 do
            values.[out.[i]] <-
                match kinds.[i] with
                | OpKind.Mul -> values.[a.[i]] * values.[b.[i]]
                | OpKind.Add -> values.[a.[i]] + values.[b.[i]]
                | OpKind.Inv -> 1.0 / values.[a.[i]]
                | OpKind.Sum ->
                    let s0 = a.[i]
                    let mutable s = 0.0
                    for j in s0 .. s0 + b.[i] - 1 do
                        s <- s + values.[operands.[j]]
                    s
                | OpKind.Dot ->
                    let r = a.[i] * stride
                    let mutable s = rows.[r]
                    for k in 0 .. pc - 1 do
                        s <- s + rows.[r + 1 + k] * theta.[k]
                    s
                | OpKind.Const -> consts.[a.[i]]
                | OpKind.Param -> theta.[a.[i]]
                | OpKind.Sub -> values.[a.[i]] - values.[b.[i]]
                | OpKind.Div -> values.[a.[i]] / values.[b.[i]]
                | OpKind.OneMinus -> 1.0 - values.[a.[i]]
                | OpKind.Neg -> -values.[a.[i]]
                | OpKind.Log -> Math.Log values.[a.[i]]
                | OpKind.Exp -> Math.Exp values.[a.[i]]
                | k -> Fail.format "internal error: unknown op kind %d" (int k)

    /// The slot of every op of a program for a window (see `OpPlan`); `pinned.[op]`: an output
    /// needs the op's value after the evaluation.
    let slotsOf (p: OpProgram) (pinned: bool[]) (window: int) : int[] =
        let n = p.Kinds.Length
        let slot = Array.init n id
        if window > 0 then
            if window &&& (window - 1) <> 0 then Fail.format "internal error: window %d is not a power of two" window
            let kinds = p.Kinds
            let a = p.A
            let b = p.B
            let lastUse = Array.create n -1
            for i in 0 .. n - 1 do
                match kinds.[i] with
                | OpKind.Sum ->
                    for j in a.[i] .. a.[i] + b.[i] - 1 do
                        lastUse.[p.Operands.[j]] <- i
                | k when OpKind.isBinary k ->
                    lastUse.[a.[i]] <- i
                    lastUse.[b.[i]] <- i
                | k when OpKind.isUnary k -> lastUse.[a.[i]] <- i
                | _ -> ()
            for i in 0 .. n - 1 do
                // lastUse = −1 (never read): transient too
                if not pinned.[i] && lastUse.[i] - i < window then slot.[i] <- n + (i &&& (window - 1))
        slot

    /// The ops a trace's outputs read: command multipliers, edge weights, vertex rates.
    let pinned (t: Trace) : bool[] =
        let pinned = Array.zeroCreate t.OpCount
        for o in t.CmdMult do pinned.[o] <- true
        for o in t.EdgeWeight do pinned.[o] <- true
        for o in t.VertexRate do pinned.[o] <- true
        pinned

    /// The slot of every op of a trace for a window.
    let slots (t: Trace) (window: int) : int[] = slotsOf t.Program (pinned t) window

    /// Cuts a program into segments for given slots (one pass; greedy, longest run first).
    let opsOf (p: OpProgram) (slot: int[]) (window: int) : OpPlan =
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let operands = p.Operands
        let n = kinds.Length
        let kind = ResizeArray<byte>()
        let out = ResizeArray<int>()
        let count = ResizeArray<int>()
        let shared = ResizeArray<int>()
        let range = ResizeArray<int>()
        let plainKind = ResizeArray<OpKind>()
        let plainA = ResizeArray<int>()
        let plainB = ResizeArray<int>()
        let plainOut = ResizeArray<int>()
        let plainOperands = ResizeArray<int>()
        let index = ResizeArray<int>()
        let add (k: byte) o c sh r =
            kind.Add k
            out.Add o
            count.Add c
            shared.Add sh
            range.Add r
        let mutable plain = -1 // first plain index of the pending op-by-op segment
        let flush () =
            if plain >= 0 then
                add Ops plain (plainKind.Count - plain) 0 0
                plain <- -1
        let addPlain i =
            if plain < 0 then plain <- plainKind.Count
            let k = kinds.[i]
            plainKind.Add k
            plainOut.Add slot.[i]
            match k with
            | OpKind.Sum ->
                plainA.Add plainOperands.Count
                plainB.Add b.[i]
                for j in a.[i] .. a.[i] + b.[i] - 1 do plainOperands.Add slot.[operands.[j]]
            | k when OpKind.isBinary k ->
                plainA.Add slot.[a.[i]]
                plainB.Add slot.[b.[i]]
            | k when OpKind.isUnary k ->
                plainA.Add slot.[a.[i]]
                plainB.Add 0
            | _ ->
                plainA.Add a.[i]
                plainB.Add b.[i]
        // ops j − 1 and j continue a run: consecutive in op index and in slot
        let next (x: int[]) j = x.[j] = x.[j - 1] + 1 && slot.[x.[j]] = slot.[x.[j - 1]] + 1
        let mutable i = 0
        while i < n do
            let k = kinds.[i]
            let mutable left = 0
            let mutable right = 0
            // ops i .. i + length − 1 of kind k with consecutive result slots and `same j`
            let runOf (k: OpKind) (same: int -> bool) =
                let mutable j = i + 1
                while j < n && kinds.[j] = k && slot.[j] = slot.[j - 1] + 1 && same j do j <- j + 1
                j - i
            let mutable sharedA = 0
            let mutable sharedB = 0
            if k = OpKind.Mul then
                left <- runOf OpKind.Mul (fun j -> a.[j] = a.[i] && next b j)
                right <- runOf OpKind.Mul (fun j -> b.[j] = b.[i] && next a j)
                sharedA <- runOf OpKind.Mul (fun j -> a.[j] = a.[i])
                sharedB <- runOf OpKind.Mul (fun j -> b.[j] = b.[i])
            let pairs = if k = OpKind.Add then runOf OpKind.Add (fun _ -> true) else 0
            let dots = if k = OpKind.Dot then runOf OpKind.Dot (fun j -> a.[j] = a.[j - 1] + 1) else 0
            let gather = max sharedA sharedB
            let sumRange =
                k = OpKind.Sum && b.[i] >= MinRun
                && (let s0 = a.[i]
                    let mutable j = 1
                    while j < b.[i] && operands.[s0 + j] = operands.[s0 + j - 1] + 1
                          && slot.[operands.[s0 + j]] = slot.[operands.[s0 + j - 1]] + 1 do
                        j <- j + 1
                    j = b.[i])
            // a vector run unless a gather covers more than twice as many ops
            let vectorRun = max left right
            if vectorRun >= MinRun && 2 * vectorRun >= gather && left >= right then
                flush ()
                // vectors read lanes' inputs before earlier lanes are stored: the range must trail by a vector
                add (if b.[i] + lanes <= i then MulLeft else MulLeft + Scalar) slot.[i] left slot.[a.[i]] slot.[b.[i]]
                i <- i + left
            elif vectorRun >= MinRun && 2 * vectorRun >= gather then
                flush ()
                add (if a.[i] + lanes <= i then MulRight else MulRight + Scalar) slot.[i] right slot.[b.[i]] slot.[a.[i]]
                i <- i + right
            elif gather >= MinRun then
                flush ()
                let byA = sharedA >= sharedB
                add Gather slot.[i] gather (if byA then slot.[a.[i]] else slot.[b.[i]]) index.Count
                for j in i .. i + gather - 1 do index.Add(if byA then slot.[b.[j]] else slot.[a.[j]])
                i <- i + gather
            elif k = OpKind.Sum && i + 1 < n && kinds.[i + 1] = OpKind.Inv && a.[i + 1] = i then
                flush ()
                add SumInv slot.[i] b.[i] slot.[i + 1] index.Count
                for j in a.[i] .. a.[i] + b.[i] - 1 do index.Add slot.[operands.[j]]
                i <- i + 2
            elif sumRange then
                flush ()
                add SumRange slot.[i] b.[i] 0 slot.[operands.[a.[i]]]
                i <- i + 1
            elif pairs >= MinRun then
                flush ()
                add Pairs slot.[i] pairs 0 index.Count
                for j in i .. i + pairs - 1 do
                    index.Add slot.[a.[j]]
                    index.Add slot.[b.[j]]
                i <- i + pairs
            elif dots >= MinRun then
                flush ()
                add Dots slot.[i] dots 0 a.[i]
                i <- i + dots
            else
                addPlain i
                i <- i + 1
        flush ()
        { Kind = kind.ToArray()
          Out = out.ToArray()
          Count = count.ToArray()
          Shared = shared.ToArray()
          Range = range.ToArray()
          Index = index.ToArray()
          PlainKind = plainKind.ToArray()
          PlainA = plainA.ToArray()
          PlainB = plainB.ToArray()
          PlainOut = plainOut.ToArray()
          PlainOperands = plainOperands.ToArray()
          Slots = n + window }

    /// Cuts a trace's program into segments for a window (0: every op in its own slot).
    let ops (t: Trace) (window: int) : OpPlan = opsOf t.Program (slots t window) window

    /// values.[o + j] ← values.[s] · values.[r + j] (left) or values.[r + j] · values.[s], j < c,
    /// in vectors when `vector` (the plan checked that each vector's inputs precede its outputs).
    let private scaled (values: float[]) (o: int) (c: int) (s: int) (r: int) (left: bool) (vector: bool) =
        let x = values.[s]
        let mutable j = 0
        if vector then
            let vx = Vector<double>(x)
            if left then
                while j + lanes <= c do
                    (vx * Vector<double>(values, r + j)).CopyTo(values, o + j)
                    j <- j + lanes
            else
                while j + lanes <= c do
                    (Vector<double>(values, r + j) * vx).CopyTo(values, o + j)
                    j <- j + lanes
        if left then
            while j < c do
                values.[o + j] <- x * values.[r + j]
                j <- j + 1
        else
            while j < c do
                values.[o + j] <- values.[r + j] * x
                j <- j + 1

    /// Evaluates every op at θ through the plan into the slots (θ not checked; values.Length ≥
    /// plan.Slots). Pinned ops (every op when the window is 0) end in values.[op].
    let valuesInto (plan: OpPlan) (p: OpProgram) (theta: float[]) (values: float[]) =
        if values.Length < plan.Slots then
            Fail.format "internal error: value buffer of %d for %d slots" values.Length plan.Slots
        let kind = plan.Kind
        let out = plan.Out
        let count = plan.Count
        let shared = plan.Shared
        let range = plan.Range
        let index = plan.Index
        for s in 0 .. kind.Length - 1 do
            let o = out.[s]
            match kind.[s] with
            | MulLeft -> scaled values o count.[s] shared.[s] range.[s] true true
            | MulRight -> scaled values o count.[s] shared.[s] range.[s] false true
            | Gather ->
                let x = values.[shared.[s]]
                let r = range.[s] - o
                for j in o .. o + count.[s] - 1 do
                    values.[j] <- x * values.[index.[r + j]]
            | SumRange ->
                let r = range.[s]
                let mutable acc = 0.0
                for j in r .. r + count.[s] - 1 do
                    acc <- acc + values.[j]
                values.[o] <- acc
            | SumInv ->
                let r = range.[s]
                let mutable acc = 0.0
                for j in r .. r + count.[s] - 1 do
                    acc <- acc + values.[index.[j]]
                values.[o] <- acc
                values.[shared.[s]] <- 1.0 / acc
            | Pairs ->
                let r = range.[s] - 2 * o
                for j in o .. o + count.[s] - 1 do
                    values.[j] <- values.[index.[r + 2 * j]] + values.[index.[r + 2 * j + 1]]
            | Dots ->
                let pc = p.ParamCount
                let stride = pc + 1
                let rows = p.DotRows
                let mutable row = range.[s] * stride
                for j in o .. o + count.[s] - 1 do
                    let mutable acc = rows.[row]
                    for k in 0 .. pc - 1 do
                        acc <- acc + rows.[row + 1 + k] * theta.[k]
                    values.[j] <- acc
                    row <- row + stride
            | Ops -> plainRange plan p theta values o (o + count.[s])
            | k -> scaled values o count.[s] shared.[s] range.[s] (k = MulLeft + Scalar) false

    /// Cuts a trace's command list into add runs and plain ranges, for multipliers in the given
    /// slots (one per command).
    let commandsOf (t: Trace) (m: int[]) : CommandPlan =
        let f = t.CmdFrom
        let tt = t.CmdTo
        let n = f.Length
        let from = ResizeArray<int>()
        let start = ResizeArray<int>()
        let count = ResizeArray<int>()
        let mult = ResizeArray<int>()
        let mutable plain = -1
        let flush upto =
            if plain >= 0 then
                from.Add 0
                start.Add plain
                count.Add(upto - plain)
                mult.Add -1
                plain <- -1
        let mutable c = 0
        while c < n do
            let v = f.[c]
            let mutable j = c
            if tt.[c] <> v then
                j <- c + 1
                while j < n && f.[j] = v && tt.[j] <> v && m.[j] = m.[j - 1] + 1 do j <- j + 1
            if j - c >= MinCommandRun then
                flush c
                from.Add v
                start.Add c
                count.Add(j - c)
                mult.Add m.[c]
                c <- j
            else
                if plain < 0 then plain <- c
                c <- c + 1
        flush n
        { From = from.ToArray(); Start = start.ToArray(); Count = count.ToArray(); Mult = mult.ToArray(); Slot = m }

    /// Cuts a trace's command list with every multiplier in its op's own slot.
    let commands (t: Trace) : CommandPlan = commandsOf t t.CmdMult

    /// The replay evaluator's plan: ops and commands, with the command multipliers in a region of
    /// their own, in COMMAND order (slot OpCount + window + c for command c). Why: the replay reads
    /// the multipliers row after row in command order, but the ops produce each final row when
    /// elimination finishes that vertex — in the fill-reducing order, all over the op index range
    /// — so in op-index slots the command replay jumps through megabytes, a cache miss per row.
    /// In command order it reads one sequential stream. An op that is the multiplier of more than
    /// one command, or an edge weight or vertex rate (read by index by the weight checks), keeps
    /// its op slot. Returns the plan and each command's multiplier slot.
    let replayPlan (t: Trace) (window: int) : OpPlan * CommandPlan * int[] =
        let n = t.OpCount
        let pinnedOps = pinned t
        let slot = slotsOf t.Program pinnedOps window
        let uses = Array.zeroCreate n
        for o in t.CmdMult do uses.[o] <- uses.[o] + 1
        let byIndex = Array.zeroCreate n
        for o in t.EdgeWeight do byIndex.[o] <- true
        for o in t.VertexRate do byIndex.[o] <- true
        let region = n + window
        let multSlot = Array.copy t.CmdMult
        for c in 0 .. multSlot.Length - 1 do
            let o = t.CmdMult.[c]
            if uses.[o] = 1 && not byIndex.[o] then
                slot.[o] <- region + c
                multSlot.[c] <- region + c
        let ops = { opsOf t.Program slot window with Slots = region + multSlot.Length }
        ops, commandsOf t multSlot, multSlot

    // One replay plan per trace object, whichever evaluators run it: a trace's TraceEvaluator,
    // its TraceGradients (one per thread in the host's kernel pool) and its batch evaluator would
    // otherwise each cut the same plan (rabbits3 R = 200: ≈ 100 ms and ≈ 15 MB each). Plans are
    // never modified after the cut, so sharing them across threads is safe; the table holds
    // them only as long as the trace lives.
    let private shared = System.Runtime.CompilerServices.ConditionalWeakTable<Trace, Lazy<OpPlan * CommandPlan * int[]>>()

    /// `replayPlan t Window`, cut once per trace object and shared.
    let replayPlanShared (t: Trace) : OpPlan * CommandPlan * int[] =
        shared.GetValue(t, fun t -> lazy (replayPlan t Window)).Value

    /// Replays the commands on x through the plan (the same operations in the same order as
    /// `TraceEval.replayValues`: bit-identical), multipliers read from the plan's slots.
    let replayCommands (plan: CommandPlan) (t: Trace) (values: float[]) (x: float[]) =
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
                // as TraceEval.replayValues: a run of adds into one x[from] accumulates in a register
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
