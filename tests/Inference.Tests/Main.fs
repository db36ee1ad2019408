module Ptd.Inference.Tests.Main

[<EntryPoint>]
let main argv = Ptd.Tests.TestMain.run argv
