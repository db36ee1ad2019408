module Ptd.Plugins.Tests.CacheTests
