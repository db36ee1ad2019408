module Ptd.Core.Tests.ModelFileTests
