namespace Ptd.Hosting;

/// <summary>
/// Settings of <see cref="PtdServiceCollectionExtensions.AddPtdPipeline"/>, bound from the configuration section
/// <c>Ptd</c> (appsettings.json <c>"Ptd": {...}</c>, environment variables <c>Ptd__Cache__Timeout=5s</c>, …).
/// The <see cref="Cache"/> fields have the names and value syntax of the cache's JSON file (docs/configuration.md).
/// </summary>
public sealed class PtdPipelineOptions
{
    /// <summary>The configuration section bound to these options.</summary>
    public const string SectionName = "Ptd";

    /// <summary>The cache settings (same fields as <c>~/.ptd/cache.json</c>).</summary>
    public PtdCacheSettings Cache { get; set; } = new();

    /// <summary>Defaults and limits of <see cref="PtdInferenceService"/> (section <c>Ptd:Inference</c>).</summary>
    public PtdInferenceSettings Inference { get; set; } = new();

    /// <summary>Extra storage plugin directories, searched before <c>PTD_PLUGIN_PATH</c> and the application's <c>plugins</c> folder.</summary>
    public List<string> PluginDirectories { get; set; } = new();

    /// <summary>
    /// Whether the <c>ptd</c> environment applies (<c>PTD_CACHE_CONFIG</c> or <c>~/.ptd/cache.json</c>, <c>PTD_CACHE</c>,
    /// <c>PTD_PLUGIN_PATH</c>), exactly as for the command line. Default true; set false for a service configured only
    /// through <see cref="Microsoft.Extensions.Configuration.IConfiguration"/> and code.
    /// </summary>
    public bool UseEnvironment { get; set; } = true;

    /// <summary>Code configuration, applied last (wins over every other source).</summary>
    public Action<Ptd.Host.Caching.ArtifactCacheOptions>? ConfigureCache { get; set; }
}

/// <summary>The cache fields of the <c>Ptd:Cache</c> section; null means "not set here".</summary>
public sealed class PtdCacheSettings
{
    /// <summary><c>false</c> turns caching off.</summary>
    public bool? Enabled { get; set; }

    /// <summary>The tiers, fastest first; replaces the tiers of lower-precedence sources when given.</summary>
    public List<PtdTierSettings>? Tiers { get; set; }

    /// <summary>The generation segment of every key.</summary>
    public int? Generation { get; set; }

    /// <summary><c>none</c>, <c>deflate</c> or <c>brotli</c>.</summary>
    public string? Compression { get; set; }

    /// <summary>A size such as <c>64KB</c>.</summary>
    public string? CompressionThreshold { get; set; }

    /// <summary>The default per-call timeout, e.g. <c>10s</c>.</summary>
    public string? Timeout { get; set; }

    /// <summary>The default cool-down after a tier failure, e.g. <c>30s</c>.</summary>
    public string? CoolDown { get; set; }

    /// <summary>The largest payload, e.g. <c>1GB</c>.</summary>
    public string? MaxEntrySize { get; set; }

    /// <summary>Background eviction of tiers with limits.</summary>
    public bool? AutoEvict { get; set; }
}

/// <summary>One tier in the <c>Ptd:Cache:Tiers</c> list.</summary>
public sealed class PtdTierSettings
{
    /// <summary>The location, e.g. <c>file:///var/cache/ptd</c> or <c>s3://bucket/prefix?region=eu-west-1</c>.</summary>
    public string? Uri { get; set; }

    /// <summary><c>read-write</c> (default) or <c>read-only</c>.</summary>
    public string? Access { get; set; }

    /// <summary>Per-call timeout, e.g. <c>3s</c>.</summary>
    public string? Timeout { get; set; }

    /// <summary>Cool-down after a failure, e.g. <c>30s</c>.</summary>
    public string? CoolDown { get; set; }

    /// <summary>Size limit for eviction, e.g. <c>20GB</c>.</summary>
    public string? MaxSize { get; set; }

    /// <summary>Age limit for eviction, e.g. <c>30d</c>.</summary>
    public string? MaxAge { get; set; }

    /// <summary>The tier's name in statistics and metrics.</summary>
    public string? Name { get; set; }
}
