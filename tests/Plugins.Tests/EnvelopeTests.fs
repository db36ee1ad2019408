/// The envelope: every field is checked, any damage is a rejection with a reason, never a wrong payload.
module Ptd.Plugins.Tests.EnvelopeTests

open System
open System.Security.Cryptography
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Host.Caching

let kind = ArtifactKind("trace", 3)
let key = "trace/r3/g1/00ff"
let limit = 1L <<< 30

let decode (bytes: byte[]) = CacheEnvelope.Decode(ReadOnlySpan bytes, kind, key, limit)

let encode (payload: byte[]) compression =
    CacheEnvelope.Encode(kind, key, "test/1.0", ReadOnlySpan payload, compression)

[<Tests>]
let tests =
    testList "envelope" [
        testProperty "round trip for every compression" <| fun (payload: byte[]) (c: int) ->
            let compression : CacheCompression = LanguagePrimitives.EnumOfValue (byte (abs c % 3))
            let r = decode (encode payload compression)
            r.IsValid && r.Payload = payload && r.Header.ProducerVersion = "test/1.0"

        test "header starts with the magic and records the payload SHA-256" {
            let payload = TestEnv.randomBytes 1 1000
            let e = encode payload CacheCompression.None
            Expect.sequenceEqual e.[0..7] [| 0x89uy; byte 'P'; byte 'T'; byte 'D'; byte 'C'; 0x0Duy; 0x0Auy; 0x1Auy |] "magic"
            Expect.sequenceEqual e.[32..63] (SHA256.HashData payload) "payload hash at offset 32"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 300 } "flipping any byte is detected" <| fun (seed: int) (pos: int) (bits: byte) ->
            let payload = TestEnv.randomBytes seed 200
            for compression in [ CacheCompression.None; CacheCompression.Deflate ] do
                let e = encode payload compression
                let flip = if bits = 0uy then 1uy else bits
                let i = abs pos % e.Length
                e.[i] <- e.[i] ^^^ flip
                let r = decode e
                if r.IsValid then failwithf "flip at %d (%A) accepted" i compression
                if r.Payload.Length <> 0 then failwith "a rejected envelope returned bytes"
            true

        test "every truncation is rejected" {
            let e = encode (TestEnv.randomBytes 2 300) CacheCompression.None
            for n in 0 .. e.Length - 1 do
                let r = decode e.[0 .. n - 1]
                Expect.isFalse r.IsValid $"cut at {n}"
                Expect.contains [ EnvelopeRejectReason.Truncated; EnvelopeRejectReason.BadMagic ] r.Reason $"reason at {n}"
        }

        test "trailing bytes are rejected" {
            let e = encode [| 1uy; 2uy |] CacheCompression.None
            Expect.equal (decode (Array.append e [| 0uy |])).Reason EnvelopeRejectReason.LengthMismatch "extra byte"
        }

        test "another kind, revision or key is rejected before the payload is looked at" {
            let payload = [| 1uy; 2uy; 3uy |]
            let other (k: ArtifactKind) (sk: string) = CacheEnvelope.Encode(k, sk, "x", ReadOnlySpan payload)
            Expect.equal (decode (other (ArtifactKind("gradient", 3)) key)).Reason EnvelopeRejectReason.KindMismatch "kind"
            let r = decode (other (ArtifactKind("trace", 2)) key)
            Expect.equal r.Reason EnvelopeRejectReason.RevisionMismatch "revision"
            Expect.equal r.Header.FormatRevision 2 "header read"
            Expect.isEmpty r.Payload "payload not returned"
            Expect.equal (decode (other kind "trace/r3/g1/ffff")).Reason EnvelopeRejectReason.KeyMismatch "key"
        }

        test "a foreign revision whose payload is garbage is still only a revision mismatch" {
            // Damage the payload of an r2 entry: an r3 reader must stop at the header.
            let e = CacheEnvelope.Encode(ArtifactKind("trace", 2), key, "x", ReadOnlySpan(Array.create 50 7uy))
            e.[e.Length - 1] <- 0uy
            Expect.equal (decode e).Reason EnvelopeRejectReason.RevisionMismatch "stopped at the header"
        }

        test "unknown envelope versions and foreign bytes are rejected" {
            let e = encode [| 1uy |] CacheCompression.None
            e.[8] <- 2uy
            Expect.equal (decode e).Reason EnvelopeRejectReason.UnsupportedVersion "version 2"
            Expect.equal (decode "{\"json\": true}"B).Reason EnvelopeRejectReason.BadMagic "not an envelope"
        }

        test "payloads above the limit are rejected from the header" {
            let e = encode (Array.zeroCreate 1000) CacheCompression.Deflate
            let r = CacheEnvelope.Decode(ReadOnlySpan e, kind, key, 999L)
            Expect.equal r.Reason EnvelopeRejectReason.TooLarge "too large"
        }

        test "compression shrinks repetitive payloads" {
            let payload = Array.create 100_000 42uy
            Expect.isLessThan (encode payload CacheCompression.Deflate).Length 2000 "deflate"
            Expect.isLessThan (encode payload CacheCompression.Brotli).Length 2000 "brotli"
        }
    ]
