/// The independent check of every result: the first two moments of time to absorption computed from the concrete
/// graph by dense Gaussian elimination (E[T] = α(−S)⁻¹1, E[T²] = 2α(−S)⁻²1), never through a trace or the cache.
module Ptd.RemoteFaults.Tests.Oracle

open System
open Ptd.Core
open Ptd.Tests

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

/// [E[T]; E[T²]] by dense linear algebra on (α, S) read straight from the graph's edges (the shared oracle of
/// tests/Shared/Dense.fs: E[T^k] = k! α (−S)^{−k} 1).
let denseMoments (c: Case) = Dense.momentsUnrewarded c.Graph c.Theta 2

/// The moments of the same case from a trace (what the pipeline computes from a cached or recorded trace).
let traceMoments (c: Case) (t: Trace) = TraceEval.moments t c.Theta (Rewards.ones c.Graph) 2

/// Whether a trace's moments agree with the dense oracle to 1e-9 relative.
let agrees (c: Case) (t: Trace) =
    let expected = denseMoments c
    let actual = traceMoments c t
    Array.forall2 (fun (e: float) (a: float) -> Double.IsFinite a && abs (a - e) <= 1e-9 * max 1.0 (abs e)) expected actual

let expectedMoments = lazy (workload |> List.map (fun c -> c.Name, denseMoments c) |> dict)
