using Ptd.Storage;

namespace Ptd.Host.Caching;

/// <summary>A tier at run time: its store, its limits and its cool-down state.</summary>
internal sealed class CacheTier
{
    private long _coolDownUntilTicks;
    private long _bytesSinceEviction;
    private long _lastEvictionTicks;
    private int _evicting;

    public CacheTier(int index, string name, string displayName, IBlobStore? store, bool ownsStore, CacheTierOptions options, ArtifactCacheOptions cacheOptions, string? problem)
    {
        Index = index;
        Name = name;
        DisplayName = displayName;
        Store = store;
        OwnsStore = ownsStore;
        Problem = problem;
        Access = options.Access == CacheTierAccess.ReadOnly || store?.Capabilities.ReadOnly == true ? CacheTierAccess.ReadOnly : CacheTierAccess.ReadWrite;
        Timeout = options.Timeout ?? cacheOptions.DefaultTimeout;
        CoolDown = options.CoolDown ?? cacheOptions.DefaultCoolDown;
        MaxSizeBytes = options.MaxSizeBytes;
        MaxAge = options.MaxAge;
    }

    public int Index { get; }
    public string Name { get; }
    public string DisplayName { get; }
    public IBlobStore? Store { get; }
    public bool OwnsStore { get; }
    public string? Problem { get; }
    public CacheTierAccess Access { get; }
    public TimeSpan Timeout { get; }
    public TimeSpan CoolDown { get; }
    public long? MaxSizeBytes { get; }
    public TimeSpan? MaxAge { get; }

    public bool IsAvailable => Store is not null;
    public bool IsWritable => Store is not null && Access == CacheTierAccess.ReadWrite;
    public bool HasLimits => MaxSizeBytes is not null || MaxAge is not null;

    public bool IsCoolingDown(DateTimeOffset now) => now.UtcTicks < Interlocked.Read(ref _coolDownUntilTicks);

    public DateTimeOffset? CoolingDownUntil(DateTimeOffset now)
    {
        var t = Interlocked.Read(ref _coolDownUntilTicks);
        return now.UtcTicks < t ? new DateTimeOffset(t, TimeSpan.Zero) : null;
    }

    /// <summary>Starts a cool-down; returns true when the tier was not already cooling down (so the failure is logged once).</summary>
    public bool StartCoolDown(DateTimeOffset now)
    {
        if (CoolDown <= TimeSpan.Zero) return true;
        var wasCooling = IsCoolingDown(now);
        Interlocked.Exchange(ref _coolDownUntilTicks, (now + CoolDown).UtcTicks);
        return !wasCooling;
    }

    /// <summary>Records written bytes; says whether an automatic eviction pass is due.</summary>
    public bool NoteWrite(long bytes, DateTimeOffset now)
    {
        if (!HasLimits) return false;
        var total = Interlocked.Add(ref _bytesSinceEviction, bytes);
        var last = Interlocked.Read(ref _lastEvictionTicks);
        if (last == 0) return true;
        // Evict after a tenth of the size budget was written, or a tenth of the age limit passed (at most hourly).
        if (MaxSizeBytes is { } max && total >= Math.Max(1, max / 10)) return true;
        if (MaxAge is { } age && now.UtcTicks - last >= Math.Min(age.Ticks / 10, TimeSpan.TicksPerHour)) return true;
        return false;
    }

    /// <summary>Bytes written since the last call (and resets the count).</summary>
    public long TakeBytesSinceEviction() => Interlocked.Exchange(ref _bytesSinceEviction, 0);

    public bool TryBeginEviction() => Interlocked.CompareExchange(ref _evicting, 1, 0) == 0;

    public void EndEviction(DateTimeOffset now)
    {
        Interlocked.Exchange(ref _bytesSinceEviction, 0);
        Interlocked.Exchange(ref _lastEvictionTicks, Math.Max(1, now.UtcTicks));
        Interlocked.Exchange(ref _evicting, 0);
    }

    public CacheTierInfo Info(DateTimeOffset now) =>
        new(Index, Name, DisplayName, Access, IsAvailable, Problem, CoolingDownUntil(now), Timeout, MaxSizeBytes, MaxAge);
}
