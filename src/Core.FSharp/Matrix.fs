/// The matrix form (α, S) of a phase-type distribution and its conversion to and from graphs
/// (algorithms.md §1, matrix form).
module Ptd.Core.Matrix

open System
open System.Globalization

let private show (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

/// A phase-type distribution in matrix form. `S` is the sub-intensity matrix of a continuous
/// model, or the sub-transition matrix T (diagonal 1 − λ_i) of a discrete one. `Alpha` sums to
/// 1 − defect. `Vertices.[i]` is the graph vertex of phase i.
type PhaseTypeMatrix =
    { Discrete: bool
      Alpha: float[]
      S: float[][]
      Vertices: int[] }

/// Exit weights and defects within this relative distance of 0 are rounding noise of the input
/// (e.g. a row −0.8, 0.1, 0.7 meant to sum to 0), not a rate: they give no edge. Two machine
/// epsilons, so the diagonal recomputed on the way back is still within 1e-15 of the input.
let private noise = 2.0 * 2.220446049250313e-16

/// Tolerance for rows (and α) that overshoot their bound by rounding in the user's input.
let private sumTolerance = 1e-12

/// Largest dense S that ofGraph builds (2²⁸ entries = 2 GiB).
let private maxEntries = 1L <<< 28

/// α, S (or T) from a graph and its concrete weights (`g.Weights theta`). Transient phases are the
/// non-start vertices with at least one out-edge, in vertex order.
let ofGraph (g: Graph) (weights: float[]) : PhaseTypeMatrix =
    if isNull g then Fail.withMessage "graph must not be null"
    if isNull weights then Fail.withMessage "weights must not be null (use g.Weights theta)"
    if weights.Length <> g.EdgeCount then
        Fail.format "weights has %d entries but the graph has %d edges (use g.Weights theta)" weights.Length g.EdgeCount
    for e in 0 .. weights.Length - 1 do
        if not (Double.IsFinite weights.[e]) || weights.[e] < 0.0 then
            Fail.format "weights[%d] = %g: weights must be finite and ≥ 0 (use g.Weights theta)" e weights.[e]
    let n = g.VertexCount
    let phase = Array.create n -1
    let vertices = ResizeArray<int>()
    for v in 1 .. n - 1 do
        if g.OutDegree v > 0 then
            phase.[v] <- vertices.Count
            vertices.Add v
    let m = vertices.Count
    // The dense form is for small models; refuse before allocating m² numbers that cannot fit.
    if int64 m * int64 m > maxEntries then
        Fail.format "the graph has %d transient states; its dense matrix form would need %d×%d entries (limit %d): use the graph form for models this large"
            m m m maxEntries
    let mutable startTotal = 0.0
    for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
        startTotal <- startTotal + weights.[e]
    if not (startTotal > 0.0) then
        Fail.format "the start edges' weights sum to %g; α needs a positive total to be normalized" startTotal
    let alpha = Array.zeroCreate m
    for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
        let j = phase.[g.Targets.[e]]
        // Start edges into absorbing vertices are the defect: they are not part of α.
        if j >= 0 then alpha.[j] <- alpha.[j] + weights.[e] / startTotal
    let s =
        Array.init m (fun i ->
            let row = Array.zeroCreate m
            let v = vertices.[i]
            // λ is summed in edge (= target) order, the order toGraph relies on to come back exactly.
            let mutable lambda = 0.0
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                lambda <- lambda + weights.[e]
                let j = phase.[g.Targets.[e]]
                if j >= 0 then row.[j] <- row.[j] + weights.[e]
            row.[i] <- if g.IsDiscrete then 1.0 - lambda else -lambda
            row)
    { Discrete = g.IsDiscrete
      Alpha = alpha
      S = s
      Vertices = vertices.ToArray() }

let private checkShape (alpha: float[]) (s: float[][]) =
    if isNull alpha then Fail.withMessage "alpha must not be null"
    if isNull s then Fail.withMessage "S must not be null"
    if s.Length = 0 then
        Fail.withMessage "S has no rows: a phase-type distribution needs at least one phase"
    if alpha.Length <> s.Length then
        Fail.format "alpha has %d entries but S has %d rows; alpha needs one entry per phase (row of S)" alpha.Length s.Length
    for i in 0 .. s.Length - 1 do
        if isNull s.[i] then Fail.format "S[%d] is missing (null)" i
        if s.[i].Length <> s.Length then
            Fail.format "S[%d] has length %d but S has %d rows; S must be square" i s.[i].Length s.Length
        for j in 0 .. s.Length - 1 do
            if not (Double.IsFinite s.[i].[j]) then Fail.format "S[%d][%d] = %g is not a finite number" i j s.[i].[j]
    let mutable total = 0.0
    for i in 0 .. alpha.Length - 1 do
        let a = alpha.[i]
        if not (Double.IsFinite a) then Fail.format "alpha[%d] = %g is not a finite number" i a
        if a < 0.0 then Fail.format "alpha[%d] = %g is negative; alpha is an initial distribution (entries ≥ 0)" i a
        total <- total + a
    if total > 1.0 + sumTolerance then
        Fail.format "alpha sums to %s > 1; alpha is an initial distribution (1 − Σ alpha is the defect, the probability of T = 0)" (show total)
    total

/// The exit weight of row i (rate to absorption, or probability of absorption) and the row's
/// out-weights to other phases. Validates the row.
let private exitOf (discrete: bool) (row: float[]) (i: int) =
    let m = row.Length
    let mutable off = 0.0
    for j in 0 .. m - 1 do
        if j <> i then
            let x = row.[j]
            if x < 0.0 then
                if discrete then
                    Fail.format "S[%d][%d] = %g is negative; a discrete model's S holds transition probabilities in [0, 1]" i j x
                else
                    Fail.format "S[%d][%d] = %g is negative; off-diagonal entries are rates (≥ 0)" i j x
            if discrete && x > 1.0 then
                Fail.format "S[%d][%d] = %g is greater than 1; a discrete model's S holds transition probabilities in [0, 1]" i j x
            // summed in column order = the order ofGraph sums λ in, so the diagonal comes back
            off <- off + x
    let d = row.[i]
    if discrete then
        if d < 0.0 || d > 1.0 then
            Fail.format "S[%d][%d] = %g is outside [0, 1]; a discrete model's diagonal is the probability of staying in phase %d" i i d i
        if d = 1.0 then
            Fail.format "S[%d][%d] = 1: phase %d would never be left; its row must have a total out-probability 1 − S[%d][%d] > 0" i i i i i
        if d + off > 1.0 + sumTolerance then
            Fail.format "row S[%d] sums to %s > 1; a discrete model's rows are sub-stochastic (1 − row sum is the exit probability)" i (show (d + off))
        // λ = 1 − d, exit = λ − (out-probabilities to phases)
        let exit = (1.0 - d) - off
        if exit <= noise then 0.0 else exit
    else
        if not (d < 0.0) then
            Fail.format "S[%d][%d] = %g must be negative: it is minus the total rate out of phase %d (a row of zeros would be an absorbing phase; absorption is the exit vector s = −S·1)" i i d i
        let lambda = -d
        if off > lambda * (1.0 + sumTolerance) then
            Fail.format "row S[%d] sums to %s > 0; the diagonal must be at most minus the sum of the other entries (the exit rate −Σ_j S[%d][j] must be ≥ 0)" i (show (d + off)) i
        let exit = lambda - off
        if exit <= noise * lambda then 0.0 else exit

/// A graph from (α, S): phase i is vertex i + 1 with state [i]; one absorbing vertex (state [n])
/// receives the exit weights s = −S·1 (discrete: 1 − row sums) and the defect 1 − Σα. Zero entries
/// give no edge. `S` is the sub-transition matrix T for a discrete model.
let toGraph (discrete: bool) (alpha: float[]) (s: float[][]) : Graph =
    let alphaTotal = checkShape alpha s
    let n = s.Length
    let exits = Array.init n (fun i -> exitOf discrete s.[i] i)
    let b = GraphBuilder(1, 0, discrete, DuplicateEdgePolicy.Reject)
    for i in 0 .. n - 1 do b.FindOrCreate [| i |] |> ignore
    let absorbing = b.FindOrCreate [| n |] // vertex n + 1
    // Start edges, in target order (the defect edge to the absorbing vertex comes last, as in the
    // built graph), so that their sum is exactly 1 when α sums to 1 up to rounding.
    for i in 0 .. n - 1 do
        if alpha.[i] > 0.0 then b.AddStartEdge(i + 1, alpha.[i])
    let defect = 1.0 - alphaTotal
    if defect > noise then b.AddStartEdge(absorbing, defect)
    for i in 0 .. n - 1 do
        let row = s.[i]
        for j in 0 .. n - 1 do
            if j <> i && row.[j] > 0.0 then b.AddEdge(i + 1, j + 1, row.[j])
        if exits.[i] > 0.0 then b.AddEdge(i + 1, absorbing, exits.[i])
    try
        b.Build()
    with :? PtdException as ex ->
        raise (PtdException(ex.Message + sprintf " (matrix form: state [i] is phase i, row i of S; state [%d] is the absorbing state)" n, ex))
