namespace Ptd.Core

open System.Text

/// Size figures of a trace (for `ptd trace info`, logs and tests).
type TraceStats =
    { Ops: int
      /// (op kind name, count) for every kind, in OpKind order (zero counts included).
      OpsByKind: (string * int)[]
      Parameters: int
      Vertices: int
      Edges: int
      Commands: int
      /// Outputs = command multipliers + edge weights + vertex rates.
      Outputs: int
      Constants: int
      DotRows: int
      SumOperands: int }

    override s.ToString() =
        let sb = StringBuilder()
        sb.AppendFormat("ops {0}, commands {1}, parameters {2}, vertices {3}, edges {4}, outputs {5}",
                        s.Ops, s.Commands, s.Parameters, s.Vertices, s.Edges, s.Outputs) |> ignore
        for name, n in s.OpsByKind do
            if n > 0 then sb.AppendFormat("; {0} {1}", name, n) |> ignore
        sb.ToString()

module TraceStats =

    let compute (t: Trace) : TraceStats =
        let p = t.Program
        let counts = Array.zeroCreate OpKind.Count
        for k in p.Kinds do counts.[int k] <- counts.[int k] + 1
        { Ops = p.OpCount
          OpsByKind = OpKind.all |> Array.map (fun k -> OpKind.name k, counts.[int k])
          Parameters = t.ParamCount
          Vertices = t.VertexCount
          Edges = t.EdgeCount
          Commands = t.CommandCount
          Outputs = t.CommandCount + t.EdgeWeight.Length + t.VertexRate.Length
          Constants = p.Constants.Length
          DotRows = (if p.ParamCount + 1 = 0 then 0 else p.DotRows.Length / (p.ParamCount + 1))
          SumOperands = p.Operands.Length }
