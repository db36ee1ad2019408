namespace Ptd.Core

open System
open System.Threading.Tasks

/// A log-likelihood and its gradient with respect to θ.
type LikelihoodResult =
    { LogLikelihood: float
      Gradient: float[] }

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
module TraceLikelihood =

    /// The chain as the sweep needs it: per edge p_e = w_e/Λ, per vertex stay = 1 − λ_v/Λ and
    /// exit s_v = Σ weights into absorbing vertices; α and the defect from the start edges.
    type private Chain =
        { Transient: int[]
          IsTransient: bool[]
          P: float[]
          Stay: float[]
          Exit: float[]
          Alpha: float[]
          Defect: float }

    let private chain (g: Graph) (w: float[]) (scale: float) : Chain =
        let n = g.VertexCount
        let isTransient = Array.init n (fun v -> v > 0 && g.OutDegree v > 0)
        let stay = Array.zeroCreate n
        let exit = Array.zeroCreate n
        let p = Array.zeroCreate g.EdgeCount
        for v in 1 .. n - 1 do
            if isTransient.[v] then
                let mutable lambda = 0.0
                for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                    lambda <- lambda + w.[e]
                    p.[e] <- w.[e] / scale
                    if not isTransient.[g.Targets.[e]] then exit.[v] <- exit.[v] + w.[e]
                stay.[v] <- 1.0 - lambda / scale
        let mutable total = 0.0
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do total <- total + w.[e]
        let alpha = Array.zeroCreate n
        let mutable defect = 0.0
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
            let z = g.Targets.[e]
            if isTransient.[z] then alpha.[z] <- alpha.[z] + w.[e] / total else defect <- defect + w.[e] / total
        { Transient = [| for v in 0 .. n - 1 do if isTransient.[v] then v |]
          IsTransient = isTransient
          P = p
          Stay = stay
          Exit = exit
          Alpha = alpha
          Defect = defect }

    /// The same quantities differentiated along one direction (edge-weight tangents dw), Λ fixed.
    let private chainTangent (g: Graph) (w: float[]) (dw: float[]) (scale: float) (c: Chain) : Chain =
        let n = g.VertexCount
        let stay = Array.zeroCreate n
        let exit = Array.zeroCreate n
        let p = Array.zeroCreate g.EdgeCount
        for v in c.Transient do
            let mutable dl = 0.0
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                dl <- dl + dw.[e]
                p.[e] <- dw.[e] / scale
                if not c.IsTransient.[g.Targets.[e]] then exit.[v] <- exit.[v] + dw.[e]
            stay.[v] <- -dl / scale
        let mutable total = 0.0
        let mutable dtotal = 0.0
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
            total <- total + w.[e]
            dtotal <- dtotal + dw.[e]
        // d(w/W) = (dw − (w/W)·dW)/W
        let alpha = Array.zeroCreate n
        let mutable defect = 0.0
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
            let z = g.Targets.[e]
            let d = (dw.[e] - w.[e] / total * dtotal) / total
            if c.IsTransient.[z] then alpha.[z] <- alpha.[z] + d else defect <- defect + d
        { c with P = p; Stay = stay; Exit = exit; Alpha = alpha; Defect = defect }

    /// Sweep vectors whose largest entry falls below 2^−512 are multiplied by a power of two
    /// (exact), so a long sweep through a slowly draining chain never underflows to 0.
    let private rescaleBelow = 1.4916681462400413e-154 // 2^−512

    let private ln2 = Math.Log 2.0

    /// The sweep's output: v_k (and tangents) stored in units of 2^Exponents[k] (true value =
    /// stored · 2^Exponents[k]), and log of the mass left in the chain at the last step (true
    /// units; the mass never grows, so it bounds every later step).
    type private Sweep =
        { V: float[]
          DV: float[][]
          Exponents: int[]
          Rescaled: bool
          LogMassEnd: float }

    /// v_k = π_k · s for k = 0 .. steps − 1 with π_0 = α, π_{k+1} = π_k P (P from `chain`), and
    /// the tangents of v_k along every direction in `tangents`, rescaled as described above.
    let private sweep (g: Graph) (c: Chain) (tangents: Chain[]) (steps: int) : Sweep =
        let n = g.VertexCount
        let d = tangents.Length
        let v = Array.zeroCreate steps
        let dv = Array.init d (fun _ -> Array.zeroCreate steps)
        let exps = Array.zeroCreate steps
        let mutable exponent = 0
        let mutable pi = Array.copy c.Alpha
        let mutable next = Array.zeroCreate n
        let dpi = tangents |> Array.map (fun t -> Array.copy t.Alpha)
        let dnext = Array.init d (fun _ -> Array.zeroCreate n)
        let targets = g.Targets
        let offsets = g.Offsets
        for k in 0 .. steps - 1 do
            let mutable u = 0.0
            for x in c.Transient do u <- u + pi.[x] * c.Exit.[x]
            v.[k] <- u
            exps.[k] <- exponent
            for j in 0 .. d - 1 do
                let t = tangents.[j]
                let dp: float[] = dpi.[j]
                let mutable du = 0.0
                for x in c.Transient do du <- du + dp.[x] * c.Exit.[x] + pi.[x] * t.Exit.[x]
                dv.[j].[k] <- du
            if k < steps - 1 then
                for x in c.Transient do next.[x] <- pi.[x] * c.Stay.[x]
                for x in c.Transient do
                    let px = pi.[x]
                    if px <> 0.0 then
                        for e in offsets.[x] .. offsets.[x + 1] - 1 do
                            let z = targets.[e]
                            if c.IsTransient.[z] then next.[z] <- next.[z] + px * c.P.[e]
                for j in 0 .. d - 1 do
                    let t = tangents.[j]
                    let dp: float[] = dpi.[j]
                    let dn: float[] = dnext.[j]
                    for x in c.Transient do dn.[x] <- dp.[x] * c.Stay.[x] + pi.[x] * t.Stay.[x]
                    for x in c.Transient do
                        let px = pi.[x]
                        let dpx = dp.[x]
                        for e in offsets.[x] .. offsets.[x + 1] - 1 do
                            let z = targets.[e]
                            if c.IsTransient.[z] then dn.[z] <- dn.[z] + dpx * c.P.[e] + px * t.P.[e]
                    dpi.[j] <- dn
                    dnext.[j] <- dp
                let mutable top = 0.0
                for x in c.Transient do top <- max top next.[x]
                if top > 0.0 && top < rescaleBelow then
                    let shift = -Math.ILogB top
                    let f = Math.ScaleB(1.0, shift)
                    for x in c.Transient do next.[x] <- next.[x] * f
                    for j in 0 .. d - 1 do
                        let dn: float[] = dpi.[j]
                        for x in c.Transient do dn.[x] <- dn.[x] * f
                    exponent <- exponent - shift
                let tmp = pi
                pi <- next
                next <- tmp
        let mutable mass = 0.0
        for x in c.Transient do mass <- mass + pi.[x]
        { V = v
          DV = dv
          Exponents = exps
          Rescaled = exponent <> 0
          LogMassEnd = if mass > 0.0 then Math.Log mass + float exps.[steps - 1] * ln2 else Double.NegativeInfinity }

    /// Poisson terms below eps × the mode's term are dropped (the dropped mass is < ~1e-15).
    let private eps = 1e-17

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
          DLog: float[][] }

    /// log f and ∂ log f/∂θ from EVERY step of the sweep, in log space (log Pois(k; μ) =
    /// k log μ − μ − log k!, the sweep's exponents added, terms combined relative to the
    /// largest). Used when the Poisson window around the mode cannot resolve f: an observation
    /// far in a tail (its density is carried by steps far from the mode, where the window's
    /// absolute truncation is no longer a relative one), or a rescaled sweep.
    let private logSpace (sw: Sweep) (logFactorial: float[]) (mu: float) (maxExit: float) (data: float[]) (i: int) (theta: float[]) (dlog: float[][]) =
        let steps = sw.V.Length
        let d = sw.DV.Length
        let logMu = Math.Log mu
        let logPois k = float k * logMu - mu - logFactorial.[k]
        let mutable top = Double.NegativeInfinity
        for k in 0 .. steps - 1 do
            if sw.V.[k] > 0.0 then top <- max top (logPois k + Math.Log sw.V.[k] + float sw.Exponents.[k] * ln2)
        let logF =
            if Double.IsNegativeInfinity top then Double.NegativeInfinity
            else
                let mutable s = 0.0
                let acc = Array.zeroCreate d
                // Each product in log space: a weight far above the top term times a zero v_k
                // (or tangent) would otherwise be ∞ · 0.
                for k in 0 .. steps - 1 do
                    let lw = logPois k + float sw.Exponents.[k] * ln2 - top
                    if sw.V.[k] > 0.0 then s <- s + Math.Exp(lw + Math.Log sw.V.[k])
                    for j in 0 .. d - 1 do
                        let x = sw.DV.[j].[k]
                        if x <> 0.0 then acc.[j] <- acc.[j] + float (sign x) * Math.Exp(lw + Math.Log(abs x))
                for j in 0 .. d - 1 do dlog.[j].[i] <- acc.[j] / s
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

    /// Densities (continuous) or probabilities (discrete) of every observation, their logs and,
    /// when `withTangents`, the derivatives of the logs.
    let private densities (t: Trace) (theta: float[]) (data: float[]) (withTangents: bool) : Densities =
        let g = t.Graph
        checkData g data
        let ev = TraceEval.evaluate t theta
        let w = ev.Weights
        let dws = if withTangents then TraceGrad.weightTangents t ev.Values else [||]
        let nObs = data.Length
        let d = dws.Length
        let f = Array.zeroCreate nObs
        let logF = Array.zeroCreate nObs
        let dlog = Array.init d (fun _ -> Array.zeroCreate nObs)
        // One observation from its value s (in units of 2^exponent) and tangents ds.
        let finish (i: int) (s: float) (exponent: int) (ds: int -> float) =
            if s > 0.0 then
                f.[i] <- Math.ScaleB(s, exponent)
                logF.[i] <- Math.Log s + float exponent * ln2
                for j in 0 .. d - 1 do dlog.[j].[i] <- ds j / s
            else
                f.[i] <- 0.0
                logF.[i] <- Double.NegativeInfinity
        if g.IsDiscrete then
            let c = chain g w 1.0
            let tc = dws |> Array.map (fun dw -> chainTangent g w dw 1.0 c)
            let kMax = if nObs = 0 then 0 else int (Array.max data)
            // pmf(k) = v_{k−1} for k ≥ 1; pmf(0) = defect
            let sw = sweep g c tc (max 1 kMax)
            for i in 0 .. nObs - 1 do
                let k = int data.[i]
                if k = 0 then finish i c.Defect 0 (fun j -> tc.[j].Defect)
                else finish i sw.V.[k - 1] sw.Exponents.[k - 1] (fun j -> sw.DV.[j].[k - 1])
        else
            let mutable lambda = 0.0
            for x in 1 .. g.VertexCount - 1 do
                let mutable l = 0.0
                for e in g.EdgeStart x .. g.EdgeEnd x - 1 do l <- l + w.[e]
                lambda <- max lambda l
            let c = chain g w lambda
            let tc = dws |> Array.map (fun dw -> chainTangent g w dw lambda c)
            let mutable maxExit = 0.0
            for x in c.Transient do maxExit <- max maxExit c.Exit.[x]
            // The sweep runs as far as the largest observation's Poisson window reaches.
            let tMax = if nObs = 0 then 0.0 else Array.max data
            let muMax = lambda * tMax
            if muMax + 12.0 * sqrt muMax + 100.0 > float MaxSteps then
                Fail.format
                    "observation t = %g with maximal exit rate Λ = %g needs about %.3g uniformization steps (Λt), more than the %d allowed; rescale time (or the rates) so that Λ·t is smaller"
                    tMax lambda muMax MaxSteps
            // The sweep must reach every term an observation adds: its loop below adds terms
            // until (and including) the first one under eps × its mode's. For the largest μ the
            // window whose right tail is under eps × the mode's weight ends at hi, and term hi + 1
            // is the first under the cut, so steps 0 .. hi + 1; smaller μ stop earlier.
            let steps =
                if nObs = 0 || muMax = 0.0 then 1
                else
                    let struct (_, hi, _) = Poisson.bounds muMax (2.0 * eps * Poisson.weight (int (Math.Floor muMax)) muMax)
                    2 + hi
            let sw = sweep g c tc steps
            let v = sw.V
            let dv = sw.DV
            let acc = Array.zeroCreate d
            // 1/k, so that the Poisson recurrence multiplies instead of divides
            let invK = Array.init (steps + 1) (fun k -> if k = 0 then 0.0 else 1.0 / float k)
            let logFactorial =
                lazy
                    (let a = Array.zeroCreate (steps + 1)
                     for k in 2 .. steps do a.[k] <- a.[k - 1] + Math.Log(float k)
                     a)
            for i in 0 .. nObs - 1 do
                let mu = lambda * data.[i]
                if mu = 0.0 then finish i v.[0] sw.Exponents.[0] (fun j -> dv.[j].[0])
                else
                    // Σ_k Pois(k; μ) v_k from the mode outward, each Poisson weight by recurrence
                    // (one exp per observation), until the terms drop below eps × the mode's.
                    let m = min (int (Math.Floor mu)) (steps - 1)
                    let pm = Poisson.weight m mu
                    let cut = eps * pm
                    let mutable s = pm * v.[m]
                    for j in 0 .. d - 1 do acc.[j] <- pm * dv.[j].[m]
                    let mutable p = pm
                    let mutable k = m + 1
                    while k < steps && (p >= cut || float k <= mu) do
                        p <- p * mu * invK.[k]
                        s <- s + p * v.[k]
                        for j in 0 .. d - 1 do acc.[j] <- acc.[j] + p * dv.[j].[k]
                        k <- k + 1
                    // What the window left out: above, Σ_{j ≥ k} Pois(j) ≤ Pois(k)/(1 − μ/(k + 1));
                    // below, Σ_{j ≤ k'} Pois(j) ≤ Pois(k')/(1 − k'/μ); and every v_j ≤ max exit
                    // rate (the chain's mass is ≤ 1). The window is trusted when that is ≤ 1e-9 of s.
                    let pUp = p * mu * (if k <= steps then invK.[k] else 1.0 / float k)
                    let above = if float k + 1.0 > mu then pUp / (1.0 - mu / (float k + 1.0)) else Double.PositiveInfinity
                    p <- pm
                    let invMu = 1.0 / mu
                    k <- m - 1
                    while k >= 0 && p >= cut do
                        p <- p * float (k + 1) * invMu
                        s <- s + p * v.[k]
                        for j in 0 .. d - 1 do acc.[j] <- acc.[j] + p * dv.[j].[k]
                        k <- k - 1
                    let below = if k >= 0 then p * float (k + 1) * invMu / (1.0 - float k * invMu) else 0.0
                    if not sw.Rescaled && (above + below) * maxExit <= 1e-9 * s then
                        finish i s 0 (fun j -> acc.[j])
                    else
                        // Far in a tail (or a rescaled sweep): every step, in log space.
                        let lf = logSpace sw logFactorial.Value mu maxExit data i theta dlog
                        logF.[i] <- lf
                        f.[i] <- Math.Exp lf
        { F = f; LogF = logF; DLog = dlog }

    /// The density (continuous) or probability (discrete) of each observation at θ (0 where it
    /// underflows; logLikelihood keeps such values finite).
    let density (t: Trace) (theta: float[]) (data: float[]) : float[] = (densities t theta data false).F

    let private total (logF: float[]) =
        let mutable s = 0.0
        for x in logF do s <- s + x
        s

    /// Σ_i log f(x_i; θ), accurate in the tails (log space where f underflows). −∞ only when
    /// some observation has density exactly 0 (the model cannot produce it at θ).
    let logLikelihood (t: Trace) (theta: float[]) (data: float[]) : float = total (densities t theta data false).LogF

    /// Σ_i log f(x_i; θ) and its gradient with respect to θ. Policy where the log-likelihood is
    /// −∞ (an observation of density 0): the gradient is all zeros — there is no finite
    /// direction, and a NaN would poison whatever consumes it; callers test the value for −∞.
    let logLikelihoodWithGradient (t: Trace) (theta: float[]) (data: float[]) : LikelihoodResult =
        let r = densities t theta data true
        let ll = total r.LogF
        let grad =
            r.DLog |> Array.map (fun dj ->
                let mutable s = 0.0
                for x in dj do s <- s + x
                s)
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
