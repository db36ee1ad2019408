using System.Diagnostics;
using Ptd.Host.Composition;
using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>The <see cref="IArtifactCache"/> implementation: lookup, single flight, back-fill and write-through.</summary>
internal sealed partial class TieredArtifactCache : IArtifactCache, IDisposable
{
    private readonly CacheTier[] _tiers;
    private readonly ArtifactCacheOptions _options;
    private readonly CacheMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly string[] _warnings;
    private readonly StorageProviderRegistry? _ownedRegistry;
    private readonly Dictionary<string, Flight> _flights = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly HashSet<Task> _background = new();
    private int _disposed;
    private int _tierFailureLogged;

    public TieredArtifactCache(CacheTier[] tiers, ArtifactCacheOptions options, IEnumerable<string> warnings, StorageProviderRegistry? ownedRegistry)
    {
        _tiers = tiers;
        _options = options;
        _time = options.TimeProvider;
        _metrics = new CacheMetrics(options.MeterFactory, _time);
        _warnings = warnings.ToArray();
        _ownedRegistry = ownedRegistry;
        Generation = options.Generation;
    }

    public int Generation { get; }

    public IReadOnlyList<CacheTierInfo> Tiers
    {
        get
        {
            var now = _time.GetUtcNow();
            return _tiers.Select(t => t.Info(now)).ToArray();
        }
    }

    public IReadOnlyList<string> Warnings => _warnings;

    internal System.Diagnostics.Metrics.Meter Meter => _metrics.Meter;

    /// <summary>The run-time tiers, for <see cref="CacheManager"/> (which works on the stores directly).</summary>
    internal IReadOnlyList<CacheTier> RuntimeTiers => _tiers;

    internal ArtifactCacheOptions Options => _options;

    public async Task<CacheResult> GetOrCreateAsync(ArtifactKind kind, string key, Func<CancellationToken, Task<byte[]>> factory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(factory);
        var storageKey = CacheKeyLayout.StorageKey(kind, Generation, key);
        ThrowIfDisposed();
        Flight flight;
        bool joined;
        lock (_gate)
        {
            joined = _flights.TryGetValue(storageKey.Value, out flight!);
            if (joined) flight.Waiters++;
            else _flights[storageKey.Value] = flight = new Flight();
        }
        if (joined) _metrics.SharedFlight(kind.Name);
        else _ = RunFlightAsync(flight, kind, storageKey, factory);
        try
        {
            var result = await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return joined ? result.AsShared() : result;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !flight.Completion.Task.IsCompleted)
        {
            Leave(storageKey.Value, flight);
            throw;
        }
    }

    public async Task<CacheResult> TryGetAsync(ArtifactKind kind, string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var storageKey = CacheKeyLayout.StorageKey(kind, Generation, key);
        ThrowIfDisposed();
        var (hit, _) = await LookupAsync(kind, storageKey, cancellationToken).ConfigureAwait(false);
        _metrics.Request(kind.Name, hit is not null);
        return hit ?? new CacheResult(CacheOutcome.Miss, Array.Empty<byte>(), null, -1, false);
    }

    public async Task<int> SetAsync(ArtifactKind kind, string key, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var storageKey = CacheKeyLayout.StorageKey(kind, Generation, key);
        ThrowIfDisposed();
        if (payload.Length > _options.MaxEntryBytes)
        {
            Log($"not caching {kind} entry '{key}': {payload.Length} bytes exceed the {_options.MaxEntryBytes}-byte limit");
            return 0;
        }
        var envelope = Encode(kind, storageKey, payload.Span);
        var targets = _tiers.Where(t => t.IsWritable).ToArray();
        return await WriteAsync(kind, storageKey, envelope, targets, _ => BlobWriteMode.Overwrite, backfill: false, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> RemoveAsync(ArtifactKind kind, string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var storageKey = CacheKeyLayout.StorageKey(kind, Generation, key);
        ThrowIfDisposed();
        var removed = await Task.WhenAll(_tiers.Where(t => t.IsWritable).Select(t => DeleteAsync(t, kind.Name, storageKey, cancellationToken))).ConfigureAwait(false);
        return removed.Count(r => r);
    }

    public async Task<IReadOnlyList<TierHealth>> CheckHealthAsync(CancellationToken cancellationToken = default)
    {
        var reports = new List<TierHealth>();
        foreach (var t in _tiers)
        {
            if (!t.IsAvailable)
            {
                reports.Add(new TierHealth(t.Name, t.DisplayName, new BlobStoreHealth(false, t.Problem ?? "unavailable", TimeSpan.Zero)));
                continue;
            }
            var r = await RunAsync(t, (s, c) => s.CheckHealthAsync(c), t.Timeout, cancellationToken).ConfigureAwait(false);
            reports.Add(new TierHealth(t.Name, t.DisplayName, r.Status switch
            {
                OpStatus.Ok => r.Value!,
                OpStatus.Timeout => new BlobStoreHealth(false, $"{t.DisplayName}: no answer within {t.Timeout.TotalMilliseconds:F0} ms", r.Elapsed),
                _ => new BlobStoreHealth(false, Describe(r.Error!), r.Elapsed),
            }));
        }
        return reports;
    }

    public CacheStatistics GetStatistics() => _metrics.Snapshot();

    public void ResetStatistics() => _metrics.Reset();

    // For containers that dispose synchronously (a ServiceProvider in a using block).
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Task[] pending;
        lock (_gate) pending = _background.ToArray();
        try
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Background maintenance already logged its own failures.
        }
        foreach (var t in _tiers)
        {
            if (!t.OwnsStore || t.Store is null) continue;
            try
            {
                await t.Store.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log($"cache tier {t.Name} ({t.DisplayName}): closing failed: {Describe(e)}");
            }
        }
        if (_options.StatisticsLedger is { } ledger)
        {
            try
            {
                // After a tier failure was reported, a ledger that cannot be written either (typically the same
                // read-only or full home directory) would only repeat it: one warning per problem.
                ledger.Add(_metrics.Snapshot(), Volatile.Read(ref _tierFailureLogged) != 0 ? null : Log);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log($"cache statistics were not persisted: {Describe(e)}");
            }
        }
        _metrics.Dispose();
        _ownedRegistry?.Dispose();
    }

    // ---------------------------------------------------------------------------------------------
    // Single flight
    // ---------------------------------------------------------------------------------------------

    private sealed class Flight
    {
        public readonly TaskCompletionSource<CacheResult> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly CancellationTokenSource Cancellation = new();
        public int Waiters = 1;
    }

    private void Leave(string key, Flight flight)
    {
        lock (_gate)
        {
            if (--flight.Waiters > 0) return;
            // Nobody waits any more: stop the work, and let the next caller start afresh.
            if (_flights.TryGetValue(key, out var current) && ReferenceEquals(current, flight)) _flights.Remove(key);
        }
        try
        {
            flight.Cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The flight finished between the caller's cancellation and this call: nothing left to stop.
        }
    }

    private async Task RunFlightAsync(Flight flight, ArtifactKind kind, BlobKey storageKey, Func<CancellationToken, Task<byte[]>> factory)
    {
        var token = flight.Cancellation.Token;
        try
        {
            // Detach from the first caller's stack: the flight must not depend on that caller staying around.
            await Task.Yield();
            var (hit, rejected) = await LookupAsync(kind, storageKey, token).ConfigureAwait(false);
            _metrics.Request(kind.Name, hit is not null);
            if (hit is not null)
            {
                Finish(flight, storageKey, c => c.TrySetResult(hit));
                return;
            }
            byte[] payload;
            try
            {
                payload = await factory(token).ConfigureAwait(false)
                          ?? throw new InvalidOperationException($"the factory for {kind} entry '{storageKey}' returned null");
                _metrics.Computation(kind.Name, failed: false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                _metrics.Computation(kind.Name, failed: true);
                Finish(flight, storageKey, c => c.TrySetException(e));
                return;
            }
            if (payload.Length > _options.MaxEntryBytes)
            {
                Log($"not caching {kind} entry '{storageKey}': {payload.Length} bytes exceed the {_options.MaxEntryBytes}-byte limit");
            }
            else
            {
                var envelope = Encode(kind, storageKey, payload);
                var targets = _tiers.Where(t => t.IsWritable).ToArray();
                // A tier that just rejected its copy gets overwritten: create-only would keep the bad bytes.
                await WriteAsync(kind, storageKey, envelope, targets,
                    t => rejected.Contains(t.Index) ? BlobWriteMode.Overwrite : BlobWriteMode.CreateOnly, backfill: false, token).ConfigureAwait(false);
            }
            Finish(flight, storageKey, c => c.TrySetResult(new CacheResult(CacheOutcome.Computed, payload, null, -1, false)));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            Finish(flight, storageKey, c => c.TrySetCanceled(token));
        }
        catch (Exception e)
        {
            Finish(flight, storageKey, c => c.TrySetException(e));
        }
        finally
        {
            Finish(flight, storageKey, _ => { });
            flight.Cancellation.Dispose();
        }
    }

    /// <summary>
    /// Takes the flight out of the table, THEN publishes its outcome. The other order let a caller that asked again
    /// right after receiving the result join the finished flight (and be told "Computed", shared) instead of starting
    /// a fresh lookup that finds the entry just written — seen in CI as a second lookup that was not a hit.
    /// </summary>
    private void Finish(Flight flight, BlobKey storageKey, Action<TaskCompletionSource<CacheResult>> publish)
    {
        lock (_gate)
        {
            if (_flights.TryGetValue(storageKey.Value, out var current) && ReferenceEquals(current, flight)) _flights.Remove(storageKey.Value);
        }
        publish(flight.Completion);
    }

    // ---------------------------------------------------------------------------------------------
    // Reads, back-fill, writes
    // ---------------------------------------------------------------------------------------------

    private async Task<(CacheResult? Hit, HashSet<int> Rejected)> LookupAsync(ArtifactKind kind, BlobKey storageKey, CancellationToken cancellationToken)
    {
        var rejected = new HashSet<int>();
        foreach (var tier in _tiers)
        {
            if (!tier.IsAvailable) continue;
            if (tier.IsCoolingDown(_time.GetUtcNow()))
            {
                _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.Skipped, 0, TimeSpan.Zero);
                continue;
            }
            var r = await RunAsync(tier, (s, c) => s.GetAsync(storageKey, c), tier.Timeout, cancellationToken).ConfigureAwait(false);
            switch (r.Status)
            {
                case OpStatus.Timeout:
                    _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.Timeout, 0, r.Elapsed);
                    Failed(tier, "read", null);
                    continue;
                case OpStatus.Error when r.Error is BlobStoreException { Kind: BlobStoreErrorKind.Corrupt or BlobStoreErrorKind.TooLarge } bad:
                    // The store itself found the object damaged, or larger than any entry this cache accepts (it stopped
                    // reading at the limit): the entry is bad, the tier is fine.
                    await RejectAsync(tier, kind, storageKey, 0, r.Elapsed, bad.Kind == BlobStoreErrorKind.TooLarge ? "TooLargeInStore" : "CorruptInStore",
                        bad.Message, rejected, cancellationToken).ConfigureAwait(false);
                    continue;
                case OpStatus.Error:
                    _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.Error, 0, r.Elapsed);
                    Failed(tier, "read", r.Error);
                    continue;
            }
            if (!r.Value!.Found)
            {
                _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.NotFound, 0, r.Elapsed);
                continue;
            }
            var bytes = r.Value.Content;
            var decoded = CacheEnvelope.Decode(bytes, kind, storageKey.Value, _options.MaxEntryBytes);
            if (!decoded.IsValid)
            {
                await RejectAsync(tier, kind, storageKey, bytes.Length, r.Elapsed, decoded.Reason.ToString(), decoded.Detail, rejected, cancellationToken).ConfigureAwait(false);
                continue;
            }
            _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.Hit, bytes.Length, r.Elapsed);
            var faster = _tiers.Take(tier.Index).Where(t => t.IsWritable).ToArray();
            if (faster.Length > 0)
                await WriteAsync(kind, storageKey, bytes, faster, t => rejected.Contains(t.Index) ? BlobWriteMode.Overwrite : BlobWriteMode.CreateOnly, backfill: true, cancellationToken).ConfigureAwait(false);
            return (new CacheResult(CacheOutcome.Hit, decoded.Payload, tier.Name, tier.Index, false), rejected);
        }
        return (null, rejected);
    }

    // A rejected entry is counted, logged, and removed from a read-write tier (the recomputed value then
    // overwrites it there, see RunFlightAsync).
    private async Task RejectAsync(CacheTier tier, ArtifactKind kind, BlobKey storageKey, long bytes, TimeSpan elapsed, string reason, string detail,
        HashSet<int> rejected, CancellationToken cancellationToken)
    {
        _metrics.Read(tier.Index, tier.Name, kind.Name, ReadOutcome.Rejected, bytes, elapsed, reason);
        rejected.Add(tier.Index);
        Log($"cache tier {tier.Name} ({tier.DisplayName}): rejected entry '{storageKey}' ({reason}: {detail}); treating it as a miss");
        if (tier.IsWritable) await DeleteAsync(tier, kind.Name, storageKey, cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> WriteAsync(ArtifactKind kind, BlobKey storageKey, byte[] envelope, CacheTier[] targets, Func<CacheTier, BlobWriteMode> mode, bool backfill, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(targets.Select(async tier =>
        {
            if (tier.IsCoolingDown(_time.GetUtcNow()))
            {
                _metrics.Write(tier.Index, tier.Name, kind.Name, WriteOutcome.Skipped, 0, TimeSpan.Zero, backfill);
                return false;
            }
            var r = await RunAsync(tier, (s, c) => s.PutAsync(storageKey, envelope, mode(tier), c), tier.Timeout, cancellationToken).ConfigureAwait(false);
            switch (r.Status)
            {
                case OpStatus.Timeout:
                    _metrics.Write(tier.Index, tier.Name, kind.Name, WriteOutcome.Timeout, 0, r.Elapsed, backfill);
                    Failed(tier, "write", null);
                    return false;
                case OpStatus.Error:
                    _metrics.Write(tier.Index, tier.Name, kind.Name, WriteOutcome.Error, 0, r.Elapsed, backfill);
                    Failed(tier, "write", r.Error);
                    return false;
            }
            if (r.Value == BlobWriteOutcome.AlreadyExists)
            {
                _metrics.Write(tier.Index, tier.Name, kind.Name, WriteOutcome.AlreadyPresent, 0, r.Elapsed, backfill);
                return true;
            }
            _metrics.Write(tier.Index, tier.Name, kind.Name, WriteOutcome.Written, envelope.Length, r.Elapsed, backfill);
            if (_options.AutoEvict && tier.NoteWrite(envelope.Length, _time.GetUtcNow())) ScheduleEviction(tier);
            return true;
        })).ConfigureAwait(false);
        return results.Count(ok => ok);
    }

    private async Task<bool> DeleteAsync(CacheTier tier, string kindName, BlobKey storageKey, CancellationToken cancellationToken)
    {
        if (tier.IsCoolingDown(_time.GetUtcNow())) return false;
        var r = await RunAsync(tier, (s, c) => s.DeleteAsync(storageKey, c), tier.Timeout, cancellationToken).ConfigureAwait(false);
        if (r.Status == OpStatus.Ok) return r.Value;
        _metrics.OtherFailure(tier.Index, tier.Name, kindName, "delete", r.Status == OpStatus.Timeout);
        Failed(tier, "delete", r.Error);
        return false;
    }

    private byte[] Encode(ArtifactKind kind, BlobKey storageKey, ReadOnlySpan<byte> payload)
    {
        var compression = payload.Length >= _options.CompressionThreshold ? _options.Compression : CacheCompression.None;
        return CacheEnvelope.Encode(kind, storageKey.Value, _options.ProducerVersion, payload, compression);
    }

    // ---------------------------------------------------------------------------------------------
    // Timeouts and failures
    // ---------------------------------------------------------------------------------------------

    private enum OpStatus { Ok, Timeout, Error }

    private readonly record struct OpResult<T>(OpStatus Status, T? Value, Exception? Error, TimeSpan Elapsed);

    /// <summary>
    /// Runs one store call under the tier's timeout. The wait ends at the deadline even if the plugin ignores its
    /// token; only the caller's own cancellation is rethrown, every other failure becomes a value.
    /// </summary>
    private static async Task<OpResult<T>> RunAsync<T>(CacheTier tier, Func<IBlobStore, CancellationToken, Task<T>> operation, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        Task<T> task;
        try
        {
            task = operation(tier.Store!, deadline.Token);
        }
        catch (Exception e)
        {
            task = Task.FromException<T>(e);
        }
        try
        {
            var value = await task.WaitAsync(deadline.Token).ConfigureAwait(false);
            return new OpResult<T>(OpStatus.Ok, value, null, Stopwatch.GetElapsedTime(start));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Observe(task);
            throw;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            Observe(task);
            return new OpResult<T>(OpStatus.Timeout, default, null, Stopwatch.GetElapsedTime(start));
        }
        catch (Exception e)
        {
            return new OpResult<T>(OpStatus.Error, default, e, Stopwatch.GetElapsedTime(start));
        }
    }

    // An abandoned call may still fail later; observe it so that it does not surface as an unobserved exception.
    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void Failed(CacheTier tier, string operation, Exception? error)
    {
        var first = tier.StartCoolDown(_time.GetUtcNow());
        if (!first) return;
        Volatile.Write(ref _tierFailureLogged, 1);
        var what = error is null ? $"no answer within {tier.Timeout.TotalMilliseconds:F0} ms" : Describe(error);
        var skip = tier.CoolDown > TimeSpan.Zero ? $"; skipping it for {tier.CoolDown.TotalSeconds:F0} s" : "";
        Log($"cache tier {tier.Name} ({tier.DisplayName}): {operation} failed: {what}{skip}");
    }

    private static string Describe(Exception e) => e is BlobStoreException b
        ? $"{b.Kind}: {b.Message}"
        : $"{e.GetType().Name}: {e.Message}";

    private void Log(string message)
    {
        try
        {
            _options.Log?.Invoke(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failing logger must not break the cache.
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
