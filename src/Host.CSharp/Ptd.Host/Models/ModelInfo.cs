namespace Ptd.Host.Models;

/// <summary>Structural facts about a model (what <c>ptd info</c> prints).</summary>
/// <param name="Vertices">Vertices including the start vertex.</param>
/// <param name="Edges">Edges including the start edges.</param>
/// <param name="AbsorbingStates">Vertices without out-edges.</param>
/// <param name="TransientStates">Non-start vertices with out-edges (the phases of the matrix form).</param>
/// <param name="IsAcyclic">True when no state can be revisited.</param>
/// <param name="StronglyConnectedComponents">Number of strongly-connected components.</param>
/// <param name="LargestComponent">Vertices in the largest strongly-connected component.</param>
/// <param name="Parameters">Length of θ (0 for a model with constant weights).</param>
/// <param name="StateLength">Length of every state vector.</param>
/// <param name="IsDiscrete">True for a discrete phase-type model (DPH).</param>
public sealed record ModelInfo(
    int Vertices,
    int Edges,
    int AbsorbingStates,
    int TransientStates,
    bool IsAcyclic,
    int StronglyConnectedComponents,
    int LargestComponent,
    int Parameters,
    int StateLength,
    bool IsDiscrete);
