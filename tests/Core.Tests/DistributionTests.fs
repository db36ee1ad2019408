module Ptd.Core.Tests.DistributionTests

open System
open Expecto
open Ptd.Core
open Ptd.Tests
open Ptd.Core.Tests

// ---------------------------------------------------------------------------------------------
// Independent oracles: dense matrix exponential (scaling and squaring + Taylor) on (α, S) taken
// straight from the graph's edges by Dense.ofGraph, and closed forms.
// ---------------------------------------------------------------------------------------------

let private matmul (a: float[,]) (b: float[,]) =
    let n = Array2D.length1 a
    Array2D.init n n (fun i j ->
        let mutable s = 0.0
        for k in 0 .. n - 1 do s <- s + a.[i, k] * b.[k, j]
        s)

let private expm (a: float[,]) =
    let n = Array2D.length1 a
    let mutable norm = 0.0
    for i in 0 .. n - 1 do
        let mutable r = 0.0
        for j in 0 .. n - 1 do r <- r + abs a.[i, j]
        norm <- max norm r
    let squarings = if norm <= 0.5 then 0 else int (Math.Ceiling(Math.Log2(norm / 0.5)))
    let scale = Math.Pow(2.0, float -squarings)
    let x = Array2D.map (fun v -> v * scale) a
    let mutable result = Array2D.init n n (fun i j -> if i = j then 1.0 else 0.0)
    let mutable term = Array2D.copy result
    for k in 1 .. 30 do
        term <- Array2D.map (fun v -> v / float k) (matmul term x)
        result <- Array2D.init n n (fun i j -> result.[i, j] + term.[i, j])
    for _ in 1 .. squarings do result <- matmul result result
    result

let private rowTimes (v: float[]) (m: float[,]) =
    let n = v.Length
    Array.init n (fun j ->
        let mutable s = 0.0
        for i in 0 .. n - 1 do s <- s + v.[i] * m.[i, j]
        s)

/// α·exp(S t) on the transient vertices (Dense.ofGraph order) and the exit-rate vector s = −S·1.
let private denseState (g: Graph) (t: float) =
    let _, alpha, s = Dense.ofGraph g [||]
    let n = alpha.Length
    let exitRate = Array.init n (fun i -> -(Seq.sum (seq { for j in 0 .. n - 1 -> s.[i, j] })))
    let e = expm (Array2D.map (fun v -> v * t) s)
    rowTimes alpha e, exitRate, s, alpha

let private closeAbs tol (actual: float) (expected: float) msg =
    if not (abs (actual - expected) <= tol) then
        failtestf "%s: got %.17g, expected %.17g (|diff| %.3g > %.3g)" msg actual expected (abs (actual - expected)) tol

let private closeRel tol (actual: float) (expected: float) msg =
    if not (Reference.relErr actual expected <= tol) then
        failtestf "%s: got %.17g, expected %.17g (relative error %.3g > %.3g)" msg actual expected (Reference.relErr actual expected) tol

let private weightsOf (g: Graph) = g.Weights [||]

// ---------------------------------------------------------------------------------------------
// Small models built by hand.
// ---------------------------------------------------------------------------------------------

/// Continuous model with a defect: α = (A: 3/4, absorbing: 1/4); A ⇄ B, both exit.
let private defective () =
    let b = GraphBuilder(1, 0, false)
    let a = b.FindOrCreate [| 1 |]
    let bb = b.FindOrCreate [| 2 |]
    let abs = b.FindOrCreate [| 0 |]
    b.AddStartEdge(a, 3.0)
    b.AddStartEdge(abs, 1.0)
    b.AddEdge(a, bb, 2.0)
    b.AddEdge(a, abs, 1.0)
    b.AddEdge(bb, a, 0.5)
    b.AddEdge(bb, abs, 1.5)
    b.Build()

/// Two phases in a row with rates fast then slow: T ~ Exp(fast) + Exp(slow).
let private hypo (fast: float) (slow: float) =
    let b = GraphBuilder(1, 0, false)
    let a = b.FindOrCreate [| 2 |]
    let c = b.FindOrCreate [| 1 |]
    let z = b.FindOrCreate [| 0 |]
    b.AddStartEdge(a, 1.0)
    b.AddEdge(a, c, fast)
    b.AddEdge(c, z, slow)
    b.Build()

/// One transient state leaving with probability p per step: τ ~ Geometric(p) on {1, 2, …}.
let private geometric (p: float) =
    let b = GraphBuilder(1, 0, true)
    let a = b.FindOrCreate [| 1 |]
    let z = b.FindOrCreate [| 0 |]
    b.AddStartEdge(a, 1.0)
    b.AddEdge(a, z, p)
    b.Build()

/// A cyclic discrete model with self-loops implied (missing mass) and a defect.
let private discreteModel () =
    let b = GraphBuilder(1, 0, true)
    let s1 = b.FindOrCreate [| 1 |]
    let s2 = b.FindOrCreate [| 2 |]
    let s3 = b.FindOrCreate [| 3 |]
    let z = b.FindOrCreate [| 0 |]
    b.AddStartEdge(s1, 0.6)
    b.AddStartEdge(s2, 0.3)
    b.AddStartEdge(z, 0.1)
    b.AddEdge(s1, s2, 0.3)
    b.AddEdge(s1, z, 0.2)
    b.AddEdge(s2, s1, 0.4)
    b.AddEdge(s2, s3, 0.4)
    b.AddEdge(s3, z, 0.9)
    b.Build()

/// Random graph from a seed: m transient states, 1–2 absorbing states, weights in [0.1, 3].
/// Every state has a forward edge or an exit (so absorption is certain); `cyclic` adds back edges.
let private randomGraph (seed: int) (cyclic: bool) =
    let rng = Random(seed)
    let m = 1 + rng.Next 6
    let absorbingCount = 1 + rng.Next 2
    let b = GraphBuilder(1, 0, false)
    let states = Array.init m (fun i -> b.FindOrCreate [| i + 1 |])
    let absorbing = Array.init absorbingCount (fun i -> b.FindOrCreate [| -(i + 1) |])
    let weight () = 0.1 + 2.9 * rng.NextDouble()
    let mutable anyStart = false
    for i in 0 .. m - 1 do
        if rng.NextDouble() < 0.5 || (i = m - 1 && not anyStart) then
            b.AddStartEdge(states.[i], weight ())
            anyStart <- true
    if rng.NextDouble() < 0.3 then b.AddStartEdge(absorbing.[rng.Next absorbingCount], weight ())
    for i in 0 .. m - 1 do
        let mutable hasForward = false
        for j in i + 1 .. m - 1 do
            if rng.NextDouble() < 0.4 then
                b.AddEdge(states.[i], states.[j], weight ())
                hasForward <- true
        if not hasForward || rng.NextDouble() < 0.5 then
            b.AddEdge(states.[i], absorbing.[rng.Next absorbingCount], weight ())
        if cyclic then
            for j in 0 .. i - 1 do
                if rng.NextDouble() < 0.4 then b.AddEdge(states.[i], states.[j], weight ())
    b.Build()

let private simpson (f: float[]) (h: float) =
    // f has an odd number of points
    let mutable s = f.[0] + f.[f.Length - 1]
    for i in 1 .. f.Length - 2 do s <- s + (if i % 2 = 1 then 4.0 else 2.0) * f.[i]
    s * h / 3.0

let private throwsWith (fragment: string) (f: unit -> unit) =
    try
        f ()
        failtestf "expected a PtdException mentioning '%s', but nothing was thrown" fragment
    with
    | :? PtdException as e ->
        if not (e.Message.Contains fragment) then
            failtestf "the error message should mention '%s' but was: %s" fragment e.Message

// ---------------------------------------------------------------------------------------------

let private poissonTests =
    testList "poisson" [
        test "weights against 40-digit values (mpmath: exp(−μ + k ln μ − lgamma(k+1)))" {
            let cases =
                [ 0, 0.5, 0.60653065971263342
                  3, 0.5, 0.012636055410679863
                  870, 870.0, 0.01352411454431724
                  900, 870.0, 0.0079735535837539377
                  10300, 10000.0, 4.5647610380341998e-5
                  1000000, 1e6, 0.00039894224715624403
                  1005000, 1e6, 1.5141581028614221e-9
                  15, 15.3, 0.10213304449237836
                  40, 36.0, 0.050798818806275718 ]
            for k, mu, expected in cases do
                closeRel 1e-14 (Poisson.weight k mu) expected (sprintf "Pois(%d; %g)" k mu)
        }

        test "windows hold all but tolerance of the mass, around the mean" {
            for mu in [ 1e-9; 0.3; 1.0; 7.0; 870.0; 1e4; 1e6 ] do
                let w = Poisson.window mu 1e-12
                let mass = Array.sum w.Weights
                Expect.isLessThan (1.0 - mass) 1.01e-12 (sprintf "missing mass μ=%g" mu)
                Expect.isGreaterThan (1.0 - mass) -1e-13 (sprintf "no excess mass μ=%g" mu)
                let mean = (w.Weights |> Array.mapi (fun j x -> float (w.First + j) * x) |> Array.sum) / mass
                closeRel 1e-9 mean mu (sprintf "window mean μ=%g" mu)
            Expect.equal (Poisson.window 0.0 1e-12).Weights [| 1.0 |] "μ = 0: all mass at k = 0"
        }
    ]

let private referenceTests =
    testList "reference" [
        test "coalescent: exact and euler columns at their stated tolerances" {
            let doc = Reference.coalescent.Value
            let tol = doc.GetProperty "tolerance"
            let exactTol = Reference.num tol "exact_relative"
            let eulerTol = Reference.num tol "euler_relative"
            for row in doc.GetProperty("distribution").EnumerateArray() do
                let n = row.GetProperty("n").GetInt32()
                let t = Reference.num row "t"
                let g = Models.coalescent n None
                let w = g.Weights [| 1.0 |]
                let pdf, cdf = Distribution.pdfCdfExact g w [| t |] Distribution.defaultTolerance
                closeRel exactTol pdf.[0] (Reference.num row "exact_pdf") (sprintf "exact pdf n=%d t=%g" n t)
                closeRel exactTol cdf.[0] (Reference.num row "exact_cdf") (sprintf "exact cdf n=%d t=%g" n t)
                let epdf, ecdf = Distribution.pdfCdfEuler g w [| t |] None
                closeRel eulerTol epdf.[0] (Reference.num row "euler_g1024_pdf") (sprintf "euler pdf n=%d t=%g" n t)
                closeRel eulerTol ecdf.[0] (Reference.num row "euler_g1024_cdf") (sprintf "euler cdf n=%d t=%g" n t)
        }

        test "coalescent n=4: euler at g = 1e4 and 1e5 (euler_convergence_n4)" {
            let g = Models.coalescent 4 None
            let w = g.Weights [| 1.0 |]
            let eulerTol = Reference.num (Reference.coalescent.Value.GetProperty "tolerance") "euler_relative"
            for row in Reference.coalescent.Value.GetProperty("euler_convergence_n4").EnumerateArray() do
                let gran = Reference.num row "g"
                let t = Reference.num row "t"
                let pdf, cdf = Distribution.pdfCdfEuler g w [| t |] (Some gran)
                closeRel eulerTol pdf.[0] (Reference.num row "pdf") (sprintf "pdf g=%g t=%g" gran t)
                closeRel eulerTol cdf.[0] (Reference.num row "cdf") (sprintf "cdf g=%g t=%g" gran t)
        }

        test "rabbits R=2: exact and euler columns" {
            let doc = Reference.rabbits.Value
            let eulerTol = Reference.num (doc.GetProperty "tolerance") "euler_relative"
            let exactTol = Reference.num (Reference.coalescent.Value.GetProperty "tolerance") "exact_relative"
            let g = Models.rabbits 2 2.0 4.0
            let w = weightsOf g
            let rows = doc.GetProperty("distribution").EnumerateArray() |> Seq.toArray
            let times = rows |> Array.map (fun r -> Reference.num r "t")
            let pdf, cdf = Distribution.pdfCdfExact g w times Distribution.defaultTolerance
            let epdf, ecdf = Distribution.pdfCdfEuler g w times None
            rows |> Array.iteri (fun i row ->
                closeRel exactTol pdf.[i] (Reference.num row "exact_pdf") (sprintf "exact pdf t=%g" times.[i])
                closeRel exactTol cdf.[i] (Reference.num row "exact_cdf") (sprintf "exact cdf t=%g" times.[i])
                closeRel eulerTol epdf.[i] (Reference.num row "euler_g1024_pdf") (sprintf "euler pdf t=%g" times.[i])
                closeRel eulerTol ecdf.[i] (Reference.num row "euler_g1024_cdf") (sprintf "euler cdf t=%g" times.[i]))
        }
    ]

let private closedFormTests =
    testList "closed forms" [
        test "exponential pdf λe^{−λt} and cdf 1 − e^{−λt}" {
            let rate = 3.0
            let g = Models.exponential (Some rate)
            let times = [| 0.0; 1e-9; 0.1; 1.0; 5.0; 12.0 |]
            let pdf, cdf = Distribution.pdfCdfExact g (weightsOf g) times Distribution.defaultTolerance
            times |> Array.iteri (fun i t ->
                // the pdf's truncation error is at most tolerance × exit rate, absolutely
                closeAbs (1e-12 * rate) pdf.[i] (rate * exp (-rate * t)) (sprintf "pdf t=%g (absolute)" t)
                if t < 5.0 then closeRel 1e-13 pdf.[i] (rate * exp (-rate * t)) (sprintf "pdf t=%g" t)
                closeAbs 1e-13 cdf.[i] (1.0 - exp (-rate * t)) (sprintf "cdf t=%g" t))
        }

        test "Erlang(5, 2) pdf λ^k t^{k−1} e^{−λt}/(k−1)!" {
            let g = Models.erlang 5 (Some 2.0)
            let times = [| 0.0; 0.3; 1.0; 2.5; 4.0; 9.0 |]
            let pdf, cdf = Distribution.pdfCdfExact g (weightsOf g) times Distribution.defaultTolerance
            times |> Array.iteri (fun i t ->
                let lt = 2.0 * t
                let expected = 2.0 * Math.Pow(lt, 4.0) * exp (-lt) / 24.0
                let survival = exp (-lt) * (1.0 + lt + lt * lt / 2.0 + lt ** 3.0 / 6.0 + lt ** 4.0 / 24.0)
                closeAbs 1e-12 pdf.[i] expected (sprintf "pdf t=%g" t)
                closeAbs 1e-12 cdf.[i] (1.0 - survival) (sprintf "cdf t=%g" t))
        }

        test "large Λt (1e4 and 1e6): Exp(1e5) + Exp(1) against its closed form, no underflow" {
            let fast, slow = 1e5, 1.0
            let g = hypo fast slow
            let times = [| 0.1; 10.0; 3.0 |] // Λt = 1e4, 1e6, 3e5
            let pdf, cdf = Distribution.pdfCdfExact g (weightsOf g) times Distribution.defaultTolerance
            times |> Array.iteri (fun i t ->
                let f = fast * slow / (fast - slow) * (exp (-slow * t) - exp (-fast * t))
                let survival = (fast * exp (-slow * t) - slow * exp (-fast * t)) / (fast - slow)
                closeRel 1e-9 pdf.[i] f (sprintf "pdf t=%g" t)
                closeRel 1e-9 (1.0 - cdf.[i]) survival (sprintf "survival t=%g" t))
        }

        test "geometric pmf (1−p)^{k−1} p of a one-state discrete model" {
            let p = 0.3
            let g = geometric p
            let jumps = [| 0; 1; 2; 5; 20; 3 |]
            let pmf, cdf = Distribution.pmfCdf g (weightsOf g) jumps
            jumps |> Array.iteri (fun i k ->
                let expected = if k = 0 then 0.0 else Math.Pow(1.0 - p, float (k - 1)) * p
                closeAbs 1e-15 pmf.[i] expected (sprintf "pmf k=%d" k)
                closeAbs 1e-15 cdf.[i] (1.0 - Math.Pow(1.0 - p, float k)) (sprintf "cdf k=%d" k))
        }
    ]

let private shapeTests =
    testList "shape" [
        test "defect: cdf(0) = defect (both modes), pdf integrates to 1 − defect, cdf monotone and → 1" {
            let g = defective ()
            let w = weightsOf g
            let d = Distribution.defect g w
            closeAbs 1e-15 d 0.25 "defect"
            let h = 0.001
            let times = Array.init 40001 (fun i -> float i * h)
            let pdf, cdf = Distribution.pdfCdfExact g w times Distribution.defaultTolerance
            closeAbs 1e-15 cdf.[0] d "exact cdf(0)"
            let _, ecdf = Distribution.pdfCdfEuler g w [| 0.0 |] None
            closeAbs 1e-15 ecdf.[0] d "euler cdf(0)"
            closeAbs 1e-9 (simpson pdf h) (1.0 - d) "∫ pdf"
            for i in 1 .. cdf.Length - 1 do
                if cdf.[i] < cdf.[i - 1] then failtestf "cdf decreases at t=%g: %.17g < %.17g" times.[i] cdf.[i] cdf.[i - 1]
            closeAbs 1e-12 cdf.[cdf.Length - 1] 1.0 "cdf(40)"
            // the cdf is the integral of the pdf plus the atom
            closeAbs 1e-9 (d + simpson pdf.[0..2000] h) cdf.[2000] "cdf(2) = defect + ∫₀² pdf"
        }

        test "one sweep: unsorted and repeated times give the same values as one time at a time" {
            let g = Models.rabbits 2 2.0 4.0
            let w = weightsOf g
            let times = [| 2.0; 0.0; 0.7; 2.0; 0.1; 1.3 |]
            let pdf, cdf = Distribution.pdfCdfExact g w times Distribution.defaultTolerance
            times |> Array.iteri (fun i t ->
                let p1, c1 = Distribution.pdfCdfExact g w [| t |] Distribution.defaultTolerance
                closeAbs 1e-15 pdf.[i] p1.[0] (sprintf "pdf t=%g" t)
                closeAbs 1e-15 cdf.[i] c1.[0] (sprintf "cdf t=%g" t))
            let e, _ = Distribution.pdfCdfExact g w [||] Distribution.defaultTolerance
            Expect.isEmpty e "no times, no values"
        }

        test "euler converges to exact as the granularity grows (error O(1/g))" {
            let g = Models.coalescent 5 None
            let w = g.Weights [| 1.0 |]
            let exact, _ = Distribution.pdfCdfExact g w [| 1.0 |] Distribution.defaultTolerance
            let err gran = abs ((fst (Distribution.pdfCdfEuler g w [| 1.0 |] (Some gran))).[0] - exact.[0])
            let e1, e2 = err 1024.0, err 8192.0
            Expect.isLessThan e2 (e1 / 4.0) "8× the granularity cuts the error by about 8×"
        }
    ]

let private randomGraphTests =
    let config = { FsCheckConfig.defaultConfig with maxTest = 60 }
    testList "random graphs" [
        testPropertyWithConfig config "exact pdf and cdf equal α·exp(St)·s and 1 − α·exp(St)·1 (dense)" (fun (seed: int) (cyclic: bool) ->
            let g = randomGraph seed cyclic
            let w = weightsOf g
            let times = [| 0.0; 0.05; 0.4; 1.0; 2.7 |]
            let pdf, cdf = Distribution.pdfCdfExact g w times Distribution.defaultTolerance
            times |> Array.iteri (fun i t ->
                let state, exitRate, _, _ = denseState g t
                let f = Array.fold2 (fun acc x y -> acc + x * y) 0.0 state exitRate
                let survival = Array.sum state
                closeAbs 1e-10 pdf.[i] f (sprintf "seed %d pdf t=%g" seed t)
                closeAbs 1e-11 cdf.[i] (1.0 - survival) (sprintf "seed %d cdf t=%g" seed t)))

        testPropertyWithConfig config "stop probabilities: transient part = α·exp(St), all entries sum to 1" (fun (seed: int) (cyclic: bool) ->
            let g = randomGraph seed cyclic
            let w = weightsOf g
            let transient, _, _ = Dense.ofGraph g [||]
            for t in [ 0.0; 0.3; 1.7 ] do
                let stop = Distribution.stopProbabilities g w t
                let state, _, _, _ = denseState g t
                closeAbs 1e-11 (Array.sum stop) 1.0 (sprintf "seed %d Σ stop t=%g" seed t)
                closeAbs 0.0 stop.[0] 0.0 "start vertex"
                transient |> Array.iteri (fun i v ->
                    closeAbs 1e-11 stop.[v] state.[i] (sprintf "seed %d P(X_t = %d) t=%g" seed v t)))

        testPropertyWithConfig config "accumulated visiting time: transient part = α·S⁻¹(e^{St} − I) (dense), all sum to t" (fun (seed: int) (cyclic: bool) ->
            let g = randomGraph seed cyclic
            let w = weightsOf g
            let transient, alpha, s = Dense.ofGraph g [||]
            let n = alpha.Length
            for t in [ 0.0; 0.2; 2.5 ] do
                let acc = Distribution.accumulatedVisitingTime g w t
                closeAbs 1e-11 (Array.sum acc) t (sprintf "seed %d Σ = t (t=%g)" seed t)
                // x = α(e^{St} − I)S⁻¹  ⇔  Sᵀ xᵀ = (e^{St} − I)ᵀ αᵀ
                let state, _, _, _ = denseState g t
                let rhs = Array.init n (fun j -> state.[j] - alpha.[j])
                let st = Array2D.init n n (fun i j -> s.[j, i])
                let x = Dense.solve st rhs
                transient |> Array.iteri (fun i v ->
                    closeAbs 1e-10 acc.[v] x.[i] (sprintf "seed %d ∫P(X=%d) t=%g" seed v t)))
    ]

let private visitTests =
    testList "visits" [
        test "accumulated visiting time over transient vertices → E[T] (Moments.expectation)" {
            let g = Models.rabbits 2 2.0 4.0
            let w = weightsOf g
            let expected = Moments.expectation (Elimination.eliminate g [||]) (Rewards.ones g)
            let acc = Distribution.accumulatedVisitingTime g w 40.0
            let transientSum = Seq.sum (seq { for v in 1 .. g.VertexCount - 1 do if not (g.IsAbsorbing v) then yield acc.[v] })
            closeRel 1e-10 transientSum expected "Σ transient ∫ P(X_s = v) ds"
            closeRel 1e-12 (Array.sum acc) 40.0 "all vertices sum to t"
        }

        test "tiny t keeps relative accuracy: accumulated time ≈ α·t" {
            let g = Models.coalescent 4 None
            let w = g.Weights [| 1.0 |]
            let acc = Distribution.accumulatedVisitingTime g w 1e-9
            closeRel 1e-8 acc.[1] 1e-9 "start state"
            closeRel 1e-12 (Array.sum acc) 1e-9 "sum"
        }
    ]

let private discreteTests =
    testList "discrete" [
        test "pmf sums to 1 and its mean and second moment equal Moments.moments" {
            let g = discreteModel ()
            let w = weightsOf g
            let jumps = Array.init 400 id
            let pmf, cdf = Distribution.pmfCdf g w jumps
            closeAbs 1e-15 pmf.[0] 0.1 "pmf(0) = defect"
            closeAbs 1e-13 (Array.sum pmf) 1.0 "Σ pmf"
            closeAbs 1e-13 cdf.[399] 1.0 "cdf(399)"
            let m1 = Array.fold2 (fun acc k p -> acc + float k * p) 0.0 jumps pmf
            let m2 = Array.fold2 (fun acc k p -> acc + float k * float k * p) 0.0 jumps pmf
            let moments = Moments.moments (Elimination.eliminate g [||]) (Rewards.ones g) 2
            closeRel 1e-12 m1 moments.[0] "E[τ]"
            closeRel 1e-12 m2 moments.[1] "E[τ²]"
            let dense = Dense.momentsUnrewarded g [||] 2
            closeRel 1e-12 m1 dense.[0] "E[τ] (dense)"
            closeRel 1e-12 m2 dense.[1] "E[τ²] (dense)"
        }

        test "stop probabilities after k steps = α T^k; accumulated visits → E[τ]" {
            let g = discreteModel ()
            let w = weightsOf g
            let transient, alpha, tm = Dense.ofGraph g [||]
            let mutable state = alpha
            for k in 0 .. 6 do
                let stop = Distribution.stopProbabilities g w (float k)
                closeAbs 1e-15 (Array.sum stop) 1.0 (sprintf "Σ stop k=%d" k)
                transient |> Array.iteri (fun i v -> closeAbs 1e-15 stop.[v] state.[i] (sprintf "P(X_%d = %d)" k v))
                state <- rowTimes state tm
            let visits = Distribution.accumulatedVisitingTime g w 3.0
            closeAbs 1e-15 (Array.sum visits) 3.0 "visits in 3 steps sum to 3"
            let long = Distribution.accumulatedVisitingTime g w 2000.0
            let transientSum = transient |> Array.sumBy (fun v -> long.[v])
            closeRel 1e-12 transientSum (Moments.expectation (Elimination.eliminate g [||]) (Rewards.ones g)) "Σ visits → E[τ]"
        }
    ]

let private samplingTests =
    /// Sample mean and variance within 4 standard errors of the moments.
    let checkSample (xs: float[]) (m: float[]) what =
        let n = float xs.Length
        let mean = Array.average xs
        let var = (xs |> Array.sumBy (fun x -> (x - mean) ** 2.0)) / (n - 1.0)
        let sigma2 = m.[1] - m.[0] * m.[0]
        let mu4 = m.[3] - 4.0 * m.[0] * m.[2] + 6.0 * m.[0] * m.[0] * m.[1] - 3.0 * m.[0] ** 4.0
        let seMean = sqrt (sigma2 / n)
        let seVar = sqrt ((mu4 - sigma2 * sigma2) / n)
        if abs (mean - m.[0]) > 4.0 * seMean then
            failtestf "%s: sample mean %g vs E = %g (more than 4 SE = %g)" what mean m.[0] (4.0 * seMean)
        if abs (var - sigma2) > 4.0 * seVar then
            failtestf "%s: sample variance %g vs Var = %g (more than 4 SE = %g)" what var sigma2 (4.0 * seVar)
    testList "sampling" [
        test "continuous (rabbits): mean and variance match Moments; deterministic per seed" {
            let g = Models.rabbits 2 2.0 4.0
            let w = weightsOf g
            let xs = Sampling.sample g w 20000 42
            checkSample xs (Moments.moments (Elimination.eliminate g [||]) (Rewards.ones g) 4) "rabbits"
            Expect.sequenceEqual (Sampling.sample g w 100 42) xs.[0..99] "same seed, same samples"
            Expect.notEqual (Sampling.sample g w 100 43) xs.[0..99] "another seed, other samples"
            Expect.isEmpty (Sampling.sample g w 0 1) "n = 0"
        }

        test "continuous with defect: P(τ = 0) matches the defect" {
            let g = defective ()
            let xs = Sampling.sample g (weightsOf g) 20000 7
            let zeros = xs |> Array.filter (fun x -> x = 0.0) |> Array.length
            let p = float zeros / 20000.0
            Expect.isLessThan (abs (p - 0.25)) (4.0 * sqrt (0.25 * 0.75 / 20000.0)) "fraction of zeros"
            checkSample xs (Moments.moments (Elimination.eliminate g [||]) (Rewards.ones g) 4) "defective"
        }

        test "discrete: steps counted per visit, start transition not counted" {
            let g = discreteModel ()
            let xs = Sampling.sample g (weightsOf g) 20000 3
            Expect.isTrue (xs |> Array.forall (fun x -> x = Math.Floor x)) "integer step counts"
            checkSample xs (Moments.moments (Elimination.eliminate g [||]) (Rewards.ones g) 4) "discrete"
        }

        test "reward (coalescent n=4, total branch length): matches Moments with that reward" {
            let g = Models.coalescent 4 None
            let w = g.Weights [| 1.0 |]
            let reward = Array.init g.VertexCount (fun v -> if v = 0 then 0.0 else float (Array.sum (g.State v)))
            let xs = Sampling.sampleReward g w reward 20000 11
            checkSample xs (Moments.moments (Elimination.eliminate g [| 1.0 |]) reward 4) "total branch length"
            closeRel 1e-12 (Moments.expectation (Elimination.eliminate g [| 1.0 |]) reward) (2.0 * (1.0 + 1.0 / 2.0 + 1.0 / 3.0)) "E[L] closed form"
        }
    ]

let private inputTests =
    testList "bad input" [
        test "negative, NaN and infinite times name the index" {
            let g = Models.exponential (Some 1.0)
            let w = weightsOf g
            throwsWith "times[1]" (fun () -> Distribution.pdfCdfExact g w [| 0.5; -1.0 |] 1e-12 |> ignore)
            throwsWith "times[2]" (fun () -> Distribution.pdfCdfExact g w [| 0.5; 1.0; nan |] 1e-12 |> ignore)
            throwsWith "times[0]" (fun () -> Distribution.pdfCdfEuler g w [| infinity |] None |> ignore)
            throwsWith "t = -1" (fun () -> Distribution.stopProbabilities g w -1.0 |> ignore)
            throwsWith "t = NaN" (fun () -> Distribution.accumulatedVisitingTime g w nan |> ignore)
        }

        test "wrong weights length, negative weight, bad tolerance, bad granularity" {
            let g = Models.rabbits 2 2.0 4.0
            let w = weightsOf g
            throwsWith "edges" (fun () -> Distribution.pdfCdfExact g w.[1..] [| 1.0 |] 1e-12 |> ignore)
            throwsWith "edges" (fun () -> Sampling.sample g [| 1.0 |] 10 1 |> ignore)
            let bad = Array.copy w
            bad.[3] <- -1.0
            throwsWith "weights[3]" (fun () -> Distribution.defect g bad |> ignore)
            throwsWith "tolerance" (fun () -> Distribution.pdfCdfExact g w [| 1.0 |] 0.0 |> ignore)
            throwsWith "granularity" (fun () -> Distribution.pdfCdfEuler g w [| 1.0 |] (Some 3.0) |> ignore)
            throwsWith "granularity" (fun () -> Distribution.pdfCdfEuler g w [| 1.0 |] (Some -5.0) |> ignore)
        }

        test "continuous/discrete mismatches, jumps, step counts, sample sizes" {
            let c = Models.exponential (Some 1.0)
            let d = geometric 0.5
            throwsWith "discrete model" (fun () -> Distribution.pmfCdf c (weightsOf c) [| 1 |] |> ignore)
            throwsWith "continuous model" (fun () -> Distribution.pdfCdfExact d (weightsOf d) [| 1.0 |] 1e-12 |> ignore)
            throwsWith "continuous model" (fun () -> Distribution.pdfCdfEuler d (weightsOf d) [| 1.0 |] None |> ignore)
            throwsWith "jumps[1]" (fun () -> Distribution.pmfCdf d (weightsOf d) [| 1; -2 |] |> ignore)
            throwsWith "non-negative integer" (fun () -> Distribution.stopProbabilities d (weightsOf d) 1.5 |> ignore)
            throwsWith "n = -1" (fun () -> Sampling.sample c (weightsOf c) -1 1 |> ignore)
            throwsWith "reward vector" (fun () -> Sampling.sampleReward c (weightsOf c) [| 1.0 |] 5 1 |> ignore)
        }

        test "sampling refuses weights under which absorption is impossible" {
            let g = Models.rabbits3 1
            // θ = (jump 1, floods 0): the rabbit jumps back and forth forever
            let w = g.Weights [| 1.0; 0.0; 0.0 |]
            throwsWith "no absorbing vertex is reachable" (fun () -> Sampling.sample g w 1 1 |> ignore)
        }
    ]

[<Tests>]
let tests =
    testList "distribution" [
        poissonTests
        referenceTests
        closedFormTests
        shapeTests
        randomGraphTests
        visitTests
        discreteTests
        samplingTests
        inputTests
    ]
