/// PTD_CACHE, the JSON file and the reserved tier options.
module Ptd.Plugins.Tests.ConfigTests

open System
open System.IO
open Expecto
open Ptd.Core
open Ptd.Host.Caching

let env (pairs: (string * string) list) =
    let m = Map.ofList pairs
    Func<string, string>(fun k -> match Map.tryFind k m with Some v -> v | None -> null)

[<Tests>]
let tests =
    testList "configuration" [
        test "PTD_CACHE lists tiers in order and moves reserved options out of the location" {
            let tiers =
                CacheConfiguration.ParseChain
                    "file:///var/cache/ptd?maxSize=10GB&maxAge=30d ; s3://team/ptd?region=eu-west-1&access=ro&timeout=2.5s&cooldown=1m&name=team"
            Expect.equal tiers.Count 2 "two tiers"
            let local, remote = tiers.[0], tiers.[1]
            Expect.equal local.Location "file:///var/cache/ptd" "reserved options removed"
            Expect.equal local.MaxSizeBytes (Nullable(10L <<< 30)) "10 GB"
            Expect.equal local.MaxAge (Nullable(TimeSpan.FromDays 30.0)) "30 days"
            Expect.equal local.Access CacheTierAccess.ReadWrite "default access"
            Expect.equal remote.Location "s3://team/ptd?region=eu-west-1" "plugin options kept"
            Expect.equal remote.Access CacheTierAccess.ReadOnly "ro"
            Expect.equal remote.Timeout (Nullable(TimeSpan.FromMilliseconds 2500.0)) "2.5 s"
            Expect.equal remote.CoolDown (Nullable(TimeSpan.FromMinutes 1.0)) "1 min"
            Expect.equal remote.Name "team" "name"
        }

        test "off, none and empty disable the cache" {
            for s in [ "off"; "NONE"; ""; "  " ] do
                Expect.isEmpty (CacheConfiguration.ParseChain s) s
        }

        test "durations and sizes" {
            Expect.equal (CacheConfiguration.ParseDuration("250ms", "t")) (TimeSpan.FromMilliseconds 250.0) "ms"
            Expect.equal (CacheConfiguration.ParseDuration("5m", "t")) (TimeSpan.FromMinutes 5.0) "m"
            Expect.equal (CacheConfiguration.ParseDuration("12h", "t")) (TimeSpan.FromHours 12.0) "h"
            Expect.equal (CacheConfiguration.ParseDuration("00:00:10", "t")) (TimeSpan.FromSeconds 10.0) "hh:mm:ss"
            Expect.equal (CacheConfiguration.ParseSize("512KB", "s")) 524288L "KB"
            Expect.equal (CacheConfiguration.ParseSize("1.5GiB", "s")) (3L <<< 29) "GiB"
            Expect.equal (CacheConfiguration.ParseSize("123", "s")) 123L "bytes"
        }

        test "malformed settings fail with the setting's name and an example" {
            let msg =
                try CacheConfiguration.ParseChain "file:///x?timeout=soon" |> ignore; "" with :? PtdException as e -> e.Message
            Expect.stringContains msg "timeout" "names the setting"
            Expect.stringContains msg "10s" "gives an example"
            let msg2 = try CacheConfiguration.ParseChain "file:///x?access=sometimes" |> ignore; "" with :? PtdException as e -> e.Message
            Expect.stringContains msg2 "read-only" "lists the choices"
        }

        test "the default is one read-write tier at file://" {
            let o = CacheConfiguration.FromEnvironment(env [ "HOME", "/nonexistent-home" ])
            Expect.equal o.Tiers.Count 1 "one tier"
            Expect.equal o.Tiers.[0].Location "file://" "default location"
        }

        test "a JSON file sets tiers and defaults; PTD_CACHE replaces its tiers" {
            let dir = TestEnv.tempDir "config"
            let file = Path.Combine(dir, "cache.json")
            File.WriteAllText(file, """
              { // comments are allowed
                "generation": 4,
                "compression": "brotli",
                "timeout": 3,
                "coolDown": "2m",
                "tiers": [
                  { "uri": "file:///data/ptd", "maxSize": "2GB", "maxAge": "7d", "name": "local" },
                  { "uri": "azblob://cache/ptd?account=acct", "access": "read-only", "timeout": "1s" },
                  "s3://b/p?region=us-east-1&access=ro"
                ]
              }""")
            let o = CacheConfiguration.FromEnvironment(env [ "PTD_CACHE_CONFIG", file ])
            Expect.equal o.Generation 4 "generation"
            Expect.equal o.Compression CacheCompression.Brotli "compression"
            Expect.equal o.DefaultTimeout (TimeSpan.FromSeconds 3.0) "seconds as a number"
            Expect.equal o.DefaultCoolDown (TimeSpan.FromMinutes 2.0) "cool-down"
            Expect.equal o.Tiers.Count 3 "three tiers"
            Expect.equal o.Tiers.[0].Name "local" "name"
            Expect.equal o.Tiers.[0].MaxSizeBytes (Nullable(2L <<< 30)) "size"
            Expect.equal o.Tiers.[1].Access CacheTierAccess.ReadOnly "access"
            Expect.equal o.Tiers.[2].Access CacheTierAccess.ReadOnly "access from the query"
            let o2 = CacheConfiguration.FromEnvironment(env [ "PTD_CACHE_CONFIG", file; "PTD_CACHE", "file:///only" ])
            Expect.equal o2.Tiers.Count 1 "PTD_CACHE wins"
            Expect.equal o2.Generation 4 "other settings stay"
        }

        test "a JSON file with an unknown field or a missing file is an error" {
            let dir = TestEnv.tempDir "config-bad"
            let file = Path.Combine(dir, "cache.json")
            File.WriteAllText(file, """{ "tiers": [], "colour": "blue" }""")
            let msg = try CacheConfiguration.FromEnvironment(env [ "PTD_CACHE_CONFIG", file ]) |> ignore; "" with :? PtdException as e -> e.Message
            Expect.stringContains msg "colour" "names the field"
            let msg2 = try CacheConfiguration.FromEnvironment(env [ "PTD_CACHE_CONFIG", file + ".missing" ]) |> ignore; "" with :? PtdException as e -> e.Message
            Expect.stringContains msg2 "does not exist" "missing file"
        }

        test "\"enabled\": false turns the cache off" {
            let dir = TestEnv.tempDir "config-off"
            let file = Path.Combine(dir, "cache.json")
            File.WriteAllText(file, """{ "enabled": false, "tiers": [ "file:///x" ] }""")
            Expect.isEmpty (CacheConfiguration.FromEnvironment(env [ "PTD_CACHE_CONFIG", file ])).Tiers "off"
        }
    ]
