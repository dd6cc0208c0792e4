using Microsoft.Extensions.Logging;

/// <summary>Writes the lab's log messages to stderr (the sample needs no logging framework).</summary>
internal sealed class StderrLogger(LogLevel minimum) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            Console.Error.WriteLine($"[{logLevel}] {formatter(state, exception)}");
        }
    }
}
