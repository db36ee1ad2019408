/// Shared entry point of every Expecto test executable. Besides Expecto's own output it writes
/// "passed failed ignored" to $PTD_TEST_SUMMARY_FILE so that build.fsx can print one exact total.
module Ptd.Tests.TestMain

open System
open System.IO
open Expecto
open Expecto.Impl

let run (argv: string[]) =
    let writeSummary (s: TestRunSummary) =
        match Environment.GetEnvironmentVariable "PTD_TEST_SUMMARY_FILE" with
        | null | "" -> ()
        | path ->
            let failed = s.failed.Length + s.errored.Length
            File.WriteAllText(path, sprintf "%d %d %d" s.passed.Length failed s.ignored.Length)
    Tests.runTestsInAssemblyWithCLIArgs [ CLIArguments.Append_Summary_Handler(SummaryHandler writeSummary) ] argv
