namespace Ptd.Core

open System

/// Reward transformation (algorithms.md §4): a new graph whose absorption time is the accumulated
/// reward Y = ∫ r(X_t) dt (continuous) or Y = Σ r(X_n) (discrete, integer rewards) — the whole
/// distribution, not only the mean.
module RewardTransform =

    /// Rewards at or below this are treated as zero (as in the originals).
    [<Literal>]
    let ZeroReward = 1e-6

    /// A row of out-weights kept sorted by target vertex index (deterministic merges).
    type private Row = { mutable Targets: int[]; mutable Weights: float[] }

    /// row u ← row u without v, plus p · (row v normalized); an entry back to u is dropped
    /// (continuous: a jump to itself does not change the process; discrete: it joins u's stay mass).
    let private merge (u: int) (ru: Row) (v: int) (rv: Row) (p: float) (onNewTarget: int -> unit) =
        let total = Array.sum rv.Weights
        let ts = ResizeArray<int>(ru.Targets.Length + rv.Targets.Length)
        let ws = ResizeArray<float>(ru.Targets.Length + rv.Targets.Length)
        let mutable a = 0
        let mutable b = 0
        while a < ru.Targets.Length || b < rv.Targets.Length do
            let ta = if a < ru.Targets.Length then ru.Targets.[a] else Int32.MaxValue
            let tb = if b < rv.Targets.Length then rv.Targets.[b] else Int32.MaxValue
            if ta < tb then
                if ta <> v then
                    ts.Add ta
                    ws.Add ru.Weights.[a]
                a <- a + 1
            else
                let q = p * rv.Weights.[b] / total
                if tb = u then ()
                elif ta = tb then
                    ts.Add ta
                    ws.Add(ru.Weights.[a] + q)
                    a <- a + 1
                else
                    ts.Add tb
                    ws.Add q
                    onNewTarget tb
                b <- b + 1
        ru.Targets <- ts.ToArray()
        ru.Weights <- ws.ToArray()

    /// Transforms graph g at concrete weights (`g.Weights theta`) by the reward vector
    /// (one entry per vertex, index 0 = start vertex, ignored). Rewards must be ≥ 0; for a discrete
    /// model they must be integers.
    let transform (g: Graph) (weights: float[]) (reward: float[]) : Graph =
        Rewards.check g reward
        if weights.Length <> g.EdgeCount then
            Fail.format "weights has %d entries but the graph has %d edges" weights.Length g.EdgeCount
        let n = g.VertexCount
        for v in 1 .. n - 1 do
            if reward.[v] < 0.0 then
                Fail.format "reward[%d] = %g is negative; the reward transformation needs rewards ≥ 0" v reward.[v]
            if g.IsDiscrete && abs (reward.[v] - Math.Round reward.[v]) > 1e-9 then
                Fail.format "reward[%d] = %g is not an integer; a discrete model's rewards must be whole numbers of steps" v reward.[v]
        let rows =
            Array.init n (fun v ->
                let e0, e1 = g.EdgeStart v, g.EdgeEnd v
                let pairs = [| for e in e0 .. e1 - 1 -> g.Targets.[e], weights.[e] |] |> Array.sortBy fst
                { Targets = Array.map fst pairs; Weights = Array.map snd pairs })
        let parents = Array.init n (fun _ -> ResizeArray<int>())
        for v in 0 .. n - 1 do
            for t in rows.[v].Targets do parents.[t].Add v
        let isZero v = v <> 0 && not (g.IsAbsorbing v) && reward.[v] <= ZeroReward
        let dropped = Array.zeroCreate n
        let order = Order.compute g
        for v in order.Order do
            if isZero v then
                let rv = rows.[v]
                for u in parents.[v] do
                    if not dropped.[u] then
                        let ru = rows.[u]
                        let i = Array.BinarySearch(ru.Targets, v)
                        if i >= 0 then
                            merge u ru v rv ru.Weights.[i] (fun z -> parents.[z].Add u)
                dropped.[v] <- true
                parents.[v].Clear()
        // Build the transformed graph: kept vertices in index order, then auxiliary chains.
        let aux = g.IsDiscrete && (seq { 1 .. n - 1 } |> Seq.exists (fun v -> not dropped.[v] && not (g.IsAbsorbing v) && Math.Round reward.[v] > 1.0))
        let stateLength = if aux then g.StateLength + 1 else g.StateLength
        let b = GraphBuilder(stateLength, 0, g.IsDiscrete, DuplicateEdgePolicy.Reject)
        let stateOf v i = if aux then Array.append g.States.[v] [| i |] else g.States.[v]
        let newIndex = Array.create n -1
        newIndex.[0] <- 0
        for v in 1 .. n - 1 do
            if not dropped.[v] then newIndex.[v] <- b.FindOrCreate(stateOf v 0)
        for v in 0 .. n - 1 do
            if not dropped.[v] then
                let r = rows.[v]
                let from = newIndex.[v]
                if v = 0 || g.IsAbsorbing v then
                    for j in 0 .. r.Targets.Length - 1 do
                        if r.Weights.[j] > 0.0 then b.AddEdge(from, newIndex.[r.Targets.[j]], r.Weights.[j])
                elif not g.IsDiscrete then
                    // Y accumulates r_v per unit of time in v: in Y's clock every rate is divided by r_v.
                    for j in 0 .. r.Targets.Length - 1 do
                        if r.Weights.[j] > 0.0 then b.AddEdge(from, newIndex.[r.Targets.[j]], r.Weights.[j] / reward.[v])
                else
                    let k = int (Math.Round reward.[v])
                    // A visit to v is worth k steps: v, then k − 1 auxiliary steps; the last one
                    // leaves with v's out-probabilities or restarts at v with v's stay mass.
                    let mutable last = from
                    for i in 1 .. k - 1 do
                        let a = b.FindOrCreate(stateOf v i)
                        b.AddEdge(last, a, 1.0)
                        last <- a
                    let mutable out = 0.0
                    for j in 0 .. r.Targets.Length - 1 do
                        if r.Weights.[j] > 0.0 then
                            b.AddEdge(last, newIndex.[r.Targets.[j]], r.Weights.[j])
                            out <- out + r.Weights.[j]
                    if k > 1 && out < 1.0 - 1e-15 then b.AddEdge(last, from, 1.0 - out)
        b.Build()
