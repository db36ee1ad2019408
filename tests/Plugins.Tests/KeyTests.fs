/// Storage keys and locations: the alphabet is closed, nothing escapes a root or a prefix, secrets are never shown.
module Ptd.Plugins.Tests.KeyTests

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open Ptd.Storage
open Ptd.Storage.LocalDisk

let private invalidKeys =
    [ "", "empty"
      "../x", "parent segment"
      "a/../b", "parent segment inside"
      "/abs", "leading slash"
      "a/", "trailing slash"
      "a//b", "empty segment"
      "./a", "dot segment"
      "a/.hidden", "hidden segment"
      "A", "uppercase (case-insensitive file systems would collide)"
      "a\\b", "backslash"
      "c:/x", "drive colon"
      "a b", "space"
      "a\u0000b", "NUL"
      "a\nb", "newline"
      "caf\u00e9", "non-ASCII"
      "%2e%2e", "percent escapes"
      "a=b", "'=' (the local disk fan-out marker)"
      "~", "tilde"
      String('a', BlobKey.MaxLength + 1), "too long"
      String('a', BlobKey.MaxSegmentLength + 1), "segment too long"
      String.Join("/", Array.create (BlobKey.MaxSegments + 1) "a"), "too many segments" ]

/// A generator of strings over an alphabet that includes every dangerous character.
let private nastyStrings =
    let chars = "ab0./\\-_=~:% A\u0000.."
    Gen.elements chars
    |> Gen.listOf
    |> Gen.map (fun cs -> String(Array.ofList cs))
    |> Arb.fromGen

[<Tests>]
let tests =
    testList "keys" [
        test "valid keys parse and keep their text" {
            for k in [ "a"; "trace/r1/g1/0a1b2c"; "x-y_z.1"; "a.b/c..d"; String('z', BlobKey.MaxSegmentLength) ] do
                Expect.equal (BlobKey.Parse(k).Value) k "key text"
        }

        test "invalid keys are rejected with a message naming the problem" {
            for key, why in invalidKeys do
                Expect.isFalse (fst (BlobKey.TryParse key)) $"should reject {why}"
                let error = BlobKey.Validate key
                Expect.isNotNull error $"{why}: a message"
                Expect.throwsT<ArgumentException> (fun () -> BlobKey.Parse key |> ignore) why
        }

        test "error messages do not echo control characters" {
            let msg = BlobKey.Validate "ab\u001b[31mred\nforged log line"
            Expect.isFalse (msg.Contains '\n' || msg.Contains '\u001b') "sanitized"
        }

        test "listing prefixes: empty, a key, or a key and a slash" {
            for p in [ ""; "trace"; "trace/"; "trace/r1/g"; "trace/r1/" ] do
                Expect.isNull (BlobKey.ValidatePrefix p) p
            for p in [ "/"; "../"; "a//"; "A/"; "a/./" ] do
                Expect.isNotNull (BlobKey.ValidatePrefix p) p
        }

        testProperty "a key that validates maps inside the local store's root" <| fun () ->
            Prop.forAll nastyStrings (fun (s: string) ->
                let root = Path.Combine(Path.GetTempPath(), "ptd-key-prop", "root")
                let store = LocalDiskStore(root, "file://test")
                match BlobKey.TryParse s with
                | true, key ->
                    let path = store.PathOf key
                    let full = Path.GetFullPath path
                    full = path && full.StartsWith(root + string Path.DirectorySeparatorChar)
                | _ -> true)

        testProperty "validation agrees with the rules written as a regular expression" <| fun () ->
            // An independent statement of the documented rules.
            let rule = Text.RegularExpressions.Regex(@"^(?!\.)[a-z0-9._-]{1,128}(/(?!\.)[a-z0-9._-]{1,128}){0,15}\z")
            Prop.forAll nastyStrings (fun (s: string) ->
                let expected = s.Length <= BlobKey.MaxLength && rule.IsMatch s
                (isNull (BlobKey.Validate s)) = expected)

        test "location parsing: scheme, authority, path, query" {
            let u = StoreUri.Parse "S3://bucket/a/b?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000"
            Expect.equal u.Scheme "s3" "scheme lowercased"
            Expect.equal u.Authority "bucket" "authority"
            Expect.equal u.Path "a/b" "path"
            Expect.equal (u.Get "ENDPOINT") "http://127.0.0.1:9000" "decoded, case-insensitive key"
        }

        test "locations with credentials in the authority are refused without echoing them" {
            match StoreUri.TryParse "s3://AKIAXXXX:SuperSecret123@bucket/p" with
            | false, _, error ->
                Expect.isFalse (error.Contains "SuperSecret123") "secret not echoed"
                Expect.stringContains error "credentials" "says why"
            | _ -> failtest "should be refused"
        }

        test "display form shows public parameters and hides every other value" {
            let u = StoreUri.Parse "azblob://container/prefix?account=acct&sig=SECRETSIG&connectionStringEnv=MY_VAR"
            let shown = u.ToDisplayString [ "account"; "connectionStringEnv" ]
            Expect.equal shown "azblob://container/prefix?account=acct&sig=***&connectionStringEnv=MY_VAR" "redacted"
            Expect.isFalse ((string u).Contains "SECRETSIG") "ToString redacts everything"
            Expect.isFalse ((string u).Contains "acct") "ToString hides all values"
        }

        test "duplicate and nameless query parameters are refused" {
            Expect.isFalse (let ok, _, _ = StoreUri.TryParse "s3://b/p?region=a&REGION=b" in ok) "duplicate"
            Expect.isFalse (let ok, _, _ = StoreUri.TryParse "s3://b/p?=x" in ok) "nameless"
            Expect.isFalse (let ok, _, _ = StoreUri.TryParse "no-scheme" in ok) "no scheme"
        }
    ]
