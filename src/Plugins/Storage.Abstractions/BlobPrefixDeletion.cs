namespace Ptd.Storage;

/// <summary>Helpers for <see cref="IBlobStore.DeletePrefixAsync"/>: the prefix rules and the portable implementation.</summary>
public static class BlobPrefixDeletion
{
    /// <summary>
    /// Says why <paramref name="prefix"/> cannot be deleted as a whole, or returns null when it can: it must be a valid
    /// key followed by <c>/</c>. The empty prefix is refused so that no call can wipe a whole store by mistake, and a
    /// partial segment (<c>trace/r4/g</c>) is refused because it would also match siblings (<c>g1/</c>, <c>g10/</c>).
    /// </summary>
    /// <param name="prefix">The candidate prefix.</param>
    /// <returns>An error message, or null.</returns>
    public static string? ValidatePrefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix)) return "a prefix to delete must not be empty (name a directory such as 'trace/r4/g1/')";
        if (!prefix.EndsWith('/')) return $"a prefix to delete must end with '/' (a whole directory such as 'trace/r4/g1/'); got '{Shorten(prefix)}'";
        return BlobKey.ValidatePrefix(prefix);
    }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="prefix"/> is not valid for <see cref="IBlobStore.DeletePrefixAsync"/>.</summary>
    /// <param name="prefix">The candidate prefix.</param>
    public static void EnsureValidPrefix(string prefix)
    {
        if (ValidatePrefix(prefix) is { } error) throw new ArgumentException(error, nameof(prefix));
    }

    /// <summary>The portable implementation: lists the prefix, then deletes each value (what every store gets by default).</summary>
    /// <param name="store">The store.</param>
    /// <param name="prefix">A valid key followed by <c>/</c>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many values were deleted (values that vanished in between are not counted).</returns>
    public static async Task<long> ByListingAsync(IBlobStore store, string prefix, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        EnsureValidPrefix(prefix);
        if (!store.Capabilities.Listing)
            throw new NotSupportedException($"{store.DisplayName}: the store can neither list nor delete by prefix");
        var entries = await store.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
        long deleted = 0;
        foreach (var e in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await store.DeleteAsync(e.Key, cancellationToken).ConfigureAwait(false)) deleted++;
        }
        return deleted;
    }

    private static string Shorten(string s) =>
        new((s.Length > 80 ? s[..80] + "..." : s).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
