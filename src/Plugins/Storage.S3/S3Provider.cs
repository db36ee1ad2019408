using Amazon;
using Amazon.Runtime;
using Amazon.S3;

namespace Ptd.Storage.S3;

/// <summary>
/// Opens <c>s3://bucket/prefix?...</c> locations. Query parameters:
/// <c>endpoint</c> (an S3-compatible server, e.g. <c>http://127.0.0.1:9000</c>; implies path-style addressing),
/// <c>region</c> (default <c>AWS_REGION</c>, else <c>us-east-1</c>),
/// <c>pathStyle</c> (force path-style addressing),
/// <c>anonymous=true</c> (unsigned requests, read-only store),
/// <c>profile</c> (a named profile from the shared AWS credentials file),
/// <c>accessKeyEnv</c>/<c>secretKeyEnv</c>/<c>sessionTokenEnv</c> (names of environment variables holding credentials),
/// <c>conditionalPut</c> (default true: create-only puts send <c>If-None-Match: *</c>; set false for servers
/// without conditional writes such as s3rver),
/// <c>create=true</c> (create the bucket on first write if it is missing),
/// <c>retries</c> (SDK retries per call, default 2).
/// Without credential parameters the standard AWS credential chain is used.
/// </summary>
[BlobStoreProvider("s3")]
public sealed class S3Provider : IBlobStoreProvider
{
    private static readonly string[] PublicKeys =
        ["endpoint", "region", "pathStyle", "anonymous", "profile", "accessKeyEnv", "secretKeyEnv", "sessionTokenEnv", "conditionalPut", "create", "retries"];

    /// <inheritdoc />
    public string Description => "Amazon S3 and S3-compatible servers (AWSSDK.S3)";

    /// <inheritdoc />
    public IReadOnlyCollection<string> PublicQueryKeys => PublicKeys;

    /// <inheritdoc />
    public IBlobStore Open(StoreUri location, BlobStoreContext context)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(context);
        location.EnsureOnlyKeys(PublicKeys);
        var display = location.ToDisplayString(PublicKeys);
        var bucket = location.Authority;
        if (bucket.Length is < 3 or > 63 || bucket.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.')))
            throw Config(display, $"bucket name '{bucket}' is not valid: 3 to 63 characters of a-z, 0-9, '-' and '.'");
        // S3's own rules; they also keep dot-only names such as '...' out of path-style request URLs.
        if (!char.IsAsciiLetterOrDigit(bucket[0]) || !char.IsAsciiLetterOrDigit(bucket[^1]) || bucket.Contains("..", StringComparison.Ordinal))
            throw Config(display, $"bucket name '{bucket}' is not valid: it must start and end with a letter or digit and must not contain '..'");
        var prefix = location.Path.TrimEnd('/');
        if (prefix.Length > 0 && BlobKey.Validate(prefix) is { } prefixError)
            throw Config(display, "the prefix after the bucket must follow the storage key rules: " + prefixError);

        var endpoint = location.Get("endpoint");
        var region = location.Get("region") ?? context.GetEnvironmentVariable("AWS_REGION") ?? "us-east-1";
        var config = new AmazonS3Config
        {
            ForcePathStyle = location.GetBool("pathStyle", endpoint is not null),
            MaxErrorRetry = ParseRetries(location.Get("retries"), display),
            // The host applies its own per-call timeouts; these only bound a stuck connection.
            Timeout = TimeSpan.FromSeconds(100),
        };
        if (endpoint is not null)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var ep) || (ep.Scheme != "http" && ep.Scheme != "https"))
                throw Config(display, $"endpoint '{endpoint}' must be an absolute http:// or https:// URL");
            config.ServiceURL = endpoint;
            config.AuthenticationRegion = region;
            // S3-compatible servers often lack the newer flexible checksums; Content-MD5 (sent by the store) works everywhere.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        var anonymous = location.GetBool("anonymous", false);
        var profile = location.Get("profile");
        var accessKeyEnv = location.Get("accessKeyEnv");
        var secretKeyEnv = location.Get("secretKeyEnv");
        var sessionTokenEnv = location.Get("sessionTokenEnv");
        AWSCredentials? credentials = null;
        if (anonymous)
        {
            if (profile is not null || accessKeyEnv is not null || secretKeyEnv is not null)
                throw Config(display, "anonymous=true cannot be combined with profile or credential variables");
            credentials = new AnonymousAWSCredentials();
        }
        else if (accessKeyEnv is not null || secretKeyEnv is not null)
        {
            if (accessKeyEnv is null || secretKeyEnv is null)
                throw Config(display, "give both accessKeyEnv and secretKeyEnv (names of environment variables), or neither");
            var access = Require(context, accessKeyEnv, display);
            var secret = Require(context, secretKeyEnv, display);
            credentials = sessionTokenEnv is null
                ? new BasicAWSCredentials(access, secret)
                : new SessionAWSCredentials(access, secret, Require(context, sessionTokenEnv, display));
        }
        else if (profile is not null)
        {
            config.Profile = new Profile(profile);
        }

        var client = credentials is null ? new AmazonS3Client(config) : new AmazonS3Client(credentials, config);
        return new S3Store(client, bucket, prefix, display, new S3StoreOptions
        {
            ReadOnly = anonymous,
            ConditionalPut = location.GetBool("conditionalPut", true),
            CreateBucket = location.GetBool("create", false),
            MaxReadBytes = context.MaxReadBytes,
        });
    }

    private static int ParseRetries(string? text, string display)
    {
        if (text is null) return 2;
        return int.TryParse(text, out var n) && n is >= 0 and <= 10 ? n : throw Config(display, "retries must be an integer from 0 to 10");
    }

    private static string Require(BlobStoreContext context, string variable, string display)
    {
        var value = context.GetEnvironmentVariable(variable);
        // Name the variable, never the value.
        return string.IsNullOrEmpty(value)
            ? throw new BlobStoreException(BlobStoreErrorKind.Unauthorized, $"{display}: environment variable '{variable}' (named in the location) is not set")
            : value;
    }

    private static BlobStoreException Config(string display, string message) =>
        new(BlobStoreErrorKind.Configuration, $"{display}: {message}");
}

/// <summary>Behaviour switches of an <see cref="S3Store"/>.</summary>
public sealed class S3StoreOptions
{
    /// <summary>Refuse writes and deletes (anonymous access).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Send <c>If-None-Match: *</c> on create-only puts (AWS S3 and moto support it; s3rver does not).</summary>
    public bool ConditionalPut { get; init; } = true;

    /// <summary>Create the bucket when a write finds it missing.</summary>
    public bool CreateBucket { get; init; }

    /// <summary>The largest object read (see <see cref="BlobStoreContext.MaxReadBytes"/>); larger ones are refused while streaming.</summary>
    public long MaxReadBytes { get; init; } = BlobStoreContext.DefaultMaxReadBytes;
}
