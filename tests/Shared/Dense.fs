/// Dense linear algebra as an independent oracle: (α, S) straight from the graph's edges (not
/// through the core's matrix export), solved by Gaussian elimination with partial pivoting.
module Ptd.Tests.Dense

open Ptd.Core

/// Transient vertices (non-start, with out-edges) in index order, α and S (or T for discrete).
let ofGraph (g: Graph) (theta: float[]) =
    let w = g.Weights theta
    let transient = [| for v in 1 .. g.VertexCount - 1 do if g.OutDegree v > 0 then v |]
    let idx = Array.create g.VertexCount -1
    transient |> Array.iteri (fun i v -> idx.[v] <- i)
    let n = transient.Length
    let alpha = Array.zeroCreate n
    let startTotal = seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 -> w.[e] } |> Seq.sum
    for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
        let t = g.Target e
        if idx.[t] >= 0 then alpha.[idx.[t]] <- alpha.[idx.[t]] + w.[e] / startTotal
    let s = Array2D.zeroCreate n n
    for i in 0 .. n - 1 do
        let v = transient.[i]
        for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
            let t = g.Target e
            if g.IsDiscrete then
                s.[i, i] <- s.[i, i] - w.[e]
                if idx.[t] >= 0 then s.[i, idx.[t]] <- s.[i, idx.[t]] + w.[e]
            else
                s.[i, i] <- s.[i, i] - w.[e]
                if idx.[t] >= 0 then s.[i, idx.[t]] <- s.[i, idx.[t]] + w.[e]
    if g.IsDiscrete then
        // T = I + (the matrix above): diagonal 1 − λ_i
        for i in 0 .. n - 1 do s.[i, i] <- s.[i, i] + 1.0
    transient, alpha, s

/// Solves A x = b (A is copied).
let solve (a: float[,]) (b: float[]) =
    let n = b.Length
    let m = Array2D.copy a
    let x = Array.copy b
    for c in 0 .. n - 1 do
        let mutable p = c
        for r in c + 1 .. n - 1 do
            if abs m.[r, c] > abs m.[p, c] then p <- r
        if p <> c then
            for k in 0 .. n - 1 do
                let t = m.[c, k] in m.[c, k] <- m.[p, k]; m.[p, k] <- t
            let t = x.[c] in x.[c] <- x.[p]; x.[p] <- t
        for r in c + 1 .. n - 1 do
            let f = m.[r, c] / m.[c, c]
            if f <> 0.0 then
                for k in c .. n - 1 do m.[r, k] <- m.[r, k] - f * m.[c, k]
                x.[r] <- x.[r] - f * x.[c]
    for c in n - 1 .. -1 .. 0 do
        let mutable s = x.[c]
        for k in c + 1 .. n - 1 do s <- s - m.[c, k] * x.[k]
        x.[c] <- s / m.[c, c]
    x

/// −S (continuous) or I − T (discrete): the matrix whose inverse is the Green's function.
let green (g: Graph) (s: float[,]) =
    let n = Array2D.length1 s
    Array2D.init n n (fun i j ->
        if g.IsDiscrete then (if i = j then 1.0 else 0.0) - s.[i, j] else -s.[i, j])

/// Continuous: E[T^k] = k! α (−S)^{−k} 1. Discrete: factorial moments via (I − T)^{−1} are
/// converted; here we return the raw moments by the additive-functional recursion on dense
/// matrices (an independent derivation from the graph code).
let momentsUnrewarded (g: Graph) (theta: float[]) (k: int) =
    let _, alpha, s = ofGraph g theta
    let n = alpha.Length
    let a = green g s
    let dot (x: float[]) = Array.fold2 (fun acc p q -> acc + p * q) 0.0 alpha x
    if not g.IsDiscrete then
        let mutable v = Array.create n 1.0
        [| for j in 1 .. k do
               v <- solve a v
               let mutable f = 1.0
               for i in 2 .. j do f <- f * float i
               yield f * dot v |]
    else
        // E[τ(τ−1)…(τ−j+1)] = j! α T^{j−1} (I−T)^{−j} 1; convert factorial to raw moments
        // with Stirling numbers of the second kind.
        let matvec (m: float[,]) (x: float[]) = Array.init n (fun i -> Seq.sum (seq { for j in 0 .. n - 1 -> m.[i, j] * x.[j] }))
        let factorial =
            [| for j in 1 .. k do
                   let mutable v = Array.create n 1.0
                   for _ in 1 .. j do v <- solve a v
                   for _ in 1 .. j - 1 do v <- matvec s v
                   let mutable f = 1.0
                   for i in 2 .. j do f <- f * float i
                   yield f * dot v |]
        let stirling = Array2D.zeroCreate (k + 1) (k + 1)
        stirling.[0, 0] <- 1.0
        for nn in 1 .. k do
            for kk in 1 .. nn do
                stirling.[nn, kk] <- float kk * stirling.[nn - 1, kk] + stirling.[nn - 1, kk - 1]
        [| for j in 1 .. k -> Seq.sum (seq { for i in 1 .. j -> stirling.[j, i] * factorial.[i - 1] }) |]
