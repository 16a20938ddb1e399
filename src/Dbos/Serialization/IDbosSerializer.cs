namespace Dbos;

/// <summary>
/// Turns workflow inputs, outputs, step results, messages and events into the text stored in the system
/// database, and back. The default is <see cref="PortableJsonSerializer"/>, which every DBOS implementation
/// and the DBOS command line can read; register another one only when every reader of the database uses it.
/// </summary>
public interface IDbosSerializer
{
    /// <summary>
    /// The format's name, written to the <c>serialization</c> column of each row so readers know how to decode it.
    /// Rows written in a format with another name are not decoded with this serializer.
    /// </summary>
    string Name { get; }

    /// <summary>Serializes <paramref name="value"/>, declared as <paramref name="type"/>, to text.</summary>
    /// <param name="value">The value; may be null.</param>
    /// <param name="type">The declared type of the value.</param>
    /// <returns>The text to store.</returns>
    string Serialize(object? value, Type type);

    /// <summary>Deserializes text written by <see cref="Serialize"/> as a <paramref name="type"/>.</summary>
    /// <param name="text">The stored text.</param>
    /// <param name="type">The type to produce.</param>
    /// <returns>The value.</returns>
    object? Deserialize(string text, Type type);
}
