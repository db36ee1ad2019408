using System.Diagnostics;
using Ptd.Core;
using Ptd.Host.Svgd;

namespace Ptd.Host.Kernels;

/// <summary>Settings of <see cref="InferenceService.RunAsync"/>.</summary>
public sealed record InferenceOptions
{
    /// <summary>The SVGD settings (particles, iterations, step, priors, transform, seed …).</summary>
    public SvgdOptions Svgd { get; init; } = new();

    /// <summary>The kernel registry (null: a private one without persistence; pass a shared one to reuse kernels).</summary>
    public KernelRegistry? Registry { get; init; }

    /// <summary>Likelihood settings (phasic's ε, threads).</summary>
    public LikelihoodOptions Likelihood { get; init; } = new();

    /// <summary>λ of the optional moment penalty −λ Σ_k w_k (E_θ[T^k] − m_k)² (0 = off, the default).</summary>
    public double MomentPenaltyWeight { get; init; }

    /// <summary>K, the number of raw moments the penalty matches (default 2).</summary>
    public int MomentPenaltyOrder { get; init; } = 2;

    /// <summary>Standardize the penalty by the sample moments (relative errors; default true).</summary>
    public bool StandardizeMoments { get; init; } = true;

    /// <summary>
    /// The θ-space distribution the initial particles are drawn from when neither
    /// <see cref="SvgdOptions.InitialParticles"/> nor sampleable priors give them (e.g. flat priors).
    /// Default LogNormal(0, 1).
    /// </summary>
    public Prior? InitialDistribution { get; init; }
}

/// <summary>The outcome of an inference run.</summary>
public sealed record InferenceResult
{
    /// <summary>The SVGD result (posterior particles and summaries in θ space, diagnostics, history).</summary>
    public required SvgdResult Svgd { get; init; }

    /// <summary>Where the likelihood kernel came from (memory, cache or built) and how long it took.</summary>
    public required KernelLookup LikelihoodKernel { get; init; }

    /// <summary>The moments kernel's lookup, when a moment penalty was used.</summary>
    public KernelLookup? MomentKernel { get; init; }

    /// <summary>The registry's counters after the run.</summary>
    public required KernelRegistryStatistics Registry { get; init; }

    /// <summary>Time from the call to the start of the first update (kernels ready, particles drawn).</summary>
    public required TimeSpan TimeToFirstIteration { get; init; }

    /// <summary>Total time of the call.</summary>
    public required TimeSpan Elapsed { get; init; }
}

/// <summary>
/// The whole inference pipeline in one call: model + data → kernel (from memory, the artifact
/// cache, or built) → <see cref="TraceLogDensity"/> (+ optional moment penalty) → SVGD.
/// </summary>
/// <example>
/// <code>
/// var registry = new KernelRegistry(ArtifactCache.FromEnvironment());
/// var result = await InferenceService.RunAsync(
///     ModelSource.Load("coalescent:n=10"), ObservationFile.Read("data.txt"),
///     new InferenceOptions { Registry = registry, Svgd = new SvgdOptions { Priors = ParameterPrior.ParseList("gamma:2,1") } },
///     progress, cancellationToken);
/// Console.WriteLine(result.Svgd.Parameters[0].Mean);
/// </code>
/// </example>
public static class InferenceService
{
    /// <summary>Runs the pipeline.</summary>
    /// <param name="model">The phase-type model (its rates' parameters are θ).</param>
    /// <param name="data">Observed absorption times (continuous) or jump counts (discrete).</param>
    /// <param name="options">Settings (null: defaults, which need sampleable priors or give LogNormal(0, 1) starting particles).</param>
    /// <param name="progress">Receives SVGD progress.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <exception cref="PtdException">Bad input: the data do not fit the model, priors, an observation of density 0 (the task faults).</exception>
    /// <exception cref="ArgumentException">Invalid options (thrown before any work).</exception>
    public static async Task<InferenceResult> RunAsync(Graph model, Observations data, InferenceOptions? options = null,
        IProgress<SvgdProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new InferenceOptions();
        options.Likelihood.Validate();
        if (!(options.MomentPenaltyWeight >= 0) || !double.IsFinite(options.MomentPenaltyWeight))
            throw new ArgumentException($"InferenceOptions.MomentPenaltyWeight is {options.MomentPenaltyWeight}; it must be a finite number ≥ 0.", nameof(options));
        if (options.MomentPenaltyOrder < 1)
            throw new ArgumentException($"InferenceOptions.MomentPenaltyOrder is {options.MomentPenaltyOrder}; it must be at least 1.", nameof(options));
        if (model.ParamLength < 1)
            throw new PtdException("the model has no parameters: there is nothing to infer (give a model whose rates are parameters, e.g. coalescent:n=10)");

        var clock = Stopwatch.StartNew();
        var svgd = WithInitialParticles(options.Svgd, model.ParamLength, options.InitialDistribution ?? Prior.LogNormal(0, 1));
        svgd.Validate(model.ParamLength);
        var registry = options.Registry ?? new KernelRegistry();
        var (kernel, lookup) = await registry.GetLikelihoodKernelAsync(model, cancellationToken).ConfigureAwait(false);
        var target = new TraceLogDensity(kernel, data, options.Likelihood);
        KernelLookup? momentLookup = null;
        if (options.MomentPenaltyWeight > 0)
        {
            var (momentKernel, ml) = await registry.GetMomentKernelAsync(model, cancellationToken).ConfigureAwait(false);
            momentLookup = ml;
            var sample = MomentPenalty.SampleRawMoments(data.Values, options.MomentPenaltyOrder);
            svgd = svgd with
            {
                Penalty = new MomentPenalty(new TraceMomentModel(momentKernel, options.MomentPenaltyOrder), sample,
                    options.MomentPenaltyWeight, options.StandardizeMoments),
            };
        }
        var firstIteration = clock.Elapsed;
        var result = await SvgdEngine.RunAsync(target, svgd, progress, cancellationToken).ConfigureAwait(false);
        return new InferenceResult
        {
            Svgd = result,
            LikelihoodKernel = lookup,
            MomentKernel = momentLookup,
            Registry = registry.GetStatistics(),
            TimeToFirstIteration = firstIteration,
            Elapsed = clock.Elapsed,
        };
    }

    /// <summary>
    /// Draws starting particles from <paramref name="initial"/> (θ space, within each transform's
    /// range) when the options give none and some prior cannot be sampled (flat priors, or none).
    /// </summary>
    internal static SvgdOptions WithInitialParticles(SvgdOptions svgd, int d, Prior initial)
    {
        if (svgd.InitialParticles is not null) return svgd;
        if (svgd.Priors is { } priors && priors.Count == d && priors.All(p => p.Prior.CanSample)) return svgd;
        if (!initial.CanSample)
            throw new PtdException($"the initial distribution {initial} cannot be sampled; give a proper one (e.g. lognormal:0,1)");
        var random = new SvgdRandom(svgd.Seed);
        var rows = new double[svgd.ParticleCount][];
        for (int p = 0; p < rows.Length; p++)
        {
            rows[p] = new double[d];
            for (int k = 0; k < d; k++)
            {
                double x = double.NaN;
                for (int attempt = 0; attempt < 1000 && !(svgd.TransformOf(k).InRange(x)); attempt++)
                    x = initial.Sample(random);
                if (!svgd.TransformOf(k).InRange(x))
                    throw new PtdException($"could not draw a starting value of parameter {k + 1} from {initial} inside the range of the {svgd.TransformOf(k).Name} transform");
                rows[p][k] = x;
            }
        }
        return svgd with { InitialParticles = rows };
    }
}
