namespace Ptd.Core

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// Input checks shared by the distribution functions and sampling. They take concrete edge
/// weights (not θ) because a trace evaluator produces weights without re-instantiating the graph.
module internal DistributionInput =

    /// Validates the weights and returns λ per vertex (λ_0 = the start weights' total).
    let rates (g: Graph) (weights: float[]) : float[] =
        if isNull weights then Fail.withMessage "weights must not be null: pass g.Weights θ (one weight per edge, CSR order)"
        if weights.Length <> g.EdgeCount then
            Fail.format
                "weights has %d entries but the graph has %d edges; pass g.Weights θ (one weight per edge, in CSR order)"
                weights.Length g.EdgeCount
        let n = g.VertexCount
        let offsets = g.Offsets
        let lambda = Array.zeroCreate n
        for v in 0 .. n - 1 do
            let mutable total = 0.0
            for e in offsets.[v] .. offsets.[v + 1] - 1 do
                let x = weights.[e]
                if not (Double.IsFinite x) || x < 0.0 then
                    Fail.format "weights[%d] (edge %d -> %d) = %g: weights must be finite and ≥ 0" e v g.Targets.[e] x
                total <- total + x
            if total = 0.0 && offsets.[v + 1] > offsets.[v] then
                if v = 0 then Fail.withMessage "the start weights sum to 0: at least one start edge needs a positive weight"
                else
                    Fail.format
                        "vertex %d has out-edges but their weights sum to 0, so it could never be left; give at least one out-edge a positive weight"
                        v
            if g.IsDiscrete && v <> 0 && total > 1.0 + 1e-12 then
                Fail.format
                    "vertex %d: out-probabilities sum to %.17g > 1; a discrete model's out-edges are probabilities (the self-loop is the missing mass)"
                    v total
            lambda.[v] <- total
        lambda

    /// Largest total out-rate over the transient vertices (0 when there are none).
    let maxRate (g: Graph) (lambda: float[]) =
        let mutable m = 0.0
        for v in 1 .. g.VertexCount - 1 do
            if lambda.[v] > m then m <- lambda.[v]
        m

    /// Probability that the start vertex goes straight to an absorbing vertex (P(τ = 0)).
    let defect (g: Graph) (weights: float[]) (lambda: float[]) =
        let mutable d = 0.0
        for e in g.Offsets.[0] .. g.Offsets.[1] - 1 do
            if g.IsAbsorbing g.Targets.[e] then d <- d + weights.[e]
        d / lambda.[0]

    let times (times: float[]) =
        if isNull times then Fail.withMessage "times must not be null"
        for i in 0 .. times.Length - 1 do
            let t = times.[i]
            if not (Double.IsFinite t) || t < 0.0 then
                Fail.format "times[%d] = %g: times must be finite and ≥ 0" i t

    let time (name: string) (t: float) =
        if not (Double.IsFinite t) || t < 0.0 then Fail.format "%s = %g: it must be finite and ≥ 0" name t

    /// A discrete model's time argument is a step count: a non-negative integer.
    let steps (t: float) : int =
        if not (Double.IsFinite t) || t < 0.0 || t <> Math.Floor t || t > float Int32.MaxValue then
            Fail.format "t = %g: for a discrete model t is a number of steps and must be a non-negative integer" t
        int t

    let tolerance (tol: float) =
        if not (Double.IsFinite tol) || tol <= 0.0 || tol >= 1.0 then
            Fail.format "tolerance = %g: it must be a number in (0, 1), e.g. 1e-12" tol

    let continuous (g: Graph) (what: string) =
        if g.IsDiscrete then
            Fail.format "%s needs a continuous model but this graph is discrete; use Distribution.pmfCdf for discrete models" what

    let discrete (g: Graph) (what: string) =
        if not g.IsDiscrete then
            Fail.format "%s needs a discrete model but this graph is continuous; use Distribution.pdfCdfExact (or pdfCdfEuler) for continuous models" what

/// A chain prepared for synchronous steps p ← p·P with P = I + S/Λ (continuous, Λ the
/// uniformization rate or the Euler granularity) or P = T (discrete, Λ = 1). The step gathers
/// over in-edges (reverse CSR, sources in vertex order) so the loop writes each entry once and
/// never allocates. Arrays span all vertices; start and absorbing entries lose nothing per
/// step; the start vertex never holds mass, and absorbing vertices have in-edges only when
/// absorbed mass is kept.
type internal SteppedChain =
    { Count: int
      /// λ_v/Λ: the fraction of v's mass that leaves it in one step (0 for absorbing and start
      /// vertices). Stored instead of the diagonal 1 − λ_v/Λ because rounding 1 − x loses
      /// x's low bits: with Λ = 1e5 and λ_v = 1 the kept and the moved mass would disagree by
      /// 5e-12 of the moved mass, and over Λt = 1e6 steps the cdf would drift by 5e-12.
      Out: float[]
      InStart: int[]
      InSource: int[]
      /// w(u→v)/Λ.
      InWeight: float[]
      /// Unscaled rate (probability, discrete) from v straight into absorbing vertices.
      Exit: float[]
      /// α on the transient vertices (and on absorbing ones when absorbed mass is kept).
      Initial: float[]
      Defect: float
      Rate: float }

module internal Chain =

    /// Prepares the stepping arrays. `keepAbsorbed`: absorbing vertices keep the mass that
    /// reaches them (for stop probabilities); otherwise it leaves the vector and is reported by
    /// the step's exit term.
    let prepare (g: Graph) (weights: float[]) (lambda: float[]) (rate: float) (keepAbsorbed: bool) : SteppedChain =
        let n = g.VertexCount
        let offsets = g.Offsets
        let targets = g.Targets
        let absorbing = Array.init n (fun v -> g.IsAbsorbing v)
        let transient v = v <> 0 && not absorbing.[v]
        let inv = if rate > 0.0 then 1.0 / rate else 0.0
        let out = Array.zeroCreate n
        let exit = Array.zeroCreate n
        let counts = Array.zeroCreate (n + 1)
        for v in 1 .. n - 1 do
            if transient v then
                out.[v] <- min 1.0 (lambda.[v] * inv)
                for e in offsets.[v] .. offsets.[v + 1] - 1 do
                    let z = targets.[e]
                    if absorbing.[z] then exit.[v] <- exit.[v] + weights.[e]
                    if not absorbing.[z] || keepAbsorbed then counts.[z + 1] <- counts.[z + 1] + 1
        for v in 0 .. n - 1 do counts.[v + 1] <- counts.[v + 1] + counts.[v]
        let inStart = Array.copy counts
        let fill = Array.copy counts
        let inSource = Array.zeroCreate counts.[n]
        let inWeight = Array.zeroCreate counts.[n]
        // Sources in increasing vertex order: deterministic summation order.
        for u in 1 .. n - 1 do
            if transient u then
                for e in offsets.[u] .. offsets.[u + 1] - 1 do
                    let z = targets.[e]
                    if not absorbing.[z] || keepAbsorbed then
                        inSource.[fill.[z]] <- u
                        inWeight.[fill.[z]] <- weights.[e] * inv
                        fill.[z] <- fill.[z] + 1
        let initial = Array.zeroCreate n
        let mutable defect = 0.0
        for e in offsets.[0] .. offsets.[1] - 1 do
            let z = targets.[e]
            let a = weights.[e] / lambda.[0]
            if absorbing.[z] then
                defect <- defect + a
                if keepAbsorbed then initial.[z] <- initial.[z] + a
            else initial.[z] <- initial.[z] + a
        { Count = n
          Out = out
          InStart = inStart
          InSource = inSource
          InWeight = inWeight
          Exit = exit
          Initial = initial
          Defect = defect
          Rate = rate }

    /// q ← p·P; returns p·exit (the density term α P^k s, or the discrete pmf of the next
    /// step) and Σ p (the mass still in the vector, α P^k 1 when absorbed mass is not kept). The hot loop of every distribution function: arrays only, no allocation, and no
    /// bounds checks (the indices come from `prepare`: InStart is non-decreasing from 0 to
    /// InSource.Length and every source is a vertex; p and q have Count entries) — they cost
    /// about half the time of a step on the coalescent.
    let step (c: SteppedChain) (p: float[]) (q: float[]) : struct (float * float) =
        if p.Length <> c.Count || q.Length <> c.Count then
            Fail.format "internal: step vectors have %d and %d entries, expected %d" p.Length q.Length c.Count
        let pr = &MemoryMarshal.GetArrayDataReference p
        let qr = &MemoryMarshal.GetArrayDataReference q
        let out = &MemoryMarshal.GetArrayDataReference c.Out
        let exit = &MemoryMarshal.GetArrayDataReference c.Exit
        let inStart = &MemoryMarshal.GetArrayDataReference c.InStart
        let inSource = &MemoryMarshal.GetArrayDataReference c.InSource
        let inWeight = &MemoryMarshal.GetArrayDataReference c.InWeight
        let mutable dot = 0.0
        let mutable mass = 0.0
        let mutable e = 0
        for v in 0 .. c.Count - 1 do
            let pv = Unsafe.Add(&pr, v)
            dot <- dot + pv * Unsafe.Add(&exit, v)
            mass <- mass + pv
            let mutable acc = pv - pv * Unsafe.Add(&out, v)
            let stop = Unsafe.Add(&inStart, v + 1)
            while e < stop do
                acc <- acc + Unsafe.Add(&pr, Unsafe.Add(&inSource, e)) * Unsafe.Add(&inWeight, e)
                e <- e + 1
            Unsafe.Add(&qr, v) <- acc
        struct (dot, mass)

/// Neumaier-compensated running sum: the cdf accumulates up to millions of small terms.
[<Struct>]
type internal CompensatedSum =
    val mutable Sum: float
    val mutable Carry: float
    member s.Add(x: float) =
        let t = s.Sum + x
        if abs s.Sum >= abs x then s.Carry <- s.Carry + ((s.Sum - t) + x)
        else s.Carry <- s.Carry + ((x - t) + s.Sum)
        s.Sum <- t
    member s.Value = s.Sum + s.Carry
