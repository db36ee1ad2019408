using System.Globalization;
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
/// Reads an observation file: one number per line (times, or jump counts for a discrete model);
/// blank lines and <c>#</c> comments (whole-line or trailing) are allowed. Anything else — a
/// non-number, NaN, an infinity, a negative value, two numbers on a line, or a file with no
/// observations — stops with a message naming the file and line.
/// </summary>
public static class ObservationFile
{
    /// <summary>Reads and parses a file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="PtdException">The file cannot be read or a line is invalid.</exception>
    public static Observations Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PtdException($"cannot read the data file '{path}': {ex.Message}", ex);
        }
        return Parse(text, path);
    }

    /// <summary>Parses the text of an observation file.</summary>
    /// <param name="text">The file's text.</param>
    /// <param name="source">The name used in messages.</param>
    /// <exception cref="PtdException">A line is invalid or there are no observations.</exception>
    public static Observations Parse(string text, string source = "data")
    {
        ArgumentNullException.ThrowIfNull(text);
        var values = new List<double>();
        var lines = new List<int>();
        int lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw;
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.Length == 0) continue;
            if (line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length > 1)
                throw new PtdException(
                    $"{source} line {lineNumber}: '{line}' holds more than one value; write one observation per line");
            if (!double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out var x))
                throw new PtdException(
                    $"{source} line {lineNumber}: '{line}' is not a number; write one observation per line (a dot for decimals, # for comments)");
            if (Problem(x) is { } problem)
                throw new PtdException($"{source} line {lineNumber}: '{line}' {problem}");
            values.Add(x);
            lines.Add(lineNumber);
        }
        if (values.Count == 0)
            throw new PtdException(
                $"{source} holds no observations (only blank lines or comments); write one time (or jump count) per line");
        return Observations.FromParsed(values.ToArray(), lines.ToArray(), source);
    }

    /// <summary>Why a value cannot be an observation, or null when it can.</summary>
    internal static string? Problem(double x) =>
        double.IsNaN(x) ? "is NaN; observations must be numbers ≥ 0"
        : double.IsInfinity(x) ? "is infinite; observations must be finite"
        : x < 0 ? "is negative; absorption times and jump counts are ≥ 0"
        : null;
}
