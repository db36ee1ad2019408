using Microsoft.Extensions.Options;
using Ptd.Core;

namespace Ptd.Hosting;

/// <summary>
/// Validates <see cref="PtdPipelineOptions"/> by building the cache options and checking the inference settings (run at
/// start-up through <c>ValidateOnStart</c>).
/// </summary>
internal sealed class PtdPipelineOptionsValidator : IValidateOptions<PtdPipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PtdPipelineOptions options)
    {
        try
        {
            PtdCacheOptionsBuilder.Build(options);
            (options.Inference ?? new PtdInferenceSettings()).Validate();
            foreach (var d in options.PluginDirectories)
                if (string.IsNullOrWhiteSpace(d)) return ValidateOptionsResult.Fail("Ptd:PluginDirectories has an empty entry");
            return ValidateOptionsResult.Success;
        }
        catch (Exception e) when (e is PtdException or ArgumentException)
        {
            return ValidateOptionsResult.Fail($"Ptd configuration: {e.Message}");
        }
    }
}
