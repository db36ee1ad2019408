using Ptd.Core;

namespace Ptd.Host.Models;

/// <summary>Loads models from files or built-in specs (the I/O half of model construction).</summary>
public static class ModelSource
{
    /// <summary>
    /// Loads a model: a built-in spec such as <c>coalescent:n=10</c> or <c>rabbits:R=500</c>, or a path
    /// to a model file (<c>ptd-graph/1</c> or <c>ptd-matrix/1</c> JSON), or to a trace file (its model).
    /// </summary>
    /// <exception cref="PtdException">The spec or file is invalid; the message says where and why.</exception>
    public static Graph Load(string source)
    {
        if (string.IsNullOrWhiteSpace(source))
            throw new PtdException("no model given: pass a model file or a built-in spec such as coalescent:n=10");
        if (ModelSpec.isSpec(source))
            return ModelSpec.build(source);
        if (!File.Exists(source))
        {
            var hint = source.Contains(':') && !source.Contains('/') && !source.Contains('\\')
                ? $" Built-in models: {string.Join(", ", ModelSpec.names)}."
                : "";
            throw new PtdException(
                $"model '{source}' is neither a file nor a built-in model spec.{hint} Give a path to a model file (see docs/model-format.md) or a spec like coalescent:n=10.");
        }
        if (Traces.TraceFile.Detect(source) is not null)
            return Traces.TraceFile.Load(source).Trace.Model;
        string text;
        try
        {
            text = File.ReadAllText(source);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PtdException($"cannot read model file '{source}': {ex.Message}", ex);
        }
        try
        {
            return ModelFile.parse(text);
        }
        catch (PtdException ex)
        {
            throw new PtdException($"{source}: {ex.Message}", ex);
        }
    }

    /// <summary>Writes a model to a file in the <c>ptd-graph/1</c> format (atomically: temp file, then rename).</summary>
    public static void Save(Graph graph, string path)
    {
        ArgumentNullException.ThrowIfNull(graph);
        SaveText(ModelFile.toJson(graph), path);
    }

    /// <summary>Writes text to a file atomically (temp file in the same directory, then rename).</summary>
    public static void SaveText(string text, string path)
    {
        ArgumentNullException.ThrowIfNull(text);
        AtomicFile.WriteText(path, text);
    }
}
