namespace Ptd.Core

open System

/// Structural checks every graph passes before anyone computes with it.
module internal Validation =

    let private describe (g: Graph) v =
        if v = 0 then "the start vertex" else sprintf "vertex %d (state [%s])" v (String.Join(", ", g.States.[v]))

    /// True for edges that can carry weight: a constant edge of weight 0 cannot.
    let private canCarry (g: Graph) e =
        if g.Bases.[e] <> 0.0 then true
        else
            let p = g.ParamLength
            let mutable any = false
            for k in 0 .. p - 1 do
                if g.Coefs.[e * p + k] <> 0.0 then any <- true
            any

    let check (g: Graph) =
        let n = g.VertexCount
        if g.OutDegree 0 = 0 then
            Fail.withMessage "the start vertex has no out-edges: add at least one start edge (the initial distribution α)"
        // Every vertex must reach an absorbing vertex, otherwise absorption is not certain and the
        // moments are infinite. Reverse breadth-first search from all absorbing vertices.
        let reverseCount = Array.zeroCreate (n + 1)
        for v in 0 .. n - 1 do
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                if canCarry g e then
                    let t = g.Targets.[e]
                    reverseCount.[t + 1] <- reverseCount.[t + 1] + 1
        for v in 0 .. n - 1 do reverseCount.[v + 1] <- reverseCount.[v + 1] + reverseCount.[v]
        let reverseSrc = Array.zeroCreate reverseCount.[n]
        let fill = Array.copy reverseCount
        for v in 0 .. n - 1 do
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                if canCarry g e then
                    let t = g.Targets.[e]
                    reverseSrc.[fill.[t]] <- v
                    fill.[t] <- fill.[t] + 1
        let reaches = Array.zeroCreate n
        let queue = System.Collections.Generic.Queue<int>()
        for v in 1 .. n - 1 do
            if g.IsAbsorbing v then
                reaches.[v] <- true
                queue.Enqueue v
        if queue.Count = 0 then
            Fail.withMessage "the model has no absorbing vertex (a state with no out-edges): the time to absorption would be infinite"
        while queue.Count > 0 do
            let t = queue.Dequeue()
            for i in reverseCount.[t] .. reverseCount.[t + 1] - 1 do
                let s = reverseSrc.[i]
                if not reaches.[s] then
                    reaches.[s] <- true
                    queue.Enqueue s
        for v in 0 .. n - 1 do
            if not reaches.[v] then
                Fail.format
                    "no absorbing state is reachable from %s: absorption would not be certain. Every state needs a path (of edges with non-zero weight) to a state without out-edges"
                    (describe g v)
        // Unparameterized graphs: check the weights now (negative, DPH sums) rather than later.
        if g.ParamLength = 0 then g.Weights [||] |> ignore
