module Ptd.Core.Tests.DistributionTests
