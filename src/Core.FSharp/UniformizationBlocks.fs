namespace Ptd.Core

open System
open System.Numerics

/// Window sums for a BLOCK of observations whose μ = Λt lie within δ ≤ h of the smallest, μ_ref.
/// A sum of independent Poisson variables is Poisson, so Pois(k; μ_ref + δ) =
/// Σ_j Pois(j; δ) Pois(k − j; μ_ref) and, exactly,
///     f(μ_ref + δ) = Σ_k Pois(k; μ_ref + δ) v_k = Σ_j Pois(j; δ) F_j,   F_j = Σ_m Pois(m; μ_ref) v_{m+j}.
/// The F_j (j < Shifts, every column) cost one window walk with Shifts multiply-adds per step,
/// vectorized over j (the column is contiguous, so v_{m..m+Shifts−1} are plain vector loads);
/// each observation then costs at most Shifts terms instead of a whole window. Where observations are
/// dense (many within δ ≤ h), this is several times cheaper than a window per observation.
///
/// Truncation: the walk over m stops where the weights fall below half the scalar window's cut
/// (eps × the mode's weight), and h is chosen so that the dropped Poisson(δ) tail
/// Σ_{j ≥ Shifts} Pois(j; δ) is below a quarter of that cut; the Poisson mass an observation's sum
/// leaves out is bounded by the mass the m-window leaves out plus that tail (the double sum's
/// weights add up to 1), and reported per observation for the caller's "window trusted" test.
module internal UniformizationBlocks =

    /// Shifts j = 0 .. Shifts − 1. Forty: a block may then span δ ≈ 5 (μ units) instead of ≈ 0.8
    /// with twenty, so a dense sample needs about a quarter of the window walks (coalescent n = 10,
    /// 10,000 observations: 187 → 51 blocks), and each observation pays only the terms its own δ
    /// needs (see `block`), not all forty. Measured: the window sums 355 → 221 µs.
    [<Literal>]
    let Shifts = 40

    /// The walk accumulates F_j five vectors at a time, in Shifts / (5 · Count) passes.
    let private walkPasses =
        let n = Vector<float>.Count
        if Shifts % (5 * n) <> 0 then Fail.format "internal error: %d shifts are not whole passes of 5 vectors of %d" Shifts n
        Shifts / (5 * n)

    /// 1/k for k ≤ Shifts + 1.
    let private inverse = Array.init (Shifts + 2) (fun k -> if k = 0 then 0.0 else 1.0 / float k)

    /// 1/j! and log j! for j ≤ Shifts.
    let private invFactorial = Array.scan (fun acc k -> acc / float k) 1.0 [| 1 .. Shifts |]

    let private logFactorial = Array.scan (fun acc k -> acc + Math.Log(float k)) 0.0 [| 1 .. Shifts |]

    /// The widest span a block may have: δ ≤ Shifts/2 keeps 1/(1 − δ/(n + 1)) ≤ 2 in the tail
    /// bounds below for every n ≥ 2δ.
    let MaxSpan = 0.5 * float Shifts

    /// Σ_{j ≥ n} Pois(j; δ) ≤ Pois(n; δ)/(1 − δ/(n + 1)) ≤ 2 δ^n/n! for δ ≤ (n + 1)/2: the largest δ
    /// for which that bound is ≤ allowed (capped at (n + 1)/2), from logs (no overflow of n!).
    let private reach (n: int) (allowed: float) : float =
        min (0.5 * float (n + 1)) (Math.Exp((Math.Log(0.5 * allowed) + logFactorial.[n]) / float n))

    /// The widest δ a block may span so that Σ_{j ≥ Shifts} Pois(j; δ) ≤ allowed for every δ ≤ it.
    let span (allowed: float) : float = min MaxSpan (reach Shifts allowed)

    /// Per-call scratch: the weights of one walk (index m) and the F_j of one block (column c
    /// at [c·Shifts + j]).
    /// Reach.[q]: the largest δ whose first 4q terms suffice (see `block`).
    type Scratch = { Weights: float[]; F: float[]; Reach: float[] }

    let scratch (steps: int) (width: int) : Scratch =
        { Weights = Array.zeroCreate steps
          F = Array.zeroCreate (width * Shifts)
          Reach = Array.zeroCreate (Shifts / 4 + 1) }

    /// The observations at sorted positions first .. first + count − 1 (their μ in `sorted`,
    /// which has Vector<float>.Count − 1 entries of room past the last position; μ_ref = the
    /// first one's μ, every other within h ≤ `span`): for sorted position q, column c's sum WITHOUT the factor
    /// e^{−δ} at out.[c].[q], −δ at out.[width].[q] (the log of that factor), and the bound on
    /// the Poisson mass left out, in the units of the sums, at out.[width + 1].[q]; each out
    /// array needs Vector<float>.Count − 1 entries of room past the last position. `pm` = Pois(mode; μ_ref), `cut` the walk's cut. The table (column-major,
    /// `steps` rows) must reach m + Shifts − 1 for every m the walk visits; returns false when
    /// it does not (the caller then takes the observations another way).
    let block
        (table: float[]) (width: int) (steps: int) (invK: float[]) (pm: float) (cut: float)
        (sorted: float[]) (first: int) (count: int) (h: float) (sc: Scratch) (out: float[][]) : bool =
        let muRef = sorted.[first]
        let m0 = int (Math.Floor muRef)
        // m < cap keeps m + Shifts − 1 inside the table.
        let cap = steps - Shifts + 1
        if m0 >= cap then false
        else
            let w = sc.Weights
            // The m-window of μ_ref, by the scalar window's recurrences.
            w.[m0] <- pm
            let mutable p = pm
            let mutable m = m0 + 1
            while m < cap && (p >= cut || float m <= muRef) do
                // the ratio off the dependency chain: one multiply per step on it
                p <- p * (muRef * invK.[m])
                w.[m] <- p
                m <- m + 1
            let mHi = m
            let pUp = p * muRef * invK.[mHi]
            let above = if float mHi + 1.0 > muRef then pUp / (1.0 - muRef / (float mHi + 1.0)) else Double.PositiveInfinity
            p <- pm
            let invMu = 1.0 / muRef
            m <- m0 - 1
            while m >= 0 && p >= cut do
                p <- p * (float (m + 1) * invMu)
                w.[m] <- p
                m <- m - 1
            let mLo = m + 1
            let below = if m >= 0 then p * float (m + 1) * invMu / (1.0 - float m * invMu) else 0.0
            // F_j for every column: five vector accumulators over j, one broadcast weight per m.
            let n = Vector<float>.Count
            let f = sc.F
            // Unchecked reads below: 0 ≤ mLo ≤ m < mHi ≤ cap, so column c's entries
            // m .. m + Shifts − 1 lie in [c·steps, (c + 1)·steps), and w has `steps` entries.
            if mLo < 0 || mHi > cap || table.Length < width * steps || w.Length < steps then
                Fail.withMessage "internal error: a block's window does not fit the sweep table"
            for c in 0 .. width - 1 do
                for pass in 0 .. walkPasses - 1 do
                    let col = c * steps + pass * 5 * n
                    let mutable a0 = Vector<float>.Zero
                    let mutable a1 = Vector<float>.Zero
                    let mutable a2 = Vector<float>.Zero
                    let mutable a3 = Vector<float>.Zero
                    let mutable a4 = Vector<float>.Zero
                    for m in mLo .. mHi - 1 do
                        let pv = Vector<float>(Unchecked.get w m)
                        let o = col + m
                        a0 <- Vector.FusedMultiplyAdd(pv, Unchecked.load table o, a0)
                        a1 <- Vector.FusedMultiplyAdd(pv, Unchecked.load table (o + n), a1)
                        a2 <- Vector.FusedMultiplyAdd(pv, Unchecked.load table (o + 2 * n), a2)
                        a3 <- Vector.FusedMultiplyAdd(pv, Unchecked.load table (o + 3 * n), a3)
                        a4 <- Vector.FusedMultiplyAdd(pv, Unchecked.load table (o + 4 * n), a4)
                    let o = c * Shifts + pass * 5 * n
                    a0.CopyTo(f, o)
                    a1.CopyTo(f, o + n)
                    a2.CopyTo(f, o + 2 * n)
                    a3.CopyTo(f, o + 3 * n)
                    a4.CopyTo(f, o + 4 * n)
            // Each observation: Σ_j Pois(j; δ) F_j = e^{−δ} Σ_j δ^j (F_j/j!), a polynomial in δ ≥ 0,
            // with one observation per lane.
            for c in 0 .. width - 1 do
                let o = c * Shifts
                for j in 0 .. Shifts - 1 do f.[o + j] <- f.[o + j] * invFactorial.[j]
            // Σ_{j ≥ Shifts} Pois(j; δ) grows with δ (δ < Shifts), so its bound at δ = h serves
            // the whole block.
            let tail = Math.Pow(h, float Shifts) * invFactorial.[Shifts] / (1.0 - h * inverse.[Shifts + 1])
            // Most observations lie well inside the span and need fewer terms: a lane group takes
            // the first 4q, the fewest whose dropped tail at the group's largest δ is still ≤ the
            // block's tail (so the bound reported below holds for every observation). reach.[q]:
            // the largest δ for which 4q terms do.
            let quads = Shifts / 4
            let reachOf = sc.Reach
            for q in 1 .. quads do reachOf.[q] <- reach (4 * q) tail
            let mutable l0 = 0
            while l0 < count do
                // Lanes past the block read the following positions (or the padding): their
                // results land past the block and are overwritten or never read.
                let delta = Vector<float>(sorted, first + l0) - Vector<float>(muRef)
                // sorted: the group's last observation in the block has its largest δ
                let deltaMax = sorted.[first + min (l0 + n - 1) (count - 1)] - muRef
                let mutable q = 1
                while q < quads && reachOf.[q] < deltaMax do q <- q + 1
                let delta2 = delta * delta
                let delta4 = delta2 * delta2
                for c in 0 .. width - 1 do
                    // Four Horner chains in δ⁴ (coefficients j ≡ 0, 1, 2, 3 mod 4): a quarter of
                    // the latency of one chain; every term ≥ 0 for the value column, so as
                    // accurate as the sum. Unchecked: f has width·Shifts entries and
                    // c·Shifts ≤ b < b + 3 < (c + 1)·Shifts.
                    let o = c * Shifts
                    let mutable b = o + 4 * (q - 1)
                    let mutable a0 = Vector<float>(Unchecked.get f b)
                    let mutable a1 = Vector<float>(Unchecked.get f (b + 1))
                    let mutable a2 = Vector<float>(Unchecked.get f (b + 2))
                    let mutable a3 = Vector<float>(Unchecked.get f (b + 3))
                    b <- b - 4
                    while b >= o do
                        a0 <- Vector.FusedMultiplyAdd(a0, delta4, Vector<float>(Unchecked.get f b))
                        a1 <- Vector.FusedMultiplyAdd(a1, delta4, Vector<float>(Unchecked.get f (b + 1)))
                        a2 <- Vector.FusedMultiplyAdd(a2, delta4, Vector<float>(Unchecked.get f (b + 2)))
                        a3 <- Vector.FusedMultiplyAdd(a3, delta4, Vector<float>(Unchecked.get f (b + 3)))
                        b <- b - 4
                    let r = Vector.FusedMultiplyAdd(Vector.FusedMultiplyAdd(Vector.FusedMultiplyAdd(a3, delta, a2), delta, a1), delta, a0)
                    // By sorted position, whole vectors (the caller has room past the end).
                    r.CopyTo(out.[c], first + l0)
                // e^{−δ} is left to the caller, as a log-scale shift.
                (-delta).CopyTo(out.[width], first + l0)
                l0 <- l0 + n
            // The bound in the units of the sums above: s_true = s·e^{−δ} ≥ s·e^{−h}.
            let bound = (above + below + tail) * Math.Exp h
            let leftOut = out.[width + 1]
            for l in 0 .. count - 1 do leftOut.[first + l] <- bound
            true
