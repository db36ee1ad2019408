using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Ptd.Core;
using Trace = Ptd.Core.Trace;

namespace Ptd.Host.Traces;

/// <summary>The two forms of a trace file.</summary>
public enum TraceFileFormat
{
    /// <summary>The binary encoding (<c>TraceEncoding</c>; starts with <c>PTDTRACE</c>; extension <c>.ptdt</c> by convention).</summary>
    Binary,

    /// <summary>The JSON export (<c>TraceJson</c>; <c>"format": "ptd-trace"</c>).</summary>
    Json,
}

/// <summary>
/// Reads and writes trace files (docs/trace-format.md). Files are recognized by their content — the binary magic
/// <c>PTDTRACE</c>, or a JSON document whose <c>format</c> is <c>ptd-trace</c> — never by their extension.
/// </summary>
public static partial class TraceFile
{
    /// <summary>The conventional extension of binary trace files.</summary>
    public const string Extension = ".ptdt";

    // A model file's "format" is ptd-graph/… or ptd-matrix/…; a trace export's is "ptd-trace". Looked for near the
    // start only (the exporter writes it first), so a large model file is not scanned.
    [GeneratedRegex("\"format\"\\s*:\\s*\"ptd-trace\"", RegexOptions.CultureInvariant)]
    private static partial Regex JsonFormat();

    private const int SniffBytes = 4096;

    /// <summary>Recognizes a trace file by its first bytes.</summary>
    /// <param name="path">A path (need not exist).</param>
    /// <returns>The form, or null when the file is missing, unreadable, or not a trace.</returns>
    public static TraceFileFormat? Detect(string path)
    {
        if (string.IsNullOrEmpty(path) || !File.Exists(path)) return null;
        try
        {
            using var stream = File.OpenRead(path);
            var head = new byte[SniffBytes];
            var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return Detect(head.AsSpan(0, n));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Recognizes a trace by the first bytes of its content.</summary>
    /// <param name="head">The first bytes (a few KB suffice).</param>
    /// <returns>The form, or null when the content is not a trace.</returns>
    public static TraceFileFormat? Detect(ReadOnlySpan<byte> head)
    {
        var magic = Encoding.ASCII.GetBytes(TraceEncoding.Magic);
        if (head.StartsWith(magic)) return TraceFileFormat.Binary;
        var text = Encoding.UTF8.GetString(head[..Math.Min(head.Length, SniffBytes)]).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        return text.StartsWith('{') && JsonFormat().IsMatch(text) ? TraceFileFormat.Json : null;
    }

    /// <summary>Reads a trace file (binary or JSON, told apart by content).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The trace and how it was read (origin <see cref="TraceOrigin.Provided"/>).</returns>
    /// <exception cref="PtdException">The file is missing, unreadable, not a trace, or damaged; the message names the file.</exception>
    public static TraceLookup Load(string path)
    {
        var start = Stopwatch.GetTimestamp();
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new PtdException($"cannot read trace file '{path}': {e.Message}", e);
        }
        var format = Detect(bytes.AsSpan(0, Math.Min(bytes.Length, SniffBytes)))
                     ?? throw new PtdException($"'{path}' is not a trace file: it neither starts with \"{TraceEncoding.Magic}\" (binary) nor is a JSON document with \"format\": \"ptd-trace\" (ptd trace export --json); record one with ptd trace record MODEL -o FILE{Extension}");
        var decodeStart = Stopwatch.GetTimestamp();
        Trace trace;
        try
        {
            trace = format == TraceFileFormat.Binary ? TraceEncoding.decode(bytes) : TraceJson.import(Encoding.UTF8.GetString(bytes));
        }
        catch (PtdException e)
        {
            throw new PtdException($"{path}: {e.Message}", e);
        }
        var decodeTime = Stopwatch.GetElapsedTime(decodeStart);
        return new TraceLookup
        {
            Trace = trace, Key = ModelKey.ofTrace(trace), Origin = TraceOrigin.Provided, SourceFile = path,
            PayloadBytes = bytes.Length, DecodeTime = decodeTime, TotalTime = Stopwatch.GetElapsedTime(start),
        };
    }

    /// <summary>Writes a trace in the binary encoding, atomically (temporary file in the same directory, then rename).</summary>
    /// <param name="trace">The trace.</param>
    /// <param name="path">The destination (overwritten).</param>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="PtdException">The file cannot be written.</exception>
    public static long Save(Trace trace, string path)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var bytes = TraceEncoding.encode(trace);
        AtomicFile.Write(path, bytes);
        return bytes.Length;
    }

    /// <summary>Writes a trace as JSON (<c>TraceJson.export</c>), atomically.</summary>
    /// <param name="trace">The trace.</param>
    /// <param name="path">The destination (overwritten).</param>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="PtdException">The file cannot be written.</exception>
    public static long SaveJson(Trace trace, string path)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var bytes = new UTF8Encoding(false).GetBytes(TraceJson.export(trace));
        AtomicFile.Write(path, bytes);
        return bytes.Length;
    }
}
