module Ptd.Core.Tests.ModelTests

open System
open Expecto
open Ptd.Core

/// Asserts that `f` throws a PtdException whose message contains every fragment.
let throwsWith (fragments: string list) (f: unit -> 'a) =
    try
        f () |> ignore
        failtestf "expected a PtdException containing %A, got no error" fragments
    with
    | :? PtdException as ex ->
        for fr in fragments do
            Expect.stringContains ex.Message fr (sprintf "error message should mention %s" fr)

/// Partition numbers p(n) by the standard recurrence (independent of the builder).
let partitions n =
    let p = Array.zeroCreate (n + 1)
    p.[0] <- 1L
    for part in 1 .. n do
        for m in part .. n do
            p.[m] <- p.[m] + p.[m - part]
    p.[n]

[<Tests>]
let tests =
    testList "models" [
        test "coalescent has p(n) + 1 vertices" {
            for n in [ 2; 3; 5; 10; 20; 30 ] do
                let g = Models.coalescent n None
                Expect.equal (int64 g.VertexCount) (partitions n + 1L) (sprintf "n = %d" n)
            Expect.equal (Models.coalescent 10 None).VertexCount 43 "n = 10 (algorithms.md §9)"
            Expect.equal (Models.coalescent 30 None).VertexCount 5605 "n = 30 (algorithms.md §9)"
        }
        test "coalescent builds in topological order (builder numbering kept)" {
            let g = Models.coalescent 8 None
            let o = Order.compute g
            Expect.isTrue o.IsAcyclic "coalescent is acyclic"
            Expect.equal o.Order [| 0 .. g.VertexCount - 1 |] "discovery order is topological"
        }
        test "rabbits has (R+1)(R+2)/2 + 1 vertices and is cyclic" {
            for r in [ 1; 2; 5; 20 ] do
                let g = Models.rabbits r 2.0 4.0
                Expect.equal g.VertexCount ((r + 1) * (r + 2) / 2 + 1) (sprintf "R = %d" r)
                Expect.isFalse (Order.compute g).IsAcyclic "cyclic"
            let g = Models.rabbits 2 2.0 4.0
            Expect.equal g.EdgeCount 13 "R = 2 has 13 edges (rabbits.json)"
        }
        test "rabbits3 and twoDeme have their parameter counts" {
            Expect.equal (Models.rabbits3 3).ParamLength 3 "rabbits3"
            Expect.equal (Models.twoDeme 3).ParamLength 2 "twoDeme"
            Expect.equal (Models.coalescent 4 None).ParamLength 1 "coalescent"
            Expect.equal (Models.coalescent 4 (Some 1.0)).ParamLength 0 "constant coalescent"
        }
        test "the SCC order puts components in topological order and absorbing vertices last" {
            let g = Models.rabbits 4 2.0 4.0
            let o = Order.compute g
            for v in 0 .. g.VertexCount - 1 do
                for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                    let t = g.Target e
                    if o.Component.[v] <> o.Component.[t] then
                        Expect.isLessThan o.Position.[v] o.Position.[t] "edges between components go forward"
            let last = o.Order.[g.VertexCount - 1]
            Expect.isTrue (g.IsAbsorbing last) "absorbing last"
            // the rabbit SCCs are the levels l + r = k (jumps keep the total)
            Expect.equal o.ComponentCount 6 "start + the levels l + r = 4, 3, 2, 1 + the absorbing (0, 0)"
        }
        test "negative weight is rejected with the edge named" {
            let b = GraphBuilder(1, 0, false)
            let a = b.FindOrCreate [| 1 |]
            let z = b.FindOrCreate [| 0 |]
            b.AddStartEdge(a, 1.0)
            throwsWith [ "negative weight"; "1 -> 2" ] (fun () -> b.AddEdge(a, z, -1.0))
        }
        test "self-loops are rejected" {
            let b = GraphBuilder(1, 0, false)
            let a = b.FindOrCreate [| 1 |]
            throwsWith [ "self-loop"; "[1]" ] (fun () -> b.AddEdge(a, a, 1.0))
            throwsWith [ "self-loop" ] (fun () ->
                Builder.fromCallback 1 0 false [ Transition.Constant([| 1 |], 1.0) ] (fun s -> [ Transition.Constant(s, 1.0) ]))
        }
        test "duplicate edges: merged by default, rejected on request" {
            let build policy =
                let b = GraphBuilder(1, 0, false, policy)
                let a = b.FindOrCreate [| 1 |]
                let z = b.FindOrCreate [| 0 |]
                b.AddStartEdge(a, 1.0)
                b.AddEdge(a, z, 1.0)
                b.AddEdge(a, z, 3.0)
                b.Build()
            let g = build DuplicateEdgePolicy.Merge
            Expect.equal g.EdgeCount 2 "merged into one edge"
            let c = Elimination.eliminate g [||]
            Expect.floatClose Accuracy.veryHigh (Moments.expectation c (Rewards.ones g)) 0.25 "rate 1 + 3 = 4"
            throwsWith [ "duplicate edge 1 -> 2" ] (fun () -> build DuplicateEdgePolicy.Reject)
        }
        test "wrong coefficient length is rejected" {
            let b = GraphBuilder(1, 2, false)
            let a = b.FindOrCreate [| 1 |]
            let z = b.FindOrCreate [| 0 |]
            throwsWith [ "1 coefficient(s)"; "2 parameter(s)" ] (fun () -> b.AddEdge(a, z, 0.0, [| 1.0 |]))
        }
        test "a state that cannot reach absorption is rejected with its state" {
            let b = GraphBuilder(1, 0, false)
            let a = b.FindOrCreate [| 1 |]
            let c = b.FindOrCreate [| 2 |]
            let z = b.FindOrCreate [| 0 |]
            b.AddStartEdge(a, 1.0)
            b.AddEdge(a, z, 1.0)
            b.AddEdge(a, c, 1.0)
            b.AddEdge(c, b.FindOrCreate [| 3 |], 1.0)
            b.AddEdge(b.FindOrCreate [| 3 |], c, 1.0)
            throwsWith [ "no absorbing state is reachable"; "state [2]" ] (fun () -> b.Build())
        }
        test "a discrete vertex with out-probabilities above 1 is rejected" {
            let b = GraphBuilder(1, 0, true)
            let a = b.FindOrCreate [| 1 |]
            let z = b.FindOrCreate [| 0 |]
            let y = b.FindOrCreate [| 2 |]
            b.AddStartEdge(a, 1.0)
            b.AddEdge(a, z, 0.7)
            b.AddEdge(a, y, 0.6)
            b.AddEdge(y, z, 1.0)
            throwsWith [ "vertex 1"; "sum to 1.3"; "> 1" ] (fun () -> b.Build())
        }
        test "θ errors: wrong length, negative resulting weight, zero total rate" {
            let g = Models.rabbits3 2
            throwsWith [ "2 value(s)"; "3 parameter(s)" ] (fun () -> g.Weights [| 1.0; 2.0 |])
            throwsWith [ "weight -2"; "θ = [-1, 2, 4]"; "non-negative" ] (fun () -> g.Weights [| -1.0; 2.0; 4.0 |])
            let e = Models.exponential None
            throwsWith [ "sum to 0" ] (fun () -> e.Weights [| 0.0 |])
            throwsWith [ "not a finite number" ] (fun () -> e.Weights [| nan |])
        }
        test "state length mismatch is rejected" {
            let b = GraphBuilder(2, 0, false)
            throwsWith [ "length 1"; "state length is 2" ] (fun () -> b.FindOrCreate [| 1 |])
        }
        test "a callback exception is wrapped with the state it failed on" {
            throwsWith [ "callback failed on state [3]"; "boom" ] (fun () ->
                Builder.fromCallback 1 0 false [ Transition.Constant([| 3 |], 1.0) ] (fun _ -> failwith "boom"))
        }
        test "a model without start edges is rejected" {
            let b = GraphBuilder(1, 0, false)
            b.FindOrCreate [| 1 |] |> ignore
            throwsWith [ "start vertex has no out-edges" ] (fun () -> b.Build())
        }
    ]
