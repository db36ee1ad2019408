/// What the workers store and how every value read back is checked against an independent recomputation:
/// payloads come from a deterministic generator keyed by the key; traces are checked by comparing the moments of
/// the cached trace's replay with the moments of a direct elimination of the concrete graph (no trace, no cache).
module Ptd.Reliability.Tests.Workload

open System
open System.Security.Cryptography
open System.Text
open Ptd.Core
open Ptd.Host.Caching
open Ptd.Host.Composition

/// Payload entries use the kernel layer's kind so that `ptd cache clear/verify/vacuum` treat them as cache entries
/// (entries of kinds no layer owns are never touched by management).
let payloadKind = Ptd.Host.Kernels.KernelRegistry.ArtifactKind

/// The content key of payload `i`: 48 hex digits of a hash, then `i` in 16 hex digits (so a listing maps back to `i`).
let keyOf (i: int64) =
    let h = SHA256.HashData(Encoding.ASCII.GetBytes(sprintf "reliability-%d" i))
    Convert.ToHexString(h).ToLowerInvariant().Substring(0, 48) + i.ToString("x16")

/// The inverse of keyOf, or None for a key that keyOf did not produce.
let indexOf (key: string) =
    if key.Length <> 64 then None
    else
        let i = Convert.ToInt64(key.Substring 48, 16)
        if keyOf i = key then Some i else None

/// Payload lengths: small for the load runs, 1–4 MB from index 10^9 on (the kill-9 writers: long writes, so that
/// kills land inside them).
let lengthOf (i: int64) =
    if i >= 1_000_000_000L then (1 <<< 20) + int (i % 7L) * (512 <<< 10)
    else 256 + int ((i * 7919L) % 24_000L)

/// The payload of index `i`: a SplitMix64 stream seeded by `i` (independent of everything under test).
let payloadOf (i: int64) =
    let n = lengthOf i
    let b = Array.zeroCreate<byte> n
    let mutable s = uint64 i * 0x9E3779B97F4A7C15UL + 0x1234567UL
    let mutable k = 0
    while k < n do
        s <- s + 0x9E3779B97F4A7C15UL
        let mutable z = s
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z <- z ^^^ (z >>> 31)
        let mutable j = 0
        while j < 8 && k < n do
            b.[k] <- byte (z >>> (8 * j))
            j <- j + 1
            k <- k + 1
    b

/// Models whose traces the load workers get through the trace store, with θ.
let models: (string * float[]) list =
    [ "coalescent:n=4", [| 1.0 |]
      "coalescent:n=6", [| 2.0 |]
      "coalescent:n=8", [| 0.5 |]
      "coalescent:n=10", [| 1.5 |]
      "erlang:k=5", [| 3.0 |]
      "twodeme:n=3", [| 1.0; 0.5 |]
      "rabbits3:R=3", [| 1.0; 2.0; 4.0 |]
      "coalescent:n=5,rate=1" , [||] ]

/// Raw moments 1..3 by direct elimination of the concrete graph at θ (Elimination.eliminate: no trace involved).
let referenceMoments (graph: Graph) (theta: float[]) =
    Moments.moments (Elimination.eliminate graph theta) (Rewards.ones graph) 3

/// Moments 1..3 of a trace's replay at θ.
let traceMoments (trace: Trace) (graph: Graph) (theta: float[]) = TraceEval.moments trace theta (Rewards.ones graph) 3

/// True when every moment agrees to 1e-10 relative.
let sameMoments (a: float[]) (b: float[]) =
    a.Length = b.Length && Array.forall2 (fun (x: float) y -> abs (x - y) <= 1e-10 * max 1.0 (abs y)) a b

/// The storage plugins ptd ships, from the build's plugins folder.
let registry () =
    let o = PluginDiscoveryOptions(UseDefaultDirectory = false, UsePluginPathVariable = false)
    o.Directories.Add Env.pluginsDir
    StorageProviderRegistry.Discover o

/// Cache options for the tier chain `chain` (PTD_CACHE syntax) and a generation; no ledger, no config file.
let cacheOptions (chain: string) (generation: int) (log: string -> unit) =
    let env (name: string) =
        match name with
        | "PTD_CACHE" -> chain
        | "PTD_CACHE_CONFIG" -> ""
        | "PTD_CACHE_STATS" -> "off"
        | n -> Environment.GetEnvironmentVariable n
    let o = CacheConfiguration.FromEnvironment(Func<string, string>(env))
    o.Generation <- generation
    o.Log <- Action<string>(log)
    o.StatisticsLedger <- null
    o
