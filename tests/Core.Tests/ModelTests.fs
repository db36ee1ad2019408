module Ptd.Core.Tests.ModelTests
