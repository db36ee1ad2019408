namespace Ptd.Host.Caching;

/// <summary>
/// A read-only pass-through over the bytes of a tar archive that looks at every 512-byte header
/// before the tar reader does, and refuses an extended header (PAX 'x'/'g', GNU long name 'L'/'K')
/// that declares more than <see cref="MaxExtendedHeaderBytes"/>. Why: System.Formats.Tar rents a
/// buffer of an extended header's declared size before reading it, so one damaged size field in a
/// few hundred bytes of archive made the import allocate 256 MB (found by the archive fuzz test).
/// The archives we write carry extended headers of a few hundred bytes (path, times).
/// </summary>
internal sealed class TarHeaderGuard(Stream inner) : ForwardReadStream
{
    /// <summary>The largest extended header accepted.</summary>
    public const int MaxExtendedHeaderBytes = 64 * 1024;

    private const int Block = 512;
    private readonly byte[] _header = new byte[Block];
    private long _position;
    private long _nextHeader;
    private int _headerServed = Block; // bytes of _header already passed on (Block: none pending)

    public override long Passed => _position;

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (AtHeader)
        {
            var filled = 0;
            while (filled < Block)
            {
                var n = inner.Read(_header.AsSpan(filled));
                if (n == 0) break;
                filled += n;
            }
            if (!LoadHeader(filled)) return 0;
        }
        if (_headerServed < Block) return ServeHeader(buffer);
        return Advance(inner.Read(buffer[..DataAllowed(buffer.Length)]));
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        if (AtHeader)
        {
            var filled = 0;
            while (filled < Block)
            {
                var n = await inner.ReadAsync(_header.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
                filled += n;
            }
            if (!LoadHeader(filled)) return 0;
        }
        if (_headerServed < Block) return ServeHeader(buffer.Span);
        return Advance(await inner.ReadAsync(buffer[..DataAllowed(buffer.Length)], cancellationToken).ConfigureAwait(false));
    }

    // The next block is a header not yet read from the inner stream.
    private bool AtHeader => _headerServed == Block && _position == _nextHeader;

    // Checks the header block just read (false at a clean end) and works out where the next one starts.
    private bool LoadHeader(int filled)
    {
        if (filled == 0) return false;
        if (filled < Block) throw new EndOfStreamException("the archive ends inside a tar header");
        _headerServed = 0;
        var size = Size(_header);
        if (size > 1L << 50) throw new InvalidDataException($"a tar header declares {size} bytes");
        var type = (char)_header[156];
        if (type is 'x' or 'g' or 'L' or 'K' && size > MaxExtendedHeaderBytes)
            throw new UnsafeArchiveException(
                $"a tar extended header declares {size} bytes, more than the {MaxExtendedHeaderBytes} accepted (a decompression bomb or a damaged archive): refused");
        _nextHeader = _position + Block + (size + Block - 1) / Block * Block;
        return true;
    }

    // Data reads never run past the next header, so that every header passes through LoadHeader.
    private int DataAllowed(int requested) => (int)Math.Min(requested, _nextHeader - _position);

    private int ServeHeader(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, Block - _headerServed);
        _header.AsSpan(_headerServed, n).CopyTo(buffer);
        _headerServed += n;
        return Advance(n);
    }

    private int Advance(int n)
    {
        _position += n;
        return n;
    }

    // The size field (offset 124, 12 bytes): octal digits (NUL- or space-terminated), or base-256 when its first
    // byte has the high bit set. An all-zero block (the end-of-archive marker) has size 0.
    private static long Size(byte[] header)
    {
        var field = header.AsSpan(124, 12);
        if ((field[0] & 0x80) != 0)
        {
            long value = field[0] & 0x7F;
            for (var i = 1; i < field.Length; i++)
            {
                if (value > (long.MaxValue >> 8)) throw new InvalidDataException("a tar header's size field overflows");
                value = (value << 8) | field[i];
            }
            return value;
        }
        long size = 0;
        var digits = 0;
        foreach (var b in field)
        {
            if (b is 0 or (byte)' ')
            {
                if (digits > 0) break;
                continue;
            }
            if (b is < (byte)'0' or > (byte)'7') throw new InvalidDataException("a tar header's size field is not an octal number");
            size = size * 8 + (b - '0');
            digits++;
        }
        return size;
    }
}
