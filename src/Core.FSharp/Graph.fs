namespace Ptd.Core

open System

/// An immutable phase-type graph in compressed-sparse-row form.
///
/// Vertex 0 is the start vertex: instantaneous, its out-edges are the initial distribution α
/// (normalized by their sum). Every other vertex has an integer state vector of length
/// `StateLength`. A vertex without out-edges is absorbing. Every edge weight is
/// `base + coef · θ` (coef has `ParamLength` entries; an unparameterized graph has none), so one
/// type serves constant and parameterized models.
[<Sealed; AllowNullLiteral>]
type Graph
    internal
    (
        discrete: bool,
        stateLength: int,
        paramLength: int,
        states: int[][],
        edgeStart: int[],
        edgeTarget: int[],
        edgeBase: float[],
        edgeCoef: float[]
    ) =

    member _.IsDiscrete = discrete
    member _.StateLength = stateLength
    member _.ParamLength = paramLength
    member _.VertexCount = states.Length
    member _.EdgeCount = edgeTarget.Length
    member _.IsParameterized = paramLength > 0

    /// First edge index of vertex v; edges of v are [EdgeStart v, EdgeEnd v).
    member _.EdgeStart(v: int) = edgeStart.[v]
    member _.EdgeEnd(v: int) = edgeStart.[v + 1]
    member _.OutDegree(v: int) = edgeStart.[v + 1] - edgeStart.[v]
    member _.IsAbsorbing(v: int) = v <> 0 && edgeStart.[v + 1] = edgeStart.[v]
    member _.Target(e: int) = edgeTarget.[e]
    member _.Base(e: int) = edgeBase.[e]
    member _.Coef(e: int, k: int) = edgeCoef.[e * paramLength + k]

    /// The state vector of vertex v (a copy; the start vertex has an empty state).
    member _.State(v: int) : int[] = Array.copy states.[v]

    // Internal raw access for the algorithms in this assembly (no copies on hot paths).
    member internal _.States = states
    member internal _.Offsets = edgeStart
    member internal _.Targets = edgeTarget
    member internal _.Bases = edgeBase
    member internal _.Coefs = edgeCoef

    /// The concrete edge weights for parameters θ: base + coef·θ (θ ignored when ParamLength = 0).
    /// Throws when θ has the wrong length or a weight comes out negative or not finite.
    member g.Weights(theta: float[]) : float[] =
        let theta = if isNull theta then [||] else theta
        if paramLength > 0 && theta.Length <> paramLength then
            Fail.format
                "θ has %d value(s) but the model has %d parameter(s); pass --theta with %d comma-separated numbers"
                theta.Length paramLength paramLength
        if paramLength = 0 && theta.Length > 0 then
            Fail.format "θ was given (%d value(s)) but the model has no parameters" theta.Length
        for k in 0 .. theta.Length - 1 do
            if not (Double.IsFinite theta.[k]) then
                Fail.format "θ[%d] = %g is not a finite number" k theta.[k]
        let at = if paramLength = 0 then "" else sprintf " at θ = [%s]" (String.Join(", ", theta))
        let w = Array.copy edgeBase
        if paramLength > 0 then
            for e in 0 .. w.Length - 1 do
                let mutable s = w.[e]
                let o = e * paramLength
                for k in 0 .. paramLength - 1 do
                    s <- s + edgeCoef.[o + k] * theta.[k]
                w.[e] <- s
        for v in 0 .. states.Length - 1 do
            let mutable total = 0.0
            for e in edgeStart.[v] .. edgeStart.[v + 1] - 1 do
                let x = w.[e]
                if not (Double.IsFinite x) || x < 0.0 then
                    Fail.format
                        "edge %d (vertex %d -> %d) has weight %g%s; weights must be finite and non-negative — check the parameter values or the edge's base/coefficients"
                        e v edgeTarget.[e] x at
                total <- total + x
            if total = 0.0 && edgeStart.[v + 1] > edgeStart.[v] then
                Fail.format
                    "vertex %d has out-edges but their weights sum to 0%s; it could never be left — choose θ so that at least one out-edge is positive"
                    v at
            if discrete && v <> 0 && total > 1.0 + 1e-12 then
                Fail.format
                    "vertex %d: out-probabilities sum to %g > 1%s; a discrete model's out-edges are probabilities (the self-loop is the missing mass)"
                    v total at
        w

    override g.ToString() =
        sprintf "Graph(%s, %d vertices, %d edges, %d parameter(s))"
            (if discrete then "discrete" else "continuous") states.Length edgeTarget.Length paramLength
