#!/usr/bin/env python
"""Thread scaling of global pooling, pyramids and adaptive pooling.

    python benchmarks/thread_scaling.py [--threads 1,2,4] [--repeats 7] [--json PATH]
    python benchmarks/thread_scaling.py --quick --threads 1 --json out.json   # smoke test

For each case: fastpool's median time at each thread count (``workers=``), the
speed-up over one thread, and the peers measured in the same run: the
single-threaded NumPy reduction, and PyTorch at the same thread count where it
has the operation.  The default thread counts are the powers of two below the
usable cores and the cores themselves (1, 2 on a 2-core machine; 1, 2, 4, 8, 12
on 12 cores): the same command gives more points on a larger machine.

``--json PATH`` writes every number and the machine (``environment``) in the
layout of ``benchmarks/results/thread_scaling.json``, from which the docs draw
the thread-scaling chart (``benchmarks/charts.py``) and ``benchmarks/table.py``
renders a table.  ``--quick`` uses small arrays and 3 repeats: a smoke test,
not a measurement (the JSON says ``"quick": true`` and the chart says so).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastpool  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional peer
    torch = None

# The shapes of the full run and of --quick
SIZES = {False: {"image": 8192, "volume": 512, "nchw": (32, 64, 112, 112)},
         True: {"image": 1024, "volume": 64, "nchw": (4, 16, 56, 56)}}


def median_ms(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(cores=None):
    """1, 2, 4, ... below ``cores`` (default: the usable cores), and ``cores``."""
    cores = cores or usable_cores()
    counts = {cores}
    t = 1
    while t < cores:
        counts.add(t)
        t *= 2
    return sorted(counts)


def cases(quick=False):
    """``(name, fastpool(workers), {serial peer: call}, {threaded peer: call})``."""
    s = SIZES[quick]
    n, v, shape = s["image"], s["volume"], s["nchw"]
    rng = np.random.default_rng(0)
    image = rng.standard_normal((n, n), dtype=np.float32)
    u8 = rng.integers(0, 256, (n, n), dtype=np.uint8)
    vol = rng.integers(0, 256, (v, v, v), dtype=np.uint8)
    nchw = rng.standard_normal(shape, dtype=np.float32)
    t_image = torch.from_numpy(image) if torch else None
    t_nchw = torch.from_numpy(nchw) if torch else None
    nchw_name = "(" + ",".join(map(str, shape)) + ")"
    return [
        (f"float32 {n}x{n} global avg",
         lambda w: fastpool.global_avg_pool(image, workers=w),
         {"numpy": lambda: image.mean()},
         {"torch": lambda: t_image.mean()} if torch else {}),
        (f"float32 {n}x{n} global max",
         lambda w: fastpool.global_max_pool(image, workers=w),
         {"numpy": lambda: image.max()},
         {"torch": lambda: t_image.amax()} if torch else {}),
        (f"NCHW float32 {nchw_name} global avg",
         lambda w: fastpool.global_avg_pool(nchw, axes=(-2, -1), workers=w),
         {"numpy": lambda: nchw.mean(axis=(-2, -1))},
         {"torch": lambda: t_nchw.mean((-2, -1))} if torch else {}),
        (f"uint8 {n}x{n} pyramid avg 4 levels",
         lambda w: fastpool.pyramid(u8, 4, workers=w), {}, {}),
        (f"uint8 {n}x{n} pyramid max 4 levels",
         lambda w: fastpool.pyramid(u8, 4, method="max", workers=w), {}, {}),
        (f"uint8 {v}^3 pyramid avg 4 levels",
         lambda w: fastpool.pyramid(vol, 4, workers=w), {}, {}),
        (f"NCHW float32 {nchw_name} adaptive avg 5x5",
         lambda w: fastpool.adaptive_avg_pool(nchw, 5, axes=(-2, -1), workers=w), {},
         {"torch": lambda: torch.nn.functional.adaptive_avg_pool2d(t_nchw, 5)}
         if torch else {}),
    ]


def measure(case, threads, repeats, log=print):
    """One case at every thread count: a result row of the JSON."""
    name, ours, serial_peers, threaded_peers = case
    row = {"case": name, "fastpool_ms": {}, "speedup": {}, "peers_ms": {}, "other_cpu_load": {}}
    for k, f in serial_peers.items():
        row["peers_ms"][k] = {"1": median_ms(f, repeats)}
    log(f"\n{name}" + "".join(f"   {k} (1 thread): {v['1']:.2f} ms" for k, v in row["peers_ms"].items()))
    for t in threads:
        other = H.OtherLoad()
        ms = median_ms(lambda: ours(t), repeats)
        row["fastpool_ms"][str(t)] = ms
        row["speedup"][str(t)] = row["fastpool_ms"][str(threads[0])] / ms
        line = f"  {t:3d} threads: fastpool {ms:8.2f} ms  speed-up {row['speedup'][str(t)]:5.2f}"
        if torch is not None and threaded_peers:
            torch.set_num_threads(t)
            for k, f in threaded_peers.items():
                peer = median_ms(f, repeats)
                row["peers_ms"].setdefault(k, {})[str(t)] = peer
                line += f"  {k} {peer:8.2f} ms (fastpool/{k} {ms / peer:.2f})"
        for k, v in serial_peers.items():
            line += f"  fastpool/{k} {ms / row['peers_ms'][k]['1']:.2f}"
        load = row["other_cpu_load"][str(t)] = other.value()
        if load is not None and load > 0.05:
            line += f"  WARNING: other processes used {100 * load:.0f}% of the CPUs"
        log(line, flush=True)
    return row


def environment():
    env = H.environment()
    env["fastpool_simd"] = getattr(fastpool._kernels, "SIMD", None)
    return env


def payload(rows, threads, repeats, quick, command, env=None, elapsed_s=None):
    """The JSON document: ``benchmark``, ``command``, ``quick``, ``threads``,
    ``repeats``, ``environment`` (cpu, cpu_count, affinity, numpy, torch,
    fastpool, ...), ``elapsed_s`` and ``results``: per case ``case``,
    ``fastpool_ms`` and ``speedup`` (over 1 thread) by thread count, and
    ``peers_ms``: per peer its ms by thread count ("1" only for NumPy), and
    ``other_cpu_load``: the share of the CPUs other processes used meanwhile."""
    return {"benchmark": "thread_scaling", "command": command, "quick": quick,
            "threads": list(threads), "repeats": repeats,
            "environment": environment() if env is None else env,
            "elapsed_s": elapsed_s, "units": "milliseconds, medians of the repeats",
            "results": rows}


def write_json(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=None,
                        help="thread counts, e.g. 1,2,4 (default: 1, 2, 4, ... and the usable cores; "
                             "1 is always measured, the speed-ups are over it)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per median (default 7; --quick 3)")
    parser.add_argument("--quick", action="store_true", help="small arrays and 3 repeats: a smoke test")
    parser.add_argument("--cases", default="", help="only the cases whose name contains one of these substrings")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="S",
                        help="first wait up to S seconds until other processes leave the CPUs idle")
    args = parser.parse_args(argv)
    if args.threads is None:
        threads = default_threads()
    else:
        threads = sorted({int(t) for t in args.threads.split(",")} | {1})
    repeats = args.repeats or (3 if args.quick else 7)
    command = " ".join([os.path.basename(sys.executable)] + (sys.argv if argv is None else [sys.argv[0]] + argv))
    filters = [f.strip().lower() for f in args.cases.split(",") if f.strip()]
    print(f"cpus={os.cpu_count()} usable={usable_cores()} fastpool={fastpool.__version__} "
          f"simd={getattr(fastpool._kernels, 'SIMD', None)} numpy={np.__version__} "
          f"torch={torch.__version__ if torch else 'n/a'} threads={threads}"
          + (" (--quick: small arrays, a smoke test)" if args.quick else ""))
    if args.wait_idle > 0:
        H.wait_for_idle(args.wait_idle, log=lambda m: print(m, flush=True))
    start = time.perf_counter()
    rows = [measure(c, threads, repeats) for c in cases(args.quick)
            if not filters or any(f in c[0].lower() for f in filters)]
    if args.json:
        write_json(args.json, payload(rows, threads, repeats, args.quick, command,
                                      elapsed_s=time.perf_counter() - start))
        print(f"\nJSON written to {args.json}")
    busy = [f"{r['case']} ({t}T)" for r in rows for t, v in r["other_cpu_load"].items() if (v or 0) > 0.05]
    if busy:
        print("\nother processes used more than 5% of the CPUs during: " + ", ".join(busy)
              + "; rerun on an idle machine (--wait-idle S waits for one)")


if __name__ == "__main__":
    main()
