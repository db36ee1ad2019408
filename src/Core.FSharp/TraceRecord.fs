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
    /// 1: first release. 2: the elimination order inside a component is fill-reducing
    /// (`FillReducingOrder`), so the same model records other ops and commands. 3: self-loop
    /// renormalizations are deferred (`Elimination.DeferredRenormalizations`): other ops and commands.
    /// 4: phase A's normalization of a vertex inside a cycle is deferred too: other ops and commands.
    [<Literal>]
    let FormatRevision = 4

    /// Records the elimination of a graph as a program over θ (unoptimized: see `TracePasses`).
    let record (g: Graph) : Trace =
        if isNull g then Fail.withMessage "graph must not be null"
        let order = Order.compute g
        let p = g.ParamLength
        // Exact sizes for an acyclic graph (cyclic ones grow from there): the zero constant, one
        // weight op per edge, per non-absorbing vertex phase A's sum (its rate) and inverse, and
        // one product per edge; the sums read every weight once.
        let e = g.EdgeCount
        let live = Seq.init g.VertexCount g.OutDegree |> Seq.filter (fun d -> d > 0) |> Seq.length
        let capacity =
            { Ops = 1 + 2 * e + 2 * live
              Constants = 1 + (if p = 0 then e else 0)
              DotRows = (if p = 0 then 0 else e)
              Operands = e }
        let b = TraceBuilder(p, false, false, capacity)
        let zero = b.Const 0.0
        // Edge weights exactly as Graph.Weights computes them: the base alone when unparameterized,
        // otherwise base + Σ c_k θ_k from the left.
        let weights =
            Array.init g.EdgeCount (fun e -> if p = 0 then b.Const g.Bases.[e] else b.Dot(g.Bases.[e], g.Coefs, e * p))
        // Vertex rates: phase A forms each λ_v as the left-to-right Sum of v's weight ops (its
        // inverse scales x[v] or, deferred, v's row); the elimination hands those ops back.
        // Absorbing vertices keep the zero constant.
        let rates = Array.create g.VertexCount zero
        let cmds =
            Elimination.runDeferring Elimination.DeferredRenormalizations (RecordingAlgebra(b, zero)) g order weights rates
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
