module Ptd.Core.Tests.MomentTests

open System
open Expecto
open Ptd.Core
open Ptd.Tests
open Ptd.Core.Tests.Reference

let close tol (actual: float) (expected: float) msg =
    let err = relErr actual expected
    if err > tol then failtestf "%s: got %.17g, expected %.17g (relative error %.3g > %.3g)" msg actual expected err tol

let eliminate (g: Graph) theta = Elimination.eliminate g theta

/// Σ over lineage classes: the total branch length reward Σ_i a_i.
let totalLineages (g: Graph) =
    Array.init g.VertexCount (fun v -> if v = 0 then 0.0 else float (Array.sum (g.State v)))

/// Dense oracle for rewarded moments: continuous E[Y^k] = k! α (U D_r)^{k−1} U r, U = (−S)^{−1};
/// discrete via the same recursion as the core but on dense matrices.
let denseRewardMoments (g: Graph) (theta: float[]) (reward: float[]) (k: int) =
    let vertices, alpha, s = Dense.ofGraph g theta
    let a = Dense.green g s
    let r = vertices |> Array.map (fun v -> reward.[v])
    let dot (x: float[]) = Array.fold2 (fun acc p q -> acc + p * q) 0.0 alpha x
    if not g.IsDiscrete then
        let mutable v = Dense.solve a r
        [| for j in 1 .. k do
               if j > 1 then v <- Dense.solve a (Array.map2 (*) r v)
               let mutable f = 1.0
               for i in 2 .. j do f <- f * float i
               yield f * dot v |]
    else
        // m_j = N b_j, b_j = r^j + Σ_{i<j} C(j,i) r^{j−i} (m_i − b_i), with N = (I − T)^{−1}
        let n = r.Length
        let ms = Array.zeroCreate (k + 1)
        let bs = Array.zeroCreate (k + 1)
        [| for j in 1 .. k do
               let bj = Array.init n (fun i -> Math.Pow(r.[i], float j))
               for i in 1 .. j - 1 do
                   let mutable c = 1.0
                   for q in 1 .. i do c <- c * float (j - i + q) / float q
                   for x in 0 .. n - 1 do
                       bj.[x] <- bj.[x] + c * Math.Pow(r.[x], float (j - i)) * ((ms.[i]: float[]).[x] - (bs.[i]: float[]).[x])
               bs.[j] <- bj
               ms.[j] <- Dense.solve a bj
               yield dot ms.[j] |]

[<Tests>]
let tests =
    testList "moments" [
        test "coalescent T_MRCA and total branch length match the reference table (closed forms)" {
            let table = coalescent.Value
            let tol = table.GetProperty("tolerance").GetProperty("moments_relative").GetDouble()
            for row in table.GetProperty("moments").EnumerateArray() do
                let n = row.GetProperty("n").GetInt32()
                let g = Models.coalescent n None
                let c = eliminate g [| 1.0 |]
                let ones = Rewards.ones g
                close tol (Moments.expectation c ones) (num row "E_T") (sprintf "E[T] n=%d" n)
                close tol (Moments.variance c ones) (num row "Var_T") (sprintf "Var[T] n=%d" n)
                let l = totalLineages g
                close tol (Moments.expectation c l) (num row "E_L") (sprintf "E[L] n=%d" n)
                close tol (Moments.variance c l) (num row "Var_L") (sprintf "Var[L] n=%d" n)
        }
        test "coalescent closed forms for larger n: E[T] = 2(1 − 1/n), Var[T], E[L], Var[L]" {
            for n in [ 15; 25 ] do
                let g = Models.coalescent n None
                let c = eliminate g [| 1.0 |]
                let ones = Rewards.ones g
                close 1e-12 (Moments.expectation c ones) (2.0 * (1.0 - 1.0 / float n)) "E[T]"
                let varT = Seq.sum (seq { for k in 2 .. n -> (2.0 / float (k * (k - 1))) ** 2.0 })
                close 1e-11 (Moments.variance c ones) varT "Var[T]"
                let l = totalLineages g
                close 1e-12 (Moments.expectation c l) (2.0 * Seq.sum (seq { for i in 1 .. n - 1 -> 1.0 / float i })) "E[L]"
                close 1e-11 (Moments.variance c l) (4.0 * Seq.sum (seq { for i in 1 .. n - 1 -> 1.0 / float (i * i) })) "Var[L]"
        }
        test "site frequency spectrum: E[ξ_i] = 2/i (reward = state slot i)" {
            let n = 12
            let g = Models.coalescent n None
            let c = eliminate g [| 1.0 |]
            for i in 1 .. n - 1 do
                close 1e-12 (Moments.expectation c (Rewards.ofSlot g (i - 1))) (2.0 / float i) (sprintf "SFS i=%d" i)
        }
        test "the pair-coalescence rate scales time: E[T](θ) = E[T](1)/θ" {
            let g = Models.coalescent 7 None
            let e1 = Moments.expectation (eliminate g [| 1.0 |]) (Rewards.ones g)
            let e3 = Moments.expectation (eliminate g [| 3.0 |]) (Rewards.ones g)
            close 1e-14 e3 (e1 / 3.0) "scaling"
        }
        test "Erlang and exponential moments" {
            let g = Models.erlang 4 (Some 2.5)
            let c = eliminate g [||]
            let m = Moments.moments c (Rewards.ones g) 3
            close 1e-14 m.[0] (4.0 / 2.5) "E"
            close 1e-13 (Moments.variance c (Rewards.ones g)) (4.0 / 6.25) "Var"
            close 1e-13 m.[2] (4.0 * 5.0 * 6.0 / (2.5 ** 3.0)) "E[T^3] = k(k+1)(k+2)/λ³"
            let e = Models.exponential None
            let ce = eliminate e [| 0.5 |]
            let me = Moments.moments ce (Rewards.ones e) 12
            close 1e-12 me.[11] (479001600.0 / (0.5 ** 12.0)) "E[T^12] = 12!/λ^12 (no int overflow)"
        }
        test "rabbits R=2 (cyclic) match the C library's reference values" {
            let table = rabbits.Value
            let tol = table.GetProperty("tolerance").GetProperty("moments_relative").GetDouble()
            let g = Models.rabbits 2 2.0 4.0
            let c = eliminate g [||]
            let ones = Rewards.ones g
            close tol (Moments.expectation c ones) (num table "E_T") "E[T]"
            close tol (Moments.variance c ones) (num table "Var_T") "Var[T]"
            let m = Moments.moments c ones 3
            let expected = table.GetProperty("moments_1_to_3").EnumerateArray() |> Seq.map (fun e -> e.GetDouble()) |> Array.ofSeq
            for i in 0 .. 2 do close tol m.[i] expected.[i] (sprintf "E[T^%d]" (i + 1))
            let right = Rewards.ofSlot g 1
            let rr = table.GetProperty("reward_right_island_count")
            close tol (Moments.expectation c right) (num rr "E") "E[right]"
            close tol (Moments.variance c right) (num rr "Var") "Var[right]"
            close tol (Moments.covariance c (Rewards.ofSlot g 0) right) (num table "covariance_left_count_right_count") "Cov"
        }
        test "rabbits3 at θ = (1, 2, 4) gives the exact E[T] = 0.508305647840531 (phasic's trace gives 0.4538)" {
            let table = rabbits.Value.GetProperty("parameterized_theta_1_2_4")
            let g = Models.rabbits3 2
            let c = eliminate g [| 1.0; 2.0; 4.0 |]
            close 1e-12 (Moments.expectation c (Rewards.ones g)) (num table "E_T") "E[T]"
            close 1e-12 (Moments.variance c (Rewards.ones g)) (num table "Var_T") "Var[T]"
        }
        test "two-deme structured coalescent: E[T] = 2/c from one deme, 2/c + 1/(2m) from two" {
            let g = Models.twoDeme 2
            for (coal, mig) in [ (1.0, 0.5); (0.7, 3.0); (2.0, 0.01) ] do
                let c = eliminate g [| coal; mig |]
                let x = Moments.expectedWaitingTimes c (Rewards.ones g)
                close 1e-12 x.[0] (2.0 / coal) "same deme"
                let split = g.States |> Array.findIndex (fun s -> s.Length = 2 && s.[0] = 1 && s.[1] = 1)
                close 1e-12 x.[split] (2.0 / coal + 1.0 / (2.0 * mig)) "different demes"
        }
        test "the paper's worked example: T_C = 16" {
            // rows A, B, C: S = [[−1, .6, 0], [0, −1, .5], [1, 0, −1]], r = (5, 2, 5)
            let b = GraphBuilder(1, 0, false)
            let a = b.FindOrCreate [| 0 |]
            let bb = b.FindOrCreate [| 1 |]
            let cc = b.FindOrCreate [| 2 |]
            let z = b.FindOrCreate [| 3 |]
            b.AddStartEdge(a, 1.0)
            b.AddEdge(a, bb, 0.6)
            b.AddEdge(a, z, 0.4)
            b.AddEdge(bb, cc, 0.5)
            b.AddEdge(bb, z, 0.5)
            b.AddEdge(cc, a, 1.0)
            let g = b.Build()
            let c = eliminate g [||]
            let r = [| 0.0; 5.0; 2.0; 5.0; 0.0 |]
            let x = Moments.expectedWaitingTimes c r
            close 1e-14 x.[cc] 16.0 "T_C"
            close 1e-14 x.[a] 11.0 "T_A = 5 + .6 T_B"
            close 1e-14 x.[bb] 10.0 "T_B = 2 + .5 T_C"
        }
        test "discrete variance: the C library's m₂ − 2m₁ is wrong; ours matches the geometric law" {
            // one transient state, stay with probability 0.75: τ ~ Geometric(0.25) on {1, 2, …}
            let b = GraphBuilder(1, 0, true)
            let a = b.FindOrCreate [| 1 |]
            let z = b.FindOrCreate [| 0 |]
            b.AddStartEdge(a, 1.0)
            b.AddEdge(a, z, 0.25)
            let g = b.Build()
            let c = eliminate g [||]
            close 1e-14 (Moments.expectation c (Rewards.ones g)) 4.0 "E = 1/p"
            close 1e-14 (Moments.variance c (Rewards.ones g)) 12.0 "Var = (1 − p)/p²"
            let m = Moments.moments c (Rewards.ones g) 3
            close 1e-13 m.[2] ((6.0 - 6.0 * 0.25 + 0.25 * 0.25) / (0.25 ** 3.0)) "E[τ³] = (6 − 6p + p²)/p³"
        }
        testPropertyWithConfig RandomGraphs.config "unrewarded moments equal the dense α(−S)^{−k}k!1 (and the DPH factorial-moment formula)" <| fun (case: RandomGraphs.GraphCase) ->
            let g = case.Graph
            let c = eliminate g case.Theta
            let ours = Moments.moments c (Rewards.ones g) 4
            let dense = Dense.momentsUnrewarded g case.Theta 4
            for k in 0 .. 3 do close 1e-9 ours.[k] dense.[k] (sprintf "%s E[T^%d]" case.Description (k + 1))
        testPropertyWithConfig RandomGraphs.config "rewarded moments and covariance equal dense computations" <| fun (case: RandomGraphs.GraphCase) ->
            let g = case.Graph
            let rng = Random case.Seed
            let r1 = Array.init g.VertexCount (fun _ -> float (rng.Next(0, 4)))
            let r2 = Array.init g.VertexCount (fun _ -> float (rng.Next(0, 4)))
            let c = eliminate g case.Theta
            let ours = Moments.moments c r1 3
            let dense = denseRewardMoments g case.Theta r1 3
            // A moment that is 0 (no reward on the reachable states) comes out of the dense
            // solve as rounding noise (seen: 3.8e-16): relative error is judged above a floor of
            // 1e-12 × the largest the moment could be, max(r)^k · E[T^k].
            let timeMoments = denseRewardMoments g case.Theta (Array.create g.VertexCount 1.0) 3
            let rMax = Array.max r1
            for k in 0 .. 2 do
                let floor = 1e-12 * (rMax ** float (k + 1)) * timeMoments.[k]
                if abs (ours.[k] - dense.[k]) > 1e-9 * abs dense.[k] + floor then
                    failtestf "%s E[Y^%d]: got %.17g, expected %.17g (floor %.3g)" case.Description (k + 1) ours.[k] dense.[k] floor
            // Cov(Y1, Y2) = (Var(Y1 + Y2) − Var(Y1) − Var(Y2)) / 2, all from dense second moments
            let dvar r =
                let m = denseRewardMoments g case.Theta r 2
                m.[1] - m.[0] * m.[0]
            let expectedCov = (dvar (Array.map2 (+) r1 r2) - dvar r1 - dvar r2) / 2.0
            let cov = Moments.covariance c r1 r2
            if abs (cov - expectedCov) > 1e-9 * (1.0 + abs expectedCov) then
                failtestf "%s: Cov %.17g vs dense %.17g" case.Description cov expectedCov
        testPropertyWithConfig RandomGraphs.config "elimination is deterministic: two runs give bit-identical commands" <| fun (case: RandomGraphs.GraphCase) ->
            let a = eliminate case.Graph case.Theta
            let b = eliminate case.Graph case.Theta
            Expect.equal a.From b.From "from"
            Expect.equal a.To b.To "to"
            Expect.equal a.Mult b.Mult "multipliers"
        test "acyclic graphs give exactly |V| + |E| commands" {
            let g = Models.coalescent 9 None
            Expect.equal (eliminate g [| 1.0 |]).Count (g.VertexCount + g.EdgeCount) "|V| + |E|"
        }
        test "bad moment arguments give clear errors" {
            let g = Models.erlang 2 (Some 1.0)
            let c = eliminate g [||]
            ModelTests.throwsWith [ "moment order must be ≥ 1" ] (fun () -> Moments.moments c (Rewards.ones g) 0)
            ModelTests.throwsWith [ "reward vector has 2 entries"; "4 vertices" ] (fun () -> Moments.expectation c [| 1.0; 1.0 |])
            ModelTests.throwsWith [ "reward slot 3 is out of range" ] (fun () -> Rewards.ofSlot g 3)
        }
    ]
