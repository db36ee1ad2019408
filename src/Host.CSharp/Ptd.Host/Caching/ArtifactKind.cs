namespace Ptd.Host.Caching;

/// <summary>
/// What kind of artifact a cache entry holds and in which format revision, e.g. <c>new ArtifactKind("trace", 3)</c>.
/// Bump <see cref="FormatRevision"/> whenever the payload encoding or its meaning changes: entries of other
/// revisions live under other keys and are never parsed as current.
/// </summary>
public sealed record ArtifactKind
{
    /// <summary>The longest kind name.</summary>
    public const int MaxNameLength = 32;

    /// <summary>Creates a kind.</summary>
    /// <param name="name">1 to 32 characters of a-z, 0-9 and '-', starting with a letter.</param>
    /// <param name="formatRevision">The payload format revision, 0 or more.</param>
    /// <exception cref="ArgumentException">The name or revision is invalid.</exception>
    public ArtifactKind(string name, int formatRevision)
    {
        if (!IsValidName(name))
            throw new ArgumentException($"artifact kind name '{name}' must be 1 to {MaxNameLength} characters of a-z, 0-9 and '-', starting with a letter", nameof(name));
        if (formatRevision < 0)
            throw new ArgumentException($"format revision of artifact kind '{name}' must be 0 or more, not {formatRevision}", nameof(formatRevision));
        Name = name;
        FormatRevision = formatRevision;
    }

    /// <summary>Whether <paramref name="name"/> is a valid kind name (1 to 32 characters of a-z, 0-9 and '-', starting with a letter).</summary>
    /// <param name="name">The candidate name.</param>
    /// <returns>True when valid.</returns>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength && char.IsAsciiLetterLower(name[0]) &&
        name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    /// <summary>The kind name, e.g. <c>trace</c>.</summary>
    public string Name { get; }

    /// <summary>The payload format revision.</summary>
    public int FormatRevision { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} r{FormatRevision}";
}
