namespace Ptd.Host.Composition;

/// <summary>A storage provider known to a <see cref="StorageProviderRegistry"/>.</summary>
/// <param name="Scheme">The URI scheme it opens.</param>
/// <param name="Source">The plugin assembly path, or <c>in-process</c> for registered instances.</param>
public sealed record StorageProviderInfo(string Scheme, string Source);

/// <summary>A plugin that could not be used; discovery carries on with the others.</summary>
/// <param name="Path">The directory or assembly concerned.</param>
/// <param name="Message">What went wrong and what to do about it.</param>
public sealed record PluginLoadError(string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Path}: {Message}";
}
