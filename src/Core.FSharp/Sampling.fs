namespace Ptd.Core

open System

/// Random samples of the absorption time (or of an accumulated reward) by simulating the chain
/// on the graph: continuous models spend an Exp(λ_v) holding time in each visited vertex,
/// discrete models a Geometric(λ_v) number of steps (each step counts; the start transition does
/// not), then jump along an out-edge chosen with probability weight/λ_v. Deterministic for a
/// seed (System.Random(seed), edges scanned in CSR order).
module Sampling =

    // Every vertex that can be reached must be able to reach absorption with THESE weights
    // (an edge of weight 0 does not count), otherwise a simulation would never end.
    let private checkAbsorption (g: Graph) (weights: float[]) =
        let n = g.VertexCount
        let offsets = g.Offsets
        let targets = g.Targets
        let reaches = Array.zeroCreate n
        for v in 1 .. n - 1 do
            if g.IsAbsorbing v then reaches.[v] <- true
        // Fixed-point sweeps would be O(|V|·|E|) on long chains; a reverse breadth-first
        // search is linear.
        let counts = Array.zeroCreate (n + 1)
        for v in 0 .. n - 1 do
            for e in offsets.[v] .. offsets.[v + 1] - 1 do
                if weights.[e] > 0.0 then counts.[targets.[e] + 1] <- counts.[targets.[e] + 1] + 1
        for v in 0 .. n - 1 do counts.[v + 1] <- counts.[v + 1] + counts.[v]
        let sources = Array.zeroCreate counts.[n]
        let fill = Array.copy counts
        for v in 0 .. n - 1 do
            for e in offsets.[v] .. offsets.[v + 1] - 1 do
                if weights.[e] > 0.0 then
                    let z = targets.[e]
                    sources.[fill.[z]] <- v
                    fill.[z] <- fill.[z] + 1
        let queue = Collections.Generic.Queue<int>()
        for v in 0 .. n - 1 do
            if reaches.[v] then queue.Enqueue v
        while queue.Count > 0 do
            let z = queue.Dequeue()
            for i in counts.[z] .. counts.[z + 1] - 1 do
                let u = sources.[i]
                if not reaches.[u] then
                    reaches.[u] <- true
                    queue.Enqueue u
        for v in 0 .. n - 1 do
            if not reaches.[v] then
                Fail.format
                    "with these weights no absorbing vertex is reachable from vertex %d (edges of weight 0 do not count), so a simulation could run forever; check the weights"
                    v

    // ln(1 + x) accurate for small x (.NET has no log1p).
    let private log1p (x: float) =
        let u = 1.0 + x
        if u = 1.0 then x else Math.Log u * x / (u - 1.0)

    let private run (g: Graph) (weights: float[]) (reward: float[]) (n: int) (seed: int) : float[] =
        let lambda = DistributionInput.rates g weights
        if n < 0 then Fail.format "n = %d: the number of samples must be ≥ 0" n
        checkAbsorption g weights
        let offsets = g.Offsets
        let targets = g.Targets
        let discrete = g.IsDiscrete
        let rng = Random(seed)
        // Picks the out-edge of v with probability weight/λ_v; an edge of weight 0 is never
        // chosen (the comparison is strict), and rounding at the top falls to the last
        // positive edge.
        let pick v =
            let x = rng.NextDouble() * lambda.[v]
            let mutable cum = 0.0
            let mutable chosen = -1
            let mutable lastPositive = -1
            let mutable e = offsets.[v]
            while chosen < 0 && e < offsets.[v + 1] do
                let w = weights.[e]
                if w > 0.0 then
                    lastPositive <- e
                    cum <- cum + w
                    if x < cum then chosen <- e
                e <- e + 1
            targets.[if chosen >= 0 then chosen else lastPositive]
        let result = Array.zeroCreate n
        for i in 0 .. n - 1 do
            let mutable v = pick 0
            let mutable acc = 0.0
            while offsets.[v + 1] > offsets.[v] do
                let lv = lambda.[v]
                // 1 − U lies in (0, 1]: its log is finite.
                let u = 1.0 - rng.NextDouble()
                let stay =
                    if not discrete then -Math.Log u / lv
                    elif lv >= 1.0 then 1.0
                    else 1.0 + Math.Floor(Math.Log u / log1p (-lv))
                acc <- acc + (if isNull reward then stay else reward.[v] * stay)
                v <- pick v
            result.[i] <- acc
        result

    /// n independent absorption times τ (continuous: time; discrete: number of steps, the start
    /// transition not counted, so the sample mean estimates E[τ] as Moments computes it).
    let sample (g: Graph) (weights: float[]) (n: int) (seed: int) : float[] = run g weights null n seed

    /// n independent samples of the accumulated reward Y = ∫ r(X_t) dt (continuous) or
    /// Σ_steps r(X_n) (discrete); `reward` has one finite value per vertex (index 0, the start
    /// vertex, is ignored).
    let sampleReward (g: Graph) (weights: float[]) (reward: float[]) (n: int) (seed: int) : float[] =
        Rewards.check g reward
        run g weights reward n seed
