/// The `dotnet tool` package: packed from the built CLI, installed into a private tool path from a local folder
/// (offline: a nuget.config with only that folder, a private NuGet package cache), then run. The installed tool
/// must find the three storage plugins next to it and cache traces like a built `ptd`.
module Ptd.Host.Tests.ToolPackageTests

open System
open System.Diagnostics
open System.IO
open Expecto
open Ptd.Host.Tests.Cli

/// Runs a process to completion with extra environment variables (a null value removes the variable).
let private exec (exe: string) (args: string list) (env: (string * string) list) (timeoutMs: int) =
    let psi = ProcessStartInfo(exe, args)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    psi.WorkingDirectory <- Path.GetTempPath()
    for k, v in env do
        if isNull v then psi.Environment.Remove k |> ignore else psi.Environment.[k] <- v
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failwithf "%s %s did not finish within %d s" exe (String.Join(" ", args)) (timeoutMs / 1000)
    { Code = p.ExitCode; Out = out.Result; Err = err.Result }

let private check what (r: Result) =
    if r.Code <> 0 then failtestf "%s failed (exit %d):\n%s\n%s" what r.Code r.Out r.Err
    r

/// The build configuration of the ptd the suite runs (bin/<configuration>/net10.0/ptd.dll).
let private configuration = DirectoryInfo(Path.GetDirectoryName ptdDll).Parent.Name

[<Tests>]
let tests =
    testList "tool package" [
        test "pack, install offline from a local folder, run: the three storage plugins are found and a trace is cached" {
            let clock = Stopwatch.StartNew()
            let work = tempDir ()
            let feed = Directory.CreateDirectory(Path.Combine(work, "nupkg")).FullName
            let toolPath = Path.Combine(work, "tools")
            let cache = Path.Combine(work, "cache")
            // A private package cache: the global one would keep a stale Ptd.Cli of the same version across rebuilds.
            let dotnetEnv =
                [ "NUGET_PACKAGES", Path.Combine(work, "packages")
                  "DOTNET_CLI_TELEMETRY_OPTOUT", "1"
                  "DOTNET_NOLOGO", "1"
                  "DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1" ]
            // --no-build: pack what the suite's build produced (the plugins were deployed to bin/<cfg>/net10.0/plugins).
            let project = Path.Combine(repoRoot, "src", "Host.CSharp", "Ptd.Cli", "Ptd.Cli.csproj")
            let packArgs = [ "pack"; project; "-c"; configuration; "--no-build"; "-o"; feed ]
            check "dotnet pack" (exec "dotnet" packArgs dotnetEnv 300_000) |> ignore
            let package = Directory.GetFiles(feed, "Ptd.Cli.*.nupkg") |> Array.exactlyOne
            let version = Path.GetFileNameWithoutExtension(package).Substring("Ptd.Cli.".Length)
            // The package itself holds the plugins in the layout the host searches.
            use zip = IO.Compression.ZipFile.OpenRead package
            let entries = zip.Entries |> Seq.map (fun e -> e.FullName) |> Set.ofSeq
            for plugin in [ "localdisk/Ptd.Storage.LocalDisk"; "s3/Ptd.Storage.S3"; "azureblob/Ptd.Storage.AzureBlob" ] do
                for ext in [ ".dll"; ".deps.json" ] do
                    Expect.contains entries $"tools/net10.0/any/plugins/{plugin}{ext}" "plugin in the package"
            Expect.contains entries "tools/net10.0/any/plugins/s3/AWSSDK.S3.dll" "the plugin's private dependencies too"
            let config = Path.Combine(work, "nuget.config")
            let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><configuration><packageSources><clear /><add key=\"local\" value=\"" + feed + "\" /></packageSources></configuration>"
            File.WriteAllText(config, xml)
            let installArgs = [ "tool"; "install"; "--tool-path"; toolPath; "--configfile"; config; "--add-source"; feed; "Ptd.Cli"; "--version"; version ]
            check "dotnet tool install" (exec "dotnet" installArgs dotnetEnv 300_000) |> ignore
            let ptd = Path.Combine(toolPath, if OperatingSystem.IsWindows() then "ptd.exe" else "ptd")
            Expect.isTrue (File.Exists ptd) "the tool shim is installed"
            // Only the installed plugins: no PTD_PLUGIN_PATH, no config file, a private cache directory.
            let runEnv =
                [ "PTD_PLUGIN_PATH", ""; "PTD_CACHE_CONFIG", ""; "PTD_CACHE_STATS", "off"; "PTD_CACHE", null; "PTD_CACHE_DIR", cache
                  // The shim finds the runtime through DOTNET_ROOT: the root of the runtime running this suite
                  // (<root>/shared/Microsoft.NETCore.App/<version>/System.Private.CoreLib.dll).
                  "DOTNET_ROOT", Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof<obj>.Assembly.Location), "..", "..", "..")) ]
            let plugins = check "ptd cache plugins" (exec ptd [ "cache"; "plugins"; "--json" ] runEnv 60_000)
            let doc = json plugins.Out
            let providers = doc.GetProperty("providers").EnumerateArray() |> Seq.toList
            let schemes = providers |> List.map (fun p -> p.GetProperty("scheme").GetString()) |> set
            Expect.isTrue (Set.isSubset (set [ "file"; "s3"; "azblob" ]) schemes) $"schemes listed: {plugins.Out}"
            let installRoot = Path.GetFullPath toolPath
            for p in providers do
                Expect.stringStarts (Path.GetFullPath(p.GetProperty("source").GetString())) installRoot "loaded from the installed tool"
            Expect.equal (doc.GetProperty("loadErrors").GetArrayLength()) 0 "no plugin failed to load"
            let first = check "ptd moments (first run)" (exec ptd [ "moments"; "coalescent:n=5"; "--theta"; "1"; "--verbose"; "--json" ] runEnv 60_000)
            let written =
                if Directory.Exists cache then
                    Directory.GetFiles(cache, "*", SearchOption.AllDirectories)
                    |> Array.filter (fun f -> not (Path.GetFileName(f).StartsWith ".") && Path.GetRelativePath(cache, f).StartsWith "trace")
                else [||]
            Expect.equal written.Length 1 $"one trace entry written under PTD_CACHE_DIR:\n{first.Err}"
            let second = check "ptd moments (second run)" (exec ptd [ "moments"; "coalescent:n=5"; "--theta"; "1"; "--verbose"; "--json" ] runEnv 60_000)
            Expect.stringContains second.Err "hits 1" $"the second process hits the cache:\n{second.Err}"
            Expect.equal ((json second.Out).GetRawText()) ((json first.Out).GetRawText()) "same result from the cached trace"
            // Reported, not asserted: wall-clock bounds do not belong in unit tests on a shared machine.
            printfn "tool package test: %.1f s (pack, install, three runs)" clock.Elapsed.TotalSeconds
        }
    ]
