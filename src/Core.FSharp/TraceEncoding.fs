namespace Ptd.Core

open System
open System.Buffers.Binary
open System.Security.Cryptography

/// A bounds-checked little-endian reader over untrusted bytes. Every read checks the remaining
/// length first, and every declared count is checked against the bytes that would back it before
/// anything is allocated, so a hostile count can neither allocate nor loop beyond the input.
[<Sealed>]
type internal ByteReader(data: byte[], length: int, source: string) =
    let mutable pos = 0

    new(data: byte[], source: string) = ByteReader(data, data.Length, source)

    member _.Position = pos
    member _.Remaining = length - pos

    member r.Fail(what: string, detail: string) : 'a =
        Fail.format "%s: %s at byte %d: %s" source what pos detail

    member r.Need(n: int64, what: string) =
        if n < 0L || n > int64 (length - pos) then
            r.Fail(what, sprintf "the data is truncated (%d byte(s) needed, %d left)" n (length - pos))

    member r.Span(n: int, what: string) : ReadOnlySpan<byte> =
        r.Need(int64 n, what)
        let s = ReadOnlySpan<byte>(data, pos, n)
        pos <- pos + n
        s

    member r.Skip(n: int, what: string) =
        r.Need(int64 n, what)
        pos <- pos + n

    member r.U8(what: string) : byte =
        r.Need(1L, what)
        pos <- pos + 1
        data.[pos - 1]

    member r.I32(what: string) : int =
        BinaryPrimitives.ReadInt32LittleEndian(r.Span(4, what))

    member r.F64(what: string) : float =
        BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(r.Span(8, what)))

    /// Unchecked reads for hot loops whose bytes a single `Need` has already vouched for.
    member internal _.I32Unchecked() : int =
        let x = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(data, pos, 4))
        pos <- pos + 4
        x

    member internal _.F64Unchecked() : float =
        let x = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(ReadOnlySpan<byte>(data, pos, 8)))
        pos <- pos + 8
        x

    /// A count of items of `itemBytes` bytes each that must all still be in the input.
    member r.Count(what: string, itemBytes: int64) : int =
        let n = r.I32 what
        if n < 0 then r.Fail(what, sprintf "count %d is negative (or above 2^31)" n)
        if int64 n * itemBytes > int64 (length - pos) then
            r.Fail(what, sprintf "count %d needs %d byte(s) but only %d are left (corrupt or truncated)" n (int64 n * itemBytes) (length - pos))
        n

    /// `Count` for item `index` of a list; the message (formatted only on failure) names it.
    member r.CountOf(what: string, index: int, itemBytes: int64) : int =
        let n = BinaryPrimitives.ReadInt32LittleEndian(r.Span(4, what))
        if n < 0 then r.Fail(sprintf "%s %d" what index, sprintf "count %d is negative (or above 2^31)" n)
        if int64 n * itemBytes > int64 (length - pos) then
            r.Fail(sprintf "%s %d" what index,
                   sprintf "count %d needs %d byte(s) but only %d are left (corrupt or truncated)" n (int64 n * itemBytes) (length - pos))
        n

    // Bulk reads: one bounds check, then a block copy (the format is little-endian, like every
    // machine .NET runs on; a big-endian one takes the element loop).
    // Uninitialized: every element is written below, so zeroing large arrays first would be waste.
    member r.I32s(n: int, what: string) : int[] =
        r.Need(int64 n * 4L, what)
        let result = GC.AllocateUninitializedArray<int> n
        if BitConverter.IsLittleEndian then
            ReadOnlySpan<byte>(data, pos, n * 4).CopyTo(Runtime.InteropServices.MemoryMarshal.AsBytes(Span<int>(result)))
            pos <- pos + n * 4
        else
            for i in 0 .. n - 1 do result.[i] <- r.I32Unchecked()
        result

    member r.F64s(n: int, what: string) : float[] =
        r.Need(int64 n * 8L, what)
        let result = GC.AllocateUninitializedArray<float> n
        if BitConverter.IsLittleEndian then
            ReadOnlySpan<byte>(data, pos, n * 8).CopyTo(Runtime.InteropServices.MemoryMarshal.AsBytes(Span<float>(result)))
            pos <- pos + n * 8
        else
            for i in 0 .. n - 1 do result.[i] <- r.F64Unchecked()
        result

/// The parts a trace is assembled from after decoding (binary or JSON), validated in one place.
type internal TraceParts =
    { Graph: Graph
      Kinds: OpKind[]
      A: int[]
      B: int[]
      Constants: float[]
      DotRows: float[]
      Operands: int[]
      CmdFrom: int[]
      CmdTo: int[]
      CmdMult: int[]
      EdgeWeight: int[]
      VertexRate: int[] }

/// Versioned binary encoding of traces (documented in docs/trace-format.md) with a strict decoder:
/// anything malformed — truncated, bit-flipped, oversized counts, out-of-range indices, a model
/// that does not match its key — fails with a `PtdException` that says what and where.
module TraceEncoding =

    /// The 8 bytes every binary trace starts with.
    let Magic = "PTDTRACE"

    /// One vertex of a decoded model: state, and edges (target, base, coefficients).
    type internal VertexParts =
        { State: int[]
          Targets: int[]
          Bases: float[]
          Coefs: float[] }

    /// Builds the graph of a decoded model through `GraphBuilder` (duplicate edges rejected), so
    /// a decoded model passes exactly the checks of a freshly built one.
    let internal buildModel (source: string) (discrete: bool) (stateLength: int) (paramCount: int) (vertices: VertexParts[]) : Graph =
        if vertices.Length < 2 then
            Fail.format "%s: the model has %d vertex/vertices; it needs the start vertex and at least one state" source vertices.Length
        let b = GraphBuilder(stateLength, paramCount, discrete, DuplicateEdgePolicy.Reject)
        for v in 1 .. vertices.Length - 1 do
            let s = vertices.[v].State
            if s.Length <> stateLength then
                Fail.format "%s: vertex %d has a state of length %d, the model's state length is %d" source v s.Length stateLength
            let got = b.FindOrCreate s
            if got <> v then
                Fail.format "%s: vertex %d repeats the state [%s] of vertex %d" source v (String.Join(", ", s)) got
        for v in 0 .. vertices.Length - 1 do
            let vp = vertices.[v]
            for j in 0 .. vp.Targets.Length - 1 do
                if j > 0 && vp.Targets.[j] <= vp.Targets.[j - 1] then
                    Fail.format "%s: vertex %d: edges must be sorted by target without repeats (target %d after %d)"
                        source v vp.Targets.[j] vp.Targets.[j - 1]
                b.AddEdge(v, vp.Targets.[j], vp.Bases.[j], Array.sub vp.Coefs (j * paramCount) paramCount)
        b.Build()

    /// Validates the program and outputs against the model and assembles the trace.
    let internal assemble (source: string) (p: TraceParts) : Trace =
        let g = p.Graph
        let pc = g.ParamLength
        let n = p.Kinds.Length
        if p.A.Length <> n || p.B.Length <> n then Fail.format "%s: op arrays have different lengths" source
        if (int64 p.DotRows.Length) % int64 (pc + 1) <> 0L then
            Fail.format "%s: Dot rows hold %d numbers, not a multiple of %d (1 + parameter count)" source p.DotRows.Length (pc + 1)
        let rowCount = p.DotRows.Length / (pc + 1)
        let bad i (what: string) : unit = Fail.format "%s: op %d (%s): %s" source i (OpKind.name p.Kinds.[i]) what
        for i in 0 .. n - 1 do
            let a = p.A.[i]
            let b = p.B.[i]
            let earlier x = x >= 0 && x < i
            match p.Kinds.[i] with
            | OpKind.Const -> if a < 0 || a >= p.Constants.Length || b <> 0 then bad i (sprintf "constant index %d outside 0..%d" a (p.Constants.Length - 1))
            | OpKind.Param -> if a < 0 || a >= pc || b <> 0 then bad i (sprintf "parameter index %d outside 0..%d" a (pc - 1))
            | OpKind.Dot -> if a < 0 || a >= rowCount || b <> 0 then bad i (sprintf "row index %d outside 0..%d" a (rowCount - 1))
            | OpKind.Sum ->
                if a < 0 || b < 1 || int64 a + int64 b > int64 p.Operands.Length then
                    bad i (sprintf "operand list %d+%d outside the %d operands" a b p.Operands.Length)
                else
                    for j in a .. a + b - 1 do
                        if not (earlier p.Operands.[j]) then bad i (sprintf "operand %d is not an earlier op" p.Operands.[j])
            | k when OpKind.isUnary k -> if not (earlier a) || b <> 0 then bad i (sprintf "operand %d is not an earlier op" a)
            | k when OpKind.isBinary k ->
                if not (earlier a && earlier b) then bad i (sprintf "operands %d, %d are not both earlier ops" a b)
            | k -> Fail.format "%s: op %d has unknown kind %d (valid kinds are 0..%d)" source i (int k) (OpKind.Count - 1)
        let cmds = p.CmdFrom.Length
        if p.CmdTo.Length <> cmds || p.CmdMult.Length <> cmds then Fail.format "%s: command arrays have different lengths" source
        for c in 0 .. cmds - 1 do
            if p.CmdFrom.[c] < 0 || p.CmdFrom.[c] >= g.VertexCount || p.CmdTo.[c] < 0 || p.CmdTo.[c] >= g.VertexCount then
                Fail.format "%s: command %d refers to vertex %d -> %d outside 0..%d" source c p.CmdFrom.[c] p.CmdTo.[c] (g.VertexCount - 1)
            if p.CmdMult.[c] < 0 || p.CmdMult.[c] >= n then
                Fail.format "%s: command %d multiplier op %d outside 0..%d" source c p.CmdMult.[c] (n - 1)
        let checkOutputs (what: string) (ops: int[]) (expected: int) =
            if ops.Length <> expected then Fail.format "%s: %d %s for a model that needs %d" source ops.Length what expected
            for i in 0 .. ops.Length - 1 do
                if ops.[i] < 0 || ops.[i] >= n then Fail.format "%s: %s %d refers to op %d outside 0..%d" source what i ops.[i] (n - 1)
        checkOutputs "edge weights" p.EdgeWeight g.EdgeCount
        checkOutputs "vertex rates" p.VertexRate g.VertexCount
        { Graph = g
          Order = Order.compute g
          Program =
            { ParamCount = pc
              Kinds = p.Kinds
              A = p.A
              B = p.B
              Constants = p.Constants
              DotRows = p.DotRows
              Operands = p.Operands }
          CmdFrom = p.CmdFrom
          CmdTo = p.CmdTo
          CmdMult = p.CmdMult
          EdgeWeight = p.EdgeWeight
          VertexRate = p.VertexRate }

    /// Reads a canonical model encoding (ModelKey.writeModel) and rebuilds the graph.
    let internal readModel (r: ByteReader) : Graph =
        let tag = r.Span(ModelKey.DomainTag.Length, "model domain tag").ToArray()
        if Text.Encoding.ASCII.GetString tag <> ModelKey.DomainTag then r.Fail("model domain tag", "not \"ptd-trace\"")
        let rev = r.I32 "model revision"
        if rev <> Trace.FormatRevision then
            r.Fail("model revision", sprintf "revision %d, this library reads revision %d: re-record the trace" rev Trace.FormatRevision)
        let discrete =
            match r.U8 "discrete flag" with
            | 0uy -> false
            | 1uy -> true
            | x -> r.Fail("discrete flag", sprintf "%d is not 0 or 1" x)
        let l = r.Count("state length", 4L) // vertex 1 carries a state of L × 4 bytes
        let pc = r.Count("parameter count", 8L) // every edge carries P × 8 bytes, and there is ≥ 1 edge
        let v = r.Count("vertex count", 4L) // every vertex has at least its 4-byte degree
        let vertices =
            Array.init v (fun i ->
                let state = if i = 0 then [||] else r.I32s(l, "vertex state")
                // CountOf has checked that all deg edges are in the input: read them unchecked.
                let deg = r.CountOf("out-degree of vertex", i, 12L + 8L * int64 pc)
                let targets = Array.zeroCreate deg
                let bases = Array.zeroCreate deg
                let coefs = Array.zeroCreate (deg * pc)
                for j in 0 .. deg - 1 do
                    targets.[j] <- r.I32Unchecked()
                    bases.[j] <- r.F64Unchecked()
                    for k in 0 .. pc - 1 do coefs.[j * pc + k] <- r.F64Unchecked()
                { State = state; Targets = targets; Bases = bases; Coefs = coefs })
        buildModel "trace model" discrete l pc vertices

    let private sha256Length = 32

    /// Encodes a trace: magic · u32 revision · u32 model length · canonical model bytes ·
    /// 32-byte model key · program · outputs · 32-byte SHA-256 of everything before it.
    let encode (t: Trace) : byte[] =
        let p = t.Program
        let model = ModelKey.canonicalBytes t.Graph
        let w = ByteWriter(model.Length + 64 + p.OpCount * 9 + p.Constants.Length * 8 + p.DotRows.Length * 8 + p.Operands.Length * 4 + t.CommandCount * 12 + (t.EdgeCount + t.VertexCount) * 4 + 32)
        w.Bytes(ReadOnlySpan<byte>(Text.Encoding.ASCII.GetBytes Magic))
        w.U32 Trace.FormatRevision
        w.U32 model.Length
        w.Bytes(ReadOnlySpan<byte>(model))
        w.Bytes(ReadOnlySpan<byte>(SHA256.HashData model))
        w.U32 p.OpCount
        w.U32 p.Constants.Length
        w.U32 p.DotRows.Length
        w.U32 p.Operands.Length
        w.Bytes(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan<OpKind>(p.Kinds)))
        w.I32s p.A
        w.I32s p.B
        // Program constants keep their exact bits (the evaluation must not change).
        w.F64sBits p.Constants
        w.F64sBits p.DotRows
        w.I32s p.Operands
        w.U32 t.CommandCount
        for c in 0 .. t.CommandCount - 1 do
            w.I32 t.CmdFrom.[c]
            w.I32 t.CmdTo.[c]
            w.I32 t.CmdMult.[c]
        w.I32s t.EdgeWeight
        w.I32s t.VertexRate
        w.AppendSha256()
        w.ToArray()

    /// The trace and its model key (the stored key, verified against the canonical model bytes).
    /// With `expected` = Some model, the model section must be byte-for-byte the canonical encoding
    /// of that model, and the trace is assembled on it instead of a graph rebuilt from the payload.
    /// With `verifyChecksum` false the trailing SHA-256 is not recomputed (the caller has verified
    /// these exact bytes already); every structural check still runs.
    let private decodeChecked (expected: Graph option) (verifyChecksum: bool) (data: byte[]) : Trace * TraceKey =
        let source = "trace"
        let r = ByteReader(data, source)
        let magic = r.Span(Magic.Length, "magic").ToArray()
        if Text.Encoding.ASCII.GetString magic <> Magic then
            r.Fail("magic", "this is not a ptd trace file (it must start with \"PTDTRACE\")")
        let rev = r.I32 "format revision"
        if rev <> Trace.FormatRevision then
            r.Fail("format revision", sprintf "revision %d, this library reads revision %d: re-record the trace with this version" rev Trace.FormatRevision)
        if data.Length < 12 + sha256Length then r.Fail("checksum", "the data is too short to hold its checksum")
        let body = ReadOnlySpan<byte>(data, 0, data.Length - sha256Length)
        let stored = ReadOnlySpan<byte>(data, data.Length - sha256Length, sha256Length)
        if verifyChecksum && not (stored.SequenceEqual(ReadOnlySpan<byte>(SHA256.HashData body))) then
            Fail.format "%s: checksum mismatch: the file is corrupt or truncated (SHA-256 of the %d bytes before the last 32 differs from the stored one)" source body.Length
        // From here on read only the body (the checksum must not be parsed as data).
        let r = ByteReader(data, data.Length - sha256Length, source)
        r.Skip(Magic.Length + 4, "header")
        let modelLength = r.Count("model length", 1L)
        let modelStart = r.Position
        let g =
            match expected with
            | None -> readModel r
            | Some m ->
                // The requested model's canonical bytes must be exactly the payload's model
                // section: then the payload's model IS this model, and rebuilding it is moot.
                let canonical = ModelKey.canonicalBytes m
                let section = r.Span(modelLength, "model")
                if not (section.SequenceEqual(ReadOnlySpan<byte>(canonical))) then
                    Fail.format "the trace was recorded for model %s, not for the requested model %s"
                        (ModelKey.hex (SHA256.HashData section)) (ModelKey.hex (SHA256.HashData canonical))
                m
        if r.Position - modelStart <> modelLength then
            r.Fail("model", sprintf "the model section declares %d bytes but its content spans %d" modelLength (r.Position - modelStart))
        let model = ReadOnlySpan<byte>(data, modelStart, modelLength)
        let key = r.Span(sha256Length, "model key")
        let keyHex = ModelKey.hex (key.ToArray())
        if not (key.SequenceEqual(ReadOnlySpan<byte>(SHA256.HashData model))) then
            r.Fail("model key", "the stored key is not the SHA-256 of the model section")
        // The model bytes must be the canonical ones (e.g. no −0.0), or the key would lie.
        if expected.IsNone && not (ReadOnlySpan<byte>(ModelKey.canonicalBytes g).SequenceEqual model) then
            r.Fail("model", "the model section is not in canonical form")
        let ops = r.Count("op count", 9L)
        let nConst = r.Count("constant count", 8L)
        let nRow = r.Count("Dot row number count", 8L)
        let nOperand = r.Count("operand count", 4L)
        let kinds: OpKind[] = GC.AllocateUninitializedArray<OpKind> ops
        r.Span(ops, "op kinds").CopyTo(Runtime.InteropServices.MemoryMarshal.AsBytes(Span<OpKind>(kinds)))
        let a = r.I32s(ops, "op operands A")
        let b = r.I32s(ops, "op operands B")
        let consts = r.F64s(nConst, "constants")
        let rows = r.F64s(nRow, "Dot rows")
        let operands = r.I32s(nOperand, "Sum operands")
        let cmds = r.Count("command count", 12L)
        let cf = Array.zeroCreate cmds
        let ct = Array.zeroCreate cmds
        let cm = Array.zeroCreate cmds
        for c in 0 .. cmds - 1 do // Count checked that every command is in the input
            cf.[c] <- r.I32Unchecked()
            ct.[c] <- r.I32Unchecked()
            cm.[c] <- r.I32Unchecked()
        let ew = r.I32s(g.EdgeCount, "edge weight outputs")
        let vr = r.I32s(g.VertexCount, "vertex rate outputs")
        if r.Remaining <> 0 then r.Fail("end", sprintf "%d unexpected byte(s) after the trace" r.Remaining)
        let t =
            assemble source
                { Graph = g; Kinds = kinds; A = a; B = b; Constants = consts; DotRows = rows; Operands = operands
                  CmdFrom = cf; CmdTo = ct; CmdMult = cm; EdgeWeight = ew; VertexRate = vr }
        t, TraceKey keyHex

    let private decodeWithKey (expected: Graph option) (verifyChecksum: bool) (data: byte[]) : Trace * TraceKey =
        if isNull data then Fail.withMessage "trace data must not be null"
        try decodeChecked expected verifyChecksum data
        with
        | :? PtdException -> reraise ()
        // Defence in depth: a check we missed must still surface as a clear error, not a crash.
        | :? IndexOutOfRangeException
        | :? ArgumentException
        | :? OverflowException as e ->
            raise (PtdException(sprintf "trace: malformed data (%s: %s)" (e.GetType().Name) e.Message, e))

    /// Decodes a binary trace. Every failure is a `PtdException` naming the field and byte offset.
    let decode (data: byte[]) : Trace = fst (decodeWithKey None true data)

    /// Decodes a trace and checks that it was recorded for the model with key `expected`. (The
    /// decoder has verified that the stored key is the SHA-256 of the canonical model bytes, so
    /// the key need not be recomputed.)
    let decodeFor (expected: TraceKey) (data: byte[]) : Trace =
        let t, k = decodeWithKey None true data
        if k <> expected then
            Fail.format "the trace was recorded for model %s, not for the requested model %s" k.Hex expected.Hex
        t

    /// Decodes a trace of `model` (a cache hit: the caller holds the model it asked for). As strict
    /// as `decodeFor` — the payload's model section must be exactly the canonical encoding of
    /// `model`, so its key is `model`'s — but the trace is assembled on `model` itself instead of a
    /// graph rebuilt from the payload, which saves most of the decoding time of large acyclic models.
    let decodeForModel (model: Graph) (data: byte[]) : Trace =
        if isNull model then Fail.withMessage "model must not be null"
        fst (decodeWithKey (Some model) true data)

    /// `decodeForModel` for bytes whose integrity the caller has already verified with a
    /// cryptographic hash of exactly these bytes — the artifact cache's envelope carries a SHA-256
    /// of its payload — so the trailing checksum is not recomputed (one pass over the data fewer).
    /// Every structural check still runs: hostile bytes still fail with a `PtdException`, never
    /// crash, hang or allocate beyond the input.
    let decodeForModelPreverified (model: Graph) (data: byte[]) : Trace =
        if isNull model then Fail.withMessage "model must not be null"
        fst (decodeWithKey (Some model) false data)
