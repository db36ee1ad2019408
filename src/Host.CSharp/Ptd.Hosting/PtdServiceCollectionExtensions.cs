using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Ptd.Host.Caching;
using Ptd.Host.Composition;
using Ptd.Host.Kernels;

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
    /// <c>Ptd.Cache</c>), the kernel registry (<see cref="KernelRegistry"/>, layer 2, persisted through the same
    /// cache), the <see cref="CacheManager"/>, the layer warmers (<see cref="ICacheWarmer"/>: traces, kernels), the
    /// <see cref="TracedModelService"/> (moments) and the <see cref="PtdInferenceService"/> (SVGD posterior); the health
    /// check <c>ptd-cache</c> (tag <c>ptd</c>); and <see cref="PtdPipelineOptions"/> bound from the <c>Ptd</c> section
    /// and validated at start-up (cache settings and <c>Ptd:Inference</c>).
    /// </summary>
    /// <remarks>
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
        services.TryAddSingleton(sp =>
        {
            var log = Logger(sp, "Ptd.Kernels");
            // Kernel lines name the kernel key and the tier's name only (never a location or credential).
            return new KernelRegistry(sp.GetRequiredService<IArtifactCache>(), m => log.LogDebug("{Message}", m));
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICacheWarmer, TraceWarmer>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICacheWarmer, KernelWarmer>(sp => new KernelWarmer(sp.GetRequiredService<KernelRegistry>())));
        services.TryAddSingleton(sp => new CacheManager(sp.GetRequiredService<IArtifactCache>(), sp.GetRequiredService<StorageProviderRegistry>(),
            sp.GetServices<ICacheWarmer>()));
        services.TryAddSingleton(sp => new TracedModelService(sp.GetRequiredService<IArtifactCache>(),
            sp.GetService<ILogger<TracedModelService>>() ?? NullLogger<TracedModelService>.Instance));
        services.TryAddSingleton(sp => new PtdInferenceService(sp.GetRequiredService<KernelRegistry>(),
            sp.GetRequiredService<IOptions<PtdPipelineOptions>>(),
            sp.GetService<ILogger<PtdInferenceService>>() ?? NullLogger<PtdInferenceService>.Instance));
        services.AddHealthChecks().AddCheck<PtdCacheHealthCheck>(PtdCacheHealthCheck.Name, tags: ["ptd", "cache"]);
        return new PtdPipelineBuilder(services);
    }

    private static ILogger Logger(IServiceProvider sp, string category) =>
        sp.GetService<ILoggerFactory>()?.CreateLogger(category) ?? NullLogger.Instance;
}
