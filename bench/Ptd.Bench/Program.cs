using BenchmarkDotNet.Running;
using Ptd.Bench;

// `dotnet run -c Release --project bench/Ptd.Bench -- scale [name]` runs the scale harness (each target
// in a fresh process: wall time and peak memory); anything else goes to BenchmarkDotNet's switcher
// (e.g. `-- --filter '*Distribution*'`, `-- --filter '*LocalHit*' '*HitVersusRecord*'`).
if (args.Length > 0 && args[0] == "scale")
    return ScaleHarness.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "scale-child")
    return ScaleHarness.Child(args[1]);
// `-- remote`: the loopback remote-hit benchmarks with Azurite, moto and s3rver started (and stopped) here.
if (args.Length > 0 && args[0] == "remote")
    return RemoteHarness.Run(args.Skip(1).ToArray());
// `-- kernels [scenario]`: time to the first SVGD iteration in fresh processes, cold vs warm caches.
if (args.Length > 0 && args[0] == "kernels")
    return KernelHarness.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "kernels-child")
    return KernelHarness.Child(args[1], args[2]);
// `-- vacuum [entries] [repeats]`: vacuum of an old local generation, prefix delete vs list + delete.
if (args.Length > 0 && args[0] == "vacuum")
    return VacuumHarness.Run(args.Skip(1).ToArray());
// `-- replay [rounds]`: replay vs rebuild + eliminate, interleaved rounds, wall and process CPU (supplements TraceReplayBenchmarks).
if (args.Length > 0 && args[0] == "replay")
    return ReplayHarness.Run(args.Skip(1).ToArray());
// `-- euler-accuracy [maxK] [repeats]`: phasic's Euler densities and central-difference gradient at granularities
// 1024·4^k against our exact log-likelihood + gradient (errors and times side by side; supplements TraceLikelihoodBenchmarks).
if (args.Length > 0 && args[0] == "euler-accuracy")
    return EulerAccuracyHarness.Run(args.Skip(1).ToArray());
// `-- likelihood [rounds]`: Euler central differences vs exact LL + gradient, alternating rounds, medians (supplements TraceLikelihoodBenchmarks).
if (args.Length > 0 && args[0] == "likelihood")
    return LikelihoodHarness.Run(args.Skip(1).ToArray());
BenchmarkSwitcher.FromAssembly(typeof(ScaleHarness).Assembly).Run(args);
return 0;
