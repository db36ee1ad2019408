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

    /// v_k = π_k · s for k = 0 .. steps − 1 with π_0 = α, π_{k+1} = π_k P (P from `chain`), and
    /// the tangents of v_k along every direction in `tangents`.
    let private sweep (g: Graph) (c: Chain) (tangents: Chain[]) (steps: int) : float[] * float[][] =
        let n = g.VertexCount
        let d = tangents.Length
        let v = Array.zeroCreate steps
        let dv = Array.init d (fun _ -> Array.zeroCreate steps)
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
                let tmp = pi
                pi <- next
                next <- tmp
        v, dv

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

    /// Densities (continuous) or probabilities (discrete) of every observation and, when
    /// `withTangents`, their derivatives: result.[j].[i] = ∂f(x_i)/∂θ_j.
    let private densities (t: Trace) (theta: float[]) (data: float[]) (withTangents: bool) : float[] * float[][] =
        let g = t.Graph
        checkData g data
        let ev = TraceEval.evaluate t theta
        let w = ev.Weights
        let dws = if withTangents then TraceGrad.weightTangents t ev.Values else [||]
        let nObs = data.Length
        if g.IsDiscrete then
            let c = chain g w 1.0
            let tc = dws |> Array.map (fun dw -> chainTangent g w dw 1.0 c)
            let kMax = if nObs = 0 then 0 else int (Array.max data)
            // pmf(k) = v_{k−1} for k ≥ 1; pmf(0) = defect
            let v, dv = sweep g c tc (max 1 kMax)
            let f = data |> Array.map (fun x -> let k = int x in if k = 0 then c.Defect else v.[k - 1])
            let df = tc |> Array.mapi (fun j tj -> data |> Array.map (fun x -> let k = int x in if k = 0 then tj.Defect else dv.[j].[k - 1]))
            f, df
        else
            let mutable lambda = 0.0
            for x in 1 .. g.VertexCount - 1 do
                let mutable l = 0.0
                for e in g.EdgeStart x .. g.EdgeEnd x - 1 do l <- l + w.[e]
                lambda <- max lambda l
            let c = chain g w lambda
            let tc = dws |> Array.map (fun dw -> chainTangent g w dw lambda c)
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
            let v, dv = sweep g c tc steps
            let d = tc.Length
            let f = Array.zeroCreate nObs
            let df = Array.init d (fun _ -> Array.zeroCreate nObs)
            let acc = Array.zeroCreate d
            // 1/k, so that the Poisson recurrence multiplies instead of divides
            let invK = Array.init (steps + 1) (fun k -> if k = 0 then 0.0 else 1.0 / float k)
            for i in 0 .. nObs - 1 do
                let mu = lambda * data.[i]
                if mu = 0.0 then
                    f.[i] <- v.[0]
                    for j in 0 .. d - 1 do df.[j].[i] <- dv.[j].[0]
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
                    p <- pm
                    let invMu = 1.0 / mu
                    k <- m - 1
                    while k >= 0 && p >= cut do
                        p <- p * float (k + 1) * invMu
                        s <- s + p * v.[k]
                        for j in 0 .. d - 1 do acc.[j] <- acc.[j] + p * dv.[j].[k]
                        k <- k - 1
                    f.[i] <- s
                    for j in 0 .. d - 1 do df.[j].[i] <- acc.[j]
            f, df

    /// The density (continuous) or probability (discrete) of each observation at θ.
    let density (t: Trace) (theta: float[]) (data: float[]) : float[] = fst (densities t theta data false)

    let private total (f: float[]) =
        let mutable s = 0.0
        for x in f do s <- s + Math.Log x
        s

    /// Σ_i log f(x_i; θ). −∞ when some observation has density 0.
    let logLikelihood (t: Trace) (theta: float[]) (data: float[]) : float = total (density t theta data)

    /// Σ_i log f(x_i; θ) and its gradient with respect to θ (NaN entries when the
    /// log-likelihood is −∞).
    let logLikelihoodWithGradient (t: Trace) (theta: float[]) (data: float[]) : LikelihoodResult =
        let f, df = densities t theta data true
        let grad =
            df |> Array.map (fun dfj ->
                let mutable s = 0.0
                for i in 0 .. f.Length - 1 do s <- s + dfj.[i] / f.[i]
                s)
        let ll = total f
        { LogLikelihood = ll
          Gradient = (if Double.IsNegativeInfinity ll then Array.create grad.Length Double.NaN else grad) }

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
