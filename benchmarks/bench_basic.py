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

import os
import sys
from typing import Callable, Dict, List

# NumPy's OpenBLAS threads busy-wait after a call and take a core from the
# contender timed next (the compute-bound ones lose up to a third); the NumPy
# peers are single-threaded anyway.  Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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


Case = H.Case


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
    # float: standard normal (negative values catch max kernels that start from 0)
    return H.random_input(case.dtype, shape, seed)


# ---------------------------------------------------------------------------
# contenders.  Each builder returns a Contender or None where the peer does not
# apply.  Every fn() allocates its own output and returns the result the way a
# user of that library gets it (views included).
# ---------------------------------------------------------------------------


_geometry = H.geometry


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


_window_slices = H.window_slices


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
    # origin = -(k//2): the window starts at the filter position, so
    # output[j] = filtered[j*stride] (see H.filter_window; checked against the reference)
    size, origin, sl = H.filter_window(case, x)
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


def fastpool_contenders(fp, case: Case, x: np.ndarray, threads: int, ref: np.ndarray) -> List[H.Contender]:
    return [fastpool_contender(fp, case, x, threads),
            fastpool_output_contender(fp, case, x, threads, ref.shape)]


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    return H.reference_pool(x, case.size, case.stride, case.pooled_axes(x.ndim), case.op, out_dtype=x.dtype)


BENCHMARK = H.Benchmark(
    name="bench_basic",
    title="basic max / mean pooling",
    doc=__doc__,
    cases=CASES,
    peer_order=PEER_ORDER,
    peer_builders=PEER_BUILDERS,
    make_input=make_input,
    reference=reference,
    fastpool_contenders=fastpool_contenders,
    exact=lambda case: case.op == "max",
)


def main(argv=None):
    return H.run_benchmark(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
