using Microsoft.Extensions.Logging;
using Ptd.Core;
using Ptd.Host.Caching;
using Ptd.Host.Models;

namespace Ptd.Hosting;

/// <summary>Moments computed from a cached trace.</summary>
/// <param name="Model">The model spec.</param>
/// <param name="Key">Its ModelKey (hex): the trace's cache key.</param>
/// <param name="Trace">Where the trace came from: <c>Hit</c> (with <paramref name="Tier"/>) or <c>Computed</c> (recorded now and stored).</param>
/// <param name="Tier">The tier that held the trace, or null.</param>
/// <param name="Mean">E[T].</param>
/// <param name="Variance">Var[T].</param>
/// <param name="Moments">E[T], …, E[T^k].</param>
public sealed record TracedMoments(string Model, string Key, string Trace, string? Tier, double Mean, double Variance, double[] Moments);

/// <summary>
/// Evaluates models through layer 1 of the cache: the trace of a model is looked up (key = ModelKey), recorded and
/// stored on a miss (once per key, also under concurrency), then replayed at θ. Registered by
/// <see cref="PtdServiceCollectionExtensions.AddPtdPipeline"/>; thread-safe.
/// </summary>
/// <remarks>
/// Only built-in model specs (<c>coalescent:n=30</c>) are accepted unless <paramref name="allowModelFiles"/> is set,
/// so that a service taking models from requests cannot be made to read files. When the trace store of Ptd.Host/Traces
/// lands, this service should delegate to it (same kind, revision and key convention, see docs/configuration.md).
/// </remarks>
public sealed class TracedModelService(IArtifactCache cache, ILogger<TracedModelService> logger, bool allowModelFiles = false)
{
    /// <summary>Raw moments 1..k (k ≥ 2), mean and variance of the absorption time at θ.</summary>
    /// <param name="model">A built-in model spec.</param>
    /// <param name="theta">The parameters (empty for a model without parameters).</param>
    /// <param name="k">The highest moment (at least 2).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The moments and where the trace came from.</returns>
    /// <exception cref="PtdException">The model or θ is invalid (the message says how to fix it).</exception>
    public async Task<TracedMoments> MomentsAsync(string model, double[]? theta, int k = 2, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(model)) throw new PtdException("no model given: pass a built-in spec such as coalescent:n=10");
        if (!allowModelFiles && !ModelSpec.isSpec(model))
            throw new PtdException($"'{model}' is not a built-in model spec ({string.Join(", ", ModelSpec.names)}); model files are not accepted here");
        if (k is < 2 or > 170) throw new PtdException($"k must be between 2 and 170, not {k}");
        theta ??= [];
        var graph = ModelSource.Load(model);
        if (theta.Length != graph.ParamLength)
            throw new PtdException($"model '{model}' has {graph.ParamLength} parameter(s); theta has {theta.Length} value(s)");
        var key = ModelKey.compute(graph);
        var kind = CacheLayers.Traces.CurrentKind!;
        var r = await cache.GetOrCreateAsync(kind, key.Hex, _ => Task.Run(() => TraceWarmer.RecordPayload(graph), CancellationToken.None), cancellationToken)
            .ConfigureAwait(false);
        Trace trace;
        try
        {
            trace = TraceEncoding.decodeFor(key, r.Payload);
        }
        catch (PtdException e)
        {
            // A verified envelope whose payload does not decode was written by a faulty producer: replace it.
            logger.LogWarning("cached trace {Key} does not decode ({Message}); recording it again", key.Hex, e.Message);
            await cache.RemoveAsync(kind, key.Hex, cancellationToken).ConfigureAwait(false);
            trace = TraceModule.record(graph);
        }
        logger.LogDebug("trace {Key} of {Model}: {Outcome} {Tier}", key.Hex, model, r.Outcome, r.Tier);
        var m = TraceEval.moments(trace, theta, Rewards.ones(graph), k);
        return new TracedMoments(model, key.Hex, r.Outcome.ToString(), r.Tier, m[0], m[1] - m[0] * m[0], m);
    }
}
