module Ptd.Svgd.Tests.EngineTests

open System
open System.Collections.Generic
open System.Text.Json
open System.Threading
open System.Threading.Tasks
open Expecto
open Ptd.Core
open Ptd.Host.Svgd
open Ptd.Svgd.Tests.Targets

/// A synchronous IProgress (Progress<T> posts to the thread pool, which would race the asserts).
type Collector(onReport: SvgdProgress -> unit) =
    let reports = List<SvgdProgress>()
    member _.Reports = reports
    interface IProgress<SvgdProgress> with
        member _.Report(value) =
            reports.Add value
            onReport value

/// A copy of C# record options with one init-only property changed (F# has no `with` for C# records).
let set (name: string) (value: obj) (o: SvgdOptions) =
    let clone = o.GetType().GetMethod("<Clone>$").Invoke(o, [||]) :?> SvgdOptions
    o.GetType().GetProperty(name).SetValue(clone, value)
    clone

let rows (xs: float[]) = xs |> Array.map (fun x -> [| x |])

/// svgd.md §3: 50 particles from N(−3, 0.5²), constant step 0.05, 3000 updates, identity transform.
let normalOptions =
    SvgdOptions(
        ParticleCount = 50,
        Iterations = 3000,
        StepSize = 0.05,
        Optimizer = OptimizerKind.Plain,
        Transform = ParameterTransform.Identity,
        InitialParticles = rows (normalDraws 11 50 -3.0 0.5))

let run target options = (SvgdEngine.RunAsync(target, options)).GetAwaiter().GetResult()

/// Exponential-rate data with a Gamma(a, b) prior on θ: the posterior is Gamma(a + n, b + Σx).
let conjugateCheck (transform: ParameterTransform) (dataCount: int) (particles: int) (iterations: int) =
    let a, b = 2.0, 1.0
    let data = exponentialDraws (100 + dataCount) dataCount 1.5
    let shape, rate = a + float dataCount, b + Array.sum data
    let options =
        SvgdOptions(
            ParticleCount = particles,
            Iterations = iterations,
            StepSize = 0.05,
            Transform = transform,
            Priors = [| ParameterPrior(Prior.Gamma(a, b), PriorSpace.Theta) |],
            Seed = 7)
    let result = run (ExponentialLikelihood data) options
    let theta = column result.Particles 0
    let exactMean, exactSd = shape / rate, sqrt shape / rate
    Expect.isLessThan (abs (mean theta / exactMean - 1.0)) 0.02 $"posterior mean {mean theta} vs Gamma({shape}, {rate}) mean {exactMean}"
    Expect.isLessThan (abs (sd theta / exactSd - 1.0)) 0.10 $"posterior sd {sd theta} vs {exactSd}"
    Expect.floatClose Accuracy.veryHigh result.Parameters.[0].Mean (mean theta) "summary mean"
    Expect.floatClose Accuracy.veryHigh result.Parameters.[0].Sd (sd theta) "summary sd"
    Expect.isFalse result.Diagnostics.Collapsed "no collapse"

[<Tests>]
let tests =
    testList "svgd" [
        testList "engine" [
            test "N(0,1), svgd.md §3 settings: mean 0 ± 0.01, sd 0.96 ± 0.03 (repulsive sign)" {
                let target = NormalTarget(1, 0.0, 1.0)
                let result = run target normalOptions
                let x = column result.Particles 0
                Expect.isLessThan (abs (mean x)) 0.01 $"mean {mean x}"
                Expect.isLessThan (abs (sd x - 0.96)) 0.03 $"sd {sd x} (the attractive sign gives ≈ 0.1)"
                Expect.equal target.Calls 3001 "one batched call per update plus the final evaluation"
                Expect.isFalse result.Diagnostics.Collapsed "no collapse warning"
                Expect.isLessThan result.Diagnostics.DirectionNormTrend 1e-3 "Stein direction settles"
                Expect.equal result.Particles result.ParticlesPhi "identity: θ = φ"
                let q = result.Parameters.[0]
                Expect.isTrue (q.Q025 < -1.5 && q.Q025 > -2.3 && q.Q975 > 1.5 && q.Q975 < 2.3) $"95 %% interval ({q.Q025}, {q.Q975})"
            }

            test "N(0,1) with the default AdaGrad-with-momentum reaches the same fixed point" {
                let result = run (NormalTarget(1, 0.0, 1.0)) (normalOptions |> set "Optimizer" (box OptimizerKind.AdaGradMomentum))
                let x = column result.Particles 0
                Expect.isLessThan (abs (mean x)) 0.02 $"mean {mean x}"
                Expect.isLessThan (abs (sd x - 0.96)) 0.04 $"sd {sd x}"
            }

            test "exponential rate, Gamma prior on θ, softplus: Gamma(a+n, b+Σx) posterior (mean 2 %, sd 10 %)" {
                conjugateCheck ParameterTransform.Softplus 30 100 1500
            }

            test "exponential rate, Gamma prior on θ, exp transform, n = 5 (the Jacobian matters)" {
                conjugateCheck ParameterTransform.Exp 5 100 1500
            }

            test "2-D independent normals with Adam and an exponential schedule" {
                let init = Array.init 40 (fun i -> [| -2.0 + 0.05 * float i; 3.0 - 0.02 * float i |])
                let options =
                    SvgdOptions(
                        ParticleCount = 40, Iterations = 1500, StepSize = 0.05, Optimizer = OptimizerKind.Adam,
                        Schedule = StepSchedule.Exponential, ExponentialDecay = 0.999,
                        Transform = ParameterTransform.Identity, InitialParticles = init)
                let result = run (NormalTarget(2, 1.0, 0.5)) options
                for k in 0..1 do
                    let x = column result.Particles k
                    Expect.isLessThan (abs (mean x - 1.0)) 0.03 $"mean[{k}] {mean x}"
                    Expect.isLessThan (abs (sd x / 0.5 - 1.0)) 0.15 $"sd[{k}] {sd x}"
            }

            test "step rules: first AdaGrad and Adam steps are η·sign(φ̂); plain schedules scale the step" {
                let init = rows [| -1.0; -0.5; 0.7 |]
                let baseOptions =
                    SvgdOptions(ParticleCount = 3, Iterations = 5, StepSize = 0.1, Transform = ParameterTransform.Identity, InitialParticles = init)
                for kind in [ OptimizerKind.AdaGradMomentum; OptimizerKind.Adam ] do
                    let r = run (NormalTarget(1, 3.0, 1.0)) (baseOptions |> set "Optimizer" (box (kind)))
                    Expect.floatClose { absolute = 0.0; relative = 1e-5 } r.Diagnostics.StepNorms.[0] 0.1 $"{kind}: first step norm = η"
                let check schedule (eta: int -> float) =
                    let o = SvgdOptions(ParticleCount = 3, Iterations = 5, StepSize = 0.1, Transform = ParameterTransform.Identity,
                                        InitialParticles = init, Optimizer = OptimizerKind.Plain, Schedule = schedule,
                                        ExponentialDecay = 0.5, InverseTimeDecay = 2.0)
                    let r = run (NormalTarget(1, 3.0, 1.0)) o
                    for t in 0..4 do
                        Expect.floatClose { absolute = 0.0; relative = 1e-12 }
                            (r.Diagnostics.StepNorms.[t] / r.Diagnostics.DirectionNorms.[t]) (eta t) $"{schedule} η_{t}"
                check StepSchedule.Constant (fun _ -> 0.1)
                check StepSchedule.Exponential (fun t -> 0.1 * 0.5 ** float t)
                check StepSchedule.InverseTime (fun t -> 0.1 / (1.0 + 2.0 * float t))
            }

            test "initial particles drawn from the priors (rate, not scale; truncated to the transform's range)" {
                let options =
                    SvgdOptions(
                        ParticleCount = 600, Iterations = 1, StepSize = 1e-9, Optimizer = OptimizerKind.Plain, HistoryInterval = 1,
                        Transforms = [| ParameterTransform.Softplus; ParameterTransform.Softplus; ParameterTransform.Identity |],
                        Priors =
                            [| ParameterPrior(Prior.Gamma(3.0, 2.0))
                               ParameterPrior(Prior.Normal(0.0, 1.0))
                               ParameterPrior(Prior.Normal(5.0, 0.5), PriorSpace.Phi) |])
                let result = run (NormalTarget(3, 0.0, 10.0)) options
                let initial = result.History.[0].Particles
                let g = column initial 0
                Expect.isLessThan (abs (mean g - 1.5)) 0.12 $"Gamma(3, rate 2) mean 1.5, got {mean g}"
                Expect.isLessThan (abs (sd g - sqrt 0.75)) 0.1 $"Gamma(3, rate 2) sd {sd g}"
                Expect.isTrue (column initial 1 |> Array.forall (fun x -> x > 0.0)) "normal θ-prior truncated to θ > 0"
                let h = column initial 2
                Expect.isLessThan (abs (mean h - 5.0)) 0.1 $"φ-prior N(5, 0.5²) mean {mean h}"
            }

            test "same seed → bit-identical result; another seed differs; parallel kernel = sequential" {
                let options =
                    SvgdOptions(ParticleCount = 520, Iterations = 20, Priors = [| ParameterPrior(Prior.Gamma(2.0, 1.0)); ParameterPrior(Prior.LogNormal(0.0, 0.5)) |], Seed = 3, HistoryInterval = 10)
                // 520 ≥ the 512-particle threshold: the kernel rows run on several threads.
                let target = CoupledTarget 2
                let a = run target options
                let b = run target options
                let c = run target (options |> set "MaxDegreeOfParallelism" (box (1)))
                let other = run target (options |> set "Seed" (box (4)))
                Expect.isTrue (a.Particles = b.Particles) "θ particles"
                Expect.isTrue (a.LogPosterior = b.LogPosterior) "log posterior"
                Expect.equal (a.ToJson()) (b.ToJson()) "JSON"
                Expect.equal (a.ToJson()) (c.ToJson()) "MaxDegreeOfParallelism = 1"
                Expect.notEqual (a.ToJson()) (other.ToJson()) "seed 4"
            }

            test "cancellation ends the task as cancelled" {
                use cts = new CancellationTokenSource()
                let progress = Collector(fun p -> if p.Iteration = 20 then cts.Cancel())
                let options = normalOptions |> set "ProgressInterval" (box (1))
                let task = SvgdEngine.RunAsync(NormalTarget(1, 0.0, 1.0), options, progress, cts.Token)
                throws<OperationCanceledException> (fun () -> task.GetAwaiter().GetResult() |> ignore) |> ignore
                Expect.isTrue task.IsCanceled "task state"
                Expect.equal progress.Reports.Count 20 "stopped right after the cancelling report"
                use pre = new CancellationTokenSource()
                pre.Cancel()
                let t2 = SvgdEngine.RunAsync(NormalTarget(1, 0.0, 1.0), normalOptions, null, pre.Token)
                throws<OperationCanceledException> (fun () -> t2.GetAwaiter().GetResult() |> ignore) |> ignore
            }

            test "progress reports: interval, last iteration, values from the run" {
                let progress = Collector ignore
                let options = normalOptions |> set "Iterations" (box (95)) |> set "ProgressInterval" (box (10))
                let result = SvgdEngine.Run(NormalTarget(1, 0.0, 1.0), options, progress)
                let its = progress.Reports |> Seq.map (fun p -> p.Iteration) |> List.ofSeq
                Expect.equal its [ 10; 20; 30; 40; 50; 60; 70; 80; 90; 95 ] "iterations reported"
                for p in progress.Reports do
                    Expect.equal p.Iterations 95 "total"
                    Expect.equal p.StepNorm result.Diagnostics.StepNorms.[p.Iteration - 1] "step norm"
                    Expect.equal p.BandwidthSquared result.Diagnostics.BandwidthsSquared.[p.Iteration - 1] "h²"
                    Expect.isTrue (Double.IsFinite p.MeanLogPosterior) "mean log posterior"
                let elapsed = progress.Reports |> Seq.map (fun p -> p.Elapsed) |> List.ofSeq
                Expect.equal elapsed (List.sort elapsed) "elapsed grows"
                let first = progress.Reports.[0].MeanLogPosterior
                Expect.isGreaterThan progress.Reports.[progress.Reports.Count - 1].MeanLogPosterior first "log posterior rises from N(−3, 0.5²)"
                let auto = Collector ignore
                SvgdEngine.Run(NormalTarget(1, 0.0, 1.0), normalOptions |> set "Iterations" (box 1000), auto) |> ignore
                Expect.equal auto.Reports.Count 100 "automatic interval: 100 reports"
            }

            test "history snapshots and JSON" {
                let options = normalOptions |> set "Iterations" (box (30)) |> set "HistoryInterval" (box (10)) |> set "ParameterNames" (box [| "x" |])
                let result = run (NormalTarget(1, 0.0, 1.0)) options
                Expect.equal (result.History |> Seq.map (fun s -> s.Iteration) |> List.ofSeq) [ 0; 10; 20; 30 ] "snapshot iterations"
                Expect.equal result.History.[0].Particles (rows (normalDraws 11 50 -3.0 0.5)) "snapshot 0 = initial particles"
                Expect.equal result.History.[3].Particles result.Particles "last snapshot = final particles"
                use doc = JsonDocument.Parse(result.ToJson())
                let root = doc.RootElement
                let p0 = root.GetProperty("parameters").[0]
                Expect.equal (p0.GetProperty("name").GetString()) "x" "name"
                for field, value in [ "mean", result.Parameters.[0].Mean; "sd", result.Parameters.[0].Sd; "q025", result.Parameters.[0].Q025; "q975", result.Parameters.[0].Q975 ] do
                    Expect.equal (p0.GetProperty(field).GetDouble()) value field
                let particles = root.GetProperty("particles")
                Expect.equal (particles.GetArrayLength()) 50 "rows"
                Expect.equal (particles.[7].[0].GetDouble()) result.Particles.[7].[0] "round-trips exactly"
                Expect.equal (root.GetProperty("history").GetArrayLength()) 4 "history"
                Expect.equal (root.GetProperty("diagnostics").GetProperty("stepNorms").GetArrayLength()) 30 "diagnostics"
            }

            test "collapse warning when the spread shrinks to ~0" {
                // A posterior 5× narrower than the start (sd 0.1 vs 0.5): below a threshold of 0.5 it warns
                // (and says it may be real), at the default 1e-4 it does not.
                let narrow = normalOptions |> set "Iterations" (box 2000) |> set "StepSize" (box 0.0005)
                let strict = run (NormalTarget(1, 0.0, 0.1)) (narrow |> set "CollapseThreshold" (box 0.5))
                Expect.isTrue strict.Diagnostics.Collapsed "collapsed at threshold 0.5"
                Expect.stringContains strict.Diagnostics.Warnings.[0] "collapsed in 'theta1'" "warning text"
                Expect.stringContains strict.Diagnostics.Warnings.[0] "posterior may really be that narrow" "hint"
                Expect.isFalse (run (NormalTarget(1, 0.0, 0.1)) narrow).Diagnostics.Collapsed "default threshold"
                // Identical initial particles on a 1-D target never separate.
                let same = normalOptions |> set "Iterations" (box 50) |> set "InitialParticles" (box (Array.init 50 (fun _ -> [| -3.0 |])))
                let r2 = run (NormalTarget(1, 0.0, 1.0)) same
                Expect.isTrue r2.Diagnostics.Collapsed "identical particles"
                Expect.equal r2.Diagnostics.Warnings.Count 2 "two warnings"
                Expect.stringContains r2.Diagnostics.Warnings.[0] "share one value" "identical start"
                // The N(0,1) run of svgd.md §3 does not warn (checked there too).
                Expect.isFalse (run (NormalTarget(1, 0.0, 1.0)) (normalOptions |> set "Iterations" (box 300))).Diagnostics.Collapsed "healthy run"
            }

            test "a non-finite log posterior stops the run with a PtdException naming the particle" {
                let bad = LogDensity.FromFunction(1, fun theta grad -> (if theta.[0] > -2.0 then nan else (grad.[0] <- 1.0; 0.0)))
                let options = normalOptions |> set "Iterations" (box (100))
                let e = throws<PtdException> (fun () -> SvgdEngine.Run(bad, options) |> ignore)
                Expect.stringContains e.Message "particle" "names the particle"
                Expect.stringContains e.Message "theta1 = " "gives θ"
            }

            testList "option validation: ArgumentException naming the field, thrown before the run" [
                let target = NormalTarget(1, 0.0, 1.0)
                let o = normalOptions
                let cases =
                    [ ("ParticleCount", (o |> set "ParticleCount" (box (1)) |> set "InitialParticles" (box (null))))
                      ("Iterations", (o |> set "Iterations" (box (0))))
                      ("StepSize", (o |> set "StepSize" (box (0.0))))
                      ("StepSize", (o |> set "StepSize" (box (nan))))
                      ("Momentum", (o |> set "Momentum" (box (1.0))))
                      ("AdamBeta2", (o |> set "AdamBeta2" (box (-0.1))))
                      ("ExponentialDecay", (o |> set "ExponentialDecay" (box (1.5))))
                      ("InverseTimeDecay", (o |> set "InverseTimeDecay" (box (-1.0))))
                      ("Transforms", (o |> set "Transforms" (box [| ParameterTransform.Exp; ParameterTransform.Exp |])))
                      ("Priors", (o |> set "Priors" (box [| ParameterPrior(Prior.Flat); ParameterPrior(Prior.Flat) |])))
                      ("ParameterNames", (o |> set "ParameterNames" (box [| "" |])))
                      ("InitialParticles", (o |> set "InitialParticles" (box (rows [| 1.0; 2.0 |]))))
                      ("InitialParticles", (o |> set "InitialParticles" (box (Array.init 50 (fun _ -> [| 1.0; 2.0 |])))))
                      ("InitialParticles", (o |> set "InitialParticles" (box (null))))
                      ("InitialParticles", (o |> set "InitialParticles" (box (null)) |> set "Priors" (box [| ParameterPrior(Prior.Flat) |])))
                      ("InitialParticles", (o |> set "Transform" (box (ParameterTransform.Softplus))))
                      ("FixedBandwidth", (o |> set "Bandwidth" (box (BandwidthRule.Fixed))))
                      ("HistoryInterval", (o |> set "HistoryInterval" (box (-1))))
                      ("CollapseThreshold", (o |> set "CollapseThreshold" (box (1.0))))
                      ("MaxDegreeOfParallelism", (o |> set "MaxDegreeOfParallelism" (box (0)))) ]
                for i, (field, options) in List.indexed cases do
                    test $"{i:D2} {field}" {
                        let e = throws<ArgumentException> (fun () -> SvgdEngine.RunAsync(target, options) |> ignore)
                        Expect.equal e.ParamName field "ParamName"
                        Expect.stringContains e.Message $"SvgdOptions.{field}" "message names the field"
                    }
                test "the defaults with priors are valid" {
                    SvgdOptions(Priors = [| ParameterPrior(Prior.Gamma(2.0, 1.0)) |]).Validate 1
                }
            ]
        ]
    ]
