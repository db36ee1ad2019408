namespace Ptd.Host.Composition;

/// <summary>Where <see cref="StorageProviderRegistry.Discover"/> looks for storage plugins.</summary>
/// <remarks>
/// Search order (the first provider found for a scheme wins, so a user can override a shipped plugin):
/// <see cref="Directories"/>, then the entries of <c>PTD_PLUGIN_PATH</c> (separated by
/// <see cref="Path.PathSeparator"/>), then <see cref="DefaultDirectory"/>. Each directory is either a plugin
/// directory (it holds a plugin assembly with its <c>.deps.json</c>) or a root whose immediate subdirectories are
/// plugin directories.
/// </remarks>
public sealed class PluginDiscoveryOptions
{
    /// <summary>The environment variable with extra plugin directories.</summary>
    public const string PluginPathVariable = "PTD_PLUGIN_PATH";

    /// <summary>The <c>plugins</c> folder next to the running application (where the build deploys the shipped plugins).</summary>
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "plugins");

    /// <summary>Extra directories searched first.</summary>
    public IList<string> Directories { get; } = new List<string>();

    /// <summary>Whether <c>PTD_PLUGIN_PATH</c> is searched (default true).</summary>
    public bool UsePluginPathVariable { get; set; } = true;

    /// <summary>Whether <see cref="DefaultDirectory"/> is searched (default true).</summary>
    public bool UseDefaultDirectory { get; set; } = true;

    /// <summary>
    /// Whether plugins are loaded only when one of their schemes is opened (default true). Discovery then reads each
    /// plugin's schemes from its assembly metadata (<c>[BlobStoreProvider("scheme")]</c>) without loading it, so that a
    /// process using only <c>file://</c> never loads the S3 or Azure SDK plugins; a plugin that cannot be loaded is
    /// reported when it is opened. False loads and composes every plugin during discovery (all load errors up front).
    /// </summary>
    public bool LoadOnDemand { get; set; } = true;

    /// <summary>Reads environment variables (tests substitute it).</summary>
    public Func<string, string?> GetEnvironmentVariable { get; set; } = Environment.GetEnvironmentVariable;
}
