using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// Observations bound to a likelihood kernel's layout: checked once (whole numbers for a discrete
/// model, within the sweep's step budget) and summarized (the largest value sets the sweep's
/// length; continuous data are also sorted once, for the window sums). A run-time input: the
/// kernel never keeps it.
/// </summary>
internal sealed class LikelihoodData
{
    /// <summary>The sweep keeps a value per step; beyond this many steps an observation is out of reach (the core's limit).</summary>
    public const int MaxSteps = TraceLikelihood.MaxSteps;

    private LikelihoodData(double[] values, int[] counts, double max, double[] sorted, int[] rank)
    {
        Values = values;
        Counts = counts;
        Max = max;
        Sorted = sorted;
        Rank = rank;
    }

    /// <summary>The observations in their original order (sums run in this order).</summary>
    public double[] Values { get; }

    /// <summary>Discrete models: the jump counts as integers (empty for continuous data).</summary>
    public int[] Counts { get; }

    /// <summary>The largest observation (0 when there are none).</summary>
    public double Max { get; }

    public int Count => Values.Length;

    /// <summary>
    /// Continuous data: the values in ascending order (ties by index), the order the core's
    /// window sums take them in. Sorted once here, so that μ = Λ·t (Λ ≥ 0 keeps the order)
    /// reaches the sums already sorted for every θ and they skip their sort. Empty for discrete data.
    /// </summary>
    public double[] Sorted { get; }

    /// <summary>Continuous data: observation i's position in <see cref="Sorted"/>. Empty for discrete data.</summary>
    public int[] Rank { get; }

    public static LikelihoodData Bind(Observations observations, bool discrete)
    {
        ArgumentNullException.ThrowIfNull(observations);
        var values = observations.ToArray();
        var counts = discrete ? new int[values.Length] : [];
        double max = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double x = values[i];
            if (discrete)
            {
                if (x != Math.Floor(x))
                    throw new PtdException(
                        $"{observations.Describe(i)}: a discrete model's observations are whole numbers of jumps");
                if (x > MaxSteps)
                    throw new PtdException(
                        $"{observations.Describe(i)}: {x.ToString("R", CultureInfo.InvariantCulture)} jumps is beyond the {MaxSteps} steps the pmf recursion is allowed");
                counts[i] = (int)x;
            }
            max = Math.Max(max, x);
        }
        var sorted = discrete ? [] : new double[values.Length];
        var rank = discrete ? [] : new int[values.Length];
        if (!discrete)
        {
            var order = UniformizationWindows.sortedOrder(values);
            for (int q = 0; q < order.Length; q++)
            {
                sorted[q] = values[order[q]];
                rank[order[q]] = q;
            }
        }
        return new LikelihoodData(values, counts, max, sorted, rank);
    }
}
