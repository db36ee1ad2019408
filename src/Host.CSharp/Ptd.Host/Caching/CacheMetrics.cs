using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Ptd.Host.Caching;

internal enum ReadOutcome { Hit, NotFound, Rejected, Error, Timeout, Skipped }

internal enum WriteOutcome { Written, AlreadyPresent, Error, Timeout, Skipped }

/// <summary>
/// The one place counters are kept: in-memory cells for <see cref="IArtifactCache.GetStatistics"/> and the same
/// events published through System.Diagnostics.Metrics (meter <see cref="ArtifactCache.MeterName"/>).
/// </summary>
internal sealed class CacheMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly TimeProvider _time;
    private readonly Counter<long> _hits, _misses, _errors, _timeouts, _rejected, _bytesRead, _bytesWritten, _writes, _evictions, _computations, _sharedFlights;
    private readonly Histogram<double> _duration;
    private ConcurrentDictionary<(int Index, string Tier, string Kind), TierCell> _tiers = new();
    private ConcurrentDictionary<string, KindCell> _kinds = new();
    private DateTimeOffset _since;

    public CacheMetrics(IMeterFactory? factory, TimeProvider time)
    {
        _time = time;
        _since = time.GetUtcNow();
        _ownsMeter = factory is null;
        _meter = factory?.Create(new MeterOptions(ArtifactCache.MeterName)) ?? new Meter(ArtifactCache.MeterName);
        _hits = _meter.CreateCounter<long>("ptd.cache.hits", "{entry}", "Reads that returned a valid entry, by tier and kind");
        _misses = _meter.CreateCounter<long>("ptd.cache.misses", "{entry}", "Reads that returned nothing, by tier, kind and reason");
        _errors = _meter.CreateCounter<long>("ptd.cache.errors", "{operation}", "Failed tier operations");
        _timeouts = _meter.CreateCounter<long>("ptd.cache.timeouts", "{operation}", "Timed-out tier operations");
        _rejected = _meter.CreateCounter<long>("ptd.cache.rejected", "{entry}", "Entries rejected by envelope verification, by reason");
        _bytesRead = _meter.CreateCounter<long>("ptd.cache.bytes_read", "By", "Envelope bytes read");
        _bytesWritten = _meter.CreateCounter<long>("ptd.cache.bytes_written", "By", "Envelope bytes written");
        _writes = _meter.CreateCounter<long>("ptd.cache.writes", "{entry}", "Entries written (including back-fills)");
        _evictions = _meter.CreateCounter<long>("ptd.cache.evictions", "{entry}", "Entries removed by eviction or vacuum");
        _computations = _meter.CreateCounter<long>("ptd.cache.computations", "{entry}", "Values computed after a miss");
        _sharedFlights = _meter.CreateCounter<long>("ptd.cache.shared_flights", "{call}", "Callers that joined a lookup in flight");
        _duration = _meter.CreateHistogram<double>("ptd.cache.operation.duration", "ms", "Duration of tier operations");
    }

    public Meter Meter => _meter;

    public void Read(int index, string tier, string kind, ReadOutcome outcome, long bytes, TimeSpan elapsed, string? rejectReason = null)
    {
        var c = Cell(index, tier, kind);
        var tags = new TagList { { "tier", tier }, { "kind", kind } };
        switch (outcome)
        {
            case ReadOutcome.Hit:
                Interlocked.Increment(ref c.Hits);
                _hits.Add(1, tags);
                break;
            case ReadOutcome.NotFound: Interlocked.Increment(ref c.MissNotFound); break;
            case ReadOutcome.Rejected:
                Interlocked.Increment(ref c.MissRejected);
                Interlocked.Increment(ref c.Rejected);
                c.RejectedByReason.AddOrUpdate(rejectReason ?? "unknown", 1, (_, n) => n + 1);
                _rejected.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "reason", rejectReason ?? "unknown" } });
                break;
            case ReadOutcome.Error:
                Interlocked.Increment(ref c.MissError);
                Interlocked.Increment(ref c.Errors);
                _errors.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "read" } });
                break;
            case ReadOutcome.Timeout:
                Interlocked.Increment(ref c.MissTimeout);
                Interlocked.Increment(ref c.Timeouts);
                _timeouts.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "read" } });
                break;
            case ReadOutcome.Skipped: Interlocked.Increment(ref c.MissSkipped); break;
        }
        if (outcome != ReadOutcome.Hit)
            _misses.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "reason", ReasonTag(outcome) } });
        if (bytes > 0)
        {
            Interlocked.Add(ref c.BytesRead, bytes);
            _bytesRead.Add(bytes, tags);
        }
        if (outcome != ReadOutcome.Skipped)
        {
            c.Read.Add(elapsed);
            _duration.Record(elapsed.TotalMilliseconds, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "read" } });
        }
    }

    public void Write(int index, string tier, string kind, WriteOutcome outcome, long bytes, TimeSpan elapsed, bool backfill)
    {
        var c = Cell(index, tier, kind);
        var tags = new TagList { { "tier", tier }, { "kind", kind } };
        switch (outcome)
        {
            case WriteOutcome.Written:
                Interlocked.Increment(ref c.Writes);
                if (backfill) Interlocked.Increment(ref c.Backfills);
                Interlocked.Add(ref c.BytesWritten, bytes);
                _writes.Add(1, tags);
                _bytesWritten.Add(bytes, tags);
                break;
            case WriteOutcome.AlreadyPresent: Interlocked.Increment(ref c.WritesAlreadyPresent); break;
            case WriteOutcome.Error:
                Interlocked.Increment(ref c.Errors);
                _errors.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "write" } });
                break;
            case WriteOutcome.Timeout:
                Interlocked.Increment(ref c.Timeouts);
                _timeouts.Add(1, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "write" } });
                break;
            case WriteOutcome.Skipped: Interlocked.Increment(ref c.WritesSkipped); break;
        }
        if (outcome != WriteOutcome.Skipped)
        {
            c.Write.Add(elapsed);
            _duration.Record(elapsed.TotalMilliseconds, new TagList { { "tier", tier }, { "kind", kind }, { "operation", "write" } });
        }
    }

    public void OtherFailure(int index, string tier, string kind, string operation, bool timeout)
    {
        var c = Cell(index, tier, kind);
        var tags = new TagList { { "tier", tier }, { "kind", kind }, { "operation", operation } };
        if (timeout)
        {
            Interlocked.Increment(ref c.Timeouts);
            _timeouts.Add(1, tags);
        }
        else
        {
            Interlocked.Increment(ref c.Errors);
            _errors.Add(1, tags);
        }
    }

    public void Eviction(int index, string tier, string kind, long bytes)
    {
        var c = Cell(index, tier, kind);
        Interlocked.Increment(ref c.Evictions);
        Interlocked.Add(ref c.BytesEvicted, bytes);
        _evictions.Add(1, new TagList { { "tier", tier }, { "kind", kind } });
    }

    public void Request(string kind, bool hit)
    {
        var k = Kind(kind);
        Interlocked.Increment(ref k.Requests);
        if (hit) Interlocked.Increment(ref k.Hits);
        else Interlocked.Increment(ref k.Misses);
    }

    public void Computation(string kind, bool failed)
    {
        var k = Kind(kind);
        Interlocked.Increment(ref k.Computations);
        if (failed) Interlocked.Increment(ref k.ComputationFailures);
        _computations.Add(1, new TagList { { "kind", kind }, { "outcome", failed ? "failed" : "ok" } });
    }

    public void SharedFlight(string kind)
    {
        Interlocked.Increment(ref Kind(kind).SharedFlights);
        _sharedFlights.Add(1, new TagList { { "kind", kind } });
    }

    public void Reset()
    {
        _tiers = new();
        _kinds = new();
        _since = _time.GetUtcNow();
    }

    public CacheStatistics Snapshot() => new()
    {
        Since = _since,
        Tiers = _tiers.OrderBy(p => p.Key.Index).ThenBy(p => p.Key.Kind, StringComparer.Ordinal).Select(p => p.Value.Snapshot(p.Key.Tier, p.Key.Kind)).ToArray(),
        Kinds = _kinds.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value.Snapshot(p.Key)).ToArray(),
    };

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }

    private static string ReasonTag(ReadOutcome o) => o switch
    {
        ReadOutcome.NotFound => "not_found",
        ReadOutcome.Rejected => "rejected",
        ReadOutcome.Error => "error",
        ReadOutcome.Timeout => "timeout",
        _ => "skipped",
    };

    private TierCell Cell(int index, string tier, string kind) => _tiers.GetOrAdd((index, tier, kind), _ => new TierCell());

    private KindCell Kind(string kind) => _kinds.GetOrAdd(kind, _ => new KindCell());

    private sealed class Latency
    {
        private long _count, _totalTicks, _maxTicks;

        public void Add(TimeSpan elapsed)
        {
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _totalTicks, elapsed.Ticks);
            long seen;
            while (elapsed.Ticks > (seen = Interlocked.Read(ref _maxTicks)) && Interlocked.CompareExchange(ref _maxTicks, elapsed.Ticks, seen) != seen)
            {
            }
        }

        public LatencyStatistics Snapshot() =>
            new(Interlocked.Read(ref _count), TimeSpan.FromTicks(Interlocked.Read(ref _totalTicks)).TotalMilliseconds, TimeSpan.FromTicks(Interlocked.Read(ref _maxTicks)).TotalMilliseconds);
    }

    private sealed class TierCell
    {
        public long Hits, MissNotFound, MissRejected, MissError, MissTimeout, MissSkipped, Errors, Timeouts, Rejected;
        public long BytesRead, BytesWritten, Writes, WritesAlreadyPresent, WritesSkipped, Backfills, Evictions, BytesEvicted;
        public readonly ConcurrentDictionary<string, long> RejectedByReason = new(StringComparer.Ordinal);
        public readonly Latency Read = new(), Write = new();

        public TierStatistics Snapshot(string tier, string kind) => new()
        {
            Tier = tier,
            Kind = kind,
            Hits = Interlocked.Read(ref Hits),
            MissesNotFound = Interlocked.Read(ref MissNotFound),
            MissesRejected = Interlocked.Read(ref MissRejected),
            MissesError = Interlocked.Read(ref MissError),
            MissesTimeout = Interlocked.Read(ref MissTimeout),
            MissesSkipped = Interlocked.Read(ref MissSkipped),
            Errors = Interlocked.Read(ref Errors),
            Timeouts = Interlocked.Read(ref Timeouts),
            Rejected = Interlocked.Read(ref Rejected),
            RejectedByReason = new SortedDictionary<string, long>(RejectedByReason, StringComparer.Ordinal),
            BytesRead = Interlocked.Read(ref BytesRead),
            BytesWritten = Interlocked.Read(ref BytesWritten),
            Writes = Interlocked.Read(ref Writes),
            WritesAlreadyPresent = Interlocked.Read(ref WritesAlreadyPresent),
            WritesSkipped = Interlocked.Read(ref WritesSkipped),
            Backfills = Interlocked.Read(ref Backfills),
            Evictions = Interlocked.Read(ref Evictions),
            BytesEvicted = Interlocked.Read(ref BytesEvicted),
            ReadLatency = Read.Snapshot(),
            WriteLatency = Write.Snapshot(),
        };
    }

    private sealed class KindCell
    {
        public long Requests, Hits, Misses, Computations, ComputationFailures, SharedFlights;

        public KindStatistics Snapshot(string kind) => new()
        {
            Kind = kind,
            Requests = Interlocked.Read(ref Requests),
            Hits = Interlocked.Read(ref Hits),
            Misses = Interlocked.Read(ref Misses),
            Computations = Interlocked.Read(ref Computations),
            ComputationFailures = Interlocked.Read(ref ComputationFailures),
            SharedFlights = Interlocked.Read(ref SharedFlights),
        };
    }
}
