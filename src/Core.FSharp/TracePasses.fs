namespace Ptd.Core

open System
open System.Collections.Generic

/// Optimization passes, each a pure `Trace -> Trace`. All of them keep every output BIT-IDENTICAL
/// to the unoptimized trace (not merely within 1e-14): CSE only shares ops with identical operands
/// (operands of + and · sorted, which IEEE arithmetic does not notice), folding evaluates the same
/// IEEE operations in the same order (`OpMath`), x·1 = x is exact, and dead-op removal does no
/// arithmetic. Sums are never reassociated. The tests check bit-identity on the named models.
module TracePasses =

    /// Re-emits the live ops of `t` into a builder with the given options; outputs are remapped.
    let private rebuild (t: Trace) (hashCons: bool) (fold: bool) (live: bool[]) : Trace =
        let p = t.Program
        let n = p.OpCount
        let stride = p.ParamCount + 1
        // sized for the live ops up front: no doubling copies, and the hash-consing table never grows
        let capacity =
            { Ops = live |> Array.sumBy (fun l -> if l then 1 else 0)
              Constants = p.Constants.Length
              DotRows = p.DotRows.Length / stride
              Operands = p.Operands.Length }
        let b = TraceBuilder(p.ParamCount, hashCons, fold, capacity)
        let remap = Array.create n -1
        let mutable scratch: int[] = Array.zeroCreate 16
        for i in 0 .. n - 1 do
            if live.[i] then
                let k = p.Kinds.[i]
                let x = p.A.[i]
                remap.[i] <-
                    match k with
                    | OpKind.Const -> b.Const p.Constants.[x]
                    | OpKind.Param -> b.Param x
                    | OpKind.Dot -> b.Dot(p.DotRows.[x * stride], p.DotRows, x * stride + 1)
                    | OpKind.Sum ->
                        let count = p.B.[i]
                        if scratch.Length < count then scratch <- Array.zeroCreate (count * 2)
                        for j in 0 .. count - 1 do scratch.[j] <- remap.[p.Operands.[x + j]]
                        b.Sum(scratch, 0, count)
                    | k when OpKind.isUnary k -> b.Unary(k, remap.[x])
                    | k -> b.Binary(k, remap.[x], remap.[p.B.[i]])
        let map (ops: int[]) = ops |> Array.map (fun o -> remap.[o])
        { t with
            Program = b.ToProgram()
            CmdMult = map t.CmdMult
            EdgeWeight = map t.EdgeWeight
            VertexRate = map t.VertexRate }

    let private all (t: Trace) = Array.create t.OpCount true

    /// Hash-consing: equal ops (same kind, same operands, same constant bits / Dot row / Sum list)
    /// become one op. Without it every Dot appears once per use and every vertex sum twice.
    let cse (t: Trace) : Trace = rebuild t true false (all t)

    /// Constant folding: ops of constants become constants; x·1 becomes x.
    let fold (t: Trace) : Trace = rebuild t false true (all t)

    /// The ops that some output depends on.
    let liveOps (t: Trace) : bool[] =
        let p = t.Program
        let live = Array.zeroCreate p.OpCount
        for o in t.CmdMult do live.[o] <- true
        for o in t.EdgeWeight do live.[o] <- true
        for o in t.VertexRate do live.[o] <- true
        for i in p.OpCount - 1 .. -1 .. 0 do
            if live.[i] then
                match p.Kinds.[i] with
                | OpKind.Const | OpKind.Param | OpKind.Dot -> ()
                | OpKind.Sum ->
                    for j in p.A.[i] .. p.A.[i] + p.B.[i] - 1 do live.[p.Operands.[j]] <- true
                | k when OpKind.isUnary k -> live.[p.A.[i]] <- true
                | _ ->
                    live.[p.A.[i]] <- true
                    live.[p.B.[i]] <- true
        live

    /// Dead-op removal: drops ops no output depends on (and unreferenced constants, rows, operands).
    let dce (t: Trace) : Trace = rebuild t false false (liveOps t)

    /// Folding and hash-consing in one sweep (so folded constants are shared), then dead-op removal.
    let optimize (t: Trace) : Trace =
        let folded = rebuild t true true (all t)
        dce folded

    /// One edge-weight op per class of weight ops whose values are equal bit for bit at every θ:
    /// Dot ops with equal rows, Const ops with equal constants (the same IEEE operations on the
    /// same numbers); any other op is a class of its own. In the order of first use by an edge.
    let weightClasses (t: Trace) : int[] =
        let p = t.Program
        let stride = p.ParamCount + 1
        let rows = HashSet<struct (int * int)>(SliceComparer<float>((fun () -> p.DotRows), BitConverter.DoubleToInt64Bits))
        let consts = HashSet<int64>()
        let seen = Array.zeroCreate p.OpCount
        let classes = ResizeArray()
        for o in t.EdgeWeight do
            if not seen.[o] then
                seen.[o] <- true
                let fresh =
                    match p.Kinds.[o] with
                    | OpKind.Dot -> rows.Add(struct (p.A.[o] * stride, stride))
                    | OpKind.Const -> consts.Add(BitConverter.DoubleToInt64Bits p.Constants.[p.A.[o]])
                    | _ -> true
                if fresh then classes.Add o
        classes.ToArray()

    /// The share of a trace's ops that are edge-weight ops repeating an earlier one (equal Dot
    /// row or constant, by bits): a cheap, linear predictor of what `optimize` saves, since
    /// equal weights make equal rate sums, inverses and products downstream. Recording emits one
    /// weight op per edge; the coalescent's edges share few distinct weights (n = 30: 48,298
    /// edges, 88 distinct rows; `optimize` removes 82% of the ops), the rabbit models' elimination
    /// arithmetic dwarfs their weights (rabbits3 R = 200, fill-reducing order: 5.6%; `optimize`
    /// removes 8%).
    let duplicateWeightShare (t: Trace) : float =
        let distinctOps = t.EdgeWeight |> Array.distinct |> Array.length
        float (distinctOps - (weightClasses t).Length) / float (max 1 t.OpCount)
