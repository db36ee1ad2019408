namespace Ptd.Core

open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// Array reads without a bounds check, for the innermost loops of the likelihood's window sums
/// (the sweep reads through raw references, as Distribution.Chain's step does), where the
/// checks cost as much as the arithmetic. Every caller proves its indices
/// in range ONCE, before its loop (the structure it reads was built to that size), and says so
/// where it calls these.
module internal Unchecked =

    /// a.[i], unchecked.
    let inline get (a: 'T[]) (i: int) : 'T = Unsafe.Add(&MemoryMarshal.GetArrayDataReference a, i)

    /// a.[i .. i + Vector<float>.Count − 1] as a vector, unchecked.
    let inline load (a: float[]) (i: int) : Vector<float> =
        Vector.LoadUnsafe(&MemoryMarshal.GetArrayDataReference a, unativeint i)

