namespace Ptd.Core

open System

/// Rewards: one value per vertex (index 0 = start vertex, ignored), or read from a state slot.
module Rewards =

    /// All ones: the reward of plain time to absorption (or number of jumps, discrete).
    let ones (g: Graph) : float[] = Array.create g.VertexCount 1.0

    /// reward[v] = state[v][slot] (0 for the start vertex).
    let ofSlot (g: Graph) (slot: int) : float[] =
        if slot < 0 || slot >= g.StateLength then
            Fail.format "reward slot %d is out of range: states have %d slot(s) (0..%d)" slot g.StateLength (g.StateLength - 1)
        Array.init g.VertexCount (fun v -> if v = 0 then 0.0 else float g.States.[v].[slot])

    let internal check (g: Graph) (r: float[]) =
        if isNull r then Fail.withMessage "reward vector must not be null"
        if r.Length <> g.VertexCount then
            Fail.format "reward vector has %d entries but the graph has %d vertices (index 0 is the start vertex)" r.Length g.VertexCount
        for i in 0 .. r.Length - 1 do
            if not (Double.IsFinite r.[i]) then Fail.format "reward[%d] = %g is not finite" i r.[i]

/// Moments from an elimination (algorithms.md §3), with the correct continuous and discrete formulas.
module Moments =

    /// Replays the command list on x in place.
    let replayInPlace (c: CommandList<float>) (x: float[]) =
        let f = c.From
        let t = c.To
        let m = c.Mult
        for i in 0 .. f.Length - 1 do
            let a = f.[i]
            let b = t.[i]
            if a = b then x.[a] <- x.[a] * m.[i]
            else x.[a] <- x.[a] + m.[i] * x.[b]

    /// Expected accumulated reward from every vertex ("expected waiting times" for reward 1):
    /// continuous: E_v[∫ r(X_t) dt]; discrete: E_v[Σ r(X_n)] over visits (repeats count).
    let expectedWaitingTimes (c: CommandList<float>) (reward: float[]) : float[] =
        Rewards.check c.Graph reward
        let x = Array.copy reward
        replayInPlace c x
        x

    let private ewt (c: CommandList<float>) (r: float[]) =
        let x = Array.copy r
        replayInPlace c x
        x

    /// k! as a float (the moment formulas' factors; shared by every evaluator so they agree bit for bit).
    let internal factorial k =
        let mutable f = 1.0
        for i in 2 .. k do f <- f * float i
        f

    /// C(n, k) as a float, by the product formula (shared like `factorial`).
    let internal binomial n k =
        let mutable b = 1.0
        for i in 1 .. k do b <- b * float (n - k + i) / float i
        b

    /// Raw moments E[Y], E[Y²], …, E[Y^k] of the accumulated reward Y.
    let moments (c: CommandList<float>) (reward: float[]) (k: int) : float[] =
        Rewards.check c.Graph reward
        if k < 1 then Fail.format "moment order must be ≥ 1 (got %d)" k
        let n = reward.Length
        if not c.Graph.IsDiscrete then
            // E[Y^j] = j! · r_j[0], r_1 = ewt(r), r_{j+1} = ewt(r_j ⊙ r).
            let result = Array.zeroCreate k
            let mutable rj = ewt c reward
            result.[0] <- rj.[0]
            for j in 2 .. k do
                rj <- ewt c (Array.init n (fun v -> rj.[v] * reward.[v]))
                result.[j - 1] <- factorial j * rj.[0]
            result
        else
            // Discrete: Y = r(X_0) + Y' gives (I − T) m_j = b_j with
            // b_j = r^j + Σ_{i<j} C(j,i) r^{j−i} ⊙ (m_i − b_i), m_j = ewt(b_j), E[Y^j] = m_j[0].
            // For j = 2 this is 2·ewt(ewt(r)⊙r) − ewt(r⊙r) (the originals' DPH variance is wrong).
            let m = Array.zeroCreate (k + 1)
            let b = Array.zeroCreate (k + 1)
            let result = Array.zeroCreate k
            for j in 1 .. k do
                let bj = Array.init n (fun v -> Math.Pow(reward.[v], float j))
                for i in 1 .. j - 1 do
                    let coef = binomial j i
                    let mi: float[] = m.[i]
                    let bi: float[] = b.[i]
                    for v in 0 .. n - 1 do
                        bj.[v] <- bj.[v] + coef * Math.Pow(reward.[v], float (j - i)) * (mi.[v] - bi.[v])
                b.[j] <- bj
                m.[j] <- ewt c bj
                result.[j - 1] <- (m.[j]: float[]).[0]
            result

    let expectation (c: CommandList<float>) (reward: float[]) = (moments c reward 1).[0]

    let variance (c: CommandList<float>) (reward: float[]) =
        let m = moments c reward 2
        m.[1] - m.[0] * m.[0]

    /// Cov(Y1, Y2) for two rewards on the same chain.
    let covariance (c: CommandList<float>) (r1: float[]) (r2: float[]) =
        Rewards.check c.Graph r1
        Rewards.check c.Graph r2
        let n = r1.Length
        let e1 = ewt c r1
        let e2 = ewt c r2
        let a = (ewt c (Array.init n (fun v -> e1.[v] * r2.[v]))).[0]
        let b = (ewt c (Array.init n (fun v -> e2.[v] * r1.[v]))).[0]
        if not c.Graph.IsDiscrete then a + b - e1.[0] * e2.[0]
        else
            let both = ewt c (Array.init n (fun v -> r1.[v] * r2.[v]))
            a + b - both.[0] - e1.[0] * e2.[0]
