/// What the test project's build wrote into the assembly ([<AssemblyMetadata>] items: PtdPluginsDir, Configuration...).
/// Compiled into each test executable, so the executing assembly is that suite's own.
module Ptd.Tests.BuildInfo

open System.Reflection

/// The value of one AssemblyMetadata item of the test assembly (fails if the project does not set it).
let metadata (name: string) =
    Assembly.GetExecutingAssembly().GetCustomAttributes<AssemblyMetadataAttribute>()
    |> Seq.find (fun a -> a.Key = name)
    |> fun a -> a.Value
