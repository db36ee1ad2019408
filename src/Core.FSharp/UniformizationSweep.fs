namespace Ptd.Core

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// The uniformized chain P = I + S/Λ (or a discrete chain, Λ = 1) and its tangents along d
/// directions, laid out for the sweep: transient states renumbered 0 .. T − 1 (in vertex
/// order), the edges between them grouped by TARGET so that one step pulls π into each state
/// and accumulates in a register (no branch per edge, no scattered writes). A state's value
/// and its d tangents sit next to each other (Width = 1 + d), as do an edge's p and tangents.
type internal Uniformized =
    { Count: int
      Width: int
      /// In-edges of state z: InStart.[z] .. InStart.[z + 1] − 1, source state in InSource.
      InStart: int[]
      /// The states in the order a step visits them: by in-degree, then index, so that the
      /// inner loop's trip count changes only a few times per step (a changing count is a
      /// mispredicted branch per state). Each state's arithmetic does not depend on the order.
      Visit: int[]
      InSource: int[]
      /// Per in-edge c: p_c = w/Λ at [c·Width], its tangents at [c·Width + 1 + j].
      P: float[]
      /// Width 2 only (one tangent): per in-edge c, (p_c, p_c, 0, dp_c) at [4c], so that one
      /// edge is two 128-bit multiply-adds on (π, dπ) pairs, and 2·InSource.[c] (the source's
      /// offset in the sweep vectors) in InSource2.
      P2: float[]
      InSource2: int[]
      /// Per state: 1 − λ_z/Λ at [z·Width], tangents at [z·Width + 1 + j].
      Stay: float[]
      /// States with an edge into an absorbing vertex, and their exit rates (+ tangents) likewise.
      ExitState: int[]
      Exit: float[]
      MaxExit: float
      /// π_0 = α (+ tangents), state-major like the sweep's vectors.
      Start: float[]
      Defect: float
      DDefect: float[] }

/// The sweep's output: column 0 of Table holds v_k = π_k · s at [k], column 1 + j its tangent
/// along direction j at [(1 + j)·Steps + k] (one column contiguous: the window sums read each
/// column as a sequence), in units of 2^Exponents.[k] (true value = stored · 2^Exponents.[k]); LogMassEnd is the log of
/// the mass left in the chain at the last step (true units; it bounds every later step).
type internal SweepTable =
    { Table: float[]
      Width: int
      Steps: int
      Exponents: int[]
      Rescaled: bool
      LogMassEnd: float }

module internal UniformizationSweep =

    /// Sweep vectors whose largest entry falls below 2^−512 are multiplied by a power of two
    /// (exact), so a long sweep through a slowly draining chain never underflows to 0.
    let private rescaleBelow = 1.4916681462400413e-154 // 2^−512

    let private ln2 = Math.Log 2.0

    /// The chain for edge weights w, weight tangents dws (one array per direction) and Λ = scale.
    let uniformize (g: Graph) (w: float[]) (dws: float[][]) (scale: float) : Uniformized =
        let n = g.VertexCount
        let d = dws.Length
        let width = 1 + d
        let targets = g.Targets
        let isTransient = Array.init n (fun v -> v > 0 && g.OutDegree v > 0)
        let index = Array.create n -1
        let mutable count = 0
        for v in 0 .. n - 1 do
            if isTransient.[v] then
                index.[v] <- count
                count <- count + 1
        // In-edges by target; within a target by source state, then CSR order (deterministic).
        let inStart = Array.zeroCreate (count + 1)
        for v in 1 .. n - 1 do
            if isTransient.[v] then
                for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                    let z = targets.[e]
                    if isTransient.[z] then inStart.[index.[z] + 1] <- inStart.[index.[z] + 1] + 1
        for z in 0 .. count - 1 do inStart.[z + 1] <- inStart.[z + 1] + inStart.[z]
        let fill = Array.copy inStart
        let inSource = Array.zeroCreate inStart.[count]
        let p = Array.zeroCreate (inStart.[count] * width)
        let stay = Array.zeroCreate (count * width)
        let exitState = ResizeArray()
        let exitRows = ResizeArray()
        let mutable maxExit = 0.0
        for v in 1 .. n - 1 do
            if isTransient.[v] then
                let x = index.[v]
                let mutable lambda = 0.0
                let mutable exit = 0.0
                let mutable absorbs = false
                let dl = Array.zeroCreate d
                let dexit = Array.zeroCreate d
                for e in g.EdgeStart v .. g.EdgeEnd v - 1 do
                    lambda <- lambda + w.[e]
                    for j in 0 .. d - 1 do dl.[j] <- dl.[j] + dws.[j].[e]
                    let z = targets.[e]
                    if isTransient.[z] then
                        let c = fill.[index.[z]]
                        fill.[index.[z]] <- c + 1
                        inSource.[c] <- x
                        p.[c * width] <- w.[e] / scale
                        for j in 0 .. d - 1 do p.[c * width + 1 + j] <- dws.[j].[e] / scale
                    else
                        absorbs <- true
                        exit <- exit + w.[e]
                        for j in 0 .. d - 1 do dexit.[j] <- dexit.[j] + dws.[j].[e]
                stay.[x * width] <- 1.0 - lambda / scale
                for j in 0 .. d - 1 do stay.[x * width + 1 + j] <- -dl.[j] / scale
                maxExit <- max maxExit exit
                if absorbs then
                    exitState.Add x
                    exitRows.Add exit
                    exitRows.AddRange dexit
        // α and the defect from the start edges; tangents d(w/W) = (dw − (w/W)·dW)/W.
        let mutable total = 0.0
        let dtotal = Array.zeroCreate d
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
            total <- total + w.[e]
            for j in 0 .. d - 1 do dtotal.[j] <- dtotal.[j] + dws.[j].[e]
        let start = Array.zeroCreate (count * width)
        let mutable defect = 0.0
        let ddefect = Array.zeroCreate d
        for e in g.EdgeStart 0 .. g.EdgeEnd 0 - 1 do
            let z = targets.[e]
            if isTransient.[z] then start.[index.[z] * width] <- start.[index.[z] * width] + w.[e] / total
            else defect <- defect + w.[e] / total
            for j in 0 .. d - 1 do
                let dd = (dws.[j].[e] - w.[e] / total * dtotal.[j]) / total
                if isTransient.[z] then start.[index.[z] * width + 1 + j] <- start.[index.[z] * width + 1 + j] + dd
                else ddefect.[j] <- ddefect.[j] + dd
        let p2 =
            if width <> 2 then [||]
            else
                let a = Array.zeroCreate (4 * inSource.Length)
                for c in 0 .. inSource.Length - 1 do
                    a.[4 * c] <- p.[2 * c]
                    a.[4 * c + 1] <- p.[2 * c]
                    a.[4 * c + 3] <- p.[2 * c + 1]
                a
        // The sweep reads these without bounds checks: every in-edge's source is a state.
        for x in inSource do
            if x < 0 || x >= count then Fail.withMessage "internal error: an in-edge's source is not a transient state"
        let visit = Array.init count id |> Array.sortBy (fun z -> struct (inStart.[z + 1] - inStart.[z], z))
        { Count = count
          Visit = visit
          Width = width
          InStart = inStart
          InSource = inSource
          P = p
          P2 = p2
          InSource2 = (if width = 2 then inSource |> Array.map (fun x -> 2 * x) else [||])
          Stay = stay
          ExitState = exitState.ToArray()
          Exit = exitRows.ToArray()
          MaxExit = maxExit
          Start = start
          Defect = defect
          DDefect = ddefect }

    /// Entry k of every column: v_k = π_k · s and its tangents.
    let inline private emit (u: Uniformized) (pi: float[]) (table: float[]) (k: int) (rows: int) =
        let width = u.Width
        let exitState = u.ExitState
        let exit = u.Exit
        let mutable s = 0.0
        for i in 0 .. exitState.Length - 1 do s <- s + pi.[exitState.[i] * width] * exit.[i * width]
        table.[k] <- s
        for j in 1 .. width - 1 do
            let mutable ds = 0.0
            for i in 0 .. exitState.Length - 1 do
                let o = exitState.[i] * width
                ds <- ds + pi.[o + j] * exit.[i * width] + pi.[o] * exit.[i * width + j]
            table.[j * rows + k] <- ds

    /// One step π' = π P with tangents dπ' = dπ P + π dP; returns the largest entry of π'.
    let private step (u: Uniformized) (pi: float[]) (next: float[]) : float =
        let width = u.Width
        let inStart = u.InStart
        let inSource = u.InSource
        let p = u.P
        let stay = u.Stay
        let mutable top = 0.0
        if width = 2 then
            // One tangent (the common case): (π, dπ) as one 128-bit pair per state; per in-edge
            // acc += (π_x, dπ_x)·(p, p) + π_x·(0, dp). The value lane is a + π_x·p rounded as
            // the general branch rounds it, so a value is the same with or without its tangent.
            // Unchecked reads: `uniformize` sized pi/next/Stay to 2·Count, P2 to 4·(in-edges),
            // InStart to Count + 1, and every InSource entry is a state < Count (checked there).
            if pi.Length < 2 * u.Count || next.Length < 2 * u.Count then
                Fail.withMessage "internal error: sweep vectors shorter than the chain"
            // Raw references once (no per-read null or bounds checks inside the loops).
            let piRef = &MemoryMarshal.GetArrayDataReference pi
            let p2Ref = &MemoryMarshal.GetArrayDataReference u.P2
            let srcRef = &MemoryMarshal.GetArrayDataReference u.InSource2
            let startRef = &MemoryMarshal.GetArrayDataReference inStart
            let stayRef = &MemoryMarshal.GetArrayDataReference stay
            let visitRef = &MemoryMarshal.GetArrayDataReference u.Visit
            for zi in 0 .. u.Count - 1 do
                let z = Unsafe.Add(&visitRef, zi)
                let oz = 2 * z
                let pz = Unsafe.Add(&piRef, oz)
                let sz = Unsafe.Add(&stayRef, oz)
                let mutable acc =
                    Vector128.Create(pz * sz, Math.FusedMultiplyAdd(pz, Unsafe.Add(&stayRef, oz + 1), Unsafe.Add(&piRef, oz + 1) * sz))
                let c1 = Unsafe.Add(&startRef, z + 1)
                let mutable c = Unsafe.Add(&startRef, z)
                while c < c1 do
                    let ox = Unsafe.Add(&srcRef, c)
                    let x = Vector128.LoadUnsafe(&piRef, unativeint ox)
                    let t = Vector128.Create(Unsafe.Add(&piRef, ox)) * Vector128.LoadUnsafe(&p2Ref, unativeint (4 * c + 2))
                    acc <- acc + Vector128.FusedMultiplyAdd(x, Vector128.LoadUnsafe(&p2Ref, unativeint (4 * c)), t)
                    c <- c + 1
                let a = acc.ToScalar()
                next.[oz] <- a
                next.[oz + 1] <- acc.GetElement 1
                // a ≥ 0 (no NaN): a plain comparison
                if a > top then top <- a
        elif width = 1 then
            // No tangent (a log-likelihood alone); unchecked reads as above.
            if pi.Length < u.Count || next.Length < u.Count then
                Fail.withMessage "internal error: sweep vectors shorter than the chain"
            let piRef = &MemoryMarshal.GetArrayDataReference pi
            let pRef = &MemoryMarshal.GetArrayDataReference p
            let srcRef = &MemoryMarshal.GetArrayDataReference inSource
            let startRef = &MemoryMarshal.GetArrayDataReference inStart
            let stayRef = &MemoryMarshal.GetArrayDataReference stay
            let visitRef = &MemoryMarshal.GetArrayDataReference u.Visit
            for zi in 0 .. u.Count - 1 do
                let z = Unsafe.Add(&visitRef, zi)
                let mutable a = Unsafe.Add(&piRef, z) * Unsafe.Add(&stayRef, z)
                let c1 = Unsafe.Add(&startRef, z + 1)
                let mutable c = Unsafe.Add(&startRef, z)
                while c < c1 do
                    a <- a + Unsafe.Add(&piRef, Unsafe.Add(&srcRef, c)) * Unsafe.Add(&pRef, c)
                    c <- c + 1
                next.[z] <- a
                if a > top then top <- a
        else
            for z in 0 .. u.Count - 1 do
                let oz = z * width
                let c0 = inStart.[z]
                let c1 = inStart.[z + 1]
                let mutable a = pi.[oz] * stay.[oz]
                for c in c0 .. c1 - 1 do a <- a + pi.[inSource.[c] * width] * p.[c * width]
                next.[oz] <- a
                top <- max top a
                for j in 1 .. width - 1 do
                    let mutable da = Math.FusedMultiplyAdd(pi.[oz], stay.[oz + j], pi.[oz + j] * stay.[oz])
                    for c in c0 .. c1 - 1 do
                        let ox = inSource.[c] * width
                        let oc = c * width
                        da <- Math.FusedMultiplyAdd(pi.[ox + j], p.[oc], Math.FusedMultiplyAdd(pi.[ox], p.[oc + j], da))
                    next.[oz + j] <- da
        top

    /// v_k and its tangents for k = 0 .. steps − 1 (π_0 = α, π_{k+1} = π_k P), rescaled as
    /// described above.
    let sweep (u: Uniformized) (steps: int) : SweepTable =
        let width = u.Width
        let table = Array.zeroCreate (steps * width)
        let exps = Array.zeroCreate steps
        let mutable exponent = 0
        let mutable pi = Array.copy u.Start
        let mutable next = Array.zeroCreate pi.Length
        for k in 0 .. steps - 1 do
            emit u pi table k steps
            exps.[k] <- exponent
            if k < steps - 1 then
                let top = step u pi next
                if top > 0.0 && top < rescaleBelow then
                    let shift = -Math.ILogB top
                    let f = Math.ScaleB(1.0, shift)
                    for x in 0 .. next.Length - 1 do next.[x] <- next.[x] * f
                    exponent <- exponent - shift
                let tmp = pi
                pi <- next
                next <- tmp
        let mutable mass = 0.0
        for z in 0 .. u.Count - 1 do mass <- mass + pi.[z * width]
        { Table = table
          Width = width
          Steps = steps
          Exponents = exps
          Rescaled = exponent <> 0
          LogMassEnd = if mass > 0.0 then Math.Log mass + float exps.[steps - 1] * ln2 else Double.NegativeInfinity }
