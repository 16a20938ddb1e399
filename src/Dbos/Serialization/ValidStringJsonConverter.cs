using System.Text.Json;
using System.Text.Json.Serialization;
using Dbos.Internal;

namespace Dbos.Serialization;

/// <summary>
/// Strings as System.Text.Json writes them, except that a string that is not valid UTF-16 (an unpaired surrogate) is
/// refused instead of being written with U+FFFD in its place, which would store a different value than the one given.
/// </summary>
internal sealed class ValidStringJsonConverter : JsonConverter<string>
{
    public override bool HandleNull => false;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString() : throw new JsonException($"Expected a string, not {reader.TokenType}.");

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(Checked(value));

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString()!;

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(Checked(value));

    private static string Checked(string value) =>
        StorableText.InvalidUnicode(value) is { } problem ? throw new JsonException($"The string '{StorableText.Preview(value)}' {problem}.") : value;
}
