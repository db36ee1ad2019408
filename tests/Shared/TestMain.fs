/// Shared entry point of every Expecto test executable. Besides Expecto's own output it writes
/// "passed failed ignored" to $PTD_TEST_SUMMARY_FILE so that build.fsx can print one exact total,
/// followed by one line per failed or errored test (its full name and the first line of its
/// message) so that the end of a CI log names what failed even when the log is cut.
module Ptd.Tests.TestMain

open System
open System.IO
open Expecto
open Expecto.Impl

let private firstLine (text: string) =
    let line = (text.Split('\n') |> Array.tryFind (fun l -> l.Trim() <> "") |> Option.defaultValue "").Trim()
    if line.Length > 300 then line.Substring(0, 300) + "…" else line

let private describe (test: FlatTest, summary: TestSummary) =
    let message =
        match summary.result with
        | TestResult.Failed m -> firstLine m
        | TestResult.Error e -> e.GetType().Name + ": " + firstLine e.Message
        | other -> string other
    sprintf "%s — %s" (String.concat "/" test.name) message

let run (argv: string[]) =
    let writeSummary (s: TestRunSummary) =
        match Environment.GetEnvironmentVariable "PTD_TEST_SUMMARY_FILE" with
        | null | "" -> ()
        | path ->
            let failed = s.failed.Length + s.errored.Length
            let lines = (s.failed @ s.errored) |> List.map describe
            File.WriteAllLines(path, sprintf "%d %d %d" s.passed.Length failed s.ignored.Length :: lines)
    Tests.runTestsInAssemblyWithCLIArgs [ CLIArguments.Append_Summary_Handler(SummaryHandler writeSummary) ] argv
