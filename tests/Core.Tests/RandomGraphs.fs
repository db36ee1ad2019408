module Ptd.Core.Tests.RandomGraphs
