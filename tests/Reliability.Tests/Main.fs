module Ptd.Reliability.Tests.Main

[<EntryPoint>]
let main argv =
    // Worker processes of the load and kill tests are this same executable (build.fsx runs every Exe project under
    // tests/ as a suite, so workers must not be a second project).
    if argv.Length > 0 && argv.[0] = "--worker" then Worker.run argv.[1..]
    else Ptd.Tests.TestMain.run argv
