using System.Reactive.Linq;

namespace Cloudlets.Core.Hypervisors;

/// <summary>One notification of a running migration: a progress sample, or the final result.</summary>
/// <param name="Progress">A progress sample, or <see langword="null"/> on the final notification.</param>
/// <param name="Result">The result on the final notification, otherwise <see langword="null"/>.</param>
public sealed record MigrationUpdate(MigrationProgress? Progress, MigrationResult? Result)
{
    /// <summary>Whether this is the final notification (the migration succeeded).</summary>
    public bool IsCompleted => Result is not null;
}

/// <summary>Rx forms of <see cref="IHypervisorHost"/> operations.</summary>
public static class HypervisorHostObservableExtensions
{
    /// <summary>
    /// A cold observable that starts the migration on each subscription: progress samples, then one
    /// notification with the result, then completion. A failed migration ends the sequence with its
    /// error; disposing the subscription cancels (aborts) the migration.
    /// </summary>
    public static IObservable<MigrationUpdate> MigrateObservable(
        this IHypervisorHost source,
        string vmName,
        MigrationDestination destination,
        MigrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        return Observable.Create<MigrationUpdate>(async (observer, cancellationToken) =>
        {
            var forwarder = new ProgressForwarder(observer);
            MigrationResult result;
            try
            {
                result = await source.MigrateAsync(vmName, destination, options, forwarder, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                forwarder.Close();
            }

            observer.OnNext(new MigrationUpdate(null, result));
            observer.OnCompleted();
        });
    }

    /// <summary>Forwards progress synchronously and drops samples that arrive after the sequence ended.</summary>
    private sealed class ProgressForwarder(IObserver<MigrationUpdate> observer) : IProgress<MigrationProgress>
    {
        private readonly Lock _gate = new();
        private bool _closed;

        public void Report(MigrationProgress value)
        {
            lock (_gate)
            {
                if (!_closed)
                {
                    observer.OnNext(new MigrationUpdate(value, null));
                }
            }
        }

        public void Close()
        {
            lock (_gate)
            {
                _closed = true;
            }
        }
    }
}
