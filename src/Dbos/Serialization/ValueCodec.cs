using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dbos.Serialization;

/// <summary>The arguments of a workflow of several parameters, with their declared types, in order.</summary>
internal sealed record PositionalArguments(object?[] Values, Type[] Types);

/// <summary>An error as recorded in the system database.</summary>
internal sealed record RecordedError(string Name, string Message, string? Code, IReadOnlyList<string> AttemptErrors);

/// <summary>
/// Encodes the values DBOS stores (workflow inputs, outputs, errors, step results) in the configured format, and
/// decodes rows by the format named in their <c>serialization</c> column: <c>portable_json</c>, the configured
/// serializer's own, and values written by the TypeScript SDK's default format where they are plain JSON inside.
/// </summary>
internal sealed class ValueCodec(IDbosSerializer serializer)
{
    private const string SuperJsonFormat = "js_superjson";

    /// <summary>The TypeScript SDK's default format's text for <c>undefined</c>, a function's output when it returns nothing.</summary>
    private const string SuperJsonUndefined = """{"json":null,"meta":{"values":["undefined"]},"__dbos_serializer":"superjson"}""";
    private static readonly PortableJsonSerializer Portable = PortableJsonSerializer.Default;

    public IDbosSerializer Serializer { get; } = serializer;

    /// <summary>The format name written with every value this application stores.</summary>
    public string Format => Serializer.Name;

    private bool IsPortable => Serializer is PortableJsonSerializer;

    // Portable JSON is read with the configured serializer when it is a PortableJsonSerializer: its options (converters,
    // naming, and the source-generated resolver a native AOT application depends on) are the ones values were written with.
    private PortableJsonSerializer PortableReader => Serializer as PortableJsonSerializer ?? Portable;

    /// <summary>
    /// Encodes a workflow's input: <c>{"positionalArgs":[input]}</c> in portable JSON (no input: an empty list), or each
    /// of several <see cref="PositionalArguments"/>, in order, as every DBOS implementation stores them.
    /// </summary>
    public string EncodeInputs(object? input, Type type, bool hasInput, string what)
    {
        if (input is PositionalArguments arguments)
        {
            if (!IsPortable)
            {
                throw new DbosSerializationException(
                    $"The {what} cannot be stored: a workflow of several arguments stores them as portable_json positional arguments, and the configured serializer '{Format}' is not portable JSON.");
            }

            var encoded = new string[arguments.Values.Length];
            for (var i = 0; i < encoded.Length; i++)
            {
                encoded[i] = Encode(arguments.Values[i], arguments.Types[i], $"{what} (argument {i + 1})");
            }

            return string.Concat("""{"positionalArgs":[""", string.Join(',', encoded), "]}");
        }

        var value = hasInput ? Encode(input, type, what) : null;
        if (!IsPortable)
        {
            return value ?? Serializer.Serialize(null, typeof(object));
        }

        return value is null ? """{"positionalArgs":[]}""" : string.Concat("""{"positionalArgs":[""", value, "]}");
    }

    /// <summary>
    /// Decodes the first positional argument of a stored input (default when there is none). With
    /// <paramref name="single"/>, any further argument is an error: a .NET workflow takes one input.
    /// </summary>
    public object? DecodeInputs(string? text, string? format, Type type, bool hasInput, string what, bool single = false)
    {
        if (!hasInput || text is null)
        {
            return null;
        }

        if (format == Serializer.Name && !IsPortable)
        {
            return Decode(text, format, type, what);
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var args = PositionalArgs(document.RootElement, format, refuseNamed: single);
            if (single && args.GetArrayLength() > 1)
            {
                throw new JsonException($"a .NET workflow takes one input, and {args.GetArrayLength()} positional arguments were given (pass one object instead)");
            }

            return args.GetArrayLength() == 0 ? null : PortableReader.FromElement(args[0], type);
        }
        catch (Exception ex) when (ex is not DbosException and not OutOfMemoryException)
        {
            throw new DbosSerializationException($"The stored input of {what} cannot be read as {type.Name} (format '{format ?? "unspecified"}'): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The <c>authenticated_roles</c> column's text: a JSON array of strings, as the TypeScript SDK writes it
    /// (<c>JSON.stringify(roles)</c>, <c>[]</c> for none).
    /// </summary>
    public static string EncodeRoles(IReadOnlyList<string>? roles)
    {
        if (roles is null || roles.Count == 0)
        {
            return "[]";
        }

        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartArray();
            foreach (var role in roles)
            {
                writer.WriteStringValue(role);
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Reads the <c>authenticated_roles</c> column (none when null, empty, or not a JSON array; non-string items are skipped).</summary>
    public static IReadOnlyList<string> DecodeRoles(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return [];
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return [];
            }

            var roles = new List<string>(document.RootElement.GetArrayLength());
            foreach (var item in document.RootElement.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String)
                {
                    roles.Add(item.GetString()!);
                }
            }

            return roles;
        }
        catch (JsonException)
        {
            // Written by someone else in another shape: no roles to report.
            return [];
        }
    }

    /// <summary>Decodes the positional argument at <paramref name="position"/> (counting from 0) of a stored input; default when there is none there.</summary>
    public object? DecodeInputAt(string? text, string? format, Type type, int position, string what)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var args = PositionalArgs(document.RootElement, format, refuseNamed: false);
            return position < args.GetArrayLength() ? PortableReader.FromElement(args[position], type) : null;
        }
        catch (Exception ex) when (ex is not DbosException and not OutOfMemoryException)
        {
            throw new DbosSerializationException($"The stored argument {position} of {what} cannot be read as {type.Name} (format '{format ?? "unspecified"}'): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Decodes every positional argument of a stored input, one per type of <paramref name="types"/>; a different count is
    /// an error, as are named arguments (which a .NET workflow cannot receive).
    /// </summary>
    public PositionalArguments DecodeArguments(string? text, string? format, Type[] types, string what)
    {
        try
        {
            if (text is null)
            {
                throw new JsonException("no input is stored");
            }

            using var document = JsonDocument.Parse(text);
            var args = PositionalArgs(document.RootElement, format, refuseNamed: true);
            if (args.GetArrayLength() != types.Length)
            {
                throw new JsonException($"the workflow takes {types.Length} arguments, and {args.GetArrayLength()} positional arguments were given");
            }

            var values = new object?[types.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = PortableReader.FromElement(args[i], types[i]);
            }

            return new PositionalArguments(values, types);
        }
        catch (Exception ex) when (ex is not DbosException and not OutOfMemoryException)
        {
            throw new DbosSerializationException($"The stored input of {what} cannot be read as {types.Length} arguments (format '{format ?? "unspecified"}'): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The list of positional arguments of a stored input: <c>positionalArgs</c> of the portable format, the <c>json</c>
    /// of SuperJSON, or a bare array. Named arguments (<c>namedArgs</c>, which DBOS for Python and the TypeScript client
    /// can send) are refused with their keys when <paramref name="refuseNamed"/>: a .NET workflow's parameters are positional only.
    /// </summary>
    private static JsonElement PositionalArgs(JsonElement root, string? format, bool refuseNamed)
    {
        if (refuseNamed && root.ValueKind == JsonValueKind.Object && root.TryGetProperty("namedArgs", out var named)
            && named.ValueKind == JsonValueKind.Object && named.EnumerateObject().Any())
        {
            throw new JsonException(
                $"named arguments ({string.Join(", ", named.EnumerateObject().Select(p => p.Name))}) were given, and a .NET workflow takes positional arguments only");
        }

        var args = format == SuperJsonFormat && root.ValueKind == JsonValueKind.Object && root.TryGetProperty("json", out var sj) ? sj
            : root.ValueKind == JsonValueKind.Object && root.TryGetProperty("positionalArgs", out var pa) ? pa
            : root;
        return args.ValueKind == JsonValueKind.Array ? args : throw new JsonException("the stored input has no list of positional arguments");
    }

    /// <summary>Encodes a value in the configured format.</summary>
    public string Encode(object? value, Type type, string what)
    {
        try
        {
            return Serializer.Serialize(value, type);
        }
        catch (ArgumentException ex) when (NonFiniteNumberIn(value, type) is { } found)
        {
            // System.Text.Json's own message speaks of infinity even for NaN: name what the value holds.
            throw new DbosSerializationException(
                $"The {what} cannot be serialized as {type.Name}: it contains {found}, which JSON cannot represent. Replace it (for example with null) before passing it.", ex);
        }
        catch (Exception ex) when (ex is not DbosException and not OutOfMemoryException)
        {
            throw new DbosSerializationException($"The {what} cannot be serialized as {type.Name}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Which non-finite floating-point number (NaN or an infinity) <paramref name="value"/> holds, found by writing it
    /// again with named literals allowed; null when the configured serializer is not portable JSON or none is found.
    /// </summary>
    private string? NonFiniteNumberIn(object? value, Type type)
    {
        if (Serializer is not PortableJsonSerializer portable)
        {
            return null;
        }

        try
        {
            var named = new JsonSerializerOptions(portable.Options) { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };
            var text = JsonSerializer.Serialize(value, named.GetTypeInfo(type));
            return text.Contains("\"NaN\"", StringComparison.Ordinal) ? "a NaN (not-a-number) floating-point value"
                : text.Contains("Infinity\"", StringComparison.Ordinal) ? "an infinite floating-point value"
                : null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return null;
        }
    }

    /// <summary>
    /// Encodes a workflow's output in the format named by its status row. Other DBOS implementations read a workflow's
    /// output and error in that format, so a workflow the TypeScript SDK enqueued with its default (SuperJSON) format
    /// gets its output as SuperJSON, which a plain JSON value becomes once wrapped; otherwise the configured format.
    /// A <paramref name="type"/> of <c>typeof(void)</c> (a workflow returning <c>Task</c>) is written as the TypeScript SDK
    /// writes <c>undefined</c>.
    /// </summary>
    public (string Text, string Format) EncodeWorkflowOutput(object? value, Type type, string what, string? rowFormat)
    {
        if (type == typeof(void))
        {
            // A workflow that returns nothing: what the TypeScript SDK writes for undefined (null in portable JSON).
            return rowFormat == SuperJsonFormat ? (SuperJsonUndefined, SuperJsonFormat) : (Encode(null, typeof(object), what), Format);
        }

        if (rowFormat != SuperJsonFormat)
        {
            return (Encode(value, type, what), Format);
        }

        var json = IsPortable ? Encode(value, type, what) : new ValueCodec(Portable).Encode(value, type, what);
        return (WrapSuperJson(json), SuperJsonFormat);
    }

    /// <summary>Encodes a workflow's error in the format named by its status row (see <see cref="EncodeWorkflowOutput"/>).</summary>
    public static string EncodeWorkflowError(Exception exception, string? rowFormat) =>
        rowFormat == SuperJsonFormat ? WrapSuperJson(EncodeError(exception)) : EncodeError(exception);

    private static string WrapSuperJson(string json) => string.Concat("""{"json":""", json, ""","__dbos_serializer":"superjson"}""");

    /// <summary>Decodes a value stored in <paramref name="format"/> (null text decodes to null).</summary>
    public object? Decode(string? text, string? format, Type type, string what)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            if (format is null || format == Serializer.Name)
            {
                return Serializer.Deserialize(text, type);
            }

            if (format == PortableJsonSerializer.FormatName)
            {
                return PortableReader.Deserialize(text, type);
            }

            if (format == SuperJsonFormat)
            {
                using var document = JsonDocument.Parse(text);
                return document.RootElement.TryGetProperty("json", out var json) ? PortableReader.FromElement(json, type) : null;
            }
        }
        catch (Exception ex) when (ex is not DbosException and not OutOfMemoryException)
        {
            throw new DbosSerializationException($"The stored {what} cannot be read as {type.Name} (format '{format ?? Serializer.Name}'): {ex.Message}", ex);
        }

        throw new DbosSerializationException($"The stored {what} is in the format '{format}', which this application cannot read (it reads '{Serializer.Name}' and '{PortableJsonSerializer.FormatName}').");
    }

    /// <summary>Encodes an exception as <c>{"name","message","code","data"}</c>, the portable error shape.</summary>
    public static string EncodeError(Exception exception)
    {
        var recorded = exception as DbosRecordedException;
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("name", recorded?.ErrorName ?? exception.GetType().Name);
            writer.WriteString("message", exception.Message);
            if (recorded?.ErrorCode is { } code)
            {
                writer.WriteString("code", code);
            }

            if (exception is StepFailedException { AttemptErrors.Count: > 0 } step)
            {
                writer.WriteStartObject("data");
                writer.WriteStartArray("attemptErrors");
                foreach (var attempt in step.AttemptErrors)
                {
                    writer.WriteStringValue(attempt);
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Decodes a recorded error; text that is not the portable shape becomes the message of an error named <c>Error</c>.</summary>
    public static RecordedError DecodeError(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("__dbos_serializer", out _) && root.TryGetProperty("json", out var inner))
            {
                root = inner;
            }

            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("message", out var message))
            {
                var name = root.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "Error";
                var code = root.TryGetProperty("code", out var c) && c.ValueKind is not JsonValueKind.Null ? c.ToString() : null;
                var attempts = new List<string>();
                if (root.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
                    && data.TryGetProperty("attemptErrors", out var list) && list.ValueKind == JsonValueKind.Array)
                {
                    attempts.AddRange(list.EnumerateArray().Select(e => e.ToString()));
                }

                return new RecordedError(name, message.ValueKind == JsonValueKind.String ? message.GetString()! : message.ToString(), code, attempts);
            }
        }
        catch (JsonException)
        {
            // Not JSON: fall through to the raw text.
        }

        return new RecordedError("Error", text, null, []);
    }
}
