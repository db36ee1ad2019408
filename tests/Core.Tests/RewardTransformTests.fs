module Ptd.Core.Tests.RewardTransformTests

open System
open Expecto
open Ptd.Core
open Ptd.Core.Tests.Reference
open Ptd.Core.Tests.MomentTests

let defectOf (g: Graph) =
    let w = g.Weights [||]
    let total = seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 -> w.[e] } |> Seq.sum
    seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do if g.IsAbsorbing(g.Target e) then yield w.[e] } |> Seq.sum
    |> fun d -> d / total

[<Tests>]
let tests =
    testList "reward transform" [
        test "rabbits R=2, reward = rabbits on the right island (reference values)" {
            let table = rabbits.Value.GetProperty("reward_transform_right_count")
            let g = Models.rabbits 2 2.0 4.0
            let t = RewardTransform.transform g (g.Weights [||]) (Rewards.ofSlot g 1)
            Expect.equal t.VertexCount (table.GetProperty("vertices_including_start").GetInt32()) "vertices"
            let c = Elimination.eliminate t [||]
            close 1e-12 (Moments.expectation c (Rewards.ones t)) (num table "E") "E"
            close 1e-12 (Moments.variance c (Rewards.ones t)) (num table "Var") "Var"
            close 1e-12 (defectOf t) (num table "defect") "defect"
        }
        test "coalescent: transforming by the total lineage count gives the total branch length law" {
            let g = Models.coalescent 6 None
            let w = g.Weights [| 1.0 |]
            let t = RewardTransform.transform g w (totalLineages g)
            let c = Elimination.eliminate t [||]
            let hn = Seq.sum (seq { for i in 1 .. 5 -> 1.0 / float i })
            close 1e-12 (Moments.expectation c (Rewards.ones t)) (2.0 * hn) "E[L]"
            close 1e-12 (Moments.variance c (Rewards.ones t)) (4.0 * Seq.sum (seq { for i in 1 .. 5 -> 1.0 / float (i * i) })) "Var[L]"
        }
        testPropertyWithConfig RandomGraphs.config "moments of the transformed graph equal the rewarded moments (dense oracle)" <| fun (case: RandomGraphs.GraphCase) ->
            let g = case.Graph
            let rng = Random case.Seed
            let reward =
                Array.init g.VertexCount (fun _ ->
                    if g.IsDiscrete then float (rng.Next(0, 4))
                    else [| 0.0; 0.0; 0.5; 1.0; 2.5 |].[rng.Next 5])
            let w = g.Weights case.Theta
            let t = RewardTransform.transform g w reward
            let expected = denseRewardMoments g case.Theta reward 3
            let c = Elimination.eliminate t [||]
            let ours = Moments.moments c (Rewards.ones t) 3
            for k in 0 .. 2 do
                if abs (ours.[k] - expected.[k]) > 1e-9 * (1.0 + abs expected.[k]) then
                    failtestf "%s reward=%A: E[Y^%d] = %.17g after transform, dense %.17g" case.Description reward (k + 1) ours.[k] expected.[k]
        test "negative and (discrete) fractional rewards are rejected" {
            let g = Models.erlang 2 (Some 1.0)
            ModelTests.throwsWith [ "reward[1] = -1 is negative" ] (fun () ->
                RewardTransform.transform g (g.Weights [||]) [| 0.0; -1.0; 1.0; 0.0 |])
            let b = GraphBuilder(1, 0, true)
            let a = b.FindOrCreate [| 1 |]
            b.AddStartEdge(a, 1.0)
            b.AddEdge(a, b.FindOrCreate [| 0 |], 0.5)
            let d = b.Build()
            ModelTests.throwsWith [ "not an integer" ] (fun () -> RewardTransform.transform d (d.Weights [||]) [| 0.0; 1.5; 0.0 |])
        }
    ]
