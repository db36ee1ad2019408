using System.Composition;
using System.Composition.Hosting;
using System.Reflection;
using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Composition;

/// <summary>
/// The storage providers available to the host, by URI scheme: discovered from plugin directories through
/// System.Composition (MEF), each plugin in its own load context, and/or registered in-process.
/// </summary>
/// <remarks>
/// A plugin that fails to load is recorded in <see cref="LoadErrors"/> and the others still work. Opening a
/// location with an unknown scheme fails with a message listing the schemes found. Thread-safe for reading
/// once built; register in-process providers before sharing the registry.
/// </remarks>
public sealed class StorageProviderRegistry : IDisposable
{
    private readonly Dictionary<string, Entry> _providers = new(StringComparer.Ordinal);
    private readonly List<PluginLoadError> _errors = new();
    private readonly List<string> _warnings = new();
    private readonly List<string> _searched = new();
    private readonly List<CompositionHost> _containers = new();
    private readonly object _gate = new();

    /// <summary>Creates an empty registry (add providers with <see cref="Register"/>).</summary>
    public StorageProviderRegistry()
    {
    }

    /// <summary>The schemes that can be opened, sorted.</summary>
    public IReadOnlyList<string> Schemes
    {
        get { lock (_gate) return _providers.Keys.Order(StringComparer.Ordinal).ToArray(); }
    }

    /// <summary>The providers found, sorted by scheme.</summary>
    public IReadOnlyList<StorageProviderInfo> Providers
    {
        get { lock (_gate) return _providers.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new StorageProviderInfo(p.Key, p.Value.Source)).ToArray(); }
    }

    /// <summary>Plugins that could not be loaded or composed.</summary>
    public IReadOnlyList<PluginLoadError> LoadErrors
    {
        get { lock (_gate) return _errors.ToArray(); }
    }

    /// <summary>Non-fatal findings, such as two plugins claiming one scheme.</summary>
    public IReadOnlyList<string> Warnings
    {
        get { lock (_gate) return _warnings.ToArray(); }
    }

    /// <summary>The directories searched by <see cref="Discover"/>, in order.</summary>
    public IReadOnlyList<string> SearchedDirectories
    {
        get { lock (_gate) return _searched.ToArray(); }
    }

    /// <summary>Discovers plugins (see <see cref="PluginDiscoveryOptions"/> for where it looks).</summary>
    /// <param name="options">Where to look; null for the defaults.</param>
    /// <returns>A registry with every provider that loaded.</returns>
    public static StorageProviderRegistry Discover(PluginDiscoveryOptions? options = null)
    {
        options ??= new PluginDiscoveryOptions();
        var registry = new StorageProviderRegistry();
        var roots = new List<(string Dir, bool Explicit)>();
        roots.AddRange(options.Directories.Select(d => (d, true)));
        if (options.UsePluginPathVariable && options.GetEnvironmentVariable(PluginDiscoveryOptions.PluginPathVariable) is { Length: > 0 } path)
            roots.AddRange(path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(d => (d, true)));
        if (options.UseDefaultDirectory) roots.Add((PluginDiscoveryOptions.DefaultDirectory, false));
        foreach (var (dir, isExplicit) in roots) registry.LoadRoot(dir, isExplicit, options.LoadOnDemand);
        return registry;
    }

    /// <summary>Adds an in-process provider (for hosts and tests that do not load plugins from disk).</summary>
    /// <param name="scheme">The URI scheme, lowercase.</param>
    /// <param name="provider">The provider.</param>
    /// <param name="replace">Replace an existing provider for the scheme instead of failing.</param>
    public void Register(string scheme, IBlobStoreProvider provider, bool replace = false)
    {
        ArgumentNullException.ThrowIfNull(provider);
        var s = CheckScheme(scheme, "in-process");
        lock (_gate)
        {
            if (!replace && _providers.ContainsKey(s))
                throw new PtdException($"a storage provider for scheme '{s}' is already registered (from {_providers[s].Source}); pass replace=true to replace it");
            _providers[s] = new Entry("in-process", new Lazy<IBlobStoreProvider>(() => provider));
        }
    }

    /// <summary>Finds the provider for a scheme.</summary>
    /// <param name="scheme">The URI scheme.</param>
    /// <param name="provider">The provider, or null.</param>
    /// <returns>True when a provider is known for <paramref name="scheme"/>.</returns>
    /// <exception cref="PtdException">The plugin's provider could not be created.</exception>
    public bool TryGetProvider(string scheme, out IBlobStoreProvider? provider)
    {
        Entry? entry;
        lock (_gate) _providers.TryGetValue(scheme.ToLowerInvariant(), out entry);
        provider = entry is null ? null : Instantiate(scheme, entry);
        return provider is not null;
    }

    /// <summary>Opens a store from a location such as <c>s3://bucket/prefix?region=eu-west-1</c>.</summary>
    /// <param name="location">The location text.</param>
    /// <param name="context">Services for the provider; null for the process environment.</param>
    /// <returns>The store (the caller disposes it).</returns>
    /// <exception cref="PtdException">The location is malformed, its scheme is unknown, or the provider rejected it; the message is free of credentials.</exception>
    public IBlobStore Open(string location, BlobStoreContext? context = null)
    {
        if (!StoreUri.TryParse(location, out var uri, out var error)) throw new PtdException(error!);
        return Open(uri!, context);
    }

    /// <summary>Opens a store from a parsed location.</summary>
    /// <param name="location">The location.</param>
    /// <param name="context">Services for the provider; null for the process environment.</param>
    /// <returns>The store (the caller disposes it).</returns>
    /// <exception cref="PtdException">The scheme is unknown or the provider rejected the location.</exception>
    public IBlobStore Open(StoreUri location, BlobStoreContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!TryGetProvider(location.Scheme, out var provider)) throw new PtdException(UnknownSchemeMessage(location));
        try
        {
            return provider!.Open(location, context ?? BlobStoreContext.Default);
        }
        catch (BlobStoreException e)
        {
            throw new PtdException(e.Message, e);
        }
        catch (Exception e) when (e is not PtdException and not OperationCanceledException)
        {
            throw new PtdException($"{Display(location)}: the '{location.Scheme}' storage plugin failed to open the location: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A location for display: query values are shown only for keys the scheme's provider declares public
    /// (all are hidden when the scheme is unknown or the text does not parse).
    /// </summary>
    /// <param name="location">The location text.</param>
    /// <returns>A string safe to print.</returns>
    public string Display(string location) =>
        StoreUri.TryParse(location, out var uri, out _) ? Display(uri!) : "(unparsable store location)";

    /// <summary>A parsed location for display (see <see cref="Display(string)"/>).</summary>
    /// <param name="location">The location.</param>
    /// <returns>A string safe to print.</returns>
    public string Display(StoreUri location)
    {
        ArgumentNullException.ThrowIfNull(location);
        try
        {
            return TryGetProvider(location.Scheme, out var p) ? location.ToDisplayString(p!.PublicQueryKeys) : location.ToString();
        }
        catch (PtdException)
        {
            return location.ToString();
        }
    }

    /// <summary>Disposes the composition containers (the plugin assemblies stay loaded).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var c in _containers) c.Dispose();
            _containers.Clear();
        }
    }

    private string UnknownSchemeMessage(StoreUri location)
    {
        var schemes = Schemes;
        var msg = $"no storage plugin handles the scheme '{location.Scheme}' (in {location}). " +
                  (schemes.Count == 0 ? "No storage plugins were found" : "Schemes found: " + string.Join(", ", schemes));
        var searched = SearchedDirectories;
        if (searched.Count > 0) msg += "; searched: " + string.Join(", ", searched);
        var errors = LoadErrors;
        if (errors.Count > 0) msg += ". Plugins that failed to load: " + string.Join("; ", errors);
        return msg + ". Add plugin directories with " + PluginDiscoveryOptions.PluginPathVariable + ".";
    }

    private IBlobStoreProvider Instantiate(string scheme, Entry entry)
    {
        try
        {
            return entry.Provider.Value;
        }
        catch (Exception e) when (e is ReflectionTypeLoadException or BadImageFormatException or FileLoadException or FileNotFoundException)
        {
            // A plugin loaded on demand fails here rather than at discovery.
            throw new PtdException($"the storage plugin for scheme '{scheme}' ({entry.Source}) could not be loaded: {DescribeLoadFailure(e)}", e);
        }
        catch (Exception e)
        {
            var inner = e is CompositionFailedException or TargetInvocationException && e.InnerException is not null ? e.InnerException : e;
            throw new PtdException($"the storage plugin for scheme '{scheme}' ({entry.Source}) could not be created: {inner.GetType().Name}: {inner.Message}", e);
        }
    }

    private void LoadRoot(string dir, bool isExplicit, bool onDemand)
    {
        string full;
        try
        {
            full = Path.GetFullPath(dir);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            AddError(dir, $"not a valid directory path ({e.Message})");
            return;
        }
        lock (_gate) _searched.Add(full);
        if (!Directory.Exists(full))
        {
            // The default folder may legitimately be absent (library use without plugins); a named one may not.
            if (isExplicit) AddError(full, "plugin directory does not exist");
            return;
        }
        if (MainAssemblies(full).Length > 0)
        {
            LoadPluginDirectory(full, onDemand);
            return;
        }
        foreach (var sub in Directory.GetDirectories(full).Order(StringComparer.Ordinal))
        {
            if (MainAssemblies(sub).Length > 0) LoadPluginDirectory(sub, onDemand);
            else AddError(sub, "no plugin assembly found (expected a .dll with its .deps.json, as `dotnet build` of a plugin project produces)");
        }
    }

    // A plugin's entry assemblies are those built by its project: they come with a .deps.json.
    private static string[] MainAssemblies(string dir) =>
        Directory.GetFiles(dir, "*.deps.json")
            .Select(d => Path.Combine(dir, Path.GetFileName(d)[..^".deps.json".Length] + ".dll"))
            .Where(File.Exists)
            .Order(StringComparer.Ordinal)
            .ToArray();

    private void LoadPluginDirectory(string dir, bool onDemand)
    {
        foreach (var main in MainAssemblies(dir))
        {
            if (DepsFile.Validate(Path.ChangeExtension(main, ".deps.json")) is { } depsError)
            {
                AddError(main, depsError);
                continue;
            }
            if (onDemand)
            {
                // The schemes come from the assembly's metadata; the plugin is loaded only when one of them is opened,
                // and composed by MEF only if its provider needs composition (see CreateDirectly). Without a
                // [BlobStoreProvider] in the metadata, compose now (to find exports declared another way, or to say
                // why there are none).
                IReadOnlyList<(string Scheme, string TypeName)> declared;
                try
                {
                    declared = PluginManifest.Schemes(main);
                }
                catch (Exception e) when (e is BadImageFormatException or IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    AddError(main, e is BadImageFormatException ? $"not a valid .NET assembly ({e.Message})" : $"could not be read: {e.Message}");
                    continue;
                }
                if (declared.Count > 0)
                {
                    var path = main;
                    var assembly = new Lazy<Assembly>(() => new PluginLoadContext(path).LoadFromAssemblyPath(path), LazyThreadSafetyMode.ExecutionAndPublication);
                    var composed = new Lazy<Lazy<IBlobStoreProvider, BlobStoreProviderMetadata>[]>(() => Compose(assembly.Value), LazyThreadSafetyMode.ExecutionAndPublication);
                    foreach (var (scheme, typeName) in declared.DistinctBy(d => d.Scheme))
                        Add(scheme, main, new Lazy<IBlobStoreProvider>(
                            () => CreateDirectly(assembly.Value, typeName) ?? ExportFor(composed.Value, scheme, path).Value,
                            LazyThreadSafetyMode.ExecutionAndPublication));
                    continue;
                }
            }
            try
            {
                var exports = Compose(new PluginLoadContext(main).LoadFromAssemblyPath(main));
                if (exports.Length == 0)
                {
                    AddError(main, $"the assembly exports no {nameof(IBlobStoreProvider)} (mark the provider class with [BlobStoreProvider(\"scheme\")] and reference Ptd.Storage.Abstractions with Private=false)");
                    continue;
                }
                foreach (var export in exports) Add(export.Metadata.Scheme, main, export);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Whatever a plugin does wrong, the host and the other plugins carry on.
                AddError(main, DescribeLoadFailure(e));
            }
        }
    }

    // Composes the exports of a plugin assembly loaded in its own context (MEF: the costly part of opening a plugin).
    private Lazy<IBlobStoreProvider, BlobStoreProviderMetadata>[] Compose(Assembly assembly)
    {
        var container = new ContainerConfiguration().WithAssembly(assembly).CreateContainer();
        lock (_gate) _containers.Add(container);
        return container.GetExports<Lazy<IBlobStoreProvider, BlobStoreProviderMetadata>>().ToArray();
    }

    /// <summary>
    /// Creates a provider without MEF when composition could add nothing: a public parameterless constructor and no
    /// imports (no <c>[ImportingConstructor]</c>, <c>[Import]</c>, <c>[ImportMany]</c> or <c>[OnImportsSatisfied]</c> on
    /// the type or its bases). Building a MEF container costs a cold process about a fifth of a second (it reflects over
    /// the plugin and JIT-compiles System.Composition), more than the rest of opening a local cache; providers with
    /// imports still go through MEF. Returns null when MEF is needed.
    /// </summary>
    private static IBlobStoreProvider? CreateDirectly(Assembly assembly, string typeName)
    {
        var type = assembly.GetType(typeName, throwOnError: false);
        if (type is null || type.IsAbstract || !typeof(IBlobStoreProvider).IsAssignableFrom(type)) return null;
        var ctor = type.GetConstructor(Type.EmptyTypes);
        if (ctor is null || NeedsComposition(type)) return null;
        return (IBlobStoreProvider)ctor.Invoke(null);
    }

    private static bool NeedsComposition(Type type)
    {
        static bool IsImport(MemberInfo m) => m.GetCustomAttributesData().Any(a =>
            a.AttributeType.Namespace == "System.Composition" &&
            a.AttributeType.Name is "ImportAttribute" or "ImportManyAttribute" or "ImportingConstructorAttribute" or "OnImportsSatisfiedAttribute");
        const BindingFlags all = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            if (t.GetConstructors(all).Any(IsImport) || t.GetProperties(all).Any(IsImport) || t.GetFields(all).Any(IsImport) || t.GetMethods(all).Any(IsImport))
                return true;
        }
        return false;
    }

    private static Lazy<IBlobStoreProvider> ExportFor(Lazy<IBlobStoreProvider, BlobStoreProviderMetadata>[] exports, string scheme, string main) =>
        exports.FirstOrDefault(x => x.Metadata.Scheme == scheme)
        ?? throw new InvalidOperationException($"{main} declares scheme '{scheme}' in [BlobStoreProvider] but composition exports no provider for it " +
                                               $"(exported: {(exports.Length == 0 ? "none" : string.Join(", ", exports.Select(x => x.Metadata.Scheme)))})");

    private static string DescribeLoadFailure(Exception e) => e switch
    {
        ReflectionTypeLoadException r =>
            $"types could not be loaded: {r.LoaderExceptions.FirstOrDefault(x => x is not null)?.Message ?? r.Message} (is a dependency missing from the plugin folder?)",
        BadImageFormatException => $"not a valid .NET assembly ({e.Message})",
        _ => $"could not be loaded: {e.GetType().Name}: {e.Message}",
    };

    private void Add(string scheme, string source, Lazy<IBlobStoreProvider> provider)
    {
        string s;
        try
        {
            s = CheckScheme(scheme, source);
        }
        catch (PtdException e)
        {
            AddError(source, e.Message);
            return;
        }
        lock (_gate)
        {
            if (_providers.TryGetValue(s, out var existing))
            {
                _warnings.Add($"scheme '{s}' is provided by both {existing.Source} and {source}; using the first");
                return;
            }
            _providers[s] = new Entry(source, provider);
        }
    }

    private static string CheckScheme(string scheme, string source)
    {
        if (string.IsNullOrEmpty(scheme) || !char.IsAsciiLetterLower(scheme[0]) ||
            scheme.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '+' or '-' or '.')))
            throw new PtdException($"{source}: storage provider scheme '{scheme}' is not a lowercase URI scheme");
        return scheme;
    }

    private void AddError(string path, string message)
    {
        lock (_gate) _errors.Add(new PluginLoadError(path, message));
    }

    private sealed record Entry(string Source, Lazy<IBlobStoreProvider> Provider);
}
