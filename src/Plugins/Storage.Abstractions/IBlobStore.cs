namespace Ptd.Storage;

/// <summary>Placeholder: the storage plugin contract is defined by the storage issue.</summary>
public interface IBlobStore
{
}
