using System.Text.Json.Nodes;
using Ptd.Core;
using Ptd.Host.Models;
using Ptd.Host.Traces;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd trace record MODEL -o model.ptdt</c> (a sub-command of <see cref="TraceCommand"/>).</summary>
public sealed class TraceRecordCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "record";

    /// <inheritdoc />
    public string Summary => "record a model's elimination trace to a binary file";

    /// <inheritdoc />
    public string Usage => "ptd trace record MODEL -o FILE.ptdt [--json] [--no-cache] [--verbose]";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse("trace record", argv, ["--output"], ["--json", TraceCli.NoCache],
            new Dictionary<string, string> { ["-o"] = "--output" });
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var source = args.Positional("MODEL");
        var file = args.Get("--output") ?? throw new UsageException($"missing -o FILE (e.g. -o model{TraceFile.Extension}): the binary trace is not written to the terminal");
        using var store = TraceCli.OpenStore(args, output);
        var model = output.Stage("load model", () => PhaseTypeModel.Load(source, store));
        var lookup = TraceCli.Trace(model, output);
        var bytes = output.Stage($"write {file}", () => TraceFile.Save(lookup.Trace, file));
        var stats = TraceStatsModule.compute(lookup.Trace);
        if (args.Has("--json"))
        {
            output.Json(new JsonObject
            {
                ["file"] = file,
                ["bytes"] = bytes,
                ["key"] = lookup.Key.Hex,
                ["ops"] = stats.Ops,
                ["commands"] = stats.Commands,
                ["parameters"] = stats.Parameters,
                ["cached"] = lookup.IsHit,
            });
        }
        else
        {
            stdout.WriteLine($"wrote {file}: {bytes:N0} bytes, {stats.Ops:N0} ops, {stats.Commands:N0} commands, {stats.Parameters} parameter(s)");
            stdout.WriteLine($"key {lookup.Key.Hex} ({(lookup.IsHit ? "from the cache" : "recorded")})");
        }
        TraceCli.Statistics(store, output);
        return 0;
    }
}
