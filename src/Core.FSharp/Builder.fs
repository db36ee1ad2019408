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
        if baseWeight < 0.0 && (isNull coef || Array.forall (fun c -> c = 0.0) coef) then
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
        // Edges grouped by source. Callback-built graphs add them grouped already; otherwise a
        // stable bucket sort gives the permutation (no copies of the weight arrays).
        let offsets = Array.zeroCreate (n + 1)
        for e in 0 .. m - 1 do offsets.[edgeFrom.[e] + 1] <- offsets.[edgeFrom.[e] + 1] + 1
        for v in 0 .. n - 1 do offsets.[v + 1] <- offsets.[v + 1] + offsets.[v]
        let mutable grouped = true
        for e in 1 .. m - 1 do
            if edgeFrom.[e] < edgeFrom.[e - 1] then grouped <- false
        let perm =
            if grouped then null
            else
                let fill = Array.copy offsets
                let perm = Array.zeroCreate m
                for e in 0 .. m - 1 do
                    perm.[fill.[edgeFrom.[e]]] <- e
                    fill.[edgeFrom.[e]] <- fill.[edgeFrom.[e]] + 1
                perm
        let edgeAt i = if isNull perm then i else perm.[i]
        // Each vertex's edges sorted by target (deterministic), duplicates merged or rejected,
        // written straight into arrays of the final size (trimmed only if duplicates merged).
        let outTgt = Array.zeroCreate m
        let outBase = Array.zeroCreate m
        let outCoef = Array.zeroCreate (m * p)
        let newOffsets = Array.zeroCreate (n + 1)
        let order = ResizeArray<int>()
        let byTarget = Comparison<int>(fun a b -> if edgeTo.[a] <> edgeTo.[b] then compare edgeTo.[a] edgeTo.[b] else compare a b)
        let mutable k = 0
        for v in 0 .. n - 1 do
            newOffsets.[v] <- k
            order.Clear()
            let mutable sorted = true
            for i in offsets.[v] .. offsets.[v + 1] - 1 do
                let e = edgeAt i
                if order.Count > 0 && edgeTo.[order.[order.Count - 1]] >= edgeTo.[e] then sorted <- false
                order.Add e
            if not sorted then order.Sort byTarget
            for e in order do
                if k > newOffsets.[v] && outTgt.[k - 1] = edgeTo.[e] then
                    if duplicates = DuplicateEdgePolicy.Reject then
                        Fail.format "duplicate edge %d -> %d (state [%s] -> [%s]); each pair of vertices may have at most one edge"
                            v edgeTo.[e] (String.Join(", ", states.[v])) (String.Join(", ", states.[edgeTo.[e]]))
                    outBase.[k - 1] <- outBase.[k - 1] + edgeBase.[e]
                    for j in 0 .. p - 1 do outCoef.[(k - 1) * p + j] <- outCoef.[(k - 1) * p + j] + edgeCoef.[e * p + j]
                else
                    outTgt.[k] <- edgeTo.[e]
                    outBase.[k] <- edgeBase.[e]
                    for j in 0 .. p - 1 do outCoef.[k * p + j] <- edgeCoef.[e * p + j]
                    k <- k + 1
        newOffsets.[n] <- k
        let trim (a: 'a[]) len = if a.Length = len then a else Array.sub a 0 len
        let g = Graph(discrete, stateLength, p, states.ToArray(), newOffsets, trim outTgt k, trim outBase k, trim outCoef (k * p))
        Validation.check g
        g
