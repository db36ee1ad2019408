namespace Ptd.Core

open System
open System.Globalization
open System.Text
open System.Text.Json

/// Readable JSON export/import of traces (docs/trace-format.md). One op per line; numbers in the
/// shortest round-trip form, so export → import gives a trace that evaluates bit-identically.
/// Import runs the same validation as the binary decoder.
module TraceJson =

    let private num (x: float) =
        if Double.IsNaN x then "\"NaN\""
        elif Double.IsPositiveInfinity x then "\"Infinity\""
        elif Double.IsNegativeInfinity x then "\"-Infinity\""
        else x.ToString("R", CultureInfo.InvariantCulture)

    let private ints (xs: seq<int>) = String.Join(", ", xs)
    let private nums (xs: seq<float>) = String.Join(", ", xs |> Seq.map num)

    /// The JSON text of a trace.
    let export (t: Trace) : string =
        let g = t.Graph
        let p = t.Program
        let pc = g.ParamLength
        let stride = pc + 1
        let sb = StringBuilder()
        let line (s: string) = sb.Append(s).Append('\n') |> ignore
        line "{"
        line "  \"format\": \"ptd-trace\","
        line (sprintf "  \"revision\": %d," Trace.FormatRevision)
        line (sprintf "  \"key\": \"%s\"," (ModelKey.ofTrace t).Hex)
        line "  \"model\": {"
        line (sprintf "    \"discrete\": %s," (if g.IsDiscrete then "true" else "false"))
        line (sprintf "    \"stateLength\": %d," g.StateLength)
        line (sprintf "    \"paramCount\": %d," pc)
        line "    \"vertices\": ["
        for v in 0 .. g.VertexCount - 1 do
            let edges =
                [ for e in g.EdgeStart v .. g.EdgeEnd v - 1 ->
                      sprintf "{\"to\": %d, \"base\": %s, \"coef\": [%s]}" g.Targets.[e] (num g.Bases.[e])
                          (nums [ for k in 0 .. pc - 1 -> g.Coefs.[e * pc + k] ]) ]
            line (sprintf "      {\"state\": [%s], \"edges\": [%s]}%s" (ints g.States.[v]) (String.Join(", ", edges))
                      (if v < g.VertexCount - 1 then "," else ""))
        line "    ]"
        line "  },"
        line "  \"ops\": ["
        for i in 0 .. p.OpCount - 1 do
            let k = p.Kinds.[i]
            let a = p.A.[i]
            let body =
                match k with
                | OpKind.Const -> num p.Constants.[a]
                | OpKind.Param -> string a
                | OpKind.Dot -> sprintf "%s, [%s]" (num p.DotRows.[a * stride]) (nums p.DotRows.[a * stride + 1 .. a * stride + pc])
                | OpKind.Sum -> sprintf "[%s]" (ints p.Operands.[a .. a + p.B.[i] - 1])
                | k when OpKind.isUnary k -> string a
                | _ -> sprintf "%d, %d" a p.B.[i]
            line (sprintf "    [\"%s\", %s]%s" (OpKind.name k) body (if i < p.OpCount - 1 then "," else ""))
        line "  ],"
        line "  \"commands\": ["
        for c in 0 .. t.CommandCount - 1 do
            line (sprintf "    [%d, %d, %d]%s" t.CmdFrom.[c] t.CmdTo.[c] t.CmdMult.[c] (if c < t.CommandCount - 1 then "," else ""))
        line "  ],"
        line (sprintf "  \"edgeWeights\": [%s]," (ints t.EdgeWeight))
        line (sprintf "  \"vertexRates\": [%s]" (ints t.VertexRate))
        line "}"
        sb.ToString()

    // ---- import ------------------------------------------------------------------------------

    let private fail (path: string) (what: string) : 'a = Fail.format "trace JSON, %s: %s" path what

    let private prop (path: string) (e: JsonElement) (name: string) =
        if e.ValueKind <> JsonValueKind.Object then fail path "expected an object"
        match e.TryGetProperty name with
        | true, x -> x
        | _ -> fail path (sprintf "missing \"%s\"" name)

    let private arr (path: string) (e: JsonElement) =
        if e.ValueKind <> JsonValueKind.Array then fail path "expected an array"
        [| for x in e.EnumerateArray() -> x |]

    let private jint (path: string) (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.Number ->
            match e.TryGetInt32() with
            | true, x -> x
            | _ -> fail path (sprintf "%s is not a 32-bit integer" (e.GetRawText()))
        | _ -> fail path "expected an integer"

    let private jfloat (path: string) (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.Number ->
            match Double.TryParse(e.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, x when Double.IsFinite x -> x
            | _ -> fail path (sprintf "%s is not a finite double" (e.GetRawText()))
        | JsonValueKind.String ->
            match e.GetString() with
            | "NaN" -> Double.NaN
            | "Infinity" -> Double.PositiveInfinity
            | "-Infinity" -> Double.NegativeInfinity
            | s -> fail path (sprintf "\"%s\" is not a number" s)
        | _ -> fail path "expected a number"

    let private jbool (path: string) (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.True -> true
        | JsonValueKind.False -> false
        | _ -> fail path "expected true or false"

    let private importDoc (root: JsonElement) : Trace =
        if (prop "$" root "format").ValueKind <> JsonValueKind.String || (prop "$" root "format").GetString() <> "ptd-trace" then
            fail "$.format" "expected \"ptd-trace\""
        let rev = jint "$.revision" (prop "$" root "revision")
        if rev <> Trace.FormatRevision then
            fail "$.revision" (sprintf "revision %d, this library reads revision %d: re-record the trace" rev Trace.FormatRevision)
        let m = prop "$" root "model"
        let discrete = jbool "$.model.discrete" (prop "$.model" m "discrete")
        let l = jint "$.model.stateLength" (prop "$.model" m "stateLength")
        let pc = jint "$.model.paramCount" (prop "$.model" m "paramCount")
        if l < 0 || pc < 0 then fail "$.model" "stateLength and paramCount must be ≥ 0"
        let vertices =
            arr "$.model.vertices" (prop "$.model" m "vertices")
            |> Array.mapi (fun v ve ->
                let path = sprintf "$.model.vertices[%d]" v
                let state = arr (path + ".state") (prop path ve "state") |> Array.mapi (fun i x -> jint (sprintf "%s.state[%d]" path i) x)
                let edges = arr (path + ".edges") (prop path ve "edges")
                // grown as read: a hostile paramCount must not size an allocation
                let coefs = ResizeArray<float>()
                let targets =
                    edges |> Array.mapi (fun j ee ->
                        let ep = sprintf "%s.edges[%d]" path j
                        let c = arr (ep + ".coef") (prop ep ee "coef")
                        if c.Length <> pc then fail (ep + ".coef") (sprintf "%d coefficient(s), the model has %d parameter(s)" c.Length pc)
                        c |> Array.iteri (fun k x -> coefs.Add(jfloat (sprintf "%s.coef[%d]" ep k) x))
                        jint (ep + ".to") (prop ep ee "to"))
                let bases = edges |> Array.mapi (fun j ee -> jfloat (sprintf "%s.edges[%d].base" path j) (prop path ee "base"))
                ({ State = state; Targets = targets; Bases = bases; Coefs = coefs.ToArray() }: TraceEncoding.VertexParts))
        let g = TraceEncoding.buildModel "trace JSON model" discrete l pc vertices
        match root.TryGetProperty "key" with
        | true, k ->
            let expected = (ModelKey.compute g).Hex
            if k.ValueKind <> JsonValueKind.String || k.GetString() <> expected then
                fail "$.key" (sprintf "does not match the model (its key is %s); fix the model or remove \"key\"" expected)
        | _ -> ()
        let ops = arr "$.ops" (prop "$" root "ops")
        let kinds = Array.zeroCreate ops.Length
        let a = Array.zeroCreate ops.Length
        let b = Array.zeroCreate ops.Length
        let consts = ResizeArray<float>()
        let rows = ResizeArray<float>()
        let operands = ResizeArray<int>()
        ops |> Array.iteri (fun i oe ->
            let path = sprintf "$.ops[%d]" i
            let items = arr path oe
            if items.Length < 2 || items.[0].ValueKind <> JsonValueKind.String then fail path "expected [\"kind\", operands...]"
            let name = items.[0].GetString()
            let k =
                match OpKind.tryParse name with
                | Some k -> k
                | None -> fail path (sprintf "unknown op \"%s\" (known: %s)" name (String.Join(", ", OpKind.all |> Array.map OpKind.name)))
            let need n = if items.Length <> n then fail path (sprintf "%s takes %d field(s) after the name" name (n - 1))
            kinds.[i] <- k
            match k with
            | OpKind.Const ->
                need 2
                a.[i] <- consts.Count
                consts.Add(jfloat (path + "[1]") items.[1])
            | OpKind.Dot ->
                need 3
                a.[i] <- rows.Count / (pc + 1)
                rows.Add(jfloat (path + "[1]") items.[1])
                let c = arr (path + "[2]") items.[2]
                if c.Length <> pc then fail (path + "[2]") (sprintf "%d coefficient(s), the model has %d parameter(s)" c.Length pc)
                c |> Array.iteri (fun j x -> rows.Add(jfloat (sprintf "%s[2][%d]" path j) x))
            | OpKind.Sum ->
                need 2
                let xs = arr (path + "[1]") items.[1]
                a.[i] <- operands.Count
                b.[i] <- xs.Length
                xs |> Array.iteri (fun j x -> operands.Add(jint (sprintf "%s[1][%d]" path j) x))
            | OpKind.Param -> need 2; a.[i] <- jint (path + "[1]") items.[1]
            | k when OpKind.isUnary k -> need 2; a.[i] <- jint (path + "[1]") items.[1]
            | _ ->
                need 3
                a.[i] <- jint (path + "[1]") items.[1]
                b.[i] <- jint (path + "[2]") items.[2])
        let commands = arr "$.commands" (prop "$" root "commands")
        let cmd j c =
            commands |> Array.mapi (fun i ce ->
                let xs = arr (sprintf "$.commands[%d]" i) ce
                if xs.Length <> 3 then fail (sprintf "$.commands[%d]" i) "expected [from, to, op]"
                jint (sprintf "$.commands[%d][%d]" i j) xs.[c])
        let outputs name = arr ("$." + name) (prop "$" root name) |> Array.mapi (fun i x -> jint (sprintf "$.%s[%d]" name i) x)
        TraceEncoding.assemble "trace JSON"
            { Graph = g; Kinds = kinds; A = a; B = b
              Constants = consts.ToArray(); DotRows = rows.ToArray(); Operands = operands.ToArray()
              CmdFrom = cmd 0 0; CmdTo = cmd 1 1; CmdMult = cmd 2 2
              EdgeWeight = outputs "edgeWeights"; VertexRate = outputs "vertexRates" }

    /// Imports a trace from its JSON text (validated like a binary trace).
    let import (json: string) : Trace =
        if isNull json then Fail.withMessage "trace JSON must not be null"
        let doc =
            try JsonDocument.Parse(json, JsonDocumentOptions(MaxDepth = 16))
            with :? JsonException as e -> raise (PtdException(sprintf "trace JSON is not valid JSON: %s" e.Message, e))
        use doc = doc
        // Defence in depth: nothing but PtdException leaves (a lone surrogate escape such as
        // "\ud800" makes GetString throw InvalidOperationException).
        try
            importDoc doc.RootElement
        with
        | :? InvalidOperationException
        | :? Collections.Generic.KeyNotFoundException
        | :? FormatException
        | :? OverflowException
        | :? ArgumentException as e -> raise (PtdException(sprintf "trace JSON: %s" e.Message, e))
