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

/// The builder's state → vertex map: open addressing with linear probing over one long[] whose
/// entries pack (hash, vertex + 1), so a probe touches one cache line and compares a state only
/// when the full 32-bit hash matches. Faster than Dictionary<int[], int> for the millions of
/// lookups of a large model (one memory access fewer per lookup). Not iterated, so hash order
/// never reaches any result.
[<Sealed>]
type internal StateIndex(states: ResizeArray<int[]>) =
    let mutable slots: int64[] = Array.zeroCreate 1024
    let mutable mask = 1023
    let mutable count = 0

    static member Hash(state: ReadOnlySpan<int>) : int =
        // Two independent multiply chains (even and odd slots) halve the latency of long states.
        let mutable h1 = 0x9E3779B97F4A7C15UL
        let mutable h2 = 0xC2B2AE3D27D4EB4FUL
        let mutable i = 0
        while i + 1 < state.Length do
            h1 <- (h1 ^^^ uint64 (uint32 state.[i])) * 0x100000001B3UL
            h2 <- (h2 ^^^ uint64 (uint32 state.[i + 1])) * 0x9E3779B185EBCA87UL
            i <- i + 2
        if i < state.Length then h1 <- (h1 ^^^ uint64 (uint32 state.[i])) * 0x100000001B3UL
        let h = h1 ^^^ (h2 >>> 29) ^^^ (h1 >>> 32) ^^^ uint64 state.Length
        int (uint32 (h ^^^ (h >>> 31)))

    member private _.Grow() =
        let old = slots
        slots <- Array.zeroCreate (old.Length * 2)
        mask <- slots.Length - 1
        for e in old do
            if e <> 0L then
                let mutable i = int (uint32 (e >>> 32)) &&& mask
                while slots.[i] <> 0L do i <- (i + 1) &&& mask
                slots.[i] <- e

    /// The vertex of `state`, or -1.
    member _.Find(state: ReadOnlySpan<int>, hash: int) : int =
        let mutable i = hash &&& mask
        let mutable result = -1
        let mutable searching = true
        while searching do
            let e = slots.[i]
            if e = 0L then searching <- false
            elif int (e >>> 32) = hash && ReadOnlySpan<int>(states.[int (e &&& 0xFFFFFFFFL) - 1]).SequenceEqual(state) then
                result <- int (e &&& 0xFFFFFFFFL) - 1
                searching <- false
            else i <- (i + 1) &&& mask
        result

    /// Registers a new vertex (the caller checked it is absent).
    member x.Add(hash: int, vertex: int) =
        if (count + 1) * 2 > slots.Length then x.Grow()
        let mutable i = hash &&& mask
        while slots.[i] <> 0L do i <- (i + 1) &&& mask
        slots.[i] <- (int64 hash <<< 32) ||| int64 (vertex + 1)
        count <- count + 1

/// A mutable graph under construction. `FindOrCreate` maps a state to its vertex in O(1);
/// `Build` validates everything and freezes it into an immutable `Graph`.
[<Sealed>]
type GraphBuilder(stateLength: int, paramLength: int, discrete: bool, duplicates: DuplicateEdgePolicy) =
    do
        if stateLength < 0 then Fail.format "stateLength must be ≥ 0 (got %d)" stateLength
        if paramLength < 0 then Fail.format "paramLength must be ≥ 0 (got %d)" paramLength

    let states = ResizeArray<int[]>()
    let index = StateIndex(states)
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
        let hash = StateIndex.Hash(ReadOnlySpan state)
        match index.Find(ReadOnlySpan state, hash) with
        | -1 ->
            let v = states.Count
            states.Add(Array.copy state)
            index.Add(hash, v)
            v
        | v -> v

    /// The vertex of `state`, or -1.
    member _.TryFind(state: int[]) : int =
        if isNull state || state.Length <> stateLength then -1
        else index.Find(ReadOnlySpan state, StateIndex.Hash(ReadOnlySpan state))

    member _.State(v: int) : int[] = Array.copy states.[v]

    /// The stored state of vertex v without a copy (for built-in models; never mutate it).
    member internal _.StateView(v: int) : int[] = states.[v]

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
