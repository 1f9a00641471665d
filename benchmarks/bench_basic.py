#!/usr/bin/env python
"""fastpool max / mean pooling against its peers and a memory-copy roofline.

    python benchmarks/bench_basic.py                      # full run (~7 min on 2 cores)
    python benchmarks/bench_basic.py --quick              # smoke test (small arrays)
    python benchmarks/bench_basic.py --cases uint8 --threads 1 --json out.json

See benchmarks/README.md for what the columns mean and how the roofline is
computed.  Timings are medians of interleaved (round-robin) repeats; compare
the ratios, which are measured in the same run, never absolute times across
runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

torch = H.try_import("torch")
F = H.try_import("torch.nn.functional") if torch is not None else None
cv2 = H.try_import("cv2")
ndi = H.try_import("scipy.ndimage")
skimage_measure = H.try_import("skimage.measure")
tinybrain = H.try_import("tinybrain")

PEER_ORDER = ["torch", "cv2", "tinybrain", "scipy", "skimage", "numpy-reshape", "numpy-slices"]


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    shape: Tuple[int, ...]
    quick_shape: Tuple[int, ...]
    dtype: str
    op: str  # "max" | "mean"
    size: Tuple[int, ...]  # per pooled axis
    stride: Tuple[int, ...]
    axes: Optional[Tuple[int, ...]] = None  # None: all axes

    def label(self, shape) -> str:
        """The name with the shape actually run (differs from name in --quick)."""
        if tuple(shape) == tuple(self.shape):
            return self.name
        full = ("(" + ",".join(map(str, self.shape)) + ")") if "(" in self.name else "x".join(map(str, self.shape))
        new = ("(" + ",".join(map(str, shape)) + ")") if "(" in self.name else "x".join(map(str, shape))
        return self.name.replace(full, new)

    def pooled_axes(self, ndim: int) -> Tuple[int, ...]:
        return H.normalize_axes(ndim, self.axes)


def _cases() -> List[Case]:
    c = []
    for op in ("max", "mean"):
        c.append(Case(f"float32 4096x4096 2x2/2 {op}", (4096, 4096), (1024, 1024), "float32", op, (2, 2), (2, 2)))
    for op in ("max", "mean"):
        c.append(Case(f"float32 4096x4096 3x3/2 {op}", (4096, 4096), (1024, 1024), "float32", op, (3, 3), (2, 2)))
    for op in ("mean", "max"):
        c.append(Case(f"uint8 4096x4096 2x2/2 {op}", (4096, 4096), (1024, 1024), "uint8", op, (2, 2), (2, 2)))
    for op in ("max", "mean"):
        c.append(Case(f"float32 256x512x512 2x2x2/2 {op}", (256, 512, 512), (64, 128, 128), "float32", op,
                      (2, 2, 2), (2, 2, 2)))
    for op in ("max", "mean"):
        c.append(Case(f"NCHW float32 (32,64,112,112) 2x2/2 {op}", (32, 64, 112, 112), (8, 16, 56, 56),
                      "float32", op, (2, 2), (2, 2), axes=(-2, -1)))
    return c


CASES = _cases()


def make_input(case: Case, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(case.dtype).kind == "f":
        # standard normal: negative values catch max kernels that start from 0
        return rng.standard_normal(shape, dtype=np.float32).astype(case.dtype, copy=False)
    info = np.iinfo(case.dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=case.dtype, endpoint=True)


# ---------------------------------------------------------------------------
# contenders.  Each builder returns a Contender or None where the peer does not
# apply.  Every fn() allocates its own output and returns the result the way a
# user of that library gets it (views included).
# ---------------------------------------------------------------------------


def _geometry(case: Case, x: np.ndarray):
    axes = case.pooled_axes(x.ndim)
    oshape = H.out_shape(x.shape, case.size, case.stride, axes)
    nonoverlap = tuple(case.size) == tuple(case.stride) and all(
        x.shape[a] % k == 0 for a, k in zip(axes, case.size))
    trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
    return axes, oshape, nonoverlap, trailing


def fastpool_contender(fp, case: Case, x: np.ndarray, threads: int) -> H.Contender:
    func = fp.max_pool if case.op == "max" else fp.avg_pool
    axes = case.axes
    size, stride = case.size, case.stride

    def run():
        return func(x, size, stride, axes=axes, workers=threads)

    return H.Contender(H.FASTPOOL, run, kind="fastpool",
                       desc=f"fastpool.{func.__name__}(x, {size}, {stride}, axes={axes}, workers=n)")


def fastpool_output_contender(fp, case: Case, x: np.ndarray, threads: int, oshape) -> H.Contender:
    """Info only (not in the ratios): the same call writing into one
    preallocated, already touched ``output=`` array, i.e. without the page
    faults of a fresh output."""
    func = fp.max_pool if case.op == "max" else fp.avg_pool
    axes = case.axes
    size, stride = case.size, case.stride
    out = np.zeros(oshape, x.dtype)

    def run():
        return func(x, size, stride, axes=axes, workers=threads, output=out)

    return H.Contender("fastpool-output", run, kind="fastpool-out",
                       desc=f"fastpool.{func.__name__}(..., output=<preallocated {out.dtype} {oshape}>, workers=n)")


def torch_peer(case: Case, x: np.ndarray):
    if torch is None:
        return None
    axes, oshape, _, trailing = _geometry(case, x)
    nd = len(axes)
    if not trailing or nd not in (1, 2, 3):
        return None
    nbatch = x.ndim - nd
    lead = {0: (1, 1), 1: (1,), 2: ()}.get(nbatch)
    if lead is None:
        return None
    name = f"{'max' if case.op == 'max' else 'avg'}_pool{nd}d"
    f = getattr(F, name)
    k, s = tuple(case.size), tuple(case.stride)
    via_float = False
    probe = torch.zeros((1, 1) + (4,) * nd, dtype=torch.from_numpy(x[:0]).dtype)
    try:
        f(probe, 2, 2)
    except (RuntimeError, NotImplementedError):
        via_float = True
    if not via_float:
        def run():
            t = torch.from_numpy(x).reshape(lead + x.shape)
            return f(t, k, s).numpy().reshape(oshape)
        desc = f"F.{name}(torch.from_numpy(x){'[None, None]' if nbatch == 0 else ''}, {k}, {s})"
    else:
        tdt = torch.from_numpy(x[:0]).dtype

        def run():
            t = torch.from_numpy(x).reshape(lead + x.shape)
            r = f(t.float(), k, s)
            if not tdt.is_floating_point:
                r = r.round_()  # half to even
            return r.to(tdt).numpy().reshape(oshape)
        desc = f"F.{name}(t.float(), {k}, {s}).round_().to({tdt}) ({x.dtype} not supported natively)"
    return H.Contender("torch", run, desc=desc)


def skimage_peer(case: Case, x: np.ndarray):
    if skimage_measure is None:
        return None
    axes, oshape, nonoverlap, _ = _geometry(case, x)
    if not nonoverlap:  # block_reduce = non-overlapping blocks only (it pads, not floors)
        return None
    block = [1] * x.ndim
    for a, kk in zip(axes, case.size):
        block[a] = kk
    block = tuple(block)
    func = np.max if case.op == "max" else np.mean
    br = skimage_measure.block_reduce

    def run():
        return br(x, block, func)

    return H.Contender("skimage", run, desc=f"skimage.measure.block_reduce(x, {block}, np.{func.__name__})")


def numpy_reshape_peer(case: Case, x: np.ndarray):
    axes, oshape, nonoverlap, _ = _geometry(case, x)
    if not nonoverlap:
        return None
    rshape, red = [], []
    for ax, n in enumerate(x.shape):
        if ax in axes:
            kk = case.size[axes.index(ax)]
            rshape += [n // kk, kk]
            red.append(len(rshape) - 1)
        else:
            rshape.append(n)
    rshape, red = tuple(rshape), tuple(red)
    if case.op == "max":
        def run():
            return x.reshape(rshape).max(axis=red)
        desc = f"x.reshape{rshape}.max(axis={red})"
    elif x.dtype.kind == "f":
        def run():
            return x.reshape(rshape).mean(axis=red)
        desc = f"x.reshape{rshape}.mean(axis={red})"
    else:
        dt = x.dtype

        def run():
            return np.rint(x.reshape(rshape).mean(axis=red, dtype=np.float32)).astype(dt)
        desc = f"np.rint(x.reshape{rshape}.mean(axis={red}, dtype=float32)).astype({dt})"
    return H.Contender("numpy-reshape", run, desc=desc)


def _window_slices(case: Case, x: np.ndarray):
    """One strided view per window offset: view[o][i] = x[i*stride + o]."""
    axes, oshape, _, _ = _geometry(case, x)
    views = []
    for offs in np.ndindex(*case.size):
        sl = [slice(None)] * x.ndim
        for a, o, s in zip(axes, offs, case.stride):
            sl[a] = slice(o, o + s * (oshape[a] - 1) + 1, s)
        views.append(tuple(sl))
    return views


def numpy_slices_peer(case: Case, x: np.ndarray):
    views = _window_slices(case, x)
    n = len(views)
    if case.op == "max":
        def run():
            acc = np.maximum(x[views[0]], x[views[1]])
            for v in views[2:]:
                np.maximum(acc, x[v], out=acc)
            return acc
        desc = f"np.maximum over the {n} strided slices"
    elif x.dtype.kind == "f":
        inv = x.dtype.type(1.0 / n)

        def run():
            acc = x[views[0]] + x[views[1]]
            for v in views[2:]:
                np.add(acc, x[v], out=acc)
            acc *= inv
            return acc
        desc = f"sum of the {n} strided slices * (1/{n})"
    else:
        dt = x.dtype
        acc_dt = np.uint16 if x.dtype.itemsize == 1 else np.int64

        def run():
            acc = x[views[0]].astype(acc_dt)
            for v in views[1:]:
                np.add(acc, x[v], out=acc)
            return np.rint(acc / np.float32(n)).astype(dt)
        desc = f"{np.dtype(acc_dt).name} sum of the {n} strided slices, np.rint(/{n}).astype({dt})"
    return H.Contender("numpy-slices", run, desc=desc)


def scipy_peer(case: Case, x: np.ndarray):
    if ndi is None:
        return None
    axes, oshape, _, _ = _geometry(case, x)
    size = [1] * x.ndim
    origin = [0] * x.ndim
    sl = [slice(None)] * x.ndim
    for a, kk, s in zip(axes, case.size, case.stride):
        size[a] = kk
        # scipy centres a size-k window on index i + origin: it covers
        # [i + origin - k//2, i + origin - k//2 + k).  origin = -(k//2) makes it
        # start at i, so output[j] = filtered[j*stride] (checked against the reference).
        origin[a] = -(kk // 2)
        sl[a] = slice(0, s * (oshape[a] - 1) + 1, s)
    size, origin, sl = tuple(size), tuple(origin), tuple(sl)
    f = ndi.maximum_filter if case.op == "max" else ndi.uniform_filter

    def run():
        return f(x, size=size, origin=origin)[sl]

    return H.Contender("scipy", run, desc=f"scipy.ndimage.{f.__name__}(x, size={size}, origin={origin})[::stride]")


def cv2_peer(case: Case, x: np.ndarray):
    """OpenCV works on 2-D images.  A stack of planes (NCHW) is viewed as one
    tall 2-D image when windows cannot cross plane boundaries (non-overlapping
    windows, H divisible by the stride).  The 3-D 2x2x2 case pools z with NumPy
    first (half the data) and then (y, x) with OpenCV on a 2-D view."""
    if cv2 is None:
        return None
    axes, oshape, nonoverlap, trailing = _geometry(case, x)
    if not trailing or len(axes) not in (2, 3) or x.ndim > 4:
        return None
    if len(axes) == 3 and not (nonoverlap and tuple(case.size) == (2, 2, 2)):
        return None
    if len(axes) == 2 and x.ndim > 2 and not nonoverlap:
        return None
    (kh, kw), (sh, sw) = case.size[-2:], case.stride[-2:]
    oh, ow = oshape[-2:]
    is_max = case.op == "max"
    kernel = np.ones((kh, kw), np.uint8)
    area_ok = (kh, kw) == (sh, sw)

    def pool2d(img2d, rows_out):
        # img2d: a C-contiguous 2-D view; returns (rows_out, ow)
        if is_max:
            r = cv2.dilate(img2d, kernel, anchor=(0, 0))
            return r[0:sh * (rows_out - 1) + 1:sh, 0:sw * (ow - 1) + 1:sw]
        if area_ok:
            return cv2.resize(img2d, (ow, rows_out), interpolation=cv2.INTER_AREA)
        r = cv2.blur(img2d, (kw, kh), anchor=(0, 0))
        return r[0:sh * (rows_out - 1) + 1:sh, 0:sw * (ow - 1) + 1:sw]

    if len(axes) == 2:
        rows = int(np.prod(x.shape[:-1]))
        rows_out = int(np.prod(oshape[:-1]))

        def run():
            return pool2d(x.reshape(rows, x.shape[-1]), rows_out).reshape(oshape)

        if is_max:
            what = f"cv2.dilate(ones({kh},{kw}), anchor=(0,0))[::{sh}, ::{sw}]"
        elif area_ok:
            what = f"cv2.resize(INTER_AREA) to {ow}x{rows_out}"
        else:
            what = f"cv2.blur(({kw},{kh}), anchor=(0,0))[::{sh}, ::{sw}]"
        desc = what + (f" on the {rows}x{x.shape[-1]} 2-D view" if x.ndim > 2 else "")
        return H.Contender("cv2", run, desc=desc)

    # 3-D 2x2x2: z with numpy, then (y, x) with OpenCV on the (Z/2*Y, X) view
    Z, Y, X = x.shape
    oz, oy, ox = oshape

    def run():
        if is_max:
            a = np.maximum(x[0::2], x[1::2])
        else:
            a = np.add(x[0::2], x[1::2])
        r = pool2d(a.reshape(oz * Y, X), oz * oy)
        r = r.reshape(oshape)
        if not is_max:
            r *= r.dtype.type(0.5)  # INTER_AREA gave the 2x2 mean of z-sums = 2 * mean of 8
        return r

    desc = ("np.maximum(x[0::2], x[1::2]) then cv2.dilate(2x2, anchor=(0,0))[::2, ::2] on the 2-D view"
            if is_max else
            "np.add(x[0::2], x[1::2]) then cv2.resize(INTER_AREA) on the 2-D view, * 0.5")
    return H.Contender("cv2", run, desc=desc)


def tinybrain_peer(case: Case, x: np.ndarray):
    """tinybrain's averaging kernels (2x2, 2x2x2) want Fortran order (x, y, z,
    channel) and call np.asfortranarray otherwise (a full copy): it gets the
    transposed view x.T, which is F-contiguous, with the factors reversed, and
    its result is transposed back (a view).  Its max pooling is NumPy strided
    slices that take any layout; it gets x itself."""
    if tinybrain is None:
        return None
    axes, oshape, nonoverlap, trailing = _geometry(case, x)
    if not nonoverlap or not trailing or x.ndim > 4:
        return None
    factor_c = [1] * x.ndim
    for a, kk in zip(axes, case.size):
        factor_c[a] = kk
    if case.op == "max":
        fc = tuple(factor_c)

        def run():
            return tinybrain.downsample_with_max_pooling(x, fc)[0]
        return H.Contender("tinybrain", run, desc=f"tinybrain.downsample_with_max_pooling(x, {fc}) (C order)")
    ff = tuple(reversed(factor_c))
    # the accelerated paths; anything else falls back to slow NumPy code
    if ff not in ((2, 2), (2, 2, 1), (2, 2, 1, 1), (2, 2, 2), (2, 2, 2, 1)):
        return None

    def run():
        return tinybrain.downsample_with_averaging(x.T, ff)[0].T
    return H.Contender("tinybrain", run, desc=f"tinybrain.downsample_with_averaging(x.T, {ff})[0].T (Fortran view)")


PEER_BUILDERS: Dict[str, Callable] = {
    "torch": torch_peer,
    "cv2": cv2_peer,
    "tinybrain": tinybrain_peer,
    "scipy": scipy_peer,
    "skimage": skimage_peer,
    "numpy-reshape": numpy_reshape_peer,
    "numpy-slices": numpy_slices_peer,
}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small arrays and few repeats (smoke test)")
    p.add_argument("--cases", default="", help="only cases whose name contains this substring "
                   "(comma-separated: any of them)")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1,<all cores>)")
    p.add_argument("--json", default=None, help="write the results as JSON to this path")
    p.add_argument("--repeats", type=int, default=None, help="fixed number of interleaved rounds per case")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of timing per case and thread count (sets the rounds, within [min,max])")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for the other processes to leave the CPUs idle before starting")
    p.add_argument("--peers", default=None, help="comma-separated subset of peers: " + ",".join(PEER_ORDER))
    args = p.parse_args(argv)

    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, ncores})
    filters = [f.strip().lower() for f in args.cases.split(",") if f.strip()]
    cases = [c for c in CASES if not filters or any(f in c.name.lower() for f in filters)]
    peers = [q for q in PEER_ORDER if args.peers is None or q in args.peers.split(",")]
    if args.quick:
        budget, lo, hi = args.budget or 0.5, 3, 3
    else:
        budget, lo, hi = args.budget or 15.0, 5, 15

    fp, why = H.import_fastpool()
    env = H.environment()
    print(f"# fastpool benchmark: basic max / mean pooling{' (--quick)' if args.quick else ''}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    if fp is None:
        print(f"fastpool: NOT importable ({why}); its columns are n/a")
    print(f"threads: {threads}; roofline: {H.CopyRoofline.FORMULA}")
    if args.wait_idle > 0:
        deadline = time.monotonic() + args.wait_idle
        while True:
            b = H.cpu_busy(2.0)
            if b is None or b < 0.1 or time.monotonic() > deadline:
                break
            print(f"waiting for an idle machine (CPU {100 * b:.0f}% busy)", flush=True)
            time.sleep(10)
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy0 = H.cpu_busy()
    print(f"load average at start: {load0}; CPU busy (other processes, 1 s sample): "
          f"{'n/a' if busy0 is None else f'{100 * busy0:.0f}%'}"
          + ("  WARNING: the machine is busy; timings will be noisy" if busy0 and busy0 > 0.1 else ""))
    print()

    results: Dict[int, List[Tuple[str, Dict]]] = {n: [] for n in threads}
    descs: Dict[str, Dict[str, str]] = {}
    t_start = time.perf_counter()
    for case in cases:
        shape = case.quick_shape if args.quick else case.shape
        label = case.label(shape)
        print(f"## {label}", flush=True)
        x = make_input(case, shape)
        t0 = time.perf_counter()
        ref = H.reference_pool(x, case.size, case.stride, case.pooled_axes(x.ndim),
                               case.op, out_dtype=x.dtype)
        print(f"   reference {time.perf_counter() - t0:.1f} s; output {ref.shape} {ref.dtype}", flush=True)
        exact = case.op == "max"
        for n in threads:
            with H.thread_limits(n):
                contenders = []
                if fp is not None:
                    contenders.append(fastpool_contender(fp, case, x, n))
                    contenders.append(fastpool_output_contender(fp, case, x, n, ref.shape))
                contenders += H.roofline_contenders(x, ref.nbytes, n)
                contenders.append(H.FreshOutput(ref.shape, ref.dtype, n).contender())
                for q in peers:
                    c = PEER_BUILDERS[q](case, x)
                    if c is not None:
                        contenders.append(c)
                t0 = time.perf_counter()
                other = H.OtherLoad()
                info = H.run_case(contenders, ref, exact, budget, lo, hi, repeats=args.repeats,
                                  log=lambda m: print(m, flush=True))
                s = H.summarize(contenders)
                s["repeats"] = info["repeats"]
                s["other_cpu_load"] = other.value()
                s["case"] = label
                s["shape"] = list(shape)
                s["dtype"] = case.dtype
                s["threads"] = n
                results[n].append((label, s))
                descs[label] = {c.name: c.desc for c in contenders if c.kind not in ("roofline", "probe")}
                print(f"   {n} thread(s): {info['repeats']} rounds in {time.perf_counter() - t0:.1f} s "
                      f"(other processes used {H.fmt_pct(s['other_cpu_load'])} of the CPUs); "
                      f"fastpool {H.fmt_ms(s['fastpool_ms'])} ms, roofline {H.fmt_ms(s['roofline_ms'])} ms, "
                      f"fastest peer {s['fastest_peer']} {H.fmt_ms(s['fastest_peer_ms'])} ms", flush=True)
        del x, ref
    elapsed = time.perf_counter() - t_start
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy1 = H.cpu_busy()

    # ------------------------------------------------------------------ report
    used = [q for q in peers if any(q in s["peers"] for rows in results.values() for _, s in rows)]
    print()
    print(f"# Results ({elapsed:.0f} s){' --quick' if args.quick else ''}; load average at start {load0}, "
          f"at end {load1}; CPU busy with other processes before {H.fmt_pct(busy0)}, after {H.fmt_pct(busy1)}")
    print()
    print("Medians of interleaved repeats, ms. Ratios < 1: fastpool is faster. "
          f"{H.CopyRoofline.FORMULA}, t_copy = the faster of np.copyto of the input into a "
          "preallocated buffer with 1 and with n threads, same run. "
          "fresh output = np.empty of the output + first touch by n threads (the page faults every "
          "contender returning a new array pays; not in the roofline). "
          "fastpool output= = fastpool writing into a preallocated output (info, not in the ratios). "
          "Marks: † values differ by 1 (integer rounding convention), ‡ other output dtype "
          "(equal after np.rint), ! result differs (excluded from fastest peer), — not applicable. "
          "Single-threaded peers (numpy, skimage, scipy, tinybrain) are measured again in every column.")
    for n in threads:
        print()
        print(f"## {n} thread{'s' if n > 1 else ''}")
        print()
        print(H.markdown_table(results[n], used))
    print()
    print("## How each contender computes the result")
    for label, dd in descs.items():
        print(f"- {label}:")
        for name, d in dd.items():
            print(f"  - {name}: {d}")
    notes = []
    disturbed = [f"{cname} ({n}T): {H.fmt_pct(s['other_cpu_load'])}" for n in threads for cname, s in results[n]
                 if (s.get("other_cpu_load") or 0) > 0.05]
    if disturbed:
        print()
        print("## Cases during which other processes used > 5% of the CPUs (timings disturbed)")
        for line in disturbed:
            print(f"- {line}")
    for n in threads:
        for cname, s in results[n]:
            if s["fastpool_ms"] is not None and not s["fastpool_check"].startswith(("exact", "close")):
                notes.append(f"- {cname} ({n}T): fastpool {s['fastpool_check']}")
            for q, info in s["peers"].items():
                if info["check"] not in ("exact", "close"):
                    notes.append(f"- {cname} ({n}T): {q}: {info['check']}: {info['note']}")
    if notes:
        print()
        print("## Result checks that were not exact / allclose")
        for line in dict.fromkeys(notes):
            print(line)

    if args.json:
        payload = {
            "benchmark": "bench_basic",
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "quick": args.quick,
            "environment": env,
            "fastpool_import_error": why,
            "roofline_formula": H.CopyRoofline.FORMULA,
            "units": "milliseconds (medians of interleaved repeats)",
            "elapsed_s": elapsed,
            "loadavg_start": load0,
            "loadavg_end": load1,
            "cpu_busy_other_start": busy0,
            "cpu_busy_other_end": busy1,
            "threads": threads,
            "results": {str(n): [s for _, s in results[n]] for n in threads},
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1, default=float)
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
