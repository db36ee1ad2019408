namespace Ptd.Core

/// A fill-reducing elimination order inside one strongly-connected component.
///
/// Why: eliminating a vertex merges its row into every parent's row, so the order decides how
/// much fill-in (and work, trace length, command count) elimination creates. A birth–death
/// chain whose vertices also exit the component — the rabbit islands, queues, the structured
/// coalescent — eliminated end to end gives every vertex the exits of all vertices before it:
/// O(m²) fill for m vertices. Eliminating the vertex of smallest Markowitz count first (parents ×
/// row length) takes every other vertex of such a chain, then every other of the rest, …, which
/// is nested dissection on a path: O(m log m) fill (rabbits3 R = 200: 2.2 M → 0.39 M commands).
///
/// The count is computed on the structure only (symbolic elimination), with one approximation:
/// a vertex's exits from the component are counted, not tracked as a set, and a parent inherits
/// the eliminated vertex's count (capped at the component's exits). Ties go to the smallest
/// vertex index, and nothing depends on hash or address order, so the order is deterministic.
/// A dense component gains little and would make this as costly as elimination itself, so the
/// symbolic work is budgeted: past the budget the component keeps ascending vertex order (so does
/// a component of 2^24 vertices or more: the queue key holds the local index in 24 bits).
module internal FillReducingOrder =

    type private Hot = System.Runtime.CompilerServices.MethodImplAttribute

    [<Literal>]
    let private Optimized = System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization

    /// A growable int list; order inside it carries no meaning (swap-remove).
    type private Bag =
        { mutable Items: int[]
          mutable Count: int }

        [<Hot(Optimized)>]
        member b.Add(x: int) =
            if b.Count = b.Items.Length then System.Array.Resize(&b.Items, max 4 (2 * b.Items.Length))
            b.Items.[b.Count] <- x
            b.Count <- b.Count + 1

        [<Hot(Optimized)>]
        member b.Remove(x: int) =
            let mutable i = 0
            while i < b.Count && b.Items.[i] <> x do i <- i + 1
            if i < b.Count then
                b.Count <- b.Count - 1
                b.Items.[i] <- b.Items.[b.Count]

    [<Literal>]
    let private IndexBits = 24

    [<Literal>]
    let private IndexMask = 0xFFFFFFL

    [<Literal>]
    let private MaxCount = 0x7FFFFFFFFFL // 2^39 − 1: key < 2^63

    /// ⌈log₂ m⌉, at least 1.
    let private ceilLog2 (m: int) = max 1 (32 - System.Numerics.BitOperations.LeadingZeroCount(uint32 (m - 1)))

    /// A binary min-heap of int64 keys (a key carries its vertex in the low bits). Not the BCL's
    /// PriorityQueue: its code for these type arguments is JIT-compiled in the process, and ran
    /// unoptimized through most of a first ordering (tiered compilation waits for start-up to settle).
    type private KeyHeap(capacity: int) =
        let mutable keys: int64[] = Array.zeroCreate (max 4 capacity)
        let mutable count = 0

        member _.Count = count

        [<Hot(Optimized)>]
        member _.Push(key: int64) =
            if count = keys.Length then System.Array.Resize(&keys, 2 * keys.Length)
            let mutable i = count
            count <- count + 1
            while i > 0 && keys.[(i - 1) / 2] > key do
                keys.[i] <- keys.[(i - 1) / 2]
                i <- (i - 1) / 2
            keys.[i] <- key

        [<Hot(Optimized)>]
        member _.Pop() : int64 =
            let top = keys.[0]
            count <- count - 1
            let last = keys.[count]
            let mutable i = 0
            let mutable fin = count = 0
            while not fin do
                let l = 2 * i + 1
                if l >= count then fin <- true
                else
                    let c = if l + 1 < count && keys.[l + 1] < keys.[l] then l + 1 else l
                    if keys.[c] < last then
                        keys.[i] <- keys.[c]
                        i <- c
                    else fin <- true
            if count > 0 then keys.[i] <- last
            top

    /// The queue key of local vertex i: its Markowitz count (clamped; a heuristic needs no more)
    /// above the local index, which breaks ties by vertex index since members ascend.
    [<Hot(Optimized)>]
    let private keyOf (parents: Bag[]) (children: Bag[]) (exits: int64[]) (i: int) =
        let c = int64 parents.[i].Count * (int64 children.[i].Count + exits.[i])
        (min c MaxCount <<< IndexBits) ||| int64 i

    /// Symbolic work allowed per component: a few passes over its edges per level of a nested
    /// dissection (a chain needs about one), never less than a small constant.
    let private budgetFor (edges: int64) (m: int) = 4L * edges * int64 (ceilLog2 m) + 4096L

    /// The members of component `c` (ascending vertex indices; `comp.[v]` = component of v) in
    /// fill-reducing order, or `members` itself when the budget runs out. `local` is scratch of
    /// length VertexCount, shared between calls.
    // Optimized at the first call (also keyOf and the Bag members): a CLI run orders once, and
    // tier-0 code made that first call ~10× slower than the steady state.
    [<Hot(Optimized)>]
    let orderComponent (g: Graph) (comp: int[]) (c: int) (members: int[]) (local: int[]) : int[] =
        let m = members.Length
        if m >= (1 <<< IndexBits) then members else
        for i in 0 .. m - 1 do local.[members.[i]] <- i
        let children = Array.init m (fun i -> { Items = Array.zeroCreate (g.OutDegree members.[i]); Count = 0 })
        let parents = Array.init m (fun _ -> { Items = Array.zeroCreate 2; Count = 0 })
        let exits = Array.zeroCreate<int64> m
        let mutable edges = 0L
        let mutable allExits = 0L
        for i in 0 .. m - 1 do
            let v = members.[i]
            for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                let w = g.Targets.[e]
                edges <- edges + 1L
                if comp.[w] = c then
                    children.[i].Add local.[w]
                    parents.[local.[w]].Add i
                else
                    exits.[i] <- exits.[i] + 1L
                    allExits <- allExits + 1L
        let key i = keyOf parents children exits i
        let queue = KeyHeap(2 * m)
        for i in 0 .. m - 1 do queue.Push(key i)
        let eliminated = Array.zeroCreate m
        let mark = Array.create m -1
        let order = Array.zeroCreate m
        let budget = budgetFor edges m
        let mutable work = 0L
        let mutable k = 0
        while k < m && work <= budget && queue.Count > 0 do
            let queued = queue.Pop()
            let i = int (queued &&& IndexMask)
            // stale entries (the count changed since) are skipped; the current one is queued too
            if not eliminated.[i] && queued = key i then
                eliminated.[i] <- true
                order.[k] <- members.[i]
                k <- k + 1
                let ci = children.[i]
                let pi = parents.[i]
                for a in 0 .. pi.Count - 1 do
                    let u = pi.Items.[a]
                    let cu = children.[u]
                    cu.Remove i
                    exits.[u] <- min allExits (exits.[u] + exits.[i])
                    // u's row gains i's children (fill-in); marks make the union linear
                    for b in 0 .. cu.Count - 1 do mark.[cu.Items.[b]] <- u
                    for b in 0 .. ci.Count - 1 do
                        let z = ci.Items.[b]
                        if z <> u && mark.[z] <> u then
                            mark.[z] <- u
                            cu.Add z
                            parents.[z].Add u
                    work <- work + int64 (cu.Count + ci.Count)
                for b in 0 .. ci.Count - 1 do parents.[ci.Items.[b]].Remove i
                for a in 0 .. pi.Count - 1 do
                    let u = pi.Items.[a]
                    queue.Push(key u)
                for b in 0 .. ci.Count - 1 do
                    let z = ci.Items.[b]
                    queue.Push(key z)
        if k < m then members else order
