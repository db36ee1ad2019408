module Ptd.Core.Tests.RewardTransformTests
