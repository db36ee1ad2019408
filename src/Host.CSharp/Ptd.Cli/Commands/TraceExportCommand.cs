using Ptd.Core;
using Ptd.Host.Models;
using Ptd.Host.Traces;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd trace export FILE --json [-o out.json]</c> (a sub-command of <see cref="TraceCommand"/>).</summary>
public sealed class TraceExportCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "export";

    /// <inheritdoc />
    public string Summary => "export a trace as JSON";

    /// <inheritdoc />
    public string Usage => "ptd trace export FILE|MODEL --json [-o OUT.json] [--no-cache] [--verbose]";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse("trace export", argv, ["--output"], ["--json", TraceCli.NoCache],
            new Dictionary<string, string> { ["-o"] = "--output" });
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var source = args.Positional("FILE");
        if (!args.Has("--json"))
            throw new UsageException("pass --json: JSON is the export format (the binary form is what ptd trace record writes)");
        using var store = TraceCli.OpenStore(args, output);
        var model = output.Stage("load", () => PhaseTypeModel.Load(source, store));
        var lookup = TraceCli.Trace(model, output);
        var file = args.Get("--output");
        if (file is null)
        {
            stdout.Write(output.Stage("export", () => TraceJson.export(lookup.Trace)));
        }
        else
        {
            var bytes = output.Stage($"write {file}", () => TraceFile.SaveJson(lookup.Trace, file));
            stderr.WriteLine($"wrote {file}: {bytes:N0} bytes");
        }
        TraceCli.Statistics(store, output);
        return 0;
    }
}
