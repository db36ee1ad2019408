using Microsoft.Extensions.Diagnostics.HealthChecks;
using Ptd.Host.Caching;

namespace Ptd.Hosting;

/// <summary>
/// Checks every cache tier (each within its timeout). A failing tier makes the pipeline <em>degraded</em>, not
/// unhealthy: the cache turns failures into misses, so results stay correct, only slower. The data holds one entry
/// per tier with its redacted location and state (never credentials).
/// </summary>
public sealed class PtdCacheHealthCheck(IArtifactCache cache) : IHealthCheck
{
    /// <summary>The name the check is registered under.</summary>
    public const string Name = "ptd-cache";

    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var reports = await cache.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
        var data = reports.ToDictionary(r => r.Tier, r => (object)$"{r.DisplayName}: {r.Health}");
        var failing = reports.Where(r => !r.Health.IsHealthy).Select(r => r.Tier).ToArray();
        if (reports.Count == 0) return HealthCheckResult.Healthy("caching is off", data);
        return failing.Length == 0
            ? HealthCheckResult.Healthy($"{reports.Count} cache tier(s) healthy", data)
            : HealthCheckResult.Degraded($"cache tier(s) failing: {string.Join(", ", failing)} (computations continue without them)", data: data);
    }
}
