#!/usr/bin/env python
"""fastpool's weighted and random pooling family (lp, soft, stochastic, mixed,
avgmax, catavgmax, weighted, lip, dpp, blur, maxblur and generic pooling)
against the same formulas written in PyTorch and NumPy, and a memory-copy
roofline.

    python benchmarks/bench_weighted.py                   # full run (~6-7 min on 2 cores, estimated)
    python benchmarks/bench_weighted.py --quick           # smoke test (small arrays)
    python benchmarks/bench_weighted.py --cases soft,lip --threads 1 --json out.json

Same options, columns, timing and JSON layout as bench_basic.py (see
benchmarks/README.md); benchmarks/table.py renders the JSON.  The formulas are
those of docs/semantics.md, section 9.  fastpool is checked against an
independent float64 NumPy reference of the documented formula (for
stochastic_pool(training=True) and mixed_pool(alpha=None) the reference also
implements the documented counter-based random stream, so fastpool's draws are
checked value for value).  The peers draw their own random numbers: their
results are checked to be valid draws (§), not value for value.

The LowLevelCallable case compiles a 10-line C function (max - min) with the
system C compiler (``$CC`` or ``cc``) into a temporary directory at run time
and loads it with ctypes; without a compiler that row's fastpool and scipy
contenders are skipped.
"""
from __future__ import annotations

import atexit
import inspect
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

# NumPy's OpenBLAS threads busy-wait after a call and take a core from the
# contender timed next (the compute-bound ones lose up to a third); the NumPy
# peers are single-threaded anyway.  Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

torch = H.try_import("torch")
F = H.try_import("torch.nn.functional") if torch is not None else None
scipy = H.try_import("scipy")
ndi = H.try_import("scipy.ndimage")

PEER_ORDER = ["torch", "numpy", "scipy"]

# fastpool's function per case.op
FUNCS = {
    "lp": "lp_pool", "soft": "soft_pool", "stochastic": "stochastic_pool", "mixed": "mixed_pool",
    "avgmax": "avgmax_pool", "catavgmax": "catavgmax_pool", "weighted": "weighted_pool",
    "lip": "lip_pool", "dpp": "dpp_pool", "blur": "blur_pool", "maxblur": "maxblur_pool",
    "generic": "generic_pool",
}
DPP_EPS = 1e-3  # docs/semantics.md section 9
SEED = 0  # fastpool's seed= for the random methods

# tolerance of the peers' float32 formulas against fastpool's float64 result
# rounded once (relative ~1e-4 as asked; the absolute part covers the
# cancellation in sums of mixed-sign terms, whose results can be near 0)
PEER_RTOL = 1e-4
PEER_ATOL = 1e-5

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

Case = H.Case

NCHW = (8, 64, 112, 112)
NCHW_Q = (2, 16, 56, 56)
NCHW_S = "(8,64,112,112)"
HW = (-2, -1)


def _nchw(op, size, stride, what, **params) -> Case:
    k = "x".join(map(str, size))
    return Case(f"NCHW float32 {NCHW_S} {k}/{stride[0]} {what}", NCHW, NCHW_Q, "float32", op,
                size, stride, axes=HW, params=params)


CASES: List[Case] = [
    _nchw("lp", (2, 2), (2, 2), "lp p=2", p=2.0, average=False),
    _nchw("lp", (3, 3), (2, 2), "lp p=3 average, ReLU input", p=3.0, average=True, input="relu"),
    Case("float32 128x256x256 2x2x2/2 lp p=2", (128, 256, 256), (32, 64, 64), "float32", "lp",
         (2, 2, 2), (2, 2, 2), params={"p": 2.0, "average": False}),
    _nchw("soft", (2, 2), (2, 2), "soft", beta=1.0),
    _nchw("soft", (3, 3), (2, 2), "soft", beta=1.0),
    Case("float32 128x256x256 2x2x2/2 soft", (128, 256, 256), (32, 64, 64), "float32", "soft",
         (2, 2, 2), (2, 2, 2), params={"beta": 1.0}),
    _nchw("stochastic", (2, 2), (2, 2), "stochastic inference, ReLU input", training=False, input="relu"),
    _nchw("stochastic", (2, 2), (2, 2), "stochastic training, ReLU input", training=True, input="relu"),
    _nchw("mixed", (3, 3), (2, 2), "mixed alpha=0.5", alpha=0.5),
    _nchw("mixed", (2, 2), (2, 2), "mixed alpha=None (random)", alpha=None),
    _nchw("avgmax", (2, 2), (2, 2), "avgmax"),
    _nchw("catavgmax", (2, 2), (2, 2), "catavgmax axis=1", axis=1),
    _nchw("weighted", (2, 2), (2, 2), "weighted", aux="weights"),
    _nchw("weighted", (3, 3), (2, 2), "weighted", aux="weights"),
    _nchw("lip", (2, 2), (2, 2), "lip", aux="logits"),
    _nchw("lip", (3, 3), (2, 2), "lip", aux="logits"),
    _nchw("dpp", (2, 2), (2, 2), "dpp", alpha=1.0, lam=1.0, asymmetric=False),
    _nchw("dpp", (3, 3), (2, 2), "dpp", alpha=1.0, lam=1.0, asymmetric=False),
    Case("float32 2048x2048 blur factor=2 order=2 (3x3/2 reflect)", (2048, 2048), (512, 512), "float32",
         "blur", (3, 3), (2, 2), params={"factor": 2, "order": 2}),
    Case("uint8 2048x2048 blur factor=2 order=2 (3x3/2 reflect)", (2048, 2048), (512, 512), "uint8",
         "blur", (3, 3), (2, 2), params={"factor": 2, "order": 2}),
    Case("float32 2048x2048 maxblur factor=2 size=2 order=2", (2048, 2048), (512, 512), "float32",
         "maxblur", (3, 3), (2, 2), params={"factor": 2, "size": 2, "order": 2}),
    _nchw("generic", (3, 3), (2, 2), "generic LowLevelCallable max-min", function="range-llc"),
    Case("float32 256x256 3x3/2 generic Python callable np.std", (256, 256), (128, 128), "float32",
         "generic", (3, 3), (2, 2), params={"function": "std-python"}),
]


def has_aux(case: Case) -> bool:
    return "aux" in case.params


def make_input(case: Case, shape, seed=0) -> np.ndarray:
    """float32 standard normal (``input='relu'``: np.maximum(x, 0), a
    post-ReLU feature map with exact zeros, as stochastic pooling needs), uint8
    uniform.  Methods with a second array (weights: uniform [0, 1); logits:
    standard normal) get both stacked as ``(2,) + shape``, C-contiguous, so that
    the copy roofline reads both; the calls take ``x[0]`` and ``x[1]``."""
    x = H.random_input(case.dtype, shape, seed)
    if case.params.get("input") == "relu":
        np.maximum(x, 0, out=x)
    aux = case.params.get("aux")
    if aux is None:
        return x
    rng = np.random.default_rng(seed + 1)
    if aux == "weights":
        a = rng.random(shape, dtype=np.float32)
    else:
        a = rng.standard_normal(shape, dtype=np.float32)
    return np.ascontiguousarray(np.stack([x, a]))


def parts(case: Case, x: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(data, weights or logits or None): views of the stacked input."""
    if has_aux(case):
        return x[0], x[1]
    return x, None


def window_n(case: Case) -> int:
    return int(np.prod(case.size))


def binomial_kernel(order: int, nd: int) -> np.ndarray:
    b = np.array([math.comb(order, k) for k in range(order + 1)], np.float64)
    k = b
    for _ in range(nd - 1):
        k = np.multiply.outer(k, b)
    return k


# ---------------------------------------------------------------------------
# the random stream of docs/semantics.md ("Random streams")
# ---------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stream_key(seed: int) -> np.uint64:
    return np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]


def stream_uniform(key: np.uint64, start: int, count: int) -> np.ndarray:
    """u for the windows with flat (C-order, over the result's shape) indices
    ``start .. start+count-1``: splitmix64 of ``key + (i + 1) * golden``."""
    i = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = key + i * _GOLDEN
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


# ---------------------------------------------------------------------------
# the independent float64 reference of docs/semantics.md section 9
# ---------------------------------------------------------------------------


def np_windows(case: Case, a: np.ndarray, size=None, stride=None, axes=None) -> np.ndarray:
    """sliding_window_view + stride slicing: a view of shape out_shape + size."""
    from numpy.lib.stride_tricks import sliding_window_view

    axes = case.pooled_axes(a.ndim) if axes is None else axes
    size = tuple(case.size if size is None else size)
    stride = tuple(case.stride if stride is None else stride)
    win = sliding_window_view(a, size, axis=axes)
    sl = [slice(None)] * a.ndim
    for ax, s in zip(axes, stride):
        sl[ax] = slice(None, None, s)
    return win[tuple(sl)]


def _to_dtype(r: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        info = np.iinfo(dtype)
        r = np.clip(np.rint(r), info.min, info.max)
    return r.astype(dtype)


def _slabbed(wins: List[np.ndarray], ndim: int, n: int, func, out_dtype) -> np.ndarray:
    """out[rows] = func(rows, *float64 windows of those rows as (..., n)), a
    slab of output rows (axis 0) at a time, at most ~4 M window values each."""
    oshape = wins[0].shape[:ndim]
    out = np.empty(oshape, out_dtype)
    per_row = max(1, out.size // max(1, oshape[0]) * n)
    step = max(1, (1 << 22) // per_row)
    for i in range(0, oshape[0], step):
        ws = [w[i:i + step] for w in wins]
        ws = [w.reshape(w.shape[:ndim] + (n,)).astype(np.float64) for w in ws]
        out[i:i + step] = _to_dtype(func(slice(i, i + step), *ws), out_dtype)
    return out


def _ref_blur(a: np.ndarray, axes, factor: int, order: int, out_dtype) -> np.ndarray:
    """weighted mean with outer(b, b) over size order+1, stride factor,
    padding order//2 with scipy's 'reflect' (numpy's 'symmetric')."""
    pad = [(0, 0)] * a.ndim
    for ax in axes:
        pad[ax] = (order // 2, order // 2)
    ap = np.pad(a, pad, mode="symmetric")
    k = order + 1
    kern = binomial_kernel(order, len(axes)).reshape(-1)
    win = np_windows(None, ap, (k,) * len(axes), (factor,) * len(axes), axes)
    return _slabbed([win], a.ndim, k ** len(axes), lambda rows, w: (w * kern).sum(-1) / kern.sum(), out_dtype)


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    data, aux = parts(case, x)
    p = case.params
    op = case.op
    dt = data.dtype
    if op == "blur":
        r = _ref_blur(data, case.pooled_axes(data.ndim), p["factor"], p["order"], dt)
    elif op == "maxblur":
        axes = case.pooled_axes(data.ndim)
        m = H.reference_pool(data, (p["size"],) * len(axes), (1,) * len(axes), axes, "max")
        r = _ref_blur(m, axes, p["factor"], p["order"], dt)
    elif op == "catavgmax":
        axes = case.pooled_axes(data.ndim)
        av = H.reference_pool(data, case.size, case.stride, axes, "mean", out_dtype=dt)
        mx = H.reference_pool(data, case.size, case.stride, axes, "max")
        r = np.concatenate([av, mx], axis=p["axis"])
    else:
        n = window_n(case)
        wins = [np_windows(case, data)] + ([np_windows(case, aux)] if aux is not None else [])
        ndim = data.ndim
        oshape = wins[0].shape[:ndim]
        row = int(np.prod(oshape[1:]))
        key = stream_key(SEED)

        def u_of(rows, shape):
            start = rows.start * row
            cnt = int(np.prod(shape))
            return stream_uniform(key, start, cnt).reshape(shape)

        def func(rows, w, a=None):
            with np.errstate(invalid="ignore", divide="ignore"):
                if op == "lp":
                    s = np.power(w, p["p"]).sum(-1)
                    if p.get("average"):
                        s = s / n
                    return np.power(s, 1.0 / p["p"])
                if op == "soft":
                    bw = p["beta"] * w
                    e = np.exp(bw - bw.max(-1, keepdims=True))
                    return (e * w).sum(-1) / e.sum(-1)
                if op == "stochastic":
                    if not p["training"]:
                        s = w.sum(-1)
                        return np.where(s == 0, 0.0, (w * w).sum(-1) / np.where(s == 0, 1.0, s))
                    # the first x_i whose running sum (C order) exceeds u * s
                    cs = np.cumsum(w, axis=-1)
                    u = u_of(rows, w.shape[:-1])
                    thr = u * cs[..., -1]
                    idx = np.minimum((cs <= thr[..., None]).sum(-1), n - 1)
                    return np.take_along_axis(w, idx[..., None], -1)[..., 0]
                if op == "mixed":
                    mx, av = w.max(-1), w.sum(-1) / n
                    if p["alpha"] is None:
                        return np.where(u_of(rows, w.shape[:-1]) < 0.5, mx, av)
                    return p["alpha"] * mx + (1 - p["alpha"]) * av
                if op == "avgmax":
                    return 0.5 * (w.sum(-1) / n + w.max(-1))
                if op == "weighted":
                    return (a * w).sum(-1) / a.sum(-1)
                if op == "lip":
                    e = np.exp(a - a.max(-1, keepdims=True))
                    return (e * w).sum(-1) / e.sum(-1)
                if op == "dpp":
                    d = w - w.sum(-1, keepdims=True) / n
                    if p["asymmetric"]:
                        d = np.maximum(d, 0)
                    wt = p["alpha"] + (d * d + DPP_EPS ** 2) ** (p["lam"] / 2)
                    return (wt * w).sum(-1) / wt.sum(-1)
                if op == "generic":
                    if p["function"] == "range-llc":
                        return w.max(-1) - w.min(-1)
                    return np.std(w, axis=-1)
            raise ValueError(op)

        r = _slabbed(wins, ndim, n, func, dt)
    _REF.clear()
    _REF[(case.name, data.shape)] = r
    return r


_REF: Dict[Tuple, np.ndarray] = {}  # the current case's reference, for the peers' notes


def exact(case: Case) -> bool:
    """Selections are compared exactly; so are max - min (one rounding of the
    exact difference) and the uint8 blur (exact sums, rounded half to even)."""
    if case.op == "stochastic" and case.params["training"]:
        return True
    if case.op == "generic" and case.params["function"] == "range-llc":
        return True
    return case.dtype == "uint8"


# ---------------------------------------------------------------------------
# checks of the peers
# ---------------------------------------------------------------------------


def tol_checker(case: Case, x: np.ndarray, rtol=PEER_RTOL, atol=PEER_ATOL):
    """allclose(rtol, atol) against fastpool's result (the reference if
    fastpool did not run); a failure is also compared with the reference."""
    key = (case.name, parts(case, x)[0].shape)
    ex = exact(case)

    def checker(res, target):
        st, note = H.check_result(res, target, ex, rtol, atol)
        if st in ("exact", "close"):
            return st, note
        ref = _REF.get(key)
        if ref is not None and ref is not target:
            s2, n2 = H.check_result(res, ref, ex, rtol, atol)
            note = f"vs fastpool: {st}, {note}; vs reference: {s2}{', ' + n2 if n2 else ''}"
        return st, note
    return checker


def stochastic_draw_checker(case: Case, x: np.ndarray, z_max: float = 6.0):
    """A stochastic-pooling draw with the peer's own random numbers: every
    value must be one of its window's values and nonzero unless the window
    sums to 0, and the sum of all draws must lie within ``z_max`` standard
    errors of its expectation sum(x_i**2)/s (variance sum(x_i**3)/s - E**2)."""
    data, _ = parts(case, x)

    def checker(res, target):
        res = np.asarray(res)
        if res.shape != target.shape or res.dtype != target.dtype:
            return "MISMATCH", f"shape/dtype {res.shape} {res.dtype} != {target.shape} {target.dtype}"
        views = H.window_slices(case, data)
        member = np.zeros(res.shape, bool)
        s = np.zeros(res.shape)
        s2 = np.zeros(res.shape)
        s3 = np.zeros(res.shape)
        for v in views:
            w = data[v]
            member |= w == res
            wd = w.astype(np.float64)
            s += wd
            s2 += wd * wd
            s3 += wd * wd * wd
        bad = int(np.count_nonzero(~member | ((res == 0) & (s > 0))))
        if bad:
            return "MISMATCH", f"{bad} values are not a nonzero value of their window"
        pos = s > 0
        e1 = s2[pos] / s[pos]
        var = np.maximum(s3[pos] / s[pos] - e1 * e1, 0)
        z = (res[pos].astype(np.float64).sum() - e1.sum()) / math.sqrt(max(var.sum(), 1e-300))
        same = float(np.mean(res == target))
        note = (f"a draw with its own random numbers: every value is a nonzero value of its window; "
                f"the sum of the draws is {z:+.2f} standard errors from its expectation; "
                f"{100 * same:.0f}% equal to the documented stream's draw")
        if abs(z) > z_max:
            return "MISMATCH", note
        return "other", note
    return checker


def mixed_draw_checker(case: Case, x: np.ndarray, z_max: float = 6.0):
    """mixed_pool(alpha=None) with the peer's own random numbers: every value
    is its window's max or (allclose) its mean, and the max is taken in a
    share of the windows that is within ``z_max`` standard errors of 1/2."""
    data, _ = parts(case, x)
    axes = case.pooled_axes(data.ndim)

    def checker(res, target):
        res = np.asarray(res)
        if res.shape != target.shape or res.dtype != target.dtype:
            return "MISMATCH", f"shape/dtype {res.shape} {res.dtype} != {target.shape} {target.dtype}"
        mx = H.reference_pool(data, case.size, case.stride, axes, "max")
        av = H.reference_pool(data, case.size, case.stride, axes, "mean", out_dtype=data.dtype)
        is_max = res == mx
        is_avg = np.isclose(res, av, rtol=PEER_RTOL, atol=PEER_ATOL)
        bad = int(np.count_nonzero(~(is_max | is_avg)))
        if bad:
            return "MISMATCH", f"{bad} values are neither their window's max nor its mean"
        dist = ~np.isclose(mx, av, rtol=PEER_RTOL, atol=PEER_ATOL)  # windows where they differ
        m = int(np.count_nonzero(dist))
        k = int(np.count_nonzero(is_max & dist))
        z = (k - 0.5 * m) / math.sqrt(max(0.25 * m, 1e-300))
        same = float(np.mean(res == target))
        note = (f"a draw with its own random numbers: every value is its window's max or mean; max in "
                f"{100 * k / max(m, 1):.2f}% of the windows ({z:+.2f} standard errors from 50%); "
                f"{100 * same:.0f}% equal to the documented stream's draw")
        if abs(z) > z_max:
            return "MISMATCH", note
        return "other", note
    return checker


def peer_checker(case: Case, x: np.ndarray):
    if case.op == "stochastic" and case.params["training"]:
        return stochastic_draw_checker(case, x)
    if case.op == "mixed" and case.params["alpha"] is None:
        return mixed_draw_checker(case, x)
    return tol_checker(case, x)


def _peer(name: str, fn, desc: str, case: Case, x: np.ndarray) -> H.Contender:
    c = H.Contender(name, fn, desc=desc)
    c.checker = peer_checker(case, x)
    return c


# ---------------------------------------------------------------------------
# the LowLevelCallable: max - min in C, compiled at run time
# ---------------------------------------------------------------------------

_RANGE_C = r"""
#include <stdint.h>
int fastpool_bench_range(double *values, intptr_t n, double *result, void *user_data)
{
    double lo = values[0], hi = values[0];
    for (intptr_t i = 1; i < n; i++) {
        double v = values[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    *result = hi - lo;
    (void)user_data;
    return 1;
}
"""
_LLC: Dict[str, object] = {}


def range_callable():
    """(LowLevelCallable, None) or (None, why): max - min with
    scipy.ndimage.generic_filter's C signature, built once per process."""
    if "llc" in _LLC or "why" in _LLC:
        return _LLC.get("llc"), _LLC.get("why")
    try:
        import ctypes

        if scipy is None:
            raise RuntimeError("scipy is not installed")
        cc = os.environ.get("CC", "cc")
        if shutil.which(cc) is None:
            raise RuntimeError(f"no C compiler ({cc}) to build the LowLevelCallable")
        d = tempfile.mkdtemp(prefix="fastpool-bench-")
        atexit.register(shutil.rmtree, d, True)
        src, so = os.path.join(d, "range.c"), os.path.join(d, "range.so")
        with open(src, "w") as f:
            f.write(_RANGE_C)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", so, src], check=True, capture_output=True)
        lib = ctypes.CDLL(so)
        fn = lib.fastpool_bench_range
        fn.restype = ctypes.c_int
        fn.argtypes = (ctypes.POINTER(ctypes.c_double), ctypes.c_ssize_t,
                       ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)
        _LLC["lib"] = lib
        _LLC["llc"] = scipy.LowLevelCallable(fn, signature="int (double *, npy_intp, double *, void *)")
    except Exception as exc:
        _LLC["why"] = f"{type(exc).__name__}: {exc}"
    return _LLC.get("llc"), _LLC.get("why")


def generic_function(case: Case):
    """(the function passed to fastpool / scipy, its description) or (None, why)."""
    if case.params["function"] == "range-llc":
        llc, why = range_callable()
        if llc is None:
            return None, why
        return llc, "LowLevelCallable(max - min in C, built with cc)"
    return np.std, "np.std"


# ---------------------------------------------------------------------------
# fastpool
# ---------------------------------------------------------------------------


def _accepts(func, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def fastpool_call(fp, case: Case, x: np.ndarray):
    """(args, kwargs, shown) of the fastpool call (without workers / output)."""
    data, aux = parts(case, x)
    p = case.params
    op = case.op
    size, stride = tuple(case.size), tuple(case.stride)
    kw: Dict = {"axes": case.axes}
    if op in ("blur", "maxblur"):
        args = (data,)
        kw.update({k: v for k, v in p.items()})
        shown = "x"
    elif op == "lp":
        args = (data, p["p"], size, stride)
        kw["average"] = p["average"]
        shown = f"x, {p['p']}, {size}, {stride}"
    elif op in ("weighted", "lip"):
        args = (data, aux, size, stride)
        shown = f"x, {p['aux']}, {size}, {stride}"
    elif op == "generic":
        func, fdesc = generic_function(case)
        if func is None:
            return None
        args = (data, func, size, stride)
        shown = f"x, {fdesc}, {size}, {stride}"
    else:
        args = (data, size, stride)
        shown = f"x, {size}, {stride}"
        for k in ("beta", "training", "alpha", "axis", "lam", "asymmetric"):
            if k in p:
                kw[k] = p[k]
        if op in ("stochastic", "mixed") and (op == "stochastic" or p["alpha"] is None):
            kw["seed"] = SEED
    shown += "".join(f", {k}={v!r}" for k, v in kw.items())
    return args, kw, shown


def has_function(fp, case: Case) -> bool:
    return fp is not None and hasattr(fp, FUNCS[case.op])


def fastpool_contenders(fp, case: Case, x: np.ndarray, threads: int, ref: np.ndarray) -> List[H.Contender]:
    if not has_function(fp, case):
        return []
    name = FUNCS[case.op]
    func = getattr(fp, name)
    call = fastpool_call(fp, case, x)
    if call is None:
        return []
    args, kw, shown = call

    def run():
        return func(*args, workers=threads, **kw)

    res = [H.Contender(H.FASTPOOL, run, kind="fastpool", desc=f"fastpool.{name}({shown}, workers=n)")]
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
    if case.op == "generic":
        func, why = generic_function(case)
        if func is None:
            return label + f" [no LowLevelCallable: {why}]"
    return label


def payload(fp) -> Dict:
    missing = sorted({FUNCS[c.op] for c in CASES if fp is not None and not has_function(fp, c)})
    return {"fastpool_missing": missing, "peer_rtol": PEER_RTOL, "peer_atol": PEER_ATOL}


# ---------------------------------------------------------------------------
# torch: the formula in PyTorch CPU ops, on torch.from_numpy views
# ---------------------------------------------------------------------------


def _torch_layout(case: Case, a: np.ndarray):
    """(lead, nd, oshape): ``torch.from_numpy(a).reshape(lead + a.shape)`` is an
    (N, C, *spatial) tensor whose trailing nd axes are the pooled ones; None
    where torch's 2-D / 3-D pooling does not apply."""
    axes, oshape, _, trailing = H.geometry(case, a)
    nd = len(axes)
    nb = a.ndim - nd
    if not trailing or nd not in (2, 3) or nb > 2:
        return None
    return (1,) * (2 - nb), nd, oshape


def torch_peer(case: Case, x: np.ndarray):
    if torch is None:
        return None
    data, aux = parts(case, x)
    op, p = case.op, case.params
    if op in ("blur", "maxblur"):
        return torch_blur_peer(case, data)
    lay = _torch_layout(case, data)
    if lay is None:
        return None
    lead, nd, oshape = lay
    k, s = tuple(case.size), tuple(case.stride)
    avg = getattr(F, f"avg_pool{nd}d")
    mxp = getattr(F, f"max_pool{nd}d")
    n = window_n(case)
    _, _, nonoverlap, _ = H.geometry(case, data)

    def T(a):
        return torch.from_numpy(a).reshape(lead + a.shape)

    def back(t):
        return t.numpy().reshape(oshape)

    def unfold(t):  # (N, C, *out, *size) view: unfold appends the window axes
        for i, (kk, ss) in enumerate(zip(k, s)):
            t = t.unfold(2 + i, kk, ss)
        return t

    wdims = tuple(range(-nd, 0))
    if op == "lp":
        P = p["p"]
        if p["average"]:
            def run():
                return back(avg(T(data).pow(P), k, s).pow(1.0 / P))
            desc = f"F.avg_pool{nd}d(t.pow({P}), {k}, {s}).pow(1/{P})"
        else:
            lp = getattr(F, f"lp_pool{nd}d")

            def run():
                return back(lp(T(data), P, k, s))
            desc = f"F.lp_pool{nd}d(t, {P}, {k}, {s})"
    elif op == "soft":
        beta = p["beta"]
        if beta != 1.0:
            return None

        def run():
            t = T(data)
            e = t.exp()
            return back(avg(t * e, k, s) / avg(e, k, s))
        desc = (f"SoftPool's reference formula: e = t.exp(); F.avg_pool{nd}d(t * e) / F.avg_pool{nd}d(e) "
                "(overflows for x > 88; the input is standard normal)")
    elif op == "stochastic" and not p["training"]:
        def run():
            t = T(data)
            num, den = avg(t * t, k, s), avg(t, k, s)
            return back(torch.where(den > 0, num / den, 0.0))
        desc = f"torch.where(den > 0, F.avg_pool{nd}d(t * t) / den, 0), den = F.avg_pool{nd}d(t)"
    elif op == "stochastic":
        def run():
            w = unfold(T(data))
            w = w.reshape(w.shape[:-nd] + (n,))
            cs = w.cumsum(-1)
            u = torch.rand(cs.shape[:-1] + (1,), dtype=torch.float64)
            idx = (cs <= u * cs[..., -1:]).sum(-1, keepdim=True).clamp_(max=n - 1)
            return back(torch.gather(w, -1, idx))
        desc = ("t.unfold(...) windows reshaped to (..., n), cumsum, u = torch.rand(float64): "
                "gather at the first running sum > u * sum (torch.multinomial rejects all-zero windows)")
    elif op == "mixed":
        alpha = p["alpha"]
        if alpha is None:
            def run():
                t = T(data)
                mx, av = mxp(t, k, s), avg(t, k, s)
                return back(torch.where(torch.rand(mx.shape) < 0.5, mx, av))
            desc = f"torch.where(torch.rand(out) < 0.5, F.max_pool{nd}d(t), F.avg_pool{nd}d(t))"
        else:
            def run():
                t = T(data)
                return back(alpha * mxp(t, k, s) + (1 - alpha) * avg(t, k, s))
            desc = f"{alpha} * F.max_pool{nd}d(t) + {1 - alpha} * F.avg_pool{nd}d(t)"
    elif op == "avgmax":
        def run():
            t = T(data)
            return back(0.5 * (avg(t, k, s) + mxp(t, k, s)))
        desc = f"0.5 * (F.avg_pool{nd}d(t) + F.max_pool{nd}d(t)) (timm's avgmax)"
    elif op == "catavgmax":
        axis = p["axis"]
        if lead:
            return None

        def run():
            t = T(data)
            return torch.cat((avg(t, k, s), mxp(t, k, s)), dim=axis).numpy()
        desc = f"torch.cat((F.avg_pool{nd}d(t), F.max_pool{nd}d(t)), dim={axis}) (timm's catavgmax)"
    elif op == "weighted":
        def run():
            t, w = T(data), T(aux)
            return back(avg(w * t, k, s) / avg(w, k, s))
        desc = f"F.avg_pool{nd}d(w * t) / F.avg_pool{nd}d(w)"
    elif op == "lip":
        def run():
            t, e = T(data), T(aux).exp()
            return back(avg(t * e, k, s) / avg(e, k, s))
        desc = f"e = logits.exp(); F.avg_pool{nd}d(t * e) / F.avg_pool{nd}d(e) (LIP's formula)"
    elif op == "dpp":
        alpha, lam, asym = p["alpha"], p["lam"], p["asymmetric"]
        eps2 = DPP_EPS ** 2

        def weights(d):
            if asym:
                d = d.clamp(min=0)
            return alpha + (d * d + eps2).pow(lam / 2)

        if nonoverlap:
            def run():
                t = T(data)
                m = avg(t, k, s)
                mu = F.interpolate(m, scale_factor=k, mode="nearest")
                w = weights(t - mu)
                return back(avg(w * t, k, s) / avg(w, k, s))
            desc = (f"m = F.avg_pool{nd}d(t); F.interpolate(m, nearest) to the input; w = {alpha} + "
                    f"((t - m)**2 + eps**2)**{lam / 2}; F.avg_pool{nd}d(w * t) / F.avg_pool{nd}d(w)")
        else:
            def run():
                W = unfold(T(data))
                d = W - W.mean(wdims, keepdim=True)
                w = weights(d)
                return back((w * W).sum(wdims) / w.sum(wdims))
            desc = (f"W = t.unfold(...) (overlapping windows); w = {alpha} + ((W - W.mean)**2 + eps**2)**{lam / 2}; "
                    "(w * W).sum / w.sum")
    elif op == "generic":
        if p["function"] == "range-llc":
            def run():
                t = T(data)
                return back(mxp(t, k, s) + mxp(-t, k, s))
            desc = f"F.max_pool{nd}d(t) + F.max_pool{nd}d(-t) (max - min)"
        else:
            def run():
                W = unfold(T(data))
                return back(W.reshape(W.shape[:-nd] + (n,)).std(-1, correction=0))
            desc = "t.unfold(...).reshape(..., n).std(-1, correction=0)"
    else:
        return None
    return _peer("torch", run, desc, case, x)


def torch_blur_peer(case: Case, data: np.ndarray):
    """Zhang's BlurPool: pad + depthwise conv2d with the normalized binomial
    filter, stride ``factor``.  fastpool's 'reflect' is scipy's (the edge is
    repeated; torch's 'reflect' is scipy's 'mirror'); for a 1-wide pad (order
    2, 3) that is torch's 'replicate'.  maxblur: F.max_pool2d(2, stride=1) first
    (antialiased-cnns' MaxBlurPool).  uint8: computed in float32 (exact sums),
    round_() (half to even), to(uint8)."""
    p = case.params
    order, factor = p["order"], p["factor"]
    pad = order // 2
    if data.ndim != 2 or pad > 1:
        return None
    kern = torch.from_numpy((binomial_kernel(order, 2) / binomial_kernel(order, 2).sum()).astype(np.float32))
    kern = kern[None, None]
    is_int = data.dtype.kind in "iub"
    tdt = torch.from_numpy(data[:0]).dtype
    mx = p.get("size") if case.op == "maxblur" else None

    def run():
        t = torch.from_numpy(data)[None, None]
        if is_int:
            t = t.float()
        if mx:
            t = F.max_pool2d(t, mx, stride=1)
        if pad:
            t = F.pad(t, (pad,) * 4, mode="replicate")
        r = F.conv2d(t, kern, stride=factor)
        if is_int:
            r = r.round_().to(tdt)
        return r[0, 0].numpy()
    desc = (f"F.conv2d(F.pad(t, {pad}, mode='replicate'), binomial {order + 1}x{order + 1} / sum, stride={factor})"
            + (f" after F.max_pool2d(t, {mx}, stride=1)" if mx else "")
            + (" on t.float(), .round_().to(uint8)" if is_int else "")
            + " ('replicate' = scipy's 'reflect' for a 1-wide pad)")
    return _peer("torch", run, desc, case, data)


# ---------------------------------------------------------------------------
# numpy: sliding_window_view + reductions in the input's dtype
# ---------------------------------------------------------------------------


def numpy_peer(case: Case, x: np.ndarray):
    data, aux = parts(case, x)
    op, p = case.op, case.params
    if op in ("blur", "maxblur"):
        return numpy_blur_peer(case, data)
    nd = len(case.size)
    red = tuple(range(data.ndim, data.ndim + nd))
    _, oshape, _, _ = H.geometry(case, data)
    n = window_n(case)
    rng = np.random.default_rng(12345)
    swv = "sliding_window_view(x, size)[::stride]"

    def W(a):
        return np_windows(case, a)

    if op == "lp":
        P = p["p"]
        avg = p["average"]

        def run():
            s = (W(data) ** P).sum(red)
            if avg:
                s /= n
            return np.sqrt(s) if P == 2 else s ** (1 / P)
        desc = f"(W ** {P}).sum(window axes){' / n' if avg else ''} ** (1/{P}), W = {swv}"
    elif op == "soft":
        beta = p["beta"]
        if beta != 1.0:
            return None

        def run():
            e = np.exp(data)
            return (W(data * e)).sum(red) / W(e).sum(red)
        desc = f"e = np.exp(x); W(x * e).sum / W(e).sum (SoftPool's formula), W = {swv}"
    elif op == "stochastic" and not p["training"]:
        def run():
            w = W(data)
            s = w.sum(red)
            q = (w * w).sum(red)
            return np.divide(q, s, out=np.zeros_like(q), where=s > 0)
        desc = f"(W * W).sum / W.sum, 0 where the sum is 0, W = {swv}"
    elif op == "stochastic":
        def run():
            w = W(data).reshape(oshape + (n,))
            cs = np.cumsum(w, axis=-1)
            u = rng.random(oshape)[..., None]
            idx = np.minimum((cs <= u * cs[..., -1:]).sum(-1), n - 1)
            return np.take_along_axis(w, idx[..., None], -1)[..., 0]
        desc = (f"{swv}.reshape(..., n), np.cumsum, u = rng.random(): the first running sum > u * sum "
                "(np.take_along_axis)")
    elif op == "mixed":
        alpha = p["alpha"]
        if alpha is None:
            def run():
                w = W(data)
                return np.where(rng.random(oshape) < 0.5, w.max(red), w.mean(red))
            desc = f"np.where(rng.random(out) < 0.5, W.max, W.mean), W = {swv}"
        else:
            def run():
                w = W(data)
                return alpha * w.max(red) + (1 - alpha) * w.mean(red)
            desc = f"{alpha} * W.max + {1 - alpha} * W.mean, W = {swv}"
    elif op == "avgmax":
        def run():
            w = W(data)
            return 0.5 * (w.mean(red) + w.max(red))
        desc = f"0.5 * (W.mean + W.max), W = {swv}"
    elif op == "catavgmax":
        axis = p["axis"]

        def run():
            w = W(data)
            return np.concatenate([w.mean(red), w.max(red)], axis=axis)
        desc = f"np.concatenate([W.mean, W.max], axis={axis}), W = {swv}"
    elif op == "weighted":
        def run():
            return W(data * aux).sum(red) / W(aux).sum(red)
        desc = f"W(w * x).sum / W(w).sum, W = {swv}"
    elif op == "lip":
        def run():
            e = np.exp(aux)
            return W(data * e).sum(red) / W(e).sum(red)
        desc = f"e = np.exp(logits); W(x * e).sum / W(e).sum, W = {swv}"
    elif op == "dpp":
        alpha, lam, asym = p["alpha"], p["lam"], p["asymmetric"]
        eps2 = np.float32(DPP_EPS ** 2)
        half = lam / 2

        def run():
            w = W(data)
            d = w - w.mean(red, keepdims=True)
            if asym:
                np.maximum(d, 0, out=d)
            wt = d * d
            wt += eps2
            wt = np.sqrt(wt) if half == 0.5 else wt ** half
            wt += alpha
            return (wt * w).sum(red) / wt.sum(red)
        desc = (f"d = W - W.mean; w = {alpha} + (d*d + eps**2)**{half}; (w * W).sum / w.sum, W = {swv}")
    elif op == "generic":
        if p["function"] == "range-llc":
            def run():
                w = W(data)
                return w.max(red) - w.min(red)
            desc = f"W.max - W.min, W = {swv}"
        else:
            def run():
                return W(data).std(red)
            desc = f"W.std(window axes), W = {swv}"
    else:
        return None
    return _peer("numpy", run, desc, case, x)


def numpy_blur_peer(case: Case, data: np.ndarray):
    """np.pad(mode='symmetric') (scipy's 'reflect'), sliding_window_view with
    stride ``factor``, np.einsum with the normalized binomial filter; maxblur:
    sliding_window_view(x, 2).max first."""
    p = case.params
    order, factor = p["order"], p["factor"]
    pad = order // 2
    nd = data.ndim
    ksz = order + 1
    kern = (binomial_kernel(order, nd) / binomial_kernel(order, nd).sum()).astype(np.float32)
    axes = tuple(range(nd))
    is_int = data.dtype.kind in "iub"
    dt = data.dtype
    mx = p.get("size") if case.op == "maxblur" else None
    sub = "".join("abcdef"[:nd])
    spec = f"...{sub},{sub}->..."

    def run():
        a = data.astype(np.float32) if is_int else data
        if mx:
            a = np_windows(None, a, (mx,) * nd, (1,) * nd, axes).max(axis=tuple(range(nd, 2 * nd)))
        a = np.pad(a, pad, mode="symmetric")
        w = np_windows(None, a, (ksz,) * nd, (factor,) * nd, axes)
        r = np.einsum(spec, w, kern)
        return np.rint(r).astype(dt) if is_int else r
    desc = ((f"sliding_window_view(x, {mx}).max, then " if mx else "")
            + f"np.pad({pad}, 'symmetric') + np.einsum(sliding_window_view({ksz}x{ksz})[::{factor}], "
            f"binomial / sum)" + (" in float32, np.rint().astype(uint8)" if is_int else ""))
    return _peer("numpy", run, desc, case, data)


# ---------------------------------------------------------------------------
# scipy: generic_filter + slicing, for generic_pool only
# ---------------------------------------------------------------------------


def scipy_peer(case: Case, x: np.ndarray):
    """scipy.ndimage.generic_filter with the same function (the C
    LowLevelCallable, or the Python callable), the window moved to start at
    the filter position (origin = -(k//2), see H.filter_window) and [::stride]
    slicing: it computes every position, not only the strided ones (slow)."""
    if ndi is None or case.op != "generic":
        return None
    data, _ = parts(case, x)
    func, fdesc = generic_function(case)
    if func is None:
        return None
    size, origin, sl = H.filter_window(case, data)

    def run():
        return ndi.generic_filter(data, func, size=size, origin=origin)[sl]
    desc = f"scipy.ndimage.generic_filter(x, {fdesc}, size={size}, origin={origin})[::stride]"
    return _peer("scipy", run, desc, case, x)


PEER_BUILDERS: Dict[str, Callable] = {
    "torch": torch_peer,
    "numpy": numpy_peer,
    "scipy": scipy_peer,
}

LEGEND_EXTRA = (
    f"Peers are float32 formulas, checked with allclose(rtol={PEER_RTOL:g}, atol={PEER_ATOL:g}) against "
    "fastpool's float64 result rounded once. "
    "§ a random draw with the peer's own random numbers (stochastic training, mixed alpha=None): checked "
    "to be a valid draw in every window and distributed as the formula says, not value for value; "
    "fastpool's draws are checked value for value against the documented stream. "
    "~ timed by one call only (it took longer than --slow seconds; not in the interleaved rounds).")

BENCHMARK = H.Benchmark(
    name="bench_weighted",
    title="weighted and random pooling (lp, soft, stochastic, mixed, avgmax, catavgmax, weighted, lip, dpp, "
          "blur, maxblur, generic)",
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
    single_threaded="numpy, scipy",
    row_label=row_label,
    payload=payload,
)


def main(argv=None):
    return H.run_benchmark(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
