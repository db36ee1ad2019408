using System.Text.Json.Nodes;
using Ptd.Host.Models;
using Ptd.Host.Kernels;
using Ptd.Host.Traces;

namespace Ptd.Cli.Commands;

/// <summary><c>ptd loglik MODEL --data data.txt --theta ... [--grad]</c>: log-likelihood of observations.</summary>
public sealed class LoglikCommand : ICommand
{
    /// <inheritdoc />
    public string Name => "loglik";

    /// <inheritdoc />
    public string Summary => "log-likelihood of observed absorption times (and its exact gradient)";

    /// <inheritdoc />
    public string Usage =>
        "ptd loglik MODEL --data FILE [--theta 1,2,4] [--grad] [--json] [--no-cache] [--verbose]\n\n" +
        "  MODEL     a model file, a built-in spec, or a trace file\n" +
        "  --data    one observation per line: an absorption time (continuous model) or a whole number of\n" +
        "            jumps (discrete model); blank lines and # comments are ignored\n" +
        "  --theta   parameter values (required when the model has parameters)\n" +
        "  --grad    also the exact gradient ∂/∂θ_1 … ∂/∂θ_d of the log-likelihood\n" +
        "  --json    print {\"loglik\": x, \"gradient\": [...], \"observations\": n}\n" +
        TraceCli.NoCacheUsage;

    /// <inheritdoc />
    public int Run(IReadOnlyList<string> argv, TextWriter stdout, TextWriter stderr)
    {
        var args = Args.Parse(Name, argv, ["--data", "--theta"], ["--grad", "--json", TraceCli.NoCache]);
        var output = new Output(stdout, stderr, args.Has("--verbose"));
        var source = args.Positional("MODEL");
        var dataFile = args.Get("--data") ?? throw new UsageException("missing --data FILE (one observation per line)");
        using var store = TraceCli.OpenStore(args, output);
        var model = output.Stage("load model", () => PhaseTypeModel.Load(source, store));
        var theta = Theta.For(model.Graph, args);
        var data = output.Stage($"read {dataFile}", () => ObservationFile.Read(dataFile, model.Graph.IsDiscrete).ToArray());
        output.Progress($"{data.Length:N0} observation(s)");
        model.Graph.Weights(theta); // bad θ fails before any recording
        TraceCli.Trace(model, output);
        var withGradient = args.Has("--grad");
        var result = output.Stage(withGradient ? "log-likelihood and gradient" : "log-likelihood",
            () => withGradient ? model.LogLikelihoodWithGradient(data, theta) : new Ptd.Core.LikelihoodResult(model.LogLikelihood(data, theta), []));
        if (args.Has("--json"))
        {
            var json = new JsonObject { ["loglik"] = output.Numbers([result.LogLikelihood])[0]?.DeepClone() };
            if (withGradient) json["gradient"] = output.Numbers(result.Gradient);
            json["observations"] = data.Length;
            output.Json(json);
        }
        else
        {
            stdout.WriteLine($"observations  {data.Length}");
            stdout.WriteLine($"loglik        {Output.Num(result.LogLikelihood)}");
            if (withGradient)
                for (var i = 0; i < result.Gradient.Length; i++)
                    stdout.WriteLine($"d/dθ{i + 1,-9} {Output.Num(result.Gradient[i])}");
        }
        TraceCli.Statistics(store, output);
        return 0;
    }
}
