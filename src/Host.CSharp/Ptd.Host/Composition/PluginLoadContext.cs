using System.Reflection;
using System.Runtime.Loader;

namespace Ptd.Host.Composition;

/// <summary>
/// One load context per plugin directory: the plugin's own dependencies (e.g. a particular AWS or Azure SDK version)
/// load from its folder via its .deps.json, isolated from other plugins; the contract and System.Composition are
/// deferred to the default context so that <c>IBlobStoreProvider</c> and the MEF attributes are the host's types.
/// </summary>
internal sealed class PluginLoadContext : AssemblyLoadContext
{
    private readonly AssemblyDependencyResolver _resolver;

    public PluginLoadContext(string mainAssemblyPath)
        : base("ptd-plugin:" + Path.GetFileNameWithoutExtension(mainAssemblyPath), isCollectible: false)
    {
        _resolver = new AssemblyDependencyResolver(mainAssemblyPath);
    }

    /// <summary>Assemblies that must be shared with the host, whatever copy a plugin ships.</summary>
    public static bool IsShared(AssemblyName name) =>
        name.Name is { } n &&
        (n == "Ptd.Storage.Abstractions" || n == "System.Composition" || n.StartsWith("System.Composition.", StringComparison.Ordinal));

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (IsShared(assemblyName)) return null; // fall back to the default context
        var path = _resolver.ResolveAssemblyToPath(assemblyName);
        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}
