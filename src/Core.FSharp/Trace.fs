namespace Ptd.Core

open System

/// The operations of a trace program (algorithms.md §6). Op i reads only ops j < i (SSA).
/// The byte values are part of the binary trace format: never renumber, only append.
type OpKind =
    /// A constant (payload: index into `Constants`).
    | Const = 0uy
    /// θ_k (payload: k).
    | Param = 1uy
    /// b + Σ_k c_k θ_k, summed left to right starting from b — exactly the order of
    /// `Graph.Weights`, so recorded edge weights are bit-identical to the concrete ones.
    /// (payload: row index into `DotRows`, each row = b, c_0 .. c_{P-1}).
    | Dot = 2uy
    | Add = 3uy
    | Sub = 4uy
    | Mul = 5uy
    | Div = 6uy
    /// 1 / a.
    | Inv = 7uy
    /// Σ of an operand list, left to right starting from 0.0 (payload: start and count in `Operands`).
    | Sum = 8uy
    /// 1 − a.
    | OneMinus = 9uy
    /// −a.
    | Neg = 10uy
    /// Natural logarithm.
    | Log = 11uy
    | Exp = 12uy

module OpKind =
    /// Number of op kinds (the valid byte values are 0 .. count − 1).
    [<Literal>]
    let Count = 13

    let name (k: OpKind) =
        match k with
        | OpKind.Const -> "const"
        | OpKind.Param -> "param"
        | OpKind.Dot -> "dot"
        | OpKind.Add -> "add"
        | OpKind.Sub -> "sub"
        | OpKind.Mul -> "mul"
        | OpKind.Div -> "div"
        | OpKind.Inv -> "inv"
        | OpKind.Sum -> "sum"
        | OpKind.OneMinus -> "one_minus"
        | OpKind.Neg -> "neg"
        | OpKind.Log -> "log"
        | OpKind.Exp -> "exp"
        | _ -> sprintf "op%d" (int k)

    let all: OpKind[] = [| for i in 0 .. Count - 1 -> LanguagePrimitives.EnumOfValue(byte i) |]

    let tryParse (s: string) = all |> Array.tryFind (fun k -> name k = s)

    /// Ops with two operand ops (A, B).
    let isBinary (k: OpKind) =
        k = OpKind.Add || k = OpKind.Sub || k = OpKind.Mul || k = OpKind.Div

    /// Ops with one operand op (A).
    let isUnary (k: OpKind) =
        k = OpKind.Inv || k = OpKind.OneMinus || k = OpKind.Neg || k = OpKind.Log || k = OpKind.Exp

/// The scalar semantics of every op. The reference interpreter, constant folding and the fast
/// evaluators all use exactly these IEEE operations in this order, which is why they agree bit for bit.
module OpMath =
    let inline unary (k: OpKind) (x: float) =
        match k with
        | OpKind.Inv -> 1.0 / x
        | OpKind.OneMinus -> 1.0 - x
        | OpKind.Neg -> -x
        | OpKind.Log -> Math.Log x
        | OpKind.Exp -> Math.Exp x
        | _ -> Fail.format "internal error: %A is not a unary op" k

    let inline binary (k: OpKind) (x: float) (y: float) =
        match k with
        | OpKind.Add -> x + y
        | OpKind.Sub -> x - y
        | OpKind.Mul -> x * y
        | OpKind.Div -> x / y
        | _ -> Fail.format "internal error: %A is not a binary op" k

/// A straight-line program over θ in struct-of-arrays form. Payloads: Const → A = constant index;
/// Param → A = k; Dot → A = row; Sum → A = first operand, B = operand count; unary → A; binary → A, B.
/// Values are immutable once built (the arrays are never written after construction).
type OpProgram =
    internal
        { ParamCount: int
          Kinds: OpKind[]
          A: int[]
          B: int[]
          Constants: float[]
          /// Rows of ParamCount + 1 numbers: b, c_0 .. c_{P-1}.
          DotRows: float[]
          Operands: int[] }

    member p.OpCount = p.Kinds.Length
    member p.Parameters = p.ParamCount
    member p.Kind(i: int) = p.Kinds.[i]

/// An elimination trace: the op program plus its designated outputs — (a) the reward-command list
/// `x[From] += value(Mult) · x[To]` (From = To: scale) in phase A/B/C order, and (b) the ORIGINAL
/// chain's per-edge weights (CSR order of `Graph`) and per-vertex total out-rates, which the
/// distribution functions need. The model graph is kept: it defines the key, the rewards by state
/// slot, and the edge structure the weights belong to.
type Trace =
    internal
        { Graph: Graph
          Order: VertexOrder
          Program: OpProgram
          CmdFrom: int[]
          CmdTo: int[]
          CmdMult: int[]
          EdgeWeight: int[]
          VertexRate: int[] }

    member t.Model = t.Graph
    /// The op program (read-only: its arrays are internal).
    member t.Ops = t.Program
    member t.ParamCount = t.Graph.ParamLength
    member t.OpCount = t.Program.Kinds.Length
    member t.CommandCount = t.CmdFrom.Length
    member t.VertexCount = t.Graph.VertexCount
    member t.EdgeCount = t.Graph.EdgeCount

    override t.ToString() =
        sprintf "Trace(%d ops, %d commands, %d parameter(s), model %O)" t.OpCount t.CommandCount t.ParamCount t.Graph
