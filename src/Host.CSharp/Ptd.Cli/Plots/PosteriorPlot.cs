using System.Globalization;
using System.Text;
using Ptd.Core;
using Ptd.Host.Svgd;
using ScottPlot;
using SkiaSharp;

namespace Ptd.Cli.Plots;

/// <summary>
/// The picture of an SVGD run: per parameter, the posterior marginal (histogram of the final
/// particles, the true value as a vertical line when known) beside the particles' trajectories
/// over the iterations (from the run's history). PNG or SVG by the file's extension.
/// </summary>
public static class PosteriorPlot
{
    private const int PanelWidth = 560;
    private const int PanelHeight = 360;

    /// <summary>
    /// Null when text can be drawn, else a warning. The Skia build ptd ships
    /// (SkiaSharp.NativeAssets.Linux.NoDependencies) needs no fontconfig or other system library;
    /// it reads TrueType fonts from the system font directories, and without any the figure is
    /// drawn without text.
    /// </summary>
    public static string? FontProblem() =>
        SKTypeface.Default.GlyphCount > 0
            ? null
            : "no fonts were found, so the plot has no text; install a TrueType font (Debian: apt-get install fonts-dejavu-core)";

    /// <summary>A sans-serif family when the system has one (Skia's default is often a serif).</summary>
    private static void PreferSans()
    {
        var families = SKFontManager.Default.FontFamilies;
        var sans = new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }.FirstOrDefault(f => families.Contains(f));
        if (sans is not null) Fonts.Default = sans;
    }

    /// <summary>Writes the figure.</summary>
    /// <param name="result">The SVGD result (with a history for the trajectories).</param>
    /// <param name="path">A .png or .svg file.</param>
    /// <param name="truth">True parameter values, or null.</param>
    /// <exception cref="PtdException">The extension is neither .png nor .svg, or the file cannot be written.</exception>
    public static void Save(SvgdResult result, string path, IReadOnlyList<double>? truth)
    {
        ArgumentNullException.ThrowIfNull(result);
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".png" or ".svg"))
            throw new PtdException($"--plot {path}: the file must end in .png or .svg");
        int d = result.Parameters.Count;
        PreferSans();
        var panels = new List<Plot>();
        for (int k = 0; k < d; k++)
        {
            panels.Add(Marginal(result, k, truth?[k]));
            panels.Add(Trajectories(result, k, truth?[k]));
        }
        try
        {
            if (extension == ".png") SavePng(panels, path);
            else SaveSvg(panels, path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PtdException($"cannot write the plot '{path}': {ex.Message}", ex);
        }
    }

    private static Plot Marginal(SvgdResult result, int k, double? truth)
    {
        var p = result.Parameters[k];
        var values = result.Particles.Select(row => row[k]).ToArray();
        double lo = values.Min(), hi = values.Max();
        if (truth is { } t0)
        {
            lo = Math.Min(lo, t0);
            hi = Math.Max(hi, t0);
        }
        if (hi <= lo) hi = lo + Math.Max(1e-9, Math.Abs(lo) * 1e-3);
        double pad = 0.05 * (hi - lo);
        int bins = Math.Clamp((int)Math.Round(Math.Sqrt(values.Length) * 1.5), 8, 40);
        double width = (hi - lo + 2 * pad) / bins;
        var counts = new double[bins];
        foreach (var v in values) counts[Math.Clamp((int)((v - lo + pad) / width), 0, bins - 1)]++;
        var plot = new Plot();
        var bars = new List<Bar>();
        for (int b = 0; b < bins; b++)
            bars.Add(new Bar { Position = lo - pad + (b + 0.5) * width, Value = counts[b] / (values.Length * width), Size = width * 0.95, FillColor = Colors.SteelBlue.WithAlpha(0.75), LineWidth = 0 });
        plot.Add.Bars(bars);
        var mean = plot.Add.VerticalLine(p.Mean);
        mean.Color = Colors.Black;
        mean.LinePattern = LinePattern.Dashed;
        mean.LegendText = $"mean {Num(p.Mean)}";
        if (truth is { } t)
        {
            var line = plot.Add.VerticalLine(t);
            line.Color = Colors.Crimson;
            line.LineWidth = 2;
            line.LegendText = $"truth {Num(t)}";
        }
        plot.Title($"{p.Name}: posterior ({values.Length} particles)");
        plot.XLabel(p.Name);
        plot.YLabel("density");
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot Trajectories(SvgdResult result, int k, double? truth)
    {
        var p = result.Parameters[k];
        var plot = new Plot();
        var history = result.History;
        if (history.Count >= 2)
        {
            var iterations = history.Select(s => (double)s.Iteration).ToArray();
            int particles = history[0].Particles.Length;
            var palette = new ScottPlot.Palettes.Category10();
            for (int i = 0; i < particles; i++)
            {
                var ys = history.Select(s => s.Particles[i][k]).ToArray();
                var line = plot.Add.ScatterLine(iterations, ys);
                line.Color = palette.GetColor(i).WithAlpha(0.55);
                line.LineWidth = 1;
                line.MarkerSize = 0;
            }
        }
        else
        {
            plot.Add.Text("no history (run more than one snapshot)", 0, 0);
        }
        if (truth is { } t)
        {
            var line = plot.Add.HorizontalLine(t);
            line.Color = Colors.Crimson;
            line.LineWidth = 2;
        }
        plot.Title($"{p.Name}: particle trajectories");
        plot.XLabel("iteration");
        plot.YLabel(p.Name);
        return plot;
    }

    private static void SavePng(List<Plot> panels, string path)
    {
        int rows = panels.Count / 2;
        var info = new SKImageInfo(2 * PanelWidth, rows * PanelHeight);
        using var surface = SKSurface.Create(info);
        surface.Canvas.Clear(SKColors.White);
        for (int i = 0; i < panels.Count; i++)
        {
            var bytes = panels[i].GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png);
            using var bitmap = SKBitmap.Decode(bytes);
            surface.Canvas.DrawBitmap(bitmap, (i % 2) * PanelWidth, (i / 2) * PanelHeight);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        var temp = path + ".tmp";
        using (var stream = File.Create(temp)) data.SaveTo(stream);
        File.Move(temp, path, overwrite: true);
    }

    private static void SaveSvg(List<Plot> panels, string path)
    {
        int rows = panels.Count / 2;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{2 * PanelWidth}\" height=\"{rows * PanelHeight}\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        for (int i = 0; i < panels.Count; i++)
        {
            var inner = panels[i].GetSvgXml(PanelWidth, PanelHeight);
            int start = inner.IndexOf("<svg", StringComparison.Ordinal);
            inner = inner[start..];
            // Nest each panel as its own positioned <svg>.
            inner = "<svg x=\"" + ((i % 2) * PanelWidth).ToString(CultureInfo.InvariantCulture) + "\" y=\"" +
                    ((i / 2) * PanelHeight).ToString(CultureInfo.InvariantCulture) + "\"" + inner[4..];
            svg.Append(inner).Append('\n');
        }
        svg.Append("</svg>\n");
        File.WriteAllText(path, svg.ToString());
    }

    private static string Num(double x) => x.ToString("G4", CultureInfo.InvariantCulture);
}
