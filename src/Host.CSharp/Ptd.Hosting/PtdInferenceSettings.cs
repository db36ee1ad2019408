using System.Globalization;
using Ptd.Core;
using Ptd.Host.Svgd;

namespace Ptd.Hosting;

/// <summary>
/// The <c>Ptd:Inference</c> section: defaults of <see cref="PtdInferenceService"/> for requests that leave a setting out,
/// and limits that protect a service taking requests from clients. Validated at start-up with the rest of
/// <see cref="PtdPipelineOptions"/>. The defaults are those of <c>ptd infer</c>.
/// </summary>
public sealed class PtdInferenceSettings
{
    /// <summary>SVGD particles when a request gives none (default 64).</summary>
    public int Particles { get; set; } = 64;

    /// <summary>SVGD iterations when a request gives none (default 1000).</summary>
    public int Iterations { get; set; } = 1000;

    /// <summary>The initial step size η (default 0.1, as <c>ptd infer</c>).</summary>
    public double StepSize { get; set; } = 0.1;

    /// <summary>The fraction of η left at the last iteration (exponential decay; default 0.1; 1 keeps η constant).</summary>
    public double FinalStepFraction { get; set; } = 0.1;

    /// <summary>The random seed when a request gives none (default 1): results are reproducible.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>The transform θ = T(φ): <c>softplus</c> (default), <c>exp</c> or <c>identity</c>.</summary>
    public string Transform { get; set; } = "softplus";

    /// <summary>Where starting particles come from when the priors cannot be sampled (default <c>lognormal:0,1</c>).</summary>
    public string InitialDistribution { get; set; } = "lognormal:0,1";

    /// <summary>The largest particle count a request may ask for (default 1024).</summary>
    public int MaxParticles { get; set; } = 1024;

    /// <summary>The largest iteration count a request may ask for (default 100,000).</summary>
    public int MaxIterations { get; set; } = 100_000;

    /// <summary>The largest number of observations in one request (default 1,000,000).</summary>
    public int MaxObservations { get; set; } = 1_000_000;

    /// <summary>
    /// Whether a request's model may be a file path (default false: only built-in specs such as <c>coalescent:n=10</c>,
    /// so that clients cannot make the service read files).
    /// </summary>
    public bool AllowModelFiles { get; set; }

    /// <summary>Checks every setting; the message names the setting (<c>Ptd:Inference:…</c>) and the allowed range.</summary>
    /// <exception cref="PtdException">A setting is out of range or does not parse.</exception>
    public void Validate()
    {
        const string s = "Ptd:Inference:";
        if (MaxParticles < 2) throw new PtdException($"{s}MaxParticles is {MaxParticles}; it must be at least 2");
        if (MaxIterations < 1) throw new PtdException($"{s}MaxIterations is {MaxIterations}; it must be at least 1");
        if (MaxObservations < 1) throw new PtdException($"{s}MaxObservations is {MaxObservations}; it must be at least 1");
        if (Particles < 2 || Particles > MaxParticles) throw new PtdException($"{s}Particles is {Particles}; it must be between 2 and MaxParticles ({MaxParticles})");
        if (Iterations < 1 || Iterations > MaxIterations) throw new PtdException($"{s}Iterations is {Iterations}; it must be between 1 and MaxIterations ({MaxIterations})");
        if (!(StepSize > 0) || !double.IsFinite(StepSize)) throw new PtdException($"{s}StepSize is {Num(StepSize)}; it must be a finite number > 0");
        if (!(FinalStepFraction > 0 && FinalStepFraction <= 1)) throw new PtdException($"{s}FinalStepFraction is {Num(FinalStepFraction)}; it must be in (0, 1]");
        try
        {
            ParameterTransform.Parse(Transform);
        }
        catch (Exception e) when (e is PtdException or ArgumentException)
        {
            throw new PtdException($"{s}Transform: {e.Message}");
        }
        Prior initial;
        try
        {
            initial = Prior.Parse(InitialDistribution);
        }
        catch (Exception e) when (e is PtdException or ArgumentException)
        {
            throw new PtdException($"{s}InitialDistribution: {e.Message}");
        }
        if (!initial.CanSample) throw new PtdException($"{s}InitialDistribution '{InitialDistribution}' cannot be sampled; give a proper distribution such as lognormal:0,1");
    }

    private static string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
