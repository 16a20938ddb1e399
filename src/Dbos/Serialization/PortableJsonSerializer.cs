using System.Diagnostics.CodeAnalysis;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Dbos;

/// <summary>
/// The <c>portable_json</c> format shared by every DBOS implementation: plain JSON values, with .NET's
/// web conventions (camelCase property names, case-insensitive reading, numbers readable from strings,
/// ISO 8601 dates, big integers as decimal strings), so values written by a TypeScript or Python application read naturally in .NET and back.
/// </summary>
/// <remarks>
/// Types are resolved through <see cref="JsonSerializerOptions.TypeInfoResolver"/>. Without one, reflection
/// is used where the runtime allows it. Where it does not (trimmed or native AOT applications), only strings, numbers,
/// booleans, <see cref="Guid"/>, dates, times and <see cref="JsonElement"/> are handled: pass options whose resolver
/// is a source-generated <c>JsonSerializerContext</c> covering your workflow and step types.
/// </remarks>
public sealed class PortableJsonSerializer : IDbosSerializer
{
    /// <summary>The name stored in the <c>serialization</c> column: <c>portable_json</c>.</summary>
    public const string FormatName = "portable_json";

    private readonly JsonSerializerOptions options;

    /// <summary>
    /// Creates the serializer with .NET's web defaults, escaping only what JSON requires (as JavaScript's
    /// <c>JSON.stringify</c> does), since stored values are never embedded in HTML.
    /// </summary>
    public PortableJsonSerializer()
        : this(new JsonSerializerOptions(JsonSerializerDefaults.Web) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
    {
    }

    /// <summary>Creates the serializer with the given options (converters, naming, a source-generated resolver).</summary>
    /// <param name="options">The options; they are frozen on first use.</param>
    public PortableJsonSerializer(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.TypeInfoResolver ??= DefaultResolver();
        if (!options.IsReadOnly && !options.Converters.Any(c => c.CanConvert(typeof(System.Numerics.BigInteger))))
        {
            options.Converters.Add(new Serialization.BigIntegerJsonConverter());
        }

        if (!options.IsReadOnly && !options.Converters.Any(c => c.CanConvert(typeof(string))))
        {
            options.Converters.Add(new Serialization.ValidStringJsonConverter());
        }

        options.MakeReadOnly();
        this.options = options;
    }

    /// <summary>A serializer with .NET's web defaults.</summary>
    public static PortableJsonSerializer Default { get; } = new();

    /// <summary>The options values are converted with.</summary>
    public JsonSerializerOptions Options => options;

    /// <inheritdoc />
    public string Name => FormatName;

    /// <inheritdoc />
    public string Serialize(object? value, Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return JsonSerializer.Serialize(value, options.GetTypeInfo(type));
    }

    /// <inheritdoc />
    public object? Deserialize(string text, Type type)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(type);
        return JsonSerializer.Deserialize(text, options.GetTypeInfo(type));
    }

    /// <summary>Converts a value to a <see cref="JsonElement"/> (used to build envelopes around values).</summary>
    internal JsonElement ToElement(object? value, Type type) => JsonSerializer.SerializeToElement(value, options.GetTypeInfo(type));

    /// <summary>Converts a <see cref="JsonElement"/> to a value of <paramref name="type"/>.</summary>
    internal object? FromElement(JsonElement element, Type type) => element.Deserialize(options.GetTypeInfo(type));

    // Without reflection a resolver is still needed: options without one cannot be made read-only, and Default (which
    // the library reads portable JSON with) would fail to initialize.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Reflection is only used when the runtime enables it (JsonSerializer.IsReflectionEnabledByDefault); AOT users pass a source-generated resolver.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Reflection is only used when the runtime enables it (JsonSerializer.IsReflectionEnabledByDefault); AOT users pass a source-generated resolver.")]
    private static IJsonTypeInfoResolver DefaultResolver() =>
        JsonSerializer.IsReflectionEnabledByDefault ? new DefaultJsonTypeInfoResolver() : Serialization.PrimitiveJsonContext.Default;
}
