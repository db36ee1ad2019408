/// The likelihood kernel against the core (bit for bit), closed forms, finite differences, and the
/// moments kernel against closed forms.
module Ptd.Inference.Tests.KernelTests

open System
open Expecto
open Ptd.Core
open Ptd.Host.Kernels
open Ptd.Inference.Tests.Common

let coreLoglik (g: Graph) (theta: float[]) (data: float[]) =
    let r = TraceLikelihood.logLikelihoodWithGradient (trace g) theta data
    r.LogLikelihood, r.Gradient

/// The kernel runs the core's algorithm with the window sums reassociated (SIMD): equal to rounding.
let expectAsCore name (g: Graph) (thetas: float[] list) (data: float[]) =
    let kernel = likelihoodKernel g
    for theta in thetas do
        let ll, grad = kernelLoglik kernel theta data
        let cll, cgrad = coreLoglik g theta data
        if relErr ll cll > 1e-12 then failtestf "%s θ=%A: log-likelihood %.17g, core %.17g" name theta ll cll
        for j in 0 .. grad.Length - 1 do
            if abs (grad.[j] - cgrad.[j]) > 1e-10 * (1.0 + abs cgrad.[j]) then
                failtestf "%s θ=%A: ∂/∂θ%d %.17g, core %.17g" name theta j grad.[j] cgrad.[j]

[<Tests>]
let tests =
    testList "kernel" [
        test "likelihood and gradient agree with the core's TraceLikelihood (to rounding)" {
            let coal = Models.coalescent 10 None
            expectAsCore "coalescent n=10" coal [ [| 0.8 |]; [| 1.0 |]; [| 1.7 |] ] (simulate coal [| 1.0 |] 300 11)
            let two = Models.twoDeme 3
            expectAsCore "twodeme n=3" two [ [| 1.0; 0.4 |]; [| 0.6; 1.3 |] ] (simulate two [| 1.0; 0.5 |] 200 12)
            let disc = discreteModel ()
            expectAsCore "discrete" disc [ [| 0.5; 0.6 |]; [| 0.2; 0.9 |] ] (simulate disc [| 0.5; 0.6 |] 200 13)
        }

        test "core's window sums: 10,007 unsorted draws and far-tail/central mixes equal the core to 1e-12" {
            // The kernel takes its window sums from the core's UniformizationWindows.sums; the
            // core's own log-likelihood (an independent driver: its own sweep, log-space path and
            // compensated totals) is the reference.
            let coal = Models.coalescent 10 None
            let expectCloseFor (model: Graph) name (theta: float[]) (data: float[]) =
                let ll, grad = kernelLoglik (likelihoodKernel model) theta data
                let cll, cgrad = coreLoglik model theta data
                if not (Double.IsFinite ll) || relErr ll cll > 1e-12 then
                    failtestf "%s θ=%A: log-likelihood %.17g, core %.17g" name theta ll cll
                for j in 0 .. grad.Length - 1 do
                    if not (Double.IsFinite grad.[j]) || relErr grad.[j] cgrad.[j] > 1e-12 then
                        failtestf "%s θ=%A: ∂/∂θ%d %.17g, core %.17g" name theta j grad.[j] cgrad.[j]
                ll, grad
            let expectClose name theta data = expectCloseFor coal name theta data |> ignore
            let draws = simulate coal [| 1.0 |] 10_007 31
            Expect.isFalse (Array.pairwise draws |> Array.forall (fun (a, b) -> a <= b)) "the draws are in sampling (unsorted) order"
            for theta in [ [| 0.7 |]; [| 1.0 |]; [| 1.4 |] ] do expectClose "10,007 draws" theta draws
            // Central draws interleaved with far right-tail times (the window around the Poisson
            // mode misses the terms that carry f: the log-space path) and far left-tail ones.
            let central = simulate coal [| 1.0 |] 600 32
            let tails = [| 45.0; 0.002; 70.0; 0.0004; 30.0; 120.0; 0.01 |]
            let mixed =
                [| for i in 0 .. central.Length - 1 do
                       if i % 90 = 5 then yield tails.[i / 90]
                       yield central.[i] |]
            Expect.equal mixed.Length (central.Length + tails.Length) "every tail time once"
            for theta in [ [| 0.8 |]; [| 1.5 |] ] do expectClose "far tails and central" theta mixed
            // Erlang(3) (v_k = 0 past k = 2, so the sweep is never rescaled): at θt ≥ 60 the window
            // around the mode misses k = 2 and those observations take the log-space path inside
            // the window-summed evaluation; the closed form checks both.
            let erl = Models.erlang 3 None
            let centralE = simulate erl [| 1.0 |] 400 33
            let farE = [| 60.0; 150.0; 300.0; 90.0 |]
            let mixedE =
                [| for i in 0 .. centralE.Length - 1 do
                       if i % 100 = 7 then yield farE.[i / 100]
                       yield centralE.[i] |]
            for th in [ 1.0; 0.7 ] do
                let ll, grad = expectCloseFor erl "Erlang(3), far tails" [| th |] mixedE
                let closed = mixedE |> Array.sumBy (fun t -> 3.0 * log th + 2.0 * log t - log 2.0 - th * t)
                let dclosed = mixedE |> Array.sumBy (fun t -> 3.0 / th - t)
                Expect.floatClose Accuracy.veryHigh ll closed "Erlang(3): Σ (3 log θ + 2 log t − log 2 − θt)"
                if abs (grad.[0] - dclosed) > 1e-9 * (Array.sum mixedE) then
                    failtestf "Erlang(3) θ=%g: ∂/∂θ %.17g, closed form %.17g" th grad.[0] dclosed
        }

        test "closed forms: exponential and the n = 3 coalescent (hypoexponential)" {
            let data = simulate (Models.exponential None) [| 2.0 |] 100 3
            let ll, g = kernelLoglik (likelihoodKernel (Models.exponential None)) [| 1.7 |] data
            let n = float data.Length
            Expect.floatClose Accuracy.veryHigh ll (n * log 1.7 - 1.7 * Array.sum data) "n log θ − θ Σx"
            Expect.floatClose Accuracy.veryHigh g.[0] (n / 1.7 - Array.sum data) "n/θ − Σx"
            let data3 = simulate (Models.coalescent 3 None) [| 1.0 |] 100 4
            let th = 1.3
            let logf t = log (1.5 * th) + log (exp (-th * t) - exp (-3.0 * th * t))
            let dlogf t = 1.0 / th + (-t * exp (-th * t) + 3.0 * t * exp (-3.0 * th * t)) / (exp (-th * t) - exp (-3.0 * th * t))
            let ll3, g3 = kernelLoglik (likelihoodKernel (Models.coalescent 3 None)) [| th |] data3
            Expect.floatClose Accuracy.high ll3 (Array.sumBy logf data3) "Σ log f"
            Expect.floatClose Accuracy.high g3.[0] (Array.sumBy dlogf data3) "Σ ∂ log f"
        }

        test "far tails stay finite and exact where a plain sweep underflows to log 0" {
            let g = Models.exponential None
            let data = [| 800.0; 2000.0 |]
            // The core has its own log-space tail path now (it used to return −∞ here).
            let core, coreGrad = coreLoglik g [| 1.0 |] data
            Expect.floatClose Accuracy.veryHigh core -2800.0 "core: log f = log θ − θt, summed"
            Expect.floatClose Accuracy.high coreGrad.[0] (2.0 - 2800.0) "core: Σ (1/θ − t)"
            let ll, grad = kernelLoglik (likelihoodKernel g) [| 1.0 |] data
            Expect.floatClose Accuracy.veryHigh ll -2800.0 "log f = log θ − θt, summed"
            Expect.floatClose Accuracy.high grad.[0] (2.0 - 2800.0) "Σ (1/θ − t)"
            // A chain whose π underflows within the sweep (stay = 2/3 at the last state, about
            // 2400 steps): the n = 3 coalescent at θt = 800, f = 1.5θ(e^−θt − e^−3θt).
            let c3 = Models.coalescent 3 None
            let t = 400.0
            let ll3, g3 = kernelLoglik (likelihoodKernel c3) [| 2.0 |] [| t |]
            Expect.floatClose Accuracy.high ll3 (log 3.0 - 800.0) "log f at θt = 800"
            Expect.floatClose Accuracy.high g3.[0] (0.5 - t) "∂/∂θ = 1/θ − t"
        }

        test "gradient matches central finite differences (cyclic model, 2 parameters)" {
            let g = Models.twoDeme 3
            let data = simulate g [| 1.0; 0.5 |] 150 21
            let kernel = likelihoodKernel g
            let theta = [| 0.9; 0.7 |]
            let _, grad = kernelLoglik kernel theta data
            for j in 0 .. 1 do
                let h = 1e-6
                let at (x: float) =
                    let th = Array.copy theta
                    th.[j] <- x
                    fst (kernelLoglik kernel th data)
                let fd = (at (theta.[j] + h) - at (theta.[j] - h)) / (2.0 * h)
                Expect.isLessThan (relErr grad.[j] fd) 1e-6 (sprintf "∂/∂θ%d: %.12g vs FD %.12g" j grad.[j] fd)
        }

        test "batched target: every particle as on its own, whatever the threads" {
            let g = Models.twoDeme 2
            let data = observations (simulate g [| 1.0; 0.5 |] 100 5)
            let kernel = likelihoodKernel g
            let thetas = [| for i in 0 .. 20 -> [| 0.5 + 0.05 * float i; 0.3 + 0.02 * float i |] |]
            let flat = Array.concat thetas
            let run (threads: int) =
                let target = TraceLogDensity(kernel, data, LikelihoodOptions(MaxDegreeOfParallelism = threads)) :> Ptd.Host.Svgd.ILogDensity
                let lp = Array.zeroCreate thetas.Length
                let gr = Array.zeroCreate flat.Length
                target.LogDensityAndGradient(ReadOnlySpan flat, Span lp, Span gr)
                lp, gr
            let lp1, g1 = run 1
            let lpN, gN = run -1
            Expect.sequenceEqual (Array.map bits lpN) (Array.map bits lp1) "log densities"
            Expect.sequenceEqual (Array.map bits gN) (Array.map bits g1) "gradients"
            for i in 0 .. thetas.Length - 1 do
                let ll, gi = kernelLoglik kernel thetas.[i] (data.ToArray())
                Expect.equal (bits lp1.[i]) (bits ll) "particle alone"
                Expect.equal (bits g1.[2 * i + 1]) (bits gi.[1]) "gradient alone"
        }

        test "phasic's central differences (an option, for comparison) agree with the exact gradient" {
            let g = Models.twoDeme 3
            let data = observations (simulate g [| 1.0; 0.5 |] 150 22)
            let kernel = likelihoodKernel g
            let theta = [| 0.9; 0.7; 1.2; 0.4 |]
            let run (m: GradientMethod) =
                let target = TraceLogDensity(kernel, data, LikelihoodOptions(Gradient = m)) :> Ptd.Host.Svgd.ILogDensity
                let lp = Array.zeroCreate 2
                let gr = Array.zeroCreate 4
                target.LogDensityAndGradient(ReadOnlySpan theta, Span lp, Span gr)
                lp, gr
            let lpE, gE = run GradientMethod.Exact
            let lpF, gF = run GradientMethod.CentralDifferences
            Expect.sequenceEqual (Array.map bits lpF) (Array.map bits lpE) "the value-only path gives the same log-likelihood"
            for i in 0 .. 3 do Expect.isLessThan (relErr gF.[i] gE.[i]) 1e-5 (sprintf "∂[%d]: FD %.10g exact %.10g" i gF.[i] gE.[i])
        }

        test "an observation of density 0 stops with the file, line, particle and θ — never a NaN" {
            let g = Models.coalescent 4 None
            let data = ObservationFile.Parse("0.7\n1.2\n0\n", "times.txt")
            let target = TraceLogDensity(likelihoodKernel g, data) :> Ptd.Host.Svgd.ILogDensity
            let e =
                Expect.throwsC
                    (fun () -> target.LogDensityAndGradient(ReadOnlySpan [| 1.0; 2.0 |], Span(Array.zeroCreate 2), Span(Array.zeroCreate 2)))
                    id
            Expect.isTrue (e :? PtdException) "PtdException"
            for f in [ "particle 0"; "times.txt line 3"; "density 0"; "θ = [1]" ] do Expect.stringContains e.Message f "message"
            // phasic's compatibility ε turns it into log ε instead
            let compat = TraceLogDensity(likelihoodKernel g, data, LikelihoodOptions(Epsilon = 1e-10)) :> Ptd.Host.Svgd.ILogDensity
            let lp = Array.zeroCreate 1
            compat.LogDensityAndGradient(ReadOnlySpan [| 1.0 |], Span lp, Span(Array.zeroCreate 1))
            Expect.isTrue (Double.IsFinite lp.[0]) "finite with ε"
        }

        test "a θ outside the support names the particle and the edge" {
            let g = Models.coalescent 4 None
            let target = TraceLogDensity(likelihoodKernel g, observations [| 1.0 |]) :> Ptd.Host.Svgd.ILogDensity
            let e =
                Expect.throwsC
                    (fun () -> target.LogDensityAndGradient(ReadOnlySpan [| 1.0; -0.5 |], Span(Array.zeroCreate 2), Span(Array.zeroCreate 2)))
                    id
            Expect.stringContains e.Message "particle 1" "particle"
            Expect.stringContains e.Message "weight" "what is wrong"
        }

        test "discrete data must be whole jump counts (line named)" {
            let e =
                Expect.throwsC
                    (fun () -> TraceLogDensity(likelihoodKernel (discreteModel ()), ObservationFile.Parse("2\n1.5\n", "counts.txt")) |> ignore)
                    id
            Expect.stringContains e.Message "counts.txt line 2" "line"
            Expect.stringContains e.Message "whole numbers" "why"
        }

        test "moments kernel: E[T] = 2(1 − 1/n)/θ and its Jacobian in closed form" {
            let g = Models.coalescent 5 None
            let struct (kernel, _) = KernelRegistry().GetMomentKernelAsync(g).Result
            let model = TraceMomentModel(kernel, 2) :> Ptd.Host.Svgd.IMomentModel
            let thetas = [| 0.5; 1.0; 2.0 |]
            let m = Array.zeroCreate 6
            let jac = Array.zeroCreate 6
            model.MomentsAndGradient(ReadOnlySpan thetas, Span m, Span jac)
            let varT = Seq.sum (seq { for k in 2 .. 5 -> (2.0 / (float k * (float k - 1.0))) ** 2.0 })
            for p in 0 .. 2 do
                let th = thetas.[p]
                let mean = 2.0 * (1.0 - 1.0 / 5.0) / th
                let second = (varT + (2.0 * (1.0 - 1.0 / 5.0)) ** 2.0) / (th * th)
                Expect.floatClose Accuracy.veryHigh m.[2 * p] mean "E[T]"
                Expect.floatClose Accuracy.veryHigh m.[2 * p + 1] second "E[T²]"
                Expect.floatClose Accuracy.veryHigh jac.[2 * p] (-mean / th) "∂E[T]/∂θ"
                Expect.floatClose Accuracy.veryHigh jac.[2 * p + 1] (-2.0 * second / th) "∂E[T²]/∂θ"
        }
    ]
