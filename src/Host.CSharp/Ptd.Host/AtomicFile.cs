using System.Text;
using Ptd.Core;

namespace Ptd.Host;

/// <summary>
/// Writes user-facing output files (models, traces, results, data) so that a reader never sees half a file:
/// a temporary file in the same directory, then a rename over the target. Failures become
/// <see cref="PtdException"/>s naming the file, and the temporary file is removed.
/// </summary>
internal static class AtomicFile
{
    /// <summary>UTF-8 without a byte-order mark, as <see cref="File.WriteAllText(string, string)"/> writes.</summary>
    public static void WriteText(string path, string text) => Write(path, new UTF8Encoding(false).GetBytes(text));

    public static void Write(string path, byte[] bytes)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new PtdException("no output file given");
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir))
            throw new PtdException($"cannot write '{path}': the directory '{dir}' does not exist");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new PtdException($"cannot write '{path}': {ex.Message}", ex);
        }
    }
}
