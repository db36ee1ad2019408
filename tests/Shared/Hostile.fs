/// Harness for hostile-input tests: runs one parse on a fresh thread with a timeout, measures the
/// bytes it allocated (GC.GetAllocatedBytesForCurrentThread around the parse, on that thread) and
/// classifies the outcome. Accepted input or the expected exception type is fine; anything else
/// (another exception, a hang, allocation beyond c·length + constant) fails the test.
module Ptd.Tests.Hostile

open System
open System.Diagnostics
open System.Threading

type Outcome =
    | Accepted
    | Rejected of message: string
    | Crashed of exn

/// Figures over a series of cases (printed for docs/RELIABILITY.md).
type Stats(name: string) =
    let gate = obj ()
    let mutable cases = 0
    let mutable rejected = 0
    let mutable maxRatio = 0.0
    let mutable maxBytes = 0L
    let mutable maxMs = 0.0
    member _.Add(outcome: Outcome, length: int, allocated: int64, ms: float) =
        lock gate (fun () ->
            cases <- cases + 1
            (match outcome with Rejected _ -> rejected <- rejected + 1 | _ -> ())
            maxRatio <- max maxRatio (float allocated / float (max length 1024))
            maxBytes <- max maxBytes allocated
            maxMs <- max maxMs ms)
    member _.Cases = cases
    member _.Report() =
        // One line per series, on stdout: the figures quoted in docs/RELIABILITY.md.
        printfn "[hostile] %s: %d cases, %d rejected, 0 crashes, max allocation %d B, max allocation/max(length,1024) %.1f, max time %.1f ms"
            name cases rejected maxBytes maxRatio maxMs

/// Runs `parse` (a parse of an input of `length` characters or bytes) on its own thread.
/// `isExpected` says which exceptions are the parser's clear errors (e.g. PtdException).
let run (stats: Stats) (timeoutMs: int) (perByte: int64) (constant: int64) (isExpected: exn -> bool) (length: int) (parse: unit -> unit) : Outcome =
    let mutable outcome = Accepted
    let mutable allocated = 0L
    let mutable ms = 0.0
    let worker =
        Thread(
            (fun () ->
                let sw = Stopwatch.StartNew()
                let before = GC.GetAllocatedBytesForCurrentThread()
                outcome <-
                    try
                        parse ()
                        Accepted
                    with e when isExpected e -> Rejected e.Message
                       | e -> Crashed e
                allocated <- GC.GetAllocatedBytesForCurrentThread() - before
                ms <- sw.Elapsed.TotalMilliseconds),
            16 * 1024 * 1024)
    worker.IsBackground <- true
    worker.Start()
    if not (worker.Join timeoutMs) then
        failwithf "hang: no answer within %d ms (input of %d)" timeoutMs length
    match outcome with
    | Crashed e -> failwithf "crash: %s: %s (input of %d)" (e.GetType().FullName) e.Message length
    | Rejected m when String.IsNullOrWhiteSpace m -> failwithf "rejected without a message (input of %d)" length
    | Rejected m when m.Contains("   at ", StringComparison.Ordinal) -> failwithf "message holds a stack trace: %s" m
    | _ -> ()
    let limit = perByte * int64 length + constant
    if allocated > limit then
        failwithf "allocated %d bytes for an input of %d (limit %d·length + %d = %d)" allocated length perByte constant limit
    stats.Add(outcome, length, allocated, ms)
    outcome

/// Deterministic text mutations for fuzzing: truncation, deletion, duplication, insertion of a
/// hostile token, replacement of a number by a hostile one, character flips.
let hostileTokens =
    [| "1e400"; "-1e400"; "NaN"; "Infinity"; "-0"; "1e-400"; "2147483648"; "-2147483649"; "4294967296"
       "99999999999999999999999"; "1.5"; "-1"; "0"; "null"; "true"; "\"x\""; "[]"; "{}"; "[[[[[[[["; "]]]]"
       "\"\\ud800\""; "\uFEFF"; "\u0000"; ","; ":"; "\""; "\"format\": \"ptd-graph/1\", "; "\"paramLength\": 1000000000, "
       "\"stateLength\": 2147483647, "; "\"edges\": [], "; "1e308"; "5e-324"; "-5e-324"; "0.1e"; "--1"; "１" |]

let mutate (rng: Random) (text: string) : string =
    let mutable s = text
    for _ in 1 .. rng.Next(1, 4) do
        let n = s.Length
        let at () = if n = 0 then 0 else rng.Next(0, n + 1)
        match rng.Next 7 with
        | 0 -> s <- s.Substring(0, at ())
        | 1 when n > 0 ->
            let i = rng.Next n
            s <- s.Remove(i, min (n - i) (rng.Next(1, 20)))
        | 2 when n > 0 ->
            let i = rng.Next n
            let len = min (n - i) (rng.Next(1, 40))
            s <- s.Insert(i, s.Substring(i, len))
        | 3 -> s <- s.Insert(at (), hostileTokens.[rng.Next hostileTokens.Length])
        | 4 ->
            // replace a number literal by a hostile token
            let digits = [| for i in 0 .. n - 1 do if Char.IsDigit s.[i] then i |]
            if digits.Length > 0 then
                let i = digits.[rng.Next digits.Length]
                let mutable j = i
                while j < n && (Char.IsDigit s.[j] || s.[j] = '.' || s.[j] = 'e' || s.[j] = '-') do j <- j + 1
                s <- s.Substring(0, i) + hostileTokens.[rng.Next 12] + s.Substring j
        | 5 when n > 0 ->
            let i = rng.Next n
            s <- s.Substring(0, i) + string (char (rng.Next(0, 128))) + s.Substring(i + 1)
        | _ ->
            let c = if n = 0 then '[' else s.[rng.Next n]
            s <- s.Insert(at (), String(c, rng.Next(1, 2000)))
    s

/// Runs an FsCheck property over `count` seeds (QuickThrowOnFailure: a failing case fails the test
/// with its seed), then prints the series' figures.
let fuzz (stats: Stats) (count: int) (case: int -> unit) =
    let prop = FsCheck.FSharp.Prop.forAll (FsCheck.FSharp.Arb.fromGen (FsCheck.FSharp.Gen.choose (0, Int32.MaxValue - 1))) (fun seed -> case seed)
    FsCheck.Check.One(FsCheck.Config.QuickThrowOnFailure.WithMaxTest(count).WithQuietOnSuccess(true), prop)
    stats.Report()
