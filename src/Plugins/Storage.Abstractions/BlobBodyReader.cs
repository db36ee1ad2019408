namespace Ptd.Storage;

/// <summary>
/// Reads a response body into memory under a size limit (<see cref="BlobStoreContext.MaxReadBytes"/>), so that a server
/// that declares or streams a huge or endless body costs at most the limit, not memory until a timeout fires.
/// </summary>
public static class BlobBodyReader
{
    private const int ChunkBytes = 81920;

    /// <summary>
    /// Says why a declared length is refused before any body byte is read, or returns null when it is acceptable.
    /// </summary>
    /// <param name="declaredLength">The Content-Length the server sent, or null when it sent none.</param>
    /// <param name="maxBytes">The limit.</param>
    /// <returns>A message, or null.</returns>
    public static string? CheckDeclaredLength(long? declaredLength, long maxBytes) =>
        declaredLength is { } d && d > Limit(maxBytes)
            ? $"the server declares {d} bytes; the read limit is {Limit(maxBytes)} (the largest cache entry plus its envelope)"
            : null;

    /// <summary>
    /// Reads <paramref name="body"/> to its end, counting bytes: refuses a declared length above the limit before
    /// reading, stops as soon as more than the limit has arrived, and refuses a body whose length differs from a
    /// declared one. Memory used is at most the smaller of the declared length and the limit, plus one chunk.
    /// </summary>
    /// <param name="body">The body stream (not disposed here).</param>
    /// <param name="declaredLength">The Content-Length the server sent, or null (absent, or chunked).</param>
    /// <param name="maxBytes">The limit (<see cref="BlobStoreContext.MaxReadBytes"/>).</param>
    /// <param name="subject">Names the store and key in messages, e.g. <c>s3://bucket/p: read of 'trace/r1/g1/ab'</c>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>Exactly the body bytes.</returns>
    /// <exception cref="BlobStoreException">Kind <see cref="BlobStoreErrorKind.TooLarge"/> when over the limit;
    /// <see cref="BlobStoreErrorKind.Corrupt"/> when the body length differs from the declared one.</exception>
    public static async Task<byte[]> ReadAsync(Stream body, long? declaredLength, long maxBytes, string subject, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        var limit = Limit(maxBytes);
        if (CheckDeclaredLength(declaredLength, maxBytes) is { } refused)
            throw new BlobStoreException(BlobStoreErrorKind.TooLarge, $"{subject} refused: {refused}");
        // Trust a declared length only as a first capacity; growth beyond it is counted like any other byte.
        var buffer = new byte[declaredLength is { } d && d >= 0 ? (int)Math.Min(d, limit) : Math.Min(ChunkBytes, limit)];
        long total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                // Full: probe one byte before growing, so an exact-length body costs no extra buffer.
                var probe = new byte[1];
                var p = await body.ReadAsync(probe, cancellationToken).ConfigureAwait(false);
                if (p == 0) break;
                if (total + 1 > limit)
                    throw new BlobStoreException(BlobStoreErrorKind.TooLarge,
                        $"{subject} refused: the server sent more than {limit} bytes (the read limit; the largest cache entry plus its envelope){(declaredLength is { } dl ? $" although it declared {dl}" : "")}; stopped reading");
                Array.Resize(ref buffer, (int)Math.Min(limit, Math.Max(buffer.Length + 1L, Math.Min(2L * buffer.Length, buffer.Length + (64L << 20)))));
                buffer[total++] = probe[0];
                continue;
            }
            var n = await body.ReadAsync(buffer.AsMemory((int)total), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        if (declaredLength is { } declared && declared != total)
            throw new BlobStoreException(BlobStoreErrorKind.Corrupt, $"{subject} refused: the server declared {declared} bytes but sent {total}");
        if (total != buffer.Length) Array.Resize(ref buffer, (int)total);
        return buffer;
    }

    // Arrays cannot exceed Array.MaxLength, whatever the configured limit.
    private static long Limit(long maxBytes) => Math.Clamp(maxBytes, 0, Array.MaxLength);
}
