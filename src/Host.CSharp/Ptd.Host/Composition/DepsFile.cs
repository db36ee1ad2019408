using System.Text.Json;

namespace Ptd.Host.Composition;

/// <summary>
/// Checks the shape of a plugin's <c>.deps.json</c> before <see cref="System.Runtime.Loader.AssemblyDependencyResolver"/>
/// reads it. The runtime's native parser terminates the whole process on some malformed files (for example
/// <c>{}</c> or a <c>runtimeTarget</c> without a string <c>name</c>, seen with .NET 10.0.12), so a damaged plugin
/// folder must be refused here, with a message, instead of taking the host down.
/// </summary>
internal static class DepsFile
{
    /// <summary>Returns why the file cannot be used, or null when it has the shape the SDK writes.</summary>
    public static string? Validate(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return $"its .deps.json cannot be read as JSON ({e.Message})";
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return "its .deps.json is not a JSON object";
            if (!root.TryGetProperty("runtimeTarget", out var target) || target.ValueKind != JsonValueKind.Object ||
                !target.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                return "its .deps.json has no runtimeTarget.name (rebuild the plugin with `dotnet build`)";
            if (root.TryGetProperty("targets", out var targets))
            {
                if (targets.ValueKind != JsonValueKind.Object) return "its .deps.json 'targets' is not an object";
                foreach (var t in targets.EnumerateObject())
                {
                    if (t.Value.ValueKind != JsonValueKind.Object) return $"its .deps.json target '{t.Name}' is not an object";
                    foreach (var library in t.Value.EnumerateObject())
                    {
                        if (library.Value.ValueKind != JsonValueKind.Object) return $"its .deps.json library '{library.Name}' is not an object";
                        foreach (var section in library.Value.EnumerateObject())
                        {
                            if (section.Value.ValueKind != JsonValueKind.Object) return $"its .deps.json section '{library.Name}.{section.Name}' is not an object";
                            foreach (var item in section.Value.EnumerateObject())
                            {
                                var ok = section.Name == "dependencies"
                                    ? item.Value.ValueKind == JsonValueKind.String
                                    : item.Value.ValueKind == JsonValueKind.Object && item.Value.EnumerateObject().All(p => p.Value.ValueKind == JsonValueKind.String);
                                if (!ok) return $"its .deps.json entry '{library.Name}.{section.Name}.{item.Name}' has an unexpected shape";
                            }
                        }
                    }
                }
            }
            if (root.TryGetProperty("libraries", out var libraries))
            {
                if (libraries.ValueKind != JsonValueKind.Object) return "its .deps.json 'libraries' is not an object";
                foreach (var library in libraries.EnumerateObject())
                {
                    if (library.Value.ValueKind != JsonValueKind.Object ||
                        library.Value.EnumerateObject().Any(p => p.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.True or JsonValueKind.False)))
                        return $"its .deps.json library '{library.Name}' has an unexpected shape";
                }
            }
            return null;
        }
    }
}
