using System.Diagnostics;
using System.Globalization;
using Ptd.Core;
using Ptd.Host.Caching;
using Ptd.Host.Kernels;
using Ptd.Host.Svgd;

namespace Ptd.Bench;

/// <summary>
/// Time to the first SVGD iteration in a fresh process, cold (empty cache directory) against warm
/// (the kernels persisted by a previous process), side by side; plus the split of one likelihood
/// evaluation between the sweep and the per-observation sums (what IL emission could speed up).
/// Each measurement runs in a new child process (cold JIT, like a user's run); medians of 5.
/// </summary>
public static class KernelHarness
{
    private sealed record Scenario(string Name, string What, string Model, int Observations, double PenaltyWeight, bool PrewarmOnly = false);

    private static readonly Scenario[] Scenarios =
    [
        new("coal10", "coalescent n=10, 1,000 observations (likelihood kernel)", "coalescent:n=10", 1000, 0),
        new("coal20-moments", "coalescent n=20, 1,000 observations, moment penalty (likelihood + moments kernel: the trace)", "coalescent:n=20", 1000, 1.0),
        new("coal40-prewarm", "coalescent n=40: the moments kernel alone (trace recording + optimization vs load), via PrewarmAsync", "coalescent:n=40", 0, 0, PrewarmOnly: true),
    ];

    /// <summary>Runs one scenario in this process (the child) and prints its figures.</summary>
    public static int Child(string name, string cacheDir)
    {
        var startup = DateTime.Now - Process.GetCurrentProcess().StartTime;
        var s = Scenarios.First(x => x.Name == name);
        var clock = Stopwatch.StartNew();
        var graph = ModelSpec.build(s.Model);
        var modelMs = clock.Elapsed.TotalMilliseconds;
        if (s.PrewarmOnly)
        {
            clock.Restart();
            var store = new ArtifactCacheOptions { AutoEvict = false };
            store.Tiers.Add(new CacheTierOptions { Store = new Ptd.Storage.LocalDisk.LocalDiskStore(cacheDir, "file://" + cacheDir), Name = "disk" });
            var c = ArtifactCache.Create(store);
            var openMs = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            var report = new KernelRegistry(c).PrewarmAsync(graph, graph.ParamLength, [DataLayout.Moments]).GetAwaiter().GetResult();
            var prewarmMs = clock.Elapsed.TotalMilliseconds;
            c.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"startup_ms={startup.TotalMilliseconds:F1} model_ms={modelMs:F1} cache_ms={openMs:F1} kernels_ms={prewarmMs:F1} total_ms={startup.TotalMilliseconds + modelMs + openMs + prewarmMs:F1} source={report.Kernels[0].Source}/{report.Kernels[0].PayloadBytes}B"));
            return 0;
        }
        // The data a user would read from a file (simulated here, outside the measurement).
        var data = Observations.FromValues(Sampling.sample(graph, graph.Weights([1.0]), s.Observations, 12345));
        clock.Restart();
        var options = new ArtifactCacheOptions { AutoEvict = false };
        options.Tiers.Add(new CacheTierOptions { Store = new Ptd.Storage.LocalDisk.LocalDiskStore(cacheDir, "file://" + cacheDir), Name = "disk" });
        var cache = ArtifactCache.Create(options);
        var cacheMs = clock.Elapsed.TotalMilliseconds;
        var result = InferenceService.RunAsync(graph, data, new InferenceOptions
        {
            Registry = new KernelRegistry(cache),
            MomentPenaltyWeight = s.PenaltyWeight,
            Svgd = new SvgdOptions { ParticleCount = 8, Iterations = 1, Seed = 1, Priors = [new ParameterPrior(Prior.Gamma(2, 1))] },
        }).GetAwaiter().GetResult();
        cache.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var kernelMs = result.TimeToFirstIteration.TotalMilliseconds;
        var total = startup.TotalMilliseconds + modelMs + cacheMs + kernelMs;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"startup_ms={startup.TotalMilliseconds:F1} model_ms={modelMs:F1} cache_ms={cacheMs:F1} kernels_ms={kernelMs:F1} total_ms={total:F1} source={result.LikelihoodKernel.Source}/{result.MomentKernel?.Source.ToString() ?? "-"}"));
        return 0;
    }

    /// <summary>Runs every scenario cold and warm, 5 times each, in fresh processes; then the evaluation split.</summary>
    public static int Run(string[] names)
    {
        var dll = typeof(KernelHarness).Assembly.Location;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}");
        foreach (var s in Scenarios.Where(x => names.Length == 0 || names.Contains(x.Name)))
        {
            var cold = new List<Dictionary<string, string>>();
            var warm = new List<Dictionary<string, string>>();
            for (int i = 0; i < 5; i++)
            {
                var dir = Path.Combine(Path.GetTempPath(), "ptd-kernel-harness", Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(dir);
                cold.Add(ChildRun(dll, s.Name, dir));
                warm.Add(ChildRun(dll, s.Name, dir));
                Directory.Delete(dir, true);
            }
            string Median(List<Dictionary<string, string>> runs, string key) =>
                runs.Select(r => double.Parse(r[key], CultureInfo.InvariantCulture)).Order().ElementAt(runs.Count / 2).ToString("0.0", CultureInfo.InvariantCulture);
            double M(List<Dictionary<string, string>> runs, string key) => double.Parse(Median(runs, key), CultureInfo.InvariantCulture);
            Console.WriteLine(s.What);
            foreach (var (label, runs) in new[] { ("cold", cold), ("warm", warm) })
                Console.WriteLine($"  {label}: kernels {runs[0]["source"]}; median of 5: startup {Median(runs, "startup_ms")} ms, model {Median(runs, "model_ms")} ms, cache open {Median(runs, "cache_ms")} ms, kernels+first draw {Median(runs, "kernels_ms")} ms, total {Median(runs, "total_ms")} ms");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  cold/warm: kernels {M(cold, "kernels_ms") / M(warm, "kernels_ms"):F1}x, time to first iteration {M(cold, "total_ms") / M(warm, "total_ms"):F2}x"));
        }
        Split();
        return 0;
    }

    private static Dictionary<string, string> ChildRun(string dll, string name, string dir)
    {
        var psi = new ProcessStartInfo("dotnet", [dll, "kernels-child", name, dir]) { RedirectStandardOutput = true, UseShellExecute = false };
        psi.Environment["DOTNET_gcServer"] = "0";
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return output.Split(' ').Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
    }

    /// <summary>
    /// One evaluation (coalescent n=10, θ = 1) with the 1,000 observations against the same sweep
    /// with only the largest observation: the difference is the per-observation Poisson sums.
    /// </summary>
    private static void Split()
    {
        var g = ModelSpec.build("coalescent:n=10");
        var values = Sampling.sample(g, g.Weights([1.0]), 1000, 12345);
        var kernel = new KernelRegistry().GetLikelihoodKernelAsync(g).GetAwaiter().GetResult().Kernel;
        var all = Observations.FromValues(values);
        var one = Observations.FromValues([values.Max()]);
        double[] theta = [1.0];
        var grad = new double[1];
        double Time(Observations data)
        {
            for (int i = 0; i < 200; i++) kernel.LogLikelihood(theta, data, grad);
            var samples = new List<double>();
            // CPU time of this (single-threaded) loop: robust to other work on a shared machine.
            var process = Process.GetCurrentProcess();
            for (int r = 0; r < 7; r++)
            {
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                for (int i = 0; i < 200; i++) kernel.LogLikelihood(theta, data, grad);
                process.Refresh();
                samples.Add((process.TotalProcessorTime - cpu).TotalMilliseconds * 1000 / 200);
            }
            return samples.Order().ElementAt(3);
        }
        double tAll = Time(all), tOne = Time(one);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"one evaluation, coalescent n=10, θ=1 ({kernel.TransientCount} transient states, {kernel.EdgeCount} edges): 1,000 observations {tAll:F1} µs CPU; sweep alone (1 observation at the largest t) {tOne:F1} µs = {100 * tOne / tAll:F0} % of it"));
    }
}
