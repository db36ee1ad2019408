using System.Text;
using System.Text.Json;

namespace Ptd.Host.Svgd;

/// <summary>Writes <see cref="SvgdResult"/> with an explicit schema (stable names, no reflection).</summary>
internal static class SvgdJson
{
    public static string Write(SvgdResult result, bool indented)
    {
        using var stream = new MemoryStream();
        Write(result, stream, indented);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static void Write(SvgdResult result, Stream stream, bool indented)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented });
        w.WriteStartObject();
        w.WriteStartArray("parameters");
        foreach (var p in result.Parameters)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteString("transform", p.Transform);
            if (p.Prior is null) w.WriteNull("prior");
            else w.WriteString("prior", p.Prior);
            Number(w, "mean", p.Mean);
            Number(w, "sd", p.Sd);
            Number(w, "q025", p.Q025);
            Number(w, "q50", p.Q50);
            Number(w, "q975", p.Q975);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Matrix(w, "particles", result.Particles);
        Matrix(w, "particlesPhi", result.ParticlesPhi);
        Vector(w, "logPosterior", result.LogPosterior);
        w.WriteNumber("iterations", result.Iterations);
        w.WriteNumber("seed", result.Seed);

        var d = result.Diagnostics;
        w.WriteStartObject("diagnostics");
        Number(w, "stepNormTrend", d.StepNormTrend);
        Number(w, "directionNormTrend", d.DirectionNormTrend);
        w.WriteBoolean("collapsed", d.Collapsed);
        w.WriteStartArray("warnings");
        foreach (string s in d.Warnings) w.WriteStringValue(s);
        w.WriteEndArray();
        Vector(w, "initialSpreadPerParameter", d.InitialSpreadPerParameter);
        Vector(w, "finalSpreadPerParameter", d.FinalSpreadPerParameter);
        Vector(w, "stepNorms", d.StepNorms);
        Vector(w, "directionNorms", d.DirectionNorms);
        Vector(w, "spreads", d.Spreads);
        Vector(w, "bandwidthsSquared", d.BandwidthsSquared);
        w.WriteEndObject();

        w.WriteStartArray("history");
        foreach (var s in result.History)
        {
            w.WriteStartObject();
            w.WriteNumber("iteration", s.Iteration);
            Number(w, "meanLogPosterior", s.MeanLogPosterior);
            Matrix(w, "particles", s.Particles);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double x)
    {
        if (double.IsFinite(x)) w.WriteNumber(name, x);
        else w.WriteNull(name);
    }

    private static void Value(Utf8JsonWriter w, double x)
    {
        if (double.IsFinite(x)) w.WriteNumberValue(x);
        else w.WriteNullValue();
    }

    private static void Vector(Utf8JsonWriter w, string name, double[] xs)
    {
        w.WriteStartArray(name);
        foreach (double x in xs) Value(w, x);
        w.WriteEndArray();
    }

    private static void Matrix(Utf8JsonWriter w, string name, double[][] rows)
    {
        w.WriteStartArray(name);
        foreach (var row in rows)
        {
            w.WriteStartArray();
            foreach (double x in row) Value(w, x);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }
}
