namespace Cloudlets.Probing.Commands;

/// <summary>
/// Finds the program of a <see cref="CommandLine"/> in a fixed search path, so a command never runs a
/// file from the current directory, from the application's folder, or from whatever <c>PATH</c> the
/// process inherited. Used by <see cref="LocalCommandRunner"/> for every command it starts.
/// </summary>
/// <remarks>
/// A bare name (<c>ip</c>) is looked up in <see cref="SearchPath"/>, in order, and the first regular
/// file with an execute bit wins. An absolute path is used as given when it names such a file. A
/// relative path (<c>./ip</c>, <c>bin/ip</c>) is refused: it would depend on the current directory.
/// </remarks>
public static class CommandPath
{
    /// <summary>
    /// The folders searched for a bare program name, in order: <c>/usr/local/sbin</c>,
    /// <c>/usr/local/bin</c>, <c>/usr/sbin</c>, <c>/usr/bin</c>, <c>/sbin</c>, <c>/bin</c> (Debian's
    /// root <c>PATH</c>). Never the current directory.
    /// </summary>
    public static IReadOnlyList<string> SearchPath { get; } =
        ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary><see cref="SearchPath"/> as a <c>PATH</c> value, given to child processes so that what they run by name is found the same way.</summary>
    public static string SearchPathVariable { get; } = string.Join(':', SearchPath);

    /// <summary>The absolute path of <paramref name="program"/>.</summary>
    /// <exception cref="CommandNotFoundException">No such program in the search path, a relative path, or not an executable file.</exception>
    public static string Resolve(string program)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (program.Length == 0 || program.Contains('\0', StringComparison.Ordinal))
        {
            throw new CommandNotFoundException(program, "a program name must be non-empty and hold no NUL character.");
        }

        if (Path.IsPathRooted(program))
        {
            return IsExecutableFile(program)
                ? program
                : throw new CommandNotFoundException(program, "no executable file at that path.");
        }

        if (program.Contains('/', StringComparison.Ordinal) || program is "." or "..")
        {
            throw new CommandNotFoundException(program, "a relative path depends on the current directory; give a bare name or an absolute path.");
        }

        foreach (var folder in SearchPath)
        {
            var candidate = Path.Combine(folder, program);
            if (IsExecutableFile(candidate))
            {
                return candidate;
            }
        }

        throw new CommandNotFoundException(program, $"not found in {SearchPathVariable}; is it installed?");
    }

    private static bool IsExecutableFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return false;
            }

            if (OperatingSystem.IsWindows())
            {
                return true;
            }

            const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            return (info.UnixFileMode & anyExecute) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
