using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Ptd.Host.Caching;

/// <summary>Optional compression of a payload inside its envelope.</summary>
public enum CacheCompression : byte
{
    /// <summary>Stored as is.</summary>
    None = 0,

    /// <summary>Deflate (fast, moderate ratio).</summary>
    Deflate = 1,

    /// <summary>Brotli (slower, better ratio).</summary>
    Brotli = 2,
}

/// <summary>Why a stored envelope was rejected. Every rejection is counted and treated as a miss.</summary>
public enum EnvelopeRejectReason
{
    /// <summary>Not rejected.</summary>
    None = 0,

    /// <summary>Shorter than its header or its declared length (a partial upload or a cut file).</summary>
    Truncated,

    /// <summary>Does not start with the envelope magic (not a cache entry, or damaged).</summary>
    BadMagic,

    /// <summary>Written with an envelope version this reader does not know.</summary>
    UnsupportedVersion,

    /// <summary>The header's own checksum or a header field is inconsistent.</summary>
    HeaderCorrupt,

    /// <summary>Holds another artifact kind.</summary>
    KindMismatch,

    /// <summary>Holds another format revision of the kind (never parsed as current).</summary>
    RevisionMismatch,

    /// <summary>The echoed key is not the key it was read from (misplaced or copied entry).</summary>
    KeyMismatch,

    /// <summary>Longer than declared, or the decompressed payload has another length.</summary>
    LengthMismatch,

    /// <summary>The declared payload exceeds the configured maximum entry size.</summary>
    TooLarge,

    /// <summary>Names a compression this reader does not know.</summary>
    UnknownCompression,

    /// <summary>The compressed bytes could not be decompressed.</summary>
    DecompressionFailed,

    /// <summary>The payload's SHA-256 differs from the recorded one (corruption).</summary>
    HashMismatch,
}

/// <summary>The header fields of an envelope.</summary>
/// <param name="EnvelopeVersion">The envelope layout version.</param>
/// <param name="Kind">The artifact kind name.</param>
/// <param name="FormatRevision">The payload format revision.</param>
/// <param name="ProducerVersion">Who wrote it, e.g. <c>Ptd.Host/0.1.0</c> (informational).</param>
/// <param name="Key">The storage key the entry was written under.</param>
/// <param name="Compression">The payload compression.</param>
/// <param name="PayloadLength">The payload length after decompression.</param>
/// <param name="StoredLength">The length of the stored (possibly compressed) bytes.</param>
public sealed record EnvelopeHeader(int EnvelopeVersion, string Kind, int FormatRevision, string ProducerVersion, string Key,
    CacheCompression Compression, long PayloadLength, long StoredLength)
{
    /// <summary>The recorded SHA-256 of the payload, lowercase hex (what export manifests quote).</summary>
    public string PayloadSha256 { get; init; } = "";
}

/// <summary>The outcome of <see cref="CacheEnvelope.Decode"/>.</summary>
public sealed class EnvelopeReadResult
{
    private EnvelopeReadResult(byte[] payload, EnvelopeRejectReason reason, string detail, EnvelopeHeader? header)
    {
        Payload = payload;
        Reason = reason;
        Detail = detail;
        Header = header;
    }

    /// <summary>True when every check passed and <see cref="Payload"/> holds the value.</summary>
    public bool IsValid => Reason == EnvelopeRejectReason.None;

    /// <summary>The payload; empty when rejected.</summary>
    public byte[] Payload { get; }

    /// <summary>Why the envelope was rejected, or <see cref="EnvelopeRejectReason.None"/>.</summary>
    public EnvelopeRejectReason Reason { get; }

    /// <summary>A human-readable explanation of the rejection (empty when valid).</summary>
    public string Detail { get; }

    /// <summary>The header, when it could be read.</summary>
    public EnvelopeHeader? Header { get; }

    internal static EnvelopeReadResult Valid(byte[] payload, EnvelopeHeader header) => new(payload, EnvelopeRejectReason.None, "", header);

    internal static EnvelopeReadResult Reject(EnvelopeRejectReason reason, string detail, EnvelopeHeader? header = null) =>
        new(Array.Empty<byte>(), reason, detail, header);
}

/// <summary>
/// The versioned envelope around every stored cache value. Layout (little-endian):
/// magic (8 bytes <c>89 'P' 'T' 'D' 'C' 0D 0A 1A</c>), envelope version (u16), compression (u8), reserved (u8 = 0),
/// format revision (i32), payload length (i64), stored length (i64), payload SHA-256 (32 bytes), then kind, key and
/// producer version (each u16 length + UTF-8), then SHA-256 of all preceding header bytes (32 bytes), then the stored bytes.
/// </summary>
/// <remarks>
/// The reader checks, in order: size, magic, version, header checksum, kind, revision, key, declared lengths,
/// then decompresses within the declared bound and verifies the payload hash. The payload of an entry whose
/// header does not match is never looked at. No code-bearing serialization is involved.
/// </remarks>
public static class CacheEnvelope
{
    /// <summary>The envelope layout version written by this library.</summary>
    public const int CurrentVersion = 1;

    /// <summary>The longest kind, key or producer string accepted in a header.</summary>
    public const int MaxStringBytes = 1024;

    private const int FixedHeaderLength = 64;
    private const int HashLength = 32;
    private static readonly byte[] MagicBytes = [0x89, (byte)'P', (byte)'T', (byte)'D', (byte)'C', 0x0D, 0x0A, 0x1A];

    /// <summary>
    /// The largest envelope that can hold a payload of at most <paramref name="maxPayloadBytes"/>: the payload, the
    /// longest header (three strings of <see cref="MaxStringBytes"/>) and its checksum, and room for compression that
    /// expands incompressible data (deflate adds 5 bytes per 64 KiB block, Brotli less; 1/1024 covers both). Stores
    /// are opened with this as their read limit (<see cref="Ptd.Storage.BlobStoreContext.MaxReadBytes"/>).
    /// </summary>
    /// <param name="maxPayloadBytes">The largest payload (<see cref="ArtifactCacheOptions.MaxEntryBytes"/>).</param>
    /// <returns>The limit in bytes.</returns>
    public static long MaxEnvelopeBytes(long maxPayloadBytes) =>
        maxPayloadBytes >= long.MaxValue / 2 ? long.MaxValue : maxPayloadBytes + maxPayloadBytes / 1024 + FixedHeaderLength + 6 + 3L * MaxStringBytes + HashLength + 1024;

    /// <summary>The 8 magic bytes at the start of every envelope.</summary>
    public static ReadOnlySpan<byte> Magic => MagicBytes;

    /// <summary>Wraps a payload.</summary>
    /// <param name="kind">The artifact kind.</param>
    /// <param name="storageKey">The storage key the entry is written under (echoed in the header).</param>
    /// <param name="producerVersion">Who writes it (informational).</param>
    /// <param name="payload">The value.</param>
    /// <param name="compression">How to compress the payload.</param>
    /// <returns>The envelope bytes.</returns>
    public static byte[] Encode(ArtifactKind kind, string storageKey, string producerVersion, ReadOnlySpan<byte> payload, CacheCompression compression = CacheCompression.None)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(storageKey);
        ArgumentNullException.ThrowIfNull(producerVersion);
        var kindBytes = Utf8(kind.Name, "kind");
        var keyBytes = Utf8(storageKey, "key");
        var producerBytes = Utf8(producerVersion, "producer version");
        var stored = compression == CacheCompression.None ? null : Compress(payload, compression);
        var storedLength = stored?.Length ?? payload.Length;
        var headerLength = FixedHeaderLength + 6 + kindBytes.Length + keyBytes.Length + producerBytes.Length;
        var result = new byte[headerLength + HashLength + storedLength];
        var span = result.AsSpan();
        MagicBytes.CopyTo(span);
        BinaryPrimitives.WriteUInt16LittleEndian(span[8..], CurrentVersion);
        span[10] = (byte)compression;
        span[11] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(span[12..], kind.FormatRevision);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], storedLength);
        SHA256.HashData(payload, span[32..64]);
        var pos = FixedHeaderLength;
        foreach (var s in new[] { kindBytes, keyBytes, producerBytes })
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[pos..], (ushort)s.Length);
            s.CopyTo(span[(pos + 2)..]);
            pos += 2 + s.Length;
        }
        SHA256.HashData(span[..headerLength], span[headerLength..(headerLength + HashLength)]);
        if (stored is null) payload.CopyTo(span[(headerLength + HashLength)..]);
        else stored.CopyTo(span[(headerLength + HashLength)..]);
        return result;
    }

    /// <summary>Unwraps and verifies an envelope read from <paramref name="expectedKey"/>.</summary>
    /// <param name="envelope">The stored bytes.</param>
    /// <param name="expectedKind">The kind and revision the caller asked for.</param>
    /// <param name="expectedKey">The storage key the bytes were read from.</param>
    /// <param name="maxPayloadBytes">The largest payload accepted (guards against absurd lengths and decompression bombs).</param>
    /// <returns>The payload, or the reason for rejecting it.</returns>
    public static EnvelopeReadResult Decode(ReadOnlySpan<byte> envelope, ArtifactKind expectedKind, string expectedKey, long maxPayloadBytes)
    {
        ArgumentNullException.ThrowIfNull(expectedKind);
        ArgumentNullException.ThrowIfNull(expectedKey);
        if (envelope.Length < MagicBytes.Length || !envelope[..MagicBytes.Length].SequenceEqual(MagicBytes))
            return EnvelopeReadResult.Reject(envelope.Length < MagicBytes.Length && MagicBytes.AsSpan().StartsWith(envelope) ? EnvelopeRejectReason.Truncated : EnvelopeRejectReason.BadMagic,
                "the bytes do not start with the cache envelope magic");
        if (envelope.Length < FixedHeaderLength + 6)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.Truncated, $"only {envelope.Length} bytes, shorter than an envelope header");
        int version = BinaryPrimitives.ReadUInt16LittleEndian(envelope[8..]);
        if (version != CurrentVersion)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.UnsupportedVersion, $"envelope version {version}; this reader knows version {CurrentVersion}");
        var compressionByte = envelope[10];
        var revision = BinaryPrimitives.ReadInt32LittleEndian(envelope[12..]);
        var payloadLength = BinaryPrimitives.ReadInt64LittleEndian(envelope[16..]);
        var storedLength = BinaryPrimitives.ReadInt64LittleEndian(envelope[24..]);
        var pos = FixedHeaderLength;
        var strings = new string[3];
        for (var i = 0; i < 3; i++)
        {
            if (envelope.Length < pos + 2) return EnvelopeReadResult.Reject(EnvelopeRejectReason.Truncated, "the header is cut short");
            int len = BinaryPrimitives.ReadUInt16LittleEndian(envelope[pos..]);
            if (len > MaxStringBytes) return EnvelopeReadResult.Reject(EnvelopeRejectReason.HeaderCorrupt, $"a header string claims {len} bytes (limit {MaxStringBytes})");
            if (envelope.Length < pos + 2 + len) return EnvelopeReadResult.Reject(EnvelopeRejectReason.Truncated, "the header is cut short");
            try
            {
                strings[i] = new UTF8Encoding(false, true).GetString(envelope.Slice(pos + 2, len));
            }
            catch (DecoderFallbackException)
            {
                return EnvelopeReadResult.Reject(EnvelopeRejectReason.HeaderCorrupt, "a header string is not valid UTF-8");
            }
            pos += 2 + len;
        }
        var headerLength = pos;
        if (envelope.Length < headerLength + HashLength) return EnvelopeReadResult.Reject(EnvelopeRejectReason.Truncated, "the header checksum is cut short");
        Span<byte> headerHash = stackalloc byte[HashLength];
        SHA256.HashData(envelope[..headerLength], headerHash);
        if (!headerHash.SequenceEqual(envelope.Slice(headerLength, HashLength)))
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.HeaderCorrupt, "the header checksum does not match");
        if (envelope[11] != 0 || payloadLength < 0 || storedLength < 0)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.HeaderCorrupt, "a header field is out of range");
        var compression = (CacheCompression)compressionByte;
        var header = new EnvelopeHeader(version, strings[0], revision, strings[2], strings[1], compression, payloadLength, storedLength)
        {
            PayloadSha256 = Convert.ToHexStringLower(envelope.Slice(32, HashLength)),
        };
        if (header.Kind != expectedKind.Name)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.KindMismatch, $"holds kind '{header.Kind}', expected '{expectedKind.Name}'", header);
        if (revision != expectedKind.FormatRevision)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.RevisionMismatch, $"holds format revision {revision} of '{header.Kind}', expected {expectedKind.FormatRevision}", header);
        if (header.Key != expectedKey)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.KeyMismatch, "was written under another key", header);
        if (payloadLength > maxPayloadBytes || payloadLength > Array.MaxLength)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.TooLarge, $"declares a {payloadLength}-byte payload; the limit is {maxPayloadBytes}", header);
        if (compressionByte > (byte)CacheCompression.Brotli)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.UnknownCompression, $"uses unknown compression {compressionByte}", header);
        if (compression == CacheCompression.None && storedLength != payloadLength)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.HeaderCorrupt, "stored and payload lengths differ without compression", header);
        var body = envelope[(headerLength + HashLength)..];
        if (body.Length < storedLength)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.Truncated, $"{body.Length} of {storedLength} stored bytes present", header);
        if (body.Length > storedLength)
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.LengthMismatch, $"{body.Length - storedLength} bytes beyond the declared end", header);
        byte[] payload;
        if (compression == CacheCompression.None)
        {
            payload = body.ToArray();
        }
        else
        {
            var result = Decompress(body, compression, payloadLength);
            if (result.Reason != EnvelopeRejectReason.None) return EnvelopeReadResult.Reject(result.Reason, result.Detail, header);
            payload = result.Payload!;
        }
        Span<byte> payloadHash = stackalloc byte[HashLength];
        SHA256.HashData(payload, payloadHash);
        if (!payloadHash.SequenceEqual(envelope.Slice(32, HashLength)))
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.HashMismatch, "the payload's SHA-256 does not match the recorded one", header);
        return EnvelopeReadResult.Valid(payload, header);
    }

    /// <summary>
    /// Verifies an envelope against the storage key it was found under: the kind and format revision are taken from
    /// the key's layout (<see cref="CacheKeyLayout"/>), so a misplaced, foreign or damaged entry is rejected.
    /// Used by management tools that look at entries of every revision (<c>ptd cache verify</c>).
    /// </summary>
    /// <param name="envelope">The stored bytes.</param>
    /// <param name="storageKey">The full storage key, e.g. <c>trace/r1/g1/9f86…</c>.</param>
    /// <param name="maxPayloadBytes">The largest payload accepted.</param>
    /// <returns>The payload and header, or the reason for rejecting it.</returns>
    public static EnvelopeReadResult Verify(ReadOnlySpan<byte> envelope, string storageKey, long maxPayloadBytes)
    {
        ArgumentNullException.ThrowIfNull(storageKey);
        if (!Ptd.Storage.BlobKey.TryParse(storageKey, out var key) || !CacheKeyLayout.TryParse(key!, out var kindName, out var revision, out _) ||
            !ArtifactKind.IsValidName(kindName))
            return EnvelopeReadResult.Reject(EnvelopeRejectReason.KeyMismatch, $"'{storageKey}' does not have the cache key layout kind/rN/gN/key");
        return Decode(envelope, new ArtifactKind(kindName, revision), storageKey, maxPayloadBytes);
    }

    private static byte[] Utf8(string s, string what)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length > MaxStringBytes) throw new ArgumentException($"the envelope {what} is longer than {MaxStringBytes} bytes");
        return bytes;
    }

    private static byte[] Compress(ReadOnlySpan<byte> payload, CacheCompression compression)
    {
        using var output = new MemoryStream();
        using (Stream z = compression == CacheCompression.Brotli
                   ? new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true)
                   : new DeflateStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            z.Write(payload);
        }
        return output.ToArray();
    }

    private static (byte[]? Payload, EnvelopeRejectReason Reason, string Detail) Decompress(ReadOnlySpan<byte> stored, CacheCompression compression, long payloadLength)
    {
        try
        {
            using var input = new MemoryStream(stored.ToArray(), writable: false);
            using Stream z = compression == CacheCompression.Brotli
                ? new BrotliStream(input, CompressionMode.Decompress)
                : new DeflateStream(input, CompressionMode.Decompress);
            // The buffer grows with what actually decompresses (up to the declared length), so a
            // few damaged bytes declaring a huge payload cost what they inflate to, not the claim.
            var payload = new byte[Math.Min(payloadLength, Math.Max(64L * 1024, 4L * stored.Length))];
            var read = 0;
            while (true)
            {
                if (read == payload.Length)
                {
                    if (read == payloadLength) break;
                    Array.Resize(ref payload, (int)Math.Min(payloadLength, 2L * payload.Length));
                }
                var n = z.Read(payload, read, payload.Length - read);
                if (n == 0) break;
                read += n;
            }
            // One more byte proves the stream does not run past the declared length (bounded work either way).
            if (read < payloadLength || z.ReadByte() >= 0)
                return (null, EnvelopeRejectReason.LengthMismatch, "the decompressed payload length differs from the declared one");
            return (payload, EnvelopeRejectReason.None, "");
        }
        // BrotliStream reports damaged data as InvalidOperationException ("Decoder ran into invalid data").
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException)
        {
            return (null, EnvelopeRejectReason.DecompressionFailed, "the compressed payload is damaged");
        }
    }
}
