namespace Ptd.Cli.Commands;

/// <summary>One <c>ptd</c> sub-command.</summary>
public interface ICommand
{
    /// <summary>The word after <c>ptd</c>.</summary>
    string Name { get; }

    /// <summary>One line for the command list.</summary>
    string Summary { get; }

    /// <summary>Full usage text for <c>ptd NAME --help</c>.</summary>
    string Usage { get; }

    /// <summary>Runs the command; returns the exit code.</summary>
    int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr);
}
