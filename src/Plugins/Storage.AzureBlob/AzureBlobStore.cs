using System.Diagnostics;
using System.Net;
using Azure;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Ptd.Storage.AzureBlob;

/// <summary>A store in an Azure Blob container under an optional prefix (blob name = prefix + "/" + key).</summary>
/// <remarks>
/// Create-only writes send <c>If-None-Match: *</c>, which the service evaluates atomically; uploads carry an MD5
/// that the service checks.
/// </remarks>
public sealed class AzureBlobStore : IBlobStore
{
    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly bool _readOnly;
    private readonly bool _createContainer;
    private readonly long _maxReadBytes;

    /// <summary>How many blob deletes <see cref="DeletePrefixAsync"/> keeps in flight.</summary>
    public const int DeleteParallelism = 16;

    /// <summary>Creates a store over a container client.</summary>
    /// <param name="container">The container.</param>
    /// <param name="prefix">The prefix (a valid key, or empty).</param>
    /// <param name="displayName">The redacted location.</param>
    /// <param name="readOnly">Refuse writes and deletes.</param>
    /// <param name="createContainer">Create the container when a write finds it missing.</param>
    /// <param name="maxReadBytes">The largest blob read (see <see cref="BlobStoreContext.MaxReadBytes"/>); larger ones are refused while streaming.</param>
    public AzureBlobStore(BlobContainerClient container, string prefix, string displayName, bool readOnly, bool createContainer, long maxReadBytes = BlobStoreContext.DefaultMaxReadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxReadBytes);
        _maxReadBytes = maxReadBytes;
        _container = container ?? throw new ArgumentNullException(nameof(container));
        _prefix = string.IsNullOrEmpty(prefix) ? "" : prefix + "/";
        _readOnly = readOnly;
        _createContainer = createContainer;
        DisplayName = displayName;
        Capabilities = new BlobStoreCapabilities
        {
            ConditionalPut = !readOnly,
            Listing = true,
            ServerSideHashes = true,
            ReadOnly = readOnly,
            TracksAccessTime = false,
            PrefixDelete = !readOnly,
        };
    }

    /// <inheritdoc />
    public string DisplayName { get; }

    /// <inheritdoc />
    public BlobStoreCapabilities Capabilities { get; }

    private BlobClient Blob(BlobKey key) => _container.GetBlobClient(_prefix + key.Value);

    /// <inheritdoc />
    public async Task<BlobReadResult> GetAsync(BlobKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            // Streaming, not DownloadContentAsync: that buffers the whole body before we could count it.
            using var response = (await Blob(key).DownloadStreamingAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            // 0 when the header is absent; a real empty blob reads as empty either way.
            var declared = response.Details.ContentLength;
            var bytes = await BlobBodyReader.ReadAsync(response.Content, declared > 0 ? declared : null, _maxReadBytes, $"{DisplayName}: read of '{key}'", cancellationToken).ConfigureAwait(false);
            return BlobReadResult.Hit(bytes);
        }
        catch (BlobStoreException)
        {
            throw; // over the read limit, or a length mismatch: already classified
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.BlobNotFound || (e.Status == 404 && (e.ErrorCode != BlobErrorCode.ContainerNotFound || _createContainer)))
        {
            // With create=true a missing container is an empty store that will be created on first write.
            return BlobReadResult.Missing;
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
        var options = new BlobUploadOptions
        {
            Conditions = mode == BlobWriteMode.CreateOnly ? new BlobRequestConditions { IfNoneMatch = ETag.All } : null,
            TransferValidation = new UploadTransferValidationOptions { ChecksumAlgorithm = StorageChecksumAlgorithm.MD5 },
        };
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Blob(key).UploadAsync(BinaryData.FromBytes(content), options, cancellationToken).ConfigureAwait(false);
                return BlobWriteOutcome.Written;
            }
            catch (RequestFailedException e) when (mode == BlobWriteMode.CreateOnly && (e.ErrorCode == BlobErrorCode.BlobAlreadyExists || e.Status is 409 or 412) && e.ErrorCode != BlobErrorCode.ContainerNotFound)
            {
                return BlobWriteOutcome.AlreadyExists;
            }
            catch (RequestFailedException e) when (attempt == 0 && _createContainer && e.ErrorCode == BlobErrorCode.ContainerNotFound)
            {
                try
                {
                    await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (Exception inner) when (IsStoreFailure(inner, cancellationToken))
                {
                    throw Wrap("container creation", "", inner);
                }
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
            return (await Blob(key).ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
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
            return (await Blob(key).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            return false;
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("delete", key.Value, e);
        }
    }

    /// <summary>
    /// Lists the prefix and deletes the blobs with <see cref="DeleteParallelism"/> requests in flight. The Blob Batch API
    /// (256 deletes per request) would be cheaper, but its client package (Azure.Storage.Blobs.Batch) is not available
    /// to this build and Azurite does not implement it; parallel single deletes are the cheapest that works everywhere.
    /// </summary>
    /// <inheritdoc />
    public async Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobPrefixDeletion.EnsureValidPrefix(prefix);
        EnsureWritable("delete", prefix);
        var entries = await ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        long deleted = 0;
        try
        {
            await Parallel.ForEachAsync(entries, new ParallelOptions { MaxDegreeOfParallelism = DeleteParallelism, CancellationToken = cancellationToken },
                async (e, c) =>
                {
                    if ((await Blob(e.Key).DeleteIfExistsAsync(cancellationToken: c).ConfigureAwait(false)).Value) Interlocked.Increment(ref deleted);
                }).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            return Interlocked.Read(ref deleted);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw Wrap("delete", prefix, e);
        }
        return deleted;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BlobInfo>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobKey.EnsureValidPrefix(prefix);
        var result = new List<BlobInfo>();
        try
        {
            await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = _prefix + prefix }, cancellationToken).ConfigureAwait(false))
            {
                if (!item.Name.StartsWith(_prefix, StringComparison.Ordinal)) continue;
                if (!BlobKey.TryParse(item.Name[_prefix.Length..], out var key)) continue; // foreign blob
                var p = item.Properties;
                result.Add(new BlobInfo(key!, p.ContentLength ?? 0, p.LastModified ?? DateTimeOffset.UnixEpoch, p.LastAccessedOn));
            }
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound && _createContainer)
        {
            return result;
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
            var exists = (await _container.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
            return exists || _createContainer
                ? new BlobStoreHealth(true, $"{DisplayName}: {(exists ? "container reachable" : "service reachable; the container will be created on first write")}", watch.Elapsed)
                : new BlobStoreHealth(false, $"{DisplayName}: the container does not exist (add create=true to create it)", watch.Elapsed);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return new BlobStoreHealth(false, Wrap("health check", "", e).Message, watch.Elapsed);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <inheritdoc />
    public override string ToString() => DisplayName;

    private void EnsureWritable(string operation, string key)
    {
        if (_readOnly)
            throw new BlobStoreException(BlobStoreErrorKind.ReadOnly, $"{DisplayName}: {operation} of '{key}' refused: the store is read-only (anonymous access)");
    }

    private static bool IsStoreFailure(Exception e, CancellationToken token) =>
        !(e is OperationCanceledException && token.IsCancellationRequested);

    private BlobStoreException Wrap(string operation, string key, Exception e)
    {
        var subject = key.Length == 0 ? operation : $"{operation} of '{key}'";
        // Only the error code and status are quoted: the SDK's messages include request details.
        return e switch
        {
            RequestFailedException r when r.Status == 0 =>
                new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: {subject} failed: server unreachable ({FirstLine(r.InnerException?.Message ?? r.Message)})", e),
            RequestFailedException r => new BlobStoreException(Classify(r), $"{DisplayName}: {subject} failed: {r.ErrorCode ?? "error"} (HTTP {r.Status})", e),
            AuthenticationFailedException or CredentialUnavailableException =>
                new BlobStoreException(BlobStoreErrorKind.Unauthorized, $"{DisplayName}: {subject} failed: no usable Azure credential ({e.GetType().Name})", e),
            AggregateException or HttpRequestException or IOException or OperationCanceledException =>
                new BlobStoreException(BlobStoreErrorKind.Unavailable, $"{DisplayName}: {subject} failed: server unreachable ({FirstLine(e.Message)})", e),
            _ => new BlobStoreException(BlobStoreErrorKind.Unknown, $"{DisplayName}: {subject} failed: {e.GetType().Name}", e),
        };
    }

    private static BlobStoreErrorKind Classify(RequestFailedException e)
    {
        if (e.ErrorCode == BlobErrorCode.ContainerNotFound) return BlobStoreErrorKind.ContainerNotFound;
        return (HttpStatusCode)e.Status switch
        {
            HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized => BlobStoreErrorKind.Unauthorized,
            HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests => BlobStoreErrorKind.Throttled,
            >= HttpStatusCode.InternalServerError => BlobStoreErrorKind.Unavailable,
            _ => BlobStoreErrorKind.Unknown,
        };
    }

    private static string FirstLine(string s)
    {
        var i = s.IndexOfAny(['\r', '\n']);
        return i < 0 ? s : s[..i];
    }
}
