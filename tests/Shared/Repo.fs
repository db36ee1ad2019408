/// Where the repository and the built `ptd` are, for every suite that runs the real executable.
module Ptd.Tests.Repo

open System
open System.IO

/// The directory holding PtdPipeline.sln, found upwards from the test binary.
let root =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "repository root (with PtdPipeline.sln) not found above the test binary"
        elif File.Exists(Path.Combine(d.FullName, "PtdPipeline.sln")) then d.FullName
        else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// The ptd.dll of the most recent build (Debug or Release).
let ptdDll =
    [ "Debug"; "Release" ]
    |> List.map (fun c -> Path.Combine(root, "src", "Host.CSharp", "Ptd.Cli", "bin", c, "net10.0", "ptd.dll"))
    |> List.filter File.Exists
    |> List.sortByDescending File.GetLastWriteTimeUtc
    |> List.tryHead
    |> Option.defaultWith (fun () -> failwith "ptd.dll not found: build the solution first (dotnet fsi build.fsx build)")
