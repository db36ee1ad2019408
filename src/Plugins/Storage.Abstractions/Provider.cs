using System.Composition;

namespace Ptd.Storage;

/// <summary>
/// Opens stores for one URI scheme. A plugin exports an implementation with <see cref="BlobStoreProviderAttribute"/>;
/// the host discovers it through System.Composition (MEF) and calls <see cref="Open"/> for every location with that scheme.
/// </summary>
public interface IBlobStoreProvider
{
    /// <summary>A one-line description for listings, e.g. <c>Amazon S3 and S3-compatible servers</c>.</summary>
    string Description { get; }

    /// <summary>
    /// The query parameter names whose values are safe to print (e.g. <c>region</c>, <c>endpoint</c>).
    /// Every other value is redacted in display names and messages.
    /// </summary>
    IReadOnlyCollection<string> PublicQueryKeys { get; }

    /// <summary>
    /// Opens a store. Must not perform network I/O (connections are made on first use) and must validate the
    /// location, throwing <see cref="BlobStoreException"/> of kind <see cref="BlobStoreErrorKind.Configuration"/>
    /// with a message that says what is wrong and how to fix it.
    /// </summary>
    /// <param name="location">The location; its scheme is this provider's.</param>
    /// <param name="context">Services from the host (environment access).</param>
    /// <returns>The store; the caller disposes it.</returns>
    IBlobStore Open(StoreUri location, BlobStoreContext context);
}

/// <summary>Exports a class as an <see cref="IBlobStoreProvider"/> for the given URI scheme.</summary>
[MetadataAttribute]
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class BlobStoreProviderAttribute : ExportAttribute
{
    /// <summary>Exports the class for <paramref name="scheme"/>.</summary>
    /// <param name="scheme">The URI scheme in lowercase, e.g. <c>s3</c>.</param>
    public BlobStoreProviderAttribute(string scheme)
        : base(typeof(IBlobStoreProvider))
    {
        Scheme = scheme;
    }

    /// <summary>The URI scheme this provider opens.</summary>
    public string Scheme { get; }
}

/// <summary>The metadata view the host imports alongside each provider (filled from <see cref="BlobStoreProviderAttribute"/>).</summary>
public sealed class BlobStoreProviderMetadata
{
    /// <summary>The URI scheme.</summary>
    public string Scheme { get; set; } = "";
}

/// <summary>Services the host passes to <see cref="IBlobStoreProvider.Open"/>.</summary>
public sealed class BlobStoreContext
{
    /// <summary>A context that reads the real process environment.</summary>
    public static BlobStoreContext Default { get; } = new();

    /// <summary>
    /// Reads an environment variable (returns null when unset). Providers read secrets only through this, so that
    /// hosts and tests can supply them without touching the process environment.
    /// </summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>The clock for timestamps (tests may substitute it).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The default <see cref="MaxReadBytes"/>: 1 GiB (the cache's default largest entry) plus 2 MiB for its envelope.</summary>
    public const long DefaultMaxReadBytes = (1L << 30) + (2L << 20);

    /// <summary>
    /// The largest value a store opened with this context may read, in bytes. A read whose declared or streamed length
    /// exceeds it must stop there (without buffering the rest) and throw <see cref="BlobStoreException"/> of kind
    /// <see cref="BlobStoreErrorKind.TooLarge"/>; <see cref="BlobBodyReader"/> does this for a stream. The host sets it
    /// from its largest cache entry; providers that ignore it keep working (they are just not protected against a
    /// server that sends an endless body).
    /// </summary>
    public long MaxReadBytes { get; init; } = DefaultMaxReadBytes;

    /// <summary>A copy of this context with another <see cref="MaxReadBytes"/>.</summary>
    /// <param name="maxReadBytes">The read limit in bytes (positive).</param>
    /// <returns>The copy.</returns>
    public BlobStoreContext WithMaxReadBytes(long maxReadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxReadBytes);
        return new BlobStoreContext { GetEnvironmentVariable = GetEnvironmentVariable, TimeProvider = TimeProvider, MaxReadBytes = maxReadBytes };
    }
}
