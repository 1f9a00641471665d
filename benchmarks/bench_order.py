#!/usr/bin/env python
"""fastpool order statistics (median, rank, percentile and mode pooling) against
their peers and a memory-copy roofline.

    python benchmarks/bench_order.py                      # full run (~5 min on 2 cores)
    python benchmarks/bench_order.py --quick              # smoke test (small arrays)
    python benchmarks/bench_order.py --cases mode --threads 1 --json out.json

Same options, columns, timing and JSON layout as bench_basic.py (see
benchmarks/README.md); benchmarks/table.py renders the JSON.  fastpool's median
is a selection (rank n // 2, the upper middle for even n); peers that compute
another statistic (np.median's mean of the two middles, torch's lower median)
are checked against a reference of *their* statistic and marked §.
"""
from __future__ import annotations

import math
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
cv2 = H.try_import("cv2")
ndi = H.try_import("scipy.ndimage")
scipy_stats = H.try_import("scipy.stats")
skimage_measure = H.try_import("skimage.measure")
tinybrain = H.try_import("tinybrain")

PEER_ORDER = ["torch", "cv2", "tinybrain", "scipy", "skimage", "numpy-sort", "numpy-slices", "numpy-minmax"]

# fastpool's function per case.op; rank and percentile take their parameter first
FUNCS = {"median": "median_pool", "rank": "rank_pool", "percentile": "percentile_pool", "mode": "mode_pool"}
N_LABELS = 1000  # labels of the Voronoi label image of the mode case

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

Case = H.Case

CASES: List[Case] = [
    Case("float32 2048x2048 2x2/2 median", (2048, 2048), (512, 512), "float32", "median", (2, 2), (2, 2)),
    Case("float32 2048x2048 3x3/2 median", (2048, 2048), (512, 512), "float32", "median", (3, 3), (2, 2)),
    Case("uint32 4096x4096 2x2/2 mode, Voronoi labels", (4096, 4096), (1024, 1024), "uint32", "mode",
         (2, 2), (2, 2)),
    Case("float32 128x256x256 3x3x3/2 median", (128, 256, 256), (32, 128, 128), "float32", "median",
         (3, 3, 3), (2, 2, 2)),
    Case("float32 2048x2048 3x3/2 rank 2", (2048, 2048), (512, 512), "float32", "rank", (3, 3), (2, 2),
         params={"rank": 2}),
    Case("uint8 2048x2048 4x4/4 percentile 25", (2048, 2048), (512, 512), "uint8", "percentile", (4, 4), (4, 4),
         params={"percentile": 25}),
]


def method_args(case: Case) -> Tuple:
    """The method's own positional parameter: rank_pool(x, rank, ...), percentile_pool(x, p, ...)."""
    if case.op == "rank":
        return (case.params["rank"],)
    if case.op == "percentile":
        return (case.params["percentile"],)
    return ()


def method_params(case: Case) -> Dict:
    return {k: v for k, v in case.params.items() if k in ("rank", "percentile")}


def window_n(case: Case) -> int:
    return int(np.prod(case.size))


def case_rank(case: Case) -> int:
    return H.order_rank(case.op, window_n(case), **method_params(case))


def voronoi_labels(shape, dtype, n_labels: int, seed: int = 0) -> np.ndarray:
    """A label image with realistic structure: the Voronoi cells of
    ``n_labels`` random seeds (each pixel takes its nearest seed's label, via
    scipy's exact Euclidean distance transform), with random distinct labels
    spread over the dtype's range (0 unused).  Most 2x2 blocks are uniform; the
    ones on cell borders hold 2-3 labels (ties included)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    seeds = tuple(rng.integers(0, n, n_labels) for n in shape)
    ids = rng.choice(int(info.max), size=n_labels, replace=False).astype(dtype) + dtype.type(1)
    if ndi is None:  # fallback without scipy: blocky labels
        cell = max(1, int(round((np.prod(shape) / n_labels) ** (1 / len(shape)))))
        grid = tuple(-(-n // cell) for n in shape)
        coarse = ids[rng.integers(0, n_labels, grid)]
        for ax in range(len(shape)):
            coarse = np.repeat(coarse, cell, axis=ax)
        return np.ascontiguousarray(coarse[tuple(slice(0, n) for n in shape)])
    mask = np.ones(shape, bool)
    mask[seeds] = False
    nearest = ndi.distance_transform_edt(mask, return_distances=False, return_indices=True)
    lab = np.zeros(shape, dtype)
    lab[seeds] = ids
    return np.ascontiguousarray(lab[tuple(nearest)])


def make_input(case: Case, shape, seed=0) -> np.ndarray:
    if case.op == "mode":
        return voronoi_labels(shape, np.dtype(case.dtype), N_LABELS, seed)
    # float32: standard normal; uint8: uniform 0..255 (many ties in a 4x4 window)
    return H.random_input(case.dtype, shape, seed)


def reference(case: Case, x: np.ndarray) -> np.ndarray:
    return H.reference_pool(x, case.size, case.stride, case.pooled_axes(x.ndim), case.op, **method_params(case))


# references of *other* statistics that some peers compute, once per case
_OTHER_REF: Dict[Tuple, np.ndarray] = {}


def other_reference(case: Case, x: np.ndarray, reducer: str, **params) -> Callable[[], np.ndarray]:
    key = (case.name, x.shape, reducer, tuple(sorted(params.items())))

    def get():
        if key not in _OTHER_REF:
            if any(k[:2] != key[:2] for k in _OTHER_REF):
                _OTHER_REF.clear()  # a new case: drop the previous case's arrays
            r = H.reference_pool(x, case.size, case.stride, case.pooled_axes(x.ndim), reducer,
                                 out_dtype=np.float64 if reducer == "median-mean" else x.dtype, **params)
            _OTHER_REF[key] = r
        return _OTHER_REF[key]
    return get


def median_mean_checker(case: Case, x: np.ndarray, atol: float = 1e-6):
    """For peers computing np.median's statistic: the mean of the two middle
    values of an even window (for odd windows it equals fastpool's median)."""
    ref = other_reference(case, x, "median-mean")
    return H.other_statistic_checker(
        lambda: ref().astype(x.dtype) if x.dtype.kind == "f" else ref(),
        "mean of the two middle values (np.median), not a selection", exact=False, atol=atol)


def mode_tie_checker(case: Case, x: np.ndarray):
    """For mode peers with another tie rule: the result must be *a* mode of
    every window (its count equals the largest count); ``ties`` if it differs
    from fastpool's smallest-of-the-tied-values somewhere."""
    views = H.window_slices(case, x)

    def checker(res, target):
        st, note = H.check_result(res, target, True)
        if st == "exact":
            return st, note
        res = np.asarray(res)
        if res.shape != target.shape or res.dtype != target.dtype:
            return "MISMATCH", note
        cnt_res = np.zeros(target.shape, np.int32)
        cnt_best = np.zeros(target.shape, np.int32)
        for v in views:
            w = x[v]
            cnt_res += w == res
            cnt_best += w == target
        bad = int(np.count_nonzero(cnt_res != cnt_best))
        if bad:
            return "MISMATCH", f"not a most frequent value in {bad} windows; {note}"
        ndiff = int(np.count_nonzero(res != target))
        return "ties", (f"a most frequent value in every window; another tie rule in {ndiff} windows "
                        f"({100 * ndiff / target.size:.2g}%)")
    return checker


# ---------------------------------------------------------------------------
# fastpool, or (ONLY while fastpool lacks the function) a NumPy stand-in
# ---------------------------------------------------------------------------


def numpy_standin(case: Case, x: np.ndarray, output=None) -> np.ndarray:
    """NOT FASTPOOL: a slow NumPy stand-in, used only while the installed fastpool
    lacks the function (rows and JSON are marked).  It stacks the strided
    slices of every window offset and selects with np.partition / counts."""
    views = H.window_slices(case, x)
    w = np.stack([x[v] for v in views], axis=-1)
    if case.op == "mode":
        r = H.window_mode(w)
    else:
        k = case_rank(case)
        r = np.partition(w, k, axis=-1)[..., k]
    if output is not None:
        np.copyto(output, r)
        return output
    return r


def has_function(fp, case: Case) -> bool:
    return fp is not None and hasattr(fp, FUNCS[case.op])


def fastpool_contenders(fp, case: Case, x: np.ndarray, threads: int, ref: np.ndarray) -> List[H.Contender]:
    name = FUNCS[case.op]
    args = method_args(case)
    size, stride, axes = case.size, case.stride, case.axes
    out = np.zeros(ref.shape, ref.dtype)
    shown = ", ".join(map(repr, args + (size, stride)))
    if has_function(fp, case):
        func = getattr(fp, name)

        def run():
            return func(x, *args, size, stride, axes=axes, workers=threads)

        def run_out():
            return func(x, *args, size, stride, axes=axes, workers=threads, output=out)
        desc = f"fastpool.{name}(x, {shown}, axes={axes}, workers=n)"
        desc_out = f"fastpool.{name}(..., output=<preallocated {out.dtype} {out.shape}>, workers=n)"
    else:
        def run():
            return numpy_standin(case, x)

        def run_out():
            return numpy_standin(case, x, out)
        desc = f"NUMPY STAND-IN, NOT FASTPOOL (fastpool.{name} missing): np.stack of the strided slices + " + (
            "sort and count" if case.op == "mode" else f"np.partition, element {case_rank(case)}")
        desc_out = desc + ", copied into output="
    return [H.Contender(H.FASTPOOL, run, kind="fastpool", desc=desc),
            H.Contender("fastpool-output", run_out, kind="fastpool-out", desc=desc_out)]


def row_label(fp, case: Case, label: str) -> str:
    if fp is not None and not has_function(fp, case):
        return label + " [NumPy stand-in, not fastpool]"
    return label


def payload(fp) -> Dict:
    missing = sorted({FUNCS[c.op] for c in CASES if fp is not None and not has_function(fp, c)})
    return {"fastpool_standin": missing}


# ---------------------------------------------------------------------------
# peers.  Each builder returns a Contender or None where the peer does not
# apply.  Every fn() allocates its own output and returns the result the way a
# user of that library gets it (views included).
# ---------------------------------------------------------------------------


def _block_shape(case: Case, x: np.ndarray):
    """For non-overlapping windows: the reshape that splits every pooled axis
    into (blocks, k), and the transpose that moves the k's to the end."""
    axes = case.pooled_axes(x.ndim)
    rshape, outer, inner = [], [], []
    for ax, n in enumerate(x.shape):
        if ax in axes:
            k = case.size[axes.index(ax)]
            rshape += [n // k, k]
            outer.append(len(rshape) - 2)
            inner.append(len(rshape) - 1)
        else:
            rshape.append(n)
            outer.append(len(rshape) - 1)
    return tuple(rshape), tuple(outer + inner)


def torch_peer(case: Case, x: np.ndarray):
    """``Tensor.unfold`` along every pooled axis (a view), reshape to
    (..., n) (a copy), then median / kthvalue / mode along the last axis."""
    if torch is None:
        return None
    axes, oshape, _, _ = H.geometry(case, x)
    n = window_n(case)
    size, stride = case.size, case.stride
    xv, back, note = x, None, ""
    if case.op == "mode":
        try:
            torch.zeros(4, dtype=torch.from_numpy(x[:0]).dtype).mode()
        except (RuntimeError, TypeError):
            if x.dtype == np.uint32:  # torch has no uint32 mode: the int32 view (same bits)
                xv, back, note = x.view(np.int32), np.uint32, " on x.view(int32) (no uint32 mode in torch)"
            else:
                return None
    if case.op == "median":
        def red(t):
            return t.median(dim=-1).values
        what = "median(dim=-1)"
    elif case.op == "mode":
        def red(t):
            return t.mode(dim=-1).values
        what = "mode(dim=-1)"
    else:
        k = case_rank(case) + 1

        def red(t):
            return t.kthvalue(k, dim=-1).values
        what = f"kthvalue({k}, dim=-1)"

    def run():
        t = torch.from_numpy(xv)
        for a, kk, s in zip(axes, size, stride):
            t = t.unfold(a, kk, s)
        r = red(t.reshape(oshape + (n,))).numpy()
        return r.view(back) if back is not None else r

    unf = "".join(f".unfold({a}, {kk}, {s})" for a, kk, s in zip(axes, size, stride))
    desc = f"torch.from_numpy(x){unf}.reshape(..., {n}).{what}{note}"
    c = H.Contender("torch", run, desc=desc)
    if case.op == "median" and n % 2 == 0:
        lower = other_reference(case, x, "rank", rank=(n - 1) // 2)
        c.checker = H.other_statistic_checker(lower, f"torch's lower median (rank {(n - 1) // 2} of {n})")
        c.desc += f": the lower median, rank {(n - 1) // 2} of {n} (a different statistic)"
    if case.op == "mode":
        c.checker = mode_tie_checker(case, x)
    return c


def cv2_peer(case: Case, x: np.ndarray):
    """cv2.medianBlur (odd square windows on 2-D images; float32 only for k
    3 and 5) + slicing: pooling output j's window starts at j*stride, so its
    centre is j*stride + k//2."""
    if cv2 is None or case.op != "median" or x.ndim != 2:
        return None
    k = case.size[0]
    if tuple(case.size) != (k, k) or k % 2 == 0 or x.dtype not in (np.uint8, np.uint16, np.float32):
        return None
    if x.dtype != np.uint8 and k > 5:
        return None
    _, oshape, _, _ = H.geometry(case, x)
    sl = tuple(slice(k // 2, k // 2 + s * (o - 1) + 1, s) for s, o in zip(case.stride, oshape))

    def run():
        return cv2.medianBlur(x, k)[sl]

    starts = ", ".join(f"{k // 2}::{s}" for s in case.stride)
    return H.Contender("cv2", run, desc=f"cv2.medianBlur(x, {k})[{starts}]")


def tinybrain_peer(case: Case, x: np.ndarray):
    """tinybrain.downsample_segmentation: 2x2 mode (its C++ "countless" kernel
    for factor (2, 2)); any other factor falls back to striding, so only 2x2/2.
    The kernel takes strided input without a copy and walks axis 0 innermost:
    it gets the transposed view x.T (F-contiguous, axis 0 contiguous); its
    output is F-ordered, so the result's .T is C-contiguous.  Tie rule: the
    top-left value if it occurs twice, else ..., else the bottom-right one."""
    if tinybrain is None or case.op != "mode" or x.ndim != 2:
        return None
    _, _, nonoverlap, _ = H.geometry(case, x)
    if not nonoverlap or tuple(case.size) != (2, 2):
        return None

    def run():
        return tinybrain.downsample_segmentation(x.T, (2, 2))[0].T

    c = H.Contender("tinybrain", run, desc="tinybrain.downsample_segmentation(x.T, (2, 2))[0].T "
                    "(F-contiguous view, no copy)")
    c.checker = mode_tie_checker(case, x)
    return c


def scipy_peer(case: Case, x: np.ndarray):
    """scipy.ndimage median_filter / rank_filter / percentile_filter with the
    window moved to start at the filter position (origin = -(k//2), see
    H.filter_window), then [::stride] slicing.  Mode: scipy.stats.mode over the
    blocks (non-overlapping windows only)."""
    if case.op == "mode":
        _, oshape, nonoverlap, _ = H.geometry(case, x)
        if scipy_stats is None or not nonoverlap:
            return None
        rshape, perm = _block_shape(case, x)
        n = window_n(case)

        def run():
            w = x.reshape(rshape).transpose(perm).reshape(oshape + (n,))
            return scipy_stats.mode(w, axis=-1).mode

        return H.Contender("scipy", run, desc=f"scipy.stats.mode(x.reshape{rshape}.transpose{perm}"
                           f".reshape(..., {n}), axis=-1).mode")
    if ndi is None:
        return None
    size, origin, sl = H.filter_window(case, x)
    if case.op == "median":
        def run():
            return ndi.median_filter(x, size=size, origin=origin)[sl]
        what = "median_filter(x"
    elif case.op == "rank":
        rank = case.params["rank"]

        def run():
            return ndi.rank_filter(x, rank, size=size, origin=origin)[sl]
        what = f"rank_filter(x, {rank}"
    elif case.op == "percentile":
        p = case.params["percentile"]

        def run():
            return ndi.percentile_filter(x, p, size=size, origin=origin)[sl]
        what = f"percentile_filter(x, {p}"
    else:
        return None
    return H.Contender("scipy", run, desc=f"scipy.ndimage.{what}, size={size}, origin={origin})[::stride]")


def skimage_peer(case: Case, x: np.ndarray):
    """skimage.measure.block_reduce: non-overlapping blocks only (it pads
    instead of flooring).  np.median averages the two middle values of an even
    block (a different statistic, §); np.percentile(method='higher') selects
    rank ceil((n-1) p / 100), which is fastpool's int(n p / 100) for some n and
    p only (checked as the same statistic where equal, else §)."""
    if skimage_measure is None or case.op not in ("median", "percentile"):
        return None
    axes, _, nonoverlap, _ = H.geometry(case, x)
    if not nonoverlap:
        return None
    block = [1] * x.ndim
    for a, kk in zip(axes, case.size):
        block[a] = kk
    block = tuple(block)
    br = skimage_measure.block_reduce
    n = window_n(case)
    if case.op == "median":
        def run():
            return br(x, block, np.median)
        c = H.Contender("skimage", run, desc=f"skimage.measure.block_reduce(x, {block}, np.median)")
        if n % 2 == 0:
            c.checker = median_mean_checker(case, x)
            c.desc += ": mean of the two middle values (a different statistic)"
        return c
    p = case.params["percentile"]
    kw = {"q": p, "method": "higher"}

    def run():
        return br(x, block, np.percentile, func_kwargs=kw)
    c = H.Contender("skimage", run, desc=f"skimage.measure.block_reduce(x, {block}, np.percentile, "
                    f"func_kwargs={kw})")
    r_np = math.ceil((n - 1) * p / 100)
    if r_np != case_rank(case):
        c.checker = H.other_statistic_checker(other_reference(case, x, "rank", rank=r_np),
                                              f"np.percentile(method='higher') selects rank {r_np}, "
                                              f"not {case_rank(case)}")
    else:
        c.desc += f" (selects rank ceil((n-1)p/100) = {r_np} = int(n p/100) here)"
    return c


def numpy_sort_peer(case: Case, x: np.ndarray):
    """Sort over windows: the windows as a (..., n) copy -- reshape +
    transpose for non-overlapping blocks, sliding_window_view + slicing
    otherwise -- then np.partition (element rank) or, for the mode, np.sort and
    a count of each sorted value's copies (first maximum = smallest mode)."""
    axes, oshape, nonoverlap, _ = H.geometry(case, x)
    n = window_n(case)
    if nonoverlap:
        rshape, perm = _block_shape(case, x)

        def windows():
            return x.reshape(rshape).transpose(perm).reshape(oshape + (n,))
        how = f"x.reshape{rshape}.transpose{perm}.reshape(..., {n})"
    else:
        from numpy.lib.stride_tricks import sliding_window_view

        size, stride = tuple(case.size), tuple(case.stride)
        sl = tuple(slice(None, None, stride[axes.index(a)]) if a in axes else slice(None) for a in range(x.ndim))

        def windows():
            return sliding_window_view(x, size, axis=axes)[sl].reshape(oshape + (n,))
        how = f"sliding_window_view(x, {size})[::stride].reshape(..., {n})"
    if case.op == "mode":
        def run():
            return H.window_mode(windows())
        return H.Contender("numpy-sort", run, desc=f"np.sort({how}) + count of equal values, first maximum")
    k = case_rank(case)

    def run():
        return np.partition(windows(), k, axis=-1)[..., k]
    return H.Contender("numpy-sort", run, desc=f"np.partition({how}, {k})[..., {k}]")


def _is_2x2(case: Case, x: np.ndarray) -> bool:
    _, _, nonoverlap, _ = H.geometry(case, x)
    return nonoverlap and tuple(case.size) == (2, 2)


def numpy_slices_peer(case: Case, x: np.ndarray):
    """The four strided slices of a 2x2/2 pooling.  Median: (sum - max - min)/2,
    the mean of the two middle values (a different statistic, §).  Mode: the
    "countless" rule as in tinybrain (a if a equals b or c, else b if b == c,
    else d; another tie rule, ¶)."""
    if case.op not in ("median", "mode") or not _is_2x2(case, x):
        return None
    views = H.window_slices(case, x)
    if case.op == "median":
        if x.dtype.kind != "f":
            return None
        half = x.dtype.type(0.5)

        def run():
            a, b, c, d = (x[v] for v in views)
            mx = np.maximum(np.maximum(a, b), np.maximum(c, d))
            mn = np.minimum(np.minimum(a, b), np.minimum(c, d))
            s = a + b
            s += c
            s += d
            s -= mx
            s -= mn
            s *= half
            return s
        c = H.Contender("numpy-slices", run, desc="(a + b + c + d - max - min) / 2 of the 4 strided slices: "
                        "the mean of the two middle values (a different statistic)")
        # float32 rounding of the 4-term sum: a few ulp of the largest partial sum
        c.checker = median_mean_checker(case, x, atol=1e-5)
        return c

    def run():
        a, b, c, d = (x[v] for v in views)
        return np.where((a == b) | (a == c), a, np.where(b == c, b, d))
    c = H.Contender("numpy-slices", run, desc="countless rule on the 4 strided slices: "
                    "np.where((a == b) | (a == c), a, np.where(b == c, b, d))")
    c.checker = mode_tie_checker(case, x)
    return c


def numpy_minmax_peer(case: Case, x: np.ndarray):
    """Exactly fastpool's statistic in NumPy for the 2x2 median: the upper
    middle of four values is max(min(max(a,b), max(c,d)), max(min(a,b), min(c,d))),
    six np.maximum / np.minimum on the strided slices."""
    if case.op != "median" or not _is_2x2(case, x):
        return None
    views = H.window_slices(case, x)

    def run():
        a, b, c, d = (x[v] for v in views)
        hi = np.minimum(np.maximum(a, b), np.maximum(c, d))
        lo = np.maximum(np.minimum(a, b), np.minimum(c, d))
        return np.maximum(hi, lo, out=hi)
    return H.Contender("numpy-minmax", run, desc="max(min(max(a,b), max(c,d)), max(min(a,b), min(c,d))) "
                       "of the 4 strided slices (upper middle: the same selection as fastpool)")


PEER_BUILDERS: Dict[str, Callable] = {
    "torch": torch_peer,
    "cv2": cv2_peer,
    "tinybrain": tinybrain_peer,
    "scipy": scipy_peer,
    "skimage": skimage_peer,
    "numpy-sort": numpy_sort_peer,
    "numpy-slices": numpy_slices_peer,
    "numpy-minmax": numpy_minmax_peer,
}

LEGEND_EXTRA = (
    "§ a different statistic (np.median's mean of the two middle values, torch's lower median, "
    "another percentile rank), checked against a slow reference of that statistic; still a peer. "
    "¶ a most frequent value of every window, with another tie rule than fastpool's smallest value. "
    "~ timed by one call only (it took longer than --slow seconds; not in the interleaved rounds).")

BENCHMARK = H.Benchmark(
    name="bench_order",
    title="order statistics (median, rank, percentile, mode pooling)",
    doc=__doc__,
    cases=CASES,
    peer_order=PEER_ORDER,
    peer_builders=PEER_BUILDERS,
    make_input=make_input,
    reference=reference,
    fastpool_contenders=fastpool_contenders,
    exact=lambda case: True,  # every method here selects one of the inputs
    full_budget=15.0,
    full_repeats=(5, 15),
    slow_s=1.0,
    quick_slow_s=0.5,
    legend_extra=LEGEND_EXTRA,
    single_threaded="numpy, skimage, scipy, tinybrain",
    row_label=row_label,
    payload=payload,
)


def main(argv=None):
    return H.run_benchmark(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
