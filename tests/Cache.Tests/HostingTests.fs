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
open Microsoft.Extensions.Logging
open Microsoft.Extensions.Options
open Ptd.Host.Caching
open Ptd.Hosting
open Ptd.Cache.Tests.CacheEnv

let private configOf (pairs: (string * string) list) =
    ConfigurationBuilder().AddInMemoryCollection(pairs |> List.map (fun (k, v) -> KeyValuePair<string, string>(k, v))).Build()

let private envOf (pairs: (string * string) list) =
    let m = Map.ofList pairs
    Func<string, string>(fun n -> match Map.tryFind n m with Some v -> v | None -> null)

let private freePort () = Ptd.Tests.Emulators.freePort ()

let private sampleDll () =
    let p = Path.Combine(repoRoot, "examples", "WorkerService", "bin", configuration, "net10.0", "Ptd.Examples.WorkerService.dll")
    if not (File.Exists p) then failtestf "%s not found: build the solution first" p
    p

/// n observations at the quantiles of Exp(rate): deterministic data whose conjugate posterior is known in closed form.
let private exponentialData (n: int) (rate: float) = Array.init n (fun i -> -log (1.0 - (float i + 0.5) / float n) / rate)

/// Gamma(a, b) prior, exponential likelihood: the posterior is Gamma(a + n, b + Σt) (mean, sd).
let private conjugate (a: float) (b: float) (data: float[]) =
    let shape, rate = a + float data.Length, b + Array.sum data
    shape / rate, sqrt shape / rate

/// Collects every formatted log line (to check what the services log).
type private ListLogger(lines: ResizeArray<string>) =
    interface ILogger with
        member _.BeginScope<'TState>(_: 'TState) : IDisposable = null
        member _.IsEnabled(_: LogLevel) = true
        member _.Log<'TState>(_: LogLevel, _: EventId, state: 'TState, error: exn, formatter: Func<'TState, exn, string>) =
            lock lines (fun () -> lines.Add(formatter.Invoke(state, error)))

type private ListLoggerProvider(lines: ResizeArray<string>) =
    interface ILoggerProvider with
        member _.CreateLogger(_: string) = ListLogger lines :> ILogger
        member _.Dispose() = ()

let private pipelineProviderLogging (dir: string) (extra: (string * string) list) (lines: ResizeArray<string>) =
    let config =
        configOf ([ "Ptd:UseEnvironment", "false"
                    "Ptd:PluginDirectories:0", pluginsDir
                    "Ptd:Cache:Tiers:0:Uri", "file://" + dir
                    "Ptd:Cache:Tiers:0:Name", "local"
                    "Ptd:Cache:Timeout", "30s" ] @ extra)
    let services = ServiceCollection()
    services.AddLogging(fun b -> b.AddProvider(new ListLoggerProvider(lines)) |> ignore) |> ignore
    services.AddPtdPipeline(config) |> ignore
    services.BuildServiceProvider()

let private pipelineProvider (dir: string) (extra: (string * string) list) = pipelineProviderLogging dir extra (ResizeArray())

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

        testCase "AddPtdPipeline registers the inference service: conjugate posterior, kernel persisted in the cache tiers" <| fun () ->
            let dir = tempDir "infer"
            let data = exponentialData 40 2.0
            let mean, sd = conjugate 2.0 1.0 data
            // (C# records have no F# copy-and-update: every variant is made here.)
            let req (model: string) (data: float[]) (priors: string[]) (particles: int) (iterations: int) =
                PtdInferenceRequest(model, data, priors, Nullable particles, Nullable iterations, Nullable 5)
            let request = req "exponential" data [| "gamma:2,1" |] 100 400
            let logs = ResizeArray<string>()
            let first =
                use sp = pipelineProviderLogging dir [] logs
                let service = sp.GetRequiredService<PtdInferenceService>()
                Expect.isTrue (obj.ReferenceEquals(service.Registry, sp.GetRequiredService<Ptd.Host.Kernels.KernelRegistry>())) "the service uses the registered kernel registry"
                Expect.isTrue (obj.ReferenceEquals(service.Registry.Cache, sp.GetRequiredService<IArtifactCache>())) "which is backed by the registered cache tiers"
                Expect.contains (sp.GetRequiredService<CacheManager>().Warmers |> Seq.map (fun w -> w.Layer.Name)) "kernels" "the cache manager can prewarm kernels"
                let r = service.RunAsync(request) |> run
                let p = r.Parameters.[0]
                Expect.isLessThan (abs (p.Mean - mean) / mean) 0.03 $"posterior mean {p.Mean:G5} vs the conjugate Gamma posterior's {mean:G5}"
                Expect.isLessThan (abs (p.Sd - sd) / sd) 0.15 $"posterior sd {p.Sd:G5} vs {sd:G5}"
                Expect.equal r.Kernel "Built" "the first process builds the kernel"
                let again = service.RunAsync(req "exponential" data [| "gamma:2,1" |] 100 5) |> run
                Expect.equal again.Kernel "Memory" "a second request shares it in memory"
                let runs = logs |> Seq.filter (fun l -> l.StartsWith "inference: ") |> List.ofSeq
                let all = String.Join(" | ", logs)
                Expect.equal runs.Length 2 $"one log line per run through ILogger ({all})"
                Expect.stringContains runs.Head "likelihood kernel" "naming where the kernel came from"
                let value = data.[0].ToString("R", Globalization.CultureInfo.InvariantCulture)
                Expect.isFalse (logs |> Seq.exists (fun l -> l.Contains value)) "no data value is logged"
                r
            Expect.equal (Directory.GetFiles(Path.Combine(dir, "kernel"), "*", SearchOption.AllDirectories).Length) 1 "the kernel was persisted in the configured tier"
            // A second container (a restarted service) on the same tier loads the kernel and gets the same answer.
            use sp2 = pipelineProvider dir []
            let second = sp2.GetRequiredService<PtdInferenceService>().RunAsync(request) |> run
            Expect.equal (second.Kernel, second.KernelTier) ("Cache", "local") "the restarted service loads the kernel from the tier"
            Expect.equal second.Parameters.[0].Mean first.Parameters.[0].Mean "bit-identical posterior for the same seed"
            // Requests outside the limits are refused with a reason.
            let service = sp2.GetRequiredService<PtdInferenceService>()
            for bad, message in [ req "/etc/passwd" data [| "gamma:2,1" |] 100 5, "not a built-in model spec"
                                  req "exponential" data [| "gamma:2,1" |] 5000 5, "particles must be between 2 and 1024"
                                  req "exponential" [||] [| "gamma:2,1" |] 100 5, "no data given"
                                  req "exponential" data [| "gamma:2,1"; "gamma:1,1" |] 100 5, "2 prior(s) given" ] do
                let message' =
                    try
                        service.RunAsync(bad) |> run |> ignore
                        failtest "the request should be refused"
                    with :? Ptd.Core.PtdException as x -> x.Message
                Expect.stringContains message' message "the reason"

        testCase "invalid inference settings fail validation at start-up, naming the setting" <| fun () ->
            use sp = pipelineProvider (tempDir "infer-bad") [ "Ptd:Inference:Particles", "1" ]
            let message =
                try
                    sp.GetRequiredService<IOptions<PtdPipelineOptions>>().Value |> ignore
                    failtest "validation should fail"
                with :? OptionsValidationException as x -> x.Message
            Expect.stringContains message "Ptd:Inference:Particles" "the message names the setting"

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
                // POST /infer: the SVGD posterior through the registered inference service.
                let data = exponentialData 40 2.0
                let mean, _ = conjugate 2.0 1.0 data
                let body = JsonSerializer.Serialize {| model = "exponential"; data = data; priors = [| "gamma:2,1" |]; particles = 64; iterations = 300; seed = 3 |}
                let infer (b: string) =
                    let r = http.PostAsync("/infer", new StringContent(b, Encoding.UTF8, "application/json")) |> run
                    r.StatusCode, json (r.Content.ReadAsStringAsync() |> run)
                let code3, posterior = infer body
                Expect.equal code3 HttpStatusCode.OK $"POST /infer is 200 ({posterior})"
                let p = posterior.GetProperty("parameters").[0]
                let m = p.GetProperty("mean").GetDouble()
                Expect.isLessThan (abs (m - mean) / mean) 0.05 $"posterior mean {m:G5} vs the conjugate Gamma posterior's {mean:G5}"
                Expect.equal (posterior.GetProperty("kernel").GetString()) "Built" "the first request builds the likelihood kernel"
                let _, again = infer body
                Expect.equal (again.GetProperty("kernel").GetString()) "Memory" "the next one shares it"
                let tooMany, refusal = infer """{"model": "exponential", "data": [1.0], "particles": 100000}"""
                Expect.equal tooMany HttpStatusCode.BadRequest "a request over the configured limits is refused"
                Expect.stringContains (refusal.GetProperty("error").GetString()) "particles must be between 2 and 256" "with the limit from appsettings.json"
            finally
                if not p.HasExited then
                    p.Kill true
                p.WaitForExit 10_000 |> ignore
            Expect.isTrue p.HasExited "the service stopped"
    ]
