/// The read limit (BlobStoreContext.MaxReadBytes): BlobBodyReader on its own, then every shipped plugin opened through
/// the registry with a small limit. Values at the limit are read; one byte more is refused as TooLarge.
module Ptd.Plugins.Tests.ReadLimitTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Ptd.Storage
open Ptd.Plugins.Tests.TestEnv

/// A stream that never ends (an endless HTTP body), counting what was read from it.
type private Endless() =
    inherit Stream()
    member val Served = 0L with get, set
    override _.CanRead = true
    override _.CanSeek = false
    override _.CanWrite = false
    override _.Length = raise (NotSupportedException())
    override _.Position with get () = raise (NotSupportedException()) and set _ = raise (NotSupportedException())
    override _.Flush() = ()
    override this.Read(buffer: byte[], offset: int, count: int) =
        Array.Fill(buffer, 7uy, offset, count)
        this.Served <- this.Served + int64 count
        count
    override _.Seek(_, _) = raise (NotSupportedException())
    override _.SetLength _ = raise (NotSupportedException())
    override _.Write(_, _, _) = raise (NotSupportedException())

/// A body that must not be read (a declared length alone decides).
type private Untouchable() =
    inherit MemoryStream()
    override _.Read(_: byte[], _: int, _: int) : int = failwith "the body was read although its declared length was over the limit"
    override _.ReadAsync(_: Memory<byte>, _: Threading.CancellationToken) : ValueTask<int> = failwith "the body was read although its declared length was over the limit"

let private read (body: Stream) declared limit =
    BlobBodyReader.ReadAsync(body, Option.toNullable declared, limit, "test: read of 'k'").GetAwaiter().GetResult()

let private kindOf (f: unit -> 'a) =
    try
        f () |> ignore
        None
    with :? BlobStoreException as e -> Some(e.Kind, e.Message)

let private storeCases : (string * (BlobStoreContext -> IBlobStore)) list =
    [ "local disk", fun ctx -> registry.Value.Open("file://" + tempDir "limit-local", ctx)
      "azurite",
      fun ctx ->
          azuriteConnection () |> ignore
          let prefix = uniqueSegment "limit"
          registry.Value.Open($"azblob://ptd-conformance/{prefix}?connectionStringEnv=PTD_TEST_AZURITE_CONNECTION&create=true", ctx)
      "moto",
      fun ctx ->
          let ep = requireEnv "PTD_TEST_MOTO_ENDPOINT" "moto_server (S3 emulator)"
          let prefix = uniqueSegment "limit"
          registry.Value.Open(
              $"s3://ptd-conformance/{prefix}?endpoint={Uri.EscapeDataString ep}&region=us-east-1&create=true&accessKeyEnv=PTD_TEST_MOTO_ACCESS&secretKeyEnv=PTD_TEST_MOTO_SECRET",
              ctx) ]

[<Tests>]
let tests =
    testList "read limit" [
        testCase "a body at the limit is read exactly, with or without a declared length" <| fun () ->
            let data = randomBytes 3 1000
            Expect.equal (read (new MemoryStream(data)) (Some 1000L) 1000L) data "declared"
            Expect.equal (read (new MemoryStream(data)) None 1000L) data "not declared"
            Expect.equal (read (new MemoryStream([||])) None 1000L) [||] "empty"

        testCase "one byte over the limit is refused as TooLarge" <| fun () ->
            let data = randomBytes 4 1001
            let k = kindOf (fun () -> read (new MemoryStream(data)) None 1000L)
            Expect.equal (k |> Option.map fst) (Some BlobStoreErrorKind.TooLarge) "streamed past the limit"
            Expect.stringContains (snd k.Value) "more than 1000 bytes" "the message gives the limit"

        testCase "a declared length over the limit is refused before a byte is read" <| fun () ->
            let k = kindOf (fun () -> read (new Untouchable()) (Some(8L <<< 30)) 1000L)
            Expect.equal (k |> Option.map fst) (Some BlobStoreErrorKind.TooLarge) "refused on the declared length"
            Expect.stringContains (snd k.Value) "declares 8589934592 bytes" "the message gives the declared length"

        testCase "a body longer or shorter than its declared length is refused as Corrupt" <| fun () ->
            let data = randomBytes 5 600
            Expect.equal (kindOf (fun () -> read (new MemoryStream(data)) (Some 500L) 1000L) |> Option.map fst) (Some BlobStoreErrorKind.Corrupt) "longer"
            Expect.equal (kindOf (fun () -> read (new MemoryStream(data)) (Some 700L) 1000L) |> Option.map fst) (Some BlobStoreErrorKind.Corrupt) "shorter"

        testCase "an endless body stops at the limit; memory stays within three limits" <| fun () ->
            let limit = 4L <<< 20
            let body = new Endless()
            // The endless stream completes synchronously, so the whole read runs on this thread.
            let before = GC.GetAllocatedBytesForCurrentThread()
            let k = kindOf (fun () -> read body None limit)
            let allocated = GC.GetAllocatedBytesForCurrentThread() - before
            Expect.equal (k |> Option.map fst) (Some BlobStoreErrorKind.TooLarge) "refused"
            Expect.isLessThanOrEqual body.Served (limit + 1L) "read at most one byte past the limit"
            Expect.isLessThan allocated (3L * limit) $"allocated {allocated} bytes for a {limit}-byte limit"

        for name, opener in storeCases do
            testTask $"{name}: a value at the limit is read, a larger one refused as TooLarge (the store stays usable)" {
                let store: IBlobStore = opener ((context ()).WithMaxReadBytes 1000L)
                try
                    let small = randomBytes 6 1000
                    let big = randomBytes 7 1001
                    let! _ = store.PutAsync(BlobKey.Parse "limit/small", ReadOnlyMemory small, BlobWriteMode.Overwrite)
                    let! _ = store.PutAsync(BlobKey.Parse "limit/big", ReadOnlyMemory big, BlobWriteMode.Overwrite)
                    let! (r: BlobReadResult) = store.GetAsync(BlobKey.Parse "limit/small")
                    Expect.equal r.Content small "at the limit"
                    let! refused =
                        task {
                            try
                                let! _ = store.GetAsync(BlobKey.Parse "limit/big")
                                return None
                            with :? BlobStoreException as e -> return Some e.Kind
                        }
                    Expect.equal refused (Some BlobStoreErrorKind.TooLarge) "over the limit"
                    let! (again: BlobReadResult) = store.GetAsync(BlobKey.Parse "limit/small")
                    Expect.equal again.Content small "still usable"
                finally
                    store.DisposeAsync().AsTask().GetAwaiter().GetResult()
            }
    ]
