/// Scratch directories for one test run: a per-run root under build.fsx's work dir (PTD_TEST_WORK_DIR) or the
/// system temp dir, removed when the process exits (some suites write tens of MB), and a fresh directory per test.
module Ptd.Tests.TempDirs

open System
open System.IO

let private shortId (length: int) = Guid.NewGuid().ToString("N").Substring(0, length)

/// A suite's scratch area: <temp>/<tempName>/<id> by default, <PTD_TEST_WORK_DIR>/<workName>/<id> under build.fsx.
/// The root is created on first use, so a suite that never asks for a directory leaves nothing behind.
type Scratch(tempName: string, workName: string) =
    let root =
        lazy (
            let parent =
                match Environment.GetEnvironmentVariable "PTD_TEST_WORK_DIR" with
                | null | "" -> Path.Combine(Path.GetTempPath(), tempName)
                | d -> Path.Combine(d, workName)
            let root = Path.Combine(parent, shortId 8)
            Directory.CreateDirectory root |> ignore
            AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try Directory.Delete(root, true) with _ -> ())
            root)

    /// A fresh directory for one test, named after it.
    member _.Dir(name: string) =
        let dir = Path.Combine(root.Value, sprintf "%s-%s" name (shortId 8))
        Directory.CreateDirectory dir |> ignore
        dir

/// A unique, key-safe segment that isolates tests sharing a server (bucket prefixes, container paths).
let uniqueSegment (name: string) = sprintf "%s-%s" name (shortId 12)
