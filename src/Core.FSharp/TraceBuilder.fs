namespace Ptd.Core

open System
open System.Collections.Generic

/// Compares two slices of a growing buffer by content (hash-consing of Dot rows and Sum lists).
/// Floats are compared by bit pattern (0.0 and −0.0 differ), so sharing never changes a result.
[<Sealed>]
type internal SliceComparer<'T>(data: unit -> 'T[], bits: 'T -> int64) =
    interface IEqualityComparer<struct (int * int)> with
        member _.Equals(struct (s1, n1), struct (s2, n2)) =
            if n1 <> n2 then false
            else
                let d = data ()
                let mutable same = true
                let mutable i = 0
                while same && i < n1 do
                    if bits d.[s1 + i] <> bits d.[s2 + i] then same <- false
                    i <- i + 1
                same
        member _.GetHashCode(struct (s, n)) =
            let d = data ()
            let mutable h = HashCode()
            h.Add n
            for i in s .. s + n - 1 do h.Add(bits d.[i])
            h.ToHashCode()

/// One slot of `OpTable`: key, kind and op together, so a probe touches one cache line.
[<Struct; NoEquality; NoComparison>]
type internal OpEntry =
    val mutable Key: int64
    /// The op + 1; 0 = empty (a fresh array is all empty, no fill pass).
    val mutable Stored: int
    val mutable Kind: OpKind

/// Open-addressing hash table from (kind, a, b) to an op index: the hash-consing lookup runs once
/// per op of traces with millions of ops, where a generic Dictionary over tuples is several times
/// slower. Linear probing, power-of-two capacity, load ≤ 1/2. Key, kind and op sit in one entry:
/// the table of a million-op trace is tens of megabytes, so every probe is a cache miss, and
/// with three parallel arrays a lookup and its insert took three (rabbits3 R = 200: `cse` 270–370
/// ms with parallel arrays).
[<Sealed>]
type internal OpTable(expected: int) =
    let mutable entries: OpEntry[] =
        // room for `expected` ops at load ≤ 1/2, so a table sized from the op count never grows
        let mutable size = 1024
        while size < 2 * expected + 2 do size <- size * 2
        Array.zeroCreate size
    let mutable count = 0

    static member private Slot(k: OpKind, key: int64, mask: int) =
        let h = (uint64 key ^^^ (uint64 k <<< 59)) * 0x9E3779B97F4A7C15UL
        int (h >>> 33) &&& mask

    new() = OpTable(0)

    member private t.Grow() =
        let old = entries
        entries <- Array.zeroCreate (old.Length * 2)
        let mask = entries.Length - 1
        for i in 0 .. old.Length - 1 do
            if old.[i].Stored > 0 then
                let mutable s = OpTable.Slot(old.[i].Kind, old.[i].Key, mask)
                while entries.[s].Stored > 0 do s <- (s + 1) &&& mask
                entries.[s] <- old.[i]

    /// The op stored for (k, a, b), or −1.
    member t.Find(k: OpKind, a: int, b: int) : int =
        let key = (int64 a <<< 32) ||| int64 (uint32 b)
        let mask = entries.Length - 1
        let mutable s = OpTable.Slot(k, key, mask)
        let mutable result = -2
        while result = -2 do
            let e = &entries.[s]
            if e.Stored = 0 then result <- -1
            elif e.Key = key && e.Kind = k then result <- e.Stored - 1
            else s <- (s + 1) &&& mask
        result

    /// Stores op v for (k, a, b), which must not be present.
    member t.Add(k: OpKind, a: int, b: int, v: int) =
        if 2 * (count + 1) > entries.Length then t.Grow()
        let key = (int64 a <<< 32) ||| int64 (uint32 b)
        let mask = entries.Length - 1
        let mutable s = OpTable.Slot(k, key, mask)
        while entries.[s].Stored > 0 do s <- (s + 1) &&& mask
        let e = &entries.[s]
        e.Kind <- k
        e.Key <- key
        e.Stored <- v + 1
        count <- count + 1

/// Initial sizes of a builder's arrays (they grow by doubling when exceeded).
[<Struct>]
type TraceCapacity =
    { Ops: int
      Constants: int
      DotRows: int
      Operands: int }

    static member Default = { Ops = 64; Constants = 16; DotRows = 16; Operands = 64 }

/// Appends ops to a program. With `hashCons` equal ops are shared (commutative Add/Mul with sorted
/// operands, Const by bit pattern, Dot by row bytes, Sum by operand list); with `fold` ops whose
/// operands are all constants become constants, and x·1 becomes x. Both keep results bit-identical:
/// IEEE + and · are commutative, folding runs the very same operations, and x·1 = x exactly.
[<Sealed>]
type TraceBuilder(paramCount: int, hashCons: bool, fold: bool, capacity: TraceCapacity) =
    do if paramCount < 0 then Fail.format "paramCount must be ≥ 0 (got %d)" paramCount
    // Sized up front when the caller knows the sizes (recording does, exactly for acyclic
    // graphs): no doubling copies, and `ToProgram` can hand the arrays over without copying.
    let mutable kinds: OpKind[] = Array.zeroCreate (max 16 capacity.Ops)
    let mutable a: int[] = Array.zeroCreate kinds.Length
    let mutable b: int[] = Array.zeroCreate kinds.Length
    let mutable count = 0
    let mutable constants: float[] = Array.zeroCreate (max 16 capacity.Constants)
    let mutable constCount = 0
    let mutable rows: float[] = Array.zeroCreate ((max 16 capacity.DotRows) * (paramCount + 1))
    let mutable rowCount = 0
    let mutable operands: int[] = Array.zeroCreate (max 16 capacity.Operands)
    let mutable operandCount = 0
    let stride = paramCount + 1
    let nodes = if hashCons then OpTable(capacity.Ops) else OpTable()
    let constIndex = Dictionary<int64, int>()
    let rowIndex = Dictionary<struct (int * int), int>(SliceComparer<float>((fun () -> rows), BitConverter.DoubleToInt64Bits))
    let listIndex = Dictionary<struct (int * int), int>(SliceComparer<int>((fun () -> operands), int64))

    let push (k: OpKind) (x: int) (y: int) =
        if count = kinds.Length then
            let grow = kinds.Length * 2
            Array.Resize(&kinds, grow)
            Array.Resize(&a, grow)
            Array.Resize(&b, grow)
        kinds.[count] <- k
        a.[count] <- x
        b.[count] <- y
        count <- count + 1
        count - 1

    let node (k: OpKind) (x: int) (y: int) =
        if hashCons then
            let found = nodes.Find(k, x, y)
            if found >= 0 then found
            else
                let i = push k x y
                nodes.Add(k, x, y, i)
                i
        else push k x y

    let checkOperand (name: string) (x: int) =
        if x < 0 || x >= count then
            Fail.format "trace op %d: %s operand %d is not an earlier op (0..%d)" count name x (count - 1)

    let isConst (x: int) = kinds.[x] = OpKind.Const
    let constOf (x: int) = constants.[a.[x]]

    new(paramCount, hashCons, fold) = TraceBuilder(paramCount, hashCons, fold, TraceCapacity.Default)

    member _.ParamCount = paramCount
    member _.Count = count

    /// A constant (shared by bit pattern when hash-consing, so 0.0 and −0.0 stay distinct).
    member _.Const(value: float) : int =
        if hashCons then
            let bits = BitConverter.DoubleToInt64Bits value
            match constIndex.TryGetValue bits with
            | true, c -> node OpKind.Const c 0
            | _ ->
                if constCount = constants.Length then Array.Resize(&constants, constants.Length * 2)
                constants.[constCount] <- value
                constIndex.Add(bits, constCount)
                constCount <- constCount + 1
                node OpKind.Const (constCount - 1) 0
        else
            if constCount = constants.Length then Array.Resize(&constants, constants.Length * 2)
            constants.[constCount] <- value
            constCount <- constCount + 1
            push OpKind.Const (constCount - 1) 0

    member _.Param(k: int) : int =
        if k < 0 || k >= paramCount then Fail.format "parameter index %d is out of range (0..%d)" k (paramCount - 1)
        node OpKind.Param k 0

    /// b + c·θ (c has ParamCount entries, read from coefs[offset ..]).
    member t.Dot(baseValue: float, coefs: float[], offset: int) : int =
        if offset < 0 || offset + paramCount > coefs.Length then
            Fail.format "Dot: %d coefficient(s) needed from offset %d, array has %d" paramCount offset coefs.Length
        let mutable allZero = true
        for k in 0 .. paramCount - 1 do
            if coefs.[offset + k] <> 0.0 then allZero <- false
        // b + 0·θ_k = b exactly for finite θ, except that −0.0 + 0.0 = +0.0: leave −0.0 alone.
        if fold && allZero && not (baseValue = 0.0 && Double.IsNegative baseValue) then t.Const baseValue
        else
            if (rowCount + 1) * stride > rows.Length then Array.Resize(&rows, max ((rowCount + 1) * stride) (rows.Length * 2))
            let s = rowCount * stride
            rows.[s] <- baseValue
            Array.blit coefs offset rows (s + 1) paramCount
            if hashCons then
                match rowIndex.TryGetValue(struct (s, stride)) with
                | true, r -> node OpKind.Dot r 0
                | _ ->
                    rowIndex.Add(struct (s, stride), rowCount)
                    rowCount <- rowCount + 1
                    node OpKind.Dot (rowCount - 1) 0
            else
                rowCount <- rowCount + 1
                push OpKind.Dot (rowCount - 1) 0

    member t.Unary(k: OpKind, x: int) : int =
        if not (OpKind.isUnary k) then Fail.format "%s is not a unary op" (OpKind.name k)
        checkOperand "first" x
        if fold && isConst x then t.Const(OpMath.unary k (constOf x)) else node k x 0

    member t.Binary(k: OpKind, x: int, y: int) : int =
        if not (OpKind.isBinary k) then Fail.format "%s is not a binary op" (OpKind.name k)
        checkOperand "first" x
        checkOperand "second" y
        if fold && isConst x && isConst y then t.Const(OpMath.binary k (constOf x) (constOf y))
        elif fold && k = OpKind.Mul && isConst y && constOf y = 1.0 then x
        elif fold && k = OpKind.Mul && isConst x && constOf x = 1.0 then y
        elif hashCons && (k = OpKind.Add || k = OpKind.Mul) && y < x then node k y x
        else node k x y

    /// Σ values[start .. start + n − 1] (n ≥ 1), left to right from 0.0.
    member t.Sum(values: int[], start: int, n: int) : int =
        if n < 1 then Fail.withMessage "Sum needs at least one operand"
        if start < 0 || start + n > values.Length then Fail.format "Sum: slice %d..%d outside an array of %d" start (start + n - 1) values.Length
        let mutable allConst = true
        for i in start .. start + n - 1 do
            checkOperand "sum" values.[i]
            if not (isConst values.[i]) then allConst <- false
        if fold && allConst then
            let mutable s = 0.0
            for i in start .. start + n - 1 do s <- s + constOf values.[i]
            t.Const s
        else
            if operandCount + n > operands.Length then Array.Resize(&operands, max (operandCount + n) (operands.Length * 2))
            Array.blit values start operands operandCount n
            if hashCons then
                match listIndex.TryGetValue(struct (operandCount, n)) with
                | true, s -> node OpKind.Sum s n
                | _ ->
                    listIndex.Add(struct (operandCount, n), operandCount)
                    operandCount <- operandCount + n
                    node OpKind.Sum (operandCount - n) n
            else
                operandCount <- operandCount + n
                push OpKind.Sum (operandCount - n) n

    member t.Add(x, y) = t.Binary(OpKind.Add, x, y)
    member t.Sub(x, y) = t.Binary(OpKind.Sub, x, y)
    member t.Mul(x, y) = t.Binary(OpKind.Mul, x, y)
    member t.Div(x, y) = t.Binary(OpKind.Div, x, y)
    member t.Inv x = t.Unary(OpKind.Inv, x)
    member t.OneMinus x = t.Unary(OpKind.OneMinus, x)
    member t.Neg x = t.Unary(OpKind.Neg, x)
    member t.Log x = t.Unary(OpKind.Log, x)
    member t.Exp x = t.Unary(OpKind.Exp, x)

    /// Hot path for recording: no validation (the elimination only passes ops it got from here).
    member internal _.RawBinary(k: OpKind, x: int, y: int) = push k x y
    member internal _.RawUnary(k: OpKind, x: int) = push k x 0
    member internal _.RawSum(values: int[], start: int, n: int) =
        if operandCount + n > operands.Length then Array.Resize(&operands, max (operandCount + n) (operands.Length * 2))
        Array.blit values start operands operandCount n
        operandCount <- operandCount + n
        push OpKind.Sum (operandCount - n) n

    /// A read-only view of the ops so far (untrimmed arrays: valid indices < Count; operands,
    /// rows and constants likewise). Invalidated by the next append.
    member internal _.ToProgramView() : OpProgram =
        { ParamCount = paramCount; Kinds = kinds; A = a; B = b; Constants = constants; DotRows = rows; Operands = operands }

    /// The program built so far (arrays trimmed to size; handed over uncopied when full).
    /// The builder must not be used afterwards.
    member _.ToProgram() : OpProgram =
        let trim (xs: 'a[]) n = if xs.Length = n then xs else Array.sub xs 0 n
        { ParamCount = paramCount
          Kinds = trim kinds count
          A = trim a count
          B = trim b count
          Constants = trim constants constCount
          DotRows = trim rows (rowCount * stride)
          Operands = trim operands operandCount }
