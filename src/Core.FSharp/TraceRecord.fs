namespace Ptd.Core

/// The arithmetic of elimination on op indices: every operation appends an op and returns its
/// index. Running `Elimination.run` with this algebra records exactly what the float elimination
/// computes — phase A normalization, merges, the self-loop renormalization and the x-scale
/// commands — so the trace is exact on cyclic graphs by construction, not by imitation.
[<Struct>]
type internal RecordingAlgebra(builder: TraceBuilder, zero: int) =
    interface IAlgebra<int> with
        member _.Zero = zero
        member _.Add(x, y) = builder.RawBinary(OpKind.Add, x, y)
        member _.Mul(x, y) = builder.RawBinary(OpKind.Mul, x, y)
        member _.Inv(x) = builder.RawUnary(OpKind.Inv, x)
        member _.Sum(values, start, count) = builder.RawSum(values, start, count)

[<CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Trace =

    /// The trace format/recording revision. It is part of the model key and of every encoded
    /// trace: bump it whenever the binary encoding, the canonical model encoding or what recording
    /// produces changes, so that no cache can hand out a trace made by other rules.
    [<Literal>]
    let FormatRevision = 1

    /// Records the elimination of a graph as a program over θ (unoptimized: see `TracePasses`).
    let record (g: Graph) : Trace =
        if isNull g then Fail.withMessage "graph must not be null"
        let order = Order.compute g
        let p = g.ParamLength
        // Exact sizes for an acyclic graph (cyclic ones grow from there): the zero constant,
        // one weight op per edge, and per non-absorbing vertex a rate sum, phase A's sum and
        // inverse, and one product per edge.
        let e = g.EdgeCount
        let live = Seq.init g.VertexCount g.OutDegree |> Seq.filter (fun d -> d > 0) |> Seq.length
        let capacity =
            { Ops = 1 + 2 * e + 3 * live
              Constants = 1 + (if p = 0 then e else 0)
              DotRows = (if p = 0 then 0 else e)
              Operands = 2 * e }
        let b = TraceBuilder(p, false, false, capacity)
        let zero = b.Const 0.0
        // Edge weights exactly as Graph.Weights computes them: the base alone when unparameterized,
        // otherwise base + Σ c_k θ_k from the left.
        let weights =
            Array.init g.EdgeCount (fun e -> if p = 0 then b.Const g.Bases.[e] else b.Dot(g.Bases.[e], g.Coefs, e * p))
        // Rates are the same left-to-right sums the elimination forms in phase A; CSE merges them.
        let rates =
            Array.init g.VertexCount (fun v ->
                let d = g.OutDegree v
                if d = 0 then zero else b.RawSum(weights, g.EdgeStart v, d))
        let cmds = Elimination.run (RecordingAlgebra(b, zero)) g order weights
        { Graph = g
          Order = order
          Program = b.ToProgram()
          CmdFrom = cmds.From
          CmdTo = cmds.To
          CmdMult = cmds.Mult
          EdgeWeight = weights
          VertexRate = rates }

    /// The number of parameters θ the trace takes.
    let paramCount (t: Trace) = t.ParamCount
