using System.Diagnostics;
using System.Globalization;
using Microsoft.FSharp.Core;
using Ptd.Core;

namespace Ptd.Bench;

/// <summary>
/// The scale targets of the foundation issue (algorithms.md §8): each measured in a fresh child
/// process (cold JIT, cold heap, like a user's first run), repeated, reported as medians with the
/// child's peak working set. BenchmarkDotNet is not used here because a multi-second,
/// gigabyte-sized first run is exactly what these targets are about.
/// </summary>
public static class ScaleHarness
{
    private sealed record Target(string Name, string What, Func<string> Work);

    private static readonly Target[] Targets =
    [
        new("coal50", "coalescent n=50: build + elimination + first expectation", () => FirstExpectation(() => Models.coalescent(50, FSharpOption<double>.None), [1.0])),
        new("coal55", "coalescent n=55: build + elimination + first expectation", () => FirstExpectation(() => Models.coalescent(55, FSharpOption<double>.None), [1.0])),
        new("rabbits500", "rabbits R=500 (cyclic): build + elimination + first expectation", () => FirstExpectation(() => Models.rabbits(500, 2.0, 4.0), [])),
        new("coal40", "coalescent n=40: build + elimination + first expectation", () => FirstExpectation(() => Models.coalescent(40, FSharpOption<double>.None), [1.0])),
        new("rabbits200", "rabbits R=200 (cyclic): build + elimination + first expectation", () => FirstExpectation(() => Models.rabbits(200, 2.0, 4.0), [])),
    ];

    private static string FirstExpectation(Func<Graph> build, double[] theta)
    {
        var clock = Stopwatch.StartNew();
        var g = build();
        var built = clock.Elapsed.TotalMilliseconds;
        var c = Elimination.eliminate(g, theta);
        var eliminated = clock.Elapsed.TotalMilliseconds;
        var e = Moments.expectation(c, Rewards.ones(g));
        var total = clock.Elapsed.TotalMilliseconds;
        // one more moment: a single replay of the command list on a new reward vector
        var r = Rewards.ones(g);
        var replay = Stopwatch.StartNew();
        var x = (double[])r.Clone();
        Moments.replayInPlace(c, x);
        var more = replay.Elapsed.TotalMilliseconds;
        return string.Create(CultureInfo.InvariantCulture,
            $"vertices={g.VertexCount} edges={g.EdgeCount} commands={c.Count} build_ms={built:F0} elim_ms={eliminated - built:F0} total_ms={total:F0} one_more_moment_ms={more:F1} E={e:R}");
    }

    /// <summary>Runs one target in this process and prints its figures (called in the child).</summary>
    public static int Child(string name)
    {
        var target = Targets.First(t => t.Name == name);
        var line = target.Work();
        Console.WriteLine($"{line} peak_ws_mb={Process.GetCurrentProcess().PeakWorkingSet64 / 1048576}");
        return 0;
    }

    /// <summary>Runs every target (or the named ones) 3 times in fresh processes; prints medians.</summary>
    public static int Run(string[] names)
    {
        var dll = typeof(ScaleHarness).Assembly.Location;
        var chosen = names.Length == 0 ? Targets : Targets.Where(t => names.Contains(t.Name)).ToArray();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}");
        foreach (var t in chosen)
        {
            var runs = new List<Dictionary<string, string>>();
            for (var i = 0; i < 3; i++)
            {
                var psi = new ProcessStartInfo("dotnet", [dll, "scale-child", t.Name])
                {
                    RedirectStandardOutput = true,
                    UseShellExecute = false,
                };
                psi.Environment["DOTNET_gcServer"] = "0";
                using var p = Process.Start(psi)!;
                var output = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit();
                runs.Add(output.Split(' ').Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]));
            }
            string Median(string key) =>
                runs.Select(r => double.Parse(r[key], CultureInfo.InvariantCulture)).Order().ElementAt(1).ToString("0.#", CultureInfo.InvariantCulture);
            Console.WriteLine($"{t.What}");
            Console.WriteLine($"  |V|={runs[0]["vertices"]} |E|={runs[0]["edges"]} commands={runs[0]["commands"]}  median of 3: build {Median("build_ms")} ms, elimination {Median("elim_ms")} ms, total {Median("total_ms")} ms, one more moment {Median("one_more_moment_ms")} ms, peak {Median("peak_ws_mb")} MB");
        }
        return 0;
    }
}
