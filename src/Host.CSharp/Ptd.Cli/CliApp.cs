namespace Ptd.Cli;

/// <summary>Entry point of the <c>ptd</c> command.</summary>
public static class CliApp
{
    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("ptd: not implemented yet");
        return 2;
    }
}
