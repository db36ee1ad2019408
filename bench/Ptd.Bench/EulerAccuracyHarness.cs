using System.Diagnostics;
using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// `-- euler-accuracy [maxK] [repeats]`: the supplementary comparison to <see cref="TraceLikelihoodBenchmarks"/> at
/// matched accuracy. Same model and observations (coalescent n = 10, θ = 1, 10,000 draws, seed 42). For Euler
/// granularities g = 1024·4^k it reports the largest relative error of the Euler density over the observations (=
/// the largest absolute error of the log-density, to first order), the relative error of phasic's central-difference
/// gradient (h = 1e-6), both against our exact uniformization values, and the best-of-`repeats` wall time of one such
/// gradient next to our exact log-likelihood + gradient, timed in the same process right before each row. Stops after the first
/// granularity whose single Euler evaluation took more than 20 s (the next would take ≈ 4× as long).
/// </summary>
public static class EulerAccuracyHarness
{
    private const double H = 1e-6;

    public static int Run(string[] args)
    {
        var maxK = args.Length > 0 ? int.Parse(args[0]) : 6;
        var repeats = args.Length > 1 ? int.Parse(args[1]) : 3;
        var graph = Models.coalescent(10, FSharpOption<double>.None);
        var trace = TraceBench.Prepare(graph);
        double[] theta = [1.0];
        var data = Sampling.sample(graph, graph.Weights(theta), 10_000, 42);
        Array.Sort(data);

        // Reference values: exact per-observation densities (tolerance 1e-12) and the exact gradient of the trace.
        var exactPdf = Distribution.pdfCdfExact(graph, graph.Weights(theta), data, 1e-12).Item1;
        var exact = TraceLikelihood.logLikelihoodWithGradient(trace, theta, data);
        var sumLog = exactPdf.Sum(Math.Log);
        Console.WriteLine($"coalescent n = 10, θ = 1, {data.Length:N0} observations (max t = {data[^1]:F3}); load {Load()}");
        Console.WriteLine($"exact log-likelihood {exact.LogLikelihood:R} (Σ log pdfCdfExact {sumLog:R}), gradient {exact.Gradient[0]:R}");

        var ours = Best(repeats, () => TraceLikelihood.logLikelihoodWithGradient(trace, theta, data).Gradient[0]);
        Console.WriteLine($"ours (logLikelihoodWithGradient): best of {repeats} {ours:F1} ms; load {Load()}");
        Console.WriteLine("| granularity | max rel. density error (at t) | median | rel. log-likelihood error | rel. gradient error | central-difference gradient | ours (just before) | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        for (var k = 0; k <= maxK; k++)
        {
            var g = 1024.0 * Math.Pow(4, k);
            // Ours timed again right before each row, so that each ratio compares runs under the same load.
            var oursNow = Best(repeats, () => TraceLikelihood.logLikelihoodWithGradient(trace, theta, data).Gradient[0]);
            var sw = Stopwatch.StartNew();
            var pdf = Distribution.pdfCdfEuler(graph, graph.Weights(theta), data, FSharpOption<double>.Some(g)).Item1;
            var single = sw.Elapsed.TotalMilliseconds;
            var densityError = 0.0;
            var worst = 0;
            var euLogLik = 0.0;
            for (var i = 0; i < data.Length; i++)
            {
                var e = Math.Abs(pdf[i] - exactPdf[i]) / exactPdf[i];
                if (e > densityError) (densityError, worst) = (e, i);
                euLogLik += Math.Log(pdf[i]);
            }
            var errors = new double[data.Length];
            for (var i = 0; i < data.Length; i++) errors[i] = Math.Abs(pdf[i] - exactPdf[i]) / exactPdf[i];
            Array.Sort(errors);
            var medianError = errors[errors.Length / 2];
            var logLikError = Math.Abs(euLogLik - exact.LogLikelihood) / Math.Abs(exact.LogLikelihood);
            var grad = 0.0;
            var runs = single > 5_000 ? 1 : repeats;
            var time = Best(runs, () => grad = (Euler(graph, g, theta[0] + H, data) - Euler(graph, g, theta[0] - H, data)) / (2 * H));
            var gradError = Math.Abs(grad - exact.Gradient[0]) / Math.Abs(exact.Gradient[0]);
            Console.WriteLine($"| {g:N0} | {densityError:E2} (t = {data[worst]:F4}) | {medianError:E2} | {logLikError:E2} | {gradError:E2} | {time:N1} ms (best of {runs}) | {oursNow:F1} ms | {time / oursNow:G3}× | load {Load()}");
            if (single > 20_000) break;
        }
        // Ours again at the end: the load may have changed during the long Euler runs.
        var oursAfter = Best(repeats, () => TraceLikelihood.logLikelihoodWithGradient(trace, theta, data).Gradient[0]);
        Console.WriteLine($"ours again: best of {repeats} {oursAfter:F1} ms; load {Load()}");
        return 0;
    }

    private static double Euler(Graph graph, double g, double rate, double[] data)
    {
        var pdf = Distribution.pdfCdfEuler(graph, graph.Weights([rate]), data, FSharpOption<double>.Some(g)).Item1;
        var s = 0.0;
        foreach (var p in pdf) s += Math.Log(p);
        return s;
    }

    private static double Best(int runs, Func<double> f)
    {
        if (runs > 1) f(); // warm-up (JIT); a single long run is JIT-dominated by nothing
        var best = double.MaxValue;
        for (var r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            f();
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        return best;
    }

    private static string Load()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
