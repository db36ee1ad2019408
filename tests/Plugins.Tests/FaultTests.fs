module Ptd.Plugins.Tests.FaultTests
