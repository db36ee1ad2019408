/// The shared reference tables (closed forms and the C library's output), copied into
/// tests/data/reference from ../shared/reference/values so that a clean clone has them.
module Ptd.Core.Tests.Reference

open System
open System.IO
open System.Text.Json

let dataDir =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "tests/data not found above the test binary"
        let candidate = Path.Combine(d.FullName, "tests", "data")
        if Directory.Exists candidate then candidate else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let load (name: string) =
    JsonDocument.Parse(File.ReadAllText(Path.Combine(dataDir, "reference", name))).RootElement

let coalescent = lazy (load "coalescent.json")
let rabbits = lazy (load "rabbits.json")

let num (e: JsonElement) (name: string) = e.GetProperty(name).GetDouble()

let relErr (actual: float) (expected: float) =
    if expected = 0.0 then abs actual else abs (actual - expected) / abs expected
