/// Deferred self-loop renormalization (`Elimination.DeferredRenormalizations`, trace revision 3):
/// a row's renormalizations are kept as a pending scale and applied when the vertex is eliminated
/// or after a bounded number of deferrals. The oracle is the same elimination renormalizing at
/// once (deferral bound 1: revision 2's arithmetic, itself checked against dense linear algebra
/// in MomentTests) and, where the rates make it well conditioned, the dense α(−S)^{−k}k!1.
module Ptd.Core.Tests.DeferredRenormalizationTests

open System
open Expecto
open Ptd.Core
open Ptd.Core.Tests.Reference

/// One strongly connected component of m transient states — a ring i → i + 1 (mod m) plus every
/// other ordered pair with probability `density` — and exits to absorption from about a third of
/// the states (state 0 always). Rates are 10^U(−decades, decades): with many decades the self-loops
/// that elimination removes are as tight as 1 − s ≈ 10^(−2·decades). Discrete models divide each
/// row by 1.25 × its total (self-loop 0.2).
let private strongComponent (seed: int) (m: int) (decades: float) (density: float) (discrete: bool) =
    let rng = Random seed
    let rate () = Math.Pow(10.0, decades * (2.0 * rng.NextDouble() - 1.0))
    let rows = Array.init m (fun _ -> Collections.Generic.List<int * float>())
    for i in 0 .. m - 1 do
        for j in 0 .. m - 1 do
            if j = (i + 1) % m || (j <> i && rng.NextDouble() < density) then rows.[i].Add((j, rate ()))
        if i = 0 || rng.NextDouble() < 0.33 then rows.[i].Add((m, rate ()))
    let b = GraphBuilder(1, 0, discrete)
    let states = Array.init (m + 1) (fun i -> b.FindOrCreate [| i |])
    b.AddStartEdge(states.[0], (if discrete then 1.0 else 0.5 + rng.NextDouble()))
    for i in 0 .. m - 1 do
        let total = rows.[i] |> Seq.sumBy snd
        for (j, w) in rows.[i] do
            b.AddEdge(states.[i], states.[j], (if discrete then w / (1.25 * total) else w))
    b.Build()

let private eliminateDeferring (deferred: int) (g: Graph) =
    Elimination.runDeferring deferred (FloatAlgebra()) g (Order.compute g) (g.Weights [||]) [||]

/// The float arithmetic, counting its products (how much renormalization work a bound saves).
[<Struct>]
type private CountingAlgebra(count: int ref) =
    interface IAlgebra<float> with
        member _.Zero = 0.0
        member _.Add(a, b) = (FloatAlgebra() :> IAlgebra<float>).Add(a, b)
        member _.Mul(a, b) =
            count.Value <- count.Value + 1
            (FloatAlgebra() :> IAlgebra<float>).Mul(a, b)
        member _.Inv(a) = (FloatAlgebra() :> IAlgebra<float>).Inv a
        member _.Sum(values, start, n) = (FloatAlgebra() :> IAlgebra<float>).Sum(values, start, n)

let private products (deferred: int) (g: Graph) (theta: float[]) =
    let count = ref 0
    Elimination.runDeferring deferred (CountingAlgebra count) g (Order.compute g) (g.Weights theta) [||] |> ignore
    count.Value

let private cases =
    [ for m in [ 4; 12; 30 ] do
          for decades in [ 0.5; 6.0; 12.0 ] do
              for density in [ 0.15; 1.0 ] do
                  for discrete in [ false; true ] do
                      for seed in 1 .. 3 ->
                          let name = sprintf "m=%d decades=%g density=%g discrete=%b seed=%d" m decades density discrete seed
                          name, strongComponent (seed * 7919 + m) m decades density discrete ]

[<Tests>]
let tests =
    testList "deferred renormalization" [
        test "every deferral bound gives the moments of renormalizing at once, tight self-loops included" {
            for name, g in cases do
                let ones = Rewards.ones g
                let reference = Moments.moments (eliminateDeferring 1 g) ones 3
                for deferred in [ 2; 3; Elimination.DeferredRenormalizations; Int32.MaxValue ] do
                    let ours = Moments.moments (eliminateDeferring deferred g) ones 3
                    for k in 0 .. 2 do
                        let err = relErr ours.[k] reference.[k]
                        if not (Double.IsFinite ours.[k]) || err > 1e-11 then
                            failtestf "%s, deferral bound %d: E[T^%d] = %.17g, renormalizing at once %.17g (relative error %.3g)"
                                name deferred (k + 1) ours.[k] reference.[k] err
        }

        test "the default bound agrees with the dense α(−S)^{−k}k!1 where rates span one decade" {
            for name, g in cases |> List.filter (fun (name, _) -> name.Contains "decades=0.5 ") do
                let ours = Moments.moments (Elimination.eliminate g [||]) (Rewards.ones g) 3
                let dense = Ptd.Tests.Dense.momentsUnrewarded g [||] 3
                for k in 0 .. 2 do
                    let err = relErr ours.[k] dense.[k]
                    if err > 1e-9 then failtestf "%s: E[T^%d] = %.17g, dense %.17g (relative error %.3g)" name (k + 1) ours.[k] dense.[k] err
        }

        test "deferring saves renormalization products; a row renormalized more often than the bound is renormalized for real" {
            // A complete component of 30 states: eliminating each vertex closes a self-loop on
            // every remaining one, so rows are renormalized far more than 8 times.
            let g = strongComponent 11 30 1.0 1.0 false
            let atOnce = products 1 g [||]
            let bounded = products Elimination.DeferredRenormalizations g [||]
            let never = products Int32.MaxValue g [||]
            if not (never < bounded && bounded < atOnce) then
                failtestf "products: at once %d, bound %d: %d, never renormalizing a pending row %d (expected never < bound < at once)"
                    atOnce Elimination.DeferredRenormalizations bounded never
            // the named cyclic model: most of the renormalization products go
            let r = Models.rabbits3 30
            let theta = [| 1.0; 2.0; 0.5 |]
            let before, after = products 1 r theta, products Elimination.DeferredRenormalizations r theta
            if float after > 0.8 * float before then failtestf "rabbits3 R = 30: %d products deferring, %d at once (expected ≤ 80%%)" after before
        }
    ]
