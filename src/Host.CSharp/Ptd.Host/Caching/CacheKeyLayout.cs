using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>
/// How cache entries are named in a store: <c>{kind}/r{formatRevision}/g{generation}/{key}</c>, e.g.
/// <c>trace/r4/g1/9f86d081884c7d65</c>. The kind and revision segments keep other formats apart; the generation
/// segment lets a whole old version be dropped by prefix (see <see cref="IArtifactCache.VacuumAsync"/>).
/// </summary>
public static class CacheKeyLayout
{
    /// <summary>The storage key of an entry.</summary>
    /// <param name="kind">The artifact kind.</param>
    /// <param name="generation">The cache generation.</param>
    /// <param name="key">The content key: one or more storage-key segments, typically a lowercase hex digest.</param>
    /// <returns>The validated storage key.</returns>
    /// <exception cref="ArgumentException">The content key breaks the storage key rules (see <see cref="BlobKey"/>).</exception>
    public static BlobKey StorageKey(ArtifactKind kind, int generation, string key)
    {
        ArgumentNullException.ThrowIfNull(kind);
        if (generation < 0) throw new ArgumentException("the cache generation must be 0 or more", nameof(generation));
        if (BlobKey.Validate(key) is { } error) throw new ArgumentException("invalid cache key: " + error, nameof(key));
        return BlobKey.Parse($"{Prefix(kind, generation)}{key}");
    }

    /// <summary>The prefix under which every entry of a kind, revision and generation lives (ends with <c>/</c>).</summary>
    /// <param name="kind">The artifact kind.</param>
    /// <param name="generation">The cache generation.</param>
    /// <returns>The prefix.</returns>
    public static string Prefix(ArtifactKind kind, int generation)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return $"{kind.Name}/r{kind.FormatRevision}/g{generation}/";
    }

    /// <summary>Splits a storage key made by <see cref="StorageKey"/>; false for keys of any other shape.</summary>
    /// <param name="storageKey">A storage key.</param>
    /// <param name="kindName">The kind name.</param>
    /// <param name="formatRevision">The format revision.</param>
    /// <param name="generation">The generation.</param>
    /// <returns>True when the key has the cache layout.</returns>
    public static bool TryParse(BlobKey storageKey, out string kindName, out int formatRevision, out int generation)
    {
        ArgumentNullException.ThrowIfNull(storageKey);
        kindName = "";
        formatRevision = generation = -1;
        var s = storageKey.Segments;
        if (s.Count < 4 || s[0].Length > ArtifactKind.MaxNameLength) return false;
        if (!TryNumber(s[1], 'r', out formatRevision) || !TryNumber(s[2], 'g', out generation)) return false;
        kindName = s[0];
        return true;
    }

    /// <summary>
    /// The generation directory of a storage key: its first three segments and a <c>/</c>, e.g. <c>trace/r4/g1/</c>
    /// (taken from the key's text, so that it matches the key exactly), or null for keys without the cache layout.
    /// </summary>
    /// <param name="storageKey">A storage key.</param>
    /// <returns>The prefix, or null.</returns>
    public static string? GenerationPrefixOf(BlobKey storageKey)
    {
        ArgumentNullException.ThrowIfNull(storageKey);
        if (!TryParse(storageKey, out _, out _, out _)) return null;
        var v = storageKey.Value;
        var third = v.IndexOf('/', v.IndexOf('/', v.IndexOf('/') + 1) + 1);
        return v[..(third + 1)];
    }

    /// <summary>
    /// Splits entries to remove into whole generation directories (every entry under the prefix is to go, none is
    /// kept), which a store can drop with one <see cref="IBlobStore.DeletePrefixAsync"/>, and single entries.
    /// </summary>
    /// <typeparam name="T">The entry type.</typeparam>
    /// <param name="remove">The entries to remove.</param>
    /// <param name="keyOf">The storage key of an entry.</param>
    /// <param name="kept">Storage keys of the entries listed alongside that stay.</param>
    /// <returns>The whole directories (sorted by prefix) and the remaining single entries (in the given order).</returns>
    internal static (List<(string Prefix, List<T> Entries)> Whole, List<T> Single) SplitByGeneration<T>(IEnumerable<T> remove, Func<T, BlobKey> keyOf, IEnumerable<BlobKey> kept)
    {
        var keptPrefixes = kept.Select(GenerationPrefixOf).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var groups = new SortedDictionary<string, List<T>>(StringComparer.Ordinal);
        var single = new List<T>();
        foreach (var e in remove)
        {
            if (GenerationPrefixOf(keyOf(e)) is { } p && !keptPrefixes.Contains(p))
            {
                if (!groups.TryGetValue(p, out var list)) groups[p] = list = new List<T>();
                list.Add(e);
            }
            else single.Add(e);
        }
        return (groups.Select(g => (g.Key, g.Value)).ToList(), single);
    }

    private static bool TryNumber(string segment, char tag, out int value)
    {
        value = -1;
        return segment.Length > 1 && segment[0] == tag && segment.Skip(1).All(char.IsAsciiDigit) &&
               int.TryParse(segment.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
