using System.Collections.Concurrent;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// The executable form of a moments kernel: the optimized elimination trace (its op program and
/// reward-command replay are the flattened plan) run by the core's allocation-free evaluators —
/// <see cref="TraceGradient"/> (forward mode for up to four parameters, reverse mode above), one per thread.
/// </summary>
/// <remarks>Thread-safe. Rewards and the moment order are run-time inputs.</remarks>
public sealed class MomentKernel
{
    private readonly ConcurrentBag<TraceGradient> _pool = new();

    internal MomentKernel(KernelKey key, Trace trace)
    {
        Key = key;
        Trace = trace;
    }

    /// <summary>The kernel's content key.</summary>
    public KernelKey Key { get; }

    /// <summary>The optimized trace the kernel runs.</summary>
    public Trace Trace { get; }

    /// <summary>θ's dimension.</summary>
    public int ParameterCount => Trace.ParamCount;

    /// <summary>Raw moments E[Y^k], k = 1..K, and the Jacobian ∂E[Y^k]/∂θ at one θ.</summary>
    /// <param name="theta">θ.</param>
    /// <param name="reward">One reward per vertex (null: the absorption time).</param>
    /// <param name="count">K ≥ 1.</param>
    /// <returns>The moments and the Jacobian rows (row k − 1 = ∂E[Y^k]/∂θ).</returns>
    public (double[] Moments, double[][] Jacobian) MomentsJacobian(double[] theta, double[]? reward, int count)
    {
        var g = _pool.TryTake(out var x) ? x : new TraceGradient(Trace);
        try
        {
            var (m, jac) = g.MomentsJacobian(theta, reward ?? Rewards.ones(Trace.Model), count);
            return (m, jac);
        }
        finally
        {
            _pool.Add(g);
        }
    }
}
