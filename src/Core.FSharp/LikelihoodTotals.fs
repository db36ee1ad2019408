namespace Ptd.Core

open System
open System.Numerics

/// Σ log f and Σ ∂ log f/∂θ_j over the observations, column c = 0 (value) .. width − 1,
/// compensated (Neumaier): each result is within an ulp or two of the exact sum whatever the
/// order of the terms, so sorted and unsorted data (and the grouping of observations) agree even
/// where the per-observation gradients cancel. Terms come a vector at a time (one compensated
/// sum per lane: no per-observation scatter to index order and no second pass) or one at a time;
/// Total combines them, compensated again. An infinite term gives the plain (infinite) sum.
type internal LikelihoodTotals(width: int) =
    let vs = Array.zeroCreate<Vector<float>> width
    let vc = Array.zeroCreate<Vector<float>> width
    let ss = Array.zeroCreate<float> width
    let sc = Array.zeroCreate<float> width

    member _.AddVector(c: int, x: Vector<float>) =
        let s = vs.[c]
        let t = s + x
        let sBig = Vector.GreaterThanOrEqual(Vector.Abs s, Vector.Abs x)
        vc.[c] <- vc.[c] + Vector.ConditionalSelect(sBig, (s - t) + x, (x - t) + s)
        vs.[c] <- t

    /// Column c's lane sums and compensations, kept by a caller in registers in place of
    /// AddVector(c, …) calls (none may have been made for c).
    member _.SetLanes(c: int, sum: Vector<float>, compensation: Vector<float>) =
        vs.[c] <- sum
        vc.[c] <- compensation

    member _.Add(c: int, x: float) =
        let s = ss.[c]
        let t = s + x
        if abs s >= abs x then sc.[c] <- sc.[c] + ((s - t) + x) else sc.[c] <- sc.[c] + ((x - t) + s)
        ss.[c] <- t

    member _.Total(c: int) : float =
        let mutable s = 0.0
        let mutable comp = 0.0
        let add (x: float) =
            let t = s + x
            if abs s >= abs x then comp <- comp + ((s - t) + x) else comp <- comp + ((x - t) + s)
            s <- t
        for l in 0 .. Vector<float>.Count - 1 do add vs.[c].[l]
        add ss.[c]
        if Double.IsFinite s then
            comp <- comp + sc.[c]
            for l in 0 .. Vector<float>.Count - 1 do comp <- comp + vc.[c].[l]
            s + comp
        else s
