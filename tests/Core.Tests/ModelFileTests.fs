module Ptd.Core.Tests.ModelFileTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Tests

// ---------------------------------------------------------------------------------------------
// Helpers

let private bits (x: float) = BitConverter.DoubleToInt64Bits x

/// Two graphs are identical: same flags, states, CSR layout, bases and coefficients bit for bit.
let private expectIdentical (actual: Graph) (expected: Graph) =
    Expect.equal actual.IsDiscrete expected.IsDiscrete "discrete"
    Expect.equal actual.StateLength expected.StateLength "stateLength"
    Expect.equal actual.ParamLength expected.ParamLength "paramLength"
    Expect.equal actual.VertexCount expected.VertexCount "vertex count"
    Expect.equal actual.States expected.States "states"
    Expect.equal actual.Offsets expected.Offsets "edge offsets"
    Expect.equal actual.Targets expected.Targets "edge targets"
    Expect.equal (Array.map bits actual.Bases) (Array.map bits expected.Bases) "bases (bits)"
    Expect.equal (Array.map bits actual.Coefs) (Array.map bits expected.Coefs) "coefficients (bits)"

let private moments (g: Graph) (theta: float[]) =
    Moments.moments (Elimination.eliminate g theta) (Rewards.ones g) 2

let private expectClose (rel: float) (actual: float) (expected: float) (what: string) =
    let err = abs (actual - expected)
    if err > rel * max (abs expected) 1e-300 then
        failtestf "%s: got %.17g, expected %.17g (error %g > %g relative)" what actual expected (err / abs expected) rel

/// Entries equal up to `rel` of the row's scale (max |entry|): diagonals are recomputed sums.
let private expectMatrixClose (rel: float) (actual: float[][]) (expected: float[][]) (what: string) =
    Expect.equal actual.Length expected.Length (what + ": rows")
    for i in 0 .. expected.Length - 1 do
        Expect.equal actual.[i].Length expected.[i].Length (sprintf "%s: row %d length" what i)
        let scale = expected.[i] |> Array.map abs |> Array.max
        for j in 0 .. expected.[i].Length - 1 do
            if abs (actual.[i].[j] - expected.[i].[j]) > rel * scale then
                failtestf "%s[%d][%d]: got %.17g, expected %.17g" what i j actual.[i].[j] expected.[i].[j]

let private parseError (json: string) : string =
    try
        ModelFile.parse json |> ignore
        failtest "expected the file to be rejected"
    with
    | :? PtdException as ex -> ex.Message
    | :? Expecto.AssertException -> reraise ()
    | ex -> failtestf "expected a PtdException, got %s: %s" (ex.GetType().FullName) ex.Message

/// A discrete cyclic model: a random walk on 0..4 (absorbing ends), up 0.3, down 0.5, stay 0.2.
let private walk () =
    Builder.fromCallback 1 0 true [ Transition.Constant([| 2 |], 1.0) ] (fun s ->
        let k = s.[0]
        if k = 0 || k = 4 then Seq.empty
        else seq { Transition.Constant([| k + 1 |], 0.3); Transition.Constant([| k - 1 |], 0.5) })

/// A parameterized discrete model (probabilities θ-dependent) for the round trip.
let private discreteParam () =
    Builder.fromCallback 1 1 true [ Transition.Constant([| 0 |], 1.0) ] (fun s ->
        if s.[0] >= 3 then Seq.empty
        else seq { Transition.Parameterized([| s.[0] + 1 |], 0.1, [| 0.5 |]) })

/// (name, graph, θ, closed-form E[T] when known)
let private builtIns () =
    [ "coalescent 6", Models.coalescent 6 None, [| 1.0 |], Some(2.0 * (1.0 - 1.0 / 6.0))
      "rabbits3 3", Models.rabbits3 3, [| 1.0; 2.0; 4.0 |], None
      "twoDeme 3", Models.twoDeme 3, [| 1.0; 0.5 |], None
      "erlang 3 (rate 2)", Models.erlang 3 (Some 2.0), [||], Some 1.5
      // visits from 2, by hand: .8e1 = 1 + .3e2, .8e3 = 1 + .5e2, .8e2 = 1 + .3e3 + .5e1 → e2 = 80/17
      "random walk (discrete)", walk (), [||], Some(80.0 / 17.0)
      // three phases left with probability 0.1 + 0.5·0.6 = 0.4 each: 3 · 2.5 visits
      "parameterized discrete", discreteParam (), [| 0.6 |], Some 7.5 ]

// ---------------------------------------------------------------------------------------------
// Random graphs for the property test

type GraphSpec =
    { Seed: int
      States: int
      Absorbing: int
      ParamLength: int
      Discrete: bool
      Cyclic: bool
      StateLength: int
      /// Mix weights as far apart as 5e-324 and 1e300 (fine for the file; the matrix form cannot
      /// hold an exit rate below λ·ε, as its diagonal is −λ).
      Extremes: bool }

let private tricky = [| 0.1; 1.0 / 3.0; Math.PI; 1e-300; 5e-324; 1e300; 2.5; 7.0; 0.30000000000000004 |]

/// Builds the graph a spec describes (deterministic in the spec). Every transient vertex gets a
/// forward edge (so every vertex reaches an absorbing one); extra edges go anywhere when cyclic.
let private buildSpec (s: GraphSpec) : Graph =
    let rnd = Random(s.Seed)
    let p = s.ParamLength
    let weight (degree: int) =
        // discrete: probabilities whose sum over a vertex's edges stays below 1
        let value () =
            if s.Discrete then float (rnd.Next(1, 1001)) / (1000.0 * float (degree + 1))
            elif s.Extremes && rnd.Next 4 = 0 then tricky.[rnd.Next tricky.Length]
            else float (rnd.Next(1, 1000000)) / 997.0
        if p = 0 || rnd.Next 3 = 0 then value (), Array.zeroCreate p
        else
            let b = match rnd.Next 3 with 0 -> 0.0 | 1 -> -0.0 | _ -> value ()
            let coef = Array.init p (fun _ -> match rnd.Next 4 with 0 -> 0.0 | 1 -> -0.0 | 2 -> -(value ()) | _ -> value ())
            if not (b > 0.0) && not (coef |> Array.exists (fun c -> c > 0.0)) then coef.[rnd.Next p] <- value ()
            b, coef
    let b = GraphBuilder(s.StateLength, p, s.Discrete, DuplicateEdgePolicy.Reject)
    for v in 1 .. s.States do
        b.FindOrCreate(Array.init s.StateLength (fun k -> if k = 0 then 3 * v - 7 else rnd.Next(-5, 6))) |> ignore
    let transient = s.States - s.Absorbing
    let starts = [ for _ in 1 .. rnd.Next(1, 3) -> rnd.Next(1, s.States + 1) ] |> List.distinct
    for t in starts do
        let w, c = weight 0
        b.AddStartEdge(t, abs w + 0.5, (if p = 0 then c else Array.map abs c))
    for v in 1 .. transient do
        let forward = rnd.Next(v + 1, s.States + 1)
        let extra =
            [ for _ in 1 .. rnd.Next 3 -> rnd.Next(1, s.States + 1) ]
            |> List.filter (fun t -> t <> v && (s.Cyclic || t > v))
        let targets = forward :: extra |> List.distinct |> List.sortBy (fun _ -> rnd.Next())
        for t in targets do
            let w, c = weight targets.Length
            b.AddEdge(v, t, w, c)
    b.Build()

let private specGen =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue - 1)
        let! n = Gen.choose (3, 9)
        let! absorbing = Gen.choose (1, 2)
        let! p = Gen.elements [ 0; 0; 1; 3 ]
        let! discrete = Gen.elements [ false; true ]
        let! cyclic = Gen.elements [ false; true ]
        let! stateLength = Gen.choose (1, 3)
        return
            { Seed = seed
              States = n
              Absorbing = absorbing
              ParamLength = p
              Discrete = discrete
              Cyclic = cyclic
              StateLength = stateLength
              Extremes = true }
    }

// ---------------------------------------------------------------------------------------------
// Example files

/// The example of the brief and of docs/model-format.md.
let private readmeExample =
    """{ "format": "ptd-graph/1", "discrete": false, "stateLength": 2, "paramLength": 3,
  "states": [[2,0],[1,1],[0,0]],
  "start": [{"to": 0, "w": 1.0}],
  "edges": [{"from": 0, "to": 1, "w": 1.0}, {"from": 0, "to": 2, "base": 0.0, "coef": [0, 1, 0]}] }"""

/// The paper's worked example (algorithms.md §2) as a graph file: A → B .6, A exits .4,
/// B → C .5, B exits .5, C → A 1. Rewards (5, 2, 5) give T_A = 11, T_B = 10, T_C = 16.
let private paperGraph =
    """{ "format": "ptd-graph/1", "stateLength": 1,
  "states": [[0], [1], [2], [3]],
  "start": [{"to": 0, "w": 1}],
  "edges": [
    {"from": 0, "to": 1, "w": 0.6}, {"from": 0, "to": 3, "w": 0.4},
    {"from": 1, "to": 2, "w": 0.5}, {"from": 1, "to": 3, "w": 0.5},
    {"from": 2, "to": 0, "w": 1}
  ] }"""

let private paperMatrix =
    """{ "format": "ptd-matrix/1", "alpha": [1, 0, 0],
  "S": [[-1, 0.6, 0], [0, -1, 0.5], [1, 0, -1]] }"""

/// A graph-form file with five states (0..4) whose edges are filled in per case.
let private fiveStates (extra: string) (edges: string) =
    sprintf
        """{ "format": "ptd-graph/1", "stateLength": 2, %s
  "states": [[0,0],[1,0],[2,0],[3,0],[4,0]],
  "start": [{"to": 0, "w": 1}],
  "edges": [%s] }"""
        extra edges

let private chain = """{"from": 0, "to": 1, "w": 1}, {"from": 1, "to": 2, "w": 1}, {"from": 2, "to": 3, "w": 1}"""

/// (case, file, text the message must contain)
let private badFiles =
    [ "invalid JSON", "{\n  \"format\": \"ptd-graph/1\",\n  \"states\": [[1],\n  x]\n}",
      "model file: invalid JSON at line 4, position 3:"
      "empty input", "", "model file: invalid JSON at line 1, position 1:"
      "top level not an object", "[1, 2]", "the top level must be a JSON object"
      "missing format", """{"states": []}""", "missing required field \"format\"; supported formats: ptd-graph/1, ptd-matrix/1"
      "format not a string", """{"format": 1}""", "format must be a string"
      "unknown format", """{"format": "phasic"}""", "unknown format \"phasic\"; supported formats: ptd-graph/1, ptd-matrix/1"
      "future graph revision", """{"format": "ptd-graph/2"}""", "this version reads ptd-graph/1"
      "future matrix revision", """{"format": "ptd-matrix/3"}""", "upgrade ptd"
      "unknown top-level field", fiveStates "\"colour\": 1," chain, "unknown top-level field \"colour\""
      "unknown edge field", fiveStates "" """{"from": 0, "to": 1, "weight": 1}""", "edges[0] has unknown field \"weight\""
      "duplicate field", fiveStates "" """{"from": 0, "to": 1, "w": 1, "w": 2}""", "field \"w\" appears twice in edges[0]"
      "target not a vertex", fiveStates "" (chain + """, {"from": 3, "to": 7, "w": 1}"""),
      "model file: edges[3].to = 7 is not a vertex (states has 5 entries, 0..4)"
      "source not a vertex", fiveStates "" """{"from": -1, "to": 1, "w": 1}""", "edges[0].from = -1 is not a vertex"
      "start target not a vertex", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[0]], "start": [{"to": 1, "w": 1}], "edges": []}""",
      "start[0].to = 1 is not a vertex (states has 1 entries, 0..0)"
      "vertex index not an integer", fiveStates "" """{"from": 0.5, "to": 1, "w": 1}""", "edges[0].from = 0.5 must be an integer"
      "state of wrong length", """{"format": "ptd-graph/1", "stateLength": 2, "states": [[0,0],[1,0],[1,2,3]], "start": [{"to": 0, "w": 1}], "edges": []}""",
      "model file: states[2] has length 3 but stateLength is 2"
      "state entry not an integer", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[1.5]], "start": [{"to": 0, "w": 1}], "edges": []}""",
      "states[0][0] = 1.5 must be an integer"
      "repeated state", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[1],[1]], "start": [{"to": 0, "w": 1}], "edges": []}""",
      "states[1] = [1] repeats states[0]"
      "missing stateLength", """{"format": "ptd-graph/1", "states": [[1]], "start": [{"to": 0, "w": 1}], "edges": []}""",
      "missing required field \"stateLength\""
      "missing edges", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[1]], "start": [{"to": 0, "w": 1}]}""",
      "missing required field \"edges\""
      "missing edge target", fiveStates "" (chain + """, {"from": 3}"""), "edges[3] is missing the required field \"to\""
      "both w and coef", fiveStates "\"paramLength\": 1," """{"from": 0, "to": 1, "w": 1}, {"from": 1, "to": 2, "w": 1, "coef": [1]}""",
      "model file: edges[1] has both \"w\" and \"coef\""
      "both w and base", fiveStates "" """{"from": 0, "to": 1, "w": 1, "base": 0}""", "edges[0] has both \"w\" and \"base\""
      "base without coef", fiveStates "" """{"from": 0, "to": 1, "base": 1}""", "edges[0] has \"base\" but no \"coef\""
      "no weight", fiveStates "" """{"from": 0, "to": 1}""", "edges[0] has no weight"
      "weight of wrong type", fiveStates "" """{"from": 0, "to": 1, "w": "1"}""", "model file: edges[0].w must be a number (got a string)"
      "negative weight", fiveStates "" """{"from": 0, "to": 1, "w": -1}""", "edges[0].w = -1 is negative"
      "negative constant base", fiveStates "\"paramLength\": 2," """{"from": 0, "to": 1, "base": -2, "coef": [0, 0]}""",
      "edges[0].base = -2 is negative and coef is all zeros"
      "non-finite number", fiveStates "" """{"from": 0, "to": 1, "w": 1e999}""", "edges[0].w = 1e999 is not a finite number"
      "non-finite coefficient", fiveStates "\"paramLength\": 1," """{"from": 0, "to": 1, "coef": [-1e400]}""",
      "edges[0].coef[0] = -1e400 is not a finite number"
      "coef of wrong length", fiveStates "\"paramLength\": 3," """{"from": 0, "to": 1, "coef": [1, 2]}""",
      "edges[0].coef has 2 entries but paramLength is 3"
      "coef not an array", fiveStates "\"paramLength\": 1," """{"from": 0, "to": 1, "coef": 1}""", "edges[0].coef must be an array (got a number)"
      "self-loop", fiveStates "" """{"from": 2, "to": 2, "w": 1}""", "edges[0] is a self-loop (from = to = 2)"
      "duplicate edge", fiveStates "" (chain + """, {"from": 1, "to": 2, "w": 3}"""), "edges[3] duplicates edges[1] (both from 1 to 2)"
      "duplicate start edge", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[0], [1]], "start": [{"to": 0, "w": 1}, {"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "w": 1}]}""",
      "start[1] duplicates start[0]"
      "empty start", """{"format": "ptd-graph/1", "stateLength": 1, "states": [[0]], "start": [], "edges": []}""", "start is empty"
      "discrete not a boolean", fiveStates "\"discrete\": \"yes\"," chain, "discrete must be true or false (got a string)"
      "negative paramLength", fiveStates "\"paramLength\": -1," chain, "paramLength = -1 must be ≥ 0"
      "hostile paramLength", fiveStates "\"paramLength\": 1000000000," """{"from": 0, "to": 1, "w": 1}""",
      "paramLength = 1000000000 with 2 edges asks for 2000000000 coefficients"
      // wrapped from the graph validation, with the file's numbering explained
      "no absorbing state reachable (start)", fiveStates "" """{"from": 0, "to": 1, "w": 1}, {"from": 1, "to": 0, "w": 1}""",
      "reachable from the start vertex: absorption would not be certain. Every state needs a path (of edges with non-zero weight) to a state without out-edges (vertex v is states[v − 1] of the file; vertex 0 is the start vertex)"
      "no absorbing state reachable (state)",
      """{"format": "ptd-graph/1", "stateLength": 1, "states": [[5], [6], [7]], "start": [{"to": 2, "w": 1}],
          "edges": [{"from": 0, "to": 1, "w": 1}, {"from": 1, "to": 0, "w": 1}]}""",
      "model file: no absorbing state is reachable from vertex 1 (state [5])"
      "discrete sums > 1", fiveStates "\"discrete\": true," """{"from": 0, "to": 1, "w": 0.7}, {"from": 0, "to": 2, "w": 0.6}""",
      "the out-probabilities of states[0] sum to 1.2999999999999998 > 1"
      "discrete parameterized, constant edges sum > 1",
      fiveStates "\"discrete\": true, \"paramLength\": 1," """{"from": 0, "to": 1, "w": 0.5}, {"from": 0, "to": 2, "w": 0.6}, {"from": 0, "to": 3, "coef": [1]}""",
      "the out-probabilities of states[0] sum to 1.1 > 1"
      // matrix form
      "matrix: empty", """{"format": "ptd-matrix/1", "alpha": [], "S": []}""", "S has no rows"
      "matrix: missing S", """{"format": "ptd-matrix/1", "alpha": [1]}""", "missing required field \"S\""
      "matrix: unknown field", """{"format": "ptd-matrix/1", "alpha": [1], "S": [[-1]], "T": 1}""", "unknown top-level field \"T\""
      "matrix: entry not a number", """{"format": "ptd-matrix/1", "alpha": [1], "S": [[null]]}""", "S[0][0] must be a number (got null)"
      "matrix: alpha length", """{"format": "ptd-matrix/1", "alpha": [1], "S": [[-1, 1], [0, -1]]}""", "alpha has 1 entries but S has 2 rows"
      "matrix: not square", """{"format": "ptd-matrix/1", "alpha": [1, 0], "S": [[-1, 1], [-1]]}""", "S[1] has length 1 but S has 2 rows"
      "matrix: negative off-diagonal", """{"format": "ptd-matrix/1", "alpha": [1, 0], "S": [[-1, -1], [0, -1]]}""", "S[0][1] = -1 is negative"
      "matrix: row sum > 0", """{"format": "ptd-matrix/1", "alpha": [1, 0], "S": [[-1, 0], [3, -2]]}""", "row S[1] sums to 1 > 0"
      "matrix: zero diagonal", """{"format": "ptd-matrix/1", "alpha": [1], "S": [[0]]}""", "S[0][0] = 0 must be negative"
      "matrix: alpha > 1", """{"format": "ptd-matrix/1", "alpha": [0.7, 0.6], "S": [[-1, 0], [0, -1]]}""", "alpha sums to 1.2999999999999998 > 1"
      "matrix: negative alpha", """{"format": "ptd-matrix/1", "alpha": [-0.5], "S": [[-1]]}""", "alpha[0] = -0.5 is negative"
      "matrix: discrete entry > 1", """{"format": "ptd-matrix/1", "discrete": true, "alpha": [1, 0], "S": [[0, 1.5], [0, 0]]}""",
      "S[0][1] = 1.5 is greater than 1"
      "matrix: discrete row sum > 1", """{"format": "ptd-matrix/1", "discrete": true, "alpha": [1, 0], "S": [[0.5, 0.6], [0, 0]]}""",
      "row S[0] sums to 1.1"
      "matrix: discrete never left", """{"format": "ptd-matrix/1", "discrete": true, "alpha": [1], "S": [[1]]}""", "phase 0 would never be left"
      "matrix: closed class", """{"format": "ptd-matrix/1", "alpha": [1, 0], "S": [[-1, 1], [1, -1]]}""",
      "model file: no absorbing state is reachable" ]

// ---------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "modelfile" [
        testList "graph round trip" [
            for name, g, theta, closed in builtIns () ->
                testCase name (fun () ->
                    let json = ModelFile.toJson g
                    let back = ModelFile.parse json
                    expectIdentical back g
                    Expect.equal (ModelFile.toJson back) json "writing the re-read graph gives the same text"
                    let m = moments g theta
                    let mb = moments back theta
                    Expect.equal (Array.map bits mb) (Array.map bits m) "moments bit for bit"
                    // and the moments are right (closed form, or the dense oracle)
                    match closed with
                    | Some e -> expectClose 1e-12 m.[0] e "E[T] (closed form)"
                    | None -> expectClose 1e-10 m.[0] (Dense.momentsUnrewarded g theta 1).[0] "E[T] (dense)")
        ]

        testList "matrix round trip" [
            for name, g, theta, _ in builtIns () ->
                testCase name (fun () ->
                    let w = g.Weights theta
                    let m = Matrix.ofGraph g w
                    // against the independent dense construction of the test suite
                    let vertices, alpha, s = Dense.ofGraph g theta
                    Expect.equal m.Vertices vertices "transient vertices in index order"
                    Expect.equal m.Discrete g.IsDiscrete "discrete flag"
                    Expect.equal (Array.map bits m.Alpha) (Array.map bits alpha) "alpha (bits)"
                    let dense = Array.init alpha.Length (fun i -> Array.init alpha.Length (fun j -> s.[i, j]))
                    expectMatrixClose 1e-15 m.S dense "S vs Dense.ofGraph"
                    // matrix -> graph -> matrix
                    let g2 = Matrix.toGraph m.Discrete m.Alpha m.S
                    let m2 = Matrix.ofGraph g2 (g2.Weights [||])
                    Expect.equal m2.Vertices [| 1 .. m.Alpha.Length |] "phase i is vertex i + 1"
                    for i in 0 .. m.Alpha.Length - 1 do expectClose 1e-15 m2.Alpha.[i] m.Alpha.[i] (sprintf "alpha[%d]" i)
                    expectMatrixClose 1e-15 m2.S m.S "S after toGraph/ofGraph"
                    for i in 0 .. m.S.Length - 1 do
                        for j in 0 .. m.S.Length - 1 do
                            if i <> j then Expect.equal (bits m2.S.[i].[j]) (bits m.S.[i].[j]) (sprintf "off-diagonal S[%d][%d] exact" i j)
                    let mom = moments g theta
                    let mom2 = moments g2 [||]
                    expectClose 1e-12 mom2.[0] mom.[0] "E[T] of the matrix graph"
                    expectClose 1e-12 mom2.[1] mom.[1] "E[T²] of the matrix graph"
                    let dense2 = Dense.momentsUnrewarded g theta 2
                    expectClose 1e-10 mom2.[1] dense2.[1] "E[T²] vs dense"
                    // through the ptd-matrix/1 text: the same as the in-memory conversion, bit for bit
                    let g3 = ModelFile.parse (ModelFile.toMatrixJson g w)
                    expectIdentical g3 g2)
        ]

        testCase "the documented example parses with the right numbers" <| fun () ->
            let g = ModelFile.parse readmeExample
            Expect.equal g.VertexCount 4 "start vertex + 3 states"
            Expect.equal (g.State 1) [| 2; 0 |] "file vertex 0 is graph vertex 1"
            Expect.equal (g.State 3) [| 0; 0 |] "file vertex 2 is graph vertex 3"
            Expect.isTrue (g.IsAbsorbing 2 && g.IsAbsorbing 3) "states without out-edges are absorbing"
            Expect.equal g.ParamLength 3 "paramLength"
            // From [2,0]: rate 1 to [1,1], rate θ₂ to [0,0]: T ~ Exp(1 + θ₂), E = 1/(1+θ₂), Var = E².
            let theta = [| 0.5; 2.0; 7.0 |]
            let m = moments g theta
            expectClose 1e-15 m.[0] (1.0 / 3.0) "E[T] = 1/(1 + θ₂)"
            expectClose 1e-14 (m.[1] - m.[0] * m.[0]) (1.0 / 9.0) "Var[T] = 1/(1 + θ₂)²"

        testCase "the paper's example: T_A = 11, T_B = 10, T_C = 16, from both forms" <| fun () ->
            let reward = [| 0.0; 5.0; 2.0; 5.0; 0.0 |]
            for json in [ paperGraph; paperMatrix ] do
                let g = ModelFile.parse json
                let x = Moments.expectedWaitingTimes (Elimination.eliminate g [||]) reward
                expectClose 1e-14 x.[1] 11.0 "T_A"
                expectClose 1e-14 x.[2] 10.0 "T_B"
                expectClose 1e-14 x.[3] 16.0 "T_C"
                // plain time: T_A = 1.9/0.7 by hand
                let e = Moments.expectation (Elimination.eliminate g [||]) (Rewards.ones g)
                expectClose 1e-14 e (1.9 / 0.7) "E[T]"

        testCase "matrix form of Erlang(3, 2): E = 1.5, Var = 0.75" <| fun () ->
            let g = ModelFile.parse """{"format": "ptd-matrix/1", "alpha": [1, 0, 0], "S": [[-2, 2, 0], [0, -2, 2], [0, 0, -2]]}"""
            let m = moments g [||]
            expectClose 1e-15 m.[0] 1.5 "E"
            expectClose 1e-14 (m.[1] - m.[0] * m.[0]) 0.75 "Var"

        testCase "discrete matrix form: geometric(1/2) has mean 2 and variance 2" <| fun () ->
            let g = ModelFile.parse """{"format": "ptd-matrix/1", "discrete": true, "alpha": [1], "S": [[0.5]]}"""
            Expect.isTrue g.IsDiscrete "discrete"
            Expect.equal g.EdgeCount 2 "start edge + exit edge (the self-loop is not stored)"
            Expect.equal (g.Weights [||]).[1] 0.5 "exit probability 1 − 0.5"
            let m = moments g [||]
            expectClose 1e-15 m.[0] 2.0 "mean 1/p"
            expectClose 1e-14 (m.[1] - m.[0] * m.[0]) 2.0 "variance (1 − p)/p²"

        testCase "defect: alpha summing to 0.8 puts 0.2 on a start edge to the absorbing state" <| fun () ->
            let g = ModelFile.parse """{"format": "ptd-matrix/1", "alpha": [0.5, 0.3], "S": [[-1, 1], [0, -2]]}"""
            let w = g.Weights [||]
            let total = seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 -> w.[e] } |> Seq.sum
            let defect =
                seq { for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do if g.IsAbsorbing(g.Target e) then w.[e] / total } |> Seq.sum
            expectClose 1e-15 defect 0.2 "P(T = 0)"
            // E from phase 0 = 1 + 1/2, from phase 1 = 1/2: E = 0.5·1.5 + 0.3·0.5 = 0.9;
            // E[T²] = 2 α (−S)⁻² 1 = 2(0.5·1.75 + 0.3·0.25) = 1.9.
            let m = moments g [||]
            expectClose 1e-15 m.[0] 0.9 "E[T] = 0.8 · E[T | T > 0]"
            expectClose 1e-14 m.[1] 1.9 "E[T²]"
            // the matrix comes back with its defect
            let back = Matrix.ofGraph g w
            Expect.equal back.Alpha [| 0.5; 0.3 |] "alpha (sums to 0.8)"

        testCase "ofGraph normalizes the start weights; start edges to absorbing states are the defect" <| fun () ->
            let b = GraphBuilder(1, 0, false, DuplicateEdgePolicy.Reject)
            let x = b.FindOrCreate [| 10 |]
            let y = b.FindOrCreate [| 20 |]
            let dead = b.FindOrCreate [| 30 |]
            b.AddStartEdge(x, 2.0)
            b.AddStartEdge(y, 4.0)
            b.AddStartEdge(dead, 2.0)
            b.AddEdge(x, y, 3.0)
            b.AddEdge(y, dead, 5.0)
            let g = b.Build()
            let m = Matrix.ofGraph g (g.Weights [||])
            Expect.equal m.Vertices [| 1; 2 |] "the absorbing vertex is not a phase"
            Expect.equal m.Alpha [| 0.25; 0.5 |] "2/8 and 4/8; the remaining 2/8 is the defect"
            Expect.equal m.S [| [| -3.0; 3.0 |]; [| 0.0; -5.0 |] |] "S"

        testCase "toGraph: phase i is vertex i + 1 with state [i], then one absorbing state [n]" <| fun () ->
            let g = Matrix.toGraph false [| 0.5; 0.5 |] [| [| -1.0; 1.0 |]; [| 0.0; -2.0 |] |]
            Expect.equal [| for v in 1 .. g.VertexCount - 1 -> g.State v |] [| [| 0 |]; [| 1 |]; [| 2 |] |] "states"
            Expect.isTrue (g.IsAbsorbing 3) "the last vertex is absorbing"
            Expect.equal g.EdgeCount 4 "two start edges (no defect), 0 -> 1, 1 -> absorbing; no zero-weight edges"

        testCase "rows summing to 0 up to rounding give no exit edge" <| fun () ->
            // 0.8 − (0.1 + 0.7) = 1.1e-16 in binary, not 0: it must not become a spurious exit.
            Expect.isGreaterThan (0.8 - (0.1 + 0.7)) 0.0 "the binary row sum is not 0"
            let g = Matrix.toGraph false [| 1.0; 0.0; 0.0 |] [| [| -0.8; 0.1; 0.7 |]; [| 0.0; -1.0; 0.0 |]; [| 0.0; 0.0; -1.0 |] |]
            Expect.equal [| for e in g.EdgeStart 1 .. g.EdgeEnd 1 - 1 -> g.Target e |] [| 2; 3 |] "phase 0 only moves to phases 1, 2"

        testCase "a graph without parameters is written with w only" <| fun () ->
            let json = ModelFile.toJson (Models.erlang 2 (Some 0.1))
            Expect.stringContains json "\"w\": 0.1" "shortest round-trip number"
            Expect.isFalse (json.Contains "coef") "no coefficients for constant edges"

        testList "bad files" [
            for name, json, expected in badFiles ->
                testCase name (fun () ->
                    let msg = parseError json
                    Expect.stringStarts msg "model file: " "every message starts with model file:"
                    Expect.stringContains msg expected "the message names the field and position")
        ]

        testProperty "random graphs round-trip through toJson/parse identically"
        <| Prop.forAll (Arb.fromGen specGen) (fun spec ->
            let g = buildSpec spec
            let back = ModelFile.parse (ModelFile.toJson g)
            expectIdentical back g
            true)

        testProperty "random constant graphs: matrix -> graph -> matrix is the identity"
        <| Prop.forAll (Arb.fromGen (specGen |> Gen.map (fun s -> { s with ParamLength = 0; Extremes = false }))) (fun spec ->
            let g = buildSpec spec
            let m = Matrix.ofGraph g (g.Weights [||])
            let m2 =
                let g2 = Matrix.toGraph m.Discrete m.Alpha m.S
                Matrix.ofGraph g2 (g2.Weights [||])
            for i in 0 .. m.Alpha.Length - 1 do expectClose 1e-15 m2.Alpha.[i] m.Alpha.[i] (sprintf "alpha[%d]" i)
            expectMatrixClose 1e-15 m2.S m.S "S"
            true)
    ]
