using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Ptd.Storage.S3;

/// <summary>
/// A store in an S3 bucket under an optional prefix (object name = prefix + "/" + key).
/// </summary>
/// <remarks>
/// Every upload is a single PUT with <c>UseChunkEncoding = false</c> and a Content-MD5 header: some
/// S3-compatible servers (s3rver) store the aws-chunked framing as the object body otherwise, and the MD5 lets
/// every server reject a damaged upload. Multipart uploads are not used (single PUTs go up to 5 GB).
/// </remarks>
public sealed class S3Store : IBlobStore
{
    private readonly IAmazonS3 _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly S3StoreOptions _options;
    private readonly SemaphoreSlim _createBucketGate = new(1, 1);

    /// <summary>The most keys one DeleteObjects request may name (an S3 limit).</summary>
    public const int DeleteBatchSize = 1000;

    /// <summary>Creates a store over an existing client (the store disposes it).</summary>
    /// <param name="client">The S3 client.</param>
    /// <param name="bucket">The bucket.</param>
    /// <param name="prefix">The prefix (a valid key, or empty).</param>
    /// <param name="displayName">The redacted location.</param>
    /// <param name="options">Behaviour switches.</param>
    public S3Store(IAmazonS3 client, string bucket, string prefix, string displayName, S3StoreOptions options)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _bucket = bucket ?? throw new ArgumentNullException(nameof(bucket));
        _prefix = prefix.Length == 0 ? "" : prefix + "/";
        _options = options ?? throw new ArgumentNullException(nameof(options));
        DisplayName = displayName;
        Capabilities = new BlobStoreCapabilities
        {
            ConditionalPut = options.ConditionalPut && !options.ReadOnly,
            Listing = true,
            ServerSideHashes = true,
            ReadOnly = options.ReadOnly,
            TracksAccessTime = false,
            PrefixDelete = !options.ReadOnly,
        };
    }

    /// <inheritdoc />
    public string DisplayName { get; }

    /// <inheritdoc />
    public BlobStoreCapabilities Capabilities { get; }

    private string ObjectName(BlobKey key) => _prefix + key.Value;

    /// <inheritdoc />
    public async Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            using var response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = ObjectName(key) }, cancellationToken).ConfigureAwait(false);
            // The SDK reports 0 when the header is absent; a real empty object reads as empty either way.
            long? declared = response.ContentLength > 0 ? response.ContentLength : null;
            var bytes = await BlobBodyReader.ReadAsync(response.ResponseStream, declared, _options.MaxReadBytes, $"{DisplayName}: read of '{key}'", cancellationToken).ConfigureAwait(false);
            return BlobReadResult.Hit(bytes);
        }
        catch (BlobStoreException)
        {
            throw; // over the read limit, or a length mismatch: already classified
        }
        catch (AmazonS3Exception e) when (IsMissingKey(e) || (_options.CreateBucket && e.ErrorCode == "NoSuchBucket"))
        {
            // With create=true a missing bucket is an empty store that will be created on first write.
            return BlobReadResult.Missing;
        }
        catch (AmazonClientException e) when (e.Message.Contains("hash", StringComparison.OrdinalIgnoreCase))
        {
            // The SDK checks the body against the object's MD5 ETag. A mismatch means a damaged object, e.g. the
            // interleaved result of concurrent overwrites on a server without atomic writes (s3rver).
            throw new BlobStoreException(BlobStoreErrorKind.Corrupt, $"{DisplayName}: read of '{key}' failed: the object does not match its checksum", e);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("read", key.Value, e);
        }
    }

    /// <inheritdoc />
    public async Task<BlobWriteOutcome> PutAsync(BlobKey key, ReadOnlyMemory<byte> content, BlobWriteMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        EnsureWritable("write", key.Value);
        var md5 = Convert.ToBase64String(MD5.HashData(content.Span));
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (mode == BlobWriteMode.CreateOnly && !_options.ConditionalPut && await ExistsCoreAsync(key, cancellationToken).ConfigureAwait(false))
                    return BlobWriteOutcome.AlreadyExists;
                var request = new PutObjectRequest
                {
                    BucketName = _bucket,
                    Key = ObjectName(key),
                    InputStream = AsStream(content),
                    AutoCloseStream = true,
                    UseChunkEncoding = false,
                    MD5Digest = md5,
                    ContentType = "application/octet-stream",
                };
                if (mode == BlobWriteMode.CreateOnly && _options.ConditionalPut) request.IfNoneMatch = "*";
                await _client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
                return BlobWriteOutcome.Written;
            }
            catch (AmazonS3Exception e) when (mode == BlobWriteMode.CreateOnly && e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict)
            {
                // 412: the key exists. 409: a concurrent conditional write of the same key is in flight; values
                // are content-determined, so the other writer stores the same bytes.
                return BlobWriteOutcome.AlreadyExists;
            }
            catch (AmazonS3Exception e) when (attempt == 0 && _options.CreateBucket && e.ErrorCode == "NoSuchBucket")
            {
                await CreateBucketAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsStoreFailure(e, cancellationToken))
            {
                throw Wrap("write", key.Value, e);
            }
        }
    }

    /// <inheritdoc />
    public async Task<bool> ExistsAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            return await ExistsCoreAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("existence check", key.Value, e);
        }
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        EnsureWritable("delete", key.Value);
        try
        {
            // S3 answers 204 whether or not the object existed; the HEAD gives the documented return value.
            if (!await ExistsCoreAsync(key, cancellationToken).ConfigureAwait(false)) return false;
            await _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _bucket, Key = ObjectName(key) }, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("delete", key.Value, e);
        }
    }

    /// <summary>
    /// Lists the prefix and deletes the listed objects with DeleteObjects, <see cref="DeleteBatchSize"/> keys per
    /// request (one round trip per 1,000 entries instead of two per entry). Each object is removed whole.
    /// </summary>
    /// <inheritdoc />
    public async Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobPrefixDeletion.EnsureValidPrefix(prefix);
        EnsureWritable("delete", prefix);
        var entries = await ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        long deleted = 0;
        for (var start = 0; start < entries.Count; start += DeleteBatchSize)
        {
            var batch = entries.Skip(start).Take(DeleteBatchSize).Select(e => new KeyVersion { Key = ObjectName(e.Key) }).ToList();
            try
            {
                // Quiet: the answer lists only failures, so a 1,000-key batch does not echo 1,000 names back.
                var response = await _client.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = _bucket, Objects = batch, Quiet = true }, cancellationToken).ConfigureAwait(false);
                deleted += batch.Count - (response.DeleteErrors?.Count ?? 0);
            }
            catch (DeleteObjectsException e)
            {
                var errors = e.Response?.DeleteErrors ?? [];
                deleted += batch.Count - errors.Count;
                var first = errors.FirstOrDefault();
                throw new BlobStoreException(BlobStoreErrorKind.Unavailable,
                    $"{DisplayName}: delete of '{prefix}' failed for {errors.Count} of {batch.Count} objects{(first is null ? "" : $" (first: {first.Code})")}; {deleted} deleted", e);
            }
            catch (Exception e) when (IsStoreFailure(e, cancellationToken))
            {
                throw Wrap("delete", prefix, e);
            }
        }
        return deleted;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobKey.EnsureValidPrefix(prefix);
        var result = new List<BlobInfo>();
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix + prefix };
        try
        {
            while (true)
            {
                var response = await _client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
                foreach (var o in response.S3Objects ?? [])
                {
                    if (!o.Key.StartsWith(_prefix, StringComparison.Ordinal)) continue;
                    if (!BlobKey.TryParse(o.Key[_prefix.Length..], out var key)) continue; // foreign object
                    var modified = o.LastModified is { } m ? new DateTimeOffset(DateTime.SpecifyKind(m.ToUniversalTime(), DateTimeKind.Utc)) : DateTimeOffset.UnixEpoch;
                    result.Add(new BlobInfo(key!, o.Size ?? 0, modified));
                }
                if (response.IsTruncated != true || string.IsNullOrEmpty(response.NextContinuationToken)) break;
                request.ContinuationToken = response.NextContinuationToken;
            }
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket" && _options.CreateBucket)
        {
            return result; // the bucket will be created on first write
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("listing", prefix, e);
        }
        result.Sort((a, b) => a.Key.CompareTo(b.Key));
        return result;
    }

    /// <inheritdoc />
    public async Task<BlobStoreHealth> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix, MaxKeys = 1 }, cancellationToken).ConfigureAwait(false);
            return new BlobStoreHealth(true, $"{DisplayName}: bucket reachable", watch.Elapsed);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return new BlobStoreHealth(false, Wrap("health check", "", e).Message, watch.Elapsed);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        _createBucketGate.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => DisplayName;

    private async Task<bool> ExistsCoreAsync(BlobKey key, CancellationToken cancellationToken)
    {
        try
        {
            await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = ObjectName(key) }, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && (e.ErrorCode != "NoSuchBucket" || _options.CreateBucket))
        {
            // HEAD responses have no body, so a missing bucket may also arrive as a plain 404.
            return false;
        }
    }

    private async Task CreateBucketAsync(CancellationToken cancellationToken)
    {
        await _createBucketGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _client.PutBucketAsync(new PutBucketRequest { BucketName = _bucket }, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists")
        {
            // Created concurrently.
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("bucket creation", "", e);
        }
        finally
        {
            _createBucketGate.Release();
        }
    }

    private void EnsureWritable(string operation, string key)
    {
        if (_options.ReadOnly)
            throw new BlobStoreException(BlobStoreErrorKind.ReadOnly, $"{DisplayName}: {operation} of '{key}' refused: the store is read-only (anonymous access)");
    }

    private static Stream AsStream(ReadOnlyMemory<byte> content) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(content, out var segment) && segment.Array is not null
            ? new MemoryStream(segment.Array, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(content.ToArray(), writable: false);

    // S3 answers 404 NoSuchKey for a missing object; a 404 for a missing bucket is a configuration error.
    private static bool IsMissingKey(AmazonS3Exception e) =>
        e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket";

    private static bool IsStoreFailure(Exception e, CancellationToken token) =>
        !(e is OperationCanceledException && token.IsCancellationRequested);

    private BlobStoreException Wrap(string operation, string key, Exception e)
    {
        var subject = key.Length == 0 ? operation : $"{operation} of '{key}'";
        // Only the error code and status are quoted: server messages may echo request details.
        return e switch
        {
            AmazonS3Exception s3 => new BlobStoreException(Classify(s3), $"{DisplayName}: {subject} failed: {s3.ErrorCode ?? "error"} (HTTP {(int)s3.StatusCode})", e),
            AmazonClientException => new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: {subject} failed: {FirstLine(e.Message)}", e),
            HttpRequestException or IOException or TaskCanceledException or OperationCanceledException =>
                new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: {subject} failed: server unreachable ({FirstLine(e.Message)})", e),
            _ => new BlobStoreException(BlobStoreErrorKind.Unknown, $"{DisplayName}: {subject} failed: {e.GetType().Name}", e),
        };
    }

    private static BlobStoreErrorKind Classify(AmazonS3Exception e) => e.ErrorCode switch
    {
        "NoSuchBucket" => BlobStoreErrorKind.ContainerNotFound,
        "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied" or "ExpiredToken" or "InvalidToken" => BlobStoreErrorKind.Unauthorized,
        "SlowDown" or "Throttling" => BlobStoreErrorKind.Throttled,
        _ => e.StatusCode switch
        {
            HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized => BlobStoreErrorKind.Unauthorized,
            HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests => BlobStoreErrorKind.Throttled,
            >= HttpStatusCode.InternalServerError => BlobStoreErrorKind.Unavailable,
            _ => BlobStoreErrorKind.Unknown,
        },
    };

    private static string FirstLine(string s)
    {
        var i = s.IndexOfAny(['\r', '\n']);
        return i < 0 ? s : s[..i];
    }
}
