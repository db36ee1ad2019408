/// Test targets with closed-form log densities and gradients (the truth the engine is checked against).
module Ptd.Svgd.Tests.Targets

open System
open Ptd.Host.Svgd

/// Independent normals N(mu, sigma²) in every coordinate.
type NormalTarget(dimension: int, mu: float, sigma: float) =
    let mutable calls = 0
    member _.Calls = calls
    interface ILogDensity with
        member _.Dimension = dimension
        member _.LogDensityAndGradient(theta: ReadOnlySpan<float>, logp: Span<float>, grad: Span<float>) =
            calls <- calls + 1
            for p in 0 .. logp.Length - 1 do
                let mutable s = 0.0
                for k in 0 .. dimension - 1 do
                    let z = (theta.[p * dimension + k] - mu) / sigma
                    s <- s - 0.5 * z * z - log sigma - 0.5 * log (2.0 * Math.PI)
                    grad.[p * dimension + k] <- -z / sigma
                logp.[p] <- s

/// Exponential(rate θ) data x_1..x_n: log L = n log θ − θ Σx, d/dθ = n/θ − Σx.
type ExponentialLikelihood(data: float[]) =
    let n = float data.Length
    let sum = Array.sum data
    interface ILogDensity with
        member _.Dimension = 1
        member _.LogDensityAndGradient(theta: ReadOnlySpan<float>, logp: Span<float>, grad: Span<float>) =
            for p in 0 .. logp.Length - 1 do
                let t = theta.[p]
                if t > 0.0 then
                    logp.[p] <- n * log t - t * sum
                    grad.[p] <- n / t - sum
                else
                    logp.[p] <- Double.NegativeInfinity
                    grad.[p] <- 0.0

/// A smooth d-dimensional log density with cross terms, for gradient checks: −Σ θ_k² /2 + θ_0 θ_1 sin θ_2 …
type CoupledTarget(dimension: int) =
    interface ILogDensity with
        member _.Dimension = dimension
        member _.LogDensityAndGradient(theta: ReadOnlySpan<float>, logp: Span<float>, grad: Span<float>) =
            let theta = theta.ToArray()
            for p in 0 .. logp.Length - 1 do
                let x k = theta.[p * dimension + k]
                let mutable s = 0.0
                for k in 0 .. dimension - 1 do
                    let next = x ((k + 1) % dimension)
                    s <- s - 0.25 * x k * x k + 0.3 * x k * sin next
                logp.[p] <- s
                for k in 0 .. dimension - 1 do
                    let next = x ((k + 1) % dimension)
                    let prev = x ((k + dimension - 1) % dimension)
                    grad.[p * dimension + k] <- -0.5 * x k + 0.3 * sin next + 0.3 * prev * cos (x k)

/// Moments of an Exponential(θ_0) time scaled by θ_1: E[T^k] = k! (θ_1/θ_0)^k (a toy moment model).
type ToyMoments(count: int) =
    let fact k = Seq.fold (*) 1.0 (Seq.map float [ 1..k ])
    interface IMomentModel with
        member _.Dimension = 2
        member _.MomentCount = count
        member _.MomentsAndGradient(theta: ReadOnlySpan<float>, moments: Span<float>, grad: Span<float>) =
            let particles = theta.Length / 2
            for p in 0 .. particles - 1 do
                let a, b = theta.[2 * p], theta.[2 * p + 1]
                for k in 1..count do
                    let m = fact k * (b / a) ** float k
                    let row = p * count + k - 1
                    moments.[row] <- m
                    grad.[row * 2] <- -float k * m / a
                    grad.[row * 2 + 1] <- float k * m / b

/// Deterministic N(mu, sd²) draws from the test's own generator (Box–Muller on System.Random).
let normalDraws (seed: int) (count: int) (mu: float) (sd: float) =
    let r = Random(seed)
    Array.init count (fun _ ->
        let u1 = 1.0 - r.NextDouble()
        let u2 = r.NextDouble()
        mu + sd * sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

let exponentialDraws (seed: int) (count: int) (rate: float) =
    let r = Random(seed)
    Array.init count (fun _ -> -log (1.0 - r.NextDouble()) / rate)

let mean (xs: float[]) = Array.average xs

let sd (xs: float[]) =
    let m = mean xs
    sqrt ((xs |> Array.sumBy (fun x -> (x - m) * (x - m))) / float (xs.Length - 1))

/// Central finite difference of f at x with step h.
let fd (f: float -> float) (x: float) (h: float) = (f (x + h) - f (x - h)) / (2.0 * h)

let relErr (a: float) (b: float) = abs (a - b) / max 1e-300 (max (abs a) (abs b))

/// The column of parameter k of a result's θ particles.
let column (rows: float[][]) (k: int) = rows |> Array.map (fun r -> r.[k])

/// Runs f, expects an exception of type 'E (or derived) and returns it.
let throws<'E when 'E :> exn> (f: unit -> unit) : 'E =
    try
        f ()
        failwithf "expected %s, nothing was thrown" typeof<'E>.Name
    with
    | :? 'E as e -> e
