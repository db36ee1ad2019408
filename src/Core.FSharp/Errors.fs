namespace Ptd.Core

open System

/// The one exception type the core throws at its API boundary. The message says what is wrong,
/// where (vertex, edge, field) and, where there is one, how to fix it.
type PtdException(message: string, inner: exn) =
    inherit Exception(message, inner)
    new(message: string) = PtdException(message, null)

module internal Fail =
    let inline withMessage (msg: string) : 'a = raise (PtdException msg)
    let inline format fmt = Printf.ksprintf (fun s -> raise (PtdException s)) fmt
