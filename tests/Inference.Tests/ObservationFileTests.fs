module Ptd.Inference.Tests.ObservationFileTests

open Expecto
open Ptd.Core
open Ptd.Host.Kernels

let fails (text: string) (fragments: string list) =
    let e = Expect.throwsC (fun () -> ObservationFile.Parse(text, "data.txt") |> ignore) id
    for f in fragments do Expect.stringContains e.Message f "message"
    Expect.isTrue (e :? PtdException) "a PtdException"

[<Tests>]
let tests =
    testList "observations" [
        test "one value per line; blank lines, whole-line and trailing comments, CRLF" {
            let o = ObservationFile.Parse("# times\n0.5\n\n  1.25  # trailing\r\n2e-1\n3\n", "data.txt")
            Expect.sequenceEqual o.Values [ 0.5; 1.25; 0.2; 3.0 ] "values in file order"
            Expect.stringContains (o.Describe 1) "data.txt line 4" "remembers the line"
        }
        test "bad lines are named" {
            fails "1\nabc\n" [ "data.txt line 2"; "'abc' is not a number" ]
            fails "1\n2\nNaN\n" [ "line 3"; "NaN" ]
            fails "-0.5\n" [ "line 1"; "negative" ]
            fails "1\ninfinity\n" [ "line 2"; "infinite" ]
            fails "1 2\n" [ "line 1"; "more than one value" ]
            fails "1,5\n" [ "line 1"; "not a number" ]
        }
        test "a file without observations is an error" {
            fails "" [ "no observations" ]
            fails "# only a comment\n\n" [ "no observations" ]
        }
        test "values given in code are checked too" {
            Expect.throwsT<PtdException> (fun () -> Observations.FromValues [ 1.0; nan ] |> ignore) "NaN"
            Expect.throwsT<PtdException> (fun () -> Observations.FromValues [] |> ignore) "empty"
        }
        test "a missing file is a PtdException naming it" {
            let e = Expect.throwsC (fun () -> ObservationFile.Read "/nonexistent/data.txt" |> ignore) id
            Expect.stringContains e.Message "/nonexistent/data.txt" "names the file"
        }
    ]
