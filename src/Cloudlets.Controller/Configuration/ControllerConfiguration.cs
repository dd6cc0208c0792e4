using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using Cloudlets.Core.Options;
using Microsoft.Extensions.Configuration;

namespace Cloudlets.Controller.Configuration;

/// <summary>
/// Binds <see cref="ControllerOptions"/> from configuration and validates them, listing every error
/// with its path: unknown settings and values that do not convert (the configuration binder stops
/// at the first of those, so they are found here by walking the section against the options' types
/// first), then every rule of the options (<see cref="IValidatableOptions"/>).
/// </summary>
public static class ControllerConfiguration
{
    /// <summary>Binds and validates the <c>Controller</c> section of <paramref name="configuration"/>.</summary>
    /// <exception cref="OptionsValidationException">Anything is wrong; every error is listed with its path.</exception>
    public static ControllerOptions Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var errors = new OptionsErrors();
        var options = TryLoad(configuration, errors);
        errors.ThrowIfAny(nameof(ControllerOptions));
        return options!;
    }

    /// <summary>Binds and validates; adds every error to <paramref name="errors"/> and returns the options, or <see langword="null"/> when they could not be bound.</summary>
    public static ControllerOptions? TryLoad(IConfiguration configuration, OptionsErrors errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(errors);
        var section = configuration.GetSection(ControllerOptions.SectionName);
        if (!section.Exists())
        {
            errors.Add(ControllerOptions.SectionName, "is missing: the configuration has no 'Controller' section (see controller.example.json).");
            return null;
        }

        var bad = new List<string>();
        Walk(section, typeof(ControllerOptions), "", errors, bad);
        if (bad.Count > 0)
        {
            // The binder would stop at the first of these: bind the rest, so the rules below list their errors too.
            var rest = section.AsEnumerable()
                .Where(kv => kv.Value is not null && !bad.Any(b => kv.Key == b || kv.Key.StartsWith(b + ":", StringComparison.OrdinalIgnoreCase)))
                .ToList();
            section = new ConfigurationBuilder().AddInMemoryCollection(rest).Build().GetSection(ControllerOptions.SectionName);
        }

        var options = new ControllerOptions();
        try
        {
            section.Bind(options, b => b.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            errors.Add(ControllerOptions.SectionName, ex.Message);
            return null;
        }

        options.Validate(errors);
        return options;
    }

    private static void Walk(IConfigurationSection section, Type type, string path, OptionsErrors errors, List<string> bad)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsLeaf(type))
        {
            if (section.Value is null)
            {
                if (section.GetChildren().Any())
                {
                    errors.Add(path, $"takes a single value ({Describe(type)}), not an object or a list.");
                    bad.Add(section.Path);
                }

                return;
            }

            if (!CheckValue(section.Value, type, path, errors))
            {
                bad.Add(section.Path);
            }

            return;
        }

        if (DictionaryValueType(type) is { } value)
        {
            foreach (var child in section.GetChildren())
            {
                Walk(child, value, ControllerOptions.Path($"{path}[{child.Key}]"), errors, bad);
            }

            return;
        }

        if (ElementType(type) is { } element)
        {
            foreach (var child in section.GetChildren())
            {
                var at = ControllerOptions.Path($"{path}[{child.Key}]");
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    errors.Add(path, $"is a list; '{child.Key}' is not an index (write a JSON array).");
                    bad.Add(child.Path);
                    continue;
                }

                Walk(child, element, at, errors, bad);
            }

            if (section.Value is { Length: > 0 } && !section.GetChildren().Any())
            {
                errors.Add(path, "is a list, not a single value.");
                bad.Add(section.Path);
            }

            return;
        }

        if (section.Value is { Length: > 0 } && !section.GetChildren().Any())
        {
            errors.Add(path, $"is an object ({type.Name}), not a single value.");
            bad.Add(section.Path);
            return;
        }

        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            var at = path.Length == 0 ? child.Key : path + "." + child.Key;
            if (!properties.TryGetValue(child.Key, out var property))
            {
                errors.Add(at, $"is not a setting of {(path.Length == 0 ? ControllerOptions.SectionName : path)} (known: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))}).");
                bad.Add(child.Path);
                continue;
            }

            Walk(child, property.PropertyType, path.Length == 0 ? property.Name : path + "." + property.Name, errors, bad);
        }
    }

    private static bool IsLeaf(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri) || type == typeof(DateTimeOffset);

    private static Type? DictionaryValueType(Type type)
    {
        if (!type.IsGenericType || type.GetGenericArguments().Length != 2)
        {
            return null;
        }

        var definition = type.GetGenericTypeDefinition();
        return definition == typeof(IDictionary<,>) || definition == typeof(IReadOnlyDictionary<,>) || definition == typeof(Dictionary<,>)
            ? type.GetGenericArguments()[1]
            : null;
    }

    private static Type? ElementType(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type))
        {
            return null;
        }

        if (type.IsArray)
        {
            return type.GetElementType();
        }

        return type.IsGenericType ? type.GetGenericArguments()[0] : null;
    }

    private static bool CheckValue(string value, Type type, string path, OptionsErrors errors)
    {
        if (type == typeof(string))
        {
            return true;
        }

        if (type.IsEnum)
        {
            // The binder accepts names case-insensitively; numbers are refused here because they hide typos.
            if (!Enum.GetNames(type).Contains(value, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add(path, $"is '{value}', not one of {string.Join(", ", Enum.GetNames(type))}.");
                return false;
            }

            return true;
        }

        if (type == typeof(Uri))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out _))
            {
                errors.Add(path, $"'{value}' is not an absolute URI.");
                return false;
            }

            return true;
        }

        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or NotSupportedException or OverflowException || ex.InnerException is FormatException or OverflowException)
        {
            errors.Add(path, $"'{value}' is not {Describe(type)}.");
            return false;
        }
    }

    private static string Describe(Type type) =>
        type == typeof(TimeSpan) ? "a duration (hh:mm:ss, for example 00:00:05, or d.hh:mm:ss)"
        : type == typeof(bool) ? "true or false"
        : type == typeof(int) || type == typeof(long) ? "a whole number"
        : type == typeof(double) ? "a number"
        : "a " + type.Name;
}
