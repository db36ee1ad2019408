// SVGD inference from C# in a few lines: data simulated from Kingman's coalescent (n = 6) at a known θ, then the
// posterior of θ by SVGD on the exact likelihood, printed next to the truth.
//   dotnet run --project examples/SvgdConsole
// The likelihood kernel is built in memory here; pass `Registry = new KernelRegistry(ArtifactCache.FromEnvironment())`
// in InferenceOptions to keep it in the cache tiers for the next process (docs/inference.md).
using System.Globalization;
using Ptd.Host.Kernels;
using Ptd.Host.Models;
using Ptd.Host.Svgd;

const double truth = 1.5;                                              // pair-coalescence rate θ
var model = PhaseTypeModel.Load("coalescent:n=6");                     // or a model file (docs/model-format.md)
var data = Observations.FromValues(model.Sample(300, [truth], seed: 7)); // 300 times to the MRCA

var result = await InferenceService.RunAsync(model.Graph, data, new InferenceOptions
{
    Svgd = new SvgdOptions
    {
        ParticleCount = 32,
        Iterations = 200,
        StepSize = 0.1,
        Schedule = StepSchedule.Exponential,                           // let the particles settle: η → 10 % of η
        ExponentialDecay = Math.Pow(0.1, 1.0 / 200),
        Priors = ParameterPrior.ParseList("gamma:2,1"),
        Seed = 1,
    },
});

var p = result.Svgd.Parameters[0];
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"posterior of θ: mean {p.Mean:F4}, sd {p.Sd:F4}, 95% interval [{p.Q025:F4}, {p.Q975:F4}]; truth {truth}"));
Console.WriteLine($"likelihood kernel: {result.LikelihoodKernel}; {result.Svgd.Iterations} iterations in {result.Elapsed.TotalSeconds:F1} s");
foreach (var w in result.Svgd.Diagnostics.Warnings) Console.WriteLine($"warning: {w}");
