namespace Ptd.Core

open System

/// Poisson weights for uniformization. A time t becomes a window [First, First + Weights.Length)
/// of jump counts k carrying Pois(k; μ), μ = Λt, whose two tails each hold less than
/// tolerance/2. The weight at the mode is computed in log space by Loader's saddle-point form
/// (no μ^k/k! overflow, no e^{−μ} underflow, no cancellation between μ ln μ and ln k! for large
/// μ); its neighbours follow by the ratio recursion, walking outwards, so errors only grow where
/// the weights shrink.
type internal PoissonWindow = { First: int; Weights: float[] }

module internal Poisson =

    /// Past this many jump counts the arrays of one sweep would not fit an int index.
    let maxSteps = 1 <<< 30

    // ln(n!) − ln(√(2πn) (n/e)^n) for n ≥ 1. Small n directly (the value is ~1/(12n), so the
    // absolute error of the direct form is ~1e-15); large n by the Stirling series, truncated
    // where the next term is below 1e-17 (Loader 2000, as in R's dpois).
    let private stirlingError (n: float) =
        if n <= 15.0 then
            let mutable lnFact = 0.0
            for i in 2 .. int n do lnFact <- lnFact + Math.Log(float i)
            lnFact - (n * Math.Log n - n + 0.5 * Math.Log(2.0 * Math.PI * n))
        else
            let s0 = 1.0 / 12.0
            let s1 = 1.0 / 360.0
            let s2 = 1.0 / 1260.0
            let s3 = 1.0 / 1680.0
            let s4 = 1.0 / 1188.0
            let nn = n * n
            if n > 500.0 then (s0 - s1 / nn) / n
            elif n > 80.0 then (s0 - (s1 - s2 / nn) / nn) / n
            elif n > 35.0 then (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
            else (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n

    // x ln(x/μ) + μ − x without cancellation when x ≈ μ (series in v = (x−μ)/(x+μ)).
    let private deviance (x: float) (mu: float) =
        if abs (x - mu) < 0.1 * (x + mu) then
            let v = (x - mu) / (x + mu)
            let v2 = v * v
            let mutable s = (x - mu) * v
            let mutable ej = 2.0 * x * v
            let mutable j = 1
            let mutable fin = false
            while not fin do
                ej <- ej * v2
                let s1 = s + ej / float (2 * j + 1)
                if s1 = s then fin <- true else s <- s1
                j <- j + 1
            s
        else x * Math.Log(x / mu) + mu - x

    /// log Pois(k; μ) in the same saddle-point form as `weight` (finite where the weight underflows).
    let logWeight (k: int) (mu: float) =
        if k = 0 then -mu
        else
            let x = float k
            -stirlingError x - deviance x mu - 0.5 * Math.Log(2.0 * Math.PI * x)

    /// Pois(k; μ) for one k, accurate to a few ulps for any μ > 0.
    let weight (k: int) (mu: float) =
        if k = 0 then Math.Exp(-mu)
        else
            let x = float k
            Math.Exp(-stirlingError x - deviance x mu) / Math.Sqrt(2.0 * Math.PI * x)

    /// `weight k μ` bit for bit for many μ with 0 ≤ k ≤ kMax: the factors that depend on k alone
    /// (Stirling's error term, √(2πk)) are tabulated once, which is most of the cost of a weight
    /// when one is needed per observation.
    type WeightTable(kMax: int) =
        let stirling = Array.init (kMax + 1) (fun k -> if k = 0 then 0.0 else stirlingError (float k))
        let root = Array.init (kMax + 1) (fun k -> Math.Sqrt(2.0 * Math.PI * float k))

        /// Pois(k; μ) for μ > 0, k ≤ kMax.
        member _.Weight(k: int, mu: float) =
            if k = 0 then Math.Exp(-mu)
            else Math.Exp(-stirling.[k] - deviance (float k) mu) / root.[k]

    /// The ends [lo, hi] of the window of jump counts for μ > 0 whose two tails are each below
    /// tolerance/2, and the weight at the mode (so that callers need not recompute it). Tail
    /// bounds are geometric: beyond the mode the ratio of neighbouring weights only shrinks
    /// outwards.
    let bounds (mu: float) (tolerance: float) : struct (int * int * float) =
        if mu > float maxSteps then
            Fail.format
                "Λ·t = %g needs more than %d uniformization steps; rescale time or rates (or use a smaller time)"
                mu maxSteps
        let half = tolerance / 2.0
        let mode = int (Math.Floor mu)
        let wMode = weight mode mu
        // Right end R: Σ_{j>R} w_j ≤ w_R·r/(1−r) < tol/2 with r = μ/(R+1) < 1 past the mode.
        let mutable hi = mode
        let mutable w = wMode
        let mutable go = true
        while go do
            let r = mu / float (hi + 1)
            if w * r < half * (1.0 - r) || w = 0.0 then go <- false
            else
                hi <- hi + 1
                w <- w * r
        // Left end L: Σ_{j<L} w_j ≤ w_L·ρ/(1−ρ) < tol/2 with ρ = L/μ (< 1 below the mean).
        let mutable lo = mode
        w <- wMode
        go <- mode > 0
        while go do
            let rho = float lo / mu
            if (rho < 1.0 && w * rho < half * (1.0 - rho)) || w = 0.0 then go <- false
            else
                w <- w * rho
                lo <- lo - 1
                if lo = 0 then go <- false
        struct (lo, hi, wMode)

    /// The window of jump counts for μ ≥ 0 with both tails below tolerance/2. Two passes (find
    /// the ends, then fill) so that no list grows per weight.
    let window (mu: float) (tolerance: float) : PoissonWindow =
        if mu = 0.0 then { First = 0; Weights = [| 1.0 |] }
        else
            let struct (lo, hi, wMode) = bounds mu tolerance
            let mode = int (Math.Floor mu)
            let weights = Array.zeroCreate (hi - lo + 1)
            let m = mode - lo
            weights.[m] <- wMode
            for j in m + 1 .. weights.Length - 1 do
                weights.[j] <- weights.[j - 1] * (mu / float (lo + j))
            for j in m - 1 .. -1 .. 0 do
                weights.[j] <- weights.[j + 1] * (float (lo + j + 1) / mu)
            { First = lo; Weights = weights }
