using System.Diagnostics;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// `-- replay [rounds]`: the supplementary side-by-side measurement for <see cref="TraceReplayBenchmarks"/> on a shared
/// machine. Each round runs the baseline (build the graph, eliminate, E[T]) once and the replay
/// (<see cref="TraceEvaluator.Expectation"/>) ten times, interleaved so that both see the same load; it reports, per
/// model, the best and the median over the rounds of the wall time and of the process CPU time (which includes the
/// garbage collector's threads — the baseline allocates, the replay does not) and their ratios. The best round is the
/// one least disturbed by other processes, the figure closest to a quiet machine.
/// </summary>
internal static class ReplayHarness
{
    private const int ReplaysPerRound = 10;

    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 15;
        Console.WriteLine($"replay vs rebuild + eliminate; {rounds} rounds; load {KernelLoad()}");
        foreach (var model in new[] { "rabbits3:R=200", "coalescent:n=30" })
            Measure(model, rounds);
        Console.WriteLine($"load at the end {KernelLoad()}");
        return 0;
    }

    private static void Measure(string model, int rounds)
    {
        var graph = ModelSpec.build(model);
        var theta = TraceBench.Theta(graph);
        var reward = Rewards.ones(graph);
        var trace = TraceBench.Prepare(graph);
        var evaluator = new TraceEvaluator(trace);
        // Past TracePlan.CutAfter evaluations: the steady state (the planned replay).
        for (int i = 0; i < 12; i++) evaluator.Expectation(theta, reward);
        double expected = Baseline(model, theta);
        double replayed = evaluator.Expectation(theta, reward);
        if (Math.Abs(expected - replayed) > 1e-12 * Math.Abs(expected))
            throw new InvalidOperationException($"{model}: replay {replayed:R} differs from elimination {expected:R}");

        var process = Process.GetCurrentProcess();
        var baseWall = new List<double>();
        var baseCpu = new List<double>();
        var replayWall = new List<double>();
        var replayCpu = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            Baseline(model, theta);
            baseWall.Add(sw.Elapsed.TotalMilliseconds);
            process.Refresh();
            baseCpu.Add((process.TotalProcessorTime - cpu).TotalMilliseconds);

            GC.Collect();
            process.Refresh();
            cpu = process.TotalProcessorTime;
            sw.Restart();
            for (int i = 0; i < ReplaysPerRound; i++) evaluator.Expectation(theta, reward);
            replayWall.Add(sw.Elapsed.TotalMilliseconds / ReplaysPerRound);
            process.Refresh();
            replayCpu.Add((process.TotalProcessorTime - cpu).TotalMilliseconds / ReplaysPerRound);
        }
        Console.WriteLine(
            $"{model}: {trace.OpCount:N0} ops | rebuild + eliminate: wall best {Min(baseWall):F1} ms, median {Median(baseWall):F1} ms; " +
            $"CPU best {Min(baseCpu):F1} ms, median {Median(baseCpu):F1} ms | replay: wall best {Min(replayWall):F2} ms, median {Median(replayWall):F2} ms; " +
            $"CPU best {Min(replayCpu):F2} ms, median {Median(replayCpu):F2} ms | ratio wall best {Min(baseWall) / Min(replayWall):F1}×, " +
            $"median {Median(baseWall) / Median(replayWall):F1}×; CPU best {Min(baseCpu) / Min(replayCpu):F1}×, median {Median(baseCpu) / Median(replayCpu):F1}×");
    }

    private static double Baseline(string model, double[] theta)
    {
        var g = ModelSpec.build(model);
        var x = Rewards.ones(g);
        Moments.replayInPlace(Elimination.eliminate(g, theta), x);
        return x[0];
    }

    private static double Min(List<double> xs) => xs.Min();

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string KernelLoad() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
