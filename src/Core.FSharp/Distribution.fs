namespace Ptd.Core

open System

/// Distribution functions of the absorption time τ (algorithms.md §5). Every function takes the
/// graph and CONCRETE edge weights (CSR order, as `g.Weights θ` returns them). The start weights
/// are normalized by their sum (α); start edges straight to an absorbing vertex form the defect
/// P(τ = 0). All loops run in vertex order, so results are deterministic.
module Distribution =

    /// Default truncation tolerance of the exact (uniformization) mode: the Poisson mass left out
    /// on each side of every time's window is below tolerance/2.
    [<Literal>]
    let defaultTolerance = 1e-12

    /// P(τ = 0): the normalized weight of the start edges that lead straight to an absorbing vertex.
    let defect (g: Graph) (weights: float[]) : float =
        let lambda = DistributionInput.rates g weights
        DistributionInput.defect g weights lambda

    /// Exact pdf and cdf of a continuous model at the given times, by uniformization:
    /// Λ = max_v λ_v, P = I + S/Λ, f(t) = Σ_k Pois(k; Λt)·α P^k s and
    /// F(t) = 1 − Σ_k Pois(k; Λt)·α P^k 1 (one minus the transient mass; F(0) = defect).
    /// Where F is below 1/2 it is computed in the equal form
    /// defect + Σ_k Pois(k; Λt)·(mass absorbed within k steps), which keeps full relative
    /// accuracy for small F. The cdf's truncated Poisson weights are renormalized to sum to 1.
    /// All times share ONE sweep of α P^k up to the truncation point of the largest time (each
    /// time's Poisson window leaves out less than `tolerance` mass), so the cost is set by the
    /// largest Λt, not by the number of times; each step is O(|V| + |E|) on the graph. Output
    /// arrays are in the caller's order. The pdf's truncation error is at most
    /// tolerance × (largest exit rate). Times must be finite and ≥ 0.
    let pdfCdfExact (g: Graph) (weights: float[]) (times: float[]) (tolerance: float) : float[] * float[] =
        DistributionInput.continuous g "pdfCdfExact"
        let lambda = DistributionInput.rates g weights
        DistributionInput.times times
        DistributionInput.tolerance tolerance
        let rate = DistributionInput.maxRate g lambda
        let chain = Chain.prepare g weights lambda rate false
        let count = times.Length
        let pdf = Array.zeroCreate count
        let cdf = Array.create count chain.Defect
        if rate > 0.0 && count > 0 then
            let windows = times |> Array.map (fun t -> Poisson.window (rate * t) tolerance)
            let mutable last = 0
            for w in windows do last <- max last (w.First + w.Weights.Length - 1)
            // One sweep: record, per step k, the density term α P^k s and the mass absorbed
            // within k steps; each time is then a Poisson-weighted sum over its own window.
            let density = Array.zeroCreate (last + 1)
            let absorbed = Array.zeroCreate (last + 1)
            let remaining = Array.zeroCreate (last + 1)
            let mutable p = Array.copy chain.Initial
            let mutable q = Array.zeroCreate chain.Count
            let mutable total = CompensatedSum()
            let invRate = 1.0 / rate
            for k in 0 .. last do
                absorbed.[k] <- total.Value
                let struct (term, mass) = Chain.step chain p q
                density.[k] <- term
                remaining.[k] <- mass
                total.Add(term * invRate)
                let swap = p
                p <- q
                q <- swap
            for i in 0 .. count - 1 do
                let w = windows.[i]
                let mutable f = 0.0
                let mutable a = 0.0
                let mutable r = 0.0
                let mutable mass = 0.0
                for j in 0 .. w.Weights.Length - 1 do
                    let wj = w.Weights.[j]
                    f <- f + wj * density.[w.First + j]
                    a <- a + wj * absorbed.[w.First + j]
                    r <- r + wj * remaining.[w.First + j]
                    mass <- mass + wj
                // The cdf is renormalized by the window's mass (1 − at most tolerance): that turns
                // its truncation error ε·A into ε·(A_tail − A_window), which vanishes where A
                // varies slowly (the exponential's cdf becomes exact) and lets F → 1. The pdf is
                // not: its terms are ≥ 0, so the plain sum is a lower bound within
                // tolerance × (largest exit rate), and exact where one term dominates.
                // Both cdf forms are equal up to rounding; each is the accurate one on its side
                // of 1/2 (small F, small 1 − F), which also keeps the cdf monotone near 1.
                pdf.[i] <- f
                let lower = chain.Defect + a / mass
                cdf.[i] <- if lower < 0.5 then lower else max 0.0 (1.0 - r / mass)
        pdf, cdf

    /// The default Euler granularity of the C library: 2·max(512, max_v λ_v), truncated to an
    /// integer as the C code stores it in an int.
    let private defaultGranularity (maxRate: float) = Math.Floor(2.0 * max 512.0 maxRate)

    /// Compatibility mode reproducing PtDAlgorithms' numbers: the Euler recursion
    /// p ← p(I + S/g); pmf_k = mass absorbed in step k; pdf(k/g) = g·pmf_k; cdf_k = defect +
    /// Σ_{j≤k} pmf_j. The index of time t is ⌊g·t⌋ computed in 32-bit float exactly as the C++
    /// wrapper does (`_pdf[granularity * (float)time]`). Index 0 reports pdf 0 (the defect is an
    /// atom, counted in the cdf). Default g = 2·max(512, max_v λ_v) (integer part), which is 1024
    /// for models with all rates ≤ 512. Error O(1/g); fails if some λ_v/g > 1.
    let pdfCdfEuler (g: Graph) (weights: float[]) (times: float[]) (granularity: float option) : float[] * float[] =
        DistributionInput.continuous g "pdfCdfEuler"
        let lambda = DistributionInput.rates g weights
        DistributionInput.times times
        let maxRate = DistributionInput.maxRate g lambda
        let gran =
            match granularity with
            | None -> defaultGranularity maxRate
            | Some x ->
                if not (Double.IsFinite x) || x <= 0.0 then
                    Fail.format "granularity = %g: it must be a positive number of steps per time unit (or None for the default)" x
                x
        for v in 1 .. g.VertexCount - 1 do
            if lambda.[v] / gran > 1.0 then
                Fail.format
                    "granularity %g is too small: vertex %d has total rate %g, so one Euler step would move more than all of its mass; use a granularity ≥ %g (or None for the default)"
                    gran v lambda.[v] lambda.[v]
        let index =
            times
            |> Array.mapi (fun i t ->
                let x = float32 gran * float32 t
                if float x >= float Poisson.maxSteps then
                    Fail.format "times[%d] = %g needs %g Euler steps at granularity %g; that is too many (at most %d)" i t (float x) gran Poisson.maxSteps
                int x)
        let last = if index.Length = 0 then 0 else Array.max index
        let chain = Chain.prepare g weights lambda gran false
        let pdfAt = Array.zeroCreate (last + 1)
        let cdfAt = Array.zeroCreate (last + 1)
        cdfAt.[0] <- chain.Defect
        let mutable p = Array.copy chain.Initial
        let mutable q = Array.zeroCreate chain.Count
        let mutable total = CompensatedSum()
        total.Add chain.Defect
        for k in 1 .. last do
            let struct (term, _) = Chain.step chain p q
            let pmf = term / gran
            pdfAt.[k] <- pmf * gran
            total.Add pmf
            cdfAt.[k] <- total.Value
            let swap = p
            p <- q
            q <- swap
        Array.map (fun k -> pdfAt.[k]) index, Array.map (fun k -> cdfAt.[k]) index

    /// Exact pmf and cdf of a discrete model at the given jump counts, by the forward recursion
    /// P(τ = k) = α T^{k−1} t (k ≥ 1), P(τ = 0) = defect. One sweep up to the largest count.
    let pmfCdf (g: Graph) (weights: float[]) (jumps: int[]) : float[] * float[] =
        DistributionInput.discrete g "pmfCdf"
        let lambda = DistributionInput.rates g weights
        if isNull jumps then Fail.withMessage "jumps must not be null"
        for i in 0 .. jumps.Length - 1 do
            if jumps.[i] < 0 then Fail.format "jumps[%d] = %d: jump counts must be ≥ 0" i jumps.[i]
        let last = if jumps.Length = 0 then 0 else Array.max jumps
        let chain = Chain.prepare g weights lambda 1.0 false
        let pmfAt = Array.zeroCreate (last + 1)
        let cdfAt = Array.zeroCreate (last + 1)
        pmfAt.[0] <- chain.Defect
        cdfAt.[0] <- chain.Defect
        let mutable p = Array.copy chain.Initial
        let mutable q = Array.zeroCreate chain.Count
        let mutable total = CompensatedSum()
        total.Add chain.Defect
        for k in 1 .. last do
            let struct (pmf, _) = Chain.step chain p q
            pmfAt.[k] <- pmf
            total.Add pmf
            cdfAt.[k] <- min 1.0 total.Value
            let swap = p
            p <- q
            q <- swap
        Array.map (fun k -> pmfAt.[k]) jumps, Array.map (fun k -> cdfAt.[k]) jumps

    /// Distribution of the state at time t, per vertex: P(X_t = v) for transient v, the mass
    /// absorbed in v by time t for absorbing v, 0 for the start vertex (it is instantaneous);
    /// the entries sum to 1. Continuous: uniformization (truncation `defaultTolerance`).
    /// Discrete: t is a step count (a non-negative integer) and the result is α T^t with the
    /// absorbed mass in the absorbing vertices.
    let stopProbabilities (g: Graph) (weights: float[]) (t: float) : float[] =
        let lambda = DistributionInput.rates g weights
        if g.IsDiscrete then
            let steps = DistributionInput.steps t
            let chain = Chain.prepare g weights lambda 1.0 true
            let mutable p = Array.copy chain.Initial
            let mutable q = Array.zeroCreate chain.Count
            for _ in 1 .. steps do
                Chain.step chain p q |> ignore<struct (float * float)>
                let swap = p
                p <- q
                q <- swap
            p
        else
            DistributionInput.time "t" t
            let rate = DistributionInput.maxRate g lambda
            let chain = Chain.prepare g weights lambda rate true
            if rate = 0.0 || t = 0.0 then Array.copy chain.Initial
            else
                let w = Poisson.window (rate * t) defaultTolerance
                // Renormalized window (as in pdfCdfExact): the entries then sum to 1.
                let mass = Array.sum w.Weights
                let result = Array.zeroCreate chain.Count
                let mutable p = Array.copy chain.Initial
                let mutable q = Array.zeroCreate chain.Count
                let last = w.First + w.Weights.Length - 1
                for k in 0 .. last do
                    if k >= w.First then
                        let wk = w.Weights.[k - w.First] / mass
                        for v in 0 .. chain.Count - 1 do result.[v] <- result.[v] + wk * p.[v]
                    if k < last then
                        Chain.step chain p q |> ignore<struct (float * float)>
                        let swap = p
                        p <- q
                        q <- swap
                result

    /// Per vertex, the expected time spent there up to t: ∫₀ᵗ P(X_s = v) ds (continuous, by
    /// uniformization with ∫₀ᵗ Pois(k; Λs) ds = P(Poisson(Λt) > k)/Λ), or the expected number of
    /// visits in the first t steps, i.e. at steps 0..t−1 (discrete; t a non-negative integer).
    /// Absorbing vertices get the time (steps) spent absorbed, so all entries sum to t; as
    /// t → ∞ the transient entries sum to E[τ].
    let accumulatedVisitingTime (g: Graph) (weights: float[]) (t: float) : float[] =
        let lambda = DistributionInput.rates g weights
        if g.IsDiscrete then
            let steps = DistributionInput.steps t
            let chain = Chain.prepare g weights lambda 1.0 true
            let result = Array.zeroCreate chain.Count
            let mutable p = Array.copy chain.Initial
            let mutable q = Array.zeroCreate chain.Count
            for k in 0 .. steps - 1 do
                for v in 0 .. chain.Count - 1 do result.[v] <- result.[v] + p.[v]
                if k < steps - 1 then
                    Chain.step chain p q |> ignore<struct (float * float)>
                    let swap = p
                    p <- q
                    q <- swap
            result
        else
            DistributionInput.time "t" t
            let rate = DistributionInput.maxRate g lambda
            let chain = Chain.prepare g weights lambda rate true
            if t = 0.0 then Array.zeroCreate chain.Count
            elif rate = 0.0 then chain.Initial |> Array.map (fun x -> x * t)
            else
                // The result is of size t = μ/Λ: scale the tolerance by min(1, μ) so that a
                // tiny t keeps its relative accuracy (P(N > 0) ≈ μ would fall below tolerance).
                let mu = rate * t
                let w = Poisson.window mu (defaultTolerance * min 1.0 mu)
                let last = w.First + w.Weights.Length - 1
                // tail.[k] = P(N > k)/Λ for N ~ Poisson(Λt), summed from the right (accurate
                // where it is small); below the window it is the whole window's mass.
                let mass = Array.sum w.Weights
                let tail = Array.zeroCreate last
                let mutable s = 0.0
                for k in last - 1 .. -1 .. 0 do
                    if k + 1 >= w.First then s <- s + w.Weights.[k + 1 - w.First]
                    tail.[k] <- s / mass / rate
                let result = Array.zeroCreate chain.Count
                let mutable p = Array.copy chain.Initial
                let mutable q = Array.zeroCreate chain.Count
                for k in 0 .. last - 1 do
                    let c = tail.[k]
                    for v in 0 .. chain.Count - 1 do result.[v] <- result.[v] + c * p.[v]
                    if k < last - 1 then
                        Chain.step chain p q |> ignore<struct (float * float)>
                        let swap = p
                        p <- q
                        q <- swap
                result
