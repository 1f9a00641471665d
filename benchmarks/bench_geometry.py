#!/usr/bin/env python
"""fastpool's pooling geometries beyond the sliding window (adaptive, global and
fractional max pooling, image / volume pyramids) against their peers and a
memory-copy roofline.

    python benchmarks/bench_geometry.py                   # full run (~5-6 min on 2 cores, estimated)
    python benchmarks/bench_geometry.py --quick           # smoke test (small arrays)
    python benchmarks/bench_geometry.py --cases pyramid --threads 1 --json out.json

Same options, columns, timing and JSON layout as bench_basic.py (see
benchmarks/README.md); benchmarks/table.py renders the JSON.  The contract of
the functions is in the issue's notes (adaptive_pool, global_pool,
fractional_max_pool, pyramid).

A pyramid is a list of arrays: the contenders return their levels, and the
checks compare the levels raveled and concatenated (level 1 first), after a
check of every level's shape; the roofline reads the input once and writes all
the levels once.  fastpool's uint8 average pyramid rounds every level once from
the exact window mean (half to even), tinybrain truncates the exact mean
(within 1, marked †).  The fractional max pool gets the same random samples as
torch (fastpool's samples = torch's ``_random_samples[..., ::-1]``) and is
compared exactly.
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Callable, Dict, List, Tuple

# NumPy's OpenBLAS threads busy-wait after a call and take a core from the
# contender timed next (the compute-bound ones lose up to a third); the NumPy
# peers are single-threaded anyway.  Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

torch = H.try_import("torch")
F = H.try_import("torch.nn.functional") if torch is not None else None
skimage_measure = H.try_import("skimage.measure")
tinybrain = H.try_import("tinybrain")

PEER_ORDER = ["torch", "torch-reduce", "tinybrain", "skimage", "numpy", "numpy-reshape"]

# fastpool's function per case.op
FUNCS = {
    "adaptive-avg": "adaptive_avg_pool", "adaptive-max": "adaptive_max_pool",
    "global-avg": "global_avg_pool", "global-max": "global_max_pool",
    "pyramid-avg": "pyramid", "pyramid-max": "pyramid",
    "fractional-max": "fractional_max_pool",
}
SAMPLES_SEED = 1  # the fractional max pool's random samples (torch's _random_samples)

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

Case = H.Case

NCHW = (32, 64, 112, 112)
NCHW_Q = (8, 16, 56, 56)
NCHW_S = "(32,64,112,112)"
HW = (-2, -1)


def _adaptive(op: str, m: int) -> Case:
    what = "divisible" if NCHW[-1] % m == 0 else "not divisible"
    return Case(f"NCHW float32 {NCHW_S} adaptive {op} {m}x{m} ({what})", NCHW, NCHW_Q, "float32",
                f"adaptive-{op}", (), (), axes=HW, params={"output_size": m})


def _pyramid(op: str, shape, quick_shape, levels=4, factor=2) -> Case:
    s = "x".join(map(str, shape))
    return Case(f"uint8 {s} pyramid {op} {levels} levels /{factor}", shape, quick_shape, "uint8",
                f"pyramid-{op}", (), (), params={"levels": levels, "factor": factor})


CASES: List[Case] = [
    _adaptive("avg", 7),
    _adaptive("avg", 5),
    _adaptive("max", 7),
    _adaptive("max", 5),
    Case("float32 8192x8192 global avg", (8192, 8192), (1024, 1024), "float32", "global-avg", (), ()),
    Case("float32 8192x8192 global max", (8192, 8192), (1024, 1024), "float32", "global-max", (), ()),
    Case("float32 8192x8192 global max, 1% NaN, nan_policy='omit'", (8192, 8192), (1024, 1024),
         "float32", "global-max", (), (), params={"nan_policy": "omit"}),
    Case("uint8 8192x8192 global avg", (8192, 8192), (1024, 1024), "uint8", "global-avg", (), ()),
    Case("uint8 8192x8192 global max", (8192, 8192), (1024, 1024), "uint8", "global-max", (), ()),
    Case("uint8 512x512x512 global avg", (512, 512, 512), (64, 64, 64), "uint8", "global-avg", (), ()),
    Case("uint8 512x512x512 global max", (512, 512, 512), (64, 64, 64), "uint8", "global-max", (), ()),
    Case(f"NCHW float32 {NCHW_S} global avg over (H,W)", NCHW, NCHW_Q, "float32", "global-avg", (), (),
         axes=HW),
    Case(f"NCHW float32 {NCHW_S} global max over (H,W)", NCHW, NCHW_Q, "float32", "global-max", (), (),
         axes=HW),
    _pyramid("avg", (8192, 8192), (1024, 1024)),
    _pyramid("avg", (512, 512, 512), (64, 64, 64)),
    _pyramid("max", (8192, 8192), (1024, 1024)),
    Case("NCHW float32 (8,64,112,112) fractional max 2x2 ratio 0.7", (8, 64, 112, 112), (2, 16, 56, 56),
         "float32", "fractional-max", (2, 2), (), axes=HW, params={"output_ratio": 0.7}),
]

_SAMPLES: Dict[Tuple, np.ndarray] = {}  # (case name, shape) -> torch's _random_samples, float32 (N, C, 2)


def make_input(case: Case, shape, seed=0) -> np.ndarray:
    """float32 standard normal (negative values catch max kernels that start
    from 0), 1% of it NaN for the ``nan_policy='omit'`` cases, uint8 uniform
    over 0..255, C-contiguous.  The fractional case also
    draws torch's ``_random_samples`` (uniform [0, 1), float32, shape (N, C, 2),
    [..., 0] for W and [..., 1] for H)."""
    x = H.random_input(case.dtype, shape, seed)
    if case.params.get("nan_policy") == "omit":
        x.reshape(-1)[np.random.default_rng(seed).random(x.size) < 0.01] = np.nan
    if case.op == "fractional-max":
        rng = np.random.default_rng(SAMPLES_SEED)
        _SAMPLES.clear()
        _SAMPLES[(case.name, tuple(shape))] = rng.random(tuple(shape[:-2]) + (2,), dtype=np.float32)
    return x


def torch_samples(case: Case, x: np.ndarray) -> np.ndarray:
    return _SAMPLES[(case.name, x.shape)]


# ---------------------------------------------------------------------------
# geometry of each kind of case
# ---------------------------------------------------------------------------


def adaptive_bounds(n: int, m: int) -> List[Tuple[int, int]]:
    """PyTorch's adaptive windows: [floor(i*n/m), ceil((i+1)*n/m))."""
    return [((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)]


def pyramid_shapes(case: Case, shape) -> List[Tuple[int, ...]]:
    f, L = case.params["factor"], case.params["levels"]
    return [tuple(-(-n // f ** k) for n in shape) for k in range(1, L + 1)]


def fractional_out(case: Case, shape) -> Tuple[int, int]:
    r = case.params["output_ratio"]
    return int(shape[-2] * r), int(shape[-1] * r)


def out_shape(case: Case, shape) -> Tuple[int, ...]:
    if case.op.startswith("adaptive"):
        m = case.params["output_size"]
        return tuple(shape[:-2]) + (m, m)
    if case.op.startswith("global"):
        axes = case.pooled_axes(len(shape))
        return tuple(n for a, n in enumerate(shape) if a not in axes)
    if case.op == "fractional-max":
        return tuple(shape[:-2]) + fractional_out(case, shape)
    n = sum(int(np.prod(s)) for s in pyramid_shapes(case, shape))
    return (n,)


class Levels:
    """A pyramid's levels as a contender returns them (a list of arrays,
    unchanged and uncopied); ``np.asarray`` of it (done by the checks only,
    never in the timing) checks every level's shape and returns the levels
    raveled and concatenated, level 1 first."""

    def __init__(self, levels, shapes):
        self.levels = levels
        self.shapes = shapes

    def __array__(self, dtype=None, copy=None):
        got = [np.asarray(a) for a in self.levels]
        if [a.shape for a in got] != [tuple(s) for s in self.shapes]:
            raise ValueError(f"level shapes {[a.shape for a in got]} != {[tuple(s) for s in self.shapes]}")
        r = np.concatenate([a.ravel() for a in got])
        return r if dtype is None else r.astype(dtype)


def fractional_starts_scalar(u: float, n: int, m: int, k: int) -> List[int]:
    """The contract's (PyTorch's generate_intervals) window starts, one value at
    a time in float32 scalars: alpha = (n - k) / (m - 1); start[i] =
    int((i + u) * alpha) - int(u * alpha) for i < m - 1; start[m-1] = n - k."""
    f32 = np.float32
    if m == 1:
        return [n - k]
    alpha = f32(n - k) / f32(m - 1)
    u = f32(u)
    s = [int(f32(f32(i) + u) * alpha) - int(u * alpha) for i in range(m - 1)]
    return s + [n - k]


def fractional_starts(u: np.ndarray, n: int, m: int, k: int) -> np.ndarray:
    """The same, vectorized over planes: u float32 (P,) -> int64 (P, m)."""
    last = np.full((u.shape[0], 1), n - k, np.int64)
    if m == 1:
        return last
    alpha = np.float32(n - k) / np.float32(m - 1)
    i = np.arange(m - 1, dtype=np.float32)
    s = ((i + u[:, None]) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)[:, None]
    return np.concatenate([s, last], axis=1)


# ---------------------------------------------------------------------------
# the independent references
# ---------------------------------------------------------------------------


def _to_dtype(r: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iub" and r.dtype.kind == "f":
        info = np.iinfo(dtype)
        r = np.clip(np.rint(r), info.min, info.max)
    r = np.asarray(r.astype(dtype))
    return r if r.flags.c_contiguous else r.copy()  # (np.ascontiguousarray makes 0-d arrays 1-d)


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    """Slow and independent of the peers' methods: float64 means rounded once
    (half to even for integers), maxima in the input dtype.

    * adaptive: one reduction per output cell over its window (PyTorch's bounds);
    * global: np.mean(dtype=float64) / np.max over the pooled axes;
    * pyramid: level k straight from the input, blocks of f**k (reshape), not
      from level k - 1;
    * fractional: per plane and output cell, the max of the k x k window at the
      starts computed one scalar at a time in float32."""
    op = case.op
    if op.startswith("adaptive"):
        m = case.params["output_size"]
        H_, W_ = x.shape[-2:]
        r = np.empty(x.shape[:-2] + (m, m), np.float64 if op.endswith("avg") else x.dtype)
        for i, (h0, h1) in enumerate(adaptive_bounds(H_, m)):
            for j, (w0, w1) in enumerate(adaptive_bounds(W_, m)):
                w = x[..., h0:h1, w0:w1]
                r[..., i, j] = w.mean(axis=(-2, -1), dtype=np.float64) if op.endswith("avg") else \
                    w.max(axis=(-2, -1))
        return _to_dtype(r, x.dtype)
    if op.startswith("global"):
        axes = case.pooled_axes(x.ndim)
        omit = case.params.get("nan_policy") == "omit"
        if op.endswith("avg"):
            r = (np.nanmean if omit else np.mean)(x, axis=axes, dtype=np.float64)
        else:
            r = (np.nanmax if omit else np.max)(x, axis=axes)
        return _to_dtype(np.asarray(r), x.dtype)
    if op.startswith("pyramid"):
        f = case.params["factor"]
        out = []
        for k, oshape in enumerate(pyramid_shapes(case, x.shape), start=1):
            s = f ** k
            if any(n % s for n in x.shape):
                raise ValueError(f"the reference wants shapes divisible by {s}: {x.shape}")
            rshape = sum(((n // s, s) for n in x.shape), ())
            red = tuple(range(1, 2 * x.ndim, 2))
            v = x.reshape(rshape)
            lvl = v.mean(axis=red, dtype=np.float64) if op.endswith("avg") else v.max(axis=red)
            out.append(_to_dtype(lvl, x.dtype).ravel())
        return np.concatenate(out)
    if op == "fractional-max":
        k = case.size[0]
        S = torch_samples(case, x)
        mh, mw = fractional_out(case, x.shape)
        P = int(np.prod(x.shape[:-2]))
        xp = x.reshape(P, *x.shape[-2:])
        Sp = S.reshape(P, 2)
        r = np.empty((P, mh, mw), x.dtype)
        from numpy.lib.stride_tricks import sliding_window_view
        for p in range(P):
            sh = fractional_starts_scalar(Sp[p, 1], x.shape[-2], mh, k)  # torch: [..., 1] is H
            sw = fractional_starts_scalar(Sp[p, 0], x.shape[-1], mw, k)  # [..., 0] is W
            win = sliding_window_view(xp[p], (k, k))
            r[p] = win[np.ix_(sh, sw)].max(axis=(-2, -1))
        return r.reshape(x.shape[:-2] + (mh, mw))
    raise ValueError(op)


def exact(case: Case) -> bool:
    """Maxima and the uint8 pyramid are compared exactly; float means with
    the harness's allclose (rtol 1e-5, atol 1e-6)."""
    return not case.op.endswith("avg") or case.dtype == "uint8"


# ---------------------------------------------------------------------------
# fastpool
# ---------------------------------------------------------------------------


def has_function(fp, case: Case) -> bool:
    return fp is not None and hasattr(fp, FUNCS[case.op])


def _accepts(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def fastpool_call(fp, case: Case, x: np.ndarray):
    """(args, kwargs, shown) of the fastpool call, without workers / output."""
    op, p = case.op, case.params
    if op.startswith("adaptive"):
        return (x, p["output_size"]), {"axes": case.axes}, f"x, {p['output_size']}, axes={case.axes}"
    if op.startswith("global"):
        if "nan_policy" in p:
            return ((x,), {"axes": case.axes, "nan_policy": p["nan_policy"]},
                    f"x, axes={case.axes}, nan_policy={p['nan_policy']!r}")
        return (x,), {"axes": case.axes}, f"x, axes={case.axes}"
    if op.startswith("pyramid"):
        kw = {"levels": p["levels"], "factor": p["factor"], "method": op.split("-")[1]}
        return (x,), kw, "x, " + ", ".join(f"{k}={v!r}" for k, v in kw.items())
    if op == "fractional-max":
        samples = np.ascontiguousarray(torch_samples(case, x)[..., ::-1])
        kw = {"output_ratio": p["output_ratio"], "size": case.size[0], "samples": samples, "axes": case.axes}
        return (x,), kw, (f"x, output_ratio={p['output_ratio']}, size={case.size[0]}, "
                          f"samples=S[..., ::-1], axes={case.axes}")
    raise ValueError(op)


def fastpool_contenders(fp, case: Case, x: np.ndarray, threads: int, ref: np.ndarray) -> List[H.Contender]:
    if not has_function(fp, case):
        return []
    name = FUNCS[case.op]
    func = getattr(fp, name)
    args, kw, shown = fastpool_call(fp, case, x)
    desc = f"fastpool.{name}({shown}, workers=n)"
    if case.op.startswith("pyramid"):
        shapes = pyramid_shapes(case, x.shape)

        def run():
            return Levels(func(*args, workers=threads, **kw), shapes)
        return [H.Contender(H.FASTPOOL, run, kind="fastpool", desc=desc)]

    def run():
        return func(*args, workers=threads, **kw)

    res = [H.Contender(H.FASTPOOL, run, kind="fastpool", desc=desc)]
    if _accepts(func, "output"):
        out = np.zeros(ref.shape, ref.dtype)

        def run_out():
            return func(*args, workers=threads, output=out, **kw)
        res.append(H.Contender("fastpool-output", run_out, kind="fastpool-out",
                               desc=f"fastpool.{name}(..., output=<preallocated {out.dtype} {out.shape}>, "
                                    f"workers=n)"))
    return res


def row_label(fp, case: Case, label: str) -> str:
    if fp is not None and not has_function(fp, case):
        return label + f" [fastpool.{FUNCS[case.op]} missing]"
    return label


def payload(fp) -> Dict:
    missing = sorted({FUNCS[c.op] for c in CASES if fp is not None and not has_function(fp, c)})
    return {"fastpool_missing": missing}


# ---------------------------------------------------------------------------
# peers.  Each builder returns a Contender or None where the peer does not
# apply.  Every fn() allocates its own output and returns the result the way a
# user of that library gets it.
# ---------------------------------------------------------------------------


def _torch_nchw(x: np.ndarray):
    """torch.from_numpy(x) as (N, C, H, W) (a view): 2-D images get [None, None]."""
    t = torch.from_numpy(x)
    return t.reshape((1,) * (4 - x.ndim) + tuple(x.shape)) if x.ndim < 4 else t


def torch_peer(case: Case, x: np.ndarray):
    if torch is None:
        return None
    op, p = case.op, case.params
    if op.startswith("adaptive"):
        m = p["output_size"]
        f = F.adaptive_avg_pool2d if op.endswith("avg") else F.adaptive_max_pool2d

        def run():
            return f(torch.from_numpy(x), m).numpy()
        return H.Contender("torch", run, desc=f"F.{f.__name__}(torch.from_numpy(x), {m})")
    if op.startswith("global"):
        if "nan_policy" in case.params:
            return None  # propagates NaN
        if x.dtype.kind in "iu":
            return None  # the adaptive pools take float tensors
        f = F.adaptive_avg_pool2d if op.endswith("avg") else F.adaptive_max_pool2d
        oshape = out_shape(case, x.shape)
        if x.ndim not in (2, 4) or case.pooled_axes(x.ndim) != (x.ndim - 2, x.ndim - 1):
            return None

        def run():
            return f(_torch_nchw(x), 1).numpy().reshape(oshape)
        view = "torch.from_numpy(x)" + ("[None, None]" if x.ndim == 2 else "")
        return H.Contender("torch", run, desc=f"F.{f.__name__}({view}, 1) reshaped to {oshape}")
    if op == "fractional-max":
        k = case.size[0]
        osz = fractional_out(case, x.shape)
        S = torch.from_numpy(torch_samples(case, x))

        def run():
            return F.fractional_max_pool2d(torch.from_numpy(x), k, output_size=osz, _random_samples=S).numpy()
        return H.Contender("torch", run, desc=f"F.fractional_max_pool2d(torch.from_numpy(x), {k}, "
                                              f"output_size={osz}, _random_samples=S)")
    return None


def torch_reduce_peer(case: Case, x: np.ndarray):
    """Global pooling as a plain torch reduction: t.mean() / t.amax() (over
    dims (-2, -1) for NCHW)."""
    if torch is None or not case.op.startswith("global") or "nan_policy" in case.params:
        return None  # (torch's amax has no NaN-skipping form)
    if case.op.endswith("avg") and x.dtype.kind in "iu":
        return None  # torch's mean wants a float tensor
    axes = case.pooled_axes(x.ndim)
    dims = None if len(axes) == x.ndim else tuple(a - x.ndim for a in axes)
    red = "mean" if case.op.endswith("avg") else "amax"

    if dims is None:
        def run():
            return getattr(torch.from_numpy(x), red)().numpy()
        desc = f"torch.from_numpy(x).{red}()"
    else:
        def run():
            return getattr(torch.from_numpy(x), red)(dims).numpy()
        desc = f"torch.from_numpy(x).{red}({dims})"
    return H.Contender("torch-reduce", run, desc=desc)


def numpy_peer(case: Case, x: np.ndarray):
    op = case.op
    if op.startswith("global"):
        axes = case.pooled_axes(x.ndim)
        ax = None if len(axes) == x.ndim else tuple(a - x.ndim for a in axes)
        f = np.mean if op.endswith("avg") else np.max
        if case.params.get("nan_policy") == "omit":
            f = np.nanmean if op.endswith("avg") else np.nanmax

        def run():
            return f(x, axis=ax)
        return H.Contender("numpy", run, desc=f"np.{f.__name__}(x{'' if ax is None else f', axis={ax}'})")
    if op.startswith("adaptive"):
        m = case.params["output_size"]
        hb = adaptive_bounds(x.shape[-2], m)
        wb = adaptive_bounds(x.shape[-1], m)
        is_avg = op.endswith("avg")

        def run():
            out = np.empty(x.shape[:-2] + (m, m), x.dtype)
            for i, (h0, h1) in enumerate(hb):
                for j, (w0, w1) in enumerate(wb):
                    w = x[..., h0:h1, w0:w1]
                    if is_avg:
                        w.mean(axis=(-2, -1), out=out[..., i, j])
                    else:
                        w.max(axis=(-2, -1), out=out[..., i, j])
            return out
        red = "mean" if is_avg else "max"
        return H.Contender("numpy", run, desc=f"one x[..., h0:h1, w0:w1].{red}(axis=(-2, -1)) per output cell "
                                              f"({m * m} cells, PyTorch's bounds)")
    if op == "fractional-max":
        k = case.size[0]
        mh, mw = fractional_out(case, x.shape)
        S = torch_samples(case, x)
        P = int(np.prod(x.shape[:-2]))
        Hn, Wn = x.shape[-2:]
        oshape = x.shape[:-2] + (mh, mw)
        ar = np.arange(k)

        def run():
            xp = x.reshape(P, Hn, Wn)
            sp = S.reshape(P, 2)
            sh = fractional_starts(sp[:, 1], Hn, mh, k)
            sw = fractional_starts(sp[:, 0], Wn, mw, k)
            rows = np.take_along_axis(xp, (sh[:, :, None] + ar).reshape(P, mh * k, 1), axis=1)
            blk = np.take_along_axis(rows, (sw[:, :, None] + ar).reshape(P, 1, mw * k), axis=2)
            return blk.reshape(P, mh, k, mw, k).max(axis=(2, 4)).reshape(oshape)
        return H.Contender("numpy", run, desc="window starts in float32 for all planes at once, np.take_along_axis "
                                              f"of the {k} rows then the {k} columns of each window, "
                                              "reshape + max")
    return None


def _block_shape(case: Case, shape):
    return (case.params["factor"],) * len(shape)


def _reshape_args(shape, f):
    rshape = sum(((n // f, f) for n in shape), ())
    return rshape, tuple(range(1, 2 * len(shape), 2))


def numpy_reshape_peer(case: Case, x: np.ndarray):
    """Non-overlapping blocks by reshape.  Adaptive: divisible output sizes
    only.  Pyramid: level by level; the average keeps the previous level in
    float32 (exact: multiples of 1/f**(d k) up to 255 fit float32's 24 bits for
    these level counts) and returns np.rint(level).astype(uint8), i.e. the
    exact mean rounded once, half to even."""
    op = case.op
    if op.startswith("adaptive"):
        m = case.params["output_size"]
        if x.shape[-2] % m or x.shape[-1] % m:
            return None
        kh, kw = x.shape[-2] // m, x.shape[-1] // m
        rshape = x.shape[:-2] + (m, kh, m, kw)
        red = (x.ndim - 1, x.ndim + 1)
        fn = "mean" if op.endswith("avg") else "max"

        def run():
            return getattr(x.reshape(rshape), fn)(axis=red)
        return H.Contender("numpy-reshape", run, desc=f"x.reshape{rshape}.{fn}(axis={red})")
    if op.startswith("pyramid"):
        f, L = case.params["factor"], case.params["levels"]
        if any(n % f ** L for n in x.shape):
            return None
        if op.endswith("avg"):
            dt = x.dtype

            def run():
                out, cur = [], x
                for _ in range(L):
                    rshape, red = _reshape_args(cur.shape, f)
                    cur = cur.reshape(rshape).mean(axis=red, dtype=np.float32)
                    out.append(np.rint(cur).astype(dt))
                return Levels(out, pyramid_shapes(case, x.shape))
            desc = (f"level by level: cur = cur.reshape(n/{f}, {f}, ...).mean(axis=odd axes, dtype=float32) "
                    "(exact), level = np.rint(cur).astype(uint8)")
        else:
            def run():
                out, cur = [], x
                for _ in range(L):
                    rshape, red = _reshape_args(cur.shape, f)
                    cur = cur.reshape(rshape).max(axis=red)
                    out.append(cur)
                return Levels(out, pyramid_shapes(case, x.shape))
            desc = f"level by level: cur = cur.reshape(n/{f}, {f}, ...).max(axis=odd axes)"
        return H.Contender("numpy-reshape", run, desc=desc)
    return None


def skimage_peer(case: Case, x: np.ndarray):
    """skimage.measure.block_reduce level by level, each level from the
    previous one as block_reduce returns it (float64 for np.mean: exact)."""
    if skimage_measure is None or not case.op.startswith("pyramid"):
        return None
    L = case.params["levels"]
    block = _block_shape(case, x.shape)
    func = np.mean if case.op.endswith("avg") else np.max
    br = skimage_measure.block_reduce

    def run():
        out, cur = [], x
        for _ in range(L):
            cur = br(cur, block, func)
            out.append(cur)
        return Levels(out, pyramid_shapes(case, x.shape))
    return H.Contender("skimage", run, desc=f"level by level: skimage.measure.block_reduce(level, {block}, "
                                            f"np.{func.__name__})" + (" (float64 levels)" if func is np.mean else ""))


def tinybrain_peer(case: Case, x: np.ndarray):
    """tinybrain's averaging kernels want Fortran order (x, y, z, channel) and
    call np.asfortranarray otherwise (a full copy): they get the F-contiguous
    view x.T and their levels are transposed back (views), as in
    bench_basic.py.  For uint8 with num_mips > 1 they accumulate exact sums
    (uint16 for 2x2, 32-bit for 2x2x2) and truncate: floor of the exact mean.
    Its max pooling is NumPy strided slices; it gets x itself (C order)."""
    if tinybrain is None or not case.op.startswith("pyramid"):
        return None
    f, L = case.params["factor"], case.params["levels"]
    if f != 2 or x.ndim not in (2, 3):
        return None
    fac = (2,) * x.ndim
    shapes = pyramid_shapes(case, x.shape)
    if case.op.endswith("max"):
        def run():
            return Levels(tinybrain.downsample_with_max_pooling(x, fac, num_mips=L), shapes)
        return H.Contender("tinybrain", run, desc=f"tinybrain.downsample_with_max_pooling(x, {fac}, num_mips={L})")

    def run():
        return Levels([a.T for a in tinybrain.downsample_with_averaging(x.T, fac, num_mips=L)], shapes)
    return H.Contender("tinybrain", run, desc=f"[a.T for a in tinybrain.downsample_with_averaging(x.T, {fac}, "
                                              f"num_mips={L})] (Fortran view)")


PEER_BUILDERS: Dict[str, Callable] = {
    "torch": torch_peer,
    "torch-reduce": torch_reduce_peer,
    "tinybrain": tinybrain_peer,
    "skimage": skimage_peer,
    "numpy": numpy_peer,
    "numpy-reshape": numpy_reshape_peer,
}

LEGEND_EXTRA = (
    "Pyramids: the roofline reads the input once and writes every level once (out_bytes = all levels); "
    "results are compared level by level (raveled and concatenated). "
    "~ timed by one call only (it took longer than --slow seconds; not in the interleaved rounds).")

BENCHMARK = H.Benchmark(
    name="bench_geometry",
    title="pooling geometries: adaptive, global, fractional max, pyramid",
    doc=__doc__,
    cases=CASES,
    peer_order=PEER_ORDER,
    peer_builders=PEER_BUILDERS,
    make_input=make_input,
    reference=reference,
    fastpool_contenders=fastpool_contenders,
    exact=exact,
    full_budget=5.0,
    full_repeats=(5, 12),
    quick_budget=0.5,
    quick_repeats=(3, 3),
    slow_s=1.0,
    quick_slow_s=0.5,
    legend_extra=LEGEND_EXTRA,
    single_threaded="numpy, skimage, tinybrain",
    row_label=row_label,
    payload=payload,
)


def main(argv=None):
    return H.run_benchmark(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
