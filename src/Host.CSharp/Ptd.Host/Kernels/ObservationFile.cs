using System.Globalization;
using System.Text;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// Observed data: absorption times (continuous models) or jump counts (discrete models), with the
/// line each value came from so that a later check (a time the model cannot produce, a fractional
/// count) can name the line instead of an index the user never saw.
/// </summary>
public sealed class Observations
{
    private readonly double[] _values;
    private readonly int[] _lines;

    private Observations(double[] values, int[] lines, string source)
    {
        _values = values;
        _lines = lines;
        Source = source;
    }

    /// <summary>The values in file order.</summary>
    public IReadOnlyList<double> Values => _values;

    /// <summary>The number of observations.</summary>
    public int Count => _values.Length;

    /// <summary>Where the values came from (a file name, or "data").</summary>
    public string Source { get; }

    /// <summary>A copy of the values (the likelihood's run-time input).</summary>
    public double[] ToArray() => (double[])_values.Clone();

    /// <summary>Describes observation <paramref name="index"/> for messages: "data.txt line 7 (t = 0.5)".</summary>
    public string Describe(int index) =>
        _lines[index] > 0
            ? $"{Source} line {_lines[index]} (value {Num(_values[index])})"
            : $"observation {index + 1} of {Source} (value {Num(_values[index])})";

    /// <summary>Wraps values given in code (checked like a file's).</summary>
    /// <param name="values">Finite values ≥ 0.</param>
    /// <param name="source">A name for messages.</param>
    /// <exception cref="PtdException">A value is negative, NaN or infinite, or there are none.</exception>
    public static Observations FromValues(IEnumerable<double> values, string source = "data")
    {
        ArgumentNullException.ThrowIfNull(values);
        var array = values.ToArray();
        for (int i = 0; i < array.Length; i++)
            if (ObservationFile.Problem(array[i]) is { } problem)
                throw new PtdException($"observation {i + 1} of {source} is {Num(array[i])}: {problem}");
        if (array.Length == 0)
            throw new PtdException($"{source} holds no observations; give at least one time (or jump count)");
        return new Observations(array, new int[array.Length], source);
    }

    internal static Observations FromParsed(double[] values, int[] lines, string source) => new(values, lines, source);

    private static string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// The one reader of observation files (loglik, infer, and anything else that takes data): one
/// number per line (absorption times, or jump counts for a discrete model); blank lines and
/// <c>#</c> comments (whole-line or trailing) are allowed, a UTF-8 byte-order mark is skipped.
/// Anything else — invalid UTF-8, a non-number, NaN, an infinity (including a number too large for
/// a double), a negative value, two numbers on a line, a fraction where a discrete model needs a
/// whole number, a line longer than <see cref="MaxLineLength"/> characters, or a file with no
/// observations — stops with a message naming the file and line.
/// </summary>
/// <remarks>
/// The file is read as a stream with a bounded line buffer, so memory is one double and one int per
/// observation whatever the file holds (a multi-gigabyte line without a newline is rejected after
/// <see cref="MaxLineLength"/> characters instead of being buffered).
/// </remarks>
public static class ObservationFile
{
    /// <summary>The longest line accepted (a number with a comment fits easily; longer is not data).</summary>
    public const int MaxLineLength = 4096;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads and parses a file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="discrete">True when the model is discrete: observations must be whole numbers of jumps.</param>
    /// <exception cref="PtdException">The file cannot be read, is not UTF-8, a line is invalid, or there are no observations.</exception>
    public static Observations Read(string path, bool discrete = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        try
        {
            using var reader = new StreamReader(path, StrictUtf8, detectEncodingFromByteOrderMarks: false);
            return Parse(reader, path, discrete);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new PtdException($"cannot read data file '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>Parses the text of an observation file.</summary>
    /// <param name="text">The file's text.</param>
    /// <param name="source">The name used in messages.</param>
    /// <param name="discrete">True when the model is discrete: observations must be whole numbers of jumps.</param>
    /// <exception cref="PtdException">A line is invalid or there are no observations.</exception>
    public static Observations Parse(string text, string source = "data", bool discrete = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        using var reader = new StringReader(text);
        return Parse(reader, source, discrete);
    }

    /// <summary>Parses observations from a reader (see <see cref="Parse(string, string, bool)"/>).</summary>
    /// <param name="reader">The text.</param>
    /// <param name="source">The name used in messages.</param>
    /// <param name="discrete">True when the model is discrete.</param>
    /// <exception cref="PtdException">A line is invalid or there are no observations.</exception>
    public static Observations Parse(TextReader reader, string source = "data", bool discrete = false)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var values = new List<double>();
        var lines = new List<int>();
        var buffer = new char[MaxLineLength];
        int lineNumber = 0;
        while (true)
        {
            lineNumber++;
            int length = ReadLine(reader, buffer, source, lineNumber, out bool end);
            var line = Content(buffer.AsSpan(0, length), lineNumber);
            if (line.Length > 0)
            {
                values.Add(Value(line, source, lineNumber, discrete));
                lines.Add(lineNumber);
            }
            if (end) break;
        }
        if (values.Count == 0)
            throw new PtdException(
                $"{source} holds no observations (only blank lines or comments); write one {(discrete ? "jump count" : "time")} per line");
        return Observations.FromParsed(values.ToArray(), lines.ToArray(), source);
    }

    /// <summary>Reads one line into <paramref name="buffer"/> (without its terminator); <paramref name="end"/> when the input is exhausted.</summary>
    private static int ReadLine(TextReader reader, char[] buffer, string source, int lineNumber, out bool end)
    {
        int length = 0;
        while (true)
        {
            int c;
            try
            {
                c = reader.Read();
            }
            catch (DecoderFallbackException ex)
            {
                throw new PtdException(
                    $"{source} line {lineNumber}: the file is not valid UTF-8 text ({ex.Message}); save it as plain UTF-8 or ASCII", ex);
            }
            if (c < 0) { end = true; return length; }
            if (c == '\n') { end = false; return length; }
            if (length == buffer.Length)
                throw new PtdException(
                    $"{source} line {lineNumber}: the line is longer than {MaxLineLength} characters; an observation file holds one number per line");
            buffer[length++] = (char)c;
        }
    }

    /// <summary>The line without its comment, surrounding white space, and (on line 1) a byte-order mark.</summary>
    private static ReadOnlySpan<char> Content(ReadOnlySpan<char> line, int lineNumber)
    {
        if (lineNumber == 1 && line.Length > 0 && line[0] == '\uFEFF') line = line[1..];
        int hash = line.IndexOf('#');
        if (hash >= 0) line = line[..hash];
        return line.Trim();
    }

    private static double Value(ReadOnlySpan<char> line, string source, int lineNumber, bool discrete)
    {
        var where = $"{source} line {lineNumber}";
        foreach (var c in line)
            if (char.IsWhiteSpace(c))
                throw new PtdException($"{where}: '{Clip(line)}' holds more than one value; write one observation per line");
        if (!double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out var x))
            throw new PtdException(
                $"{where}: '{Clip(line)}' is not a number; write one observation per line (a dot for decimals, # for comments)");
        if (double.IsInfinity(x) && IsFiniteLiteral(line))
            throw new PtdException($"{where}: '{Clip(line)}' is too large for a double (the largest is about 1.8e308)");
        if (Problem(x) is { } problem)
            throw new PtdException($"{where}: '{Clip(line)}' {problem}");
        if (discrete && x != Math.Floor(x))
            throw new PtdException(
                $"{where}: '{Clip(line)}' is not a whole number; the model is discrete, so observations are jump counts (0, 1, 2, …)");
        if (discrete && x > TraceLikelihood.MaxSteps)
            throw new PtdException(
                $"{where}: '{Clip(line)}' jumps is beyond the {TraceLikelihood.MaxSteps} steps the pmf recursion is allowed");
        return x;
    }

    /// <summary>True when the text is digits (not "inf"/"∞"): an infinity from it means overflow.</summary>
    private static bool IsFiniteLiteral(ReadOnlySpan<char> line)
    {
        foreach (var c in line)
            if (char.IsLetter(c) && c is not ('e' or 'E')) return false;
        return true;
    }

    private static string Clip(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : string.Concat(s[..37], "...");

    /// <summary>Why a value cannot be an observation, or null when it can.</summary>
    internal static string? Problem(double x) =>
        double.IsNaN(x) ? "is NaN; observations must be numbers ≥ 0"
        : double.IsInfinity(x) ? "is infinite (not finite); observations must be finite numbers ≥ 0"
        : x < 0 ? "is negative; absorption times and jump counts are ≥ 0"
        : null;
}
