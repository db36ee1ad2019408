namespace Ptd.Core

open System
open System.Numerics
open System.Threading.Tasks

/// One trace, many parameter vectors (the SVGD case: all particles in lock-step). Particles go in
/// `Vector<double>` lanes, Vector<double>.Count at a time; chunks of lanes run in parallel on the
/// thread pool when there is enough work. Each lane performs exactly the scalar evaluator's IEEE
/// operations in the same order, so batched results are bit-identical to scalar ones.
module TraceBatch =

    let private lanes = Vector<double>.Count

    /// Below this many op evaluations in total, threads cost more than they save.
    let private parallelThreshold = 200_000L

    let private check (t: Trace) (thetas: float[][]) =
        if isNull thetas then Fail.withMessage "the parameter vectors must not be null"
        thetas |> Array.mapi (fun i th ->
            try TraceEval.checkTheta t.ParamCount th
            with :? PtdException as e -> raise (PtdException(sprintf "particle %d: %s" i e.Message, e)))

    /// Op values for one chunk of lanes. Lane j of `theta.[k]` is θ_k of the chunk's particle j.
    let private valuesChunk (p: OpProgram) (theta: Vector<double>[]) (values: Vector<double>[]) (scratch: float[]) =
        let kinds = p.Kinds
        let a = p.A
        let b = p.B
        let consts = p.Constants
        let rows = p.DotRows
        let operands = p.Operands
        let pc = p.ParamCount
        let stride = pc + 1
        let perLane (f: float -> float) (x: Vector<double>) =
            for j in 0 .. lanes - 1 do scratch.[j] <- f x.[j]
            Vector<double>(scratch)
        for i in 0 .. kinds.Length - 1 do
            match kinds.[i] with
            | OpKind.Mul -> values.[i] <- values.[a.[i]] * values.[b.[i]]
            | OpKind.Add -> values.[i] <- values.[a.[i]] + values.[b.[i]]
            | OpKind.Inv -> values.[i] <- Vector<double>.One / values.[a.[i]]
            | OpKind.Sum ->
                let s0 = a.[i]
                let mutable s = Vector<double>.Zero
                for j in s0 .. s0 + b.[i] - 1 do
                    s <- s + values.[operands.[j]]
                values.[i] <- s
            | OpKind.Dot ->
                let r = a.[i] * stride
                let mutable s = Vector<double>(rows.[r])
                for k in 0 .. pc - 1 do
                    s <- s + Vector<double>(rows.[r + 1 + k]) * theta.[k]
                values.[i] <- s
            | OpKind.Const -> values.[i] <- Vector<double>(consts.[a.[i]])
            | OpKind.Param -> values.[i] <- theta.[a.[i]]
            | OpKind.Sub -> values.[i] <- values.[a.[i]] - values.[b.[i]]
            | OpKind.Div -> values.[i] <- values.[a.[i]] / values.[b.[i]]
            | OpKind.OneMinus -> values.[i] <- Vector<double>.One - values.[a.[i]]
            | OpKind.Neg -> values.[i] <- -values.[a.[i]]
            | OpKind.Log -> values.[i] <- perLane Math.Log values.[a.[i]]
            | OpKind.Exp -> values.[i] <- perLane Math.Exp values.[a.[i]]
            | k -> Fail.format "internal error: unknown op kind %d at op %d" (int k) i

    /// Per-worker buffers, reused across chunks and calls.
    type internal Work(t: Trace) =
        /// One vector of lanes per op, or per slot of the pool's plan once it is cut.
        member val Values: Vector<double>[] = Array.zeroCreate t.OpCount with get, set
        member val Theta: Vector<double>[] = Array.zeroCreate t.ParamCount
        member val X: Vector<double>[] = Array.zeroCreate t.VertexCount
        member val Scratch: float[] = Array.zeroCreate lanes

    /// The `Graph.Weights` checks for all lanes at once; a failing lane is re-checked on its own
    /// (scalar) to word the message.
    let private checkLanes (plan: TraceEval.CheckPlan) (t: Trace) (w: Work) (thetas: float[][]) (first: int) (last: int) =
        let g = t.Graph
        let ew = t.EdgeWeight
        let values = w.Values
        let inf = Vector<double>(Double.PositiveInfinity)
        let upper = Vector<double>(1.0 + 1e-12)
        let weightOk (x: Vector<double>) = Vector.GreaterThanOrEqualAll(x, Vector<double>.Zero) && Vector.LessThanAll(x, inf)
        // Every weight class finite and > 0 in every lane: every check passes (TraceEval.CheckPlan).
        let mutable classesOk = plan.Classes.Length > 0
        for o in plan.Classes do
            let x = values.[o]
            if not (Vector.GreaterThanAll(x, Vector<double>.Zero) && Vector.LessThanAll(x, inf)) then classesOk <- false
        let mutable ok = true
        match plan.Rates with
        | _ when classesOk -> ()
        | Some plan ->
            for r in 0 .. plan.WeightStart.Length - 1 do
                for o in plan.WeightStart.[r] .. plan.WeightStart.[r] + plan.WeightCount.[r] - 1 do
                    if not (weightOk values.[o]) then ok <- false
            for i in 0 .. plan.RateOps.Length - 1 do
                let total = values.[plan.RateOps.[i]]
                if not (Vector.GreaterThanAll(total, Vector<double>.Zero)) then ok <- false
                if g.IsDiscrete && plan.RateVertices.[i] <> 0 && not (Vector.LessThanOrEqualAll(total, upper)) then ok <- false
        | None ->
            let offsets = g.Offsets
            let mutable v = 0
            while ok && v < g.VertexCount do
                let mutable total = Vector<double>.Zero
                for e in offsets.[v] .. offsets.[v + 1] - 1 do
                    let x = values.[ew.[e]]
                    if not (weightOk x) then ok <- false
                    total <- total + x
                if offsets.[v + 1] > offsets.[v] && not (Vector.GreaterThanAll(total, Vector<double>.Zero)) then ok <- false
                if g.IsDiscrete && v <> 0 && not (Vector.LessThanOrEqualAll(total, upper)) then ok <- false
                v <- v + 1
        if not ok then
            for j in first .. last do
                let lane = j - first
                try TraceEval.checkWeightsSlow g thetas.[j] (fun e -> values.[ew.[e]].[lane])
                with :? PtdException as e -> raise (PtdException(sprintf "particle %d: %s" j e.Message, e))

    /// Evaluates chunk `c` (particles c·W .. c·W + W − 1; missing lanes repeat the last particle)
    /// into `w.Values`.
    let private runChunk (plan: TraceEval.CheckPlan) (cut: (OpPlan * CommandPlan * int[]) option) (t: Trace) (thetas: float[][]) (w: Work) (c: int) =
        let first = c * lanes
        let last = min (first + lanes) thetas.Length - 1
        for k in 0 .. t.ParamCount - 1 do
            for j in 0 .. lanes - 1 do w.Scratch.[j] <- thetas.[min (first + j) last].[k]
            w.Theta.[k] <- Vector<double>(w.Scratch)
        match cut with
        | Some (ops, _, _) ->
            if w.Values.Length < ops.Slots then w.Values <- Array.zeroCreate ops.Slots
            TraceBatchPlan.opsPlanned ops t.Program w.Theta w.Values w.Scratch
        | None -> valuesChunk t.Program w.Theta w.Values w.Scratch
        checkLanes plan t w thetas first last

    /// x ← x replayed by the commands (all lanes at once), multipliers read from the op values.
    let private replay (t: Trace) (values: Vector<double>[]) (x: Vector<double>[]) =
        // Runs of adds into one x[from] accumulate in a register, as in TraceEval.replayValues.
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
                let mutable acc = x.[a] + values.[m.[i]] * x.[tt.[i]]
                i <- i + 1
                while i < n && f.[i] = a && tt.[i] <> a do
                    acc <- acc + values.[m.[i]] * x.[tt.[i]]
                    i <- i + 1
                x.[a] <- acc

    /// Workspaces for one trace, kept between calls (one per concurrently running worker), and
    /// the evaluation plan they share once it is cut.
    [<Sealed>]
    type internal Pool(t: Trace) =
        let free = System.Collections.Concurrent.ConcurrentBag<Work>()
        let mutable cut: (OpPlan * CommandPlan * int[]) option = None
        let mutable passes = 0L
        member val Plan = TraceEval.checkPlan t
        member _.Take() = match free.TryTake() with | true, w -> w | _ -> Work t
        member _.Return(w: Work) = free.Add w
        /// Whether the plan has been cut.
        member _.IsPlanned = cut.IsSome
        /// The plan for a call evaluating `particles` parameter vectors (None: op by op). The
        /// cut costs about as much as 3–5 passes over the ops (`TracePlan.CutAfter`), so the pool
        /// cuts `TracePlan.replayPlan` once the passes so far and this call's (one per chunk of
        /// lanes) reach `CutAfter` — at once for a call with 32 particles or more — for traces
        /// with at least as many ops as commands (as `TraceEvaluator` does). Called before a call's
        /// chunks are dispatched, under a lock (calls may come from several threads).
        member p.PlanFor(particles: int) =
            lock p (fun () ->
                let chunks = int64 ((particles + lanes - 1) / lanes)
                if cut.IsNone && passes + chunks >= int64 TracePlan.CutAfter && t.OpCount >= t.CommandCount then
                    cut <- Some(TracePlan.replayPlanShared t)
                passes <- passes + chunks
                cut)

    /// Runs `body work chunk` over all chunks, in parallel when the work is large enough.
    let internal forChunks (t: Trace) (pool: Pool) (count: int) (body: Work -> int -> unit) =
        let chunks = (count + lanes - 1) / lanes
        if chunks <= 1 || int64 chunks * int64 (t.OpCount + t.CommandCount) < parallelThreshold then
            let w = pool.Take()
            try
                for c in 0 .. chunks - 1 do body w c
            finally
                pool.Return w
        else
            try
                Parallel.For(
                    0, chunks,
                    (fun () -> pool.Take()),
                    (fun c _ (w: Work) -> body w c; w),
                    (fun (w: Work) -> pool.Return w)) |> ignore
            with :? AggregateException as e ->
                // Report a particle's error as itself, not wrapped by the thread pool.
                match e.Flatten().InnerExceptions |> Seq.tryFind (fun x -> x :? PtdException) with
                | Some x -> raise (PtdException(x.Message, x))
                | None -> reraise ()

    /// Command multipliers for every parameter vector (result.[particle].[command]).
    let internal multipliersWith (pool: Pool) (t: Trace) (thetas: float[][]) : float[][] =
        let thetas = check t thetas
        let result = Array.init thetas.Length (fun _ -> Array.zeroCreate t.CommandCount)
        let cut = pool.PlanFor thetas.Length
        let slot = match cut with Some (_, _, slots) -> slots | None -> t.CmdMult
        forChunks t pool thetas.Length (fun w c ->
            runChunk pool.Plan cut t thetas w c
            for j in c * lanes .. min (c * lanes + lanes) thetas.Length - 1 do
                let r: float[] = result.[j]
                for i in 0 .. r.Length - 1 do r.[i] <- w.Values.[slot.[i]].[j - c * lanes])
        result

    let multipliers (t: Trace) (thetas: float[][]) : float[][] = multipliersWith (Pool t) t thetas

    /// Raw moments E[Y], …, E[Y^k] for every parameter vector (result.[particle].[j − 1] = E[Y^j]),
    /// by the `Moments` formulas replayed in lanes.
    let internal momentsWith (pool: Pool) (t: Trace) (thetas: float[][]) (reward: float[]) (k: int) : float[][] =
        let thetas = check t thetas
        Rewards.check t.Graph reward
        if k < 1 then Fail.format "moment order must be ≥ 1 (got %d)" k
        let n = t.VertexCount
        let result = Array.init thetas.Length (fun _ -> Array.zeroCreate k)
        let r = reward |> Array.map (fun x -> Vector<double>(x))
        let cut = pool.PlanFor thetas.Length
        let replay (values: Vector<double>[]) (x: Vector<double>[]) =
            match cut with
            | Some (_, commands, _) -> TraceBatchPlan.replayPlanned commands t values x
            | None -> replay t values x
        forChunks t pool thetas.Length (fun w c ->
            runChunk pool.Plan cut t thetas w c
            let store j (v: Vector<double>) =
                for p in c * lanes .. min (c * lanes + lanes) thetas.Length - 1 do
                    result.[p].[j - 1] <- v.[p - c * lanes]
            let x = w.X
            if not t.Graph.IsDiscrete then
                Array.blit r 0 x 0 n
                replay w.Values x
                store 1 x.[0]
                for j in 2 .. k do
                    for v in 0 .. n - 1 do x.[v] <- x.[v] * r.[v]
                    replay w.Values x
                    store j (Vector<double>(Moments.factorial j) * x.[0])
            else
                let m: Vector<double>[][] = Array.zeroCreate (k + 1)
                let b: Vector<double>[][] = Array.zeroCreate (k + 1)
                for j in 1 .. k do
                    let bj = Array.init n (fun v -> Vector<double>(Math.Pow(reward.[v], float j)))
                    for i in 1 .. j - 1 do
                        let coef = Moments.binomial j i
                        for v in 0 .. n - 1 do
                            bj.[v] <- bj.[v] + Vector<double>(coef * Math.Pow(reward.[v], float (j - i))) * (m.[i].[v] - b.[i].[v])
                    b.[j] <- bj
                    let mj = Array.copy bj
                    replay w.Values mj
                    m.[j] <- mj
                    store j mj.[0])
        result

    let moments (t: Trace) (thetas: float[][]) (reward: float[]) (k: int) : float[][] = momentsWith (Pool t) t thetas reward k

    /// E[Y] for every parameter vector.
    let expectations (t: Trace) (thetas: float[][]) (reward: float[]) : float[] =
        moments t thetas reward 1 |> Array.map (fun m -> m.[0])

/// Batched evaluation of one trace that keeps its workspaces between calls (the SVGD loop calls
/// it once per iteration with all particles). Thread-safe.
[<Sealed>]
type TraceBatchEvaluator(trace: Trace) =
    let pool = TraceBatch.Pool trace
    member _.Trace = trace
    /// Whether the evaluation plan has been cut (after the first calls; see `TraceBatch.Pool`).
    member internal _.IsPlanned = pool.IsPlanned
    /// Command multipliers per particle.
    member _.Multipliers(thetas: float[][]) = TraceBatch.multipliersWith pool trace thetas
    /// Raw moments 1..k per particle.
    member _.Moments(thetas: float[][], reward: float[], k: int) = TraceBatch.momentsWith pool trace thetas reward k
    /// E[Y] per particle.
    member _.Expectations(thetas: float[][], reward: float[]) =
        TraceBatch.momentsWith pool trace thetas reward 1 |> Array.map (fun m -> m.[0])
