using System.Globalization;
using Ptd.Core;

namespace Ptd.Cli;

/// <summary>Thrown for bad command-line usage; the CLI prints the message and exits with 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A small, strict argument parser: <c>--name value</c>, <c>--name=value</c>, short aliases, flags,
/// positionals. Every command declares its options, so an unknown option is an error that lists
/// the valid ones (a typo never silently changes a result).
/// </summary>
public sealed class Args
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];
    private readonly string _command;

    private Args(string command) => _command = command;

    /// <summary>Positional arguments in order.</summary>
    public IReadOnlyList<string> Positionals => _positionals;

    /// <summary>Parses <paramref name="args"/> against the declared options.</summary>
    /// <param name="command">Command name (for messages).</param>
    /// <param name="args">Arguments after the command name.</param>
    /// <param name="valued">Options that take a value, with optional short aliases ("-k" → "--k").</param>
    /// <param name="flags">Options without a value.</param>
    /// <param name="aliases">Short alias → long name.</param>
    public static Args Parse(string command, IReadOnlyList<string> args, IEnumerable<string> valued,
        IEnumerable<string> flags, IReadOnlyDictionary<string, string>? aliases = null)
    {
        var valuedSet = new HashSet<string>(valued, StringComparer.Ordinal);
        var flagSet = new HashSet<string>(flags, StringComparer.Ordinal) { "--help", "--verbose" };
        aliases ??= new Dictionary<string, string>();
        var result = new Args(command);
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                result._positionals.AddRange(args.Skip(i + 1));
                break;
            }
            if (a.Length > 1 && a[0] == '-' && !IsNumber(a))
            {
                string name = a;
                string? inline = null;
                var eq = a.IndexOf('=');
                if (eq > 0)
                {
                    name = a[..eq];
                    inline = a[(eq + 1)..];
                }
                if (aliases.TryGetValue(name, out var longName)) name = longName;
                if (valuedSet.Contains(name))
                {
                    if (inline is null)
                    {
                        if (i + 1 >= args.Count)
                            throw new UsageException($"option {name} needs a value (ptd {command} --help)");
                        inline = args[++i];
                    }
                    if (result._values.ContainsKey(name))
                        throw new UsageException($"option {name} is given twice");
                    result._values[name] = inline;
                }
                else if (flagSet.Contains(name))
                {
                    if (inline is not null) throw new UsageException($"option {name} takes no value");
                    result._values[name] = null;
                }
                else
                {
                    var valid = valuedSet.Concat(flagSet).Order(StringComparer.Ordinal);
                    throw new UsageException(
                        $"unknown option '{a}' for 'ptd {command}'. Valid options: {string.Join(", ", valid)}");
                }
            }
            else
            {
                result._positionals.Add(a);
            }
        }
        return result;
    }

    private static bool IsNumber(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>True when a flag (or a valued option) was given.</summary>
    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>The raw value of an option, or null.</summary>
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v : null;

    /// <summary>The single positional argument named <paramref name="what"/>.</summary>
    public string Positional(string what)
    {
        if (_positionals.Count == 0) throw new UsageException($"missing {what} (ptd {_command} --help)");
        if (_positionals.Count > 1)
            throw new UsageException($"unexpected argument '{_positionals[1]}' (ptd {_command} takes one {what})");
        return _positionals[0];
    }

    /// <summary>An integer option, with bounds.</summary>
    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = Get(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new UsageException($"{name} {s}: not an integer");
        if (v < min || v > max)
            throw new UsageException($"{name} {s}: must be between {min} and {max}");
        return v;
    }

    /// <summary>An optional finite floating-point option.</summary>
    public double? Double(string name)
    {
        var s = Get(name);
        if (s is null) return null;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new UsageException($"{name} {s}: not a finite number");
        return v;
    }

    /// <summary>A comma-separated list of finite numbers (e.g. <c>--theta 1,2,4</c>), or null.</summary>
    public double[]? Doubles(string name)
    {
        var s = Get(name);
        if (s is null) return null;
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        var result = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out result[i])
                || !double.IsFinite(result[i]))
                throw new UsageException($"{name}: item {i + 1} ('{parts[i]}') is not a finite number; expected comma-separated numbers like 0.5,1,2");
        }
        return result;
    }

    /// <summary>A comma-separated list of integers, or null.</summary>
    public int[]? Ints(string name)
    {
        var s = Get(name);
        if (s is null) return null;
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        var result = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out result[i]))
                throw new UsageException($"{name}: item {i + 1} ('{parts[i]}') is not an integer");
        }
        return result;
    }
}

/// <summary>Helpers shared by commands that take θ.</summary>
internal static class Theta
{
    /// <summary>θ from <c>--theta</c>, checked against the model so the message can say what to pass.</summary>
    public static double[] For(Graph graph, Args args)
    {
        var theta = args.Doubles("--theta") ?? [];
        if (graph.ParamLength > 0 && theta.Length == 0)
            throw new UsageException(
                $"this model has {graph.ParamLength} parameter(s): pass --theta with {graph.ParamLength} comma-separated value(s), e.g. --theta {string.Join(",", Enumerable.Repeat("1", graph.ParamLength))}");
        return theta;
    }
}
