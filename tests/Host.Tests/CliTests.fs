module Ptd.Host.Tests.CliTests
