/// The elimination order: components in topological order, a fill-reducing order inside each
/// component. The oracle for "fill-reducing" is the same elimination in plain index order inside
/// each component (the order before revision 2), built here from the components alone.
module Ptd.Core.Tests.OrderTests

open System
open Expecto
open Ptd.Core

/// The same components in the same sequence, each one's vertices by ascending index.
let indexOrder (o: VertexOrder) : VertexOrder =
    let order = Array.copy o.Order
    let mutable start = 0
    for size in o.ComponentSize do
        Array.Sort(order, start, size)
        start <- start + size
    let position = Array.zeroCreate order.Length
    order |> Array.iteri (fun p v -> position.[v] <- p)
    { o with Order = order; Position = position }

let eliminateWith (g: Graph) (o: VertexOrder) (theta: float[]) = Elimination.run (FloatAlgebra()) g o (g.Weights theta)

let relative (a: float) (b: float) = abs (a - b) / max (abs a) (abs b)

/// A complete digraph on m transient vertices, each also exiting to the absorbing vertex.
let complete (m: int) =
    let b = GraphBuilder(1, 0, false)
    let vs = Array.init m (fun i -> b.FindOrCreate [| i |])
    let out = b.FindOrCreate [| -1 |]
    b.AddStartEdge(vs.[0], 1.0)
    for i in 0 .. m - 1 do
        for j in 0 .. m - 1 do
            if i <> j then b.AddEdge(vs.[i], vs.[j], 1.0 + float ((i * 7 + j * 3) % 5))
        b.AddEdge(vs.[i], out, 0.5)
    b.Build()

/// Vertices of the component at position block [start, start + size).
let blocks (o: VertexOrder) =
    let mutable start = 0
    [ for size in o.ComponentSize do
          yield o.Order.[start .. start + size - 1]
          start <- start + size ]

[<Tests>]
let tests =
    testList "elimination order" [
        test "fill-reducing: cyclic models eliminate with far fewer commands than index order, same moments" {
            // (model, θ, the most commands the fill-reducing order may take as a share of index order's)
            for g, theta, share in
                [ Models.rabbits3 60, [| 1.0; 2.0; 4.0 |], 0.5
                  Models.rabbits 40 2.0 4.0, [||], 0.6
                  Models.twoDeme 60, [| 1.0; 0.5 |], 0.6 ] do
                let o = Order.compute g
                let fill = eliminateWith g o theta
                let plain = eliminateWith g (indexOrder o) theta
                let name = sprintf "%O" g
                Expect.isLessThan (float fill.Count) (share * float plain.Count)
                    (sprintf "%s: %d commands vs %d in index order" name fill.Count plain.Count)
                let r = Rewards.ones g
                for k, a, b in List.zip3 [ 1 .. 3 ] (List.ofArray (Moments.moments fill r 3)) (List.ofArray (Moments.moments plain r 3)) do
                    Expect.isLessThanOrEqual (relative a b) 1e-12 (sprintf "%s: moment %d %.17g vs %.17g" name k a b)
        }

        test "the order is a permutation; components stay contiguous and topologically ordered" {
            for g in [ Models.rabbits3 25; Models.twoDeme 30; Models.rabbits 12 2.0 4.0; complete 12 ] do
                let o = Order.compute g
                Expect.equal (Array.sort o.Order) [| 0 .. g.VertexCount - 1 |] "a permutation"
                for v in 0 .. g.VertexCount - 1 do
                    Expect.equal o.Order.[o.Position.[v]] v "Position inverts Order"
                let sizes = blocks o |> List.map Array.length
                Expect.equal (Array.ofList sizes) o.ComponentSize "blocks have the component sizes"
                for block in blocks o do
                    Expect.equal (block |> Array.map (fun v -> o.Component.[v]) |> Array.distinct).Length 1 "one component per block"
                for v in 0 .. g.VertexCount - 1 do
                    for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                        let t = g.Target e
                        if o.Component.[v] <> o.Component.[t] then
                            Expect.isLessThan o.Position.[v] o.Position.[t] "edges between components go forward"
        }

        test "deterministic: two builds of a model get the same order" {
            for build in [ (fun () -> Models.rabbits3 30); (fun () -> Models.twoDeme 40) ] do
                Expect.equal (Order.compute (build ())).Order (Order.compute (build ())).Order "same order"
        }

        test "a chain component is reordered; a dense one past the budget keeps index order" {
            let chain = Models.rabbits 30 2.0 4.0
            let o = Order.compute chain
            let biggest = blocks o |> List.maxBy Array.length
            Expect.equal biggest.Length 31 "the level l + r = 30"
            Expect.notEqual biggest (Array.sort biggest) "the chain is not eliminated end to end"
            // complete digraph: elimination is dense whatever the order; the symbolic work runs out
            let g = complete 200
            let o = Order.compute g
            let big = blocks o |> List.maxBy Array.length
            Expect.equal big.Length 200 "one component of 200"
            Expect.equal big (Array.sort big) "index order kept"
            let e = Moments.expectation (eliminateWith g o [||]) (Rewards.ones g)
            // exit rate 0.5 from every vertex: T ~ Exp(0.5) whatever the jumps inside
            Expect.isLessThanOrEqual (relative e 2.0) 1e-12 (sprintf "E[T] = %.17g, closed form 2" e)
        }
    ]
