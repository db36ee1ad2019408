namespace Ptd.Storage;

/// <summary>
/// A validated storage key: one to <see cref="MaxSegments"/> segments separated by <c>/</c>, each segment
/// made of lowercase ASCII letters, digits, <c>-</c>, <c>_</c> and <c>.</c>, not starting with <c>.</c>,
/// at most <see cref="MaxSegmentLength"/> characters; at most <see cref="MaxLength"/> characters in all.
/// </summary>
/// <remarks>
/// The alphabet is closed on purpose: no key can name a parent directory (<c>..</c>), an absolute path,
/// a drive, a hidden or temporary file (those start with <c>.</c>), or differ from another key only by
/// letter case (which would collide on case-insensitive file systems). Every backend can therefore map
/// a key to a path or an object name without escaping, and nothing can leave the store's root or prefix.
/// </remarks>
public sealed class BlobKey : IEquatable<BlobKey>, IComparable<BlobKey>
{
    /// <summary>The longest key, in characters (well inside the 1024-byte object-name limits of S3 and Azure).</summary>
    public const int MaxLength = 512;

    /// <summary>The longest segment, in characters (inside the 255-byte file-name limit of common file systems).</summary>
    public const int MaxSegmentLength = 128;

    /// <summary>The largest number of segments.</summary>
    public const int MaxSegments = 16;

    private BlobKey(string value) => Value = value;

    /// <summary>The key as text, for example <c>trace/r1/g1/0a1b2c</c>.</summary>
    public string Value { get; }

    /// <summary>The segments of the key, in order.</summary>
    public IReadOnlyList<string> Segments => Value.Split('/');

    /// <summary>Parses a key, throwing <see cref="ArgumentException"/> with the reason when it is not valid.</summary>
    /// <param name="value">The candidate key.</param>
    /// <returns>The validated key.</returns>
    public static BlobKey Parse(string value)
    {
        var error = Validate(value);
        if (error is not null) throw new ArgumentException(error, nameof(value));
        return new BlobKey(value);
    }

    /// <summary>Parses a key without throwing.</summary>
    /// <param name="value">The candidate key.</param>
    /// <param name="key">The validated key, or null.</param>
    /// <returns>True when <paramref name="value"/> is a valid key.</returns>
    public static bool TryParse(string? value, out BlobKey? key)
    {
        key = value is not null && Validate(value) is null ? new BlobKey(value) : null;
        return key is not null;
    }

    /// <summary>Joins segments into a key (each segment is validated).</summary>
    /// <param name="segments">The segments, in order.</param>
    /// <returns>The validated key.</returns>
    public static BlobKey Join(params string[] segments) => Parse(string.Join('/', segments));

    /// <summary>Says why <paramref name="value"/> is not a valid key, or returns null when it is.</summary>
    /// <param name="value">The candidate key.</param>
    /// <returns>An error message naming the offending position and the rule, or null.</returns>
    public static string? Validate(string? value)
    {
        if (value is null) return "a storage key must not be null";
        if (value.Length == 0) return "a storage key must not be empty";
        if (value.Length > MaxLength)
            return $"a storage key has at most {MaxLength} characters; this one has {value.Length}";
        var segmentStart = 0;
        var segments = 1;
        for (var i = 0; i <= value.Length; i++)
        {
            if (i == value.Length || value[i] == '/')
            {
                var length = i - segmentStart;
                if (length == 0)
                    return $"storage key '{Show(value)}' has an empty segment at position {i} (no leading, trailing or doubled '/')";
                if (value[segmentStart] == '.')
                    return $"storage key '{Show(value)}' has a segment starting with '.' at position {segmentStart} ('.', '..' and hidden names are not allowed)";
                if (length > MaxSegmentLength)
                    return $"storage key '{Show(value)}' has a segment of {length} characters at position {segmentStart}; the limit is {MaxSegmentLength}";
                if (i < value.Length && ++segments > MaxSegments)
                    return $"storage key '{Show(value)}' has more than {MaxSegments} segments";
                segmentStart = i + 1;
            }
            else if (!IsKeyChar(value[i]))
            {
                return $"storage key '{Show(value)}' has the character {Describe(value[i])} at position {i}; " +
                       "allowed are a-z, 0-9, '-', '_', '.' and '/' between segments";
            }
        }
        return null;
    }

    /// <summary>
    /// Says why <paramref name="prefix"/> is not a valid listing prefix, or returns null when it is.
    /// A prefix is empty, a valid key, or a valid key followed by <c>/</c>; it matches keys by plain text.
    /// </summary>
    /// <param name="prefix">The candidate prefix.</param>
    /// <returns>An error message, or null.</returns>
    public static string? ValidatePrefix(string? prefix)
    {
        if (prefix is null) return "a listing prefix must not be null (use \"\" to list everything)";
        if (prefix.Length == 0) return null;
        var body = prefix.EndsWith('/') ? prefix[..^1] : prefix;
        var error = Validate(body);
        return error is null ? null : "invalid listing prefix: " + error;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="prefix"/> is not a valid listing prefix.</summary>
    /// <param name="prefix">The candidate prefix.</param>
    public static void EnsureValidPrefix(string prefix)
    {
        var error = ValidatePrefix(prefix);
        if (error is not null) throw new ArgumentException(error, nameof(prefix));
    }

    /// <summary>True for the characters allowed inside a segment.</summary>
    /// <param name="c">A character.</param>
    /// <returns>Whether the character may appear in a key segment.</returns>
    public static bool IsKeyChar(char c) =>
        c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.';

    // Keys in messages are shortened and stripped of control characters so that a hostile key
    // cannot flood or forge log lines.
    private static string Show(string value)
    {
        var s = value.Length > 80 ? value[..80] + "..." : value;
        return new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }

    private static string Describe(char c) =>
        char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : $"'{c}' (U+{(int)c:X4})";

    /// <inheritdoc />
    public bool Equals(BlobKey? other) => other is not null && string.Equals(Value, other.Value, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BlobKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);

    /// <inheritdoc />
    public int CompareTo(BlobKey? other) => other is null ? 1 : string.CompareOrdinal(Value, other.Value);

    /// <summary>The key text.</summary>
    /// <returns><see cref="Value"/>.</returns>
    public override string ToString() => Value;

    /// <summary>Compares two keys by text.</summary>
    /// <param name="left">A key.</param>
    /// <param name="right">A key.</param>
    /// <returns>True when both are null or have the same text.</returns>
    public static bool operator ==(BlobKey? left, BlobKey? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Compares two keys by text.</summary>
    /// <param name="left">A key.</param>
    /// <param name="right">A key.</param>
    /// <returns>True when the keys differ.</returns>
    public static bool operator !=(BlobKey? left, BlobKey? right) => !(left == right);
}
