/// Model files (docs/model-format.md): the versioned JSON forms "ptd-graph/1" (states and edges,
/// parameterized weights) and "ptd-matrix/1" (α and S). Pure: strings in, strings out.
module Ptd.Core.ModelFile

open System
open System.Collections.Generic
open System.Globalization
open System.Text
open System.Text.Json

/// The graph form this version reads and writes.
[<Literal>]
let GraphFormat = "ptd-graph/1"

/// The matrix form this version reads and writes.
[<Literal>]
let MatrixFormat = "ptd-matrix/1"

let private supported = sprintf "%s, %s" GraphFormat MatrixFormat

let private fail fmt =
    Printf.ksprintf (fun (s: string) -> raise (PtdException("model file: " + s))) fmt

/// Re-raises an error of the graph builder or the matrix conversion as a model-file error.
let private wrap (ex: PtdException) (note: string) : 'a =
    raise (PtdException("model file: " + ex.Message + note, ex))

// ---------------------------------------------------------------------------------------------
// Reading JSON values with the path of the value in every error.

let private kindName (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.Object -> "an object"
    | JsonValueKind.Array -> "an array"
    | JsonValueKind.String -> "a string"
    | JsonValueKind.Number -> "a number"
    | JsonValueKind.True
    | JsonValueKind.False -> "a boolean"
    | JsonValueKind.Null -> "null"
    | _ -> "nothing"

/// Short excerpt of a value for messages (hostile input may hold huge literals).
let private raw (e: JsonElement) =
    let s = e.GetRawText()
    if s.Length > 40 then s.Substring(0, 40) + "…" else s

/// The fields of an object, rejecting duplicates and fields not in `allowed` (files are strict:
/// a misspelt optional field would otherwise be silently ignored).
let private fields (path: string) (e: JsonElement) (allowed: string list) =
    let where = if path = "" then "the top level" else path
    if e.ValueKind <> JsonValueKind.Object then
        fail "%s must be an object (got %s)" where (kindName e)
    let d = Dictionary<string, JsonElement>(StringComparer.Ordinal)
    for p in e.EnumerateObject() do
        if not (List.contains p.Name allowed) then
            let quoted = allowed |> List.map (sprintf "\"%s\"") |> String.concat ", "
            if path = "" then fail "unknown top-level field \"%s\" (allowed: %s)" p.Name quoted
            else fail "%s has unknown field \"%s\" (allowed: %s)" path p.Name quoted
        if d.ContainsKey p.Name then fail "field \"%s\" appears twice in %s" p.Name where
        d.[p.Name] <- p.Value
    d

/// "path[k]" (plain concatenation: paths are built for every value read, sprintf is too slow).
let private at (path: string) (k: int) = path + "[" + k.ToString(CultureInfo.InvariantCulture) + "]"

let private required (path: string) (d: Dictionary<string, JsonElement>) (name: string) =
    match d.TryGetValue name with
    | true, v -> v
    | _ ->
        if path = "" then fail "missing required field \"%s\"" name
        else fail "%s is missing the required field \"%s\"" path name

let private number (path: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Number then fail "%s must be a number (got %s)" path (kindName e)
    match e.TryGetDouble() with
    | true, x when Double.IsFinite x -> x
    | _ -> fail "%s = %s is not a finite number" path (raw e)

let private integer (path: string) (what: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Number then fail "%s must be %s (got %s)" path what (kindName e)
    match e.TryGetInt32() with
    | true, x -> x
    | _ -> fail "%s = %s must be %s" path (raw e) what

let private boolean (path: string) (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.True -> true
    | JsonValueKind.False -> false
    | _ -> fail "%s must be true or false (got %s)" path (kindName e)

let private array (path: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Array then fail "%s must be an array (got %s)" path (kindName e)
    // Materializing is backed by the input: one element per parsed JSON value (sized up front,
    // no growth copies).
    let a = Array.zeroCreate (e.GetArrayLength())
    let mutable i = 0
    for x in e.EnumerateArray() do
        a.[i] <- x
        i <- i + 1
    a

/// `number` without building the element's path string unless it fails: a 2000 × 2000 matrix
/// would otherwise allocate 4·10⁶ strings like "S[1234][567]" (over 1 GB for an 8 MB file).
let private numberLazy (path: unit -> string) (e: JsonElement) =
    if e.ValueKind = JsonValueKind.Number then
        match e.TryGetDouble() with
        | true, x when Double.IsFinite x -> x
        | _ -> number (path ()) e
    else number (path ()) e

let private optional (d: Dictionary<string, JsonElement>) name (read: JsonElement -> 'a) (fallback: 'a) =
    match d.TryGetValue name with
    | true, v -> read v
    | _ -> fallback

// ---------------------------------------------------------------------------------------------
// ptd-graph/1

let private graphFields = [ "format"; "discrete"; "stateLength"; "paramLength"; "states"; "start"; "edges" ]
let private edgeFields = [ "from"; "to"; "w"; "base"; "coef" ]
let private startFields = [ "to"; "w"; "base"; "coef" ]

/// Cap on the coefficient table (edges × paramLength, 8 bytes each) that a file may ask for
/// beyond what it spells out: a tiny file declaring paramLength = 10⁹ must not allocate gigabytes
/// of zero coefficients for its constant edges.
let private coefficientBudget (inputLength: int) = max (1L <<< 24) (16L * int64 inputLength)

/// The weight of an edge object: (base, coef) from "w" or from "base" + "coef".
let private weightOf (path: string) (d: Dictionary<string, JsonElement>) (paramLength: int) =
    let hasW = d.ContainsKey "w"
    let hasCoef = d.ContainsKey "coef"
    let hasBase = d.ContainsKey "base"
    if hasW && hasCoef then
        fail "%s has both \"w\" and \"coef\"; give either a constant weight \"w\" or \"coef\" (with optional \"base\") for base + coef·θ" path
    if hasW && hasBase then
        fail "%s has both \"w\" and \"base\"; a constant edge has only \"w\", a parameterized one \"base\" and \"coef\"" path
    if hasW then
        let w = number (path + ".w") d.["w"]
        if w < 0.0 then
            fail "%s.w = %s is negative; weights are rates (or probabilities) and must be ≥ 0" path (raw d.["w"])
        w, Array.zeroCreate paramLength
    elif hasCoef then
        let items = array (path + ".coef") d.["coef"]
        if items.Length <> paramLength then
            fail "%s.coef has %d entries but paramLength is %d" path items.Length paramLength
        let coef = items |> Array.mapi (fun k x -> numberLazy (fun () -> at (path + ".coef") k) x)
        let b = optional d "base" (number (path + ".base")) 0.0
        // With no parameter dependence, a negative base is a negative constant weight.
        if b < 0.0 && coef |> Array.forall (fun c -> c = 0.0) then
            fail "%s.base = %s is negative and coef is all zeros; the weight would be negative for every θ" path (raw d.["base"])
        b, coef
    elif hasBase then
        fail "%s has \"base\" but no \"coef\"; write a constant weight as \"w\"" path
    else
        fail "%s has no weight: give \"w\" (a constant) or \"coef\" (with optional \"base\") for base + coef·θ" path

let private vertexRange (count: int) =
    if count = 0 then "states is empty" else sprintf "states has %d entries, 0..%d" count (count - 1)

let private vertexIndex (path: string) (count: int) (e: JsonElement) =
    let v = integer path "an integer (a vertex index into states)" e
    if v < 0 || v >= count then fail "%s = %d is not a vertex (%s)" path v (vertexRange count)
    v

let private key (a: int) (b: int) = (int64 a <<< 32) ||| int64 (uint32 b)

let private parseGraph (root: JsonElement) (inputLength: int) : Graph =
    let d = fields "" root graphFields
    let discrete = optional d "discrete" (boolean "discrete") false
    let paramLength = optional d "paramLength" (integer "paramLength" "a non-negative integer") 0
    if paramLength < 0 then fail "paramLength = %d must be ≥ 0" paramLength
    let states = array "states" (required "" d "states")
    let stateLength =
        match d.TryGetValue "stateLength" with
        | true, v ->
            let l = integer "stateLength" "a non-negative integer" v
            if l < 0 then fail "stateLength = %d must be ≥ 0" l
            l
        | _ when states.Length = 0 -> 0
        | _ -> fail "missing required field \"stateLength\" (required when states is not empty)"
    let start = array "start" (required "" d "start")
    let edges = array "edges" (required "" d "edges")
    let n = states.Length
    if start.Length = 0 then fail "start is empty: give at least one start edge (the initial distribution α)"
    let table = int64 (start.Length + edges.Length) * int64 paramLength
    if table > coefficientBudget inputLength then
        fail "paramLength = %d with %d edges asks for %d coefficients, more than this %d-character file can back (limit %d); check paramLength"
            paramLength (start.Length + edges.Length) table inputLength (coefficientBudget inputLength)
    let b = GraphBuilder(stateLength, paramLength, discrete, DuplicateEdgePolicy.Reject)
    for i in 0 .. n - 1 do
        let path = at "states" i
        let entries = array path states.[i]
        if entries.Length <> stateLength then
            fail "%s has length %d but stateLength is %d" path entries.Length stateLength
        let state = entries |> Array.mapi (fun k x -> integer (at path k) "an integer" x)
        let existing = b.TryFind state
        if existing >= 0 then
            fail "%s = [%s] repeats states[%d]; every state must be distinct" path (String.Join(", ", state)) (existing - 1)
        b.FindOrCreate state |> ignore
    // File vertex i is graph vertex i + 1 (vertex 0 is the implicit start vertex).
    let seenStart = Dictionary<int, int>()
    for i in 0 .. start.Length - 1 do
        let path = at "start" i
        let e = fields path start.[i] startFields
        let target = vertexIndex (path + ".to") n (required path e "to")
        let w, coef = weightOf path e paramLength
        match seenStart.TryGetValue target with
        | true, first -> fail "%s duplicates start[%d] (both to %d); give each state at most one start edge" path first target
        | _ -> seenStart.[target] <- i
        b.AddStartEdge(target + 1, w, coef)
    let seen = Dictionary<int64, int>()
    // Discrete: the constant out-probabilities of a state are a lower bound of its total at any θ
    // (weights are ≥ 0), so a sum > 1 is an error now, with file positions, parameterized or not.
    let outSum = if discrete then Array.zeroCreate n else [||]
    for i in 0 .. edges.Length - 1 do
        let path = at "edges" i
        let e = fields path edges.[i] edgeFields
        let from = vertexIndex (path + ".from") n (required path e "from")
        let target = vertexIndex (path + ".to") n (required path e "to")
        if from = target then
            fail "%s is a self-loop (from = to = %d); drop it — in a discrete model the self-loop probability is implied as 1 − Σ out-probabilities" path from
        let w, coef = weightOf path e paramLength
        match seen.TryGetValue(key from target) with
        | true, first ->
            fail "%s duplicates edges[%d] (both from %d to %d); each pair of states may have at most one edge — add the weights into one" path first from target
        | _ -> seen.[key from target] <- i
        if outSum.Length > 0 && coef |> Array.forall (fun c -> c = 0.0) then outSum.[from] <- outSum.[from] + w
        b.AddEdge(from + 1, target + 1, w, coef)
    for v in 0 .. outSum.Length - 1 do
        if outSum.[v] > 1.0 + 1e-12 then
            fail "the out-probabilities of states[%d] sum to %s > 1; a discrete model's edges are probabilities (the self-loop is the missing mass 1 − Σ)" v (outSum.[v].ToString("R", CultureInfo.InvariantCulture))
    try
        b.Build()
    with :? PtdException as ex ->
        wrap ex " (vertex v is states[v − 1] of the file; vertex 0 is the start vertex)"

// ---------------------------------------------------------------------------------------------
// ptd-matrix/1

let private matrixFields = [ "format"; "discrete"; "alpha"; "S" ]

let private parseMatrix (root: JsonElement) : Graph =
    let d = fields "" root matrixFields
    let discrete = optional d "discrete" (boolean "discrete") false
    let alpha = array "alpha" (required "" d "alpha") |> Array.mapi (fun i x -> numberLazy (fun () -> at "alpha" i) x)
    let s =
        array "S" (required "" d "S")
        |> Array.mapi (fun i row ->
            array (at "S" i) row |> Array.mapi (fun j x -> numberLazy (fun () -> at (at "S" i) j) x))
    try
        Matrix.toGraph discrete alpha s
    with :? PtdException as ex ->
        wrap ex ""

// ---------------------------------------------------------------------------------------------
// Dispatch

/// Reads "ptd-graph/N" / "ptd-matrix/N" as (family, revision) when N is a number.
let private revision (format: string) =
    let slash = format.LastIndexOf '/'
    if slash <= 0 then None
    else
        match Int32.TryParse(format.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture) with
        | true, r -> Some(format.Substring(0, slash), r)
        | _ -> None

let private jsonOptions = JsonDocumentOptions(MaxDepth = 64)

let private parseDocument (json: string) =
    try
        JsonDocument.Parse(json, jsonOptions)
    with :? JsonException as ex ->
        // Keep the reader's reason but replace its 0-based "LineNumber: | BytePositionInLine:"
        // suffix by 1-based numbers, as editors count.
        let reason =
            match ex.Message.IndexOf(" LineNumber:", StringComparison.Ordinal) with
            | -1 -> ex.Message
            | k -> ex.Message.Substring(0, k)
        let line = if ex.LineNumber.HasValue then ex.LineNumber.Value + 1L else 0L
        let pos = if ex.BytePositionInLine.HasValue then ex.BytePositionInLine.Value + 1L else 0L
        raise (PtdException(sprintf "model file: invalid JSON at line %d, position %d: %s" line pos reason, ex))

/// The top-level object: dispatch on "format".
let private parseRoot (json: string) (root: JsonElement) : Graph =
    let format =
        let mutable found = None
        for p in root.EnumerateObject() do
            if p.Name = "format" then
                if found.IsSome then fail "field \"format\" appears twice in the top level"
                if p.Value.ValueKind <> JsonValueKind.String then
                    fail "format must be a string such as \"%s\" (got %s)" GraphFormat (kindName p.Value)
                found <- Some(p.Value.GetString())
        match found with
        | Some f -> f
        | None -> fail "missing required field \"format\"; supported formats: %s" supported
    match format with
    | GraphFormat -> parseGraph root json.Length
    | MatrixFormat -> parseMatrix root
    | _ ->
        match revision format with
        | Some(("ptd-graph" | "ptd-matrix") as family, r) when r > 1 ->
            fail "format \"%s\" is a newer revision; this version reads %s/1 (supported: %s) — upgrade ptd to read this file"
                format family supported
        | _ -> fail "unknown format \"%s\"; supported formats: %s" format supported

/// Reads a model file in either form (dispatch on "format") and returns its validated graph.
/// Every error is a PtdException whose message starts with "model file:" and names the field.
let parse (json: string) : Graph =
    if isNull json then fail "no input (null)"
    // A byte-order mark left in the text by a reader that did not strip it is not an error.
    let json = if json.StartsWith '\uFEFF' then json.Substring 1 else json
    use doc = parseDocument json
    let root = doc.RootElement
    if root.ValueKind <> JsonValueKind.Object then
        fail "the top level must be a JSON object with a \"format\" field (got %s)" (kindName root)
    // Defence in depth: nothing but PtdException leaves this function (e.g. a string holding a
    // lone surrogate escape, "\ud800", makes GetString throw InvalidOperationException).
    try
        parseRoot json root
    with
    | :? PtdException as ex when ex.Message.StartsWith("model file:", StringComparison.Ordinal) -> reraise ()
    | :? PtdException as ex -> wrap ex ""
    | :? InvalidOperationException
    | :? KeyNotFoundException
    | :? FormatException
    | :? OverflowException
    | :? ArgumentException as ex -> raise (PtdException("model file: " + ex.Message, ex))

// ---------------------------------------------------------------------------------------------
// Writing (StringBuilder appends, not sprintf: files of 10⁵ edges are written in milliseconds)

/// Shortest round-trip text, invariant culture: parse gives back the same bits.
let private num (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

let private appendList (sb: StringBuilder) (write: StringBuilder -> 'a -> unit) (xs: 'a[]) =
    sb.Append('[') |> ignore
    for i in 0 .. xs.Length - 1 do
        if i > 0 then sb.Append(", ") |> ignore
        write sb xs.[i]
    sb.Append(']') |> ignore

let private appendNum (sb: StringBuilder) (x: float) = sb.Append(num x) |> ignore
let private appendInt (sb: StringBuilder) (x: int) = sb.Append(x) |> ignore

/// Writes `"name": [` items, one per line `]`; `items` writes item i.
let private appendBlock (sb: StringBuilder) (name: string) (count: int) (item: int -> unit) (last: bool) =
    sb.Append("  \"").Append(name).Append("\": [") |> ignore
    if count > 0 then
        sb.Append('\n') |> ignore
        for i in 0 .. count - 1 do
            sb.Append("    ") |> ignore
            item i
            sb.Append(if i < count - 1 then ",\n" else "\n") |> ignore
        sb.Append("  ") |> ignore
    sb.Append(if last then "]\n" else "],\n") |> ignore

let private header (sb: StringBuilder) (format: string) (discrete: bool) =
    sb.Append("{\n  \"format\": \"").Append(format).Append("\",\n") |> ignore
    sb.Append("  \"discrete\": ").Append(if discrete then "true" else "false").Append(",\n") |> ignore

/// Writes a graph as "ptd-graph/1". parse (toJson g) rebuilds g exactly: same states, same edges
/// in the same order, bases and coefficients bit for bit.
let toJson (g: Graph) : string =
    if isNull g then fail "cannot write a null graph"
    let p = g.ParamLength
    let sb = StringBuilder(64 * (g.VertexCount + g.EdgeCount))
    let weight (e: int) =
        // Constant only when every coefficient is +0.0 bit for bit, so that -0.0 survives.
        let mutable constant = true
        for k in 0 .. p - 1 do
            if BitConverter.DoubleToInt64Bits g.Coefs.[e * p + k] <> 0L then constant <- false
        if constant then sb.Append("\"w\": ").Append(num g.Bases.[e]) |> ignore
        else
            sb.Append("\"base\": ").Append(num g.Bases.[e]).Append(", \"coef\": ") |> ignore
            appendList sb appendNum g.Coefs.[e * p .. e * p + p - 1]
        sb.Append('}') |> ignore
    header sb GraphFormat g.IsDiscrete
    sb.Append("  \"stateLength\": ").Append(g.StateLength).Append(",\n") |> ignore
    sb.Append("  \"paramLength\": ").Append(p).Append(",\n") |> ignore
    appendBlock sb "states" (g.VertexCount - 1) (fun i -> appendList sb appendInt g.States.[i + 1]) false
    let s0 = g.EdgeStart 0
    appendBlock sb "start" (g.OutDegree 0) (fun i ->
        sb.Append("{\"to\": ").Append(g.Targets.[s0 + i] - 1).Append(", ") |> ignore
        weight (s0 + i)) false
    // Edges of the state vertices are the CSR range after the start vertex's, in CSR order.
    let sources = Array.zeroCreate g.EdgeCount
    for v in 0 .. g.VertexCount - 1 do
        for e in g.EdgeStart v .. g.EdgeEnd v - 1 do sources.[e] <- v
    let e0 = g.EdgeEnd 0
    appendBlock sb "edges" (g.EdgeCount - e0) (fun i ->
        let e = e0 + i
        sb.Append("{\"from\": ").Append(sources.[e] - 1).Append(", \"to\": ").Append(g.Targets.[e] - 1).Append(", ") |> ignore
        weight e) true
    sb.Append("}\n").ToString()

/// Writes the matrix form "ptd-matrix/1" of a graph at concrete weights (`g.Weights theta`).
let toMatrixJson (g: Graph) (weights: float[]) : string =
    let m = Matrix.ofGraph g weights
    let sb = StringBuilder()
    header sb MatrixFormat m.Discrete
    sb.Append("  \"alpha\": ") |> ignore
    appendList sb appendNum m.Alpha
    sb.Append(",\n") |> ignore
    appendBlock sb "S" m.S.Length (fun i -> appendList sb appendNum m.S.[i]) true
    sb.Append("}\n").ToString()
