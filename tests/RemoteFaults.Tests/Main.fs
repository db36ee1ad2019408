module Ptd.RemoteFaults.Tests.Main

[<EntryPoint>]
let main argv = Ptd.Tests.TestMain.run argv
