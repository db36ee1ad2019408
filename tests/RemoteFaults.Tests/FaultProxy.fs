/// A loopback HTTP/1.1 forwarder between a storage plugin and its emulator, whose behaviour the test switches at
/// run time: pass-through, down (connections refused), slow, black-holed, corrupting or truncating response bodies,
/// cutting the connection mid-body, or answering HTTP errors for the next K requests and then recovering.
///
/// It is deliberately small: one request per connection (it answers `Connection: close`, so the SDKs open a new
/// connection per call and a mode change takes effect on the next request), bodies framed by Content-Length or
/// chunked encoding, `Expect: 100-continue` answered locally. The Host header and every signed header are forwarded
/// unchanged, so request signatures stay valid.
module Ptd.RemoteFaults.Tests.FaultProxy

open System
open System.Collections.Concurrent
open System.IO
open System.Net
open System.Net.Sockets
open System.Text
open System.Threading
open System.Threading.Tasks

/// What the proxy does with the next requests.
type Mode =
    /// Forward unchanged.
    | PassThrough
    /// Close the listening socket and reset open connections: new connections are refused.
    | Down
    /// Forward, but hold each response this long first.
    | Slow of TimeSpan
    /// Accept and read the request, never answer (until the client gives up).
    | BlackHole
    /// Flip this many bytes of every object body (Content-Type application/octet-stream); lengths unchanged.
    | CorruptBodies of int
    /// Serve only the first half of every object body, with a Content-Length that matches (a consistent short body).
    | TruncateBodies
    /// Send the headers and half of every object body, then close the connection (a premature end of stream).
    | CutBodies
    /// Answer this HTTP status to the next `count` requests, then pass through again.
    | Errors of status: int * count: int
    /// Answer this HTTP status to the next `count` uploads (PUT); everything else passes through.
    | FailWrites of status: int * count: int
    /// Flip a byte in the middle of every upload body (PUT) before forwarding it; headers unchanged.
    | CorruptUploads
    /// Send the head at once, then every object body `chunk` bytes at a time, one chunk per `interval`.
    | Trickle of chunk: int * interval: TimeSpan
    /// Answer every object GET with `bytes` bytes of junk instead of the object, streamed as fast as the client takes
    /// them. With `declare` the Content-Length says `bytes` (an honest but huge length); without, there is none and the
    /// body runs until the connection closes (with a huge `bytes`, an endless body). Stops when the client hangs up.
    | Flood of declare: bool * bytes: int64

/// What the proxy did (counts since it started).
type ProxyCounters =
    { Requests: int
      Forwarded: int
      Delayed: int
      BlackHoled: int
      Corrupted: int
      Truncated: int
      Cut: int
      ErrorsServed: int
      CorruptedUploads: int
      Trickled: int
      Flooded: int
      /// Body bytes the Flood mode got into the client's socket (what the client could have read).
      FloodBytes: int64
      ModeChanges: int }

/// A small buffered reader over a socket stream: HTTP heads by line, bodies by length.
type private Reader(stream: Stream) =
    let buffer = Array.zeroCreate<byte> 65536
    let mutable start = 0
    let mutable count = 0

    member private _.Fill(ct: CancellationToken) =
        task {
            if start > 0 && count > 0 then Buffer.BlockCopy(buffer, start, buffer, 0, count)
            start <- 0
            let! n = stream.ReadAsync(buffer.AsMemory(count, buffer.Length - count), ct)
            count <- count + n
            return n
        }

    /// The head up to and including the blank line, or None at a clean end of stream.
    member this.ReadHead(ct: CancellationToken) : Task<string option> =
        task {
            let head = new MemoryStream()
            let mutable result = None
            let mutable fin = false
            while not fin do
                // Look for \r\n\r\n across what was read so far.
                let mutable i = 0
                let mutable found = -1
                while found < 0 && i < count do
                    head.WriteByte buffer.[start + i]
                    let l = head.Length
                    if l >= 4L then
                        let b = head.GetBuffer()
                        if b.[int l - 4] = 13uy && b.[int l - 3] = 10uy && b.[int l - 2] = 13uy && b.[int l - 1] = 10uy then found <- i
                    i <- i + 1
                if found >= 0 then
                    start <- start + found + 1
                    count <- count - found - 1
                    result <- Some(Encoding.ASCII.GetString(head.GetBuffer(), 0, int head.Length))
                    fin <- true
                else
                    start <- start + count
                    count <- 0
                    if head.Length > 256L * 1024L then failwith "HTTP head too long"
                    let! n = this.Fill ct
                    if n = 0 then
                        if head.Length > 0L then raise (EndOfStreamException "connection closed inside an HTTP head")
                        fin <- true
            return result
        }

    member this.ReadExactly(n: int64, ct: CancellationToken) : Task<byte[]> =
        task {
            let out = Array.zeroCreate<byte> (int n)
            let mutable got = 0
            while got < out.Length do
                if count = 0 then
                    let! r = this.Fill ct
                    if r = 0 then raise (EndOfStreamException "connection closed inside an HTTP body")
                let take = min count (out.Length - got)
                Buffer.BlockCopy(buffer, start, out, got, take)
                start <- start + take
                count <- count - take
                got <- got + take
            return out
        }

    member this.ReadLine(ct: CancellationToken) : Task<string> =
        task {
            let sb = StringBuilder()
            let mutable fin = false
            while not fin do
                if count = 0 then
                    let! r = this.Fill ct
                    if r = 0 then raise (EndOfStreamException "connection closed inside a chunk header")
                let c = buffer.[start]
                start <- start + 1
                count <- count - 1
                if c = 10uy then fin <- true
                elif c <> 13uy then sb.Append(char c) |> ignore
            return sb.ToString()
        }

    member this.ReadToEnd(ct: CancellationToken) : Task<byte[]> =
        task {
            let out = new MemoryStream()
            out.Write(buffer, start, count)
            count <- 0
            start <- 0
            let mutable fin = false
            while not fin do
                let! n = stream.ReadAsync(buffer.AsMemory(0, buffer.Length), ct)
                if n = 0 then fin <- true else out.Write(buffer, 0, n)
            return out.ToArray()
        }

/// A parsed HTTP head: the first line and the header fields in order.
type private Head =
    { First: string
      Fields: (string * string) list }

    member h.Get(name: string) =
        h.Fields |> List.tryFind (fun (k, _) -> String.Equals(k, name, StringComparison.OrdinalIgnoreCase)) |> Option.map snd

    member h.Without(names: string list) =
        { h with Fields = h.Fields |> List.filter (fun (k, _) -> not (names |> List.exists (fun n -> String.Equals(k, n, StringComparison.OrdinalIgnoreCase)))) }

    member h.With(name: string, value: string) = { h with Fields = h.Fields @ [ name, value ] }

    member h.Bytes() =
        let sb = StringBuilder()
        sb.Append(h.First).Append("\r\n") |> ignore
        for k, v in h.Fields do sb.Append(k).Append(": ").Append(v).Append("\r\n") |> ignore
        sb.Append("\r\n") |> ignore
        Encoding.ASCII.GetBytes(sb.ToString())

let private parseHead (text: string) =
    let lines = text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
    { First = lines.[0]
      Fields =
        [ for l in lines.[1..] do
              let i = l.IndexOf ':'
              if i > 0 then l.[.. i - 1].Trim(), l.[i + 1 ..].Trim() ] }

/// Reads a body framed by Content-Length or chunked encoding (or, for a response without either, up to the close).
let private readBody (r: Reader) (h: Head) (isResponse: bool) (ct: CancellationToken) : Task<byte[]> =
    task {
        match h.Get "Transfer-Encoding" with
        | Some te when te.Contains("chunked", StringComparison.OrdinalIgnoreCase) ->
            let out = new MemoryStream()
            let mutable fin = false
            while not fin do
                let! line = r.ReadLine ct
                let size = Convert.ToInt64((line.Split(';').[0]).Trim(), 16)
                if size = 0L then
                    // Trailers up to the blank line.
                    let mutable t = "x"
                    while t <> "" do
                        let! l = r.ReadLine ct
                        t <- l
                    fin <- true
                else
                    let! chunk = r.ReadExactly(size, ct)
                    out.Write(chunk, 0, chunk.Length)
                    let! _ = r.ReadLine ct
                    ()
            return out.ToArray()
        | _ ->
            match h.Get "Content-Length" with
            | Some l -> return! r.ReadExactly(Int64.Parse l, ct)
            | None when isResponse -> return! r.ReadToEnd ct
            | None -> return [||]
    }

let private statusOf (h: Head) = int (h.First.Split(' ').[1])

/// The proxy. Dispose it to stop listening and drop every connection.
type FaultProxy(upstream: Uri) =
    let port =
        let l = new TcpListener(IPAddress.Loopback, 0)
        l.Start()
        let p = (l.LocalEndpoint :?> IPEndPoint).Port
        l.Stop()
        p
    let gate = obj ()
    let open' = ConcurrentDictionary<TcpClient, byte>()
    let mutable mode = PassThrough
    let mutable listener: TcpListener option = None
    let mutable listenerStop = new CancellationTokenSource()
    // Cancelled on every mode change (and at disposal): releases black-holed requests.
    let mutable modeChanged = new CancellationTokenSource()
    let disposed = new CancellationTokenSource()
    let mutable requests = 0
    let mutable forwarded = 0
    let mutable delayed = 0
    let mutable blackHoled = 0
    let mutable corrupted = 0
    let mutable truncated = 0
    let mutable cut = 0
    let mutable errorsServed = 0
    let mutable corruptedUploads = 0
    let mutable trickled = 0
    let mutable flooded = 0
    let mutable floodBytes = 0L
    let junk = Array.init 65536 (fun i -> byte (i * 31 + 7))
    let mutable modeChanges = 0

    let isObjectBody (request: Head) (response: Head) (body: byte[]) =
        request.First.StartsWith("GET ", StringComparison.Ordinal)
        && statusOf response / 100 = 2
        && body.Length > 0
        && (response.Get "Content-Type" |> Option.exists (fun t -> t.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)))

    /// Takes the mode for one request; an error budget is spent here, and pass-through resumes when it is used up.
    let takeMode (request: Head) =
        let isPut = request.First.StartsWith("PUT ", StringComparison.Ordinal)
        lock gate (fun () ->
            match mode with
            | Errors(status, n) when n > 0 ->
                mode <- (if n = 1 then PassThrough else Errors(status, n - 1))
                Errors(status, n)
            | FailWrites(status, n) when n > 0 && isPut ->
                mode <- (if n = 1 then PassThrough else FailWrites(status, n - 1))
                Errors(status, n)
            | FailWrites(_, n) when n > 0 -> PassThrough
            | Errors _
            | FailWrites _ ->
                mode <- PassThrough
                PassThrough
            | CorruptUploads when not isPut -> PassThrough
            | m -> m)

    let send (client: NetworkStream) (bytes: byte[]) (ct: CancellationToken) = client.WriteAsync(bytes, ct).AsTask()

    let errorResponse (status: int) =
        let code = if status = 503 then "ServiceUnavailable" else "InternalError"
        let body = Encoding.UTF8.GetBytes($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>")
        let reason = if status = 503 then "Service Unavailable" else "Internal Server Error"
        let head =
            { First = $"HTTP/1.1 {status} {reason}"
              Fields = [ "Content-Type", "application/xml"; "x-ms-error-code", (if status = 503 then "ServerBusy" else "InternalError")
                         "Content-Length", string body.Length; "Connection", "close" ] }
        Array.append (head.Bytes()) body

    let forward (request: Head) (body: byte[]) (ct: CancellationToken) =
        task {
            use up = new TcpClient()
            do! up.ConnectAsync(upstream.Host, upstream.Port, ct)
            use us = up.GetStream()
            let fwd = request.Without([ "Connection"; "Keep-Alive"; "Proxy-Connection"; "Expect"; "Transfer-Encoding" ])
            let fwd =
                if request.Get "Transfer-Encoding" |> Option.isSome then fwd.Without([ "Content-Length" ]).With("Content-Length", string body.Length)
                else fwd
            do! us.WriteAsync(fwd.With("Connection", "close").Bytes(), ct)
            if body.Length > 0 then do! us.WriteAsync(body, ct)
            let reader = Reader(us)
            // Skip interim 1xx responses.
            let mutable response = None
            while response.IsNone do
                let! text = reader.ReadHead ct
                let h = parseHead (text |> Option.defaultWith (fun () -> raise (EndOfStreamException "upstream closed without answering")))
                if statusOf h / 100 <> 1 then response <- Some h
            let h = response.Value
            let status = statusOf h
            let noBody = request.First.StartsWith("HEAD ", StringComparison.Ordinal) || status = 204 || status = 304
            let! respBody = if noBody then Task.FromResult [||] else readBody reader h true ct
            return h, respBody, noBody
        }

    let handle (client: TcpClient) =
        task {
            let ct = disposed.Token
            try
                try
                    use cs = client.GetStream()
                    let reader = Reader(cs)
                    match! reader.ReadHead ct with
                    | None -> ()
                    | Some text ->
                        let request = parseHead text
                        if request.Get "Expect" |> Option.exists (fun e -> e.Contains("100-continue", StringComparison.OrdinalIgnoreCase)) then
                            do! send cs (Encoding.ASCII.GetBytes "HTTP/1.1 100 Continue\r\n\r\n") ct
                        let! body = readBody reader request false ct
                        Interlocked.Increment(&requests) |> ignore
                        match takeMode request with
                        | Down -> client.Client.LingerState <- LingerOption(true, 0)
                        | BlackHole ->
                            Interlocked.Increment(&blackHoled) |> ignore
                            // Hold the request until the client gives up (its read ends) or the mode changes.
                            let released = lock gate (fun () -> modeChanged.Token)
                            let closed = cs.ReadAsync(Array.zeroCreate<byte> 1, 0, 1, ct)
                            let! _ = Task.WhenAny(closed, Task.Delay(Timeout.Infinite, released))
                            ()
                        | Errors(status, _) ->
                            Interlocked.Increment(&errorsServed) |> ignore
                            do! send cs (errorResponse status) ct
                        | m ->
                            match m with
                            | Slow d ->
                                Interlocked.Increment(&delayed) |> ignore
                                do! Task.Delay(d, ct)
                            | _ -> ()
                            let body =
                                match m with
                                | CorruptUploads when body.Length > 0 ->
                                    Interlocked.Increment(&corruptedUploads) |> ignore
                                    let damaged = Array.copy body
                                    damaged.[damaged.Length / 2] <- damaged.[damaged.Length / 2] ^^^ 0x5Auy
                                    damaged
                                | _ -> body
                            let! response, respBody, noBody = forward request body ct
                            Interlocked.Increment(&forwarded) |> ignore
                            let head = response.Without([ "Connection"; "Keep-Alive"; "Transfer-Encoding" ])
                            if noBody then
                                do! send cs (head.With("Connection", "close").Bytes()) ct
                            else
                                let object = isObjectBody request response respBody
                                let framed (b: byte[]) =
                                    Array.append (head.Without([ "Content-Length" ]).With("Content-Length", string b.Length).With("Connection", "close").Bytes()) b
                                match m with
                                | CorruptBodies n when object ->
                                    Interlocked.Increment(&corrupted) |> ignore
                                    let damaged = Array.copy respBody
                                    for i in 1 .. n do
                                        let at = int (int64 i * int64 damaged.Length / int64 (n + 1))
                                        damaged.[at] <- damaged.[at] ^^^ 0x5Auy
                                    do! send cs (framed damaged) ct
                                | TruncateBodies when object ->
                                    Interlocked.Increment(&truncated) |> ignore
                                    do! send cs (framed respBody.[.. respBody.Length / 2 - 1]) ct
                                | CutBodies when object ->
                                    Interlocked.Increment(&cut) |> ignore
                                    let h = head.Without([ "Content-Length" ]).With("Content-Length", string respBody.Length).With("Connection", "close")
                                    do! send cs (Array.append (h.Bytes()) respBody.[.. respBody.Length / 2 - 1]) ct
                                    client.Client.LingerState <- LingerOption(true, 0)
                                | Trickle(chunk, interval) when object ->
                                    Interlocked.Increment(&trickled) |> ignore
                                    let h = head.Without([ "Content-Length" ]).With("Content-Length", string respBody.Length).With("Connection", "close")
                                    do! send cs (h.Bytes()) ct
                                    let mutable at = 0
                                    while at < respBody.Length do
                                        do! Task.Delay(interval, ct)
                                        let n = min chunk (respBody.Length - at)
                                        do! cs.WriteAsync(respBody, at, n, ct)
                                        at <- at + n
                                | Flood(declare, bytes) when object ->
                                    Interlocked.Increment(&flooded) |> ignore
                                    let h = head.Without([ "Content-Length"; "Content-MD5"; "x-amz-checksum-crc32"; "x-ms-blob-content-md5"; "Content-Range" ])
                                    let h = (if declare then h.With("Content-Length", string bytes) else h).With("Connection", "close")
                                    do! send cs (h.Bytes()) ct
                                    let mutable left = bytes
                                    while left > 0L do
                                        let n = int (min left (int64 junk.Length))
                                        do! cs.WriteAsync(junk, 0, n, ct)
                                        Interlocked.Add(&floodBytes, int64 n) |> ignore
                                        left <- left - int64 n
                                | _ -> do! send cs (framed respBody) ct
                        if client.Connected then
                            try client.Client.Shutdown SocketShutdown.Send with _ -> ()
                with _ ->
                    // A client that gave up, a reset: the proxy only serves tests, it never fails them itself.
                    ()
            finally
                open'.TryRemove client |> ignore
                client.Dispose()
        }

    let acceptLoop (l: TcpListener) (ct: CancellationToken) =
        task {
            let mutable go = true
            while go && not ct.IsCancellationRequested do
                try
                    let! c = l.AcceptTcpClientAsync ct
                    open'.[c] <- 0uy
                    handle c |> ignore
                with _ -> go <- false
        }

    let startListening () =
        let l = new TcpListener(IPAddress.Loopback, port)
        // The port is reused after Down: connections it served may still be in TIME_WAIT.
        l.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true)
        l.Start(512)
        listenerStop <- new CancellationTokenSource()
        listener <- Some l
        acceptLoop l listenerStop.Token |> ignore

    let stopListening () =
        match listener with
        | Some l ->
            listenerStop.Cancel()
            l.Stop()
            listener <- None
            // Reset every open connection: requests in flight fail now.
            for c in open'.Keys do
                try
                    c.Client.LingerState <- LingerOption(true, 0)
                    c.Close()
                with _ -> ()
        | None -> ()

    do startListening ()

    /// The proxy's base URL, e.g. http://127.0.0.1:40123.
    member _.Endpoint = Uri($"http://127.0.0.1:{port}")

    member _.Port = port

    member _.Mode = lock gate (fun () -> mode)

    /// Switches the behaviour; takes effect for the next request (and releases black-holed ones).
    member _.SetMode(m: Mode) =
        lock gate (fun () ->
            let wasDown = (mode = Down)
            mode <- m
            modeChanges <- modeChanges + 1
            modeChanged.Cancel()
            modeChanged <- new CancellationTokenSource()
            if m = Down && not wasDown then stopListening ()
            elif m <> Down && wasDown then startListening ())

    member _.Counters =
        { Requests = Volatile.Read &requests
          Forwarded = Volatile.Read &forwarded
          Delayed = Volatile.Read &delayed
          BlackHoled = Volatile.Read &blackHoled
          Corrupted = Volatile.Read &corrupted
          Truncated = Volatile.Read &truncated
          Cut = Volatile.Read &cut
          ErrorsServed = Volatile.Read &errorsServed
          CorruptedUploads = Volatile.Read &corruptedUploads
          Trickled = Volatile.Read &trickled
          Flooded = Volatile.Read &flooded
          FloodBytes = Interlocked.Read &floodBytes
          ModeChanges = lock gate (fun () -> modeChanges) }

    interface IDisposable with
        member _.Dispose() =
            lock gate (fun () ->
                stopListening ()
                modeChanged.Cancel())
            disposed.Cancel()
