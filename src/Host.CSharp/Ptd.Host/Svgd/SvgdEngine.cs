using System.Diagnostics;
using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Svgd;

/// <summary>
/// Stein Variational Gradient Descent (Liu &amp; Wang 2016) over the unconstrained φ = T⁻¹(θ):
/// each update moves every particle along φ̂(x_i) = (1/n) Σ_j K_ij [∇log p(x_j) + (x_i − x_j)/h²]
/// — the second term repels particles from each other (phasic's attractive sign collapses them).
/// </summary>
public static class SvgdEngine
{
    /// <summary>Runs SVGD on a thread-pool thread.</summary>
    /// <param name="target">The log likelihood (or any log density) over θ, batched over particles.</param>
    /// <param name="options">The run's settings; validated before the task starts.</param>
    /// <param name="progress">Optional progress sink (reports every <see cref="SvgdOptions.ProgressInterval"/> updates).</param>
    /// <param name="cancellationToken">Checked before every update; cancelling ends the task as cancelled.</param>
    /// <exception cref="ArgumentException">Thrown at once when the options do not fit the target.</exception>
    /// <remarks>
    /// The task fails with <see cref="PtdException"/> when the log posterior or its gradient is not
    /// finite at some particle (the message names the particle, its θ and the update).
    /// </remarks>
    public static Task<SvgdResult> RunAsync(
        ILogDensity target,
        SvgdOptions options,
        IProgress<SvgdProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(target.Dimension);
        return Task.Run(() => RunValidated(target, options, progress, cancellationToken), cancellationToken);
    }

    /// <summary>Runs SVGD on the calling thread (same contract as <see cref="RunAsync"/>).</summary>
    public static SvgdResult Run(
        ILogDensity target,
        SvgdOptions options,
        IProgress<SvgdProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(target.Dimension);
        return RunValidated(target, options, progress, cancellationToken);
    }

    private static SvgdResult RunValidated(
        ILogDensity target, SvgdOptions options, IProgress<SvgdProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        int n = options.ParticleCount, d = target.Dimension, iterations = options.Iterations;
        var posterior = new PhiPosterior(target, options);
        double[] phi = InitialPhi(options, posterior, n, d);
        double[] theta = new double[n * d], logp = new double[n], grad = new double[n * d];
        double[] phiHat = new double[n * d], delta = new double[n * d];
        var kernel = new KernelWorkspace(n, d);
        var stepRule = StepRule.Create(options, n * d);
        var stepNorms = new double[iterations];
        var directionNorms = new double[iterations];
        var bandwidths = new double[iterations];
        var spreads = new double[iterations + 1];
        var history = new List<SvgdSnapshot>();
        int historyEvery = options.HistoryInterval;
        int progressEvery = options.ProgressInterval > 0 ? options.ProgressInterval : Math.Max(1, iterations / 100);
        double[] initialSd = PerParameterSd(phi, n, d);
        bool[] initialDegenerate = Enumerable.Range(0, d).Select(k => Degenerate(phi, n, d, k)).ToArray();
        spreads[0] = Spread(phi, n, d);

        for (int t = 0; t < iterations; t++)
        {
            ct.ThrowIfCancellationRequested();
            posterior.Evaluate(phi, theta, logp, grad);
            CheckFinite(logp, grad, theta, n, d, t, options);
            double meanLogp = Mean(logp);
            if (historyEvery > 0 && t % historyEvery == 0)
                history.Add(new SvgdSnapshot(t, meanLogp, Rows(theta, n, d)));

            double h2 = kernel.Direction(phi, grad, options.Bandwidth, options.FixedBandwidth, phiHat, options.MaxDegreeOfParallelism);
            double eta = StepRule.StepSize(options, t);
            stepRule.Step(phiHat, eta, t, delta);
            double sumSq = 0, dirSq = 0;
            for (int i = 0; i < phi.Length; i++)
            {
                phi[i] += delta[i];
                sumSq += delta[i] * delta[i];
                dirSq += phiHat[i] * phiHat[i];
            }
            stepNorms[t] = Math.Sqrt(sumSq / n);
            directionNorms[t] = Math.Sqrt(dirSq / n);
            bandwidths[t] = h2;
            spreads[t + 1] = Spread(phi, n, d);
            if (progress is not null && ((t + 1) % progressEvery == 0 || t + 1 == iterations))
                progress.Report(new SvgdProgress(t + 1, iterations, meanLogp, stepNorms[t], h2, clock.Elapsed));
        }

        ct.ThrowIfCancellationRequested();
        posterior.Evaluate(phi, theta, logp, grad);
        CheckFinite(logp, grad, theta, n, d, iterations, options);
        double[][] thetaRows = Rows(theta, n, d);
        if (historyEvery > 0) history.Add(new SvgdSnapshot(iterations, Mean(logp), Rows(theta, n, d)));

        double[] finalSd = PerParameterSd(phi, n, d);
        var warnings = new List<string>();
        bool collapsed = false;
        for (int k = 0; k < d; k++)
        {
            string name = options.NameOf(k);
            if (initialDegenerate[k])
                warnings.Add($"All initial particles share one value of '{name}'; the kernel cannot spread them in that direction unless the gradient does.");
            if (Degenerate(phi, n, d, k) || (!initialDegenerate[k] && finalSd[k] <= options.CollapseThreshold * initialSd[k]))
            {
                collapsed = true;
                warnings.Add(FormattableString.Invariant(
                    $"The particles collapsed in '{name}': spread (sd in φ) {finalSd[k]:G3} from {initialSd[k]:G3} at the start. ") +
                    "Check the step size and bandwidth, or the posterior may really be that narrow.");
            }
        }

        var summaries = new ParameterSummary[d];
        for (int k = 0; k < d; k++)
            summaries[k] = Summarize(theta, n, d, k, options);

        return new SvgdResult
        {
            Parameters = summaries,
            Particles = thetaRows,
            ParticlesPhi = Rows(phi, n, d),
            LogPosterior = logp,
            History = history,
            Diagnostics = new SvgdDiagnostics
            {
                StepNorms = stepNorms,
                DirectionNorms = directionNorms,
                Spreads = spreads,
                BandwidthsSquared = bandwidths,
                StepNormTrend = Trend(stepNorms),
                DirectionNormTrend = Trend(directionNorms),
                InitialSpreadPerParameter = initialSd,
                FinalSpreadPerParameter = finalSd,
                Collapsed = collapsed,
                Warnings = warnings,
            },
            Iterations = iterations,
            Seed = options.Seed,
            Elapsed = clock.Elapsed,
        };
    }

    private static double[] InitialPhi(SvgdOptions options, PhiPosterior posterior, int n, int d)
    {
        var phi = new double[n * d];
        if (options.InitialParticles is { } init)
        {
            for (int p = 0; p < n; p++)
                for (int k = 0; k < d; k++)
                    phi[p * d + k] = posterior.TransformOf(k).Inverse(init[p][k]);
            return phi;
        }
        // Particle-major draws from one generator: the seed fixes every value.
        var random = new SvgdRandom(options.Seed);
        var priors = options.Priors!;
        for (int p = 0; p < n; p++)
        {
            for (int k = 0; k < d; k++)
            {
                ParameterPrior prior = priors[k];
                ParameterTransform t = posterior.TransformOf(k);
                if (prior.Space == PriorSpace.Phi)
                {
                    phi[p * d + k] = prior.Prior.Sample(random);
                    continue;
                }
                // A θ-prior may put mass outside T's range (e.g. a normal prior with softplus):
                // the posterior lives on the range only, so draw from the prior truncated to it.
                const int maxTries = 1000;
                double value = double.NaN;
                for (int attempt = 0; attempt < maxTries; attempt++)
                {
                    double draw = prior.Prior.Sample(random);
                    if (t.InRange(draw))
                    {
                        value = draw;
                        break;
                    }
                }
                if (double.IsNaN(value))
                    throw new PtdException(
                        $"Could not draw an initial value of '{options.NameOf(k)}' from {prior} inside the range of the {t.Name} transform " +
                        $"in {maxTries} tries; use a prior on that range, another transform, or give InitialParticles.");
                phi[p * d + k] = t.Inverse(value);
            }
        }
        return phi;
    }

    private static void CheckFinite(double[] logp, double[] grad, double[] theta, int n, int d, int iteration, SvgdOptions options)
    {
        for (int p = 0; p < n; p++)
        {
            bool ok = double.IsFinite(logp[p]);
            for (int k = 0; ok && k < d; k++) ok = double.IsFinite(grad[p * d + k]);
            if (ok) continue;
            string thetaText = string.Join(", ", Enumerable.Range(0, d).Select(k =>
                string.Create(CultureInfo.InvariantCulture, $"{options.NameOf(k)} = {theta[p * d + k]:R}")));
            string gradText = string.Join(", ", Enumerable.Range(0, d).Select(k =>
                grad[p * d + k].ToString("R", CultureInfo.InvariantCulture)));
            throw new PtdException(FormattableString.Invariant(
                $"SVGD update {iteration}: particle {p} at ({thetaText}) has log posterior {logp[p]:R} and φ-gradient ({gradText}). ") +
                "A particle left the support of the likelihood or a prior, or the model overflowed; " +
                "use a transform onto the support, a smaller step size, or priors with full support.");
        }
    }

    private static double[][] Rows(double[] flat, int n, int d)
    {
        var rows = new double[n][];
        for (int p = 0; p < n; p++) rows[p] = flat.AsSpan(p * d, d).ToArray();
        return rows;
    }

    private static double Mean(double[] xs)
    {
        double s = 0;
        foreach (double x in xs) s += x;
        return s / xs.Length;
    }

    private static double Spread(double[] x, int n, int d)
    {
        double total = 0;
        for (int k = 0; k < d; k++)
        {
            double mean = 0;
            for (int p = 0; p < n; p++) mean += x[p * d + k];
            mean /= n;
            for (int p = 0; p < n; p++)
            {
                double dev = x[p * d + k] - mean;
                total += dev * dev;
            }
        }
        return Math.Sqrt(total / n);
    }

    private static double[] PerParameterSd(double[] x, int n, int d)
    {
        var sd = new double[d];
        for (int k = 0; k < d; k++) sd[k] = Sd(Column(x, n, d, k));
        return sd;
    }

    /// <summary>
    /// Whether all particles share one value of parameter k up to rounding (the sd of identical
    /// values is not exactly 0 once the mean is rounded, so compare the range instead).
    /// </summary>
    private static bool Degenerate(double[] x, int n, int d, int k)
    {
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        for (int p = 0; p < n; p++)
        {
            lo = Math.Min(lo, x[p * d + k]);
            hi = Math.Max(hi, x[p * d + k]);
        }
        return hi - lo <= 1e-12 * Math.Max(Math.Abs(lo), Math.Abs(hi));
    }

    private static double[] Column(double[] x, int n, int d, int k)
    {
        var c = new double[n];
        for (int p = 0; p < n; p++) c[p] = x[p * d + k];
        return c;
    }

    private static double Sd(double[] xs)
    {
        double mean = Mean(xs), ss = 0;
        foreach (double x in xs) ss += (x - mean) * (x - mean);
        return Math.Sqrt(ss / (xs.Length - 1));
    }

    /// <summary>Mean over the last 10 % divided by the mean over the first 10 % (at least one value each).</summary>
    private static double Trend(double[] xs)
    {
        int w = Math.Max(1, xs.Length / 10);
        double first = 0, last = 0;
        for (int i = 0; i < w; i++)
        {
            first += xs[i];
            last += xs[xs.Length - w + i];
        }
        return first > 0 ? last / first : (last > 0 ? double.PositiveInfinity : 0.0);
    }

    private static ParameterSummary Summarize(double[] theta, int n, int d, int k, SvgdOptions options)
    {
        double[] c = Column(theta, n, d, k);
        double mean = Mean(c), sd = Sd(c);
        Array.Sort(c);
        return new ParameterSummary(
            options.NameOf(k),
            options.TransformOf(k).Name,
            options.Priors?[k].ToString(),
            mean,
            sd,
            Quantile(c, 0.025),
            Quantile(c, 0.5),
            Quantile(c, 0.975));
    }

    /// <summary>Quantile of sorted values by linear interpolation between order statistics (numpy's default, "type 7").</summary>
    internal static double Quantile(double[] sorted, double q)
    {
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
