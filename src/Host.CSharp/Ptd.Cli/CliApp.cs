using System.Reflection;
using Ptd.Cli.Commands;
using Ptd.Core;

namespace Ptd.Cli;

/// <summary>Entry point of the <c>ptd</c> command: dispatch, help, and the error policy.</summary>
public static class CliApp
{
    /// <summary>Exit code for bad input (usage, model, data).</summary>
    public const int BadInput = 2;

    /// <summary>Exit code for an unexpected internal failure (a bug: please report it).</summary>
    public const int InternalError = 70;

    /// <summary>Every command, in help order.</summary>
    public static IReadOnlyList<ICommand> Commands { get; } =
    [
        new DemoCommand(), new ModelCommand(), new InfoCommand(), new MomentsCommand(), new PdfCommand(),
        new PmfCommand(), new SampleCommand(),
        new TraceCommand(),
        new LoglikCommand(),
        new Commands.Cache.CacheCommand(),
        new SimulateCommand(),
        new InferCommand(),
    ];

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command line against the given writers (used by tests).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            if (args.Length > 1 && Find(args[1]) is { } c) stdout.WriteLine(c.Usage);
            else stdout.WriteLine(GeneralHelp());
            return 0;
        }
        if (args[0] is "--version" or "version")
        {
            stdout.WriteLine($"ptd {Version}");
            return 0;
        }
        var command = Find(args[0]);
        if (command is null)
        {
            stderr.WriteLine($"ptd: unknown command '{args[0]}'. Commands: {string.Join(", ", Commands.Select(c => c.Name))} (ptd --help)");
            return BadInput;
        }
        var rest = args.Skip(1).ToArray();
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            stdout.WriteLine(command.Usage);
            return 0;
        }
        var verbose = rest.Contains("--verbose");
        try
        {
            return command.Run(rest, stdout, stderr);
        }
        catch (UsageException ex)
        {
            stderr.WriteLine($"ptd {command.Name}: {ex.Message}");
            return BadInput;
        }
        catch (PtdException ex)
        {
            stderr.WriteLine($"ptd {command.Name}: {ex.Message}");
            return BadInput;
        }
        catch (OutOfMemoryException)
        {
            stderr.WriteLine($"ptd {command.Name}: out of memory — the model is too large for this machine (try a smaller model)");
            return BadInput;
        }
        catch (Exception ex)
        {
            stderr.WriteLine($"ptd {command.Name}: internal error ({ex.GetType().Name}): {ex.Message}");
            stderr.WriteLine(verbose ? ex.ToString() : "This is a bug in ptd; rerun with --verbose for details and please report it.");
            return InternalError;
        }
    }

    private static ICommand? Find(string name) => Commands.FirstOrDefault(c => c.Name == name);

    private static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static string GeneralHelp()
    {
        var lines = Commands.Select(c => $"  {c.Name,-10} {c.Summary}");
        return "ptd — phase-type distributions from state-transition graphs\n\n" +
               "Usage: ptd COMMAND [options]     (ptd COMMAND --help for details)\n\nCommands:\n" +
               string.Join("\n", lines) +
               "\n\nMODEL arguments accept a model file (docs/model-format.md) or a built-in spec such as\n" +
               "coalescent:n=50, rabbits:R=500, rabbits3:R=10, erlang:k=3,rate=2, exponential, twodeme:n=2.\n" +
               "Every command takes --verbose (stage timings on stderr); results go to stdout.\n" +
               "Exit codes: 0 success, 2 bad input, 70 internal error.";
    }
}
