namespace Ptd.Core

/// The arithmetic that elimination performs on edge weights. Elimination is written once against
/// this interface: with `FloatAlgebra` it computes numbers; with a recording algebra (the trace
/// issue) it records a straight-line program over θ. Implementations are structs so that the JIT
/// specializes the generic elimination for each and inlines the calls.
type IAlgebra<'T> =
    abstract Zero: 'T
    abstract Add: a: 'T * b: 'T -> 'T
    abstract Mul: a: 'T * b: 'T -> 'T
    abstract Inv: a: 'T -> 'T
    /// Sum of values[start .. start + count - 1] (count ≥ 1), left to right.
    abstract Sum: values: 'T[] * start: int * count: int -> 'T

/// Plain double-precision arithmetic.
[<Struct>]
type FloatAlgebra =
    interface IAlgebra<float> with
        member _.Zero = 0.0
        member _.Add(a, b) = a + b
        member _.Mul(a, b) = a * b
        member _.Inv(a) = 1.0 / a
        member _.Sum(values, start, count) =
            let mutable s = 0.0
            for i in start .. start + count - 1 do
                s <- s + values.[i]
            s
