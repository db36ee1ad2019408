/// §2 A cache directory that cannot be written: read-only, immutable, full, or over a file size limit. `ptd moments`
/// must print one warning line saying what is wrong and how to fix it, compute uncached, print the right numbers and
/// exit 0. We run as root, so chmod proves nothing; each case uses a mechanism that really refuses root's writes:
///   read-only  a tmpfs remounted read-only in a private mount namespace (unshare -m): EROFS; also as HOME, with the
///              default cache directory and statistics file under it (two writes fail, one warning)
///   immutable  chattr +i on the cache directory (ext4): EPERM
///   disk full  a 64 KB tmpfs in a private mount namespace, nearly filled first: ENOSPC
///   file size  `trap "" XFSZ; ulimit -f 8` in the child's shell (SIGXFSZ ignored, inherited by exec): EFBIG
///              (DOTNET_EnableWriteXorExecute=0: the runtime's W^X double mapping does not start under the limit)
module Ptd.Reliability.Tests.DiskFaultTests

open System
open System.IO
open Expecto
open Ptd.Core
open Ptd.Reliability.Tests.Env
open Ptd.Reliability.Tests.Workload

let private model = "coalescent:n=12"
let private theta = [| 2.0 |]

/// Whether this machine lets us make a private mount namespace with a tmpfs (root or CAP_SYS_ADMIN).
let private canMount =
    lazy (
        let d = tempDir "probe"
        (runWith 30 "unshare" [ "-m"; "bash"; "-c"; sprintf "mount -t tmpfs -o size=64k tmpfs '%s'" d ] []).Code = 0)

let private canChattr =
    lazy (
        let d = tempDir "probe"
        let ok = (runWith 30 "chattr" [ "+i"; d ] []).Code = 0
        if ok then runWith 30 "chattr" [ "-i"; d ] [] |> ignore
        ok)

/// `ptd moments MODEL --theta 2 -k 3 --json` inside `bash -c prelude; exec dotnet ptd.dll ...`.
let private momentsVia (prelude: string) (cacheDir: string) =
    let cmd = sprintf "%s; exec dotnet '%s' moments %s --theta 2 -k 3 --json" prelude ptdDll model
    runWith 120 "bash" [ "-c"; cmd ] [ "PTD_CACHE", "file://" + cacheDir ]

/// Checks the run: exit 0, moments equal to a direct elimination, exactly one warning line naming the cause and a fix.
let private check (test: string) (r: Result) (cause: string) =
    report test "exit %d, %.1f s; stderr: %s" r.Code r.Seconds (r.Err.Trim())
    Expect.equal r.Code 0 (sprintf "ptd exits 0 (stderr: %s)" r.Err)
    let j = json r.Out
    let got = [| for m in j.GetProperty("moments").EnumerateArray() -> m.GetDouble() |]
    let expected = referenceMoments (ModelSpec.build model) theta
    Expect.isTrue (sameMoments got expected) (sprintf "moments %A equal the direct elimination's %A" got expected)
    let lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Expect.equal lines.Length 1 (sprintf "exactly one warning line, got: %s" r.Err)
    Expect.stringStarts lines.[0] "ptd: warning: " "it is a warning"
    Expect.stringContains lines.[0] cause "it says what is wrong"
    Expect.isTrue (lines.[0].Contains "PTD_CACHE" || lines.[0].Contains "raise the limit") "it says how to fix it"

[<Tests>]
let tests =
    testSequencedGroup "reliability"
    <| testList "disk" [
        testCase "read-only file system (tmpfs remounted ro in a private mount namespace)" (fun () ->
            if not canMount.Value then skiptest "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
            let mnt = tempDir "ro"
            let prelude = sprintf "mount -t tmpfs -o size=1m tmpfs '%s' && mkdir '%s/cache' && mount -o remount,ro '%s'" mnt mnt mnt
            let r = runWith 120 "unshare" [ "-m"; "bash"; "-c"; sprintf "%s && exec dotnet '%s' moments %s --theta 2 -k 3 --json" prelude ptdDll model ] [ "PTD_CACHE", "file://" + mnt + "/cache" ]
            check "disk/read-only" r "read-only")

        testCase "read-only home with the default cache and statistics locations (~/.ptd)" (fun () ->
            if not canMount.Value then skiptest "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
            let home = tempDir "rohome"
            let prelude = sprintf "mount -t tmpfs -o size=1m tmpfs '%s' && mount -o remount,ro '%s'" home home
            // No PTD_CACHE: the default tier ~/.ptd/cache; PTD_CACHE_STATS unset: the default ledger ~/.ptd/cache-stats.json.
            let cmd = sprintf "%s && unset PTD_CACHE_STATS && HOME='%s' exec dotnet '%s' moments %s --theta 2 -k 3 --json" prelude home ptdDll model
            let r = runWith 120 "unshare" [ "-m"; "bash"; "-c"; cmd ] []
            check "disk/read-only-home" r "read-only")

        testCase "immutable cache directory (chattr +i)" (fun () ->
            if not canChattr.Value then skiptest "chattr +i is not supported here (needs ext4-like file system and CAP_LINUX_IMMUTABLE)"
            let dir = Path.Combine(tempDir "immutable", "cache")
            Directory.CreateDirectory dir |> ignore
            runWith 30 "chattr" [ "+i"; dir ] [] |> ignore
            try
                let r = momentsVia "true" dir
                check "disk/immutable" r "permission denied"
            finally
                runWith 30 "chattr" [ "-i"; dir ] [] |> ignore)

        testCase "disk full (64 KB tmpfs, nearly filled, in a private mount namespace)" (fun () ->
            if not canMount.Value then skiptest "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
            let mnt = tempDir "full"
            let prelude = sprintf "mount -t tmpfs -o size=64k tmpfs '%s' && (head -c 56000 /dev/zero > '%s/filler'; true)" mnt mnt
            let r = runWith 120 "unshare" [ "-m"; "bash"; "-c"; sprintf "%s && exec dotnet '%s' moments %s --theta 2 -k 3 --json" prelude ptdDll model ] [ "PTD_CACHE", "file://" + mnt + "/cache" ]
            check "disk/full" r "disk is full")

        testCase "file size limit (ulimit -f 8 with SIGXFSZ ignored: writes fail with EFBIG)" (fun () ->
            let dir = Path.Combine(tempDir "fsize", "cache")
            // CoreCLR's W^X double mapping sizes a memory file beyond 8 KB and cannot start under the limit: turn it off.
            let r = momentsVia "export DOTNET_EnableWriteXorExecute=0; trap '' XFSZ; ulimit -f 8" dir
            check "disk/file-size-limit" r "larger than allowed"
            Expect.isEmpty (tempFiles dir) "the failed write left no temporary file")
    ]
