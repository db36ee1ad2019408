using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Ptd.Host.Composition;

/// <summary>
/// Reads the URI schemes a plugin assembly exports (<c>[BlobStoreProvider("s3")]</c>) from its metadata, without loading
/// it: a process that needs only the local disk then never loads the AWS or Azure plugins, their load contexts or MEF
/// composition (a measurable part of a cold <c>ptd</c> run, see docs/PERFORMANCE.md).
/// </summary>
internal static class PluginManifest
{
    private const string AttributeNamespace = "Ptd.Storage";
    private const string AttributeName = "BlobStoreProviderAttribute";

    /// <summary>
    /// The schemes named by <c>BlobStoreProviderAttribute</c> on the assembly's types, with the full name of each type
    /// (nested types as <c>Outer+Inner</c>), in type order; empty when there is none (the caller then composes the
    /// assembly to find out, or to report why not).
    /// </summary>
    /// <exception cref="BadImageFormatException">The file is not a .NET assembly.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static IReadOnlyList<(string Scheme, string TypeName)> Schemes(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        if (!pe.HasMetadata) throw new BadImageFormatException("the file has no .NET metadata", assemblyPath);
        var md = pe.GetMetadataReader();
        var schemes = new List<(string, string)>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            foreach (var attributeHandle in md.GetTypeDefinition(typeHandle).GetCustomAttributes())
            {
                var attribute = md.GetCustomAttribute(attributeHandle);
                if (!IsProviderAttribute(md, attribute)) continue;
                var blob = md.GetBlobReader(attribute.Value);
                // Custom attribute blob: prolog 0x0001, then the constructor's one string argument.
                if (blob.Length < 2 || blob.ReadUInt16() != 1) continue;
                if (blob.ReadSerializedString() is { Length: > 0 } scheme) schemes.Add((scheme, FullName(md, typeHandle)));
            }
        }
        return schemes;
    }

    private static string FullName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var t = md.GetTypeDefinition(handle);
        var name = md.GetString(t.Name);
        var declaring = t.GetDeclaringType();
        if (!declaring.IsNil) return FullName(md, declaring) + "+" + name;
        var ns = md.GetString(t.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }

    private static bool IsProviderAttribute(MetadataReader md, CustomAttribute attribute)
    {
        // The constructor is a reference into Ptd.Storage.Abstractions (a MemberReference whose parent is a TypeReference).
        if (attribute.Constructor.Kind != HandleKind.MemberReference) return false;
        var ctor = md.GetMemberReference((MemberReferenceHandle)attribute.Constructor);
        if (ctor.Parent.Kind != HandleKind.TypeReference) return false;
        var type = md.GetTypeReference((TypeReferenceHandle)ctor.Parent);
        return md.StringComparer.Equals(type.Name, AttributeName) && md.StringComparer.Equals(type.Namespace, AttributeNamespace);
    }
}
