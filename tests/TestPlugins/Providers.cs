using Ptd.Storage;

namespace Ptd.TestPlugins;

/// <summary>
/// <c>mem://name?passwordEnv=VAR</c>: an in-memory store (see <see cref="MemoryBlobStore"/>).
/// </summary>
[BlobStoreProvider("mem")]
public sealed class MemoryProvider : IBlobStoreProvider
{
    private static readonly string[] Keys = ["passwordEnv"];

    public string Description => "In-memory store for tests";

    public IReadOnlyCollection<string> PublicQueryKeys => Keys;

    public IBlobStore Open(StoreUri location, BlobStoreContext context)
    {
        location.EnsureOnlyKeys(Keys);
        if (location.Authority.Length == 0)
            throw new BlobStoreException(BlobStoreErrorKind.Configuration, $"{location}: give a store name, e.g. mem://scratch");
        var passwordEnv = location.Get("passwordEnv");
        var password = passwordEnv is null ? null : context.GetEnvironmentVariable(passwordEnv);
        return new MemoryBlobStore(location.Authority, password, context.TimeProvider);
    }
}

/// <summary>
/// <c>faulty://name?mode=error|hang|crash|corrupt|truncate&amp;modeEnv=VAR</c>: an in-memory store named
/// <c>name</c> behind a fault injector. With <c>modeEnv</c> the mode is re-read from that (context) variable on every call.
/// </summary>
/// <remarks>
/// It has a MEF import (<see cref="Catalog"/>), so the host must compose it through System.Composition rather than
/// create it directly (what it does for providers without imports): <see cref="Open"/> fails if the import is missing.
/// </remarks>
[BlobStoreProvider("faulty")]
public sealed class FaultyProvider : IBlobStoreProvider
{
    private static readonly string[] Keys = ["mode", "modeEnv"];

    /// <summary>Satisfied by MEF from <see cref="FaultCatalog"/>'s export.</summary>
    [System.Composition.Import]
    public FaultCatalog? Catalog { get; set; }

    public string Description => "Fault-injecting in-memory store for tests";

    public IReadOnlyCollection<string> PublicQueryKeys => Keys;

    public IBlobStore Open(StoreUri location, BlobStoreContext context)
    {
        location.EnsureOnlyKeys(Keys);
        if (Catalog is null) throw new InvalidOperationException("the faulty provider was created without composition: its [Import] is missing");
        var fixedMode = Parse(location.Get("mode") ?? "none", location);
        var modeEnv = location.Get("modeEnv");
        Func<FaultMode> source = modeEnv is null ? () => fixedMode : () => Parse(context.GetEnvironmentVariable(modeEnv) ?? "none", location);
        return new FaultyBlobStore(new MemoryBlobStore(location.Authority, null, context.TimeProvider), source, location.ToDisplayString(Keys));
    }

    private static FaultMode Parse(string text, StoreUri location) => text.ToLowerInvariant() switch
    {
        "none" => FaultMode.None,
        "error" => FaultMode.Error,
        "hang" => FaultMode.Hang,
        "crash" => FaultMode.Crash,
        "corrupt" => FaultMode.CorruptReads,
        "truncate" => FaultMode.TruncateReads,
        _ => throw new BlobStoreException(BlobStoreErrorKind.Configuration, $"{location}: unknown fault mode '{text}'"),
    };
}

/// <summary>A part that <see cref="FaultyProvider"/> imports (it exists to make that provider need MEF composition).</summary>
[System.Composition.Export]
public sealed class FaultCatalog
{
}

/// <summary>A provider whose constructor throws: the host must report it and keep the other plugins.</summary>
[BlobStoreProvider("explodes")]
public sealed class ExplodingProvider : IBlobStoreProvider
{
    public ExplodingProvider() => throw new InvalidOperationException("this test provider always fails to start");

    public string Description => "never constructed";

    public IReadOnlyCollection<string> PublicQueryKeys => [];

    public IBlobStore Open(StoreUri location, BlobStoreContext context) => throw new NotSupportedException();
}
