namespace Ptd.Core

open System
open System.Collections.Generic

/// One transition returned by a model callback: the next state and its weight, either constant
/// or base + coef·θ.
[<Struct>]
type Transition =
    { Target: int[]
      Base: float
      Coef: float[] }

    /// A transition with a constant weight (rate, or probability for a discrete model).
    static member Constant(target: int[], weight: float) = { Target = target; Base = weight; Coef = null }
    /// A transition with weight base + coef·θ.
    static member Parameterized(target: int[], baseWeight: float, coef: float[]) =
        { Target = target; Base = baseWeight; Coef = coef }

/// Builds the state space of a model from a callback `state -> transitions` (algorithms.md §1):
/// a worklist in discovery order, so acyclic models come out numbered topologically.
module Builder =

    /// Builds a graph. `initial` are the start edges (α); `transitions` is called once per state.
    let fromCallback
        (stateLength: int)
        (paramLength: int)
        (discrete: bool)
        (initial: seq<Transition>)
        (transitions: int[] -> seq<Transition>)
        : Graph =
        let b = GraphBuilder(stateLength, paramLength, discrete)
        let zero = Array.zeroCreate paramLength
        let add from (t: Transition) =
            if isNull t.Target then Fail.format "the model callback returned a transition with no target state (from vertex %d)" from
            let target = b.FindOrCreate t.Target
            if from <> 0 && target = from then
                Fail.format "the model callback returned a transition from state [%s] to itself; self-loops are not allowed (for a discrete model the self-loop probability is implied)"
                    (String.Join(", ", t.Target))
            b.AddEdge(from, target, t.Base, (if isNull t.Coef then zero else t.Coef))
        for t in initial do add 0 t
        let mutable v = 1
        while v < b.VertexCount do
            let state = b.State v
            let ts =
                try transitions state
                with
                | :? PtdException -> reraise ()
                | ex -> raise (PtdException(sprintf "the model callback failed on state [%s]: %s" (String.Join(", ", state)) ex.Message, ex))
            if not (isNull (box ts)) then
                for t in ts do add v t
            v <- v + 1
        b.Build()

    /// C#-friendly overload taking a delegate.
    let FromCallback
        (stateLength: int, paramLength: int, discrete: bool, initial: IEnumerable<Transition>,
         transitions: Func<int[], IEnumerable<Transition>>) : Graph =
        if isNull transitions then Fail.withMessage "transitions callback must not be null"
        fromCallback stateLength paramLength discrete initial (fun s -> transitions.Invoke s)
