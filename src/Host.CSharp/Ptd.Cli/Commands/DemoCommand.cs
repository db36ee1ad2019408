using System.Diagnostics;
using System.Globalization;
using Microsoft.FSharp.Core;
using Ptd.Cli.Plots;
using Ptd.Core;
using Ptd.Host.Caching;
using Ptd.Host.Kernels;
using Ptd.Host.Models;
using Ptd.Host.Svgd;
using Ptd.Host.Traces;

namespace Ptd.Cli.Commands;

/// <summary>
/// <c>ptd demo</c>: the whole pipeline in one command on the local-disk cache — model, trace (cached),
/// moments next to the closed forms, exact densities, simulated data at a known θ, SVGD posterior
/// next to the truth, a plot. A second run finds the trace and the kernel in the cache.
/// </summary>
public sealed class DemoCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "demo";

    /// <inheritdoc />
    public string Summary => "the whole pipeline: coalescent model → trace → moments → density → data → SVGD posterior";

    /// <inheritdoc />
    public string Usage =>
        "ptd demo [--n 10] [--theta 1.5] [--observations 200] [--particles 32] [--iterations 250] [--seed 1]\n" +
        "         [--plot ptd-demo-posterior.png | --plot none] [--no-cache]\n\n" +
        "Runs on the built-in Kingman coalescent (θ = pair-coalescence rate) and the local-disk cache\n" +
        "(PTD_CACHE / PTD_CACHE_DIR, default ~/.ptd/cache); needs no files or servers. Run it twice: the\n" +
        "second run loads the trace and the likelihood kernel from the cache.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--n", "--theta", "--observations", "--particles", "--iterations", "--seed", "--plot"], ["--no-cache"]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var n = args.Int("--n", 10, 2, 40);
        var truth = args.Double("--theta") ?? 1.5;
        if (!(truth > 0)) throw new UsageException("--theta: the true pair-coalescence rate must be > 0");
        var observations = args.Int("--observations", 200, 10, 1_000_000);
        var particles = args.Int("--particles", 32, 2, 10_000);
        var iterations = args.Int("--iterations", 250, 1, 1_000_000);
        var seed = args.Int("--seed", 1);
        var plotPath = args.Get("--plot") ?? "ptd-demo-posterior.png";
        var clock = Stopwatch.StartNew();

        stdout.WriteLine($"PtdPipeline demo — Kingman coalescent with n = {n} samples (block-counting states)");
        stdout.WriteLine();
        var cache = args.Has("--no-cache") ? null : ArtifactCache.FromEnvironment(log: output.Progress);
        try
        {
            return Pipeline(stdout, output, cache, n, truth, observations, particles, iterations, seed, plotPath, clock);
        }
        finally
        {
            // Disposing the cache flushes its statistics ledger (ptd cache stats).
            cache?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static int Pipeline(TextWriter stdout, Output output, IArtifactCache? cache, int n, double truth, int observations,
        int particles, int iterations, int seed, string plotPath, Stopwatch clock)
    {
        string Ms(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:F1} ms");
        using var traces = new TraceStore(cache);
        var graph = Ptd.Core.Models.coalescent(n, FSharpOption<double>.None);
        var model = new PhaseTypeModel(graph, traces);
        var info = model.Info();
        stdout.WriteLine($"1. model      {info.Vertices:N0} vertices, {info.Edges:N0} edges, acyclic: {(info.IsAcyclic ? "yes" : "no")}, " +
                         $"{info.Parameters} parameter (θ = pair-coalescence rate) — built in {Ms(clock.Elapsed)}");
        var lookup = model.GetTraceLookup();
        var where = cache is null ? "cache off" : lookup.Origin == TraceOrigin.CacheHit ? $"cache hit ({lookup.Tier})" : "recorded and stored in the cache";
        stdout.WriteLine($"2. trace      {lookup.Trace.OpCount:N0} ops, {lookup.Trace.CommandCount:N0} reward commands — {where}");
        stdout.WriteLine($"             key {lookup.Key.Hex[..16]}… (SHA-256 of the model's structure)");
        stdout.WriteLine();

        double[] one = [1.0];
        var time = model.Moments(one, 3);
        var harmonic = Enumerable.Range(1, n - 1).Sum(i => 1.0 / i);
        var varT = Enumerable.Range(2, n - 1).Sum(k => Math.Pow(2.0 / (k * (k - 1.0)), 2));
        stdout.WriteLine("3. moments at θ = 1                  computed                closed form");
        stdout.WriteLine($"   E[T_MRCA]                         {Output.Num(time.Mean),-23} {Output.Num(2 * (1 - 1.0 / n))}");
        stdout.WriteLine($"   Var[T_MRCA]                       {Output.Num(time.Variance),-23} {Output.Num(varT)}");
        var lineages = Enumerable.Range(0, graph.VertexCount).Select(v => v == 0 ? 0.0 : graph.State(v).Sum()).ToArray();
        var length = model.Moments(one, 2, lineages);
        var varL = 4 * Enumerable.Range(1, n - 1).Sum(i => 1.0 / (i * (double)i));
        stdout.WriteLine($"   E[total branch length]            {Output.Num(length.Mean),-23} {Output.Num(2 * harmonic)}");
        stdout.WriteLine($"   Var[total branch length]          {Output.Num(length.Variance),-23} {Output.Num(varL)}");
        var singletons = model.Moments(one, 1, model.Reward(0));
        stdout.WriteLine($"   E[singleton branch length] (SFS)  {Output.Num(singletons.Mean),-23} {Output.Num(2.0)}");
        stdout.WriteLine();

        double[] times = [0.25, 0.5, 1, 2, 3, 4];
        var started = clock.Elapsed;
        var exact = model.Pdf(times, one);
        var exactTime = clock.Elapsed - started;
        var euler = model.Pdf(times, one, DensityMethod.Euler);
        stdout.WriteLine($"4. density of T_MRCA at θ = 1 (exact uniformization, all times in one sweep: {Ms(exactTime)})");
        stdout.WriteLine("   t      pdf                     cdf                     Euler g=1024 pdf (originals)");
        for (var i = 0; i < times.Length; i++)
            stdout.WriteLine($"   {Output.Num(times[i]),-6} {Output.Num(exact.Density[i]),-23} {Output.Num(exact.Cumulative[i]),-23} {Output.Num(euler.Density[i])}");
        stdout.WriteLine();

        var data = model.Sample(observations, [truth], seed);
        stdout.WriteLine($"5. data       {observations} times to the MRCA simulated at θ = {Output.Num(truth)} (seed {seed}), mean {Output.Num(Math.Round(data.Average(), 4))}");
        var registry = new KernelRegistry(cache);
        var svgd = new SvgdOptions
        {
            ParticleCount = particles,
            Iterations = iterations,
            StepSize = 0.1,
            Schedule = StepSchedule.Exponential,
            ExponentialDecay = Math.Pow(0.01, 1.0 / iterations),
            Seed = seed,
            Priors = ParameterPrior.ParseList("gamma:2,1"),
            ParameterNames = ["theta"],
            HistoryInterval = Math.Max(1, iterations / 200),
        };
        var result = InferenceService.RunAsync(graph, Observations.FromValues(data, "simulated"),
            new InferenceOptions { Svgd = svgd, Registry = registry }).GetAwaiter().GetResult();
        var p = result.Svgd.Parameters[0];
        var inside = p.Q025 <= truth && truth <= p.Q975;
        stdout.WriteLine($"6. SVGD       {particles} particles × {iterations} iterations, prior Gamma(2, 1) on θ, softplus transform — {result.Svgd.Elapsed.TotalSeconds:F2} s");
        stdout.WriteLine($"             likelihood kernel: {result.LikelihoodKernel}; time to first iteration {Ms(result.TimeToFirstIteration)}");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"   posterior  mean {p.Mean:G5}  sd {p.Sd:G3}  95 % interval [{p.Q025:G5}, {p.Q975:G5}]  truth {truth:G5} {(inside ? "(inside)" : "(outside!)")}"));
        if (plotPath != "none")
        {
            PosteriorPlot.Save(result.Svgd, plotPath, [truth]);
            stdout.WriteLine($"             plot: {plotPath}");
        }
        stdout.WriteLine();
        stdout.WriteLine($"done in {clock.Elapsed.TotalSeconds:F2} s. " +
                         (cache is null ? "" : lookup.Origin == TraceOrigin.CacheHit ? "Trace and kernel came from the cache. " : "Run it again: the trace and the kernel now come from the cache. ") +
                         "Next: ptd --help, docs/cli.md.");
        return 0;
    }
}
