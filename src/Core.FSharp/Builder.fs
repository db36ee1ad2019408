namespace Ptd.Core

open System
open System.Collections.Generic

/// What to do when the same edge (same source and target) is added twice.
type DuplicateEdgePolicy =
    /// Sum the weights (base and coefficients). The default for callback-built models, where
    /// two different events can lead to the same next state.
    | Merge = 0
    /// Fail with an error naming the edge. Used for model files, where a duplicate is a typo.
    | Reject = 1

/// Structural equality for state vectors (the builder's O(1) state → vertex map).
[<Sealed>]
type internal StateComparer() =
    static member val Instance = StateComparer()
    interface IEqualityComparer<int[]> with
        member _.Equals(a, b) = ReadOnlySpan<int>(a).SequenceEqual(ReadOnlySpan<int>(b))
        member _.GetHashCode(a) =
            let mutable h = 0x2545F491
            for x in a do
                h <- (h ^^^ x) * 0x01000193 + (h >>> 15)
            h

/// A mutable graph under construction. `FindOrCreate` maps a state to its vertex in O(1);
/// `Build` validates everything and freezes it into an immutable `Graph`.
[<Sealed>]
type GraphBuilder(stateLength: int, paramLength: int, discrete: bool, duplicates: DuplicateEdgePolicy) =
    do
        if stateLength < 0 then Fail.format "stateLength must be ≥ 0 (got %d)" stateLength
        if paramLength < 0 then Fail.format "paramLength must be ≥ 0 (got %d)" paramLength

    let index = Dictionary<int[], int>(StateComparer.Instance)
    let states = ResizeArray<int[]>()
    let edgeFrom = ResizeArray<int>()
    let edgeTo = ResizeArray<int>()
    let edgeBase = ResizeArray<float>()
    let edgeCoef = ResizeArray<float>()
    do states.Add [||] // vertex 0: the start vertex

    new(stateLength, paramLength, discrete) = GraphBuilder(stateLength, paramLength, discrete, DuplicateEdgePolicy.Merge)

    member _.StateLength = stateLength
    member _.ParamLength = paramLength
    member _.IsDiscrete = discrete
    member _.VertexCount = states.Count
    member _.EdgeCount = edgeTo.Count

    /// The vertex of `state`, created (with a copy of the state) if it does not exist yet.
    member _.FindOrCreate(state: int[]) : int =
        if isNull state then Fail.withMessage "state must not be null"
        if state.Length <> stateLength then
            Fail.format "state [%s] has length %d but the model's state length is %d"
                (String.Join(", ", state)) state.Length stateLength
        match index.TryGetValue state with
        | true, v -> v
        | _ ->
            let v = states.Count
            let copy = Array.copy state
            states.Add copy
            index.Add(copy, v)
            v

    /// The vertex of `state`, or -1.
    member _.TryFind(state: int[]) : int =
        match index.TryGetValue state with
        | true, v -> v
        | _ -> -1

    member _.State(v: int) : int[] = Array.copy states.[v]

    /// Adds an edge with a constant weight (rate, or probability for a discrete model).
    member b.AddEdge(from: int, target: int, weight: float) =
        b.AddEdge(from, target, weight, Array.zeroCreate paramLength)

    /// Adds an edge with weight base + coef·θ.
    member _.AddEdge(from: int, target: int, baseWeight: float, coef: float[]) =
        let n = states.Count
        if from < 0 || from >= n then Fail.format "edge source %d is not a vertex (0..%d)" from (n - 1)
        if target < 1 || target >= n then
            Fail.format "edge %d -> %d: target %d is not a state vertex (1..%d); the start vertex 0 cannot be entered" from target target (n - 1)
        if from = target then
            Fail.format
                "self-loop on vertex %d (state [%s]) is not allowed: for a continuous model drop it (it does not change the process); for a discrete model the self-loop probability is implied as 1 − Σ out-probabilities"
                from (String.Join(", ", states.[from]))
        let coef = if isNull coef then [||] else coef
        if coef.Length <> paramLength then
            Fail.format "edge %d -> %d has %d coefficient(s) but the model has %d parameter(s)" from target coef.Length paramLength
        if not (Double.IsFinite baseWeight) then Fail.format "edge %d -> %d: weight %g is not finite" from target baseWeight
        if paramLength = 0 && baseWeight < 0.0 then
            Fail.format "edge %d -> %d has negative weight %g; weights are rates (or probabilities) and must be ≥ 0" from target baseWeight
        for c in coef do
            if not (Double.IsFinite c) then Fail.format "edge %d -> %d: coefficient %g is not finite" from target c
        edgeFrom.Add from
        edgeTo.Add target
        edgeBase.Add baseWeight
        edgeCoef.AddRange coef

    /// Adds a start edge (an entry of α) with a constant weight.
    member b.AddStartEdge(target: int, weight: float) = b.AddEdge(0, target, weight)
    /// Adds a start edge with weight base + coef·θ.
    member b.AddStartEdge(target: int, baseWeight: float, coef: float[]) = b.AddEdge(0, target, baseWeight, coef)

    /// Validates and freezes the graph. Errors name the vertex (with its state) at fault.
    member _.Build() : Graph =
        let n = states.Count
        let m = edgeTo.Count
        let p = paramLength
        // Stable bucket sort of edges by source; callback-built graphs are already grouped.
        let counts = Array.zeroCreate (n + 1)
        for e in 0 .. m - 1 do counts.[edgeFrom.[e] + 1] <- counts.[edgeFrom.[e] + 1] + 1
        for v in 0 .. n - 1 do counts.[v + 1] <- counts.[v + 1] + counts.[v]
        let offsets = Array.copy counts
        let fill = Array.copy counts
        let tgt = Array.zeroCreate m
        let bas = Array.zeroCreate m
        let cof = Array.zeroCreate (m * p)
        for e in 0 .. m - 1 do
            let slot = fill.[edgeFrom.[e]]
            fill.[edgeFrom.[e]] <- slot + 1
            tgt.[slot] <- edgeTo.[e]
            bas.[slot] <- edgeBase.[e]
            for k in 0 .. p - 1 do cof.[slot * p + k] <- edgeCoef.[e * p + k]
        // Duplicate edges: sort each vertex's edges by target (deterministic), then merge or reject.
        let outTgt = ResizeArray<int>(m)
        let outBase = ResizeArray<float>(m)
        let outCoef = ResizeArray<float>(m * p)
        let newOffsets = Array.zeroCreate (n + 1)
        let order = ResizeArray<int>()
        for v in 0 .. n - 1 do
            newOffsets.[v] <- outTgt.Count
            order.Clear()
            for e in offsets.[v] .. offsets.[v + 1] - 1 do order.Add e
            order.Sort(fun a b -> if tgt.[a] <> tgt.[b] then compare tgt.[a] tgt.[b] else compare a b)
            for e in order do
                let last = outTgt.Count - 1
                if last >= newOffsets.[v] && outTgt.[last] = tgt.[e] then
                    if duplicates = DuplicateEdgePolicy.Reject then
                        Fail.format "duplicate edge %d -> %d (state [%s] -> [%s]); each pair of vertices may have at most one edge"
                            v tgt.[e] (String.Join(", ", states.[v])) (String.Join(", ", states.[tgt.[e]]))
                    outBase.[last] <- outBase.[last] + bas.[e]
                    for k in 0 .. p - 1 do outCoef.[last * p + k] <- outCoef.[last * p + k] + cof.[e * p + k]
                else
                    outTgt.Add tgt.[e]
                    outBase.Add bas.[e]
                    for k in 0 .. p - 1 do outCoef.Add cof.[e * p + k]
        newOffsets.[n] <- outTgt.Count
        let g = Graph(discrete, stateLength, p, states.ToArray(), newOffsets, outTgt.ToArray(), outBase.ToArray(), outCoef.ToArray())
        Validation.check g
        g
