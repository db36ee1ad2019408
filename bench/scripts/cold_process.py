#!/usr/bin/env python3
"""Where a cold `ptd moments MODEL` process spends its time: cache hit vs miss (record) vs --no-cache.

Usage: python3 bench/scripts/cold_process.py [--repeats N] [LABEL=]PTD_DLL ...

Each repeat runs, interleaved so that load changes hit all builds and modes alike: a miss (fresh empty PTD_CACHE_DIR),
a hit (a directory filled once beforehand) and --no-cache, as separate `dotnet PTD_DLL moments ... --verbose`
processes. Give two builds (e.g. before=/old/ptd.dll after=src/Host.CSharp/Ptd.Cli/bin/Release/net10.0/ptd.dll)
to compare them side by side.
Prints medians of the wall time per process and of the stages ptd reports with --verbose (stages that an older
ptd does not report are left empty), plus the load average. Nothing here asserts a time.
"""
import os, re, statistics, subprocess, sys, tempfile, time

MODELS = [("coalescent n=30", ["coalescent:n=30", "--theta", "1"]),
          ("rabbits3 R=200", ["rabbits3:R=200", "--theta", "1,2,4"])]

STAGES = {
    "start": re.compile(r"process start → command: ([\d.]+) ms"),
    "open cache": re.compile(r"open cache: done in ([\d.]+) ms"),
    "load model": re.compile(r"load model: done in ([\d.]+) ms"),
    "trace": re.compile(r"\] trace: done in ([\d.]+) ms"),
    "read+verify": re.compile(r"hit in .*?: read ([\d.]+) ms"),
    "decode": re.compile(r"hit in .*?decode ([\d.]+) ms"),
    "record": re.compile(r"recorded in ([\d.]+) ms"),
    "evaluate": re.compile(r"evaluate: done in ([\d.]+) ms"),
    "moments": re.compile(r"moments: done in ([\d.]+) ms"),
    "first line": re.compile(r"^\[\s*([\d.]+)s\]"),
}


def run(dll, args, cache_dir, extra):
    env = dict(os.environ, PTD_CACHE_DIR=cache_dir, PTD_CACHE_STATS="off", PTD_CACHE_CONFIG="", PTD_PLUGIN_PATH="")
    env.pop("PTD_CACHE", None)
    t0 = time.perf_counter()
    p = subprocess.run(["dotnet", dll, "moments", *args, "--verbose", *extra], env=env, capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        sys.exit(f"ptd failed ({p.returncode}): {p.stderr}")
    found = {"wall": wall}
    for name, rx in STAGES.items():
        m = rx.search(p.stderr) if name != "first line" else rx.search(p.stderr.splitlines()[0] if p.stderr else "")
        if m:
            found[name] = float(m.group(1)) * (1000 if name == "first line" else 1)
    return found


def main():
    argv = sys.argv[1:]
    repeats = 5
    if argv[:1] == ["--repeats"]:
        repeats, argv = int(argv[1]), argv[2:]
    builds = []
    for a in argv:
        label, _, path = a.rpartition("=")
        builds.append((label or os.path.basename(a), os.path.abspath(path)))
    root = tempfile.mkdtemp(prefix="ptd-cold-")
    print(f"# {repeats} repeats; builds: " + ", ".join(f"{l} = {p}" for l, p in builds))
    print(f"# load average before: {os.getloadavg()}")
    keys = ["wall", "start", "first line", "open cache", "load model", "trace", "read+verify", "decode", "record", "evaluate", "moments"]
    for model, args in MODELS:
        slug = model.replace(" ", "-").replace("=", "")
        for label, dll in builds:
            run(dll, args, os.path.join(root, f"warm-{label}-{slug}"), [])  # fills the hit directory
        results = {(label, mode): [] for label, _ in builds for mode in ("miss", "hit", "no-cache")}
        for i in range(repeats):
            for label, dll in builds:
                results[(label, "miss")].append(run(dll, args, os.path.join(root, f"miss-{label}-{slug}-{i}"), []))
                results[(label, "hit")].append(run(dll, args, os.path.join(root, f"warm-{label}-{slug}"), []))
                results[(label, "no-cache")].append(run(dll, args, os.path.join(root, "unused"), ["--no-cache"]))
        print(f"\n## {model} (medians, ms)\n")
        print("| build | mode | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 2) + "|")
        for (label, mode), rs in results.items():
            cells = []
            for k in keys:
                vals = [r[k] for r in rs if k in r]
                cells.append(f"{statistics.median(vals):.0f}" if vals else "")
            print(f"| {label} | {mode} | " + " | ".join(cells) + " |")
        for label, _ in builds:
            hit = statistics.median(r["wall"] for r in results[(label, "hit")])
            miss = statistics.median(r["wall"] for r in results[(label, "miss")])
            print(f"\n{label}: miss / hit wall-time ratio {miss / hit:.2f}")
    print(f"\n# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
