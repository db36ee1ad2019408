using System.Diagnostics;
using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// `-- likelihood [rounds]`: the supplementary side-by-side measurement for <see cref="TraceLikelihoodBenchmarks"/>
/// on a shared machine (same model, θ and observations). Each round times phasic's Euler central difference once,
/// then the exact log-likelihood + gradient and the log-likelihood (each the median of five calls), interleaved so
/// that all see the same load; it reports the median over rounds of each time and of the per-round ratios.
/// </summary>
internal static class LikelihoodHarness
{
    private const double H = 1e-6;

    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 300;
        var graph = Models.coalescent(10, FSharpOption<double>.None);
        var trace = TraceBench.Prepare(graph);
        double[] theta = [1.0];
        var data = Sampling.sample(graph, graph.Weights(theta), 10_000, 42);
        Array.Sort(data);
        Console.WriteLine($"likelihood: Euler CD vs exact LL + gradient; {rounds} rounds; load {File.ReadAllText("/proc/loadavg").Trim()}");
        double Euler(double rate)
        {
            var pdf = Distribution.pdfCdfEuler(graph, graph.Weights([rate]), data, FSharpOption<double>.None).Item1;
            var s = 0.0;
            foreach (var p in pdf) s += Math.Log(p);
            return s;
        }
        var euler = new List<double>();
        var grad = new List<double>();
        var ll = new List<double>();
        var ratioGrad = new List<double>();
        var ratioLl = new List<double>();
        var five = new double[5];
        double sink = 0;
        var sw = new Stopwatch();
        for (int r = -20; r < rounds; r++)
        {
            sw.Restart();
            sink += (Euler(theta[0] + H) - Euler(theta[0] - H)) / (2 * H);
            double e = sw.Elapsed.TotalMilliseconds;
            for (int i = 0; i < 5; i++)
            {
                sw.Restart();
                sink += TraceLikelihood.logLikelihoodWithGradient(trace, theta, data).Gradient[0];
                five[i] = sw.Elapsed.TotalMilliseconds;
            }
            double g = Median([.. five]);
            for (int i = 0; i < 5; i++)
            {
                sw.Restart();
                sink += TraceLikelihood.logLikelihood(trace, theta, data);
                five[i] = sw.Elapsed.TotalMilliseconds;
            }
            double l = Median([.. five]);
            if (r < 0) continue; // warm-up rounds (tiering)
            euler.Add(e); grad.Add(g); ll.Add(l);
            ratioGrad.Add(e / g); ratioLl.Add(e / l);
        }
        Console.WriteLine(
            $"median ms: Euler CD {Median(euler):F3}, LL+grad {Median(grad):F3}, LL {Median(ll):F3} | " +
            $"median ratio Euler CD / LL+grad {Median(ratioGrad):F2}, Euler CD / LL {Median(ratioLl):F2} | " +
            $"best: Euler CD {euler.Min():F3}, LL+grad {grad.Min():F3}, LL {ll.Min():F3} (sink {sink:G3})");
        Console.WriteLine($"load at the end {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    private static double Median(List<double> xs)
    {
        var a = xs.ToArray();
        Array.Sort(a);
        return a.Length % 2 == 1 ? a[a.Length / 2] : 0.5 * (a[a.Length / 2 - 1] + a[a.Length / 2]);
    }
}
