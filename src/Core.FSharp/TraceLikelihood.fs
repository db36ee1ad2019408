namespace Ptd.Core

open System
open System.Numerics
open System.Threading.Tasks

/// A log-likelihood and its gradient with respect to θ.
type LikelihoodResult =
    { LogLikelihood: float
      Gradient: float[] }

/// The window sums' workspace of the current thread (UniformizationWindows.Workspace): a
/// log-likelihood is taken many times (once per θ, per particle) on the same data, so each
/// thread keeps its arrays (O(observations)) instead of allocating them per call. One call at a
/// time per thread (nothing in a call re-enters it), so they are never shared.
type internal WindowWorkspace() =
    [<ThreadStatic; DefaultValue>]
    static val mutable private current: UniformizationWindows.Workspace

    /// Data sets larger than this get a workspace of their own that is dropped after the call: a
    /// thread-pool thread would otherwise hold on to ~10 arrays of that size for the process's life.
    static member RetainUpTo = 1_000_000

    /// The thread's workspace for nObs observations (a fresh one past RetainUpTo).
    static member For(nObs: int) =
        if nObs > WindowWorkspace.RetainUpTo then UniformizationWindows.Workspace()
        else
            if isNull WindowWorkspace.current then WindowWorkspace.current <- UniformizationWindows.Workspace()
            WindowWorkspace.current

/// Log-likelihood of observed absorption times and its exact gradient, from an evaluated trace
/// (the ORIGINAL chain's weights — no re-elimination). Continuous models: the exact
/// uniformization sweep f(t) = Σ_k Pois(k; Λt) · α P^k s with P = I + S/Λ, all observations in
/// one sweep (its length is set by the largest t). Discrete models: the pmf recursion
/// P(τ = k) = α T^{k−1} t, P(τ = 0) = the defect.
///
/// Gradients: forward mode, one tangent vector per parameter carried through the same sweep
/// (the parameter count is small, the sweep long: forward mode needs no stored step vectors,
/// where reverse mode would have to checkpoint them). Λ = max_v λ_v is held fixed while
/// differentiating: uniformization is an identity e^{St} = Σ_k Pois(k; Λt)(I + S/Λ)^k for EVERY
/// Λ > 0, so f does not depend on Λ and the fixed-Λ derivative is the exact derivative.
///
/// Cost: the sweep (UniformizationSweep: pull form, value and tangents side by side) is paid
/// once; the per-observation Poisson sums (most of the work for many observations) are taken in
/// sorted order — dense runs as Poisson-convolution blocks (UniformizationBlocks), the rest as
/// SIMD lane groups (UniformizationWindows) — and their logs (and gradient terms) summed in
/// that sorted order, a vector of observations at a time, into compensated per-lane sums
/// (LikelihoodTotals): no per-observation array is written or read back, and the result does
/// not depend on the order of the data (equal values sort together, so sorted and unsorted data
/// give the same sums). The window sums' O(observations) arrays live in a per-thread workspace
/// (WindowWorkspace): repeated calls (one per θ) allocate nothing that grows with the data.
module TraceLikelihood =

    let private ln2 = Math.Log 2.0

    let private eps = UniformizationWindows.Eps

    /// The sweep keeps a value per step (and per parameter): beyond this many steps an
    /// observation is out of reach of the exact sweep, and we say so rather than run for hours.
    [<Literal>]
    let MaxSteps = 10_000_000

    let private checkData (g: Graph) (data: float[]) =
        if isNull data then Fail.withMessage "observations must not be null"
        for i in 0 .. data.Length - 1 do
            let x = data.[i]
            if not (Double.IsFinite x) || x < 0.0 then
                Fail.format "observation %d = %g: absorption times must be finite and ≥ 0" i x
            if g.IsDiscrete && x <> Math.Floor x then
                Fail.format "observation %d = %g: a discrete model's observations are whole numbers of jumps" i x
            if g.IsDiscrete && x > float MaxSteps then
                Fail.format "observation %d = %g jumps is beyond the %d steps the pmf recursion is allowed" i x MaxSteps

    /// Per observation: f (the density or probability; it may underflow to 0 when log f is
    /// finite), log f, and ∂ log f/∂θ_j in dlog.[j].[i] (0 where log f = −∞: see
    /// logLikelihoodWithGradient).
    type private Densities =
        { F: float[]
          LogF: float[]
          DLog: float[][]
          /// When `fused`: Σ log f (column 0) and Σ ∂ log f/∂θ_j (column 1 + j), in place of
          /// LogF and DLog (which are then not filled).
          Totals: LikelihoodTotals }

    /// log f and ∂ log f/∂θ from EVERY step of the sweep, in log space (log Pois(k; μ) =
    /// k log μ − μ − log k!, the sweep's exponents added, terms combined relative to the
    /// largest). Used when the Poisson window around the mode cannot resolve f: an observation
    /// far in a tail (its density is carried by steps far from the mode, where the window's
    /// absolute truncation is no longer a relative one), or a rescaled sweep.
    let private logSpace (sw: SweepTable) (logFactorial: float[]) (mu: float) (maxExit: float) (data: float[]) (i: int) (theta: float[]) (dlog: float[][]) (at: int) =
        let steps = sw.Steps
        let width = sw.Width
        let d = width - 1
        let table = sw.Table
        let logMu = Math.Log mu
        let logPois k = float k * logMu - mu - logFactorial.[k]
        let mutable top = Double.NegativeInfinity
        for k in 0 .. steps - 1 do
            let v = table.[k]
            if v > 0.0 then top <- max top (logPois k + Math.Log v + float sw.Exponents.[k] * ln2)
        let logF =
            if Double.IsNegativeInfinity top then Double.NegativeInfinity
            else
                let mutable s = 0.0
                let acc = Array.zeroCreate d
                // Each product in log space: a weight far above the top term times a zero v_k
                // (or tangent) would otherwise be ∞ · 0.
                for k in 0 .. steps - 1 do
                    let lw = logPois k + float sw.Exponents.[k] * ln2 - top
                    let v = table.[k]
                    if v > 0.0 then s <- s + Math.Exp(lw + Math.Log v)
                    for j in 0 .. d - 1 do
                        let x = table.[(1 + j) * steps + k]
                        if x <> 0.0 then acc.[j] <- acc.[j] + float (sign x) * Math.Exp(lw + Math.Log(abs x))
                for j in 0 .. d - 1 do dlog.[j].[at] <- acc.[j] / s
                top + Math.Log s
        // Terms beyond the sweep (k ≥ steps) were never computed: Σ_{k ≥ steps} Pois(k; μ) v_k ≤
        // Pois(steps; μ)/(1 − μ/(steps + 1)) · max exit rate · the chain's mass at the end.
        let logBeyond =
            if float steps + 1.0 <= mu then Double.PositiveInfinity
            else
                let logPoisSteps = float steps * logMu - mu - (logFactorial.[steps - 1] + Math.Log(float steps))
                logPoisSteps - Math.Log(1.0 - mu / (float steps + 1.0)) + Math.Log maxExit + sw.LogMassEnd
        if logBeyond > logF + Math.Log 1e-9 then
            Fail.format
                "observation %d (t = %g) lies so far in a tail of the model at θ = [%s] that its density (log f ≈ %.4g) cannot be resolved by the uniformization sweep; choose θ closer to the data's scale"
                i data.[i] (String.Join(", ", theta)) logF
        logF

    /// Densities (continuous) or probabilities (discrete) of every observation (only when
    /// `withDensity`: the log-likelihood needs just their logs), their logs and, when
    /// `withTangents`, the derivatives of the logs. `fused` (the log-likelihood and its gradient):
    /// each observation goes straight into the compensated totals instead — in the common case a
    /// vector of observations at a time, in sorted order, with no per-observation array.
    let private densities (t: Trace) (theta: float[]) (data: float[]) (withTangents: bool) (withDensity: bool) (fused: bool) : Densities =
        let g = t.Graph
        checkData g data
        let ev = TraceEval.evaluate t theta
        let w = ev.Weights
        let dws = if withTangents then TraceGrad.weightTangents t ev.Values else [||]
        let nObs = data.Length
        let d = dws.Length
        let f = if withDensity then Array.zeroCreate nObs else [||]
        let acc = LikelihoodTotals(if fused then 1 + d else 0)
        // every entry is written below (fused: none is; logSpace's tangents go to dlog.[j].[0])
        let logF = GC.AllocateUninitializedArray<float>(if fused then 0 else nObs)
        let dlog = Array.init d (fun _ -> Array.zeroCreate (if fused then 1 else nObs))
        // One observation from its value s (in units of 2^exponent) and tangents ds.[o + j·stride].
        let finish (i: int) (s: float) (exponent: int) (ds: float[]) (o: int) (stride: int) =
            if s > 0.0 then
                let lf = Math.Log s + float exponent * ln2
                if fused then
                    acc.Add(0, lf)
                    for j in 0 .. d - 1 do acc.Add(1 + j, ds.[o + j * stride] / s)
                else
                    if withDensity then f.[i] <- Math.ScaleB(s, exponent)
                    logF.[i] <- lf
                    for j in 0 .. d - 1 do dlog.[j].[i] <- ds.[o + j * stride] / s
            elif fused then acc.Add(0, Double.NegativeInfinity)
            else logF.[i] <- Double.NegativeInfinity
        if g.IsDiscrete then
            let u = UniformizationSweep.uniformize g w dws 1.0
            let kMax = if nObs = 0 then 0 else int (Array.max data)
            // pmf(k) = v_{k−1} for k ≥ 1; pmf(0) = defect
            let sw = UniformizationSweep.sweep u (max 1 kMax)
            let rows = sw.Steps
            for i in 0 .. nObs - 1 do
                let k = int data.[i]
                if k = 0 then finish i u.Defect 0 u.DDefect 0 1
                else finish i sw.Table.[k - 1] sw.Exponents.[k - 1] sw.Table (rows + k - 1) rows
        else
            let mutable lambda = 0.0
            for x in 1 .. g.VertexCount - 1 do
                let mutable l = 0.0
                for e in g.EdgeStart x .. g.EdgeEnd x - 1 do l <- l + w.[e]
                lambda <- max lambda l
            let u = UniformizationSweep.uniformize g w dws lambda
            let maxExit = u.MaxExit
            // The sweep runs as far as the largest observation's Poisson window reaches.
            let tMax = if nObs = 0 then 0.0 else Array.max data
            let muMax = lambda * tMax
            if muMax + 12.0 * sqrt muMax + 100.0 > float MaxSteps then
                Fail.format
                    "observation t = %g with maximal exit rate Λ = %g needs about %.3g uniformization steps (Λt), more than the %d allowed; rescale time (or the rates) so that Λ·t is smaller"
                    tMax lambda muMax MaxSteps
            // The sweep must reach every term an observation adds: a window adds terms until
            // (and including) the first one under eps × its mode's. For the largest μ the
            // window whose right tail is under eps × the mode's weight ends at hi, and term hi + 1
            // is the first under the cut, so steps 0 .. hi + 1; smaller μ stop earlier.
            let steps =
                if nObs = 0 || muMax = 0.0 then 1
                else
                    let struct (_, hi, _) = Poisson.bounds muMax (2.0 * eps * Poisson.weight (int (Math.Floor muMax)) muMax)
                    // + Shifts rows: a block of observations reads Shifts rows past its window.
                    2 + hi + UniformizationBlocks.Shifts
            let sw = UniformizationSweep.sweep u steps
            let table = sw.Table
            let logFactorial =
                lazy
                    (let a = Array.zeroCreate (steps + 1)
                     for k in 2 .. steps do a.[k] <- a.[k - 1] + Math.Log(float k)
                     a)
            let ws = WindowWorkspace.For nObs
            // From the workspace when the data size repeats (every entry is written here).
            if ws.Mu.Length <> nObs then ws.Mu <- GC.AllocateUninitializedArray<float> nObs
            let mu = ws.Mu
            for i in 0 .. nObs - 1 do mu.[i] <- lambda * data.[i]
            // Observation i far in a tail (or in a rescaled sweep): every step, in log space.
            let tail (i: int) =
                let lf = logSpace sw logFactorial.Value mu.[i] maxExit data i theta dlog (if fused then 0 else i)
                if fused then
                    acc.Add(0, lf)
                    // logSpace leaves the tangents alone where f = 0 (the gradient is then zeroed)
                    if not (Double.IsNegativeInfinity lf) then
                        for j in 0 .. d - 1 do acc.Add(1 + j, dlog.[j].[0])
                else
                    logF.[i] <- lf
                    if withDensity then f.[i] <- Math.Exp lf
            if sw.Rescaled then
                // A rescaled sweep: every step in log space (the window sums assume one scale).
                for i in 0 .. nObs - 1 do
                    if mu.[i] = 0.0 then finish i table.[0] sw.Exponents.[0] table steps steps
                    else tail i
            elif fused then
                let sums = UniformizationWindows.sumsInto ws table sw.Width steps mu
                let columns = sums.Columns
                let order = sums.Order
                let leftOut = sums.LeftOut
                let shift = sums.Shift
                let value = columns.[0]
                // The window at sorted position q is trusted when the Poisson mass it left out,
                // times the largest exit rate (every v_k is at most that rate), is ≤ 1e-9 of s.
                let one (q: int) =
                    let i = order.[q]
                    let s = value.[q]
                    if mu.[i] = 0.0 || leftOut.[q] * maxExit <= 1e-9 * s then
                        if s > 0.0 then
                            acc.Add(0, Math.Log s + shift.[q])
                            let inv = 1.0 / s
                            for j in 0 .. d - 1 do acc.Add(1 + j, columns.[1 + j].[q] * inv)
                        else acc.Add(0, Double.NegativeInfinity)
                    else tail i
                // A vector of positions at a time when every lane is the common case (s > 0 and
                // the window trusted; μ = 0 leaves out nothing, so it needs no test of its own).
                let n = Vector<float>.Count
                let maxExitV = Vector<float>(maxExit)
                let tolV = Vector<float>(1e-9)
                // The value's and the first tangent's lane sums in registers (as
                // LikelihoodTotals.AddVector would add them), the other tangents through acc.
                let mutable s0 = Vector<float>.Zero
                let mutable c0 = Vector<float>.Zero
                let mutable s1 = Vector<float>.Zero
                let mutable c1 = Vector<float>.Zero
                let tangent = if d >= 1 then columns.[1] else value
                let mutable q = 0
                while q + n <= nObs do
                    let s = Vector<float>(value, q)
                    if Vector.GreaterThanAll(s, Vector<float>.Zero)
                       && Vector.LessThanOrEqualAll(Vector<float>(leftOut, q) * maxExitV, tolV * s) then
                        let x = Vector.Log s + Vector<float>(shift, q)
                        let t = s0 + x
                        c0 <- c0 + Vector.ConditionalSelect(Vector.GreaterThanOrEqual(Vector.Abs s0, Vector.Abs x), (s0 - t) + x, (x - t) + s0)
                        s0 <- t
                        if d >= 1 then
                            let inv = Vector<float>.One / s
                            let x = Vector<float>(tangent, q) * inv
                            let t = s1 + x
                            c1 <- c1 + Vector.ConditionalSelect(Vector.GreaterThanOrEqual(Vector.Abs s1, Vector.Abs x), (s1 - t) + x, (x - t) + s1)
                            s1 <- t
                            for j in 1 .. d - 1 do acc.AddVector(1 + j, Vector<float>(columns.[1 + j], q) * inv)
                    else
                        for l in q .. q + n - 1 do one l
                    q <- q + n
                for l in q .. nObs - 1 do one l
                acc.SetLanes(0, s0, c0)
                if d >= 1 then acc.SetLanes(1, s1, c1)
            else
                let sums = UniformizationWindows.sumsInto ws table sw.Width steps mu
                let columns = sums.Columns
                // log s for every position, a vector at a time (within 2 ulps of Math.Log; the
                // columns have room for a whole vector past the last position).
                let logS = GC.AllocateUninitializedArray<float>(nObs + Vector<float>.Count)
                let mutable q = 0
                while q < nObs do
                    Vector.Log(Vector<float>(columns.[0], q)).CopyTo(logS, q)
                    q <- q + Vector<float>.Count
                let order = sums.Order
                let leftOut = sums.LeftOut
                let shift = sums.Shift
                let value = columns.[0]
                for q in 0 .. nObs - 1 do
                    let i = order.[q]
                    let s = value.[q]
                    // Every v_k ≤ the largest exit rate (the chain's mass is ≤ 1), so the window
                    // is trusted when the Poisson mass it left out, times that rate, is ≤ 1e-9 of s.
                    if mu.[i] = 0.0 || leftOut.[q] * maxExit <= 1e-9 * s then
                        // inline (the common case): log f = log s + shift, ∂ log f = tangent / s
                        if s > 0.0 then
                            let lf = logS.[q] + shift.[q]
                            logF.[i] <- lf
                            if withDensity then f.[i] <- (if shift.[q] = 0.0 then s else Math.Exp lf)
                            let inv = 1.0 / s
                            for j in 0 .. d - 1 do dlog.[j].[i] <- columns.[1 + j].[q] * inv
                        else logF.[i] <- Double.NegativeInfinity
                    else
                        tail i
        { F = f; LogF = logF; DLog = dlog; Totals = acc }

    /// The density (continuous) or probability (discrete) of each observation at θ (0 where it
    /// underflows; logLikelihood keeps such values finite).
    let density (t: Trace) (theta: float[]) (data: float[]) : float[] = (densities t theta data false true false).F

    /// Σ_i log f(x_i; θ), accurate in the tails (log space where f underflows). −∞ only when
    /// some observation has density exactly 0 (the model cannot produce it at θ).
    let logLikelihood (t: Trace) (theta: float[]) (data: float[]) : float = (densities t theta data false false true).Totals.Total 0

    /// Σ_i log f(x_i; θ) and its gradient with respect to θ. Policy where the log-likelihood is
    /// −∞ (an observation of density 0): the gradient is all zeros — there is no finite
    /// direction, and a NaN would poison whatever consumes it; callers test the value for −∞.
    let logLikelihoodWithGradient (t: Trace) (theta: float[]) (data: float[]) : LikelihoodResult =
        let r = densities t theta data true false true
        let ll = r.Totals.Total 0
        let grad = Array.init r.DLog.Length (fun j -> r.Totals.Total(1 + j))
        { LogLikelihood = ll
          Gradient = (if Double.IsNegativeInfinity ll then Array.zeroCreate grad.Length else grad) }

    let private batch (thetas: float[][]) (one: float[] -> 'r) : 'r[] =
        if isNull thetas then Fail.withMessage "the parameter vectors must not be null"
        let result = Array.zeroCreate thetas.Length
        try
            Parallel.For(0, thetas.Length, fun i ->
                try result.[i] <- one thetas.[i]
                with :? PtdException as e -> raise (PtdException(sprintf "particle %d: %s" i e.Message, e)))
            |> ignore
        with :? AggregateException as e ->
            match e.Flatten().InnerExceptions |> Seq.tryFind (fun x -> x :? PtdException) with
            | Some x -> raise (PtdException(x.Message, x))
            | None -> reraise ()
        result

    /// `logLikelihood` for every particle (in parallel across cores).
    let logLikelihoodBatch (t: Trace) (thetas: float[][]) (data: float[]) : float[] =
        checkData t.Graph data
        batch thetas (fun th -> logLikelihood t th data)

    /// `logLikelihoodWithGradient` for every particle (in parallel across cores).
    let logLikelihoodWithGradientBatch (t: Trace) (thetas: float[][]) (data: float[]) : LikelihoodResult[] =
        checkData t.Graph data
        batch thetas (fun th -> logLikelihoodWithGradient t th data)
