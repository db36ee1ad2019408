using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ptd.Cli;

/// <summary>Where commands write: results to stdout, diagnostics (--verbose, warnings) to stderr.</summary>
public sealed class Output(TextWriter stdout, TextWriter stderr, bool verbose)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Says, when verbose, how long the process ran before the command started (runtime start-up, loading, JIT).</summary>
    public void StartupTime()
    {
        if (!Verbose) return;
        var sinceStart = DateTime.Now - Process.GetCurrentProcess().StartTime;
        Progress($"process start → command: {sinceStart.TotalMilliseconds:F0} ms");
    }

    /// <summary>Result stream.</summary>
    public TextWriter Out { get; } = stdout;

    /// <summary>Diagnostics stream.</summary>
    public TextWriter Err { get; } = stderr;

    /// <summary>Whether --verbose was given.</summary>
    public bool Verbose { get; } = verbose;

    /// <summary>Prints a progress line to stderr when verbose (stage and elapsed time).</summary>
    public void Progress(string message)
    {
        if (Verbose) Err.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:F3}s] {message}");
    }

    /// <summary>Runs a stage, reporting its duration when verbose.</summary>
    public T Stage<T>(string name, Func<T> work)
    {
        var start = _clock.Elapsed;
        Progress(name + " …");
        var result = work();
        Progress($"{name}: done in {(_clock.Elapsed - start).TotalMilliseconds:F1} ms");
        return result;
    }

    /// <summary>Writes a JSON document on one line.</summary>
    public void Json(JsonNode node) =>
        Out.WriteLine(node.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));

    /// <summary>A JSON array of numbers; non-finite values become null (JSON has no NaN) with a warning.</summary>
    public JsonArray Numbers(IEnumerable<double> values)
    {
        var array = new JsonArray();
        var warned = false;
        foreach (var v in values)
        {
            if (double.IsFinite(v)) array.Add(v);
            else
            {
                array.Add(null);
                if (!warned) Err.WriteLine($"ptd: warning: a result is {v}; written as null in JSON");
                warned = true;
            }
        }
        return array;
    }

    /// <summary>A number formatted for humans: shortest round-trip form.</summary>
    public static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
