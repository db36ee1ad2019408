module Ptd.Cache.Tests.Main

[<EntryPoint>]
let main argv = Ptd.Tests.TestMain.run argv
