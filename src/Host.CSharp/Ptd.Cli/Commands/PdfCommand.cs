using System.Text.Json.Nodes;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd pdf MODEL --times 0.5,1,2</c>: density and distribution function (continuous).</summary>
public sealed class PdfCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "pdf";

    /// <inheritdoc />
    public string Summary => "density and cdf of a continuous model at given times";

    /// <inheritdoc />
    public string Usage =>
        "ptd pdf MODEL --times 0.5,1,2 [--theta ...] [--method exact|euler] [--granularity G] [--tolerance E] [--json]\n\n" +
        "  --method exact   uniformization, all times in one sweep, error ≤ tolerance (default 1e-12)\n" +
        "  --method euler   the original libraries' Euler scheme (granularity G, default 2·max(512, max rate));\n" +
        "                   reproduces their numbers, ≈1e-3 relative error";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--times", "--theta", "--method", "--granularity", "--tolerance"], ["--json"]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var times = args.Doubles("--times") ?? throw new UsageException("missing --times (e.g. --times 0.5,1,2)");
        var method = (args.Get("--method") ?? "exact") switch
        {
            "exact" => DensityMethod.Exact,
            "euler" => DensityMethod.Euler,
            var m => throw new UsageException($"--method {m}: expected exact or euler"),
        };
        var granularity = args.Double("--granularity");
        if (granularity is not null && method != DensityMethod.Euler)
            throw new UsageException("--granularity applies to --method euler only");
        var tolerance = args.Double("--tolerance") ?? 1e-12;
        if (tolerance is <= 0 or >= 1) throw new UsageException($"--tolerance {tolerance}: must be in (0, 1)");
        var model = output.Stage("load model", () => PhaseTypeModel.Load(args.Positional("MODEL")));
        var theta = Theta.For(model.Graph, args);
        var result = output.Stage($"{method.ToString().ToLowerInvariant()} pdf at {times.Length} time(s)",
            () => model.Pdf(times, theta, method, granularity, tolerance));
        if (args.Has("--json"))
        {
            output.Json(new JsonObject
            {
                ["times"] = output.Numbers(result.Points),
                ["pdf"] = output.Numbers(result.Density),
                ["cdf"] = output.Numbers(result.Cumulative),
            });
        }
        else
        {
            stdout.WriteLine($"{"t",-12} {"pdf",-24} {"cdf",-24}");
            for (var i = 0; i < result.Points.Count; i++)
                stdout.WriteLine($"{Output.Num(result.Points[i]),-12} {Output.Num(result.Density[i]),-24} {Output.Num(result.Cumulative[i]),-24}");
        }
        return 0;
    }
}
