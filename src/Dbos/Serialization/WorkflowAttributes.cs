using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Dbos.Serialization;

/// <summary>
/// The <c>attributes</c> column of <c>workflow_status</c>: a JSON object of the user's key-value pairs, with the trace
/// context to continue kept under <see cref="TraceKey"/> as DBOS for Python keeps it. Rows written by earlier releases
/// of this library hold only <c>traceparent</c> and <c>tracestate</c> at the top level; they are still read.
/// </summary>
internal static class WorkflowAttributes
{
    /// <summary>The key DBOS for Python stores the W3C trace context under (<c>OTEL_CARRIER_ATTRIBUTE</c>).</summary>
    public const string TraceKey = "dbos.otelContext";

    private const string TraceParent = "traceparent";
    private const string TraceState = "tracestate";

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Checks the user's attributes: storable keys and texts, not the reserved trace key.</summary>
    public static void Validate(JsonObject? attributes, string parameterName)
    {
        if (attributes is null)
        {
            return;
        }

        foreach (var (key, _) in attributes)
        {
            if (key == TraceKey)
            {
                throw new ArgumentException($"The attribute key '{TraceKey}' is reserved for the trace context DBOS stores with a workflow.", parameterName);
            }
        }

        Internal.StorableText.Check(attributes.ToJsonString(Relaxed), "The attributes", parameterName);
    }

    /// <summary>
    /// The column's text for a new workflow: the user's attributes plus, when something is being traced, the current
    /// span's trace context under <see cref="TraceKey"/>. Null when there is neither.
    /// </summary>
    public static string? Compose(JsonObject? user)
    {
        var carrier = TraceCarrier();
        if (carrier is null && (user is null || user.Count == 0))
        {
            return user is null ? null : "{}";
        }

        var composed = user is null ? new JsonObject() : (JsonObject)user.DeepClone();
        if (carrier is not null)
        {
            composed[TraceKey] = carrier;
        }

        return composed.ToJsonString(Relaxed);
    }

    /// <summary>The user's attributes to store in place of the current ones (the trace context is kept by the statement).</summary>
    public static string? Encode(JsonObject? user) => user?.ToJsonString(Relaxed);

    /// <summary>The user's view of a stored column: the object without the trace context (null when empty or not an object).</summary>
    public static JsonObject? UserView(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        try
        {
            if (JsonNode.Parse(text) is not JsonObject stored)
            {
                return null;
            }

            stored.Remove(TraceKey);
            if (IsLegacyTraceOnly(stored))
            {
                // What earlier releases wrote: only the trace context, at the top level.
                stored.Remove(TraceParent);
                stored.Remove(TraceState);
            }

            return stored.Count == 0 ? null : stored;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The trace context stored with a workflow (default when there is none or it does not parse).</summary>
    public static ActivityContext ParseTraceContext(string? text)
    {
        if (text is null)
        {
            return default;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return default;
            }

            // DBOS for Python's place first; then the top level, where earlier releases of this library wrote it.
            var carrier = root.TryGetProperty(TraceKey, out var nested) && nested.ValueKind == JsonValueKind.Object ? nested : root;
            if (carrier.TryGetProperty(TraceParent, out var parent) && parent.ValueKind == JsonValueKind.String
                && ActivityContext.TryParse(
                    parent.GetString(),
                    carrier.TryGetProperty(TraceState, out var state) && state.ValueKind == JsonValueKind.String ? state.GetString() : null,
                    isRemote: true,
                    out var context))
            {
                return context;
            }
        }
        catch (JsonException)
        {
            // Attributes written by someone else, in another shape: no trace to continue.
        }

        return default;
    }

    private static bool IsLegacyTraceOnly(JsonObject stored) =>
        stored.Count is 1 or 2
        && stored[TraceParent] is JsonValue parent && parent.GetValueKind() == JsonValueKind.String
        && stored.All(p => p.Key is TraceParent or TraceState);

    /// <summary>The current span's W3C trace context, as DBOS for Python's carrier: <c>{"traceparent": …, "tracestate": …}</c>.</summary>
    private static JsonObject? TraceCarrier()
    {
        if (Activity.Current is not { IdFormat: ActivityIdFormat.W3C } current)
        {
            return null;
        }

        var carrier = new JsonObject { [TraceParent] = current.Id };
        if (!string.IsNullOrEmpty(current.TraceStateString))
        {
            carrier[TraceState] = current.TraceStateString;
        }

        return carrier;
    }
}
