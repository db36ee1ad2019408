module Ptd.Core.Tests.MomentTests
