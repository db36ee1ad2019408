/// Random graphs for the trace tests: acyclic and cyclic, continuous and discrete, with 0–3
/// parameters, built from a seed so that FsCheck can drive them and a failure can be replayed.
module Ptd.Core.Tests.TraceGraphs

open System
open FsCheck
open FsCheck.FSharp
open Ptd.Core

/// One edge of a model spec: (from, to, base, coefficients).
type EdgeSpec = { From: int; To: int; Base: float; Coef: float[] }

/// A model as plain data, so that tests can mutate one field and rebuild.
type ModelSpec =
    { Discrete: bool
      StateLength: int
      ParamCount: int
      /// States of vertices 1..n−1 (vertex 0, the start vertex, has none).
      States: int[][]
      Edges: EdgeSpec list }

let build (s: ModelSpec) : Graph =
    let b = GraphBuilder(s.StateLength, s.ParamCount, s.Discrete, DuplicateEdgePolicy.Reject)
    for st in s.States do b.FindOrCreate st |> ignore
    for e in s.Edges do b.AddEdge(e.From, e.To, e.Base, e.Coef)
    b.Build()

/// θ values used with random graphs: positive and ≤ 2, which the weight bounds below assume.
let thetaRange = 0.3, 2.0

let randomTheta (rng: Random) (p: int) =
    let lo, hi = thetaRange
    Array.init p (fun _ -> lo + (hi - lo) * rng.NextDouble())

/// A random model: transient vertices 1..m, one or two absorbing vertices after them, a forward
/// edge from every transient vertex (so absorption is certain), random extra forward edges and,
/// when cyclic, back edges. Discrete models scale each vertex so that its out-probabilities stay
/// ≤ 0.9 for every θ in `thetaRange`.
let randomSpec (seed: int) (cyclic: bool) (discrete: bool) : ModelSpec =
    let rng = Random seed
    let p = rng.Next(0, 4)
    let m = rng.Next(1, 8)
    let absorbing = rng.Next(1, 3)
    let n = m + absorbing + 1
    let weight () =
        let b = if p > 0 && rng.Next 3 = 0 then 0.0 else 0.1 + 1.9 * rng.NextDouble()
        let c = Array.init p (fun _ -> if rng.Next 2 = 0 then 0.0 else 0.1 + 1.9 * rng.NextDouble())
        if b = 0.0 && Array.forall ((=) 0.0) c then c.[rng.Next p] <- 0.5
        b, c
    let edges = ResizeArray<EdgeSpec>()
    let add f t =
        if f <> t && not (edges.Exists(fun e -> e.From = f && e.To = t)) then
            let b, c = weight ()
            edges.Add { From = f; To = t; Base = b; Coef = c }
    // start edges (α), sometimes one straight to an absorbing vertex (the defect)
    for _ in 1 .. rng.Next(1, 4) do add 0 (rng.Next(1, m + 1))
    if rng.Next 4 = 0 then add 0 (m + 1)
    for v in 1 .. m do
        add v (rng.Next(v + 1, n))
        for _ in 1 .. rng.Next(0, 3) do add v (rng.Next(v + 1, n))
        if cyclic && v > 1 then
            for _ in 1 .. rng.Next(1, 3) do add v (rng.Next(1, v))
    let edges =
        if not discrete then List.ofSeq edges
        else
            let hi = snd thetaRange
            edges
            |> Seq.groupBy (fun e -> e.From)
            |> Seq.collect (fun (v, es) ->
                let es = List.ofSeq es
                if v = 0 then es
                else
                    let maxSum = es |> List.sumBy (fun e -> e.Base + Array.sum e.Coef * hi)
                    let f = (0.3 + 0.6 * rng.NextDouble()) / maxSum
                    es |> List.map (fun e -> { e with Base = e.Base * f; Coef = e.Coef |> Array.map (fun c -> c * f) }))
            |> List.ofSeq
    let l = rng.Next(1, 3)
    { Discrete = discrete
      StateLength = l
      ParamCount = p
      States = Array.init (n - 1) (fun i -> Array.init l (fun j -> if j = 0 then i + 1 else rng.Next(-3, 4)))
      Edges = edges }

/// A graph case for FsCheck: a seed and the kind of graph.
type GraphCase =
    { Seed: int
      Cyclic: bool
      Discrete: bool }

    member c.Spec = randomSpec c.Seed c.Cyclic c.Discrete
    member c.Graph = build c.Spec
    override c.ToString() = sprintf "seed %d, %s, %s" c.Seed (if c.Cyclic then "cyclic" else "acyclic") (if c.Discrete then "discrete" else "continuous")

let genCase (cyclic: bool option) : Gen<GraphCase> =
    gen {
        let! s = Gen.choose (0, Int32.MaxValue - 1)
        let! c = Gen.elements [ true; false ]
        let! d = Gen.frequency [ 3, Gen.constant false; 1, Gen.constant true ]
        return { Seed = s; Cyclic = defaultArg cyclic c; Discrete = d }
    }

let arbCase cyclic = Arb.fromGen (genCase cyclic)

/// Relative difference with a floor for values near 0.
let rel (a: float) (b: float) = abs (a - b) / max (abs b) 1e-300

let bitsEqual (a: float[]) (b: float[]) =
    a.Length = b.Length && Array.forall2 (fun (x: float) y -> BitConverter.DoubleToInt64Bits x = BitConverter.DoubleToInt64Bits y) a b
