/// Hostile and malformed input to every core parser (issue 7 §3): model files (ptd-graph/1,
/// ptd-matrix/1), trace JSON, binary traces, model specs. Each case must give a value or a
/// PtdException with a message — never another exception, a hang (timeout per case), or
/// allocation beyond c·(input length) + constant (measured on the parsing thread).
module Ptd.Core.Tests.HostileInputTests

open System
open System.Security.Cryptography
open Expecto
open Ptd.Core
open Ptd.Tests

let private isPtd (e: exn) = e :? PtdException

/// Per-case limits: 5 s, and 64 bytes allocated per input character (UTF-16 text, a JsonDocument,
/// the graph built from it) + 8 MB.
let private timeoutMs = 5_000
let private perChar = 64L
let private constant = 8L <<< 20

let private seeds () =
    [ Models.coalescent 5 None; Models.rabbits3 2; Models.twoDeme 2; Models.erlang 3 None ]
    |> List.map ModelFile.toJson

let private matrixSeed =
    """{"format": "ptd-matrix/1", "alpha": [0.5, 0.5, 0], "S": [[-2, 1, 0.5], [0, -3, 2], [1, 0, -1.5]]}"""

let private parseModel (stats: Hostile.Stats) (text: string) =
    Hostile.run stats timeoutMs perChar constant isPtd text.Length (fun () -> ModelFile.parse text |> ignore)

let private smallTrace = lazy (Models.rabbits3 2 |> Trace.record |> TracePasses.optimize)

let private reseal (data: byte[]) =
    let body = Array.sub data 0 (data.Length - 32)
    Array.append body (SHA256.HashData body)

[<Tests>]
let tests =
    testList "hostile" [
        testCase "model files: 600 mutated ptd-graph/1 and ptd-matrix/1 documents" <| fun () ->
            let stats = Hostile.Stats "model file (mutations)"
            let seeds = Array.ofList (matrixSeed :: seeds ())
            Hostile.fuzz stats 600 (fun seed ->
                let rng = Random seed
                parseModel stats (Hostile.mutate rng seeds.[rng.Next seeds.Length]) |> ignore)

        testCase "model files: structural attacks (nesting, duplicates, huge claims, encodings)" <| fun () ->
            let stats = Hostile.Stats "model file (structural)"
            let g = """"format": "ptd-graph/1", "stateLength": 1, "states": [[1], [2]]"""
            let ok = """"start": [{"to": 0, "w": 1}], "edges": [{"from": 0, "to": 1, "w": 2}]"""
            let million = String.Join(",", Array.create 1_000_000 "[1]")
            let cases =
                [ "deep nesting", "{" + g + ", \"x\": " + String('[', 100_000) + "}"
                  "duplicate key", "{" + g + ", " + ok + ", \"edges\": []}"
                  "duplicate format", "{\"format\": \"ptd-graph/1\", " + g + ", " + ok + "}"
                  "10⁶ states claiming 10⁹ parameters", "{" + "\"format\": \"ptd-graph/1\", \"paramLength\": 1000000000, \"stateLength\": 1, \"states\": [" + million + "], " + ok + "}"
                  "paramLength 10⁹ on a tiny file", "{" + g + ", \"paramLength\": 1000000000, " + ok + "}"
                  "stateLength 2³¹−1", "{\"format\": \"ptd-graph/1\", \"stateLength\": 2147483647, \"states\": [[1]], \"start\": [{\"to\": 0, \"w\": 1}], \"edges\": []}"
                  "3·10⁵ duplicate states", "{\"format\": \"ptd-graph/1\", \"stateLength\": 1, \"states\": [" + String.Join(",", Array.create 300_000 "[1]") + "], " + ok + "}"
                  "huge number", "{" + g + ", \"start\": [{\"to\": 0, \"w\": 1e400}], \"edges\": []}"
                  "negative index", "{" + g + ", \"start\": [{\"to\": -1, \"w\": 1}], \"edges\": []}"
                  "index 2³²", "{" + g + ", \"start\": [{\"to\": 4294967296, \"w\": 1}], \"edges\": []}"
                  "BOM twice", "\uFEFF\uFEFF{}"
                  "lone surrogate", "{\"format\": \"ptd-graph/1\\ud800\"}"
                  "NUL", "\u0000"
                  "empty", ""
                  "matrix 2000×2000 of zeros", "{\"format\": \"ptd-matrix/1\", \"alpha\": [" + String.Join(",", Array.create 2000 "0") + "], \"S\": [" + String.Join(",", Array.create 2000 ("[" + String.Join(",", Array.create 2000 "0") + "]")) + "]}"
                  "ragged matrix", "{\"format\": \"ptd-matrix/1\", \"alpha\": [1, 0], \"S\": [[-1, 1], [0]]}" ]
            for name, text in cases do
                // A 4 MB document takes seconds to parse on a loaded machine: 30 s per case here.
                match Hostile.run stats 30_000 perChar constant isPtd text.Length (fun () -> ModelFile.parse text |> ignore) with
                | Hostile.Accepted -> failtestf "%s: accepted" name
                | _ -> ()
            stats.Report()

        testCase "trace JSON: 300 mutated exports" <| fun () ->
            let stats = Hostile.Stats "trace JSON (mutations)"
            let json = TraceJson.export smallTrace.Value
            Hostile.fuzz stats 300 (fun seed ->
                let text = Hostile.mutate (Random seed) json
                Hostile.run stats timeoutMs perChar constant isPtd text.Length (fun () ->
                    let t = TraceJson.import text
                    TraceEval.evaluate t (Array.create t.ParamCount 1.0) |> ignore)
                |> ignore)

        testCase "trace JSON: lone surrogates, deep nesting, huge counts (directed)" <| fun () ->
            let stats = Hostile.Stats "trace JSON (directed)"
            let json = TraceJson.export smallTrace.Value
            let cases =
                [ json.Replace("\"format\": \"ptd-trace\"", "\"format\": \"ptd-trace\\ud800\"")
                  json.Replace("\"dot\"", "\"\\udc00dot\"")
                  "{\"format\": " + String('[', 50_000)
                  json.Replace("\"paramCount\": 3", "\"paramCount\": 2147483647")
                  json.Replace("\"paramCount\": 3", "\"paramCount\": -1")
                  json.Replace("\"paramCount\": 3", "\"paramCount\": 1e400") ]
            for text in cases do
                match Hostile.run stats timeoutMs perChar constant isPtd text.Length (fun () -> TraceJson.import text |> ignore) with
                | Hostile.Accepted -> failtest "accepted"
                | _ -> ()
            stats.Report()

        testCase "binary traces: every third byte offset set to a huge or negative count (valid checksum)" <| fun () ->
            // Extends TraceEncodingTests (which attacks the known count fields) to every offset,
            // with the allocation measured per case.
            let stats = Hostile.Stats "binary trace (count at every offset)"
            let bytes = TraceEncoding.encode smallTrace.Value
            for off in 0 .. 3 .. bytes.Length - 36 do
                for value in [ Int32.MaxValue; -1 ] do
                    let d = Array.copy bytes
                    BitConverter.TryWriteBytes(Span<byte>(d, off, 4), value) |> ignore
                    let d = reseal d
                    Hostile.run stats timeoutMs 64L (1L <<< 20) isPtd d.Length (fun () ->
                        let t = TraceEncoding.decode d
                        TraceEval.evaluate t (Array.create t.ParamCount 1.0) |> ignore)
                    |> ignore
            stats.Report()

        testCase "model specs: hostile name:key=value strings" <| fun () ->
            let stats = Hostile.Stats "model spec"
            let specs =
                [ "coalescent:n=-3"; "coalescent:n=99999999999"; "coalescent:n=1e9"; "coalescent:n=10,n=11"
                  "coalescent:n="; "coalescent:=5"; "erlang:k=3,rate=NaN"; "erlang:k=3,rate=-1"; "erlang:k=3,rate=1e400"
                  "erlang:k=0"; "erlang:k=2147483647"; "rabbits:R=2147483647"; "twodeme:n=100000"; ":"; ""; "::::"
                  "coalescent:n=5:n=6"; "coalescent:n=\u0000"; String('x', 100_000); "coalescent:" + String(',', 10_000) ]
            for s in specs do
                match Hostile.run stats timeoutMs 64L (8L <<< 20) isPtd s.Length (fun () -> ModelSpec.build s |> ignore) with
                | Hostile.Accepted -> failtestf "spec '%s' accepted" (if s.Length > 40 then s.Substring(0, 40) else s)
                | _ -> ()
            stats.Report()
    ]
