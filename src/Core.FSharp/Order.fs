namespace Ptd.Core

open System.Collections.Generic

/// The elimination order: strongly-connected components in topological order, vertices inside a
/// component in a fill-reducing order (`FillReducingOrder`: smallest Markowitz count first, ties by
/// vertex index), absorbing vertices last. Deterministic (never hash or address order).
type VertexOrder =
    { /// Order.[i] = the vertex at position i.
      Order: int[]
      /// Position.[v] = the position of vertex v.
      Position: int[]
      /// Component.[v] = the strongly-connected component of v (numbered in topological order).
      Component: int[]
      /// Component sizes, indexed by component number.
      ComponentSize: int[] }

    member o.ComponentCount = o.ComponentSize.Length
    /// True when every component is a single vertex (no cycles, no elimination needed).
    member o.IsAcyclic = o.ComponentSize |> Array.forall (fun s -> s = 1)

module Order =

    /// Iterative Tarjan: component id per vertex, ids in reverse topological order.
    let private tarjan (g: Graph) =
        let n = g.VertexCount
        let index = Array.create n -1
        let low = Array.zeroCreate n
        let onStack = Array.zeroCreate n
        let comp = Array.create n -1
        let stack = Stack<int>()
        let callVertex = Stack<int>()
        let callEdge = Stack<int>()
        let mutable next = 0
        let mutable comps = 0
        for root in 0 .. n - 1 do
            if index.[root] < 0 then
                index.[root] <- next; low.[root] <- next; next <- next + 1
                stack.Push root; onStack.[root] <- true
                callVertex.Push root; callEdge.Push(g.EdgeStart root)
                while callVertex.Count > 0 do
                    let v = callVertex.Peek()
                    let e = callEdge.Pop()
                    if e < g.EdgeEnd v then
                        callEdge.Push(e + 1)
                        let w = g.Targets.[e]
                        if index.[w] < 0 then
                            index.[w] <- next; low.[w] <- next; next <- next + 1
                            stack.Push w; onStack.[w] <- true
                            callVertex.Push w; callEdge.Push(g.EdgeStart w)
                        elif onStack.[w] && index.[w] < low.[v] then
                            low.[v] <- index.[w]
                    else
                        callVertex.Pop() |> ignore
                        if low.[v] = index.[v] then
                            let mutable fin = false
                            while not fin do
                                let w = stack.Pop()
                                onStack.[w] <- false
                                comp.[w] <- comps
                                if w = v then fin <- true
                            comps <- comps + 1
                        if callVertex.Count > 0 then
                            let parent = callVertex.Peek()
                            if low.[v] < low.[parent] then low.[parent] <- low.[v]
        comp, comps

    /// Computes the elimination order of a graph.
    let compute (g: Graph) : VertexOrder =
        let n = g.VertexCount
        let tarjanComp, count = tarjan g
        // Kahn on the condensation, always taking the ready component with the smallest vertex
        // index: a graph numbered topologically by the builder keeps its own numbering.
        let minVertex = Array.create count System.Int32.MaxValue
        let size = Array.zeroCreate count
        for v in n - 1 .. -1 .. 0 do
            let c = tarjanComp.[v]
            minVertex.[c] <- v
            size.[c] <- size.[c] + 1
        let indegree = Array.zeroCreate count
        for v in 0 .. n - 1 do
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                let cu = tarjanComp.[v]
                let cw = tarjanComp.[g.Targets.[e]]
                if cu <> cw then indegree.[cw] <- indegree.[cw] + 1
        // Members of each component, ascending by vertex index.
        let memberStart = Array.zeroCreate (count + 1)
        for c in 0 .. count - 1 do memberStart.[c + 1] <- memberStart.[c] + size.[c]
        let members = Array.zeroCreate n
        let fill = Array.copy memberStart
        for v in 0 .. n - 1 do
            let c = tarjanComp.[v]
            members.[fill.[c]] <- v
            fill.[c] <- fill.[c] + 1
        let isAbsorbingComp c = size.[c] = 1 && g.IsAbsorbing members.[memberStart.[c]]
        let ready = PriorityQueue<int, int>()
        for c in 0 .. count - 1 do
            if indegree.[c] = 0 && not (isAbsorbingComp c) then ready.Enqueue(c, minVertex.[c])
        let order = Array.zeroCreate n
        let position = Array.zeroCreate n
        let comp = Array.zeroCreate n
        let compSize = ResizeArray<int>()
        let mutable pos = 0
        let local = Array.zeroCreate n
        let place c =
            let id = compSize.Count
            compSize.Add size.[c]
            let first = memberStart.[c]
            let count = memberStart.[c + 1] - first
            // one or two vertices: either order gives the same fill (and no array per vertex
            // for the many single-vertex components of an acyclic graph)
            if count < 3 then
                for i in first .. first + count - 1 do
                    let v = members.[i]
                    order.[pos] <- v; position.[v] <- pos; comp.[v] <- id
                    pos <- pos + 1
            else
                for v in FillReducingOrder.orderComponent g tarjanComp c members.[first .. first + count - 1] local do
                    order.[pos] <- v; position.[v] <- pos; comp.[v] <- id
                    pos <- pos + 1
        let absorbing = ResizeArray<int>()
        while ready.Count > 0 do
            let c = ready.Dequeue()
            place c
            for i in memberStart.[c] .. memberStart.[c + 1] - 1 do
                let v = members.[i]
                for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                    let cw = tarjanComp.[g.Targets.[e]]
                    if cw <> c then
                        indegree.[cw] <- indegree.[cw] - 1
                        if indegree.[cw] = 0 && not (isAbsorbingComp cw) then ready.Enqueue(cw, minVertex.[cw])
        // Absorbing vertices are sinks: all of them go last, ascending by index.
        for c in 0 .. count - 1 do
            if isAbsorbingComp c then absorbing.Add c
        absorbing.Sort(fun a b -> compare minVertex.[a] minVertex.[b])
        for c in absorbing do place c
        if pos <> n then Fail.format "internal error: ordering placed %d of %d vertices" pos n
        { Order = order; Position = position; Component = comp; ComponentSize = compSize.ToArray() }
