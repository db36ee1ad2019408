/// The vectorized window sums of the likelihood (lane groups and Poisson-convolution blocks of
/// sorted observations) against a plain reference written here from the formula
/// f(t) = Σ_k Pois(k; Λt) v_k, and the public log-likelihood's invariances (order, grouping,
/// lengths, duplicates, t = 0, far tails mixed with central data).
module Ptd.Core.Tests.LikelihoodWindowsTests

open System
open Expecto
open Ptd.Core
open Ptd.Core.Tests.TraceGradTests

/// Pois(k; μ) for k = 0 .. n − 1, from the ratio recursion with 1 at the mode, normalized by
/// the sum over every k where the weights are representable (an oracle that shares nothing with
/// the code under test: no Stirling series, no saddle point, no window).
let poissonReference (mu: float) (n: int) : float[] =
    let w = Array.zeroCreate n
    if mu = 0.0 then
        w.[0] <- 1.0
        w
    else
        let m = int (floor mu)
        let wide = Array.zeroCreate (max n (m + int (40.0 * sqrt mu) + 200))
        wide.[m] <- 1.0
        let mutable k = m
        while k + 1 < wide.Length && wide.[k] > 1e-300 do
            wide.[k + 1] <- wide.[k] * mu / float (k + 1)
            k <- k + 1
        k <- m
        while k > 0 && wide.[k] > 1e-300 do
            wide.[k - 1] <- wide.[k] * float k / mu
            k <- k - 1
        let total = Array.sum wide
        for j in 0 .. n - 1 do w.[j] <- wide.[j] / total
        w

/// A synthetic sweep table: column 0 positive and smooth (like v_k = π_k s), columns 1.. signed.
let syntheticTable (steps: int) (width: int) =
    let table = Array.zeroCreate (steps * width)
    for k in 0 .. steps - 1 do
        let x = float k
        table.[k] <- 0.6 + 0.35 * sin (x / 7.0) + 0.04 * cos (x / 2.3)
        for c in 1 .. width - 1 do table.[c * steps + k] <- sin (x / (3.0 + float c)) * (1.0 + 0.01 * x) - 0.2 * float c
    table

/// Table rows the window sums may read for μ ≤ muMax (the sweep's own sizing, as TraceLikelihood does).
let stepsFor (muMax: float) = int (muMax + 12.0 * sqrt muMax) + 60 + UniformizationBlocks.Shifts

/// sums vs Σ_k Pois(k; μ) column_c[k] over every k of the table: values to 1e-13 relative,
/// tangents to 1e-13 of Σ_k Pois(k; μ) |column_c[k]|.
let checkSums (label: string) (width: int) (mu: float[]) =
    let steps = stepsFor (if mu.Length = 0 then 0.0 else Array.max mu)
    let table = syntheticTable steps width
    let d = width - 1
    let r = UniformizationWindows.sums table width steps mu
    Expect.equal (Array.sort (Array.copy r.Order)) (Array.init mu.Length id) (label + ": the order is a permutation")
    for q in 0 .. mu.Length - 1 do
        let i = r.Order.[q]
        if q > 0 then Expect.isTrue (mu.[r.Order.[q - 1]] <= mu.[i]) (label + ": sorted order")
        // true sums = stored · e^{shift}
        let scale = exp r.Shift.[q]
        let p = poissonReference mu.[i] steps
        let expected = Array.fold2 (fun acc pk vk -> acc + pk * vk) 0.0 p table.[0 .. steps - 1]
        let got = r.Columns.[0].[q] * scale
        let err = abs (got - expected) / expected
        if not (err <= 1e-13) then
            failtestf "%s: observation %d (μ = %.17g): window sum %.17g, reference %.17g (relative error %.3g)" label i mu.[i] got expected err
        Expect.isTrue (r.LeftOut.[q] >= 0.0 && r.LeftOut.[q] < 1e-12) (sprintf "%s: observation %d: left-out mass %g" label i r.LeftOut.[q])
        for c in 1 .. d do
            let col = table.[c * steps .. c * steps + steps - 1]
            let exact = Array.fold2 (fun acc pk vk -> acc + pk * vk) 0.0 p col
            let size = Array.fold2 (fun acc pk vk -> acc + pk * abs vk) 0.0 p col
            let got = r.Columns.[c].[q] * scale
            if not (abs (got - exact) <= 1e-13 * size) then
                failtestf "%s: observation %d (μ = %.17g), column %d: %.17g, reference %.17g" label i mu.[i] c got exact

/// Observations drawn from a model at θ (seeded), as absorption times.
let draws (g: Graph) (theta: float[]) (n: int) (seed: int) = Sampling.sample g (g.Weights theta) n seed

let relClose (label: string) (tol: float) (got: float) (expected: float) =
    let err = abs (got - expected) / max (abs expected) 1e-300
    if not (err <= tol) then failtestf "%s: %.17g vs %.17g (relative error %.3g > %.3g)" label got expected err tol

let sumsTests =
    testList "window sums vs Σ_k Pois(k; μ) v_k" [
        test "dense sorted μ (blocks), value only and with 1 and 3 tangents" {
            let rng = Random 5
            let mu = Array.init 1200 (fun _ -> 50.0 + 10.0 * rng.NextDouble()) |> Array.sort
            for width in [ 1; 2; 4 ] do checkSums (sprintf "dense, width %d" width) width mu
        }

        test "sparse μ over six orders of magnitude (lane groups and lone windows), unsorted" {
            let rng = Random 6
            let mu = Array.init 301 (fun _ -> 10.0 ** (-3.0 + 5.8 * rng.NextDouble()))
            for width in [ 1; 2; 3 ] do checkSums (sprintf "sparse, width %d" width) width mu
        }

        test "groups mixing far-apart μ, μ = 0, duplicates, and every length 0 .. 9" {
            let pool = [| 0.0; 1e-6; 0.4; 3.0; 3.0; 3.0; 45.0; 300.0; 700.0; 700.0; 12.5 |]
            for n in 0 .. 9 do checkSums (sprintf "length %d" n) 2 pool.[0 .. n - 1]
            checkSums "all of them, reversed" 2 (Array.rev pool)
            checkSums "1,000 copies of one μ" 2 (Array.create 1000 81.3)
        }

        test "10,007 draws of coalescent n = 10 (the benchmark's shape: dense centre, sparse tail)" {
            let g = Models.coalescent 10 None
            let mu = draws g [| 1.0 |] 10_007 11 |> Array.map (fun t -> 45.0 * t)
            checkSums "coalescent draws" 2 mu
        }
    ]

let apiTests =
    testList "log-likelihood invariances" [
        test "unsorted = sorted (value and gradient, 1e-13), on a cyclic model with 3 parameters" {
            let g = Models.rabbits3 3
            let tr = Trace.record g |> TracePasses.optimize
            let theta = [| 0.9; 1.8; 3.5 |]
            let data = draws g theta 5003 21
            let sorted = Array.sort data
            let a = TraceLikelihood.logLikelihoodWithGradient tr theta data
            let b = TraceLikelihood.logLikelihoodWithGradient tr theta sorted
            relClose "value" 1e-13 a.LogLikelihood b.LogLikelihood
            for j in 0 .. 2 do relClose (sprintf "∂/∂θ_%d" j) 1e-13 a.Gradient.[j] b.Gradient.[j]
            Expect.equal (TraceLikelihood.logLikelihood tr theta data) a.LogLikelihood "value without the gradient: the same bits"
        }

        test "Σ over the data = Σ of one-observation calls, for lengths 0, 1, 3, 5, 10,007 (duplicates, tiny t)" {
            let g = Models.twoDeme 3
            let tr = Trace.record g |> TracePasses.optimize
            let theta = [| 1.2; 0.4 |]
            let pool = Array.append [| 1.5; 1e-9; 1.5; 1.5 |] (draws g theta 10_003 3)
            for n in [ 0; 1; 3; 5; 10_007 ] do
                let data = pool.[0 .. n - 1]
                let all = TraceLikelihood.logLikelihoodWithGradient tr theta data
                let mutable value = 0.0
                let grad = Array.zeroCreate 2
                for x in data do
                    let one = TraceLikelihood.logLikelihoodWithGradient tr theta [| x |]
                    value <- value + one.LogLikelihood
                    for j in 0 .. 1 do grad.[j] <- grad.[j] + one.Gradient.[j]
                if n = 0 then Expect.equal all.LogLikelihood 0.0 "no data: log-likelihood 0"
                else
                    relClose (sprintf "n = %d: value" n) 1e-13 all.LogLikelihood value
                    for j in 0 .. 1 do
                        let err = abs (all.Gradient.[j] - grad.[j])
                        Expect.isLessThanOrEqual err (1e-12 * (abs grad.[j] + float n)) (sprintf "n = %d: ∂/∂θ_%d" n j)
        }

        test "t = 0 among 3,000 draws: exponential, Σ log(θ e^{−θt}) in closed form (1e-13)" {
            let tr = Trace.record (Models.exponential None)
            let th = 0.7
            let data = Array.append [| 0.0; 0.0 |] (draws (Models.exponential None) [| th |] 3000 4)
            let r = TraceLikelihood.logLikelihoodWithGradient tr [| th |] data
            relClose "value" 1e-13 r.LogLikelihood (data |> Array.sumBy (fun t -> log th - th * t))
            relClose "gradient" 1e-11 r.Gradient.[0] (data |> Array.sumBy (fun t -> 1.0 / th - t))
        }

        test "Erlang(3): 4,000 central draws mixed with far-tail times = the closed form (1e-12)" {
            let g = Models.erlang 3 None
            let tr = Trace.record g |> TracePasses.optimize
            let th = 1.3
            let data = Array.concat [ draws g [| th |] 4000 8; [| 0.0; 45.0; 60.0; 80.0; 1e-7 |] ]
            let rng = Random 2
            rng.Shuffle data
            let r = TraceLikelihood.logLikelihoodWithGradient tr [| th |] data
            let logf (t: float) = if t = 0.0 then Double.NegativeInfinity else 3.0 * log th + 2.0 * log t - log 2.0 - th * t
            let positive = data |> Array.filter (fun t -> t > 0.0)
            // f(0) = 0 for Erlang(3): the value is −∞ with the documented zero gradient
            Expect.equal r.LogLikelihood Double.NegativeInfinity "t = 0 has density 0"
            let rp = TraceLikelihood.logLikelihoodWithGradient tr [| th |] positive
            relClose "value" 1e-12 rp.LogLikelihood (positive |> Array.sumBy logf)
            relClose "gradient" 1e-10 rp.Gradient.[0] (positive |> Array.sumBy (fun t -> 3.0 / th - t))
            // every observation alone agrees with the mixed call
            let dens = TraceLikelihood.density tr [| th |] positive
            for i in 0 .. positive.Length - 1 do
                let err = abs (log dens.[i] - logf positive.[i])
                Expect.isLessThanOrEqual err (1e-11 * max 1.0 (abs (logf positive.[i]))) (sprintf "log f(%g)" positive.[i])
        }

        test "a thread's reused window workspace: every result bit for bit as on a fresh thread, whatever came before" {
            // Sizes and widths up and down (4 columns with lane weights stored, 2, value only;
            // 10,007 observations, then 7, then 0), sorted and unsorted.
            let rabbits = Models.rabbits3 3
            let coal = Models.coalescent 10 None
            let two = Models.twoDeme 3
            let cases =
                [| Trace.record rabbits |> TracePasses.optimize, [| 0.9; 1.8; 3.5 |], draws rabbits [| 0.9; 1.8; 3.5 |] 5003 21
                   Trace.record coal |> TracePasses.optimize, [| 1.0 |], Array.sort (draws coal [| 1.0 |] 10_007 5)
                   Trace.record two |> TracePasses.optimize, [| 1.2; 0.4 |], draws two [| 1.2; 0.4 |] 7 9
                   Trace.record coal |> TracePasses.optimize, [| 1.3 |], [||] |]
            let run (tr, theta, data) =
                let r = TraceLikelihood.logLikelihoodWithGradient tr theta data
                Array.append [| TraceLikelihood.logLikelihood tr theta data; r.LogLikelihood |] r.Gradient
            let onThread (f: unit -> 'a) =
                let mutable result = Unchecked.defaultof<'a>
                let th = Threading.Thread(fun () -> result <- f ())
                th.Start()
                th.Join()
                result
            let fresh = cases |> Array.map (fun c -> onThread (fun () -> run c))
            let order = [| 0; 1; 2; 3; 2; 1; 0; 3; 1; 2 |]
            let reused = onThread (fun () -> order |> Array.map (fun i -> run cases.[i]))
            for k in 0 .. order.Length - 1 do
                let i = order.[k]
                Expect.equal (BitConverter.DoubleToInt64Bits reused.[k].[0]) (BitConverter.DoubleToInt64Bits fresh.[i].[0]) (sprintf "call %d (case %d): the log-likelihood" k i)
                Expect.equal reused.[k] fresh.[i] (sprintf "call %d (case %d): value and gradient" k i)
                Expect.equal reused.[k].[0] reused.[k].[1] (sprintf "case %d: with or without the gradient, the same value" i)
        }

        test "gradient of 3,000 draws = central finite differences (1e-6) on cyclic models" {
            for name, g, theta in [ "twoDeme 3", Models.twoDeme 3, [| 1.2; 0.4 |]; "rabbits3 3", Models.rabbits3 3, [| 0.9; 1.8; 3.5 |] ] do
                let tr = Trace.record g |> TracePasses.optimize
                let data = draws g theta 3000 17
                let r = TraceLikelihood.logLikelihoodWithGradient tr theta data
                checkGradient name (fun th -> TraceLikelihood.logLikelihood tr th data) theta r.Gradient (scaleOf r.LogLikelihood theta)
        }
    ]

[<Tests>]
let tests = testList "likelihood windows" [ sumsTests; apiTests ]
