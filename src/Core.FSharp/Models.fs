namespace Ptd.Core

open System

/// Built-in models (algorithms.md §9). Convention: a rate that is given is a constant; a rate that
/// is omitted (`None`) becomes a parameter θ.
module Models =

    /// Kingman coalescent, block-counting state: a_i = number of lineages subtending i samples.
    /// With `rate = None` it has one parameter θ = the pair-coalescence rate (base 0, coef [count]).
    /// Written straight against the GraphBuilder (the same worklist as Builder.fromCallback) with a
    /// scratch state and no allocation per transition, because n = 50 has three million of them.
    let coalescent (n: int) (rate: float option) : Graph =
        if n < 2 then Fail.format "coalescent needs n ≥ 2 samples (got n = %d)" n
        rate |> Option.iter (fun r -> if not (Double.IsFinite r) || r <= 0.0 then Fail.format "rate must be a positive finite number (got %g)" r)
        let paramLength = if rate.IsSome then 0 else 1
        let b = GraphBuilder(n, paramLength, false)
        let start = Array.zeroCreate n
        start.[0] <- n
        b.AddStartEdge(b.FindOrCreate start, 1.0)
        let next = Array.zeroCreate n
        let coef = Array.zeroCreate paramLength
        let occupied = Array.zeroCreate n
        let mutable v = 1
        while v < b.VertexCount do
            let a = b.StateView v
            // Only classes with lineages can merge: a state has few of them (≤ √(2n)).
            let mutable k = 0
            for i in 0 .. n - 1 do
                if a.[i] > 0 then
                    occupied.[k] <- i
                    k <- k + 1
            for x in 0 .. k - 1 do
                let i = occupied.[x]
                for y in x .. k - 1 do
                    let j = occupied.[y]
                    if i + j + 1 < n then
                        let count =
                            if i = j then float a.[i] * float (a.[i] - 1) / 2.0
                            else float a.[i] * float a.[j]
                        if count > 0.0 then
                            Array.blit a 0 next 0 n
                            next.[i] <- next.[i] - 1
                            next.[j] <- next.[j] - 1
                            next.[i + j + 1] <- next.[i + j + 1] + 1
                            let target = b.FindOrCreate next
                            match rate with
                            | Some r -> b.AddEdge(v, target, count * r, coef)
                            | None ->
                                coef.[0] <- count
                                b.AddEdge(v, target, 0.0, coef)
            // the last merge (two lineages into the MRCA) lands on a_n = 1: absorbing
            v <- v + 1
        b.Build()

    let private checkRate name (r: float) =
        if not (Double.IsFinite r) || r <= 0.0 then Fail.format "%s must be a positive finite number (got %g)" name r

    /// Rabbit islands, constant form: state (left, right), start (R, 0). A rabbit jumps at rate
    /// `jump` (regardless of the count, as in the C library); floods empty an island.
    let rabbits (r: int) (floodLeft: float) (floodRight: float) : Graph =
        if r < 1 then Fail.format "rabbits needs R ≥ 1 (got R = %d)" r
        checkRate "floodLeft" floodLeft
        checkRate "floodRight" floodRight
        Builder.fromCallback 2 0 false [ Transition.Constant([| r; 0 |], 1.0) ] (fun s ->
            let l, rr = s.[0], s.[1]
            [ if l > 0 then
                  Transition.Constant([| l - 1; rr + 1 |], 1.0)
                  Transition.Constant([| 0; rr |], floodLeft)
              if rr > 0 then
                  Transition.Constant([| l + 1; rr - 1 |], 1.0)
                  Transition.Constant([| l; 0 |], floodRight) ])

    /// Rabbit islands, 3-parameter form: θ = (jump rate per rabbit, flood left, flood right);
    /// jump edges have coefficient (rabbits on the source island, 0, 0).
    let rabbits3 (r: int) : Graph =
        if r < 1 then Fail.format "rabbits needs R ≥ 1 (got R = %d)" r
        Builder.fromCallback 2 3 false [ Transition.Constant([| r; 0 |], 1.0) ] (fun s ->
            let l, rr = s.[0], s.[1]
            [ if l > 0 then
                  Transition.Parameterized([| l - 1; rr + 1 |], 0.0, [| float l; 0.0; 0.0 |])
                  Transition.Parameterized([| 0; rr |], 0.0, [| 0.0; 1.0; 0.0 |])
              if rr > 0 then
                  Transition.Parameterized([| l + 1; rr - 1 |], 0.0, [| float rr; 0.0; 0.0 |])
                  Transition.Parameterized([| l; 0 |], 0.0, [| 0.0; 0.0; 1.0 |]) ])

    /// Erlang(k, rate): k exponential phases in a row. `rate = None`: one parameter θ = rate.
    let erlang (k: int) (rate: float option) : Graph =
        if k < 1 then Fail.format "erlang needs k ≥ 1 phases (got k = %d)" k
        rate |> Option.iter (checkRate "rate")
        let paramLength = if rate.IsSome then 0 else 1
        Builder.fromCallback 1 paramLength false [ Transition.Constant([| k |], 1.0) ] (fun s ->
            if s.[0] = 0 then []
            else
                let next = [| s.[0] - 1 |]
                match rate with
                | Some r -> [ Transition.Constant(next, r) ]
                | None -> [ Transition.Parameterized(next, 0.0, [| 1.0 |]) ])

    /// Exponential(rate) = Erlang(1, rate).
    let exponential (rate: float option) : Graph = erlang 1 rate

    /// Structured coalescent of n lineages in two demes with migration (cyclic, 2 parameters):
    /// θ = (pair-coalescence rate within a deme, migration rate per lineage). State (a, b) =
    /// lineages in deme 1 and 2; all n start in deme 1; absorbing when one lineage is left.
    /// For n = 2, E[T] = 2/θ₁ from the same deme (independent of migration).
    let twoDeme (n: int) : Graph =
        if n < 2 then Fail.format "twodeme needs n ≥ 2 lineages (got n = %d)" n
        Builder.fromCallback 2 2 false [ Transition.Constant([| n; 0 |], 1.0) ] (fun s ->
            let a, b = s.[0], s.[1]
            if a + b <= 1 then []
            else
                [ if a >= 2 then Transition.Parameterized([| a - 1; b |], 0.0, [| float (a * (a - 1)) / 2.0; 0.0 |])
                  if b >= 2 then Transition.Parameterized([| a; b - 1 |], 0.0, [| float (b * (b - 1)) / 2.0; 0.0 |])
                  if a >= 1 then Transition.Parameterized([| a - 1; b + 1 |], 0.0, [| 0.0; float a |])
                  if b >= 1 then Transition.Parameterized([| a + 1; b - 1 |], 0.0, [| 0.0; float b |]) ])
