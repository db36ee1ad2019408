// SVGD on a standard normal target from F# Interactive.
//   dotnet build src/Host.CSharp/Ptd.Host      (once; makes the Debug assemblies referenced below)
//   dotnet fsi examples/svgd-normal.fsx
#r "../src/Host.CSharp/Ptd.Host/bin/Debug/net10.0/Ptd.Core.dll"
#r "../src/Host.CSharp/Ptd.Host/bin/Debug/net10.0/Ptd.Host.dll"

open System
open Ptd.Host.Svgd

// log N(x; 0, 1) up to a constant, and its gradient (filled into grad).
let target = LogDensity.FromFunction(1, fun theta grad ->
    grad.[0] <- -theta.[0]
    -0.5 * theta.[0] * theta.[0])

// 50 particles started far away, around −3 (svgd.md §3).
let random = Random(1)
let start = Array.init 50 (fun _ -> [| -3.0 + 0.5 * (random.NextDouble() - 0.5) * 3.4 |])

let options =
    SvgdOptions(
        ParticleCount = 50,
        Iterations = 3000,
        StepSize = 0.05,
        Optimizer = OptimizerKind.Plain,
        Transform = ParameterTransform.Identity,   // x is unconstrained
        InitialParticles = start,
        ParameterNames = [| "x" |],
        ProgressInterval = 500)

let progress =
    { new IProgress<SvgdProgress> with
        member _.Report p =
                printfn "iteration %4d  mean log p %8.4f  step %.2g" p.Iteration p.MeanLogPosterior p.StepNorm }

let result = SvgdEngine.RunAsync(target, options, progress).GetAwaiter().GetResult()
let x = result.Parameters.[0]
printfn "N(0,1) by SVGD: mean %.4f  sd %.4f  95%% interval (%.3f, %.3f)  [exact: 0, 1; SVGD with 50 particles: sd ≈ 0.96]" x.Mean x.Sd x.Q025 x.Q975
if result.Diagnostics.Warnings.Count > 0 then result.Diagnostics.Warnings |> Seq.iter (printfn "warning: %s")
