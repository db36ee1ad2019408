using System.Globalization;
using System.Text.Json;
using Ptd.Core;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>
/// Reads cache settings from the environment and a JSON file (see docs/configuration.md):
/// <c>PTD_CACHE</c> (tier locations separated by <c>;</c>, or <c>off</c>), <c>PTD_CACHE_CONFIG</c> (the JSON
/// file; default <c>~/.ptd/cache.json</c> when it exists). Tier options ride in each location's query as the
/// reserved parameters <c>access</c>, <c>timeout</c>, <c>cooldown</c>, <c>maxSize</c>, <c>maxAge</c> and
/// <c>name</c>, which are removed before the location reaches its plugin.
/// </summary>
public static class CacheConfiguration
{
    /// <summary>The variable with the tier chain.</summary>
    public const string CacheVariable = "PTD_CACHE";

    /// <summary>The variable with the path of the JSON configuration file.</summary>
    public const string ConfigFileVariable = "PTD_CACHE_CONFIG";

    /// <summary>The tier chain used when neither <c>PTD_CACHE</c> nor a configuration file names one: the default local directory.</summary>
    public const string DefaultTiers = "file://";

    /// <summary>The query parameters the host reads itself; plugins never see them.</summary>
    public static IReadOnlyList<string> ReservedQueryKeys { get; } = ["access", "timeout", "cooldown", "maxSize", "maxAge", "name"];

    /// <summary>
    /// Builds options from the environment: the JSON file (if any) first, then <c>PTD_CACHE</c>, which replaces the
    /// file's tiers when set. Without either, one read-write tier at the default local directory.
    /// </summary>
    /// <param name="getEnvironmentVariable">Reads a variable (null: the process environment).</param>
    /// <returns>The options.</returns>
    /// <exception cref="PtdException">A setting is malformed (the message names it and says how to fix it).</exception>
    public static ArtifactCacheOptions FromEnvironment(Func<string, string?>? getEnvironmentVariable = null)
    {
        var env = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var options = new ArtifactCacheOptions { StoreContext = new BlobStoreContext { GetEnvironmentVariable = env } };
        var file = env(ConfigFileVariable);
        var explicitFile = !string.IsNullOrWhiteSpace(file);
        if (!explicitFile && (env("HOME") ?? env("USERPROFILE")) is { Length: > 0 } home) file = Path.Combine(home, ".ptd", "cache.json");
        var tiersSet = false;
        if (!string.IsNullOrWhiteSpace(file))
        {
            if (File.Exists(file)) tiersSet = ApplyJsonCore(options, File.ReadAllText(file), file);
            else if (explicitFile) throw new PtdException($"{ConfigFileVariable}='{file}': the cache configuration file does not exist");
        }
        var chain = env(CacheVariable);
        if (chain is not null) ApplyChain(options, chain);
        else if (!tiersSet) ApplyChain(options, DefaultTiers);
        return options;
    }

    /// <summary>Parses a tier chain such as <c>file:///cache;s3://bucket/p?access=ro&amp;timeout=5s</c>, or <c>off</c>.</summary>
    /// <param name="chain">The chain text.</param>
    /// <returns>The tiers (empty for <c>off</c>/<c>none</c>/empty).</returns>
    /// <exception cref="PtdException">A location or a reserved option is malformed.</exception>
    public static IReadOnlyList<CacheTierOptions> ParseChain(string chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var trimmed = chain.Trim();
        if (trimmed.Length == 0 || trimmed.Equals("off", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("none", StringComparison.OrdinalIgnoreCase))
            return Array.Empty<CacheTierOptions>();
        var tiers = new List<CacheTierOptions>();
        foreach (var part in trimmed.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            tiers.Add(ParseTier(part, $"{CacheVariable} entry {tiers.Count + 1}"));
        return tiers;
    }

    /// <summary>Parses one tier location, moving the reserved parameters into the tier options.</summary>
    /// <param name="location">The location text.</param>
    /// <param name="where">Where the text came from, for messages.</param>
    /// <returns>The tier options; <see cref="CacheTierOptions.Location"/> holds the location without reserved parameters.</returns>
    /// <exception cref="PtdException">The location or a reserved option is malformed.</exception>
    public static CacheTierOptions ParseTier(string location, string where = "cache tier")
    {
        if (!StoreUri.TryParse(location, out var uri, out var error)) throw new PtdException($"{where}: {error}");
        var tier = new CacheTierOptions();
        var shown = uri!.ToString();
        foreach (var (key, value) in uri.Query)
        {
            switch (key.ToLowerInvariant())
            {
                case "access": tier.Access = ParseAccess(value, $"{where} ({shown}): access"); break;
                case "timeout": tier.Timeout = ParseDuration(value, $"{where} ({shown}): timeout"); break;
                case "cooldown": tier.CoolDown = ParseDuration(value, $"{where} ({shown}): cooldown", allowZero: true); break;
                case "maxsize": tier.MaxSizeBytes = ParseSize(value, $"{where} ({shown}): maxSize"); break;
                case "maxage": tier.MaxAge = ParseDuration(value, $"{where} ({shown}): maxAge"); break;
                case "name": tier.Name = ParseName(value, $"{where} ({shown}): name"); break;
            }
        }
        tier.Location = Rebuild(uri.Without(ReservedQueryKeys), location);
        return tier;
    }

    /// <summary>Parses a duration: a number with unit <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c> or <c>d</c> (e.g. <c>500ms</c>, <c>30d</c>), or <c>hh:mm:ss</c>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="what">The setting's name, for messages.</param>
    /// <param name="allowZero">Whether zero is accepted.</param>
    /// <returns>The duration.</returns>
    /// <exception cref="PtdException">The text is not a duration.</exception>
    public static TimeSpan ParseDuration(string text, string what, bool allowZero = false)
    {
        var t = (text ?? "").Trim().ToLowerInvariant();
        TimeSpan? value = null;
        (string Suffix, double Ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, ms) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0 && !(suffix == "m" && t.EndsWith("ms", StringComparison.Ordinal)))
            {
                // TimeSpan.FromMilliseconds throws OverflowException beyond ~29 000 years ("1e300d").
                if (!(n * ms < TimeSpan.MaxValue.TotalMilliseconds))
                    throw new PtdException($"{what}: '{text}' is too long a duration (the limit is about 29 000 years); write e.g. 12h or 30d");
                value = TimeSpan.FromMilliseconds(n * ms);
                break;
            }
        }
        if (value is null && t.Contains(':') && TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var ts) && ts >= TimeSpan.Zero) value = ts;
        if (value is null)
            throw new PtdException($"{what}: '{text}' is not a duration; write e.g. 500ms, 10s, 5m, 12h, 30d or 00:00:10");
        if (!allowZero && value.Value == TimeSpan.Zero) throw new PtdException($"{what}: must be more than zero");
        return value.Value;
    }

    /// <summary>Parses a size: bytes, or a number with unit <c>KB</c>, <c>MB</c>, <c>GB</c>, <c>TB</c> (powers of 1024; <c>KiB</c> etc. also accepted).</summary>
    /// <param name="text">The text.</param>
    /// <param name="what">The setting's name, for messages.</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="PtdException">The text is not a size.</exception>
    public static long ParseSize(string text, string what)
    {
        var t = (text ?? "").Trim().ToUpperInvariant().Replace("IB", "B", StringComparison.Ordinal);
        (string Suffix, double Factor)[] units = [("TB", 1L << 40), ("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10), ("B", 1)];
        foreach (var (suffix, factor) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
            {
                // checked((long)x) threw OverflowException for "1e30GB": a clear error instead.
                if (!(n * factor < 9.2e18))
                    throw new PtdException($"{what}: '{text}' is too large a size (the limit is about 8 EB); write e.g. 500MB or 10GB");
                return (long)(n * factor);
            }
        }
        if (long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)) return bytes;
        throw new PtdException($"{what}: '{text}' is not a size; write e.g. 500MB, 10GB or a number of bytes");
    }

    private static CacheTierAccess ParseAccess(string value, string what) => value.Trim().ToLowerInvariant() switch
    {
        "rw" or "read-write" or "readwrite" => CacheTierAccess.ReadWrite,
        "ro" or "read-only" or "readonly" => CacheTierAccess.ReadOnly,
        _ => throw new PtdException($"{what}: '{value}' is not an access mode; write read-write (rw) or read-only (ro)"),
    };

    private static string ParseName(string value, string what)
    {
        var v = value.Trim();
        if (v.Length is 0 or > 32 || v.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            throw new PtdException($"{what}: '{value}' must be 1 to 32 letters, digits, '-' or '_'");
        return v;
    }

    // Keep the user's own spelling when nothing was removed (it may differ only in escaping).
    private static string Rebuild(StoreUri reduced, string original)
    {
        var anyReserved = reduced.Query.Count != StoreUri.Parse(original).Query.Count;
        if (!anyReserved) return original.Trim();
        var text = $"{reduced.Scheme}://{Uri.EscapeDataString(reduced.Authority)}";
        if (reduced.Path.Length > 0 || reduced.Authority.Length == 0) text += "/" + string.Join('/', reduced.Path.Split('/').Select(Uri.EscapeDataString));
        if (reduced.Authority.Length == 0 && reduced.Path.Length == 0) text = $"{reduced.Scheme}://";
        if (reduced.Query.Count > 0) text += "?" + string.Join('&', reduced.Query.Select(kv => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(kv.Value)));
        return text;
    }

    private static void ApplyChain(ArtifactCacheOptions options, string chain)
    {
        options.Tiers.Clear();
        foreach (var t in ParseChain(chain)) options.Tiers.Add(t);
    }

    /// <summary>Applies a JSON configuration document to <paramref name="options"/>.</summary>
    /// <param name="options">The options to change.</param>
    /// <param name="json">The document (see docs/configuration.md for the fields).</param>
    /// <param name="source">Where it came from, for messages.</param>
    /// <exception cref="PtdException">The document is malformed or has unknown fields.</exception>
    public static void ApplyJson(ArtifactCacheOptions options, string json, string source = "cache configuration") =>
        ApplyJsonCore(options, json, source);

    // Returns whether the document decided the tiers ("tiers" given, even empty, or "enabled": false).
    private static bool ApplyJsonCore(ArtifactCacheOptions options, string json, string source)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tiersSet = false;
        var disabled = false;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new PtdException($"{source}: not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new PtdException($"{source}: the top level must be a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                var where = $"{source}: '{p.Name}'";
                switch (p.Name)
                {
                    case "enabled":
                        disabled = !Bool(p.Value, where);
                        break;
                    case "tiers":
                        if (p.Value.ValueKind != JsonValueKind.Array) throw new PtdException($"{where} must be an array of tiers");
                        options.Tiers.Clear();
                        var i = 0;
                        foreach (var t in p.Value.EnumerateArray()) options.Tiers.Add(ParseJsonTier(t, $"{source}: tiers[{i++}]"));
                        tiersSet = true;
                        break;
                    case "generation": options.Generation = Int(p.Value, where); break;
                    case "compression":
                        options.Compression = Str(p.Value, where).ToLowerInvariant() switch
                        {
                            "none" => CacheCompression.None,
                            "deflate" => CacheCompression.Deflate,
                            "brotli" => CacheCompression.Brotli,
                            var other => throw new PtdException($"{where}: '{other}' is not one of none, deflate, brotli"),
                        };
                        break;
                    case "compressionThreshold": options.CompressionThreshold = checked((int)SizeOf(p.Value, where)); break;
                    case "timeout": options.DefaultTimeout = DurationOf(p.Value, where, false); break;
                    case "coolDown": options.DefaultCoolDown = DurationOf(p.Value, where, true); break;
                    case "maxEntrySize": options.MaxEntryBytes = SizeOf(p.Value, where); break;
                    case "autoEvict": options.AutoEvict = Bool(p.Value, where); break;
                    case "$schema": case "comment": break;
                    default:
                        throw new PtdException($"{where} is not a cache setting; known: enabled, tiers, generation, compression, compressionThreshold, timeout, coolDown, maxEntrySize, autoEvict");
                }
            }
        }
        if (disabled) options.Tiers.Clear();
        return tiersSet || disabled;
    }

    private static CacheTierOptions ParseJsonTier(JsonElement e, string where)
    {
        if (e.ValueKind == JsonValueKind.String) return ParseTier(e.GetString()!, where);
        if (e.ValueKind != JsonValueKind.Object) throw new PtdException($"{where} must be a location string or an object with \"uri\"");
        if (!e.TryGetProperty("uri", out var uriElement)) throw new PtdException($"{where} has no \"uri\"");
        var tier = ParseTier(Str(uriElement, where + ".uri"), where);
        foreach (var p in e.EnumerateObject())
        {
            var w = $"{where}.{p.Name}";
            switch (p.Name)
            {
                case "uri": break;
                case "access": tier.Access = ParseAccess(Str(p.Value, w), w); break;
                case "timeout": tier.Timeout = DurationOf(p.Value, w, false); break;
                case "coolDown": tier.CoolDown = DurationOf(p.Value, w, true); break;
                case "maxSize": tier.MaxSizeBytes = SizeOf(p.Value, w); break;
                case "maxAge": tier.MaxAge = DurationOf(p.Value, w, false); break;
                case "name": tier.Name = ParseName(Str(p.Value, w), w); break;
                default: throw new PtdException($"{w} is not a tier setting; known: uri, access, timeout, coolDown, maxSize, maxAge, name");
            }
        }
        return tier;
    }

    private static string Str(JsonElement e, string where) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new PtdException($"{where} must be a string");

    private static bool Bool(JsonElement e, string where) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new PtdException($"{where} must be true or false"),
    };

    private static int Int(JsonElement e, string where) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) && v >= 0 ? v : throw new PtdException($"{where} must be a whole number, 0 or more");

    // Numbers are seconds; strings use ParseDuration's units.
    private static TimeSpan DurationOf(JsonElement e, string where, bool allowZero) => e.ValueKind switch
    {
        JsonValueKind.Number when e.GetDouble() is var s && s >= 0 && (allowZero || s > 0) => TimeSpan.FromSeconds(s),
        JsonValueKind.String => ParseDuration(e.GetString()!, where, allowZero),
        _ => throw new PtdException($"{where} must be a duration: seconds as a number, or a string such as \"10s\" or \"30d\""),
    };

    // Numbers are bytes; strings use ParseSize's units.
    private static long SizeOf(JsonElement e, string where) => e.ValueKind switch
    {
        JsonValueKind.Number when e.TryGetInt64(out var b) && b >= 0 => b,
        JsonValueKind.String => ParseSize(e.GetString()!, where),
        _ => throw new PtdException($"{where} must be a size: bytes as a number, or a string such as \"10GB\""),
    };
}
