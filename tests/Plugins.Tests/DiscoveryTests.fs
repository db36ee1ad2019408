/// Plugin discovery through MEF: load contexts, errors that name the culprit, other plugins unaffected.
module Ptd.Plugins.Tests.DiscoveryTests

open System
open System.IO
open System.Runtime.Loader
open Expecto
open Ptd.Core
open Ptd.Storage
open Ptd.Host.Composition

let private ptdMessage f =
    try
        f () |> ignore
        failtest "expected a PtdException"
    with :? PtdException as e -> e.Message

[<Tests>]
let tests =
    testList "discovery" [
        test "the shipped and the test plugins are found by scheme" {
            let r = TestEnv.registry.Value
            let errors = r.LoadErrors |> Seq.map string |> String.concat "; "
            Expect.isEmpty r.LoadErrors $"no load errors: {errors}"
            Expect.sequenceEqual r.Schemes [ "azblob"; "explodes"; "faulty"; "file"; "mem"; "s3" ] "schemes"
        }

        test "each plugin lives in its own load context and shares the contract with the host" {
            let r = TestEnv.registry.Value
            let contextOf scheme =
                match r.TryGetProvider scheme with
                | true, p -> AssemblyLoadContext.GetLoadContext(p.GetType().Assembly)
                | _ -> failtestf "no provider for %s" scheme
            let s3, az, file = contextOf "s3", contextOf "azblob", contextOf "file"
            Expect.notEqual s3 AssemblyLoadContext.Default "s3 is not in the default context"
            Expect.isTrue (s3.Name.StartsWith "ptd-plugin:") "named plugin context"
            Expect.notEqual s3 az "s3 and azure are isolated"
            Expect.notEqual s3 file "s3 and local disk are isolated"
            Expect.equal (AssemblyLoadContext.GetLoadContext(typeof<IBlobStoreProvider>.Assembly)) AssemblyLoadContext.Default "contract in the default context"
            // The SDKs load inside their plugin's context, not the host's.
            let store = TestEnv.openStore "s3://some-bucket/p?endpoint=http://127.0.0.1:9&region=us-east-1&anonymous=true"
            Expect.isTrue store.Capabilities.ReadOnly "anonymous is read-only"
            let aws =
                AppDomain.CurrentDomain.GetAssemblies()
                |> Array.filter (fun a -> a.GetName().Name = "AWSSDK.Core")
            Expect.isNonEmpty aws "AWSSDK.Core loaded"
            for a in aws do
                Expect.equal (AssemblyLoadContext.GetLoadContext a) s3 "AWSSDK.Core in the s3 plugin's context"
        }

        test "an unknown scheme fails with the list of schemes found" {
            let msg = ptdMessage (fun () -> TestEnv.openStore "gcs://bucket/prefix?token=SECRET")
            Expect.stringContains msg "'gcs'" "names the scheme"
            Expect.stringContains msg "azblob, explodes, faulty, file, mem, s3" "lists the schemes"
            Expect.isFalse (msg.Contains "SECRET") "no query values"
        }

        test "a provider that throws on creation is reported; the others still open" {
            let msg = ptdMessage (fun () -> TestEnv.openStore "explodes://x")
            Expect.stringContains msg "always fails to start" "the plugin's reason"
            Expect.stringContains msg "Ptd.TestPlugins.dll" "names the plugin"
            let store = TestEnv.openStore "mem://after-explosion"
            Expect.isFalse (TestEnv.run (store.ExistsAsync(BlobKey.Parse "k"))) "mem still works"
        }

        test "a plugin assembly that fails to load is reported by path; the other plugins still work" {
            let root = TestEnv.tempDir "broken-plugins"
            let broken = Directory.CreateDirectory(Path.Combine(root, "broken")).FullName
            File.WriteAllBytes(Path.Combine(broken, "Broken.Storage.dll"), TestEnv.randomBytes 9 4096)
            File.WriteAllText(Path.Combine(broken, "Broken.Storage.deps.json"), """{"runtimeTarget":{"name":".NETCoreApp,Version=v10.0"},"targets":{},"libraries":{}}""")
            // A deps.json the runtime's native parser would die on (it terminates the process on "{}").
            let damaged = Directory.CreateDirectory(Path.Combine(root, "damaged")).FullName
            File.Copy(Path.Combine(TestEnv.testPluginsDir, "Ptd.TestPlugins.dll"), Path.Combine(damaged, "Damaged.Storage.dll"))
            File.WriteAllText(Path.Combine(damaged, "Damaged.Storage.deps.json"), "{}")
            Directory.CreateDirectory(Path.Combine(root, "empty")) |> ignore
            let o = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
            o.Directories.Add root
            o.Directories.Add TestEnv.pluginsDir
            use r = StorageProviderRegistry.Discover o
            let errors = r.LoadErrors |> Seq.map string |> String.concat "\n"
            Expect.stringContains errors "Broken.Storage.dll" "names the broken assembly"
            Expect.stringContains errors "not a valid .NET assembly" "says why"
            Expect.stringContains errors "empty" "reports the folder without a plugin"
            Expect.stringContains errors "Damaged.Storage.dll: its .deps.json has no runtimeTarget.name" "refuses a damaged deps.json"
            Expect.containsAll r.Schemes [ "file"; "s3"; "azblob" ] "the good plugins loaded"
            let dir = TestEnv.tempDir "after-broken"
            let store = r.Open($"file://{dir}", TestEnv.context ())
            let key = BlobKey.Parse "a/b"
            TestEnv.run (store.PutAsync(key, ReadOnlyMemory [| 1uy |], BlobWriteMode.Overwrite)) |> ignore
            Expect.isTrue (TestEnv.run (store.GetAsync key)).Found "local disk works"
            let msg = ptdMessage (fun () -> r.Open("nope://x"))
            Expect.stringContains msg "Broken.Storage.dll" "the unknown-scheme message mentions the failed plugin"
        }

        test "PTD_PLUGIN_PATH adds directories; a missing one is reported" {
            let missing = Path.Combine(Path.GetTempPath(), "ptd-no-such-plugin-dir")
            let path = TestEnv.testPluginsDir + string Path.PathSeparator + missing
            let o = PluginDiscoveryOptions(UseDefaultDirectory = false, GetEnvironmentVariable = TestEnv.envWith [ "PTD_PLUGIN_PATH", path ])
            use r = StorageProviderRegistry.Discover o
            Expect.contains r.Schemes "mem" "found through PTD_PLUGIN_PATH"
            Expect.exists r.LoadErrors (fun e -> e.Path.Contains "ptd-no-such-plugin-dir" && e.Message.Contains "does not exist") "missing directory reported"
        }

        test "display forms redact with the provider's list of public parameters" {
            let r = TestEnv.registry.Value
            Expect.equal (r.Display "s3://b/p?region=eu-west-1&sessionToken=abc") "s3://b/p?region=eu-west-1&sessionToken=***" "s3"
            Expect.equal (r.Display "unknown://b/p?region=x") "unknown://b/p?region=***" "unknown scheme hides all"
        }

        test "in-process providers can be registered next to discovered ones" {
            use r = new StorageProviderRegistry()
            r.Register("mem", Ptd.TestPlugins.MemoryProvider())
            Expect.sequenceEqual r.Schemes [ "mem" ] "registered"
            Expect.throwsT<PtdException> (fun () -> r.Register("mem", Ptd.TestPlugins.MemoryProvider())) "no silent replacement"
        }
    ]
