using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>The manifest at the start of a cache archive (<c>manifest.json</c>).</summary>
/// <param name="Format">Always <see cref="CacheArchive.FormatName"/>.</param>
/// <param name="Created">When the archive was written.</param>
/// <param name="Producer">The producer version of the tool that wrote it.</param>
/// <param name="Generation">The cache generation of its entries.</param>
/// <param name="Entries">One per archive member after the manifest.</param>
public sealed record CacheArchiveManifest(string Format, DateTimeOffset Created, string Producer, int Generation, IReadOnlyList<CacheArchiveEntry> Entries);

/// <summary>An archive that must not be imported at all (malformed, or shaped like an attack).</summary>
public sealed class UnsafeArchiveException(string message) : PtdException(message);

/// <summary>
/// The <c>.tar.gz</c> format of <c>ptd cache export</c>/<c>import</c> and its defensive reader.
/// </summary>
/// <remarks>
/// <para>Layout: a gzip-compressed POSIX (pax) tar whose first member is <c>manifest.json</c>
/// (<see cref="CacheArchiveManifest"/>), followed by one regular file <c>entries/{storageKey}</c> per manifest entry,
/// holding the entry's envelope bytes exactly as stored.</para>
/// <para>The reader never extracts to the file system: member names are only compared with the manifest, and accepted
/// envelopes are written to a cache store under their validated <see cref="BlobKey"/>, so nothing can land outside the
/// cache. It rejects the whole archive (<see cref="UnsafeArchiveException"/>) for: a missing or malformed manifest;
/// absolute names, <c>..</c>, backslashes or empty segments; links, devices, FIFOs, directories or any other non-regular
/// member; members not in the manifest or repeated; a member whose size differs from the declared one; more decompressed
/// bytes than the manifest accounts for (a decompression bomb, including oversized tar/pax headers).</para>
/// </remarks>
public static class CacheArchive
{
    /// <summary>The manifest's format name.</summary>
    public const string FormatName = "ptd-cache-archive/1";

    /// <summary>The manifest member's name.</summary>
    public const string ManifestName = "manifest.json";

    /// <summary>The prefix of entry members.</summary>
    public const string EntryPrefix = "entries/";

    /// <summary>The largest manifest accepted.</summary>
    public const long MaxManifestBytes = 64L << 20;

    // Tar and pax headers per member, and the end-of-archive blocks, are allowed on top of the declared data.
    private const long HeaderAllowancePerMember = 8 * 1024;
    private const long FixedAllowance = 64 * 1024;

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Writes an archive: the manifest, then each entry's envelope from <paramref name="openEntry"/>.</summary>
    /// <param name="output">The stream to write the gzip data to (left open).</param>
    /// <param name="manifest">The manifest.</param>
    /// <param name="openEntry">Opens the envelope bytes of a manifest entry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public static async Task WriteAsync(Stream output, CacheArchiveManifest manifest, Func<CacheArchiveEntry, Stream> openEntry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(openEntry);
        await using var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);
        await using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true);
        var manifestBytes = JsonSerializer.SerializeToUtf8Bytes(manifest, JsonOptions);
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, ManifestName)
        {
            DataStream = new MemoryStream(manifestBytes),
            ModificationTime = manifest.Created,
        }, cancellationToken).ConfigureAwait(false);
        foreach (var e in manifest.Entries)
        {
            await using var data = openEntry(e);
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, e.Path) { DataStream = data, ModificationTime = manifest.Created }, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads an archive defensively and hands each member that matches its manifest entry to <paramref name="onEntry"/>
    /// with its envelope bytes. Entry-level checks (envelope, revision) are the caller's.
    /// </summary>
    /// <param name="input">The gzip data.</param>
    /// <param name="maxEntryBytes">The largest envelope accepted.</param>
    /// <param name="onManifest">Receives the manifest once it is validated.</param>
    /// <param name="onEntry">Receives each member's manifest entry and bytes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The manifest entries that had no member in the archive.</returns>
    /// <exception cref="UnsafeArchiveException">The archive is malformed or unsafe.</exception>
    public static async Task<IReadOnlyList<CacheArchiveEntry>> ReadAsync(Stream input, long maxEntryBytes, Action<CacheArchiveManifest> onManifest,
        Func<CacheArchiveEntry, byte[], Task> onEntry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(onManifest);
        ArgumentNullException.ThrowIfNull(onEntry);
        await using var gzip = new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
        await using var bounded = new BoundedReadStream(gzip, MaxManifestBytes + FixedAllowance);
        await using var guarded = new TarHeaderGuard(bounded);
        var tar = new TarReader(guarded, leaveOpen: true);
        try
        {
            var first = await NextAsync(tar, cancellationToken).ConfigureAwait(false)
                        ?? throw new UnsafeArchiveException("the archive is empty: expected manifest.json first");
            CheckMember(first);
            if (first.Name != ManifestName) throw new UnsafeArchiveException($"the first member is '{Show(first.Name)}', expected {ManifestName}");
            if (first.Length > MaxManifestBytes) throw new UnsafeArchiveException($"{ManifestName} declares {first.Length} bytes; the limit is {MaxManifestBytes}");
            var manifest = ParseManifest(await ReadExactlyAsync(first, first.Length, cancellationToken).ConfigureAwait(false), maxEntryBytes);
            // From here on the archive may hold only what the manifest declares (plus headers): a bomb stops here.
            bounded.Limit = bounded.Consumed + manifest.Entries.Sum(e => RoundUp(e.Size)) + (manifest.Entries.Count + 2) * HeaderAllowancePerMember + FixedAllowance;
            onManifest(manifest);
            var pending = manifest.Entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (await NextAsync(tar, cancellationToken).ConfigureAwait(false) is { } member)
            {
                CheckMember(member);
                if (!seen.Add(member.Name)) throw new UnsafeArchiveException($"member '{Show(member.Name)}' appears twice");
                if (!pending.Remove(member.Name, out var declared))
                    throw new UnsafeArchiveException($"member '{Show(member.Name)}' is not listed in the manifest");
                if (member.Length != declared.Size)
                    throw new UnsafeArchiveException(member.Length > declared.Size
                        ? $"member '{Show(member.Name)}' holds {member.Length} bytes, more than the {declared.Size} its manifest entry declares"
                        : $"member '{Show(member.Name)}' holds {member.Length} bytes, not the {declared.Size} its manifest entry declares");
                var bytes = await ReadExactlyAsync(member, declared.Size, cancellationToken).ConfigureAwait(false);
                await onEntry(declared, bytes).ConfigureAwait(false);
            }
            return manifest.Entries.Where(e => pending.ContainsKey(e.Path)).ToArray();
        }
        catch (ArchiveBombException e)
        {
            throw new UnsafeArchiveException(e.Message);
        }
        // OverflowException: System.Formats.Tar parses a damaged header's numeric field into a number too large for
        // its type (found by the archive fuzz test: one flipped byte of the gzip stream).
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException or NotSupportedException
                                      or OverflowException)
        {
            throw new UnsafeArchiveException($"not a valid cache archive (gzip-compressed tar): {e.Message}");
        }
    }

    /// <summary>Says why a member name is unsafe, or null when it is a plain relative name.</summary>
    /// <param name="name">The member name.</param>
    /// <returns>The reason, or null.</returns>
    public static string? UnsafeName(string name)
    {
        if (string.IsNullOrEmpty(name)) return "an empty name";
        if (name.StartsWith('/') || name.StartsWith('\\') || (name.Length > 1 && name[1] == ':')) return "an absolute path";
        if (name.Contains('\\')) return "a backslash";
        if (name.Any(char.IsControl)) return "a control character";
        var segments = name.Split('/');
        if (segments.Any(s => s == "..")) return "a '..' segment";
        if (segments.Any(s => s.Length == 0 || s == ".")) return "an empty or '.' segment";
        return null;
    }

    private static void CheckMember(TarEntry member)
    {
        if (UnsafeName(member.Name) is { } why) throw new UnsafeArchiveException($"member '{Show(member.Name)}' has {why}: refused");
        if (member.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
        {
            var link = string.IsNullOrEmpty(member.LinkName) ? "" : $" to '{Show(member.LinkName)}'";
            throw new UnsafeArchiveException($"member '{Show(member.Name)}' is a {member.EntryType}{link}: only regular files are allowed");
        }
        if (member.Length < 0) throw new UnsafeArchiveException($"member '{Show(member.Name)}' has a negative size");
    }

    private static CacheArchiveManifest ParseManifest(byte[] bytes, long maxEntryBytes)
    {
        CacheArchiveManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<CacheArchiveManifest>(bytes, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new UnsafeArchiveException($"{ManifestName} is not a valid manifest: {e.Message}");
        }
        if (m is null || m.Format != FormatName) throw new UnsafeArchiveException($"{ManifestName} is not a {FormatName} manifest (format '{m?.Format}')");
        if (m.Entries is null) throw new UnsafeArchiveException($"{ManifestName} has no entries list");
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < m.Entries.Count; i++)
        {
            var e = m.Entries[i] ?? throw new UnsafeArchiveException($"{ManifestName}: entries[{i}] is null");
            var where = $"{ManifestName}: entries[{i}]";
            if (e.StorageKey is null || BlobKey.Validate(e.StorageKey) is { } keyError) throw new UnsafeArchiveException($"{where}: invalid storage key ({BlobKey.Validate(e.StorageKey)})");
            if (!CacheKeyLayout.TryParse(BlobKey.Parse(e.StorageKey), out var kind, out var rev, out var gen))
                throw new UnsafeArchiveException($"{where}: '{e.StorageKey}' does not have the cache key layout kind/rN/gN/key");
            if (e.Path != EntryPrefix + e.StorageKey) throw new UnsafeArchiveException($"{where}: path must be '{EntryPrefix}{e.StorageKey}'");
            if (e.Kind != kind || e.Revision != rev || e.Generation != gen)
                throw new UnsafeArchiveException($"{where}: kind, revision and generation must match the storage key '{e.StorageKey}'");
            if (e.Size <= 0 || e.Size > maxEntryBytes + 64 * 1024)
                throw new UnsafeArchiveException($"{where}: size {e.Size} is outside 1..{maxEntryBytes + 64 * 1024}");
            if (e.PayloadLength < 0 || e.PayloadLength > maxEntryBytes) throw new UnsafeArchiveException($"{where}: payload length {e.PayloadLength} is out of range");
            if (!IsHex(e.PayloadSha256) || !IsHex(e.EnvelopeSha256)) throw new UnsafeArchiveException($"{where}: hashes must be 64 lowercase hex digits");
            if (!keys.Add(e.StorageKey)) throw new UnsafeArchiveException($"{where}: '{e.StorageKey}' is listed twice");
        }
        return m;
    }

    private static bool IsHex(string? s) => s is { Length: 64 } && s.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    private static long RoundUp(long n) => (n + 511) / 512 * 512;

    private static async Task<TarEntry?> NextAsync(TarReader tar, CancellationToken cancellationToken) =>
        await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);

    // Reads exactly `length` bytes (the member's declared size, already checked against its limit). The buffer grows
    // as the bytes arrive — up to 1 MB at once, then doubling, its last size exactly `length` — instead of being
    // allocated from the declared size up front: a damaged header may declare 64 MB in an archive of a few hundred
    // bytes (found by the archive fuzz test), which must cost what the archive holds, not what it claims.
    private static async Task<byte[]> ReadExactlyAsync(TarEntry member, long length, CancellationToken cancellationToken)
    {
        if (length == 0) return [];
        var data = member.DataStream ?? throw new UnsafeArchiveException($"member '{Show(member.Name)}' has no data");
        var buffer = new byte[Math.Min(length, FirstReadBuffer)];
        var filled = 0;
        while (filled < length)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(length, 2L * buffer.Length));
            var n = await data.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException($"member '{Show(member.Name)}' ends after {filled} of its {length} bytes");
            filled += n;
        }
        return buffer;
    }

    private const int FirstReadBuffer = 1 << 20;

    internal static string Show(string? s) => s is null ? "" : new string(s.Take(200).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    /// <summary>The SHA-256 of bytes as lowercase hex.</summary>
    internal static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private sealed class ArchiveBombException(string message) : Exception(message);

    /// <summary>Counts decompressed bytes and stops at a limit (the manifest's total plus header allowances).</summary>
    private sealed class BoundedReadStream(Stream inner, long limit) : ForwardReadStream
    {
        public long Limit { get; set; } = limit;

        public long Consumed { get; private set; }

        public override long Passed => Consumed;

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer[..Allowed(buffer.Length)]);
            return Count(n);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer[..Allowed(buffer.Length)], cancellationToken).ConfigureAwait(false);
            return Count(n);
        }

        // Always allow one byte past the limit, so that crossing it is detected rather than read as a clean end.
        private int Allowed(int requested) => (int)Math.Min(requested, Math.Max(1, Limit - Consumed + 1));

        private int Count(int n)
        {
            Consumed += n;
            if (Consumed > Limit)
                throw new ArchiveBombException($"the archive expands beyond the {Limit} bytes its manifest accounts for (a decompression bomb or oversized headers): refused");
            return n;
        }
    }
}
