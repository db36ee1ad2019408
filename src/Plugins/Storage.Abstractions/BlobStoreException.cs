namespace Ptd.Storage;

/// <summary>The broad class of a storage failure, so that the host can count and report it without parsing messages.</summary>
public enum BlobStoreErrorKind
{
    /// <summary>Anything not covered below.</summary>
    Unknown = 0,

    /// <summary>The server could not be reached or answered with a server error.</summary>
    Unavailable = 1,

    /// <summary>Credentials are missing, wrong or lack permission.</summary>
    Unauthorized = 2,

    /// <summary>The bucket or container does not exist.</summary>
    ContainerNotFound = 3,

    /// <summary>A write or delete was attempted on a read-only store.</summary>
    ReadOnly = 4,

    /// <summary>The store location or its options are invalid (a message says which and how to fix it).</summary>
    Configuration = 5,

    /// <summary>The server asked the client to slow down.</summary>
    Throttled = 6,

    /// <summary>
    /// The stored value failed an integrity check while being read (e.g. its bytes do not match the server's
    /// checksum). The caller should treat the key as damaged: the host counts it as a rejected entry and rewrites it.
    /// </summary>
    Corrupt = 7,

    /// <summary>
    /// The stored value is larger than the caller's read limit (<see cref="BlobStoreContext.MaxReadBytes"/>): the
    /// server declared or streamed more bytes than that, and the read stopped there. Like <see cref="Corrupt"/>, the
    /// entry is bad, not the store: the host counts it as a rejected entry. Added after the first release; hosts
    /// that do not know it treat it as <see cref="Unknown"/>.
    /// </summary>
    TooLarge = 8,
}

/// <summary>
/// A storage failure other than a miss. Messages name the store by its redacted display name and never
/// contain credentials or connection strings.
/// </summary>
public class BlobStoreException : Exception
{
    /// <summary>Creates a storage exception.</summary>
    /// <param name="kind">The class of failure.</param>
    /// <param name="message">What went wrong and how to fix it (no credentials).</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    public BlobStoreException(BlobStoreErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>The class of failure.</summary>
    public BlobStoreErrorKind Kind { get; }
}
