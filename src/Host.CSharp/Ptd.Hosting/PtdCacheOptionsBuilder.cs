using System.Text.Json;
using System.Text.Json.Serialization;
using Ptd.Host.Caching;

namespace Ptd.Hosting;

/// <summary>
/// Turns <see cref="PtdPipelineOptions"/> into <see cref="ArtifactCacheOptions"/>, the one place where the sources meet.
/// Precedence, lowest first: built-in defaults; the JSON file (<c>PTD_CACHE_CONFIG</c>, else <c>~/.ptd/cache.json</c>);
/// the <c>Ptd:Cache</c> configuration section; the <c>PTD_CACHE</c> variable (tiers only); code
/// (<see cref="PtdPipelineOptions.ConfigureCache"/>). The file and the section are parsed by the same code
/// (<see cref="CacheConfiguration.ApplyJson"/>), so a setting means the same thing wherever it is written.
/// </summary>
public static class PtdCacheOptionsBuilder
{
    private static readonly JsonSerializerOptions SectionJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Builds and validates the cache options.</summary>
    /// <param name="options">The bound options.</param>
    /// <param name="getEnvironmentVariable">Reads variables (null: the process environment).</param>
    /// <returns>The cache options (without meter factory and log, which the container supplies).</returns>
    /// <exception cref="Ptd.Core.PtdException">A setting is malformed; the message names it.</exception>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public static ArtifactCacheOptions Build(PtdPipelineOptions options, Func<string, string?>? getEnvironmentVariable = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var env = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        Func<string, string?> filtered = options.UseEnvironment
            ? env
            // Without the ptd environment only the plugins' own variables (credentials, PTD_CACHE_DIR) are read.
            : name => name is CacheConfiguration.CacheVariable or CacheConfiguration.ConfigFileVariable or "HOME" or "USERPROFILE" ? null : env(name);
        var result = CacheConfiguration.FromEnvironment(name => name == CacheConfiguration.CacheVariable ? null : filtered(name));
        var section = JsonSerializer.Serialize(options.Cache ?? new PtdCacheSettings(), SectionJson);
        CacheConfiguration.ApplyJson(result, section, "configuration section Ptd:Cache");
        if (filtered(CacheConfiguration.CacheVariable) is { } chain)
        {
            result.Tiers.Clear();
            foreach (var t in CacheConfiguration.ParseChain(chain)) result.Tiers.Add(t);
        }
        options.ConfigureCache?.Invoke(result);
        result.Validate();
        return result;
    }
}
