/// The independent check of every result: the first two moments of time to absorption computed from the concrete
/// graph by dense Gaussian elimination (E[T] = α(−S)⁻¹1, E[T²] = 2α(−S)⁻²1), never through a trace or the cache.
module Ptd.RemoteFaults.Tests.Oracle

open System
open Ptd.Core

/// A model of the workload and the parameters it is evaluated at.
type Case = { Name: string; Graph: Graph; Theta: float[] }

let private case name (g: Graph) =
    { Name = name; Graph = g; Theta = Array.init g.ParamLength (fun k -> 0.75 + 0.5 * float k) }

/// Distinct model structures (so distinct cache keys), all continuous, from a few to a few hundred vertices.
let workload =
    [ case "coalescent:n=5" (Models.coalescent 5 None)
      case "coalescent:n=7" (Models.coalescent 7 None)
      case "coalescent:n=9" (Models.coalescent 9 None)
      case "rabbits3:r=4" (Models.rabbits3 4)
      case "rabbits3:r=6" (Models.rabbits3 6)
      case "erlang:k=12" (Models.erlang 12 None)
      case "twodeme:n=4" (Models.twoDeme 4)
      case "twodeme:n=6" (Models.twoDeme 6) ]

let private solve (a: float[,]) (b: float[]) =
    let n = b.Length
    let m = Array2D.copy a
    let x = Array.copy b
    for c in 0 .. n - 1 do
        let mutable p = c
        for r in c + 1 .. n - 1 do
            if abs m.[r, c] > abs m.[p, c] then p <- r
        if p <> c then
            for k in 0 .. n - 1 do
                let t = m.[c, k]
                m.[c, k] <- m.[p, k]
                m.[p, k] <- t
            let t = x.[c]
            x.[c] <- x.[p]
            x.[p] <- t
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

/// [E[T]; E[T²]] by dense linear algebra on (α, S) read straight from the graph's edges.
let denseMoments (c: Case) =
    let g = c.Graph
    let w = g.Weights c.Theta
    let transient = [| for v in 1 .. g.VertexCount - 1 do if g.OutDegree v > 0 then v |]
    let idx = Array.create g.VertexCount -1
    transient |> Array.iteri (fun i v -> idx.[v] <- i)
    let n = transient.Length
    let alpha = Array.zeroCreate n
    let startTotal = seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 -> w.[e] } |> Seq.sum
    for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
        let t = g.Target e
        if idx.[t] >= 0 then alpha.[idx.[t]] <- alpha.[idx.[t]] + w.[e] / startTotal
    // −S: exit rates on the diagonal, minus the rates between transient states off it.
    let negS = Array2D.zeroCreate n n
    for i in 0 .. n - 1 do
        let v = transient.[i]
        for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
            negS.[i, i] <- negS.[i, i] + w.[e]
            let t = g.Target e
            if idx.[t] >= 0 then negS.[i, idx.[t]] <- negS.[i, idx.[t]] - w.[e]
    let x = solve negS (Array.create n 1.0)
    let y = solve negS x
    [| Array.fold2 (fun s a b -> s + a * b) 0.0 alpha x; 2.0 * Array.fold2 (fun s a b -> s + a * b) 0.0 alpha y |]

/// The moments of the same case from a trace (what the pipeline computes from a cached or recorded trace).
let traceMoments (c: Case) (t: Trace) = TraceEval.moments t c.Theta (Rewards.ones c.Graph) 2

/// Whether a trace's moments agree with the dense oracle to 1e-9 relative.
let agrees (c: Case) (t: Trace) =
    let expected = denseMoments c
    let actual = traceMoments c t
    Array.forall2 (fun (e: float) (a: float) -> Double.IsFinite a && abs (a - e) <= 1e-9 * max 1.0 (abs e)) expected actual

let expectedMoments = lazy (workload |> List.map (fun c -> c.Name, denseMoments c) |> dict)
