using BenchmarkDotNet.Running;
using Ptd.Bench;

// `dotnet run -c Release --project bench/Ptd.Bench -- scale [name]` runs the scale harness (each target
// in a fresh process: wall time and peak memory); anything else goes to BenchmarkDotNet's switcher
// (e.g. `-- --filter '*Distribution*'`).
if (args.Length > 0 && args[0] == "scale")
    return ScaleHarness.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "scale-child")
    return ScaleHarness.Child(args[1]);
// `-- kernels [scenario]`: time to the first SVGD iteration in fresh processes, cold vs warm caches.
if (args.Length > 0 && args[0] == "kernels")
    return KernelHarness.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "kernels-child")
    return KernelHarness.Child(args[1], args[2]);
BenchmarkSwitcher.FromAssembly(typeof(ScaleHarness).Assembly).Run(args);
return 0;
