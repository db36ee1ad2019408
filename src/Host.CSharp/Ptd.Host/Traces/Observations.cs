using System.Globalization;
using Ptd.Core;

namespace Ptd.Host.Traces;

/// <summary>
/// Observation files for the likelihood: one observation per line (an absorption time, or for a discrete model a
/// whole number of jumps); blank lines and <c>#</c> comments (whole-line or after the value) are ignored.
/// </summary>
public static class Observations
{
    /// <summary>Reads and checks an observation file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="discrete">True when the model is discrete (observations must be whole numbers).</param>
    /// <returns>The observations in file order.</returns>
    /// <exception cref="PtdException">The file cannot be read, or a line is not a valid observation (the message names the line), or it holds none.</exception>
    public static double[] Read(string path, bool discrete)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new PtdException($"cannot read data file '{path}': {e.Message}", e);
        }
        return Parse(text, path, discrete);
    }

    /// <summary>Parses observations from text (see <see cref="Read"/>).</summary>
    /// <param name="text">The content.</param>
    /// <param name="source">A name for messages (the file name).</param>
    /// <param name="discrete">True when the model is discrete.</param>
    /// <returns>The observations.</returns>
    /// <exception cref="PtdException">A line is invalid, or there are no observations.</exception>
    public static double[] Parse(string text, string source, bool discrete)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<double>();
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw;
            var hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.Length == 0) continue;
            var where = $"{source} line {lineNumber}";
            if (!double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out var x))
                throw new PtdException($"{where}: '{Clip(line)}' is not a number; expected one observation per line (e.g. 1.25), with # for comments");
            if (double.IsNaN(x))
                throw new PtdException($"{where}: NaN is not an observation; observations must be finite numbers ≥ 0");
            if (double.IsInfinity(x))
                throw new PtdException($"{where}: {Clip(line)} is not finite; observations must be finite numbers ≥ 0");
            if (x < 0)
                throw new PtdException($"{where}: {Clip(line)} is negative; {(discrete ? "jump counts" : "absorption times")} must be ≥ 0");
            if (discrete && x != Math.Floor(x))
                throw new PtdException($"{where}: {Clip(line)} is not a whole number; the model is discrete, so observations are jump counts (0, 1, 2, …)");
            result.Add(x);
        }
        if (result.Count == 0)
            throw new PtdException($"{source} holds no observations; write one {(discrete ? "jump count" : "absorption time")} per line");
        return result.ToArray();
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..37] + "...";
}
