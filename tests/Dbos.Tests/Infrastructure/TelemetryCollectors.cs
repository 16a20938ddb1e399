using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Dbos.Tests.Infrastructure;

/// <summary>Collects the spans of DBOS and of the tests' own "caller" source, started and stopped.</summary>
public sealed class SpanCollector : IDisposable
{
    public static readonly ActivitySource Caller = new("Dbos.Tests.Caller");

    private readonly ActivityListener listener;

    public SpanCollector()
    {
        listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is DbosInstrumentation.ActivitySourceName or "Dbos.Tests.Caller",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity => Started.Enqueue(activity),
            ActivityStopped = activity => Stopped.Enqueue(activity),
        };
        ActivitySource.AddActivityListener(listener);
    }

    public ConcurrentQueue<Activity> Started { get; } = new();

    public ConcurrentQueue<Activity> Stopped { get; } = new();

    /// <summary>The finished spans of one trace.</summary>
    public List<Activity> Trace(ActivityTraceId traceId) => Stopped.Where(a => a.TraceId == traceId).ToList();

    public void Dispose() => listener.Dispose();
}

/// <summary>Collects the measurements of DBOS's instruments.</summary>
public sealed class MetricCollector : IDisposable
{
    private readonly MeterListener listener = new();

    public MetricCollector()
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == DbosInstrumentation.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        listener.Start();
    }

    public ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> Measurements { get; } = new();

    /// <summary>Asks observable instruments (the queue depth gauge) for their current values.</summary>
    public void Observe() => listener.RecordObservableInstruments();

    /// <summary>The measurements of <paramref name="instrument"/> whose tag <paramref name="tag"/> is <paramref name="value"/>.</summary>
    public List<double> Of(string instrument, string tag, string value) =>
        Measurements.Where(m => m.Instrument == instrument && m.Tags.TryGetValue(tag, out var v) && Equals(v, value)).Select(m => m.Value).ToList();

    public void Dispose() => listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        Measurements.Enqueue((instrument.Name, value, copy));
    }
}

/// <summary>A logger factory that records every message with its category, event and the scopes around it.</summary>
public sealed class ScopedLogCollector : ILoggerFactory
{
    private readonly LoggerExternalScopeProvider scopes = new();

    public ConcurrentQueue<(string Category, EventId Id, string Message, Dictionary<string, object?> Scope)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    /// <summary>How many messages contain <paramref name="text"/>.</summary>
    public int Count(string text) => Entries.Count(e => e.Message.Contains(text, StringComparison.Ordinal));

    private sealed class Logger(ScopedLogCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner.scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
            owner.scopes.ForEachScope(
                (value, into) =>
                {
                    if (value is IEnumerable<KeyValuePair<string, object?>> pairs)
                    {
                        foreach (var pair in pairs)
                        {
                            into[pair.Key] = pair.Value;
                        }
                    }
                },
                scope);
            owner.Entries.Enqueue((category, eventId, formatter(state, exception), scope));
        }
    }
}
