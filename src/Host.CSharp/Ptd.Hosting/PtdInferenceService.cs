using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Ptd.Core;
using Ptd.Host.Kernels;
using Ptd.Host.Models;
using Ptd.Host.Svgd;

namespace Ptd.Hosting;

/// <summary>An inference request as a service receives it (e.g. the body of a POST).</summary>
/// <param name="Model">A built-in model spec such as <c>coalescent:n=10</c> (files only with <see cref="PtdInferenceSettings.AllowModelFiles"/>).</param>
/// <param name="Data">The observations: absorption times (continuous model) or jump counts (discrete model).</param>
/// <param name="Priors">Priors as <c>family:args</c> per parameter in order, or one for all (e.g. <c>gamma:2,1</c>); null or empty: flat.</param>
/// <param name="Particles">SVGD particles (null: <see cref="PtdInferenceSettings.Particles"/>).</param>
/// <param name="Iterations">SVGD iterations (null: <see cref="PtdInferenceSettings.Iterations"/>).</param>
/// <param name="Seed">The random seed (null: <see cref="PtdInferenceSettings.Seed"/>).</param>
public sealed record PtdInferenceRequest(string? Model, double[]? Data, string[]? Priors = null, int? Particles = null, int? Iterations = null, int? Seed = null);

/// <summary>One parameter's posterior summary.</summary>
/// <param name="Name">The parameter name (<c>theta1</c>, …).</param>
/// <param name="Mean">Posterior mean.</param>
/// <param name="Sd">Posterior standard deviation.</param>
/// <param name="Q025">2.5 % quantile.</param>
/// <param name="Q975">97.5 % quantile.</param>
public sealed record PtdParameterSummary(string Name, double Mean, double Sd, double Q025, double Q975);

/// <summary>A compact, JSON-friendly answer to a <see cref="PtdInferenceRequest"/>.</summary>
/// <param name="Model">The model spec.</param>
/// <param name="Observations">How many observations were used.</param>
/// <param name="Parameters">The posterior per parameter (θ space).</param>
/// <param name="Kernel">Where the likelihood kernel came from: <c>Memory</c>, <c>Cache</c> or <c>Built</c>.</param>
/// <param name="KernelTier">The cache tier that held the kernel, when <paramref name="Kernel"/> is <c>Cache</c>.</param>
/// <param name="Particles">SVGD particles used.</param>
/// <param name="Iterations">SVGD iterations run.</param>
/// <param name="Warnings">Convergence warnings (e.g. particle collapse).</param>
/// <param name="Milliseconds">Wall time of the call.</param>
public sealed record PtdInferenceSummary(string Model, int Observations, IReadOnlyList<PtdParameterSummary> Parameters, string Kernel, string? KernelTier,
    int Particles, int Iterations, IReadOnlyList<string> Warnings, double Milliseconds);

/// <summary>
/// SVGD inference as a service: model + observations → the posterior of θ, with likelihood kernels from the registered
/// <see cref="KernelRegistry"/> (layer 2 in memory, persisted through the same cache tiers as traces, so a kernel built
/// by one process or by <c>ptd cache prewarm</c> is loaded by the next). Registered as a singleton by
/// <see cref="PtdServiceCollectionExtensions.AddPtdPipeline"/>; thread-safe (concurrent requests for one model share
/// one kernel build).
/// </summary>
public sealed class PtdInferenceService
{
    private readonly PtdInferenceSettings _settings;
    private readonly ILogger<PtdInferenceService> _logger;

    /// <summary>Creates the service (the container does this).</summary>
    /// <param name="registry">The kernel registry (backed by the pipeline's cache).</param>
    /// <param name="options">The pipeline options (their <c>Inference</c> section).</param>
    /// <param name="logger">Receives one line per run (model, kernel source, timing); never data or credentials.</param>
    public PtdInferenceService(KernelRegistry registry, IOptions<PtdPipelineOptions> options, ILogger<PtdInferenceService> logger)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        Registry = registry;
        _settings = options.Value.Inference ?? new PtdInferenceSettings();
        _logger = logger;
    }

    /// <summary>The kernel registry every run uses.</summary>
    public KernelRegistry Registry { get; }

    /// <summary>
    /// Runs the whole pipeline on a graph with full control over the settings (<see cref="InferenceService.RunAsync"/>),
    /// always with this service's <see cref="Registry"/>.
    /// </summary>
    /// <param name="model">The model (its parameters are θ).</param>
    /// <param name="data">The observations.</param>
    /// <param name="options">The settings (null: defaults; <see cref="InferenceOptions.Registry"/> is replaced).</param>
    /// <param name="progress">Receives SVGD progress.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The posterior, the kernel's origin and timings.</returns>
    /// <exception cref="PtdException">Bad input (data that do not fit the model, a density of 0).</exception>
    /// <exception cref="ArgumentException">Invalid options.</exception>
    public async Task<InferenceResult> RunAsync(Graph model, Observations data, InferenceOptions? options = null,
        IProgress<SvgdProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var o = (options ?? new InferenceOptions()) with { Registry = Registry };
        var result = await InferenceService.RunAsync(model, data, o, progress, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("inference: {Observations} observation(s), {Particles} particles x {Iterations} iterations in {Seconds:F2} s; likelihood kernel {Kernel}",
            data.Count, result.Svgd.Particles.Length, result.Svgd.Iterations, result.Elapsed.TotalSeconds, result.LikelihoodKernel.ToString());
        return result;
    }

    /// <summary>
    /// Runs a request: checks it against the <c>Ptd:Inference</c> limits, fills what it leaves out from the defaults,
    /// and returns the posterior summary.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="progress">Receives SVGD progress.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The posterior summary.</returns>
    /// <exception cref="PtdException">The request is invalid; the message says what is wrong and how to fix it.</exception>
    public async Task<PtdInferenceSummary> RunAsync(PtdInferenceRequest request, IProgress<SvgdProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var s = _settings;
        var spec = request.Model;
        if (string.IsNullOrWhiteSpace(spec)) throw new PtdException("no model given: pass a built-in spec such as coalescent:n=10");
        if (!s.AllowModelFiles && !ModelSpec.isSpec(spec))
            throw new PtdException($"'{spec}' is not a built-in model spec ({string.Join(", ", ModelSpec.names)}); model files are not accepted here");
        if (request.Data is not { Length: > 0 } values) throw new PtdException("no data given: pass the observations (times, or jump counts for a discrete model)");
        if (values.Length > s.MaxObservations) throw new PtdException($"{values.Length} observations given; this service accepts at most {s.MaxObservations} (Ptd:Inference:MaxObservations)");
        int particles = request.Particles ?? s.Particles;
        if (particles < 2 || particles > s.MaxParticles) throw new PtdException($"particles must be between 2 and {s.MaxParticles}, not {particles}");
        int iterations = request.Iterations ?? s.Iterations;
        if (iterations < 1 || iterations > s.MaxIterations) throw new PtdException($"iterations must be between 1 and {s.MaxIterations}, not {iterations}");

        var graph = ModelSource.Load(spec);
        int d = graph.ParamLength;
        if (d == 0) throw new PtdException($"model '{spec}' has no parameters: there is nothing to infer (omit a rate to make it θ, e.g. coalescent:n=10)");
        var priors = Priors(request.Priors, d);
        var svgd = new SvgdOptions
        {
            ParticleCount = particles,
            Iterations = iterations,
            StepSize = s.StepSize,
            Schedule = s.FinalStepFraction < 1 ? StepSchedule.Exponential : StepSchedule.Constant,
            ExponentialDecay = Math.Pow(s.FinalStepFraction, 1.0 / iterations),
            Seed = request.Seed ?? s.Seed,
            Transform = ParameterTransform.Parse(s.Transform),
            Priors = priors,
            ParameterNames = Enumerable.Range(1, d).Select(k => $"theta{k}").ToArray(),
        };
        var options = new InferenceOptions { Svgd = svgd, InitialDistribution = Prior.Parse(s.InitialDistribution) };
        InferenceResult r;
        try
        {
            r = await RunAsync(graph, Observations.FromValues(values, "request"), options, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            throw new PtdException(e.Message.Split(" (Parameter")[0]);
        }
        var parameters = r.Svgd.Parameters.Select(p => new PtdParameterSummary(p.Name, p.Mean, p.Sd, p.Q025, p.Q975)).ToArray();
        return new PtdInferenceSummary(spec, values.Length, parameters, r.LikelihoodKernel.Source.ToString(), r.LikelihoodKernel.Tier,
            particles, r.Svgd.Iterations, r.Svgd.Diagnostics.Warnings, r.Elapsed.TotalMilliseconds);
    }

    private static IReadOnlyList<ParameterPrior> Priors(string[]? specs, int d)
    {
        if (specs is null || specs.Length == 0) return Enumerable.Repeat(new ParameterPrior(Prior.Flat), d).ToArray();
        var list = specs.SelectMany(ParameterPrior.ParseList).ToList();
        if (list.Count == 1 && d > 1) return Enumerable.Repeat(list[0], d).ToArray();
        if (list.Count != d)
            throw new PtdException($"{list.Count} prior(s) given ({string.Join(", ", list)}) but the model has {d} parameter(s); give one per parameter in order, or one for all");
        return list;
    }
}
