namespace Ptd.Core

open System
open System.Numerics

/// Per observation of a continuous model: f = Σ_k Pois(k; μ) v_k (μ = Λt) and its tangents
/// Σ_k Pois(k; μ) dv_{j,k}, over a window of k around the Poisson mode, from a sweep table
/// (row k = v_k and its tangents). This is most of the cost of a log-likelihood with many
/// observations, and the scalar form of it is bound by the latency of the weight recurrence
/// p ← p·μ/k. So observations are taken in sorted order, in groups of Vector<double>.Count
/// adjacent ones (one per lane): all lanes walk the SAME k, each with its own weight recurrence,
/// and v_k (one table row) is broadcast. Each lane includes at least every term of its own
/// window (the union of the lanes' windows is walked), so each result is at least as exact as
/// the lone-observation window; only rounding depends on the grouping.
module internal UniformizationWindows =

    /// Poisson terms below eps × the mode's term end a window (the dropped mass is < ~1e-15).
    [<Literal>]
    let Eps = 1e-17

    /// Fewer observations than this within a block's span go to lane groups instead: a block
    /// walks one window with Shifts multiply-adds per step, a lane group a window per Count.
    [<Literal>]
    let MinBlock = 8

    /// Indices 0 .. n − 1 (n = values.Length) ordered by value, ties by index, into order.[0 .. n − 1];
    /// keys n gives scratch of ≥ n entries, asked for only when the values are not already
    /// sorted (the check is O(n); sorted data skip the sort).
    let private sortOrderInto (values: float[]) (order: int[]) (keys: int -> float[]) =
        let n = values.Length
        for i in 0 .. n - 1 do order.[i] <- i
        let mutable sorted = true
        for i in 1 .. n - 1 do
            if values.[i] < values.[i - 1] then sorted <- false
        if not sorted then
            let keys = keys n
            Array.blit values 0 keys 0 n
            Array.Sort(keys, order, 0, n)
            // Array.Sort is not stable: put each run of equal values back in index order.
            let mutable i = 0
            while i < n do
                let mutable j = i + 1
                while j < n && keys.[j] = keys.[i] do j <- j + 1
                if j - i > 1 then Array.Sort(order, i, j - i)
                i <- j

    /// Indices 0 .. n − 1 ordered by value, ties by index. Already sorted data (the check is
    /// O(n)) skip the sort.
    let sortedOrder (values: float[]) : int[] =
        let order = Array.zeroCreate values.Length
        sortOrderInto values order Array.zeroCreate
        order

    /// The sums of one call, by SORTED position q (observation Order.[q]): column c's sum at
    /// Columns.[c].[q], true value = sum · e^{Shift.[q]} (blocks leave e^{−δ} out: the caller
    /// takes logs, so it never needs that exponential), and LeftOut.[q], a bound on the Poisson
    /// mass the sum left out, in the SUM's units (times the largest exit rate it bounds the
    /// sum's error, every v_k being at most that rate). Each array has Vector<float>.Count − 1
    /// entries of room past the last position.
    type WindowSums =
        { Order: int[]
          Columns: float[][]
          Shift: float[]
          LeftOut: float[] }

    /// Everything one call shares: the table, its shape, 1/k, the Poisson weight table, and the
    /// outputs.
    type private Context =
        { Table: float[]
          Width: int
          Steps: int
          InvK: float[]
          /// 1/(k(k + 1)), for two steps of the upward recurrence at once.
          InvKK: float[]
          Weights: Poisson.WeightTable
          Mu: float[]
          Out: WindowSums }

    /// The reference window for one observation (μ > 0): from the mode outward, each weight by
    /// recurrence, until the terms drop below Eps × the mode's (and, upward, past μ).
    let private scalarWindow (c: Context) (q: int) =
        let table = c.Table
        let width = c.Width
        let steps = c.Steps
        let invK = c.InvK
        let mu = c.Mu.[c.Out.Order.[q]]
        let d = width - 1
        let m = min (int (Math.Floor mu)) (steps - 1)
        let pm = c.Weights.Weight(m, mu)
        let cut = Eps * pm
        let cols = c.Out.Columns
        let mutable s = pm * table.[m]
        for j in 0 .. d - 1 do cols.[1 + j].[q] <- pm * table.[(1 + j) * steps + m]
        let mutable p = pm
        let mutable k = m + 1
        while k < steps && (p >= cut || float k <= mu) do
            p <- p * mu * invK.[k]
            s <- s + p * table.[k]
            for j in 0 .. d - 1 do cols.[1 + j].[q] <- cols.[1 + j].[q] + p * table.[(1 + j) * steps + k]
            k <- k + 1
        // Left out above: Σ_{j ≥ k} Pois(j) ≤ Pois(k)/(1 − μ/(k + 1)); below: Σ_{j ≤ k'} Pois(j)
        // ≤ Pois(k')/(1 − k'/μ).
        let pUp = p * mu * invK.[k]
        let above = if float k + 1.0 > mu then pUp / (1.0 - mu / (float k + 1.0)) else Double.PositiveInfinity
        p <- pm
        let invMu = 1.0 / mu
        k <- m - 1
        while k >= 0 && p >= cut do
            p <- p * float (k + 1) * invMu
            s <- s + p * table.[k]
            for j in 0 .. d - 1 do cols.[1 + j].[q] <- cols.[1 + j].[q] + p * table.[(1 + j) * steps + k]
            k <- k - 1
        let below = if k >= 0 then p * float (k + 1) * invMu / (1.0 - float k * invMu) else 0.0
        cols.[0].[q] <- s
        c.Out.Shift.[q] <- 0.0
        c.Out.LeftOut.[q] <- above + below

    /// Per-call scratch for the vector path.
    type private Lanes =
        { Mu: float[]
          InvMu: float[]
          Cut: float[]
          Start: float[]
          /// The lanes' weights at every k of the walk (index k), for tables of width > 2.
          P: Vector<float>[] }

    /// The walk's extent: rows kLo .. kHi − 1 were summed; PUp is each lane's weight at kHi − 1
    /// and PDown at kLo (what the left-out bounds start from).
    [<Struct>]
    type private Walk =
        { KLo: int
          KHi: int
          PUp: Vector<float>
          PDown: Vector<float> }

    /// The group's setup, shared by both walks: every lane's weight at the group's smallest
    /// mode k0 from its exact mode weight by the downward recurrence (as the scalar window would
    /// reach it), and its cut. Returns k0, or −1 when a lane's weight at k0 is too small to be
    /// carried accurately (grouping keeps lanes close, so this is only a safeguard).
    let private setup (c: Context) (lanes: Lanes) (order: int[]) (first: int) (count: int) : int =
        let steps = c.Steps
        let mutable k0 = Int32.MaxValue
        for l in 0 .. Vector<float>.Count - 1 do
            let mu = c.Mu.[order.[first + min l (count - 1)]]
            k0 <- min k0 (min (int (Math.Floor mu)) (steps - 1))
        let mutable ok = true
        for l in 0 .. Vector<float>.Count - 1 do
            let mu = c.Mu.[order.[first + min l (count - 1)]]
            let m = min (int (Math.Floor mu)) (steps - 1)
            let pm = c.Weights.Weight(m, mu)
            let invMu = 1.0 / mu
            let mutable p = pm
            for k in m - 1 .. -1 .. k0 do p <- p * (float (k + 1) * invMu)
            lanes.Mu.[l] <- mu
            lanes.InvMu.[l] <- invMu
            // Half the scalar cut: a lane's weights differ from the scalar window's by rounding,
            // and a lower cut guarantees the lane keeps every term that window keeps.
            lanes.Cut.[l] <- 0.5 * Eps * pm
            lanes.Start.[l] <- p
            if not (p >= 1e-290) then ok <- false
        if ok then k0 else -1

    /// The walk: the weights and the sums of columns 0 and 1 (the value and the first tangent)
    /// in one pass, in registers; further columns (width > 2) from the weights stored in
    /// lanes.P, one register-accumulated pass each. The value column is summed by the same code
    /// whatever the width, so a log-likelihood is the same with or without its gradient.
    /// Two steps per iteration: the weight two steps on is p·(μ²/(k(k+1))), not
    /// (p·μ/k)·μ/(k+1), so the recurrence's dependency chain is one multiply per two steps, and
    /// each sum has two accumulators. The walk continues while ANY lane's own window would
    /// (its weight above its cut, or, upward, k ≤ its μ), tested once per two steps.
    let private walk (c: Context) (lanes: Lanes) (k0: int) (muMax: float) (sum: Vector<float>[]) : Walk =
        let table = c.Table
        let width = c.Width
        let steps = c.Steps
        let invK = c.InvK
        let invKK = c.InvKK
        let tangent = width >= 2
        let store = width > 2
        let pv = lanes.P
        let muV = Vector<float>(lanes.Mu)
        let mu2V = muV * muV
        let invMuV = Vector<float>(lanes.InvMu)
        let invMu2V = invMuV * invMuV
        let cutV = Vector<float>(lanes.Cut)
        let start = Vector<float>(lanes.Start)
        let inline fma (a: Vector<float>) (b: float) (acc: Vector<float>) = Vector.FusedMultiplyAdd(a, Vector<float>(b), acc)
        let mutable s0 = start * Vector<float>(table.[k0])
        let mutable a0 = if tangent then start * Vector<float>(table.[steps + k0]) else Vector<float>.Zero
        let mutable s1 = Vector<float>.Zero
        let mutable a1 = Vector<float>.Zero
        if store then pv.[k0] <- start
        // Up from k0 + 1.
        let mutable p = start
        let mutable k = k0 + 1
        while k + 1 < steps && (float k <= muMax || Vector.GreaterThanOrEqualAny(p, cutV)) do
            let p1 = p * (muV * Vector<float>(invK.[k]))
            p <- p * (mu2V * Vector<float>(invKK.[k]))
            s0 <- fma p1 table.[k] s0
            s1 <- fma p table.[k + 1] s1
            if tangent then
                a0 <- fma p1 table.[steps + k] a0
                a1 <- fma p table.[steps + k + 1] a1
            if store then
                pv.[k] <- p1
                pv.[k + 1] <- p
            k <- k + 2
        while k < steps && (float k <= muMax || Vector.GreaterThanOrEqualAny(p, cutV)) do
            p <- p * (muV * Vector<float>(invK.[k]))
            s0 <- fma p table.[k] s0
            if tangent then a0 <- fma p table.[steps + k] a0
            if store then pv.[k] <- p
            k <- k + 1
        let kHi = k
        let pUp = p
        // Down from k0 − 1.
        p <- start
        k <- k0 - 1
        while k >= 1 && Vector.GreaterThanOrEqualAny(p, cutV) do
            let p1 = p * (Vector<float>(float (k + 1)) * invMuV)
            p <- p * (Vector<float>(float (k + 1) * float k) * invMu2V)
            s0 <- fma p1 table.[k] s0
            s1 <- fma p table.[k - 1] s1
            if tangent then
                a0 <- fma p1 table.[steps + k] a0
                a1 <- fma p table.[steps + k - 1] a1
            if store then
                pv.[k] <- p1
                pv.[k - 1] <- p
            k <- k - 2
        while k >= 0 && Vector.GreaterThanOrEqualAny(p, cutV) do
            p <- p * (Vector<float>(float (k + 1)) * invMuV)
            s0 <- fma p table.[k] s0
            if tangent then a0 <- fma p table.[steps + k] a0
            if store then pv.[k] <- p
            k <- k - 1
        let kLo = k + 1
        sum.[0] <- s0 + s1
        if tangent then sum.[1] <- a0 + a1
        for j in 2 .. width - 1 do
            let mutable b0 = Vector<float>.Zero
            let mutable b1 = Vector<float>.Zero
            let mutable k = kLo
            while k + 1 < kHi do
                b0 <- Vector.FusedMultiplyAdd(pv.[k], Vector<float>(table.[j * steps + k]), b0)
                b1 <- Vector.FusedMultiplyAdd(pv.[k + 1], Vector<float>(table.[j * steps + k + 1]), b1)
                k <- k + 2
            if k < kHi then b0 <- Vector.FusedMultiplyAdd(pv.[k], Vector<float>(table.[j * steps + k]), b0)
            sum.[j] <- b0 + b1
        { KLo = kLo; KHi = kHi; PUp = pUp; PDown = p }

    /// The observations order.[first .. first + count − 1] (count ≤ lane count; unused lanes
    /// repeat the last observation) as one vector group. False when `setup` refuses the group.
    let private group (c: Context) (lanes: Lanes) (sum: Vector<float>[]) (order: int[]) (first: int) (count: int) : bool =
        let k0 = setup c lanes order first count
        if k0 < 0 then false
        else
            let width = c.Width
            let invK = c.InvK
            let mutable muMax = 0.0
            for x in lanes.Mu do muMax <- max muMax x
            let walk = walk c lanes k0 muMax sum
            let kHi = walk.KHi
            let kLo = walk.KLo
            for j in 0 .. width - 1 do sum.[j].CopyTo(c.Out.Columns.[j], first)
            for l in 0 .. count - 1 do
                let q = first + l
                // What the lane left out, bounded as in the scalar window.
                let mu = lanes.Mu.[l]
                let above =
                    if float kHi + 1.0 > mu then walk.PUp.[l] * mu * invK.[kHi] / (1.0 - mu / (float kHi + 1.0))
                    else Double.PositiveInfinity
                let below =
                    if kLo >= 1 then
                        let kb = kLo - 1
                        walk.PDown.[l] * float (kb + 1) * lanes.InvMu.[l] / (1.0 - float kb * lanes.InvMu.[l])
                    else 0.0
                c.Out.Shift.[q] <- 0.0
                c.Out.LeftOut.[q] <- above + below
            true

    /// The arrays a call of `sumsInto` needs, kept from call to call and grown as needed (every
    /// one is rewritten before it is read, so what a previous call left does not matter): a
    /// caller that takes many calls (the log-likelihood, once per θ) then allocates nothing per
    /// observation, and the arrays stay in cache. Not for two calls at once.
    [<AllowNullLiteral>]
    type Workspace() =
        member val Order: int[] = [||] with get, set
        /// Not used by sumsInto: room for its caller's μ (one array per thread with the rest).
        member val Mu: float[] = [||] with get, set
        member val Keys: float[] = [||] with get, set
        member val Columns: float[][] = [||] with get, set
        member val Shift: float[] = [||] with get, set
        member val LeftOut: float[] = [||] with get, set
        member val Sorted: float[] = [||] with get, set
        /// 1/k and 1/(k(k + 1)) for k < InvK.Length (they do not depend on the call).
        member val InvK: float[] = [||] with get, set
        member val InvKK: float[] = [||] with get, set
        member val Weights: Poisson.WeightTable voption = ValueNone with get, set
        member val WeightsKMax = -1 with get, set
        member val Blocks: UniformizationBlocks.Scratch = { Weights = [||]; F = [||]; Reach = [||] } with get, set
        member val LaneP: Vector<float>[] = [||] with get, set

    /// a if it has at least `size` entries, else a new array of exactly that size (uninitialized).
    let private atLeast (a: 'T[]) (size: int) : 'T[] =
        if a.Length >= size then a else GC.AllocateUninitializedArray<'T> size

    /// `sums` with its arrays from (and kept in) ws: the result's arrays are ws's, valid until
    /// the next call with ws, and may be longer than nObs + Vector<float>.Count − 1 (read only
    /// the positions below nObs and the room just past them).
    let sumsInto (ws: Workspace) (table: float[]) (width: int) (steps: int) (mu: float[]) : WindowSums =
        let nObs = mu.Length
        let n = Vector<float>.Count
        let muMax = Array.fold max 0.0 mu
        let kMax = min (steps - 1) (int (Math.Floor muMax))
        // Every entry up to nObs is written below: only the room past it is zeroed (readers
        // may load whole vectors there).
        let room (a: float[]) =
            let a = atLeast a (nObs + n)
            Array.fill a nObs n 0.0
            a
        ws.Order <- atLeast ws.Order nObs
        sortOrderInto mu ws.Order (fun size -> ws.Keys <- atLeast ws.Keys size; ws.Keys)
        if ws.Columns.Length <> width then ws.Columns <- Array.create width [||]
        for j in 0 .. width - 1 do ws.Columns.[j] <- room ws.Columns.[j]
        ws.Shift <- room ws.Shift
        ws.LeftOut <- room ws.LeftOut
        if ws.InvK.Length < steps + 1 then
            ws.InvK <- Array.init (steps + 1) (fun k -> if k = 0 then 0.0 else 1.0 / float k)
            ws.InvKK <- Array.init (steps + 1) (fun k -> if k = 0 then 0.0 else 1.0 / (float k * float (k + 1)))
        // A table for a larger kMax has the same weights for every k ≤ kMax.
        if ws.WeightsKMax < max 0 kMax then
            ws.Weights <- ValueSome(Poisson.WeightTable(max 0 kMax))
            ws.WeightsKMax <- max 0 kMax
        if ws.Blocks.Weights.Length < steps || ws.Blocks.F.Length < width * UniformizationBlocks.Shifts then
            ws.Blocks <- UniformizationBlocks.scratch steps width
        if width > 2 && ws.LaneP.Length < steps then ws.LaneP <- Array.zeroCreate steps
        let out =
            { Order = ws.Order
              Columns = ws.Columns
              Shift = ws.Shift
              LeftOut = ws.LeftOut }
        let order = out.Order
        let c =
            { Table = table
              Width = width
              Steps = steps
              InvK = ws.InvK
              InvKK = ws.InvKK
              Weights = ws.Weights.Value
              Mu = mu
              Out = out }
        let lanes =
            { Mu = Array.zeroCreate n
              InvMu = Array.zeroCreate n
              Cut = Array.zeroCreate n
              Start = Array.zeroCreate n
              P = ws.LaneP }
        let sum = Array.zeroCreate width
        let mutable pos = 0
        while pos < nObs && mu.[order.[pos]] = 0.0 do
            for j in 0 .. width - 1 do out.Columns.[j].[pos] <- table.[j * steps]
            out.Shift.[pos] <- 0.0
            out.LeftOut.[pos] <- 0.0
            pos <- pos + 1
        let mode i = min (int (Math.Floor mu.[i])) (steps - 1)
        let blocks = ws.Blocks
        // μ by sorted position, padded with the last one (blocks read whole vectors).
        ws.Sorted <- atLeast ws.Sorted (nObs + n)
        let sorted = ws.Sorted
        for q in 0 .. nObs - 1 do sorted.[q] <- mu.[order.[q]]
        for q in nObs .. nObs + n - 1 do sorted.[q] <- (if nObs = 0 then 0.0 else sorted.[nObs - 1])
        let blockOut = Array.append out.Columns [| out.Shift; out.LeftOut |]
        while pos < nObs do
            let muRef = sorted.[pos]
            // A block where at least MinBlock observations lie within its span (≤ MaxSpan) of this one.
            let mutable near = 1
            while near < MinBlock && pos + near < nObs && sorted.[pos + near] - muRef <= UniformizationBlocks.MaxSpan do near <- near + 1
            let mutable taken = 0
            if near >= MinBlock then
                let pm = c.Weights.Weight(mode order.[pos], muRef)
                let cut = 0.5 * Eps * pm
                let h = UniformizationBlocks.span (0.5 * cut)
                let mutable count = 1
                while pos + count < nObs && sorted.[pos + count] - muRef <= h do count <- count + 1
                if count >= MinBlock
                   && UniformizationBlocks.block table width steps c.InvK pm cut sorted pos count h blocks blockOut then
                    taken <- count
            if taken = 0 then
                // Lanes within ~2 standard deviations of the first one's mode: their windows nearly
                // coincide, so the union walked costs little more than one window.
                let m0 = mode order.[pos]
                let spread = 2.0 * Math.Sqrt(float m0) + 4.0
                let mutable count = 1
                while count < n && pos + count < nObs && float (mode order.[pos + count] - m0) <= spread do
                    count <- count + 1
                if not (group c lanes sum order pos count) then
                    for l in 0 .. count - 1 do scalarWindow c (pos + l)
                taken <- count
            pos <- pos + taken
        out

    /// For every observation i (μ.[i] = Λ t_i ≥ 0), by sorted position (see WindowSums): the
    /// sums Σ_k Pois(k; μ_i) column_c[k] over its window and the bound on the Poisson mass the
    /// window left out. μ = 0 gives row 0 and bound 0. The table (column-major, `steps` rows)
    /// must have a row for every k a window reaches (the caller sizes the sweep for the largest
    /// μ, plus UniformizationBlocks.Shifts rows). The result's arrays are new (Order has nObs
    /// entries, the others nObs + Vector<float>.Count − 1).
    let sums (table: float[]) (width: int) (steps: int) (mu: float[]) : WindowSums =
        sumsInto (Workspace()) table width steps mu
