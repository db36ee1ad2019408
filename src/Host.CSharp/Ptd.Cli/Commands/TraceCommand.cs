namespace Ptd.Cli.Commands;

/// <summary><c>ptd trace record|info|export</c>: elimination traces as files.</summary>
public sealed class TraceCommand : ICommand
{
    private static readonly ICommand[] Subcommands = [new TraceRecordCommand(), new TraceInfoCommand(), new TraceExportCommand()];

    /// <inheritdoc />
    public string Name => "trace";

    /// <inheritdoc />
    public string Summary => "record an elimination trace to a file, describe it, export it as JSON";

    /// <inheritdoc />
    public string Usage =>
        "ptd trace record MODEL -o FILE.ptdt     record (or fetch from the cache) and write the binary trace\n" +
        "ptd trace info FILE [--json]            ops by kind, outputs, parameters, commands, key\n" +
        "ptd trace export FILE --json [-o OUT]   the trace as JSON (stdout without -o)\n\n" +
        "A trace file (binary or JSON, recognized by content) is accepted wherever a MODEL is: ptd moments\n" +
        "model.ptdt --theta 1 replays it without eliminating. info and export also take a MODEL (its trace comes\n" +
        "from the cache or is recorded). Options common to all: --no-cache, --verbose. See docs/trace-format.md.";

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || args[0].StartsWith('-'))
            throw new UsageException($"missing sub-command: record, info or export (ptd trace --help)");
        var sub = Subcommands.FirstOrDefault(c => c.Name == args[0])
                  ?? throw new UsageException($"unknown sub-command '{args[0]}': expected record, info or export (ptd trace --help)");
        return sub.Run(args.Skip(1).ToArray(), stdout, stderr);
    }
}
