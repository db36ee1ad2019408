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
    [<Literal>]
    let FormatRevision = 3

    /// Records the elimination of a graph as a program over θ (unoptimized: see `TracePasses`).
    let record (g: Graph) : Trace =
        if isNull g then Fail.withMessage "graph must not be null"
        let order = Order.compute g
        let p = g.ParamLength
        // Exact sizes for an acyclic graph (cyclic ones grow from there): the zero constant, one
        // weight op per edge, per non-absorbing vertex phase A's sum and inverse, one product
        // per edge, and the start vertex's rate sum.
        let e = g.EdgeCount
        let live = Seq.init g.VertexCount g.OutDegree |> Seq.filter (fun d -> d > 0) |> Seq.length
        let capacity =
            { Ops = 2 + 2 * e + 2 * live
              Constants = 1 + (if p = 0 then e else 0)
              DotRows = (if p = 0 then 0 else e)
              Operands = e + g.OutDegree 0 }
        let b = TraceBuilder(p, false, false, capacity)
        let zero = b.Const 0.0
        // Edge weights exactly as Graph.Weights computes them: the base alone when unparameterized,
        // otherwise base + Σ c_k θ_k from the left.
        let weights =
            Array.init g.EdgeCount (fun e -> if p = 0 then b.Const g.Bases.[e] else b.Dot(g.Bases.[e], g.Coefs, e * p))
        let cmds = Elimination.run (RecordingAlgebra(b, zero)) g order weights
        // Vertex rates: phase A already formed each λ_v as the left-to-right Sum of v's weights and
        // scaled x[v] by its inverse (the first |V| commands, in order position), so the rate is
        // that Inv's operand. Checked, with a fresh Sum as the fallback (and for the start vertex,
        // whose phase A command is a constant 0) — recording must not depend on this shortcut.
        let program = b.ToProgramView()
        let rates = Array.create g.VertexCount zero
        for i in 0 .. g.VertexCount - 1 do
            let v = order.Order.[i]
            let d = g.OutDegree v
            if d > 0 then
                let isRate o =
                    if program.Kinds.[o] <> OpKind.Sum || program.B.[o] <> d then false
                    else
                        let first = program.A.[o]
                        let e0 = g.EdgeStart v
                        let mutable j = 0
                        while j < d && program.Operands.[first + j] = weights.[e0 + j] do j <- j + 1
                        j = d
                let inv = if i < cmds.From.Length && cmds.From.[i] = v && cmds.To.[i] = v then cmds.Mult.[i] else -1
                rates.[v] <-
                    if inv >= 0 && program.Kinds.[inv] = OpKind.Inv && isRate program.A.[inv] then program.A.[inv]
                    else b.RawSum(weights, g.EdgeStart v, d)
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
