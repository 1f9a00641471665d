#!/usr/bin/env python
"""Thread scaling of global pooling and pyramids on a many-core machine.

    python benchmarks/thread_scaling.py [--threads 1,2,4,8,16] [--repeats 7]

For each case: fastpool's median time at each thread count (``workers=``), the
speed-up over one thread, and the single-threaded NumPy peer (and PyTorch at
the same thread count, where it has the operation) measured in the same run.
The 2-core development machines cannot show scaling; this script is meant for a
larger one (see benchmarks/README.md).
"""
import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastpool  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional peer
    torch = None


def median_ms(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def cases():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((8192, 8192), dtype=np.float32)
    u8 = rng.integers(0, 256, (8192, 8192), dtype=np.uint8)
    vol = rng.integers(0, 256, (512, 512, 512), dtype=np.uint8)
    nchw = rng.standard_normal((32, 64, 112, 112), dtype=np.float32)
    t_image = torch.from_numpy(image) if torch else None
    t_nchw = torch.from_numpy(nchw) if torch else None
    return [
        ("float32 8192x8192 global avg",
         lambda w: fastpool.global_avg_pool(image, workers=w),
         {"numpy": lambda: image.mean()},
         {"torch": lambda: t_image.mean()} if torch else {}),
        ("float32 8192x8192 global max",
         lambda w: fastpool.global_max_pool(image, workers=w),
         {"numpy": lambda: image.max()},
         {"torch": lambda: t_image.amax()} if torch else {}),
        ("NCHW float32 (32,64,112,112) global avg",
         lambda w: fastpool.global_avg_pool(nchw, axes=(-2, -1), workers=w),
         {"numpy": lambda: nchw.mean(axis=(-2, -1))},
         {"torch": lambda: t_nchw.mean((-2, -1))} if torch else {}),
        ("uint8 8192x8192 pyramid avg 4 levels",
         lambda w: fastpool.pyramid(u8, 4, workers=w), {}, {}),
        ("uint8 8192x8192 pyramid max 4 levels",
         lambda w: fastpool.pyramid(u8, 4, method="max", workers=w), {}, {}),
        ("uint8 512^3 pyramid avg 4 levels",
         lambda w: fastpool.pyramid(vol, 4, workers=w), {}, {}),
        ("NCHW float32 (32,64,112,112) adaptive avg 5x5",
         lambda w: fastpool.adaptive_avg_pool(nchw, 5, axes=(-2, -1), workers=w), {},
         {"torch": lambda: torch.nn.functional.adaptive_avg_pool2d(t_nchw, 5)}
         if torch else {}),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"cpus={os.cpu_count()} fastpool={fastpool.__version__} "
          f"simd={fastpool._kernels.SIMD} numpy={np.__version__} "
          f"torch={torch.__version__ if torch else 'n/a'}")
    for name, ours, serial_peers, threaded_peers in cases():
        serial = {k: median_ms(f, args.repeats) for k, f in serial_peers.items()}
        base = None
        print(f"\n{name}" + "".join(f"   {k} (1 thread): {v:.2f} ms"
                                    for k, v in serial.items()))
        for t in threads:
            ms = median_ms(lambda: ours(t), args.repeats)
            base = base or ms
            line = f"  {t:3d} threads: fastpool {ms:8.2f} ms  speed-up {base / ms:5.2f}"
            if torch is not None and threaded_peers:
                torch.set_num_threads(t)
                for k, f in threaded_peers.items():
                    peer = median_ms(f, args.repeats)
                    line += f"  {k} {peer:8.2f} ms (fastpool/{k} {ms / peer:.2f})"
            for k, v in serial.items():
                line += f"  fastpool/{k} {ms / v:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
