using System.Globalization;

namespace Cloudlets.Core.Options;

/// <summary>
/// Options that validate themselves into an <see cref="OptionsErrors"/> collector, so nested options
/// report their errors under their parent's path (<c>Executor.MaxConcurrent</c>).
/// </summary>
public interface IValidatableOptions
{
    /// <summary>Adds every error of this object to <paramref name="errors"/>; adds nothing when valid.</summary>
    void Validate(OptionsErrors errors);
}

/// <summary>
/// Collects every error of an options object with its property path. The convention of every
/// options type in these packages: a settable class whose properties document their default and
/// range; the thing it configures calls <see cref="ValidateAndThrow"/> once, when it is built, and
/// keeps what it needs from the validated object.
/// </summary>
/// <example>
/// <code>
/// public void Validate(OptionsErrors errors)
/// {
///     errors.InRange(nameof(Period), Period, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1));
///     errors.Nested(nameof(Executor), Executor);
/// }
/// </code>
/// </example>
public sealed class OptionsErrors
{
    private readonly List<OptionsError> _errors;
    private readonly string _prefix;

    /// <summary>Creates an empty collector whose paths start at the root of the validated object.</summary>
    public OptionsErrors()
        : this([], "")
    {
    }

    private OptionsErrors(List<OptionsError> errors, string prefix)
    {
        _errors = errors;
        _prefix = prefix;
    }

    /// <summary>Every error so far.</summary>
    public IReadOnlyList<OptionsError> Errors => _errors;

    /// <summary>Whether any error was added.</summary>
    public bool HasErrors => _errors.Count > 0;

    /// <summary>Validates <paramref name="options"/> and throws <see cref="OptionsValidationException"/> listing every error.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="OptionsValidationException">At least one option is invalid.</exception>
    public static void ValidateAndThrow<T>(T options)
        where T : IValidatableOptions
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new OptionsErrors();
        options.Validate(errors);
        errors.ThrowIfAny(typeof(T).Name);
    }

    /// <summary>Throws <see cref="OptionsValidationException"/> when any error was added.</summary>
    public void ThrowIfAny(string optionsType)
    {
        if (_errors.Count > 0)
        {
            throw new OptionsValidationException(optionsType, _errors.ToArray());
        }
    }

    /// <summary>Adds an error for <paramref name="property"/>.</summary>
    public void Add(string property, string message) => _errors.Add(new OptionsError(_prefix + property, message));

    /// <summary>Adds an error unless <paramref name="condition"/> holds.</summary>
    public void Require(bool condition, string property, string message)
    {
        if (!condition)
        {
            Add(property, message);
        }
    }

    /// <summary>Validates a nested options object under <c>property.</c>; a null one is an error when <paramref name="required"/>.</summary>
    public void Nested(string property, IValidatableOptions? options, bool required = true)
    {
        if (options is null)
        {
            if (required)
            {
                Add(property, "is required.");
            }

            return;
        }

        options.Validate(new OptionsErrors(_errors, _prefix + property + "."));
    }

    /// <summary>Validates each element of a list under <c>property[i].</c>.</summary>
    public void Each<T>(string property, IReadOnlyList<T>? items)
        where T : IValidatableOptions
    {
        if (items is null)
        {
            Add(property, "is required.");
            return;
        }

        for (var i = 0; i < items.Count; i++)
        {
            var path = string.Create(CultureInfo.InvariantCulture, $"{_prefix}{property}[{i}].");
            if (items[i] is null)
            {
                _errors.Add(new OptionsError(path.TrimEnd('.'), "is null."));
                continue;
            }

            items[i].Validate(new OptionsErrors(_errors, path));
        }
    }

    /// <summary>Requires a non-empty, non-whitespace string.</summary>
    public void NotEmpty(string property, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            Add(property, "must not be empty.");
        }
    }

    /// <summary>Requires <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public void InRange(string property, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            Add(property, string.Create(CultureInfo.InvariantCulture, $"is {value}; the range is [{min}, {max}]."));
        }
    }

    /// <summary>Requires <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public void InRange(string property, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            Add(property, string.Create(CultureInfo.InvariantCulture, $"is {value}; the range is [{min}, {max}]."));
        }
    }

    /// <summary>Requires a finite <paramref name="value"/> with <paramref name="min"/> ≤ value ≤ <paramref name="max"/>.</summary>
    public void InRange(string property, double value, double min, double max)
    {
        if (!double.IsFinite(value) || value < min || value > max)
        {
            Add(property, string.Create(CultureInfo.InvariantCulture, $"is {value}; the range is [{min}, {max}]."));
        }
    }

    /// <summary>Requires <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public void InRange(string property, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            Add(property, string.Create(CultureInfo.InvariantCulture, $"is {value}; the range is [{min}, {max}]."));
        }
    }

    /// <summary>Requires a defined enum value.</summary>
    public void Defined<TEnum>(string property, TEnum value)
        where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
        {
            Add(property, string.Create(CultureInfo.InvariantCulture, $"is {value}, not one of {string.Join(", ", Enum.GetNames<TEnum>())}."));
        }
    }
}
