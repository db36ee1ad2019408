using System.Text.Json.Nodes;
using Ptd.Core;
using Ptd.Host.Models;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd trace info FILE</c> (a sub-command of <see cref="TraceCommand"/>): the trace's statistics.</summary>
public sealed class TraceInfoCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "info";

    /// <inheritdoc />
    public string Summary => "describe a trace: ops by kind, outputs, parameters, commands, key";

    /// <inheritdoc />
    public string Usage => "ptd trace info FILE|MODEL [--json] [--no-cache] [--verbose]";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse("trace info", argv, [], ["--json", TraceCli.NoCache]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var source = args.Positional("FILE");
        using var store = TraceCli.OpenStore(args, output);
        var model = output.Stage("load", () => PhaseTypeModel.Load(source, store));
        var lookup = TraceCli.Trace(model, output);
        var s = TraceStatsModule.compute(lookup.Trace);
        var g = lookup.Trace.Model;
        if (args.Has("--json"))
        {
            var byKind = new JsonObject();
            foreach (var (name, count) in s.OpsByKind) byKind[name] = count;
            output.Json(new JsonObject
            {
                ["key"] = lookup.Key.Hex,
                ["revision"] = TraceModule.FormatRevision,
                ["discrete"] = g.IsDiscrete,
                ["parameters"] = s.Parameters,
                ["vertices"] = s.Vertices,
                ["edges"] = s.Edges,
                ["ops"] = s.Ops,
                ["opsByKind"] = byKind,
                ["commands"] = s.Commands,
                ["outputs"] = s.Outputs,
                ["constants"] = s.Constants,
                ["dotRows"] = s.DotRows,
                ["sumOperands"] = s.SumOperands,
            });
        }
        else
        {
            stdout.WriteLine($"trace:        {source}");
            stdout.WriteLine($"key:          {lookup.Key.Hex}");
            stdout.WriteLine($"revision:     {TraceModule.FormatRevision}");
            stdout.WriteLine($"model:        {(g.IsDiscrete ? "discrete" : "continuous")}, {s.Vertices:N0} vertices, {s.Edges:N0} edges, {s.Parameters} parameter(s)");
            stdout.WriteLine($"ops:          {s.Ops:N0}");
            foreach (var (name, count) in s.OpsByKind.Where(k => k.Item2 > 0))
                stdout.WriteLine($"  {name,-11} {count:N0}");
            stdout.WriteLine($"commands:     {s.Commands:N0}");
            stdout.WriteLine($"outputs:      {s.Outputs:N0} ({s.Commands:N0} multipliers, {s.Edges:N0} edge weights, {s.Vertices:N0} vertex rates)");
            stdout.WriteLine($"constants:    {s.Constants:N0}, dot rows {s.DotRows:N0}, sum operands {s.SumOperands:N0}");
        }
        TraceCli.Statistics(store, output);
        return 0;
    }
}
