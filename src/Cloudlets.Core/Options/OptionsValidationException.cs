using System.Globalization;
using System.Text;

namespace Cloudlets.Core.Options;

/// <summary>One invalid option: where it is (a property path such as <c>Executor.MaxConcurrent</c>) and what is wrong.</summary>
/// <param name="Path">The property path from the options object that was validated.</param>
/// <param name="Message">What is wrong and what is allowed, in one sentence.</param>
public sealed record OptionsError(string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString() => Path + ": " + Message;
}

/// <summary>
/// The one exception for invalid options of every public type of the Cloudlets packages. It lists
/// every error with its property path, not only the first, and is thrown when the thing is built,
/// before anything connects, starts or changes.
/// </summary>
public sealed class OptionsValidationException : ArgumentException
{
    /// <summary>Creates the exception for <paramref name="optionsType"/> with its errors.</summary>
    public OptionsValidationException(string optionsType, IReadOnlyList<OptionsError> errors)
        : base(Describe(optionsType, errors))
    {
        OptionsType = optionsType;
        Errors = errors;
    }

    /// <summary>Creates the exception with a message and no listed errors.</summary>
    public OptionsValidationException()
        : this("options", [])
    {
    }

    /// <summary>Creates the exception with a message and no listed errors.</summary>
    public OptionsValidationException(string message)
        : base(message)
    {
        OptionsType = "options";
        Errors = [];
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public OptionsValidationException(string message, Exception innerException)
        : base(message, innerException)
    {
        OptionsType = "options";
        Errors = [];
    }

    /// <summary>The name of the options type that was validated.</summary>
    public string OptionsType { get; }

    /// <summary>Every error found, in the order the properties were checked.</summary>
    public IReadOnlyList<OptionsError> Errors { get; }

    private static string Describe(string optionsType, IReadOnlyList<OptionsError> errors)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{optionsType} is invalid ({errors.Count} error{(errors.Count == 1 ? "" : "s")}):");
        foreach (var error in errors)
        {
            text.Append("\n  ").Append(error);
        }

        return text.ToString();
    }
}
