using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Ptd.Cli.Plots;
using Ptd.Core;
using Ptd.Host.Caching;
using Ptd.Host.Kernels;
using Ptd.Host.Models;
using Ptd.Host.Svgd;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd infer MODEL --data data.txt …</c>: the posterior of θ by SVGD on the exact likelihood.</summary>
public sealed class InferCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "infer";

    /// <inheritdoc />
    public string Summary => "posterior of θ from observed data (SVGD on the exact likelihood)";

    /// <inheritdoc />
    public string Usage =>
        "ptd infer MODEL --data FILE [--particles 64] [--iterations 1000] [--prior SPEC ...]\n" +
        "          [--transform softplus|exp|identity] [--step 0.1] [--decay G] [--seed 1]\n" +
        "          [-o result.json] [--plot posterior.png|.svg] [--truth θ...] [--names a,b]\n" +
        "          [--penalty L] [--penalty-moments K] [--epsilon E] [--init SPEC] [--history N]\n" +
        "          [--progress N] [--no-cache] [--json] [--verbose]\n\n" +
        "FILE holds one observation per line (times; jump counts for a discrete model; # comments).\n" +
        "Priors are family:args per parameter, repeated or comma-separated in parameter order:\n" +
        "gamma:shape,rate  lognormal:mu,sigma  normal:mu,sigma  uniform:lo,hi  flat; append @phi to put\n" +
        "one on the unconstrained φ. One prior applies to every parameter. Default: flat on θ, with the\n" +
        "starting particles drawn from --init (default lognormal:0,1).\n" +
        "The step η decays by the factor G per iteration (default: to 10 % of η over the run; --decay 1\n" +
        "keeps it constant). --penalty L adds −L Σ_k ((E[T^k] − m_k)/m_k)² for K moments (default 2).\n" +
        "--epsilon E is phasic's log(f + E) compatibility mode (default 0: exact, zero densities stop).\n" +
        "Prints a summary table (mean, sd, 2.5 %, 97.5 %, truth); -o writes every particle as JSON;\n" +
        "--plot draws the marginals and the particle trajectories. Kernels are cached (PTD_CACHE, see\n" +
        "docs/configuration.md); --verbose shows where they came from.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var (rest, priorSpecs) = ExtractPriors(argv);
        var args = Args.Parse(Name, rest,
            ["--data", "--particles", "--iterations", "--transform", "--step", "--decay", "--seed", "--output", "--plot",
             "--truth", "--names", "--penalty", "--penalty-moments", "--epsilon", "--init", "--history", "--progress"],
            ["--json", "--no-cache"],
            new Dictionary<string, string> { ["-o"] = "--output", ["-n"] = "--particles" });
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var clock = Stopwatch.StartNew();
        var source = args.Positional("MODEL");
        var dataPath = args.Get("--data") ?? throw new UsageException("missing --data FILE (one observation per line; make one with ptd simulate)");
        int particles = args.Int("--particles", 64, 2, 100_000);
        int iterations = args.Int("--iterations", 1000, 1, 100_000_000);
        int seed = args.Int("--seed", 1);
        double step = args.Double("--step") ?? 0.1;
        if (!(step > 0)) throw new UsageException($"--step {Output.Num(step)}: the step size must be > 0");
        double decay = args.Double("--decay") ?? Math.Pow(0.1, 1.0 / iterations);
        if (!(decay > 0 && decay <= 1)) throw new UsageException($"--decay {Output.Num(decay)}: the decay factor must be in (0, 1] (1 = constant step)");
        var transform = ParameterTransform.Parse(args.Get("--transform") ?? "softplus");
        var plotPath = args.Get("--plot");
        int history = args.Int("--history", plotPath is null ? 0 : Math.Max(1, iterations / 200), 0);
        double penalty = args.Double("--penalty") ?? 0;
        if (penalty < 0) throw new UsageException("--penalty: the weight must be ≥ 0");
        int penaltyMoments = args.Int("--penalty-moments", 2, 1, 8);
        double epsilon = args.Double("--epsilon") ?? 0;
        if (epsilon < 0) throw new UsageException("--epsilon: must be ≥ 0");
        var init = Prior.Parse(args.Get("--init") ?? "lognormal:0,1");

        var graph = output.Stage("load model", () => ModelSource.Load(source));
        int d = graph.ParamLength;
        if (d == 0)
            throw new UsageException($"model '{source}' has no parameters: there is nothing to infer (omit a rate to make it θ, e.g. coalescent:n=10)");
        var data = output.Stage("read data", () => ObservationFile.Read(dataPath, graph.IsDiscrete));
        output.Progress($"{data.Count:N0} observations from {dataPath}");
        var priors = Priors(priorSpecs, d);
        var names = Names(args.Get("--names"), graph, d);
        var truth = args.Doubles("--truth");
        if (truth is not null && truth.Length != d)
            throw new UsageException($"--truth has {truth.Length} value(s) but the model has {d} parameter(s)");

        var svgd = new SvgdOptions
        {
            ParticleCount = particles,
            Iterations = iterations,
            StepSize = step,
            Schedule = decay < 1 ? StepSchedule.Exponential : StepSchedule.Constant,
            ExponentialDecay = decay,
            Seed = seed,
            Transform = transform,
            Priors = priors,
            ParameterNames = names,
            HistoryInterval = history,
        };

        IArtifactCache? cache = args.Has("--no-cache") ? null : output.Stage("open cache", () => ArtifactCache.FromEnvironment(log: output.Progress));
        try
        {
            if (cache is not null)
                foreach (var w in cache.Warnings) output.Progress($"cache: {w}");
            var registry = new KernelRegistry(cache);
            var progress = new ProgressLine(stderr, iterations, ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected);
            svgd = svgd with { ProgressInterval = progress.Interval(args.Int("--progress", 0, 0)) };
            var options = new InferenceOptions
            {
                Svgd = svgd,
                Registry = registry,
                Likelihood = new LikelihoodOptions { Epsilon = epsilon },
                MomentPenaltyWeight = penalty,
                MomentPenaltyOrder = penaltyMoments,
                InitialDistribution = init,
            };
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            InferenceResult result;
            try
            {
                result = InferenceService.RunAsync(graph, data, options, progress, cts.Token).GetAwaiter().GetResult();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ex.Message.Split(" (Parameter")[0]);
            }
            catch (OperationCanceledException)
            {
                progress.Finish();
                stderr.WriteLine("ptd infer: interrupted");
                return 130;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            progress.Finish();
            Report(output, result, cache, registry);

            if (args.Get("--output") is { } outPath)
            {
                output.Stage($"write {outPath}", () =>
                {
                    ModelSource.SaveText(result.Svgd.ToJson(), outPath);
                    return 0;
                });
            }
            if (plotPath is not null)
            {
                output.Stage($"plot {plotPath}", () =>
                {
                    PosteriorPlot.Save(result.Svgd, plotPath, truth);
                    return 0;
                });
                if (PosteriorPlot.FontProblem() is { } problem) stderr.WriteLine($"ptd infer: warning: {problem}");
            }
            foreach (var w in result.Svgd.Diagnostics.Warnings) stderr.WriteLine($"ptd infer: warning: {w}");
            if (args.Has("--json")) output.Json(SummaryJson(output, result, truth));
            else WriteTable(stdout, result, truth, clock.Elapsed);
            return 0;
        }
        finally
        {
            cache?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Collects every <c>--prior X</c> (the option may repeat) and returns the other arguments.</summary>
    private static (List<string> Others, List<string> Specs) ExtractPriors(IReadOnlyList<string> argv)
    {
        var rest = new List<string>();
        var priors = new List<string>();
        for (int i = 0; i < argv.Count; i++)
        {
            if (argv[i] == "--prior")
            {
                if (i + 1 >= argv.Count) throw new UsageException("option --prior needs a value, e.g. --prior gamma:2,1");
                priors.Add(argv[++i]);
            }
            else if (argv[i].StartsWith("--prior=", StringComparison.Ordinal)) priors.Add(argv[i]["--prior=".Length..]);
            else rest.Add(argv[i]);
        }
        return (rest, priors);
    }

    private static IReadOnlyList<ParameterPrior> Priors(List<string> specs, int d)
    {
        if (specs.Count == 0) return Enumerable.Repeat(new ParameterPrior(Prior.Flat), d).ToArray();
        var list = specs.SelectMany(s => ParameterPrior.ParseList(s)).ToList();
        if (list.Count == 1 && d > 1) return Enumerable.Repeat(list[0], d).ToArray();
        if (list.Count != d)
            throw new UsageException(
                $"--prior: {list.Count} prior(s) given ({string.Join(", ", list)}) but the model has {d} parameter(s); give one per parameter in order, or one for all");
        return list;
    }

    private static string[] Names(string? given, Graph graph, int d)
    {
        if (given is not null)
        {
            var names = given.Split(',', StringSplitOptions.TrimEntries);
            if (names.Length != d) throw new UsageException($"--names has {names.Length} name(s) but the model has {d} parameter(s)");
            return names;
        }
        return Enumerable.Range(1, d).Select(k => $"theta{k}").ToArray();
    }

    private static void Report(Output output, InferenceResult result, IArtifactCache? cache, KernelRegistry registry)
    {
        if (!output.Verbose) return;
        output.Progress($"likelihood kernel: {result.LikelihoodKernel}");
        if (result.MomentKernel is { } m) output.Progress($"moments kernel: {m}");
        var s = registry.GetStatistics();
        output.Progress($"kernel registry: {s.MemoryHits} memory hit(s), {s.MemoryMisses} miss(es), {s.CacheHits} cache hit(s), {s.Builds} build(s), {s.Rejected} rejected");
        if (cache is null) output.Progress("artifact cache: off (--no-cache)");
        else
        {
            var stats = cache.GetStatistics();
            if (cache.Tiers.Count == 0) output.Progress("artifact cache: no tiers (PTD_CACHE=off)");
            foreach (var t in stats.Tiers)
                output.Progress($"artifact cache tier {t.Tier}, kind {t.Kind}: {t.Hits} hit(s), {t.Misses} miss(es), {t.Writes} write(s)");
        }
        output.Progress(string.Create(CultureInfo.InvariantCulture,
            $"time to first iteration {result.TimeToFirstIteration.TotalMilliseconds:F1} ms; SVGD {result.Svgd.Elapsed.TotalSeconds:F2} s"));
    }

    private static void WriteTable(TextWriter stdout, InferenceResult result, double[]? truth, TimeSpan elapsed)
    {
        var r = result.Svgd;
        string header = $"{"parameter",-14} {"mean",12} {"sd",12} {"2.5 %",12} {"97.5 %",12}" + (truth is null ? "" : $" {"truth",12}");
        stdout.WriteLine(header);
        for (int k = 0; k < r.Parameters.Count; k++)
        {
            var p = r.Parameters[k];
            var line = string.Create(CultureInfo.InvariantCulture, $"{p.Name,-14} {p.Mean,12:G6} {p.Sd,12:G6} {p.Q025,12:G6} {p.Q975,12:G6}");
            if (truth is not null) line += string.Create(CultureInfo.InvariantCulture, $" {truth[k],12:G6}");
            stdout.WriteLine(line);
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{r.Particles.Length} particles, {r.Iterations} iterations, {elapsed.TotalSeconds:F2} s; likelihood kernel: {result.LikelihoodKernel.Source.ToString().ToLowerInvariant()}"));
    }

    private static JsonObject SummaryJson(Output output, InferenceResult result, double[]? truth)
    {
        var parameters = new JsonArray();
        for (int k = 0; k < result.Svgd.Parameters.Count; k++)
        {
            var p = result.Svgd.Parameters[k];
            var o = new JsonObject
            {
                ["name"] = p.Name,
                ["mean"] = p.Mean,
                ["sd"] = p.Sd,
                ["q025"] = p.Q025,
                ["q50"] = p.Q50,
                ["q975"] = p.Q975,
            };
            if (truth is not null) o["truth"] = truth[k];
            parameters.Add(o);
        }
        return new JsonObject
        {
            ["parameters"] = parameters,
            ["particles"] = result.Svgd.Particles.Length,
            ["iterations"] = result.Svgd.Iterations,
            ["kernel"] = new JsonObject
            {
                ["source"] = result.LikelihoodKernel.Source.ToString().ToLowerInvariant(),
                ["tier"] = result.LikelihoodKernel.Tier,
                ["key"] = result.LikelihoodKernel.Key.Digest,
            },
            ["timeToFirstIterationMs"] = result.TimeToFirstIteration.TotalMilliseconds,
            ["elapsedSeconds"] = result.Elapsed.TotalSeconds,
            ["warnings"] = new JsonArray(result.Svgd.Diagnostics.Warnings.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray()),
        };
    }

    /// <summary>
    /// Progress on stderr: one line rewritten in place (\r) on a terminal, plain lines every N
    /// iterations otherwise. Reports arrive synchronously from the SVGD loop.
    /// </summary>
    private sealed class ProgressLine(TextWriter stderr, int iterations, bool terminal) : IProgress<SvgdProgress>
    {
        private long _lastDraw = -1;
        private bool _open;

        public int Interval(int requested) =>
            requested > 0 ? requested : terminal ? Math.Max(1, iterations / 500) : Math.Max(1, iterations / 10);

        public void Report(SvgdProgress p)
        {
            var text = string.Create(CultureInfo.InvariantCulture,
                $"iteration {p.Iteration}/{p.Iterations}  mean log posterior {p.MeanLogPosterior:G8}  step {p.StepNorm:G3}  {p.Elapsed.TotalSeconds:F1} s");
            if (!terminal)
            {
                stderr.WriteLine(text);
                return;
            }
            long now = Environment.TickCount64;
            if (p.Iteration < p.Iterations && _lastDraw >= 0 && now - _lastDraw < 100) return;
            _lastDraw = now;
            stderr.Write("\r" + text.PadRight(100));
            _open = true;
        }

        public void Finish()
        {
            if (_open) stderr.WriteLine();
            _open = false;
        }
    }
}
