/// Random small phase-type graphs for property tests: acyclic and cyclic, continuous and
/// discrete, optionally parameterized. Built through the public GraphBuilder.
module Ptd.Core.Tests.RandomGraphs

open System
open Ptd.Core
open FsCheck
open FsCheck.FSharp
open Expecto

type GraphCase =
    { Graph: Graph
      Theta: float[]
      Seed: int
      Description: string }

    override c.ToString() = c.Description

/// Builds a random graph from a seed: k transient states, one absorbing, random edges
/// (cycles when `cyclic`), every state given an exit path so absorption is certain.
let build (seed: int) (cyclic: bool) (discrete: bool) (paramLength: int) =
    let rng = Random seed
    let k = rng.Next(1, 8)
    let b = GraphBuilder(1, paramLength, discrete)
    let vertices = Array.init k (fun i -> b.FindOrCreate [| i |])
    let absorbing = b.FindOrCreate [| k |]
    // edges as (from, to, base, coef) before discrete normalization
    let edges = Collections.Generic.Dictionary<int * int, float * float[]>()
    let weight () =
        let basePart = if paramLength = 0 || rng.NextDouble() < 0.5 then 0.1 + 2.9 * rng.NextDouble() else 0.0
        let coef = Array.init paramLength (fun _ -> if rng.NextDouble() < 0.5 then rng.NextDouble() * 2.0 else 0.0)
        if basePart = 0.0 && Array.forall ((=) 0.0) coef then 0.5, coef else basePart, coef
    for i in 0 .. k - 1 do
        for j in 0 .. k - 1 do
            if i <> j && (cyclic || j > i) && rng.NextDouble() < 0.45 then edges.[(i, j)] <- weight ()
        if rng.NextDouble() < 0.4 then edges.[(i, k)] <- weight ()
    // Make sure every state reaches the absorbing state: the last state always exits, and a
    // state that cannot reach an exit gets one.
    let reaches = Array.create (k + 1) false
    reaches.[k] <- true
    let mutable changed = true
    while changed do
        changed <- false
        for KeyValue((i, j), _) in edges do
            if reaches.[j] && not reaches.[i] then
                reaches.[i] <- true
                changed <- true
    for i in 0 .. k - 1 do
        if not reaches.[i] then
            edges.[(i, k)] <- weight ()
    // start: a random distribution over the states (sometimes with a defect)
    let starts = [ for i in 0 .. k - 1 do if i = 0 || rng.NextDouble() < 0.3 then i ]
    for i in starts do b.AddStartEdge(vertices.[i], 0.2 + rng.NextDouble())
    if rng.NextDouble() < 0.2 then b.AddStartEdge(absorbing, 0.3 * rng.NextDouble() + 0.01)
    let theta = Array.init paramLength (fun _ -> 0.3 + 2.0 * rng.NextDouble())
    // discrete: scale each state's out-weights so their total at θ is in [0.3, 1)
    let scale = Array.create k 1.0
    if discrete then
        for i in 0 .. k - 1 do
            let total =
                edges
                |> Seq.filter (fun (KeyValue((a, _), _)) -> a = i)
                |> Seq.sumBy (fun (KeyValue(_, (bw, c))) -> bw + Array.fold2 (fun s x t -> s + x * t) 0.0 c theta)
            if total > 0.0 then scale.[i] <- (0.3 + 0.69 * rng.NextDouble()) / total
    for KeyValue((i, j), (bw, c)) in edges |> Seq.sortBy (fun kv -> kv.Key) do
        b.AddEdge(vertices.[i], (if j = k then absorbing else vertices.[j]), bw * scale.[i], c |> Array.map (fun x -> x * scale.[i]))
    { Graph = b.Build()
      Theta = theta
      Seed = seed
      Description = sprintf "seed=%d cyclic=%b discrete=%b params=%d k=%d" seed cyclic discrete paramLength k }

let private gen cyclic discrete =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue - 1)
        let! p = Gen.choose (0, 3)
        return build seed cyclic discrete p
    }

type Arbitraries =
    static member GraphCase() : Arbitrary<GraphCase> =
        Gen.oneof [ gen false false; gen true false; gen false true; gen true true ] |> Arb.fromGen

let config =
    { FsCheckConfig.defaultConfig with
        arbitrary = [ typeof<Arbitraries> ]
        maxTest = 200 }
