module Ptd.Host.Tests.Cli
