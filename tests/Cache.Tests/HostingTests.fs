/// services.AddPtdPipeline(configuration): registrations, the precedence of configuration sources, validation at
/// start-up, the health check; and the sample HTTP service started as a real process on a free loopback port.
module Ptd.Cache.Tests.HostingTests

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Http
open System.Net.Sockets
open System.Text
open System.Text.Json
open System.Threading
open Expecto
open Microsoft.Extensions.Configuration
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Diagnostics.HealthChecks
open Microsoft.Extensions.Options
open Ptd.Host.Caching
open Ptd.Hosting
open Ptd.Cache.Tests.CacheEnv

let private configOf (pairs: (string * string) list) =
    ConfigurationBuilder().AddInMemoryCollection(pairs |> List.map (fun (k, v) -> KeyValuePair<string, string>(k, v))).Build()

let private envOf (pairs: (string * string) list) =
    let m = Map.ofList pairs
    Func<string, string>(fun n -> match Map.tryFind n m with Some v -> v | None -> null)

let private freePort () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    port

let private sampleDll () =
    let p = Path.Combine(repoRoot, "examples", "WorkerService", "bin", configuration, "net10.0", "Ptd.Examples.WorkerService.dll")
    if not (File.Exists p) then failtestf "%s not found: build the solution first" p
    p

[<Tests>]
let tests =
    testList "hosting" [
        testCase "AddPtdPipeline registers the cache, the manager, the plugins and a healthy health check" <| fun () ->
            let dir = tempDir "di"
            let config =
                configOf [ "Ptd:UseEnvironment", "false"
                           "Ptd:PluginDirectories:0", pluginsDir
                           "Ptd:Cache:Tiers:0:Uri", "file://" + dir
                           "Ptd:Cache:Tiers:0:Name", "local"
                           "Ptd:Cache:Timeout", "3s" ]
            let services = ServiceCollection()
            services.AddLogging() |> ignore
            services.AddPtdPipeline(config) |> ignore
            use sp = services.BuildServiceProvider()
            let cache = sp.GetRequiredService<IArtifactCache>()
            Expect.equal (cache.Tiers |> Seq.map (fun t -> t.Name, t.Timeout) |> List.ofSeq) [ "local", TimeSpan.FromSeconds 3.0 ] "the configured tier and timeout"
            Expect.isTrue (obj.ReferenceEquals(sp.GetRequiredService<CacheManager>().Cache, cache)) "the manager manages the registered cache"
            let health = sp.GetRequiredService<HealthCheckService>().CheckHealthAsync() |> run
            let descriptions = health.Entries.Values |> Seq.map (fun e -> e.Description) |> String.concat "; "
            Expect.equal health.Status HealthStatus.Healthy $"healthy ({descriptions})"
            let svc = sp.GetRequiredService<TracedModelService>()
            let first = svc.MomentsAsync("coalescent:n=8", [| 2.0 |]) |> run
            let second = svc.MomentsAsync("coalescent:n=8", [| 2.0 |]) |> run
            Expect.equal (first.Trace, second.Trace) ("Computed", "Hit") "the trace is recorded once, then read from the cache"
            // E[T_MRCA] = 2(1 − 1/n) / θ for the coalescent with pair rate θ.
            Expect.floatClose Accuracy.veryHigh second.Mean (2.0 * (1.0 - 1.0 / 8.0) / 2.0) "the mean matches the closed form"
            Expect.isTrue (File.Exists(Path.Combine(dir, "trace", $"r{Ptd.Core.Trace.FormatRevision}", "g1", "=" + first.Key.Substring(0, 2), first.Key))) "the trace is on disk under the shared key convention"

        testCase "an invalid setting fails options validation with the setting's name" <| fun () ->
            let services = ServiceCollection()
            services.AddPtdPipeline(configOf [ "Ptd:UseEnvironment", "false"; "Ptd:Cache:MaxEntrySize", "huge" ]) |> ignore
            use sp = services.BuildServiceProvider()
            let message =
                try
                    sp.GetRequiredService<IOptions<PtdPipelineOptions>>().Value |> ignore
                    failtest "validation should fail"
                with :? OptionsValidationException as x -> x.Message
            Expect.stringContains message "maxEntrySize" "the message names the setting"

        testCase "precedence: file < Ptd:Cache section < PTD_CACHE < code" <| fun () ->
            let home = tempDir "precedence"
            let file = Path.Combine(home, "cache.json")
            File.WriteAllText(file, """{ "tiers": ["file:///from-file"], "timeout": "7s", "generation": 4 }""")
            let o = PtdPipelineOptions()
            let fileOnly = PtdCacheOptionsBuilder.Build(o, envOf [ "PTD_CACHE_CONFIG", file ])
            Expect.equal (fileOnly.Tiers.[0].Location, fileOnly.DefaultTimeout, fileOnly.Generation) ("file:///from-file", TimeSpan.FromSeconds 7.0, 4) "the file alone"
            o.Cache.Timeout <- "2s"
            o.Cache.Tiers <- List [ PtdTierSettings(Uri = "file:///from-section") ]
            let section = PtdCacheOptionsBuilder.Build(o, envOf [ "PTD_CACHE_CONFIG", file ])
            Expect.equal (section.Tiers.[0].Location, section.DefaultTimeout, section.Generation) ("file:///from-section", TimeSpan.FromSeconds 2.0, 4) "the section overrides the file field by field"
            let variable = PtdCacheOptionsBuilder.Build(o, envOf [ "PTD_CACHE_CONFIG", file; "PTD_CACHE", "file:///from-variable" ])
            Expect.equal variable.Tiers.[0].Location "file:///from-variable" "PTD_CACHE overrides the tiers"
            o.ConfigureCache <- Action<ArtifactCacheOptions>(fun c -> c.Generation <- 9)
            let code = PtdCacheOptionsBuilder.Build(o, envOf [ "PTD_CACHE_CONFIG", file; "PTD_CACHE", "file:///from-variable" ])
            Expect.equal code.Generation 9 "code wins"
            o.UseEnvironment <- false
            let isolated = PtdCacheOptionsBuilder.Build(o, envOf [ "PTD_CACHE_CONFIG", file; "PTD_CACHE", "file:///from-variable" ])
            Expect.equal (isolated.Tiers.[0].Location, isolated.Generation) ("file:///from-section", 9) "UseEnvironment=false ignores the ptd variables and file"

        testCase "the sample service answers /health and /moments on a loopback port, and stops" <| fun () ->
            let port = freePort ()
            let home = tempDir "service"
            let dll = sampleDll ()
            let psi = ProcessStartInfo("dotnet", [ dll; "--urls"; $"http://127.0.0.1:{port}"; "--Ptd:Cache:Timeout=5s" ])
            psi.WorkingDirectory <- Path.GetDirectoryName dll
            psi.UseShellExecute <- false
            psi.RedirectStandardOutput <- true
            psi.RedirectStandardError <- true
            for v in [ "PTD_CACHE_CONFIG"; "PTD_PLUGIN_PATH" ] do psi.Environment.Remove v |> ignore
            psi.Environment.["PTD_CACHE"] <- "file://" + Path.Combine(home, "cache")
            psi.Environment.["HOME"] <- home
            use p = Process.Start psi
            let log = StringBuilder()
            p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock log (fun () -> log.AppendLine e.Data |> ignore))
            p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock log (fun () -> log.AppendLine e.Data |> ignore))
            p.BeginOutputReadLine()
            p.BeginErrorReadLine()
            try
                use http = new HttpClient(BaseAddress = Uri $"http://127.0.0.1:{port}", Timeout = TimeSpan.FromSeconds 30.0)
                let deadline = DateTime.UtcNow.AddSeconds 60.0
                let mutable health = None
                while health.IsNone && DateTime.UtcNow < deadline && not p.HasExited do
                    try
                        let r = http.GetAsync("/health") |> run
                        health <- Some(r.StatusCode, r.Content.ReadAsStringAsync() |> run)
                    with :? HttpRequestException -> Thread.Sleep 250
                match health with
                | None -> failtestf "the service did not answer within 60 s (exited: %b)\n%s" p.HasExited (log.ToString())
                | Some(code, body) ->
                    Expect.equal code HttpStatusCode.OK "GET /health is 200"
                    Expect.equal body "Healthy" "and healthy"
                let post (body: string) =
                    let r = http.PostAsync("/moments", new StringContent(body, Encoding.UTF8, "application/json")) |> run
                    r.StatusCode, json (r.Content.ReadAsStringAsync() |> run)
                let code1, first = post """{"model": "coalescent:n=12", "theta": [1.0], "k": 3}"""
                let code2, second = post """{"model": "coalescent:n=12", "theta": [1.0], "k": 3}"""
                Expect.equal (code1, code2) (HttpStatusCode.OK, HttpStatusCode.OK) "POST /moments is 200"
                Expect.equal (first.GetProperty("trace").GetString(), second.GetProperty("trace").GetString()) ("Computed", "Hit") "recorded once, then served from the cache"
                Expect.floatClose Accuracy.veryHigh (second.GetProperty("mean").GetDouble()) (2.0 * (1.0 - 1.0 / 12.0)) "E[T_MRCA] = 2(1 − 1/n)"
                Expect.equal (second.GetProperty("moments").GetArrayLength()) 3 "k = 3 moments"
                let bad, err = post """{"model": "/etc/passwd", "theta": []}"""
                Expect.equal bad HttpStatusCode.BadRequest "a model file path is refused"
                Expect.stringContains (err.GetProperty("error").GetString()) "not a built-in model spec" "with a reason"
            finally
                if not p.HasExited then
                    p.Kill true
                p.WaitForExit 10_000 |> ignore
            Expect.isTrue p.HasExited "the service stopped"
    ]
