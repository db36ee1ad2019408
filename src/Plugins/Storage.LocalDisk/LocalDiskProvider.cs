namespace Ptd.Storage.LocalDisk;

/// <summary>
/// Opens <c>file://</c> locations: <c>file:///absolute/path</c>, <c>file://~/relative-to-home</c>, or <c>file://</c>
/// for the default directory (<c>PTD_CACHE_DIR</c> when set, else <c>~/.ptd/cache</c>).
/// Query parameter <c>fsync=false</c> skips flushing to the device before publishing (faster, less durable).
/// </summary>
[BlobStoreProvider("file")]
public sealed class LocalDiskProvider : IBlobStoreProvider
{
    private static readonly string[] Keys = ["fsync"];

    /// <inheritdoc />
    public string Description => "Local directory (atomic publish by rename, fan-out directories)";

    /// <inheritdoc />
    public IReadOnlyCollection<string> PublicQueryKeys => Keys;

    /// <inheritdoc />
    public IBlobStore Open(StoreUri location, BlobStoreContext context)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(context);
        location.EnsureOnlyKeys(Keys);
        var root = ResolveRoot(location, context);
        var display = location.Authority.Length == 0 && location.Path.Length == 0
            ? "file://" + root.Replace('\\', '/') // show where the default location resolved to
            : location.ToDisplayString(Keys);
        return new LocalDiskStore(root, display, location.GetBool("fsync", true), context.TimeProvider, context.MaxReadBytes);
    }

    /// <summary>The directory a <c>file://</c> location designates.</summary>
    /// <param name="location">The location.</param>
    /// <param name="context">Environment access.</param>
    /// <returns>An absolute, normalized directory path.</returns>
    public static string ResolveRoot(StoreUri location, BlobStoreContext context)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(context);
        CheckPath(location);
        string path;
        if (location.Authority.Length == 0 && location.Path.Length == 0)
        {
            path = DefaultDirectory(context);
        }
        else if (location.Authority == "~")
        {
            path = System.IO.Path.Combine(Home(context), location.Path);
        }
        else if (location.Authority.Length == 0 || string.Equals(location.Authority, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            // file:///tmp/x has path "tmp/x"; on Windows file:///C:/x has path "C:/x".
            path = OperatingSystem.IsWindows() ? location.Path : "/" + location.Path;
        }
        else
        {
            throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                $"{location}: a file location needs an absolute path (file:///absolute/path, file://~/path or file:// for the default); host '{location.Authority}' is not supported");
        }
        if (!System.IO.Path.IsPathFullyQualified(path))
            throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                $"{location}: '{path}' is not an absolute path; use file:///absolute/path");
        return System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
    }

    // The root must be the directory the location reads as: "file:///srv/cache/../other" would silently put the cache
    // in /srv/other, and a percent-encoded "%2e%2e" or a NUL would hide that even better. Such paths are refused.
    private static void CheckPath(StoreUri location)
    {
        var path = location.Path;
        if (path.Any(char.IsControl))
            throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                $"{location}: the path contains a control character (U+{(int)path.First(char.IsControl):X4}); give a plain absolute directory, e.g. file:///var/cache/ptd");
        var segments = path.Split('/', '\\');
        if (segments.Any(s => s is "." or ".."))
            throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                $"{location}: the path has a '.' or '..' segment (possibly percent-encoded); name the directory itself without them, e.g. file:///var/cache/ptd");
    }

    /// <summary>The default cache directory: <c>PTD_CACHE_DIR</c> when set, else <c>~/.ptd/cache</c>.</summary>
    /// <param name="context">Environment access.</param>
    /// <returns>An absolute path.</returns>
    public static string DefaultDirectory(BlobStoreContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var dir = context.GetEnvironmentVariable("PTD_CACHE_DIR");
        if (!string.IsNullOrWhiteSpace(dir))
        {
            if (!System.IO.Path.IsPathFullyQualified(dir))
                throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                    $"PTD_CACHE_DIR='{dir}' is not an absolute path; set it to an absolute directory");
            return dir;
        }
        return System.IO.Path.Combine(Home(context), ".ptd", "cache");
    }

    private static string Home(BlobStoreContext context)
    {
        var home = context.GetEnvironmentVariable("HOME");
        if (string.IsNullOrEmpty(home)) home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home))
            throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                "cannot find the home directory for the default cache location; set PTD_CACHE_DIR or use file:///absolute/path");
        return home;
    }
}
