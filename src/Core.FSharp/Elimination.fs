namespace Ptd.Core

open System

/// The result of eliminating a graph: the reward-command list `x[From] += Mult · x[To]`
/// (From = To means `x[From] *= Mult`), in phase A/B/C order. It does not depend on the reward
/// vector: replaying it on a reward vector gives the expected accumulated reward per vertex.
type CommandList<'T> =
    { Graph: Graph
      Order: VertexOrder
      From: int[]
      To: int[]
      Mult: 'T[] }

    member c.Count = c.From.Length

/// A growable struct-of-arrays command buffer (no per-command allocation). Commands go into
/// fixed-size blocks that are copied once into exact-size arrays at the end, so a cyclic model
/// with tens of millions of commands peaks at about twice its final size instead of the ~3× of
/// a doubling array plus its trimmed copy.
type internal CommandBuffer<'T>(capacity: int) =
    let blockSize = 1 <<< 20
    let blocks = ResizeArray<int[] * int[] * 'T[]>()
    let mutable from: int[] = Array.zeroCreate (min (max capacity 16) blockSize)
    let mutable target: int[] = Array.zeroCreate from.Length
    let mutable mult: 'T[] = Array.zeroCreate from.Length
    let mutable count = 0 // in the current block
    let mutable total = 0

    member _.Emit(f: int, t: int, m: 'T) =
        if count = from.Length then
            if from.Length < blockSize then
                let grow = min blockSize (from.Length * 2)
                Array.Resize(&from, grow)
                Array.Resize(&target, grow)
                Array.Resize(&mult, grow)
            else
                blocks.Add((from, target, mult))
                from <- Array.zeroCreate blockSize
                target <- Array.zeroCreate blockSize
                mult <- Array.zeroCreate blockSize
                count <- 0
        from.[count] <- f
        target.[count] <- t
        mult.[count] <- m
        count <- count + 1
        total <- total + 1

    member _.ToArrays() =
        let f = Array.zeroCreate total
        let t = Array.zeroCreate total
        let m = Array.zeroCreate total
        let mutable at = 0
        for i in 0 .. blocks.Count - 1 do
            let bf, bt, bm = blocks.[i]
            Array.blit bf 0 f at bf.Length
            Array.blit bt 0 t at bt.Length
            Array.blit bm 0 m at bm.Length
            at <- at + bf.Length
            blocks.[i] <- (null, null, null) // let the GC reclaim copied blocks early
        Array.blit from 0 f at count
        Array.blit target 0 t at count
        Array.blit mult 0 m at count
        f, t, m

/// Gaussian elimination on the graph (algorithms.md §2), generic over the arithmetic.
module Elimination =

    /// Per-vertex transition list kept sorted by target position while eliminating a cycle.
    type private Row<'T> =
        { mutable Targets: int[]
          mutable Probs: 'T[]
          mutable Count: int }

    /// A row's self-loop renormalizations are deferred as a pending scale σ (see phase B) until
    /// this many have happened, or until the row's vertex is eliminated. Why a bound: each deferred
    /// renormalization leaves the stored row smaller by the factor 1 − s of its self-loop, so the
    /// stored entries shrink like the product of those factors; 8 keeps them far above underflow
    /// even when every loop is as tight as 1 − s = 10⁻³⁰ (a rate ratio beyond any real model),
    /// while saving most of the renormalization products (rabbits3 R = 200: 1,439,274 → 1,044,675
    /// trace ops with phase A's normalization deferred too). 1 renormalizes at once and normalizes
    /// in phase A (trace revision 2's arithmetic).
    [<Literal>]
    let DeferredRenormalizations = 8

    /// `rates`: empty, or one entry per vertex that receives λ_v, the left-to-right sum of v's
    /// weights that phase A forms anyway (absorbing vertices are left as they are) — what a
    /// recording needs as the vertex's rate op.
    let internal runDeferring<'T, 'A when 'A :> IAlgebra<'T> and 'A: struct>
        (deferred: int) (alg: 'A) (g: Graph) (order: VertexOrder) (weights: 'T[]) (rates: 'T[]) : CommandList<'T> =
        let n = g.VertexCount
        let pos = order.Position
        let offsets = g.Offsets
        let targets = g.Targets
        if weights.Length <> g.EdgeCount then
            Fail.format "internal error: %d weights for %d edges" weights.Length g.EdgeCount
        if rates.Length <> 0 && rates.Length <> n then
            Fail.format "internal error: %d rates for %d vertices" rates.Length n
        let cyclic = Array.init n (fun v -> order.ComponentSize.[order.Component.[v]] > 1)
        let buffer = CommandBuffer<'T>(n + g.EdgeCount)
        let anyCycle = cyclic |> Array.exists id
        let scale: 'T[] = if anyCycle then Array.zeroCreate n else [||]
        let pending: int[] = if anyCycle then Array.zeroCreate n else [||]

        // Phase A: scale by 1/λ_v and normalize the out-edges into transition probabilities,
        // each vertex's row sorted by target position (deterministic, never by address). A vertex
        // inside a cycle defers its normalization like a self-loop removal (phase B): its row keeps
        // the weights, σ_v = 1/λ_v is pending, and x[v] needs no scaling (x/σ_v = reward).
        let deferPhaseA = deferred > 1
        let rowT: int[] = Array.zeroCreate g.EdgeCount
        let rowP: 'T[] = Array.zeroCreate g.EdgeCount
        let sortKeys = ResizeArray<int>()
        for i in 0 .. n - 1 do
            let v = order.Order.[i]
            let e0 = offsets.[v]
            let deg = offsets.[v + 1] - e0
            if deg = 0 then
                buffer.Emit(v, v, alg.Zero)
            else
                let rate = alg.Sum(weights, e0, deg)
                if rates.Length <> 0 then rates.[v] <- rate
                let inv = alg.Inv rate
                let deferRow = deferPhaseA && cyclic.[v] && v <> 0
                if deferRow then
                    scale.[v] <- inv
                    pending.[v] <- 1
                else
                    buffer.Emit(v, v, (if v = 0 then alg.Zero else inv))
                let mutable sorted = true
                for e in e0 + 1 .. e0 + deg - 1 do
                    if pos.[targets.[e]] < pos.[targets.[e - 1]] then sorted <- false
                if sorted then
                    for e in e0 .. e0 + deg - 1 do
                        rowT.[e] <- targets.[e]
                        rowP.[e] <- (if deferRow then weights.[e] else alg.Mul(weights.[e], inv))
                else
                    sortKeys.Clear()
                    for e in e0 .. e0 + deg - 1 do sortKeys.Add e
                    sortKeys.Sort(fun a b -> compare pos.[targets.[a]] pos.[targets.[b]])
                    for j in 0 .. deg - 1 do
                        let e = sortKeys.[j]
                        rowT.[e0 + j] <- targets.[e]
                        rowP.[e0 + j] <- (if deferRow then weights.[e] else alg.Mul(weights.[e], inv))

        // Phase B: only vertices inside cycles need elimination; their rows become growable.
        let rows: Row<'T>[] = Array.zeroCreate n
        // Deferred renormalization: while pending.[u] > 0, row u stores entries S whose true
        // probabilities are σ_u·S (σ_u = scale.[u]), and x[u] holds x/σ_u. Both are consistent:
        // the parent command x[u] += σ_u·S(u,v)·x[v] becomes x[u] += S(u,v)·x[v] on x/σ_u, and
        // removing a self-loop (σ_u·S' / Σ_{c≠u} σ_u·S'(u,c)) only replaces σ_u by 1/Σ_{c≠u} S'(u,c)
        // — it leaves S and x/σ_u as they are, so it costs the sum and no product per entry.
        // The row is renormalized for real (its entries and x[u] scaled by σ_u) when the vertex is
        // eliminated, before any parent reads it, or after `deferred` deferrals.
        let parents: ResizeArray<int>[] = Array.zeroCreate n
        if anyCycle then
            for v in 0 .. n - 1 do
                if cyclic.[v] then
                    let e0 = offsets.[v]
                    let deg = offsets.[v + 1] - e0
                    rows.[v] <- { Targets = Array.sub rowT e0 deg; Probs = Array.sub rowP e0 deg; Count = deg }
                    parents.[v] <- ResizeArray<int>()
            // Initial parents: back edges u -> v (pos[u] > pos[v]), visited in position order.
            for i in 0 .. n - 1 do
                let u = order.Order.[i]
                if cyclic.[u] then
                    for e in offsets.[u] .. offsets.[u + 1] - 1 do
                        let z = targets.[e]
                        if pos.[z] < pos.[u] then parents.[z].Add u
            let mutable scratchT: int[] = Array.zeroCreate 16
            let mutable scratchP: 'T[] = Array.zeroCreate 16
            let mutable scratchQ: 'T[] = Array.zeroCreate 16
            for i in 0 .. n - 1 do
                let v = order.Order.[i]
                if cyclic.[v] then
                    let rv = rows.[v]
                    if pending.[v] > 0 then
                        // x[v] ← σ_v·(x/σ_v) and the row's true probabilities, once: its parents
                        // (and phase C) read them, and the row no longer changes.
                        let sigma = scale.[v]
                        buffer.Emit(v, v, sigma)
                        for b in 0 .. rv.Count - 1 do
                            rv.Probs.[b] <- alg.Mul(rv.Probs.[b], sigma)
                        pending.[v] <- 0
                    for u in parents.[v] do
                        let ru = rows.[u]
                        // Every target of u before v has been eliminated already, so v is first.
                        if ru.Count = 0 || ru.Targets.[0] <> v then
                            Fail.format "internal error: eliminating %d, parent %d has no edge to it" v u
                        // u's stored entry: with a pending σ_u this adds to x/σ_u (see above)
                        let p = ru.Probs.[0]
                        buffer.Emit(u, v, p)
                        let need = ru.Count - 1 + rv.Count
                        if scratchT.Length < need then
                            scratchT <- Array.zeroCreate (need * 2)
                            scratchP <- Array.zeroCreate (need * 2)
                        if scratchQ.Length < rv.Count then scratchQ <- Array.zeroCreate (rv.Count * 2)
                        // Every product p·q_b first, then the merge: the same operations as
                        // forming each product where the merge meets it, but a trace records
                        // them as one run of products sharing p (one vector loop on replay),
                        // followed by the merge's additions.
                        for b in 0 .. rv.Count - 1 do
                            scratchQ.[b] <- alg.Mul(p, rv.Probs.[b])
                        let mutable a = 1
                        let mutable b = 0
                        let mutable k = 0
                        let mutable hasLoop = false
                        let mutable loop = alg.Zero
                        while a < ru.Count || b < rv.Count do
                            let pa = if a < ru.Count then pos.[ru.Targets.[a]] else Int32.MaxValue
                            let pb = if b < rv.Count then pos.[rv.Targets.[b]] else Int32.MaxValue
                            if pa < pb then
                                scratchT.[k] <- ru.Targets.[a]
                                scratchP.[k] <- ru.Probs.[a]
                                k <- k + 1
                                a <- a + 1
                            else
                                let z = rv.Targets.[b]
                                let q = scratchQ.[b]
                                if z = u then
                                    hasLoop <- true
                                    loop <- q
                                    if pa = pb then
                                        Fail.format "internal error: vertex %d lists itself as a target" u
                                elif pa = pb then
                                    scratchT.[k] <- z
                                    scratchP.[k] <- alg.Add(ru.Probs.[a], q)
                                    k <- k + 1
                                    a <- a + 1
                                else
                                    scratchT.[k] <- z
                                    scratchP.[k] <- q
                                    k <- k + 1
                                    if pos.[z] < pos.[u] then parents.[z].Add u
                                b <- b + 1
                        ignore loop
                        if hasLoop then
                            // The self-loop s is removed by dividing by 1 − s. We divide by the sum
                            // of the remaining probabilities (equal to 1 − s in exact arithmetic)
                            // because it has no cancellation when s is close to 1. (With a pending
                            // σ_u the stored entries sum to (1 − s)/σ_u, and the new σ_u is 1/Σ.)
                            let inv = alg.Inv(alg.Sum(scratchP, 0, k))
                            if pending.[u] + 1 >= deferred then
                                buffer.Emit(u, u, inv)
                                for j in 0 .. k - 1 do
                                    scratchP.[j] <- alg.Mul(scratchP.[j], inv)
                                pending.[u] <- 0
                            else
                                scale.[u] <- inv
                                pending.[u] <- pending.[u] + 1
                        if ru.Targets.Length < k then
                            ru.Targets <- Array.zeroCreate (max k (ru.Targets.Length * 2))
                            ru.Probs <- Array.zeroCreate ru.Targets.Length
                        Array.blit scratchT 0 ru.Targets 0 k
                        Array.blit scratchP 0 ru.Probs 0 k
                        ru.Count <- k
                    parents.[v] <- null // no longer needed; frees memory early on big cycles

        // Phase C: back-substitution, last position first.
        for i in n - 1 .. -1 .. 0 do
            let v = order.Order.[i]
            if cyclic.[v] then
                let r = rows.[v]
                for j in 0 .. r.Count - 1 do
                    buffer.Emit(v, r.Targets.[j], r.Probs.[j])
            else
                for e in offsets.[v] .. offsets.[v + 1] - 1 do
                    buffer.Emit(v, rowT.[e], rowP.[e])

        let f, t, m = buffer.ToArrays()
        { Graph = g; Order = order; From = f; To = t; Mult = m }

    /// Eliminates with the arithmetic `alg` (numbers, or a recording of the operations).
    let run<'T, 'A when 'A :> IAlgebra<'T> and 'A: struct>
        (alg: 'A) (g: Graph) (order: VertexOrder) (weights: 'T[]) : CommandList<'T> =
        runDeferring DeferredRenormalizations alg g order weights [||]

    /// Eliminates a graph at concrete parameters θ (empty for an unparameterized graph).
    let eliminate (g: Graph) (theta: float[]) : CommandList<float> =
        run (FloatAlgebra()) g (Order.compute g) (g.Weights theta)
