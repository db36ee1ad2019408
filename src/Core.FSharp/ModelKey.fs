namespace Ptd.Core

open System
open System.Buffers.Binary
open System.Security.Cryptography

/// The content key of a model: lowercase hex of a SHA-256 digest (64 characters).
type TraceKey =
    internal
    | TraceKey of string

    member k.Hex = let (TraceKey h) = k in h
    override k.ToString() = k.Hex

    /// Parses a key from its hex form (64 hex digits; case-insensitive).
    static member Parse(hex: string) : TraceKey =
        if isNull hex then Fail.withMessage "trace key must not be null"
        let ok = hex.Length = 64 && hex |> Seq.forall Uri.IsHexDigit
        if not ok then
            Fail.format "'%s' is not a trace key: expected 64 hexadecimal digits (a SHA-256 digest)" hex
        TraceKey(hex.ToLowerInvariant())

/// Little-endian fixed-width writer (the canonical encodings are byte-exact across machines).
[<Sealed>]
type internal ByteWriter(capacity: int) =
    let mutable buf: byte[] = Array.zeroCreate (max capacity 64)
    let mutable len = 0

    member private _.Ensure(n: int) =
        if len + n > buf.Length then Array.Resize(&buf, max (len + n) (buf.Length * 2))

    member w.Bytes(b: ReadOnlySpan<byte>) =
        w.Ensure b.Length
        b.CopyTo(Span<byte>(buf, len, b.Length))
        len <- len + b.Length

    member w.U8(x: byte) =
        w.Ensure 1
        buf.[len] <- x
        len <- len + 1

    member w.I32(x: int) =
        w.Ensure 4
        BinaryPrimitives.WriteInt32LittleEndian(Span<byte>(buf, len, 4), x)
        len <- len + 4

    /// A count or index (must be ≥ 0).
    member w.U32(x: int) =
        if x < 0 then Fail.format "internal error: negative count %d in an encoding" x
        w.I32 x

    /// IEEE-754 binary64, little-endian, with −0.0 written as 0.0 (equal numbers, equal bytes).
    member w.F64(x: float) =
        w.Ensure 8
        let x = if x = 0.0 then 0.0 else x
        BinaryPrimitives.WriteInt64LittleEndian(Span<byte>(buf, len, 8), BitConverter.DoubleToInt64Bits x)
        len <- len + 8

    /// IEEE-754 binary64 little-endian with its exact bits (program constants, where even the
    /// sign of zero must survive a round trip).
    member w.F64Bits(x: float) =
        w.Ensure 8
        BinaryPrimitives.WriteInt64LittleEndian(Span<byte>(buf, len, 8), BitConverter.DoubleToInt64Bits x)
        len <- len + 8

    /// Many i32s: a block copy on little-endian machines (all .NET targets), else one by one.
    member w.I32s(xs: int[]) =
        if BitConverter.IsLittleEndian then w.Bytes(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan<int>(xs)))
        else for x in xs do w.I32 x

    /// Many doubles with their exact bits (see F64Bits).
    member w.F64sBits(xs: float[]) =
        if BitConverter.IsLittleEndian then w.Bytes(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan<float>(xs)))
        else for x in xs do w.F64Bits x

    /// Appends the SHA-256 of everything written so far.
    member w.AppendSha256() =
        let digest = Security.Cryptography.SHA256.HashData(ReadOnlySpan<byte>(buf, 0, len))
        w.Bytes(ReadOnlySpan<byte>(digest))

    member _.Length = len
    member _.ToArray() = if len = buf.Length then buf else Array.sub buf 0 len

/// The structural key of a model (algorithms.md §7, issue 3 §4): SHA-256 over a canonical,
/// versioned byte encoding of everything the trace embeds. Two models get the same key exactly
/// when they have the same canonical bytes — the same vertices in the same order with the same
/// states and the same edges with the same bases and coefficients — whatever process built them.
module ModelKey =

    /// The domain tag that starts every canonical model encoding.
    let DomainTag = "ptd-trace"

    /// The canonical encoding (fixed widths, little-endian):
    /// tag "ptd-trace" (9 ASCII bytes) · u32 revision · u8 discrete (0/1) · u32 state length L ·
    /// u32 parameter count P · u32 vertex count V · then per vertex in index order: its state
    /// (L × i32; none for the start vertex 0) · u32 out-degree · per out-edge sorted by target:
    /// u32 target · f64 base · P × f64 coefficients. Doubles: IEEE-754 LE, −0.0 → 0.0.
    let internal writeModel (w: ByteWriter) (g: Graph) =
        w.Bytes(ReadOnlySpan<byte>(Text.Encoding.ASCII.GetBytes DomainTag))
        w.U32 Trace.FormatRevision
        w.U8(if g.IsDiscrete then 1uy else 0uy)
        w.U32 g.StateLength
        w.U32 g.ParamLength
        w.U32 g.VertexCount
        let p = g.ParamLength
        for v in 0 .. g.VertexCount - 1 do
            if v > 0 then
                for x in g.States.[v] do w.I32 x
            let e0 = g.EdgeStart v
            let e1 = g.EdgeEnd v
            let mutable sorted = true
            for e in e0 + 1 .. e1 - 1 do
                if g.Targets.[e] < g.Targets.[e - 1] then sorted <- false
            // Graphs from the builder are already sorted by target; sort anyway (stable) when not,
            // so the key never depends on how the edges happened to be stored.
            let edges =
                if sorted then null
                else [| e0 .. e1 - 1 |] |> Array.sortBy (fun e -> g.Targets.[e])
            w.U32(e1 - e0)
            for j in 0 .. e1 - e0 - 1 do
                let e = if sorted then e0 + j else edges.[j]
                w.U32 g.Targets.[e]
                w.F64 g.Bases.[e]
                for k in 0 .. p - 1 do w.F64 g.Coefs.[e * p + k]

    /// The canonical bytes of a model (what the key hashes).
    let canonicalBytes (g: Graph) : byte[] =
        if isNull g then Fail.withMessage "graph must not be null"
        let w = ByteWriter(64 + g.VertexCount * (8 + 4 * g.StateLength) + g.EdgeCount * (12 + 8 * g.ParamLength))
        writeModel w g
        w.ToArray()

    let internal hex (digest: byte[]) = Convert.ToHexString(digest).ToLowerInvariant()

    /// The key of a model.
    let compute (g: Graph) : TraceKey = TraceKey(hex (SHA256.HashData(canonicalBytes g)))

    /// The key of the model a trace was recorded from.
    let ofTrace (t: Trace) : TraceKey = compute t.Graph
