/// Canonical model key, binary and JSON trace encodings, hostile input (issue 3 §4).
module Ptd.Core.Tests.TraceEncodingTests

open System
open System.Security.Cryptography
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Core
open Ptd.Core.Tests.TraceGraphs

let private hex (s: string) = Convert.FromHexString(s.Replace(" ", ""))

/// The tiny model of the golden test: state length 1, one parameter, continuous.
/// start → [2] (1.0 + (−0.0)·θ), [2] → [−1] (0.25 + 2·θ).
let goldenModel () =
    let b = GraphBuilder(1, 1, false)
    let v1 = b.FindOrCreate [| 2 |]
    let v2 = b.FindOrCreate [| -1 |]
    b.AddStartEdge(v1, 1.0, [| -0.0 |])
    b.AddEdge(v1, v2, 0.25, [| 2.0 |])
    b.Build()

/// Golden canonical bytes per format revision, assembled by hand from the documented layout
/// (docs/trace-format.md), not produced by the code under test. Revision 2 (the fill-reducing
/// elimination order), revision 3 (deferred self-loop renormalization) and revision 4 (phase A's
/// normalization deferred too) kept revision 1's layout: only the revision field differs.
let goldenBytes =
    let golden (revision: string) =
        String.concat "" [
            "70 74 64 2d 74 72 61 63 65" // "ptd-trace"
            revision // u32 revision
            "00" // continuous
            "01 00 00 00" // state length 1
            "01 00 00 00" // 1 parameter
            "03 00 00 00" // 3 vertices
            // vertex 0 (start, no state): 1 edge → 1, base 1.0, coef −0.0 written as 0.0
            "01 00 00 00" + "01 00 00 00" + "00 00 00 00 00 00 f0 3f" + "00 00 00 00 00 00 00 00"
            // vertex 1, state [2]: 1 edge → 2, base 0.25, coef 2.0
            "02 00 00 00" + "01 00 00 00" + "02 00 00 00" + "00 00 00 00 00 00 d0 3f" + "00 00 00 00 00 00 00 40"
            // vertex 2, state [−1]: absorbing
            "ff ff ff ff" + "00 00 00 00" ]
    Map [ 1, golden "01 00 00 00"; 2, golden "02 00 00 00"; 3, golden "03 00 00 00"; 4, golden "04 00 00 00" ]

/// SHA-256 keys that must not change across processes, machines or runs (per revision).
let goldenKeys =
    Map [ 1, ("golden model", "3a9d3f065680df10e0d7accf817a7ddcdeb4e3de69ae25657d0cb8fd5410301e")
          2, ("golden model", "7185bff0ea3759e6d2c87f7f4ef10edb33a9b005ecab1ef20a4946f950d3619a")
          3, ("golden model", "bb41c811e3e4859e73a4095b3d3ac65055129dbcfa942b9a2d270d7af213182e")
          4, ("golden model", "16f0ac92ff2afff0dd04fc029832d43364213998a0956da84ec654f4b4238e7c") ]

let keyOf (s: ModelSpec) = ModelKey.compute (build s)

/// One mutation of a model spec, each of which must change the key.
type Mutation =
    | Base of edge: int
    | BaseUlp of edge: int
    | Coef of edge: int * k: int
    | State of vertex: int * slot: int
    | DiscreteFlag
    | StartWeight

let mutate (m: Mutation) (s: ModelSpec) : ModelSpec =
    let edges = Array.ofList s.Edges
    let setEdge i f = { s with Edges = edges |> Array.mapi (fun j e -> if j = i then f e else e) |> List.ofArray }
    let smaller (x: float) = if x > 0.0 then x * 0.5 else 0.05
    match m with
    | Base i -> setEdge i (fun e -> { e with Base = smaller e.Base })
    | BaseUlp i -> setEdge i (fun e -> { e with Base = Math.BitIncrement e.Base })
    | Coef(i, k) -> setEdge i (fun e -> { e with Coef = e.Coef |> Array.mapi (fun j c -> if j = k then smaller c else c) })
    | State(v, slot) ->
        { s with States = s.States |> Array.mapi (fun i st -> if i = v then st |> Array.mapi (fun j x -> if j = slot then x + 1000 else x) else st) }
    | DiscreteFlag -> { s with Discrete = not s.Discrete }
    | StartWeight ->
        let i = edges |> Array.findIndex (fun e -> e.From = 0)
        setEdge i (fun e -> { e with Base = e.Base + 0.125 })

let genMutation: Gen<int * Mutation> =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue - 1)
        let s = randomSpec seed true true
        let e = s.Edges.Length
        let! which = Gen.choose (0, 5)
        let! i = Gen.choose (0, e - 1)
        let! v = Gen.choose (0, s.States.Length - 1)
        let! slot = Gen.choose (0, s.StateLength - 1)
        let! k = Gen.choose (0, max 0 (s.ParamCount - 1))
        let m =
            match which with
            | 0 -> Base i
            | 1 -> BaseUlp i
            | 2 when s.ParamCount > 0 -> Coef(i, k)
            | 2 | 3 -> State(v, slot)
            | 4 -> DiscreteFlag
            | _ -> StartWeight
        return seed, m
    }

let keyTests =
    testList "key" [
        test "golden bytes: the canonical encoding of the golden model is exactly the documented one" {
            match goldenBytes.TryFind Trace.FormatRevision with
            | None -> failtestf "format revision %d has no golden bytes: add them (and a golden key) for the new revision" Trace.FormatRevision
            | Some expected ->
                let actual = ModelKey.canonicalBytes (goldenModel ())
                Expect.equal (Convert.ToHexString actual) (Convert.ToHexString(hex expected))
                    "the canonical model encoding changed: bump Trace.FormatRevision and add golden bytes for the new revision"
        }

        test "golden key: SHA-256 of the golden bytes, the same in every process" {
            let _, key = goldenKeys.[Trace.FormatRevision]
            let expected = Convert.ToHexString(SHA256.HashData(hex goldenBytes.[Trace.FormatRevision])).ToLowerInvariant()
            Expect.equal (ModelKey.compute (goldenModel ())).Hex expected "key = SHA-256(canonical bytes)"
            Expect.equal expected key "hard-coded golden key"
        }

        test "TraceKey parses and prints its hex form" {
            let k = ModelKey.compute (goldenModel ())
            Expect.equal (TraceKey.Parse(k.Hex.ToUpperInvariant())) k "round trip"
            Expect.throwsT<PtdException> (fun () -> TraceKey.Parse "abc" |> ignore) "too short"
            Expect.throwsT<PtdException> (fun () -> TraceKey.Parse(String('g', 64)) |> ignore) "not hex"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 300 } "changing any base, coefficient, constant, start weight, state or the discrete flag changes the key; rebuilding does not" <|
            Prop.forAll (Arb.fromGen genMutation) (fun (seed, m) ->
                let s = randomSpec seed true true
                let k0 = keyOf s
                Expect.equal (keyOf (randomSpec seed true true)) k0 "rebuilding the same model gives the same key"
                let k1 = keyOf (mutate m s)
                Expect.notEqual k1 k0 (sprintf "mutation %A did not change the key" m))

        test "named models: rebuilt twice, same key; different models, different keys" {
            let keys =
                [ for _ in 1 .. 2 ->
                      [ ModelKey.compute (Models.coalescent 8 None)
                        ModelKey.compute (Models.coalescent 8 (Some 1.0))
                        ModelKey.compute (Models.rabbits3 3)
                        ModelKey.compute (Models.rabbits 3 2.0 4.0)
                        ModelKey.compute (Models.rabbits 3 2.0 4.5)
                        ModelKey.compute (Models.twoDeme 3) ] ]
            Expect.equal keys.[0] keys.[1] "deterministic"
            Expect.equal (List.distinct keys.[0]).Length keys.[0].Length "all different (constants count: phasic's defect)"
        }
    ]

/// Re-seals a modified body with a valid checksum, so that the structural checks are reached.
let reseal (data: byte[]) =
    let body = Array.sub data 0 (data.Length - 32)
    Array.append body (SHA256.HashData body)

let smallTrace = lazy (Models.rabbits3 2 |> Trace.record |> TracePasses.optimize)
let smallBytes = lazy (TraceEncoding.encode smallTrace.Value)

/// Decoding must give a trace or a PtdException — never another exception type. A decoded trace
/// must evaluate or fail with a PtdException too.
let decodeOrPtd (data: byte[]) =
    try
        let t = TraceEncoding.decode data
        try TraceEval.evaluate t (Array.create t.ParamCount 1.0) |> ignore
        with :? PtdException -> ()
        true
    with
    | :? PtdException as e ->
        Expect.isNotEmpty e.Message "message"
        false
    | e -> failtestf "decoder threw %s instead of PtdException: %s" (e.GetType().Name) e.Message

let binaryTests =
    testList "binary" [
        test "round trip: decoded traces evaluate bit-identically and re-encode to the same bytes" {
            let cases = [ for name, g, sample in TraceTests.namedModels -> name, g, sample ]
            for name, g, sample in cases do
                for t in [ Trace.record g; Trace.record g |> TracePasses.optimize ] do
                    let bytes = TraceEncoding.encode t
                    let d = TraceEncoding.decode bytes
                    Expect.equal (TraceEncoding.encode d) bytes (name + ": re-encoding")
                    Expect.equal (ModelKey.ofTrace d) (ModelKey.compute g) (name + ": key")
                    let rng = Random 2
                    for _ in 1 .. 5 do
                        let theta = sample rng
                        Expect.isTrue (bitsEqual (TraceEval.evaluate d theta).Multipliers (TraceEval.evaluate t theta).Multipliers) name
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 50 } "round trip on random graphs" <|
            Prop.forAll (arbCase None) (fun case ->
                let t = Trace.record case.Graph |> TracePasses.optimize
                let bytes = TraceEncoding.encode t
                Expect.equal (TraceEncoding.encode (TraceEncoding.decode bytes)) bytes (string case))

        test "decodeFor refuses a trace recorded for another model" {
            let bytes = smallBytes.Value
            TraceEncoding.decodeFor (ModelKey.compute (Models.rabbits3 2)) bytes |> ignore
            Expect.throwsT<PtdException> (fun () -> TraceEncoding.decodeFor (ModelKey.compute (Models.rabbits3 3)) bytes |> ignore) "other model"
        }

        test "decodeForModel assembles on the caller's model, equals decode, and refuses other models" {
            let bytes = smallBytes.Value
            let model = Models.rabbits3 2
            let t = TraceEncoding.decodeForModel model bytes
            Expect.isTrue (obj.ReferenceEquals(t.Model, model)) "the caller's graph is reused"
            Expect.equal (TraceEncoding.encode t) bytes "same trace as decode"
            // Same structure, one coefficient changed: another key, refused.
            let b = GraphBuilder(model.StateLength, model.ParamLength, model.IsDiscrete)
            for v in 1 .. model.VertexCount - 1 do b.FindOrCreate(model.States.[v]) |> ignore
            for v in 0 .. model.VertexCount - 1 do
                for e in model.EdgeStart v .. model.EdgeEnd v - 1 do
                    let coef = Array.init model.ParamLength (fun k -> model.Coefs.[e * model.ParamLength + k])
                    if e = model.EdgeCount - 1 then coef.[0] <- coef.[0] + 1.0
                    b.AddEdge(v, model.Targets.[e], model.Bases.[e], coef)
            let other = b.Build()
            let e = Expect.throwsC (fun () -> TraceEncoding.decodeForModel other bytes |> ignore) id
            Expect.stringContains e.Message "not for the requested model" "message"
            Expect.throwsT<PtdException> (fun () -> TraceEncoding.decodeForModel (Models.rabbits3 3) bytes |> ignore) "other size"
            // Damage is still caught before the model comparison.
            let damaged = Array.copy bytes
            damaged.[damaged.Length / 2] <- damaged.[damaged.Length / 2] ^^^ 1uy
            Expect.throwsT<PtdException> (fun () -> TraceEncoding.decodeForModel model damaged |> ignore) "checksum"
            // Without the checksum, structural checks still refuse damage or yield a valid trace.
            Expect.equal (TraceEncoding.encode (TraceEncoding.decodeForModelPreverified model bytes)) bytes "preverified: same trace"
            for i in 0 .. bytes.Length - 1 do
                let d = Array.copy bytes
                d.[i] <- d.[i] ^^^ 0x80uy
                try
                    let t = TraceEncoding.decodeForModelPreverified model d
                    TraceEval.evaluate t [| 1.0; 2.0; 4.0 |] |> ignore
                with :? PtdException -> ()
        }

        test "every truncation fails with a PtdException" {
            let bytes = smallBytes.Value
            for n in 0 .. bytes.Length - 1 do
                Expect.isFalse (decodeOrPtd (Array.sub bytes 0 n)) (sprintf "prefix of %d bytes decoded" n)
            Expect.isFalse (decodeOrPtd (Array.append bytes [| 0uy |])) "trailing byte"
        }

        test "every single-bit flip fails with a PtdException" {
            let bytes = smallBytes.Value
            for i in 0 .. bytes.Length - 1 do
                for bit in 0 .. 7 do
                    let d = Array.copy bytes
                    d.[i] <- d.[i] ^^^ (1uy <<< bit)
                    Expect.isFalse (decodeOrPtd d) (sprintf "flip of byte %d bit %d decoded" i bit)
        }

        test "oversized and negative counts (with a valid checksum) fail fast, without allocating" {
            let bytes = smallBytes.Value
            let modelLength = BitConverter.ToInt32(bytes, 12)
            let opCountAt = 16 + modelLength + 32
            // offsets of counts: model length, model L/P/V, op/constant/row/operand counts
            let offsets = [ 12; 16 + 9 + 4 + 1; 16 + 9 + 4 + 1 + 4; 16 + 9 + 4 + 1 + 8; opCountAt; opCountAt + 4; opCountAt + 8; opCountAt + 12 ]
            for off in offsets do
                for value in [ Int32.MaxValue; -1; Int32.MinValue; 1 <<< 28; 123_456_789 ] do
                    let d = Array.copy bytes
                    BitConverter.TryWriteBytes(Span<byte>(d, off, 4), value) |> ignore
                    let before = GC.GetAllocatedBytesForCurrentThread()
                    Expect.isFalse (decodeOrPtd (reseal d)) (sprintf "count %d at %d decoded" value off)
                    let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                    Expect.isLessThan allocated (50L * int64 bytes.Length + 1_000_000L) (sprintf "count %d at %d allocated %d bytes" value off allocated)
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 2000 } "random corruption behind a valid checksum: a trace or a PtdException, nothing else" <|
            Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (0, Int32.MaxValue - 1)) (Gen.choose (1, 4)))) (fun (seed, edits) ->
                let rng = Random seed
                let d = Array.copy smallBytes.Value
                for _ in 1 .. edits do
                    let i = rng.Next(0, d.Length - 32)
                    d.[i] <- byte (rng.Next 256)
                decodeOrPtd (reseal d) |> ignore)

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 500 } "random bytes: PtdException" <|
            fun (data: byte[]) ->
                let data = if isNull data then [||] else data
                Expect.isFalse (decodeOrPtd data) "garbage decoded"
                // with the right magic and revision in front
                let framed = Array.concat [ Text.Encoding.ASCII.GetBytes "PTDTRACE"; BitConverter.GetBytes 1; data ]
                decodeOrPtd (reseal (Array.append framed (Array.zeroCreate 32))) |> ignore

        test "a wrong revision is reported as such" {
            let d = Array.copy smallBytes.Value
            d.[8] <- 99uy
            try
                TraceEncoding.decode d |> ignore
                failtest "decoded"
            with :? PtdException as e -> Expect.stringContains e.Message "revision" "says revision"
        }
    ]

let jsonTests =
    testList "json" [
        test "export → import evaluates bit-identically and exports the same text" {
            for name, g, sample in TraceTests.namedModels do
                let t = Trace.record g |> TracePasses.optimize
                let json = TraceJson.export t
                let back = TraceJson.import json
                Expect.equal (TraceJson.export back) json (name + ": text round trip")
                Expect.equal (TraceEncoding.encode back) (TraceEncoding.encode t) (name + ": same binary")
                let rng = Random 8
                for _ in 1 .. 5 do
                    let theta = sample rng
                    Expect.isTrue (bitsEqual (TraceEval.evaluate back theta).Multipliers (TraceEval.evaluate t theta).Multipliers) name
        }

        test "the export is readable: one op per line, names not numbers" {
            let json = TraceJson.export smallTrace.Value
            Expect.stringContains json "[\"dot\", 0, [" "dot ops carry their row"
            Expect.stringContains json "\"key\": \"" "key"
            Expect.stringContains json "\"state\": [2, 0]" "states"
        }

        test "hostile JSON: truncations, wrong types, bad indices, edited model → PtdException" {
            let json = TraceJson.export smallTrace.Value
            let fails (s: string) (what: string) =
                try
                    TraceJson.import s |> ignore
                    failtestf "%s: imported" what
                with
                | :? PtdException -> ()
                | e -> failtestf "%s: %s instead of PtdException: %s" what (e.GetType().Name) e.Message
            for n in 0 .. 97 .. json.Length - 2 do fails (json.Substring(0, n)) (sprintf "prefix %d" n)
            let revision = sprintf "\"revision\": %d" Trace.FormatRevision
            Expect.stringContains json revision "the export states its revision"
            fails (json.Replace(revision, sprintf "\"revision\": %d" (Trace.FormatRevision + 1))) "revision"
            fails (json.Replace("\"discrete\": false", "\"discrete\": 0")) "type"
            fails (json.Replace("[\"dot\",", "[\"nonsense\",")) "unknown op"
            fails (json.Replace("\"edgeWeights\": [", "\"edgeWeights\": [99999, ")) "index"
            fails (json.Replace("\"base\": 1,", "\"base\": 2,")) "model edited without its key"
            fails (json.Replace("\"format\": \"ptd-trace\"", "\"format\": \"other\"")) "format"
            fails "[]" "not an object"
            fails (json.Replace("\"paramCount\": 3", "\"paramCount\": 2000000000")) "huge parameter count"
            fails (json.Replace("\"stateLength\": 2", "\"stateLength\": 2000000000")) "huge state length"
            fails (String('[', 100000)) "deep nesting"
        }
    ]

[<Tests>]
let tests = testList "trace" [ testList "encoding" [ keyTests; binaryTests; jsonTests ] ]
