using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Ptd.Host.Caching;
using Ptd.Host.Composition;

namespace Ptd.Hosting;

/// <summary>What <see cref="PtdServiceCollectionExtensions.AddPtdPipeline"/> returns: the collection, for chaining further Ptd registrations.</summary>
/// <param name="Services">The service collection.</param>
public sealed record PtdPipelineBuilder(IServiceCollection Services);

/// <summary>Registration of PtdPipeline in a <see cref="IServiceCollection"/>.</summary>
public static class PtdServiceCollectionExtensions
{
    /// <summary>
    /// Registers, as singletons: the storage plugin registry (<see cref="StorageProviderRegistry"/>), the tiered cache
    /// (<see cref="IArtifactCache"/>, metrics through the container's <see cref="IMeterFactory"/>, meter
    /// <c>Ptd.Cache</c>), the <see cref="CacheManager"/>, the layer warmers (<see cref="ICacheWarmer"/>: traces), the
    /// <see cref="TracedModelService"/>; the health check <c>ptd-cache</c> (tag <c>ptd</c>); and
    /// <see cref="PtdPipelineOptions"/> bound from the <c>Ptd</c> section and validated at start-up.
    /// </summary>
    /// <remarks>
    /// Extension points not yet on this branch: the kernel registry (layer 2, Ptd.Host/Kernels) and the inference
    /// service (<c>ptd infer</c>) register here when they land — add them to this method (and their warmer through
    /// <c>services.TryAddEnumerable(ServiceDescriptor.Singleton&lt;ICacheWarmer, KernelWarmer&gt;())</c>).
    /// The statistics ledger of the command line is off: services export metrics instead.
    /// </remarks>
    /// <param name="services">The collection.</param>
    /// <param name="configuration">The application configuration (its <c>Ptd</c> section is bound).</param>
    /// <param name="configure">Code configuration, applied after binding.</param>
    /// <returns>A builder for chaining.</returns>
    public static PtdPipelineBuilder AddPtdPipeline(this IServiceCollection services, IConfiguration configuration, Action<PtdPipelineOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var options = services.AddOptions<PtdPipelineOptions>().Bind(configuration.GetSection(PtdPipelineOptions.SectionName));
        if (configure is not null) options.Configure(configure);
        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PtdPipelineOptions>, PtdPipelineOptionsValidator>());

        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PtdPipelineOptions>>().Value;
            var log = Logger(sp, "Ptd.Plugins");
            var discovery = new PluginDiscoveryOptions { UsePluginPathVariable = o.UseEnvironment };
            foreach (var d in o.PluginDirectories) discovery.Directories.Add(d);
            var registry = StorageProviderRegistry.Discover(discovery);
            foreach (var e in registry.LoadErrors) log.LogWarning("storage plugin could not be loaded: {Error}", e.ToString());
            foreach (var w in registry.Warnings) log.LogWarning("storage plugins: {Warning}", w);
            log.LogInformation("storage plugins: {Schemes}", string.Join(", ", registry.Schemes));
            return registry;
        });
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<PtdPipelineOptions>>().Value;
            var log = Logger(sp, "Ptd.Cache");
            var cacheOptions = PtdCacheOptionsBuilder.Build(o);
            cacheOptions.MeterFactory = sp.GetService<IMeterFactory>();
            // Cache messages name tiers by their redacted locations only; they carry no credentials.
            cacheOptions.Log = m => log.LogWarning("{Message}", m);
            cacheOptions.StatisticsLedger = null;
            var cache = ArtifactCache.Create(cacheOptions, sp.GetRequiredService<StorageProviderRegistry>());
            foreach (var t in cache.Tiers) log.LogInformation("cache tier {Tier}: {Location} ({Access})", t.Name, t.DisplayName, t.Access);
            return cache;
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICacheWarmer, TraceWarmer>());
        services.TryAddSingleton(sp => new CacheManager(sp.GetRequiredService<IArtifactCache>(), sp.GetRequiredService<StorageProviderRegistry>(),
            sp.GetServices<ICacheWarmer>()));
        services.TryAddSingleton(sp => new TracedModelService(sp.GetRequiredService<IArtifactCache>(),
            sp.GetService<ILogger<TracedModelService>>() ?? NullLogger<TracedModelService>.Instance));
        services.AddHealthChecks().AddCheck<PtdCacheHealthCheck>(PtdCacheHealthCheck.Name, tags: ["ptd", "cache"]);
        return new PtdPipelineBuilder(services);
    }

    private static ILogger Logger(IServiceProvider sp, string category) =>
        sp.GetService<ILoggerFactory>()?.CreateLogger(category) ?? NullLogger.Instance;
}
