using System.Text;

namespace Ptd.Storage;

/// <summary>
/// A parsed store location <c>scheme://authority/path?key=value&amp;...</c>, for example
/// <c>s3://bucket/prefix?region=eu-west-1</c> or <c>file:///var/cache/ptd</c>.
/// </summary>
/// <remarks>
/// Credentials are never accepted inside a location: a user-info part (<c>user:secret@</c>) is rejected, and
/// secrets are passed by naming an environment variable instead. Even so, <see cref="ToString"/> and
/// <see cref="ToDisplayString"/> print a query value only when its key is declared public, so that a location
/// can always be shown in messages and logs.
/// </remarks>
public sealed class StoreUri
{
    private readonly List<KeyValuePair<string, string>> _query;

    private StoreUri(string scheme, string authority, string path, List<KeyValuePair<string, string>> query)
    {
        Scheme = scheme;
        Authority = authority;
        Path = path;
        _query = query;
    }

    /// <summary>The scheme in lowercase, for example <c>s3</c>; it selects the provider.</summary>
    public string Scheme { get; }

    /// <summary>The part between <c>//</c> and the next <c>/</c>: a bucket, a container, or empty for <c>file:///path</c>.</summary>
    public string Authority { get; }

    /// <summary>The percent-decoded path after the authority, without its leading <c>/</c> (may be empty).</summary>
    public string Path { get; }

    /// <summary>The percent-decoded query parameters, in the order given.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Query => _query;

    /// <summary>Parses a location, throwing <see cref="ArgumentException"/> with the reason when it is malformed.</summary>
    /// <param name="text">The location text.</param>
    /// <returns>The parsed location.</returns>
    public static StoreUri Parse(string text)
    {
        var result = TryParse(text, out var uri, out var error);
        return result ? uri! : throw new ArgumentException(error, nameof(text));
    }

    /// <summary>Parses a location without throwing.</summary>
    /// <param name="text">The location text.</param>
    /// <param name="uri">The parsed location, or null.</param>
    /// <param name="error">Why parsing failed (never echoes query values), or null.</param>
    /// <returns>True on success.</returns>
    public static bool TryParse(string? text, out StoreUri? uri, out string? error)
    {
        uri = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "a store location must not be empty (expected scheme://..., e.g. file:///path or s3://bucket/prefix)";
            return false;
        }
        text = text.Trim();
        var sep = text.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 0)
        {
            error = $"store location '{Head(text)}' has no scheme; expected scheme://..., e.g. file:///path or s3://bucket/prefix";
            return false;
        }
        var scheme = text[..sep].ToLowerInvariant();
        if (!char.IsAsciiLetterLower(scheme[0]) || scheme.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '+' or '-' or '.')))
        {
            error = $"store location scheme '{Head(scheme)}' is not a valid URI scheme";
            return false;
        }
        var rest = text[(sep + 3)..];
        if (rest.Contains('#'))
        {
            error = $"store location '{scheme}://...' has a '#' fragment; fragments are not supported";
            return false;
        }
        var q = rest.IndexOf('?');
        var beforeQuery = q < 0 ? rest : rest[..q];
        var queryText = q < 0 ? "" : rest[(q + 1)..];
        var slash = beforeQuery.IndexOf('/');
        var authority = slash < 0 ? beforeQuery : beforeQuery[..slash];
        var rawPath = slash < 0 ? "" : beforeQuery[(slash + 1)..];
        if (authority.Contains('@'))
        {
            // Do not echo the authority: it probably holds a secret.
            error = $"store location '{scheme}://...@...' contains credentials; put secrets in an environment variable and name it in the query (see docs/configuration.md)";
            return false;
        }
        string path;
        try
        {
            path = Uri.UnescapeDataString(rawPath);
            authority = Uri.UnescapeDataString(authority);
        }
        catch (UriFormatException)
        {
            error = $"store location '{scheme}://{Head(authority)}/...' has invalid percent-encoding in its path";
            return false;
        }
        var query = new List<KeyValuePair<string, string>>();
        foreach (var part in queryText.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            string key, value;
            try
            {
                key = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
                value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            }
            catch (UriFormatException)
            {
                error = $"store location '{scheme}://{Head(authority)}' has invalid percent-encoding in its query";
                return false;
            }
            if (key.Length == 0)
            {
                error = $"store location '{scheme}://{Head(authority)}' has a query parameter without a name";
                return false;
            }
            if (query.Any(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)))
            {
                error = $"store location '{scheme}://{Head(authority)}' sets query parameter '{Head(key)}' twice";
                return false;
            }
            query.Add(new KeyValuePair<string, string>(key, value));
        }
        uri = new StoreUri(scheme, authority, path, query);
        return true;
    }

    /// <summary>The value of a query parameter (key compared case-insensitively), or null.</summary>
    /// <param name="key">The parameter name.</param>
    /// <returns>The decoded value, or null when absent.</returns>
    public string? Get(string key)
    {
        foreach (var kv in _query)
            if (string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)) return kv.Value;
        return null;
    }

    /// <summary>A boolean query parameter: absent gives <paramref name="defaultValue"/>; <c>true/false/1/0/yes/no</c> are accepted.</summary>
    /// <param name="key">The parameter name.</param>
    /// <param name="defaultValue">The value when the parameter is absent.</param>
    /// <returns>The parsed value.</returns>
    /// <exception cref="BlobStoreException">The value is not a boolean (kind <see cref="BlobStoreErrorKind.Configuration"/>).</exception>
    public bool GetBool(string key, bool defaultValue)
    {
        var v = Get(key);
        if (v is null) return defaultValue;
        return v.ToLowerInvariant() switch
        {
            "" or "true" or "1" or "yes" or "on" => true,
            "false" or "0" or "no" or "off" => false,
            _ => throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                $"query parameter '{key}' of {this} must be true or false"),
        };
    }

    /// <summary>Throws when the location has query parameters other than <paramref name="allowedKeys"/>, so that typos are reported.</summary>
    /// <param name="allowedKeys">The parameter names the provider understands.</param>
    /// <exception cref="BlobStoreException">An unknown parameter was given (kind <see cref="BlobStoreErrorKind.Configuration"/>).</exception>
    public void EnsureOnlyKeys(IEnumerable<string> allowedKeys)
    {
        var allowed = new HashSet<string>(allowedKeys, StringComparer.OrdinalIgnoreCase);
        foreach (var kv in _query)
            if (!allowed.Contains(kv.Key))
                throw new BlobStoreException(BlobStoreErrorKind.Configuration,
                    $"{this}: unknown query parameter '{Head(kv.Key)}'; known parameters: {string.Join(", ", allowed.Order(StringComparer.Ordinal))}");
    }

    /// <summary>A copy without the given query parameters (the host removes its own tier options before calling a provider).</summary>
    /// <param name="keys">Parameter names to drop (case-insensitive).</param>
    /// <returns>The reduced location.</returns>
    public StoreUri Without(IEnumerable<string> keys)
    {
        var drop = new HashSet<string>(keys, StringComparer.OrdinalIgnoreCase);
        return new StoreUri(Scheme, Authority, Path, _query.Where(kv => !drop.Contains(kv.Key)).ToList());
    }

    /// <summary>
    /// The location for display: scheme, authority and path as given; the value of every query parameter not in
    /// <paramref name="publicKeys"/> replaced by <c>***</c>.
    /// </summary>
    /// <param name="publicKeys">Parameter names whose values are safe to print (for example <c>region</c>).</param>
    /// <returns>A string safe for messages and logs.</returns>
    public string ToDisplayString(IEnumerable<string> publicKeys)
    {
        var show = new HashSet<string>(publicKeys, StringComparer.OrdinalIgnoreCase);
        var sb = new StringBuilder();
        sb.Append(Scheme).Append("://").Append(Escape(Authority));
        if (Path.Length > 0 || Authority.Length == 0) sb.Append('/').Append(EscapePath(Path));
        for (var i = 0; i < _query.Count; i++)
        {
            var kv = _query[i];
            sb.Append(i == 0 ? '?' : '&').Append(Escape(kv.Key)).Append('=');
            sb.Append(show.Contains(kv.Key) ? Escape(kv.Value) : "***");
        }
        return sb.ToString();
    }

    /// <summary>The location with every query value redacted (safe for any message).</summary>
    /// <returns>The redacted location.</returns>
    public override string ToString() => ToDisplayString(Array.Empty<string>());

    private static string Escape(string s) => Uri.EscapeDataString(s);

    private static string EscapePath(string s) => string.Join('/', s.Split('/').Select(Uri.EscapeDataString));

    // Shortens user text echoed in messages.
    private static string Head(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
