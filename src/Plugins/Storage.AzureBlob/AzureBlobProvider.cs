using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;

namespace Ptd.Storage.AzureBlob;

/// <summary>
/// Opens <c>azblob://container/prefix?...</c> locations. Authentication, in order:
/// <c>account=NAME</c> or <c>endpoint=URL</c> select token authentication with <c>DefaultAzureCredential</c>
/// (or a SAS token from the environment variable named by <c>sasEnv</c>, or none with <c>anonymous=true</c>,
/// which makes the store read-only); otherwise a connection string is read from the environment variable named
/// by <c>connectionStringEnv</c>, default <c>PTD_AZURE_CONNECTION_STRING</c>.
/// Other parameters: <c>create=true</c> (create the container on first write), <c>retries</c> (default 2).
/// Secrets are only ever read from environment variables, never from the location itself.
/// </summary>
[BlobStoreProvider("azblob")]
public sealed class AzureBlobProvider : IBlobStoreProvider
{
    /// <summary>The environment variable read for a connection string when the location names none.</summary>
    public const string DefaultConnectionStringVariable = "PTD_AZURE_CONNECTION_STRING";

    private static readonly string[] PublicKeys = ["connectionStringEnv", "account", "endpoint", "sasEnv", "anonymous", "create", "retries"];

    /// <inheritdoc />
    public string Description => "Azure Blob Storage and Azurite (Azure.Storage.Blobs)";

    /// <inheritdoc />
    public IReadOnlyCollection<string> PublicQueryKeys => PublicKeys;

    /// <inheritdoc />
    public IBlobStore Open(StoreUri location, BlobStoreContext context)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(context);
        location.EnsureOnlyKeys(PublicKeys);
        var display = location.ToDisplayString(PublicKeys);
        var container = location.Authority;
        if (container.Length is < 3 or > 63 || container.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')) || container.StartsWith('-') || container.Contains("--"))
            throw Config(display, $"container name '{container}' is not valid: 3 to 63 characters of a-z, 0-9 and single '-'");
        var prefix = location.Path.TrimEnd('/');
        if (prefix.Length > 0 && BlobKey.Validate(prefix) is { } prefixError)
            throw Config(display, "the prefix after the container must follow the storage key rules: " + prefixError);

        var options = new BlobClientOptions();
        options.Retry.MaxRetries = ParseRetries(location.Get("retries"), display);
        options.Retry.Delay = TimeSpan.FromMilliseconds(100);
        options.Retry.MaxDelay = TimeSpan.FromSeconds(2);
        options.Diagnostics.IsLoggingContentEnabled = false;

        var account = location.Get("account");
        var endpoint = location.Get("endpoint");
        var anonymous = location.GetBool("anonymous", false);
        BlobServiceClient service;
        if (account is not null || endpoint is not null)
        {
            if (account is not null && endpoint is not null) throw Config(display, "give either account or endpoint, not both");
            if (location.Get("connectionStringEnv") is not null) throw Config(display, "connectionStringEnv cannot be combined with account or endpoint");
            var text = endpoint ?? $"https://{account}.blob.core.windows.net";
            if (!Uri.TryCreate(text, UriKind.Absolute, out var serviceUri) || (serviceUri.Scheme != "https" && serviceUri.Scheme != "http"))
                throw Config(display, $"endpoint '{text}' must be an absolute https:// URL");
            var sasEnv = location.Get("sasEnv");
            if (anonymous)
            {
                if (sasEnv is not null) throw Config(display, "anonymous=true cannot be combined with sasEnv");
                service = new BlobServiceClient(serviceUri, options);
            }
            else if (sasEnv is not null)
            {
                service = new BlobServiceClient(serviceUri, new AzureSasCredential(Require(context, sasEnv, display).TrimStart('?')), options);
            }
            else
            {
                TokenCredential credential = new DefaultAzureCredential();
                service = new BlobServiceClient(serviceUri, credential, options);
            }
        }
        else
        {
            if (anonymous) throw Config(display, "anonymous=true needs account=NAME or endpoint=URL");
            var variable = location.Get("connectionStringEnv") ?? DefaultConnectionStringVariable;
            var connectionString = context.GetEnvironmentVariable(variable);
            if (string.IsNullOrWhiteSpace(connectionString))
                throw new BlobStoreException(BlobStoreErrorKind.Unauthorized,
                    $"{display}: no credentials: set the environment variable '{variable}' to a connection string, name another variable with connectionStringEnv=, or give account=NAME to use DefaultAzureCredential");
            try
            {
                service = new BlobServiceClient(connectionString, options);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
            {
                // The inner exception is dropped on purpose: its message may quote the connection string.
                throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                    $"{display}: the connection string in '{variable}' is malformed ({e.GetType().Name})");
            }
        }
        return new AzureBlobStore(service.GetBlobContainerClient(container), prefix, display, readOnly: anonymous, createContainer: location.GetBool("create", false), maxReadBytes: context.MaxReadBytes);
    }

    private static int ParseRetries(string? text, string display)
    {
        if (text is null) return 2;
        return int.TryParse(text, out var n) && n is >= 0 and <= 10 ? n : throw Config(display, "retries must be an integer from 0 to 10");
    }

    private static string Require(BlobStoreContext context, string variable, string display)
    {
        var value = context.GetEnvironmentVariable(variable);
        return string.IsNullOrEmpty(value)
            ? throw new BlobStoreException(BlobStoreErrorKind.Unauthorized, $"{display}: environment variable '{variable}' (named in the location) is not set")
            : value;
    }

    private static BlobStoreException Config(string display, string message) => new(BlobStoreErrorKind.Configuration, $"{display}: {message}");
}
