namespace Ptd.Host.Svgd;

/// <summary>
/// Settings of one SVGD run. Every field is checked by <see cref="Validate"/> before the run starts
/// (the engine calls it), so a mistake fails at once with the field's name instead of mid-run.
/// </summary>
public sealed record SvgdOptions
{
    /// <summary>The number of particles n (≥ 2). Default 64.</summary>
    public int ParticleCount { get; init; } = 64;

    /// <summary>The number of updates (≥ 1). Default 1000.</summary>
    public int Iterations { get; init; } = 1000;

    /// <summary>The step size η (&gt; 0). Default 0.05.</summary>
    public double StepSize { get; init; } = 0.05;

    /// <summary>The seed of the initial particles' draw. The run is a deterministic function of the seed and the options.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>The optimizer. Default <see cref="OptimizerKind.AdaGradMomentum"/>.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdaGradMomentum;

    /// <summary>α of AdaGrad-with-momentum, in [0, 1). Default 0.9.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Adam's β₁ in [0, 1). Default 0.9.</summary>
    public double AdamBeta1 { get; init; } = 0.9;

    /// <summary>Adam's β₂ in [0, 1). Default 0.999.</summary>
    public double AdamBeta2 { get; init; } = 0.999;

    /// <summary>Adam's ε (&gt; 0). Default 1e-8.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary>The step-size schedule. Default <see cref="StepSchedule.Constant"/>.</summary>
    public StepSchedule Schedule { get; init; } = StepSchedule.Constant;

    /// <summary>γ of <see cref="StepSchedule.Exponential"/>, in (0, 1]. Default 0.999.</summary>
    public double ExponentialDecay { get; init; } = 0.999;

    /// <summary>κ of <see cref="StepSchedule.InverseTime"/>, ≥ 0. Default 0.001.</summary>
    public double InverseTimeDecay { get; init; } = 0.001;

    /// <summary>The transform θ = T(φ) of every parameter. Default <see cref="ParameterTransform.Softplus"/>.</summary>
    public ParameterTransform Transform { get; init; } = ParameterTransform.Softplus;

    /// <summary>Per-parameter transforms (length d); when given they replace <see cref="Transform"/>.</summary>
    public IReadOnlyList<ParameterTransform>? Transforms { get; init; }

    /// <summary>
    /// Per-parameter priors (length d), each on θ (with the transform's Jacobian) or on φ. When null
    /// the target alone is the log density of φ's image — no prior and no Jacobian (a flat prior on φ).
    /// </summary>
    public IReadOnlyList<ParameterPrior>? Priors { get; init; }

    /// <summary>Parameter names (length d) for summaries and JSON. Default theta1 … thetad.</summary>
    public IReadOnlyList<string>? ParameterNames { get; init; }

    /// <summary>
    /// Initial particles in θ space: <see cref="ParticleCount"/> rows of d values, each in its
    /// transform's range. When null they are drawn from the priors (which then must be proper).
    /// </summary>
    public IReadOnlyList<double[]>? InitialParticles { get; init; }

    /// <summary>The bandwidth rule. Default <see cref="BandwidthRule.Median"/> (Liu &amp; Wang).</summary>
    public BandwidthRule Bandwidth { get; init; } = BandwidthRule.Median;

    /// <summary>h for <see cref="BandwidthRule.Fixed"/> (&gt; 0), in φ units.</summary>
    public double FixedBandwidth { get; init; }

    /// <summary>Keep a snapshot of the particles every this many iterations (0 = none; the final state is always included when &gt; 0).</summary>
    public int HistoryInterval { get; init; }

    /// <summary>Report progress every this many iterations (0 = about 100 reports per run; the last iteration is always reported).</summary>
    public int ProgressInterval { get; init; }

    /// <summary>
    /// An optional extra log-density term in θ space added to the log posterior, e.g. a
    /// <see cref="MomentPenalty"/> (which returns −λ Σ_k (E_θ[T^k] − m_k)²).
    /// </summary>
    public ILogDensity? Penalty { get; init; }

    /// <summary>
    /// A parameter's particle spread (sd in φ) that falls to this fraction of its initial value or
    /// below raises the collapse warning. In [0, 1); default 1e-4.
    /// </summary>
    public double CollapseThreshold { get; init; } = 1e-4;

    /// <summary>Threads for the kernel term with many particles (−1 = all cores, else ≥ 1). Results do not depend on it.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>The transform of parameter <paramref name="index"/>.</summary>
    public ParameterTransform TransformOf(int index) => Transforms is { } t ? t[index] : Transform;

    /// <summary>The name of parameter <paramref name="index"/>.</summary>
    public string NameOf(int index) => ParameterNames is { } n ? n[index] : $"theta{index + 1}";

    /// <summary>Checks every field against a target of <paramref name="dimension"/> parameters.</summary>
    /// <exception cref="ArgumentException">A field is invalid; the message names it and says what is allowed.</exception>
    public void Validate(int dimension)
    {
        if (dimension < 1)
            throw new ArgumentException($"The target's dimension is {dimension}; it must be at least 1.", nameof(dimension));
        if (ParticleCount < 2)
            Fail(nameof(ParticleCount), $"is {ParticleCount}; SVGD needs at least 2 particles (64 is a good start).");
        if (Iterations < 1)
            Fail(nameof(Iterations), $"is {Iterations}; it must be at least 1.");
        RequirePositive(StepSize, nameof(StepSize));
        RequireUnitInterval(Momentum, nameof(Momentum));
        RequireUnitInterval(AdamBeta1, nameof(AdamBeta1));
        RequireUnitInterval(AdamBeta2, nameof(AdamBeta2));
        RequirePositive(AdamEpsilon, nameof(AdamEpsilon));
        if (!Enum.IsDefined(Optimizer)) Fail(nameof(Optimizer), $"is {Optimizer}, not a known optimizer.");
        if (!Enum.IsDefined(Schedule)) Fail(nameof(Schedule), $"is {Schedule}, not a known schedule.");
        if (!Enum.IsDefined(Bandwidth)) Fail(nameof(Bandwidth), $"is {Bandwidth}, not a known rule.");
        if (!(ExponentialDecay > 0 && ExponentialDecay <= 1))
            Fail(nameof(ExponentialDecay), $"is {ExponentialDecay:R}; γ must be in (0, 1].");
        if (!(InverseTimeDecay >= 0) || !double.IsFinite(InverseTimeDecay))
            Fail(nameof(InverseTimeDecay), $"is {InverseTimeDecay:R}; κ must be a finite number ≥ 0.");
        if (Transform is null) Fail(nameof(Transform), "is null; use ParameterTransform.Softplus, Exp or Identity.");
        CheckList(Transforms, nameof(Transforms), dimension);
        CheckList(Priors, nameof(Priors), dimension);
        CheckList(ParameterNames, nameof(ParameterNames), dimension);
        if (ParameterNames is { } names)
        {
            for (int i = 0; i < names.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(names[i]))
                    Fail(nameof(ParameterNames), $"[{i}] is empty; give every parameter a name.");
                for (int j = 0; j < i; j++)
                    if (names[j] == names[i])
                        Fail(nameof(ParameterNames), $"repeats '{names[i]}' (positions {j} and {i}); names must be distinct.");
            }
        }
        if (Bandwidth == BandwidthRule.Fixed && (!(FixedBandwidth > 0) || !double.IsFinite(FixedBandwidth)))
            Fail(nameof(FixedBandwidth), $"is {FixedBandwidth:R}; the fixed rule needs a bandwidth h > 0.");
        if (HistoryInterval < 0) Fail(nameof(HistoryInterval), $"is {HistoryInterval}; use 0 (no history) or a positive interval.");
        if (ProgressInterval < 0) Fail(nameof(ProgressInterval), $"is {ProgressInterval}; use 0 (automatic) or a positive interval.");
        if (Penalty is { } pen && pen.Dimension != dimension)
            Fail(nameof(Penalty), $"has dimension {pen.Dimension} but the target has {dimension}; they must agree.");
        if (!(CollapseThreshold >= 0 && CollapseThreshold < 1))
            Fail(nameof(CollapseThreshold), $"is {CollapseThreshold:R}; it must be in [0, 1).");
        if (MaxDegreeOfParallelism != -1 && MaxDegreeOfParallelism < 1)
            Fail(nameof(MaxDegreeOfParallelism), $"is {MaxDegreeOfParallelism}; use −1 (all cores) or a positive count.");

        if (InitialParticles is { } init)
        {
            if (init.Count != ParticleCount)
                Fail(nameof(InitialParticles), $"has {init.Count} rows but ParticleCount is {ParticleCount}; give one row per particle.");
            for (int p = 0; p < init.Count; p++)
            {
                if (init[p] is not { } row)
                    Fail(nameof(InitialParticles), $"row {p} is null.");
                else if (row.Length != dimension)
                    Fail(nameof(InitialParticles), $"row {p} has {row.Length} value(s) but the target has dimension {dimension}.");
                else
                    for (int k = 0; k < dimension; k++)
                        if (!TransformOf(k).InRange(row[k]))
                            Fail(nameof(InitialParticles),
                                $"row {p}, parameter {k} ('{NameOf(k)}') is {row[k]:R}, outside the range of the {TransformOf(k).Name} transform"
                                + (TransformOf(k) == ParameterTransform.Identity ? " (it must be finite)." : " (it must be > 0)."));
            }
        }
        else
        {
            for (int k = 0; k < dimension; k++)
            {
                if (Priors is null)
                    Fail(nameof(InitialParticles),
                        "is null and there are no priors to draw the initial particles from; give InitialParticles or Priors.");
                if (!Priors![k].Prior.CanSample)
                    Fail(nameof(InitialParticles),
                        $"is null but the prior of parameter {k} ('{NameOf(k)}', {Priors[k]}) cannot be sampled; give InitialParticles or a proper prior.");
            }
        }
    }

    private static void CheckList<T>(IReadOnlyList<T>? list, string name, int dimension)
    {
        if (list is null) return;
        if (list.Count != dimension)
            Fail(name, $"has {list.Count} entries but the target has dimension {dimension}; give one per parameter.");
        for (int i = 0; i < list.Count; i++)
            if (list[i] is null) Fail(name, $"[{i}] is null.");
    }

    private static void RequirePositive(double value, string name)
    {
        if (!(value > 0) || !double.IsFinite(value)) Fail(name, $"is {value:R}; it must be a positive finite number.");
    }

    private static void RequireUnitInterval(double value, string name)
    {
        if (!(value >= 0 && value < 1)) Fail(name, $"is {value:R}; it must be in [0, 1).");
    }

    private static void Fail(string field, string problem) =>
        throw new ArgumentException($"SvgdOptions.{field} {problem}", field);
}
