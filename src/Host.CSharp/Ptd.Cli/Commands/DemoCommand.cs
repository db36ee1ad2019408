using System.Diagnostics;
using Ptd.Core;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd demo</c>: the main job in one command, with the closed forms printed beside it.</summary>
public sealed class DemoCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "demo";

    /// <inheritdoc />
    public string Summary => "build a coalescent model, print its moments and a density table";

    /// <inheritdoc />
    public string Usage => "ptd demo [--n 10]\n\nRuns on the built-in Kingman coalescent; needs no files or servers.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--n"], []);
        var n = args.Int("--n", 10, 2, 60);
        double[] theta = [1.0];
        var clock = Stopwatch.StartNew();
        stdout.WriteLine($"PtdPipeline demo — Kingman coalescent with n = {n} samples (block-counting states)");
        stdout.WriteLine();

        var model = new PhaseTypeModel(Models.coalescent(n, Microsoft.FSharp.Core.FSharpOption<double>.None));
        var info = model.Info();
        stdout.WriteLine($"1. model      {info.Vertices:N0} vertices, {info.Edges:N0} edges, acyclic: {(info.IsAcyclic ? "yes" : "no")}, " +
                         $"{info.Parameters} parameter (θ = pair-coalescence rate) — built in {clock.Elapsed.TotalMilliseconds:F0} ms");

        var started = clock.Elapsed;
        var elimination = model.Eliminate(theta);
        stdout.WriteLine($"2. eliminate  {elimination.Count:N0} reward commands in {(clock.Elapsed - started).TotalMilliseconds:F1} ms (θ = 1)");
        stdout.WriteLine();

        var time = model.Moments(theta, 3);
        var harmonic = Enumerable.Range(1, n - 1).Sum(i => 1.0 / i);
        var varT = Enumerable.Range(2, n - 1).Sum(k => Math.Pow(2.0 / (k * (k - 1.0)), 2));
        stdout.WriteLine("3. moments                           computed                closed form");
        stdout.WriteLine($"   E[T_MRCA]                         {Output.Num(time.Mean),-23} {Output.Num(2 * (1 - 1.0 / n))}");
        stdout.WriteLine($"   Var[T_MRCA]                       {Output.Num(time.Variance),-23} {Output.Num(varT)}");
        var lineages = Enumerable.Range(0, model.Graph.VertexCount)
            .Select(v => v == 0 ? 0.0 : model.Graph.State(v).Sum()).ToArray();
        var length = model.Moments(theta, 2, lineages);
        var varL = 4 * Enumerable.Range(1, n - 1).Sum(i => 1.0 / (i * (double)i));
        stdout.WriteLine($"   E[total branch length]            {Output.Num(length.Mean),-23} {Output.Num(2 * harmonic)}");
        stdout.WriteLine($"   Var[total branch length]          {Output.Num(length.Variance),-23} {Output.Num(varL)}");
        var singletons = model.Moments(theta, 1, model.Reward(0));
        stdout.WriteLine($"   E[singleton branch length] (SFS)  {Output.Num(singletons.Mean),-23} {Output.Num(2.0)}");
        stdout.WriteLine();

        double[] times = [0.25, 0.5, 1, 1.5, 2, 3, 4, 6];
        started = clock.Elapsed;
        var exact = model.Pdf(times, theta);
        var exactMs = (clock.Elapsed - started).TotalMilliseconds;
        var euler = model.Pdf(times, theta, DensityMethod.Euler);
        stdout.WriteLine($"4. density of T_MRCA (exact uniformization, all times in one sweep: {exactMs:F1} ms)");
        stdout.WriteLine("   t      pdf                     cdf                     Euler g=1024 pdf (originals)");
        for (var i = 0; i < times.Length; i++)
            stdout.WriteLine($"   {Output.Num(times[i]),-6} {Output.Num(exact.Density[i]),-23} {Output.Num(exact.Cumulative[i]),-23} {Output.Num(euler.Density[i])}");
        stdout.WriteLine();
        stdout.WriteLine($"done in {clock.Elapsed.TotalSeconds:F2} s. Next: `ptd --help`, docs/cli.md, docs/model-format.md.");
        return 0;
    }
}
