using Ptd.Core;
using Ptd.Host.Svgd;

namespace Ptd.Host.Kernels;

/// <summary>How <see cref="TraceLogDensity"/> obtains ∂ log L/∂θ.</summary>
public enum GradientMethod
{
    /// <summary>Exact: forward-mode tangents through the sweep (one evaluation per particle).</summary>
    Exact,

    /// <summary>Central finite differences with step 1e-7·max(1, |θ_j|) (phasic's method; 1 + 2d value-only evaluations).</summary>
    CentralDifferences,
}

/// <summary>Settings of a <see cref="TraceLogDensity"/>.</summary>
public sealed record LikelihoodOptions
{
    /// <summary>
    /// 0 (default): an observation of density 0 stops the run with a message naming it. &gt; 0:
    /// phasic's compatibility mode, log(f + ε) (phasic uses 1e-10) — it never fails, but it
    /// flattens the gradient wherever f is small compared with ε, which biases the posterior.
    /// </summary>
    public double Epsilon { get; init; }

    /// <summary>
    /// How the gradient is computed. <see cref="GradientMethod.Exact"/> (default): forward-mode
    /// autodiff through the sweep. <see cref="GradientMethod.CentralDifferences"/>: phasic's
    /// method (step 1e-7 relative, 2·d extra value-only evaluations per particle) — a test oracle
    /// and a baseline for comparison, not for inference.
    /// </summary>
    public GradientMethod Gradient { get; init; } = GradientMethod.Exact;

    /// <summary>Threads across particles (−1 = all cores, else ≥ 1). Results do not depend on it.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    internal void Validate()
    {
        if (!(Epsilon >= 0) || !double.IsFinite(Epsilon))
            throw new ArgumentException($"LikelihoodOptions.Epsilon is {Epsilon}; it must be a finite number ≥ 0 (0 = exact).", nameof(Epsilon));
        if (!Enum.IsDefined(Gradient))
            throw new ArgumentException($"LikelihoodOptions.Gradient is {Gradient}, not a known method.", nameof(Gradient));
        if (MaxDegreeOfParallelism != -1 && MaxDegreeOfParallelism < 1)
            throw new ArgumentException($"LikelihoodOptions.MaxDegreeOfParallelism is {MaxDegreeOfParallelism}; use −1 (all cores) or a positive count.", nameof(MaxDegreeOfParallelism));
    }
}

/// <summary>
/// The SVGD target of a phase-type model and observed data: Σ_i log f(x_i; θ) (pdf of absorption
/// times, or pmf of jump counts for a discrete model) and its exact gradient, evaluated by a
/// cached <see cref="LikelihoodKernel"/> for all particles of an update, in parallel across
/// particles (each particle's arithmetic is independent of the thread that runs it).
/// </summary>
/// <remarks>
/// The log is taken safely: the sweep is rescaled instead of underflowing, so log f stays finite
/// wherever f &gt; 0 in exact arithmetic. An observation whose density is exactly 0 at some
/// particle (the model cannot produce it there) stops the run with a <see cref="PtdException"/>
/// naming the observation (file and line), the particle and θ — never a silent NaN — unless the
/// phasic compatibility ε is set. A θ that makes a weight negative fails the same way.
/// </remarks>
public sealed class TraceLogDensity : ILogDensity
{
    private readonly LikelihoodData _data;
    private readonly LikelihoodOptions _options;

    /// <summary>Binds a kernel to data.</summary>
    /// <param name="kernel">The model's likelihood kernel.</param>
    /// <param name="observations">Times (continuous model) or jump counts (discrete model).</param>
    /// <param name="options">Settings (null: exact log, all cores).</param>
    /// <exception cref="PtdException">The data do not fit the model (fractional jump counts, too many steps).</exception>
    public TraceLogDensity(LikelihoodKernel kernel, Observations observations, LikelihoodOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(observations);
        _options = options ?? new LikelihoodOptions();
        _options.Validate();
        if (kernel.ParameterCount < 1)
            throw new PtdException("the model has no parameters: there is nothing to infer");
        Kernel = kernel;
        Observations = observations;
        _data = LikelihoodData.Bind(observations, kernel.IsDiscrete);
    }

    /// <summary>Gets the model's kernel from a registry (built, loaded or shared) and binds it to the data.</summary>
    /// <param name="model">The model.</param>
    /// <param name="observations">The data.</param>
    /// <param name="registry">The kernel registry (null: a private one without persistence).</param>
    /// <param name="options">Settings.</param>
    /// <param name="cancellationToken">Cancels the wait for the kernel.</param>
    public static async Task<TraceLogDensity> CreateAsync(Graph model, Observations observations, KernelRegistry? registry = null,
        LikelihoodOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (kernel, _) = await (registry ?? new KernelRegistry()).GetLikelihoodKernelAsync(model, cancellationToken).ConfigureAwait(false);
        return new TraceLogDensity(kernel, observations, options);
    }

    /// <summary>The kernel.</summary>
    public LikelihoodKernel Kernel { get; }

    /// <summary>The data.</summary>
    public Observations Observations { get; }

    /// <inheritdoc />
    public int Dimension => Kernel.ParameterCount;

    /// <inheritdoc />
    public void LogDensityAndGradient(ReadOnlySpan<double> thetaBatch, Span<double> logDensity, Span<double> gradient)
    {
        int d = Dimension, n = logDensity.Length;
        if (thetaBatch.Length != n * d || gradient.Length != n * d)
            throw new ArgumentException($"expected {n} × {d} parameter values and gradients, got {thetaBatch.Length} and {gradient.Length}");
        var theta = thetaBatch.ToArray();
        var logp = new double[n];
        var grad = new double[n * d];
        var errors = new Exception?[n];
        var zero = new int[n];
        double epsilon = _options.Epsilon;
        bool finiteDifferences = _options.Gradient == GradientMethod.CentralDifferences;
        var kernel = Kernel;
        var data = _data;
        void One(int p, LikelihoodWorkspace ws)
        {
            try
            {
                if (finiteDifferences)
                    logp[p] = CentralDifferences(kernel, theta.AsSpan(p * d, d), data, ws, grad.AsSpan(p * d, d), epsilon, out zero[p]);
                else
                    logp[p] = kernel.Evaluate(theta.AsSpan(p * d, d), data, ws, grad.AsSpan(p * d, d), epsilon, out zero[p]);
            }
            catch (PtdException ex)
            {
                errors[p] = ex;
            }
        }
        if (n == 1 || _options.MaxDegreeOfParallelism == 1)
        {
            var ws = kernel.Rent();
            for (int p = 0; p < n; p++) One(p, ws);
            kernel.Return(ws);
        }
        else
        {
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxDegreeOfParallelism },
                kernel.Rent,
                (p, _, ws) => { One(p, ws); return ws; },
                kernel.Return);
        }
        // Report the first failing particle (by index, not by which thread finished first).
        for (int p = 0; p < n; p++)
        {
            if (errors[p] is { } error)
                throw new PtdException($"particle {p}: {error.Message}", error);
            if (double.IsNegativeInfinity(logp[p]) && zero[p] >= 0)
                throw new PtdException($"particle {p}: " + LikelihoodKernel.ZeroDensityMessage(Observations, zero[p], theta.AsSpan(p * d, d)));
        }
        logp.CopyTo(logDensity);
        grad.CopyTo(gradient);
    }

    /// <summary>phasic's gradient: (log L(θ + h e_j) − log L(θ − h e_j)) / 2h, h = 1e-7·max(1, |θ_j|).</summary>
    private static double CentralDifferences(LikelihoodKernel kernel, ReadOnlySpan<double> theta, LikelihoodData data, LikelihoodWorkspace ws,
        Span<double> grad, double epsilon, out int zero)
    {
        Span<double> none = stackalloc double[0];
        double value = kernel.Evaluate(theta, data, ws, none, epsilon, out zero, gradient: false);
        if (zero >= 0) return value;
        Span<double> shifted = stackalloc double[theta.Length];
        for (int j = 0; j < theta.Length; j++)
        {
            double h = 1e-7 * Math.Max(1.0, Math.Abs(theta[j]));
            theta.CopyTo(shifted);
            shifted[j] = theta[j] + h;
            double plus = kernel.Evaluate(shifted, data, ws, none, epsilon, out _, gradient: false);
            shifted[j] = theta[j] - h;
            double minus = kernel.Evaluate(shifted, data, ws, none, epsilon, out _, gradient: false);
            grad[j] = (plus - minus) / (2 * h);
        }
        return value;
    }
}
