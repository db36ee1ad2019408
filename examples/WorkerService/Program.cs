// A minimal HTTP API over PtdPipeline, bound to 127.0.0.1:
//   GET  /health                          the ptd-cache health check (tiers reachable?)
//   POST /moments {"model": "coalescent:n=10", "theta": [1.0], "k": 3}
//        -> {"model", "key", "trace": "Hit"|"Computed", "tier", "mean", "variance", "moments"}
//   POST /infer {"model": "exponential", "data": [0.3, 1.2, ...], "priors": ["gamma:2,1"], "particles": 64, "iterations": 500}
//        -> {"model", "observations", "parameters": [{"name", "mean", "sd", "q025", "q975"}], "kernel": "Built"|"Cache"|"Memory", ...}
//        SVGD posterior of θ; likelihood kernels are shared in memory and persisted in the cache tiers (limits and
//        defaults: the "Ptd:Inference" section).
// Configuration: appsettings.json "Ptd" section, Ptd__Cache__... environment variables, PTD_CACHE, --Ptd:Cache:Timeout=5s
// (docs/configuration.md). Run: dotnet run --project examples/WorkerService -- --urls http://127.0.0.1:5080
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Ptd.Core;
using Ptd.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddPtdPipeline(builder.Configuration);
var app = builder.Build();

// Refuse to listen anywhere but loopback: this sample has no authentication.
foreach (var url in (app.Configuration["Urls"] ?? app.Configuration["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
{
    if (!Uri.TryCreate(url, UriKind.Absolute, out var u) || !System.Net.IPAddress.TryParse(u.Host, out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        throw new InvalidOperationException($"this sample listens on 127.0.0.1 only, not '{url}'");
}

app.MapHealthChecks("/health", new HealthCheckOptions
{
    // Degraded (a remote tier failing) still answers 200: results stay correct without the cache.
    ResultStatusCodes = { [HealthStatus.Healthy] = 200, [HealthStatus.Degraded] = 200, [HealthStatus.Unhealthy] = 503 },
});

app.MapPost("/moments", async (MomentsRequest request, TracedModelService service, CancellationToken ct) =>
{
    try
    {
        return Results.Ok(await service.MomentsAsync(request.Model ?? "", request.Theta, request.K ?? 2, ct));
    }
    catch (PtdException e)
    {
        return Results.BadRequest(new { error = e.Message });
    }
});

app.MapPost("/infer", async (PtdInferenceRequest request, PtdInferenceService service, CancellationToken ct) =>
{
    try
    {
        return Results.Ok(await service.RunAsync(request, cancellationToken: ct));
    }
    catch (PtdException e)
    {
        return Results.BadRequest(new { error = e.Message });
    }
});

app.Run();

/// <summary>The body of POST /moments.</summary>
/// <param name="Model">A built-in model spec.</param>
/// <param name="Theta">The parameters.</param>
/// <param name="K">The highest moment (default 2).</param>
internal sealed record MomentsRequest(string? Model, double[]? Theta, int? K);
