"""Reusable pieces for the fastpool benchmarks.

Everything here is independent of the pooling method being benchmarked:

* thread control for every library in the process (``thread_limits``),
* interleaved (round-robin) timing with medians (``time_interleaved``),
* the memory-copy roofline (``CopyRoofline``),
* an independent NumPy reference for sliding-window reductions (``reference_pool``),
* result checks (``check_result``, ``other_statistic_checker``),
* markdown / JSON reporting (``markdown_table``, ``environment``),
* cases and their window geometry (``Case``, ``geometry``, ``window_slices``,
  ``filter_window``), test inputs (``random_input``),
* the whole command line driver (``Benchmark``, ``run_benchmark``): options,
  the loop over cases and thread counts, the report and the JSON file.

Benchmark scripts (``bench_basic.py``, ``bench_order.py``, ...) describe their
cases, peers and fastpool calls in a ``Benchmark`` and call ``run_benchmark``;
the pieces can also be used on their own (``run_case`` times a list of
``Contender`` objects).
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import statistics
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# ---------------------------------------------------------------------------
# optional libraries
# ---------------------------------------------------------------------------


def try_import(name: str):
    """Import a module by name; return None (never raise) if it is unavailable."""
    try:
        return __import__(name, fromlist=["_"])
    except Exception:  # ImportError, or a broken compiled extension
        return None


def import_fastpool():
    """Return (module, None) or (None, reason)."""
    try:
        import fastpool  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the build state
        return None, f"{type(exc).__name__}: {exc}"
    return fastpool, None


# ---------------------------------------------------------------------------
# thread control
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def thread_limits(n: int):
    """Limit every threaded library in this process to ``n`` threads.

    torch.set_num_threads, cv2.setNumThreads and threadpoolctl (OpenMP / BLAS
    runtimes loaded in the process, including fastpool's OpenMP runtime).
    fastpool itself is additionally called with ``workers=n`` by the scripts.
    """
    torch = sys.modules.get("torch")
    cv2 = sys.modules.get("cv2")
    old_torch = torch.get_num_threads() if torch is not None else None
    old_cv2 = cv2.getNumThreads() if cv2 is not None else None
    tpc = try_import("threadpoolctl")
    with contextlib.ExitStack() as stack:
        if tpc is not None:
            stack.enter_context(tpc.threadpool_limits(limits=n))
        if torch is not None:
            torch.set_num_threads(n)
        if cv2 is not None:
            cv2.setNumThreads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old_torch)
            if cv2 is not None:
                cv2.setNumThreads(old_cv2)


# ---------------------------------------------------------------------------
# contenders and timing
# ---------------------------------------------------------------------------

FASTPOOL = "fastpool"
ROOFLINE = "copy"


@dataclass
class Contender:
    """One thing to time.  ``fn()`` must compute the result from scratch
    (allocating its own output) and return it as the user would get it."""

    name: str
    fn: Callable[[], Any]
    desc: str = ""
    kind: str = "peer"  # "fastpool" | "fastpool-out" | "peer" | "roofline" | "probe"
    check: bool = True  # compare the result with the reference / fastpool
    # filled in by run_case
    status: str = ""
    note: str = ""
    times: List[float] = field(default_factory=list)
    # optional: checker(result, target) -> (status, note) replaces the default
    # comparison of a peer's result with ``target`` (fastpool's result, or the
    # reference); for peers that compute another statistic or break ties
    # differently (see ``other_statistic_checker``)
    checker: Optional[Callable[[Any, np.ndarray], Tuple[str, str]]] = None
    # set by run_case: timed by its warm-up call only (slower than ``slow_s``)
    once: bool = False

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.times) if self.times else None


def _call(fn):
    """Time one call of fn with the garbage collector off (as timeit does).
    The result is released after the clock stops."""
    gc.disable()
    try:
        t0 = time.perf_counter()
        res = fn()
        t1 = time.perf_counter()
    finally:
        gc.enable()
    del res
    return t1 - t0


def time_interleaved(
    contenders: Sequence[Contender],
    repeats: int,
    pause: float = 0.005,
) -> None:
    """Round-robin timing: ``repeats`` rounds, each calling every contender
    once, in a rotated order each round (so nobody always runs right after the
    same neighbour).  Fills ``c.times``.  A short ``pause`` between calls lets
    other runtimes' spinning worker threads (OpenMP in torch, fastpool,
    OpenCV's pool) go to sleep before the next contender starts, which matters
    on a 2-core machine.  Contenders whose call raises are dropped."""
    live = [c for c in contenders if c.status != "error"]
    k = len(live)
    # a full collection costs ~0.1 s with torch imported: do it once, and move
    # the survivors out of the collector's way (gc.freeze) so that later
    # automatic collections between calls are cheap
    gc.collect()
    gc.freeze()
    for r in range(repeats):
        order = live[r % k:] + live[: r % k] if k else []
        for c in order:
            if c.status == "error":
                continue
            time.sleep(pause)
            try:
                c.times.append(_call(c.fn))
            except Exception as exc:  # pragma: no cover
                c.status = "error"
                c.note = f"{type(exc).__name__}: {exc}"
                c.times.clear()


def choose_repeats(warm_times: Sequence[float], budget_s: float, lo: int, hi: int) -> int:
    """Rounds that fit ``budget_s`` given one warm-up time per contender."""
    per_round = sum(t for t in warm_times if t is not None) + 0.006 * len(warm_times)
    if per_round <= 0:
        return hi
    return int(max(lo, min(hi, budget_s // per_round)))


# ---------------------------------------------------------------------------
# roofline
# ---------------------------------------------------------------------------

_EXECUTORS: Dict[int, ThreadPoolExecutor] = {}


def _executor(n: int) -> ThreadPoolExecutor:
    if n not in _EXECUTORS:
        _EXECUTORS[n] = ThreadPoolExecutor(max_workers=n)
    return _EXECUTORS[n]


def _flat_bytes(a: np.ndarray) -> np.ndarray:
    if not a.flags.c_contiguous:
        raise ValueError("roofline input must be C-contiguous")
    return a.reshape(-1).view(np.uint8)


class CopyRoofline:
    """Memory roofline from a measured copy, in the same run.

    ``copy``: ``np.copyto(dst, src)`` of the whole input into a preallocated,
    already first-touched buffer of the input's size, split into ``threads``
    contiguous slabs copied by that many threads (np.copyto releases the GIL).
    That is one read + one write of ``in_bytes``.  A pooling kernel must read
    ``in_bytes`` once and write ``out_bytes`` once, so

        roofline = copy_time * (in_bytes + out_bytes) / (2 * in_bytes)

    It assumes reads and writes cost the same per byte and leaves out the page
    faults of a freshly allocated output (the pooling contenders pay those).
    """

    FORMULA = "roofline = t_copy * (in_bytes + out_bytes) / (2 * in_bytes)"

    def __init__(self, src: np.ndarray, out_bytes: int, threads: int):
        self.src = _flat_bytes(src)
        self.in_bytes = self.src.nbytes
        self.out_bytes = int(out_bytes)
        self.dst = np.empty_like(self.src)
        self.dst.fill(1)  # first touch outside the timing
        self.threads = max(1, int(threads))
        nb = self.in_bytes
        step = -(-nb // self.threads)
        step = -(-step // 4096) * 4096  # page-aligned slabs
        self.slabs = [(self.dst[i:i + step], self.src[i:i + step]) for i in range(0, nb, step)]

    @property
    def scale(self) -> float:
        return (self.in_bytes + self.out_bytes) / (2.0 * self.in_bytes)

    def __call__(self):
        if len(self.slabs) == 1:
            np.copyto(self.dst, self.src)
            return None
        ex = _executor(len(self.slabs))
        futs = [ex.submit(np.copyto, d, s) for d, s in self.slabs]
        for f in futs:
            f.result()
        return None

    def contender(self) -> Contender:
        return Contender(
            f"{ROOFLINE}-{self.threads}t", self, kind="roofline", check=False,
            desc=f"np.copyto of the input's {self.in_bytes / 2**20:.0f} MiB into a preallocated buffer, "
                 f"{self.threads} thread(s)")


def roofline_contenders(src: np.ndarray, out_bytes: int, threads: int) -> List[Contender]:
    """Copy contenders for every thread count 1..threads (a program allowed n
    threads may use fewer); the roofline is the fastest of them."""
    cands = sorted({1, threads})
    return [CopyRoofline(src, out_bytes, k).contender() for k in cands]


class FreshOutput:
    """Not a bound, a probe: allocate an output-sized array and touch every
    page of it (``np.copyto(slab, 0)`` by ``threads`` threads, each its own
    contiguous slab, as a parallel kernel that first-touches its output
    would).  This is the page-fault cost that every contender allocating a
    fresh output pays and the copy roofline leaves out."""

    def __init__(self, shape, dtype, threads: int):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.threads = max(1, int(threads))

    def __call__(self):
        out = np.empty(self.shape, self.dtype)
        flat = out.reshape(-1).view(np.uint8)
        nb = flat.nbytes
        if self.threads == 1 or nb < (1 << 20):
            np.copyto(flat, 0)
            return out
        step = -(-nb // self.threads)
        step = -(-step // 4096) * 4096
        ex = _executor(self.threads)
        futs = [ex.submit(np.copyto, flat[i:i + step], 0) for i in range(0, nb, step)]
        for f in futs:
            f.result()
        return out

    def contender(self) -> Contender:
        return Contender(
            "fresh-output", self, kind="probe", check=False,
            desc=f"np.empty(output shape) + first touch of its {np.prod(self.shape) * self.dtype.itemsize / 2**20:.0f} MiB "
                 f"by {self.threads} thread(s)")


# ---------------------------------------------------------------------------
# reference and checks
# ---------------------------------------------------------------------------


def normalize_axes(ndim: int, axes) -> Tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    return tuple(sorted(a % ndim for a in axes))


def out_shape(shape, size, stride, axes) -> Tuple[int, ...]:
    """Output shape of a pooling with no padding, dilation 1, floor mode."""
    axes = normalize_axes(len(shape), axes)
    res = list(shape)
    for ax, k, s in zip(axes, size, stride):
        res[ax] = (shape[ax] - k) // s + 1
    return tuple(res)


ORDER_REDUCERS = ("median", "rank", "percentile")


def order_rank(op: str, n: int, rank=None, percentile=None) -> int:
    """The 0-based rank among the ``n`` sorted window values that an order
    statistic selects, with scipy.ndimage's rules: median ``n // 2`` (the upper
    middle for even n), ``rank`` negative counts from the end, percentile
    ``int(n * p / 100)`` (``n - 1`` for 100; negative p adds 100)."""
    if op == "median":
        r = n // 2
    elif op == "rank":
        r = int(rank)
        if r < 0:
            r += n
    elif op == "percentile":
        p = float(percentile)
        if p < 0:
            p += 100.0
        r = n - 1 if p == 100.0 else int(n * p / 100.0)
    else:
        raise ValueError(op)
    if not 0 <= r < n:
        raise ValueError(f"rank {r} outside a window of {n}")
    return r


def _window_values(x: np.ndarray, size, stride, axes):
    """``(windows, n)``: a view of shape ``out_shape + size`` (no copy) and the
    number of values per window."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(x, tuple(size), axis=axes)
    sl = [slice(None)] * x.ndim
    for ax, s in zip(axes, stride):
        sl[ax] = slice(None, None, s)
    return win[tuple(sl)], int(np.prod(size))


def reference_pool(x: np.ndarray, size, stride, axes, reducer: str, out_dtype=None, **params) -> np.ndarray:
    """Independent, slow reference: ``sliding_window_view`` + strided slicing
    + a NumPy reduction in float64 (mean/sum) or the input dtype (max/min).
    Integer means are rounded half to even and cast to ``out_dtype``.

    Order statistics (``reducer`` "median", "rank" with ``rank=``,
    "percentile" with ``percentile=``; ranks as ``order_rank``) select a value
    with ``np.partition``; "mode" is the most frequent value, ties to the
    smallest; "median-mean" is ``np.median`` (the mean of the two middle values
    for even windows, in float64): a different statistic that some peers
    compute.  These work on a slab of output rows at a time."""
    axes = normalize_axes(x.ndim, axes)
    win, n = _window_values(x, size, stride, axes)
    red_axes = tuple(range(x.ndim, win.ndim))
    if reducer == "max":
        r = win.max(axis=red_axes)
    elif reducer == "min":
        r = win.min(axis=red_axes)
    elif reducer in ("mean", "sum"):
        r = getattr(win, reducer)(axis=red_axes, dtype=np.float64)
    elif reducer in ORDER_REDUCERS + ("mode", "median-mean"):
        r = _order_reference(win, x.ndim, n, reducer, **params)
    else:
        raise ValueError(reducer)
    out_dtype = np.dtype(out_dtype or x.dtype)
    if r.dtype != out_dtype:
        if out_dtype.kind in "iub" and r.dtype.kind == "f":
            info = np.iinfo(out_dtype)
            r = np.clip(np.rint(r), info.min, info.max)
        r = r.astype(out_dtype)
    return np.ascontiguousarray(r)


def window_mode(w: np.ndarray) -> np.ndarray:
    """Mode along the last axis of ``w`` (no NaN), ties to the smallest value:
    sort, count each sorted value's copies, take the first maximum."""
    w = np.sort(w, axis=-1)
    counts = np.zeros(w.shape, np.int32)
    for j in range(w.shape[-1]):
        counts[..., j] = np.count_nonzero(w == w[..., j:j + 1], axis=-1)
    best = np.argmax(counts, axis=-1)[..., None]
    return np.take_along_axis(w, best, axis=-1)[..., 0]


def _order_reference(win: np.ndarray, ndim: int, n: int, reducer: str, **params) -> np.ndarray:
    oshape = win.shape[:ndim]
    if reducer in ORDER_REDUCERS:
        k = order_rank(reducer, n, **params)

        def func(w):
            return np.partition(w, k, axis=-1)[..., k]
        dtype = win.dtype
    elif reducer == "mode":
        func = window_mode
        dtype = win.dtype
    else:  # "median-mean"
        def func(w):
            return np.median(w.astype(np.float64), axis=-1)
        dtype = np.float64
    out = np.empty(oshape, dtype)
    if out.size == 0:
        return out
    per_row = max(1, out.size // oshape[0] * n)
    step = max(1, (1 << 22) // per_row)
    for i in range(0, oshape[0], step):
        w = win[i:i + step]
        out[i:i + step] = func(w.reshape(w.shape[:ndim] + (n,)))
    return out


def check_result(got, expected: np.ndarray, exact: bool, rtol=1e-5, atol=1e-6) -> Tuple[str, str]:
    """Compare ``got`` with ``expected``.  Returns (status, note):

    * ``exact``    equal values (NaN == NaN), same shape and dtype
    * ``close``    float result, ``np.allclose(rtol, atol)`` (float means)
    * ``dtype``    integer expected, the peer returns floats that equal the
                   expected values after ``np.rint`` (e.g. an unrounded float64
                   mean of uint8): the same numbers, but not the same output
    * ``lsb``      integer expected, values differ by at most 1 (a different
                   rounding convention, e.g. half-up or truncation)
    * ``MISMATCH`` anything else (excluded from "fastest peer")
    """
    try:
        got = np.asarray(got)
    except Exception as exc:
        return "MISMATCH", f"cannot convert result: {exc}"
    if got.shape != expected.shape:
        return "MISMATCH", f"shape {got.shape} != {expected.shape}"
    notes = []
    g, e = got, expected
    int_expected = e.dtype.kind in "iub"
    if got.dtype != expected.dtype:
        notes.append(f"returns {got.dtype}, not {expected.dtype}")
        if int_expected and g.dtype.kind == "f":
            notes.append("compared after np.rint")
            g = np.rint(g)
    both_float = g.dtype.kind == "f" and e.dtype.kind == "f"
    if np.array_equal(g, e, equal_nan=both_float):
        if got.dtype == expected.dtype or not int_expected:
            return "exact", "; ".join(notes)
        return "dtype", "; ".join(notes)
    gd = g.astype(np.float64)
    ed = e.astype(np.float64)
    diff = np.abs(gd - ed)
    finite = np.isfinite(diff)
    maxdiff = float(diff[finite].max()) if finite.any() else float("nan")
    frac = float(np.mean(diff != 0))
    notes.append(f"max |diff| {maxdiff:.3g}, {100 * frac:.3g}% of elements differ")
    nan_mismatch = int(np.sum(np.isnan(gd) != np.isnan(ed)))
    if nan_mismatch:
        notes.append(f"{nan_mismatch} NaN mismatches")
        return "MISMATCH", "; ".join(notes)
    if not exact and not int_expected and np.allclose(gd, ed, rtol=rtol, atol=atol, equal_nan=True):
        return "close", "; ".join(notes)
    if int_expected and maxdiff <= 1:
        return "lsb", "; ".join(notes)
    return "MISMATCH", "; ".join(notes)


OK_STATUSES = ("exact", "close", "dtype", "lsb", "other", "ties")
# "other": the peer computes a different statistic (e.g. np.median's mean of the
#          two middle values where fastpool selects one); its result was checked
#          against a slow reference of *that* statistic (other_statistic_checker)
# "ties":  the same statistic with another tie rule (e.g. a mode that is not the
#          smallest of the tied values); checked to be a valid answer everywhere


def other_statistic_checker(expected: Callable[[], np.ndarray], what: str, exact: bool = True,
                            rtol: float = 1e-5, atol: float = 1e-6):
    """A ``Contender.checker`` for a peer that computes a different statistic
    (``what``, e.g. "mean of the two middle values").  ``expected()`` returns a
    slow reference of that statistic (called when the check runs).  The peer
    passes with status ``other`` if it matches it; the note also says how far
    it is from fastpool's result."""

    def checker(res, target):
        st, note = check_result(res, expected(), exact, rtol, atol)
        if st not in ("exact", "close"):
            return "MISMATCH", f"{what}: differs from its own reference: {note}"
        st2, note2 = check_result(res, target, True)
        vs = "equal" if st2 == "exact" else note2
        return "other", f"{what} (checked against its own reference: {st}); vs fastpool/reference: {vs}"

    return checker


# ---------------------------------------------------------------------------
# running one case
# ---------------------------------------------------------------------------


def run_case(
    contenders: List[Contender],
    reference: np.ndarray,
    exact: bool,
    budget_s: float,
    min_repeats: int,
    max_repeats: int,
    repeats: Optional[int] = None,
    log=print,
    slow_s: Optional[float] = None,
) -> Dict[str, Any]:
    """Warm up and check every contender once, then time them interleaved.

    Checks: fastpool against the independent reference; every peer against
    fastpool's result when fastpool ran, else against the reference (and, if
    it disagrees with fastpool, also against the reference, to tell who is
    wrong).  A peer with a ``checker`` is judged by it instead (given the same
    target).  Returns a dict with per-contender medians (seconds) and checks.

    ``slow_s``: a peer whose warm-up call takes longer than this is not called
    again: its warm-up time is its only measurement (``c.once``), and it stays
    out of the interleaved rounds and of the choice of their number.
    """
    fp_result = None
    warm = []
    for c in contenders:
        try:
            t0 = time.perf_counter()
            res = c.fn()
            t_warm = time.perf_counter() - t0
            if slow_s is not None and c.kind == "peer" and t_warm > slow_s:
                c.once = True
                c.times = [t_warm]
            else:
                warm.append(t_warm)
        except Exception as exc:
            c.status = "error"
            c.note = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            log(f"    ! {c.name}: {c.note}")
            if os.environ.get("FASTPOOL_BENCH_TRACEBACK"):
                traceback.print_exc()
            continue
        if c.check:
            if c.kind in ("fastpool", "fastpool-out"):
                c.status, c.note = check_result(res, reference, exact)
                if c.kind == "fastpool" and c.status in ("exact", "close"):
                    fp_result = np.asarray(res)
            elif c.checker is not None:
                target = fp_result if fp_result is not None else reference
                c.status, c.note = c.checker(res, target)
            else:
                target = fp_result if fp_result is not None else reference
                c.status, c.note = check_result(res, target, exact)
                if fp_result is not None and c.status not in ("exact", "close"):
                    # who is wrong?  say it in the note
                    s2, n2 = check_result(res, reference, exact)
                    c.note = f"vs fastpool: {c.status}, {c.note}; vs reference: {s2}{', ' + n2 if n2 else ''}"
            if c.status not in ("exact", "close"):
                tag = "WARNING" if c.status == "MISMATCH" else "note"
                log(f"    {tag}: {c.name} [{c.desc}] result {c.status}: {c.note}")
        else:
            c.status = "n/a"
        del res
    if repeats is None:
        repeats = choose_repeats(warm, budget_s, min_repeats, max_repeats)
    time_interleaved([c for c in contenders if not c.once], repeats)
    once = [c.name for c in contenders if c.once]
    if once:
        log(f"    timed once (warm-up call > {slow_s:g} s, not in the rounds): {', '.join(once)}")
    return {"repeats": repeats, "timed_once": once}


def summarize(contenders: List[Contender]) -> Dict[str, Any]:
    """fastpool, roofline and peer medians plus the ratios of the tables."""
    fp = next((c for c in contenders if c.kind == "fastpool"), None)
    fpo = next((c for c in contenders if c.kind == "fastpool-out"), None)
    probe = next((c for c in contenders if c.kind == "probe"), None)
    rls = [c for c in contenders if c.kind == "roofline" and c.median is not None]
    rl = min(rls, key=lambda c: c.median) if rls else None
    peers = [c for c in contenders if c.kind == "peer"]
    fp_ms = fp.median * 1e3 if fp is not None and fp.median is not None else None
    copy_ms = rl.median * 1e3 if rl is not None and rl.median is not None else None
    roof_ms = copy_ms * rl.fn.scale if copy_ms is not None else None
    eligible = [c for c in peers if c.median is not None and c.status in OK_STATUSES]
    fastest = min(eligible, key=lambda c: c.median) if eligible else None
    out = {
        "fastpool_ms": fp_ms,
        "fastpool_check": (fp.status + (f" ({fp.note})" if fp.note else "")) if fp is not None else "n/a",
        "copy_ms": copy_ms,
        "copy_threads": rl.fn.threads if rl is not None else None,
        "copy_ms_by_threads": {c.fn.threads: c.median * 1e3 for c in rls},
        "roofline_scale": rl.fn.scale if rl is not None else None,
        "roofline_ms": roof_ms,
        "in_bytes": rl.fn.in_bytes if rl is not None else None,
        "out_bytes": rl.fn.out_bytes if rl is not None else None,
        "fastest_peer": fastest.name if fastest else None,
        "fastest_peer_ms": fastest.median * 1e3 if fastest else None,
        "ratio_fastpool_fastest_peer": (fp_ms / (fastest.median * 1e3)) if (fp_ms and fastest) else None,
        "ratio_fastpool_roofline": (fp_ms / roof_ms) if (fp_ms and roof_ms) else None,
        "peers": {
            c.name: {
                "ms": c.median * 1e3 if c.median is not None else None,
                "min_ms": min(c.times) * 1e3 if c.times else None,
                "check": c.status,
                "note": c.note,
                "desc": c.desc,
                "timed_once": c.once,
            }
            for c in peers
        },
    }
    out["fresh_output_ms"] = probe.median * 1e3 if probe is not None and probe.median is not None else None
    out["fastpool_output_ms"] = fpo.median * 1e3 if fpo is not None and fpo.median is not None else None
    if fpo is not None:
        out["fastpool_output_check"] = fpo.status + (f" ({fpo.note})" if fpo.note else "")
    if fp is not None:
        out["fastpool_desc"] = fp.desc
        out["fastpool_min_ms"] = min(fp.times) * 1e3 if fp.times else None
    return out


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------


def fmt_ms(v: Optional[float]) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def fmt_ratio(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.2f}"


CHECK_MARK = {"exact": "", "close": "", "dtype": "‡", "lsb": "†", "other": "§", "ties": "¶",
              "MISMATCH": "!", "error": "err", "": ""}
ONCE_MARK = "~"  # timed by one call only (run_case's slow_s)


def peer_mark(info: Dict[str, Any]) -> str:
    """The marks after a peer's time (a ``summarize()["peers"]`` entry)."""
    return CHECK_MARK.get(info.get("check", ""), "") + (ONCE_MARK if info.get("timed_once") else "")


def markdown_table(rows: List[Tuple[str, Dict[str, Any]]], peer_names: Sequence[str]) -> str:
    head = ["case", "fastpool ms", "fastest peer", "fastpool / fastest peer",
            "fastpool / roofline", "roofline ms", "fresh output ms", "fastpool output= ms"] + [
                f"{p} ms" for p in peer_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for case, s in rows:
        fp = fmt_ms(s["fastpool_ms"])
        if s["fastpool_ms"] is not None and s["fastpool_check"].split(" ")[0] not in ("exact", "close"):
            fp += " !"
        fastest = (f"{s['fastest_peer']} {fmt_ms(s['fastest_peer_ms'])}"
                   f"{peer_mark(s['peers'].get(s['fastest_peer'], {}))}"
                   if s["fastest_peer"] else "n/a")
        fpo = fmt_ms(s.get("fastpool_output_ms"))
        if s.get("fastpool_output_ms") is not None and s.get("fastpool_output_check", "").split(" ")[0] not in (
                "exact", "close"):
            fpo += " !"
        cells = [case, fp, fastest, fmt_ratio(s["ratio_fastpool_fastest_peer"]),
                 fmt_ratio(s["ratio_fastpool_roofline"]), fmt_ms(s["roofline_ms"]),
                 fmt_ms(s.get("fresh_output_ms")), fpo]
        for p in peer_names:
            info = s["peers"].get(p)
            if info is None:
                cells.append("—")
            elif info["check"] == "error":
                cells.append("err")
            else:
                cells.append(fmt_ms(info["ms"]) + peer_mark(info))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _version(mod_name: str) -> Optional[str]:
    m = sys.modules.get(mod_name) or try_import(mod_name)
    if m is None:
        return None
    dist = {"cv2": "opencv-python-headless", "skimage": "scikit-image"}.get(mod_name, mod_name)
    try:  # the installed distribution's version (some modules' __version__ is stale)
        from importlib.metadata import version
        v = version(dist)
    except Exception:
        v = getattr(m, "__version__", "?")
    if mod_name == "cv2":
        v = f"{v} (cv2 {m.__version__})"
    return str(v)


def cpu_busy(interval: float = 1.0) -> Optional[float]:
    """Fraction of all CPUs busy (anything but idle/iowait) over ``interval``
    seconds, from /proc/stat; None where unavailable.  Call it while this
    process is idle to see whether something else is using the machine."""
    def read():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle
    try:
        t0, i0 = read()
        time.sleep(interval)
        t1, i1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


class OtherLoad:
    """CPU time used by *other* processes between construction and ``.value()``,
    as a fraction of all CPUs: (busy jiffies in /proc/stat - this process's CPU
    time) / (wall time * CPUs).  No sleeping; None where /proc/stat is missing."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.own0 = sum(os.times()[:2])
        self.busy0 = self._busy()

    @staticmethod
    def _busy() -> Optional[float]:
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def value(self) -> Optional[float]:
        busy1 = self._busy()
        if busy1 is None or self.busy0 is None:
            return None
        wall = time.monotonic() - self.t0
        own = sum(os.times()[:2]) - self.own0
        ncpu = os.cpu_count() or 1
        return max(0.0, (busy1 - self.busy0 - own) / max(1e-9, wall * ncpu))


def environment() -> Dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    for name in ("numpy", "scipy", "torch", "cv2", "skimage", "tinybrain", "threadpoolctl", "fastpool"):
        env[name] = _version(name)
    return env


# ---------------------------------------------------------------------------
# cases, geometry and inputs
# ---------------------------------------------------------------------------


def _shape_str(shape, paren: bool) -> str:
    return ("(" + ",".join(map(str, shape)) + ")") if paren else "x".join(map(str, shape))


@dataclass
class Case:
    """One benchmark case: an input (shape, dtype) and one pooling."""

    name: str
    shape: Tuple[int, ...]
    quick_shape: Tuple[int, ...]
    dtype: str
    op: str  # "max" | "mean" | "median" | "rank" | "percentile" | "mode" | ...
    size: Tuple[int, ...]  # per pooled axis
    stride: Tuple[int, ...]
    axes: Optional[Tuple[int, ...]] = None  # None: all axes
    params: Dict[str, Any] = field(default_factory=dict)  # the method's own (rank=, percentile=, ...)

    def label(self, shape) -> str:
        """The name with the shape actually run (differs from name in --quick).
        The shape appears in the name as ``4096x4096`` or ``(32,64,112,112)``."""
        if tuple(shape) == tuple(self.shape):
            return self.name
        for paren in (True, False):
            full = _shape_str(self.shape, paren)
            if full in self.name:
                return self.name.replace(full, _shape_str(shape, paren))
        return f"{self.name} [{_shape_str(shape, False)}]"

    def pooled_axes(self, ndim: int) -> Tuple[int, ...]:
        return normalize_axes(ndim, self.axes)


def geometry(case: Case, x: np.ndarray):
    """``(axes, out_shape, nonoverlap, trailing)``: the pooled axes (sorted,
    non-negative), the output shape, whether the windows tile the pooled axes
    exactly (size == stride and the lengths divisible), and whether the pooled
    axes are the trailing ones."""
    axes = case.pooled_axes(x.ndim)
    oshape = out_shape(x.shape, case.size, case.stride, axes)
    nonoverlap = tuple(case.size) == tuple(case.stride) and all(
        x.shape[a] % k == 0 for a, k in zip(axes, case.size))
    trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
    return axes, oshape, nonoverlap, trailing


def window_slices(case: Case, x: np.ndarray) -> List[Tuple[slice, ...]]:
    """One strided view per window offset: ``x[views[k]][i] = x[i*stride + offset_k]``
    (offsets in C order of the window)."""
    axes, oshape, _, _ = geometry(case, x)
    views = []
    for offs in np.ndindex(*case.size):
        sl = [slice(None)] * x.ndim
        for a, o, s in zip(axes, offs, case.stride):
            sl[a] = slice(o, o + s * (oshape[a] - 1) + 1, s)
        views.append(tuple(sl))
    return views


def filter_window(case: Case, x: np.ndarray):
    """``(size, origin, slices)`` for a scipy.ndimage filter + slicing peer:
    ``f(x, size=size, origin=origin)[slices]`` is the pooling.

    scipy's size-k window at position i covers ``[i - k//2 - origin, i - k//2 -
    origin + k)`` (origin 0 centres it; for even k that is ``[i - 1, i]`` when
    k = 2; a negative origin moves it right).  ``origin = -(k // 2)`` makes it
    start at i, so output ``j`` is ``filtered[j * stride]`` (checked against
    the reference in every run)."""
    axes, oshape, _, _ = geometry(case, x)
    size = [1] * x.ndim
    origin = [0] * x.ndim
    sl = [slice(None)] * x.ndim
    for a, kk, s in zip(axes, case.size, case.stride):
        size[a] = kk
        origin[a] = -(kk // 2)
        sl[a] = slice(0, s * (oshape[a] - 1) + 1, s)
    return tuple(size), tuple(origin), tuple(sl)


def random_input(dtype, shape, seed: int = 0) -> np.ndarray:
    """float: standard normal (negative values catch max kernels that start
    from 0); integers: uniform over the whole range."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


# ---------------------------------------------------------------------------
# the command line driver shared by the bench_* scripts
# ---------------------------------------------------------------------------

LEGEND = (
    "Medians of interleaved repeats, ms. Ratios < 1: fastpool is faster. "
    f"{CopyRoofline.FORMULA}, t_copy = the faster of np.copyto of the input into a "
    "preallocated buffer with 1 and with n threads, same run. "
    "fresh output = np.empty of the output + first touch by n threads (the page faults every "
    "contender returning a new array pays; not in the roofline). "
    "fastpool output= = fastpool writing into a preallocated output (info, not in the ratios). "
    "Marks: † values differ by 1 (integer rounding convention), ‡ other output dtype "
    "(equal after np.rint), ! result differs (excluded from fastest peer), — not applicable.")


@dataclass
class Benchmark:
    """What a bench_* script contributes; ``run_benchmark`` does the rest.

    * ``peer_builders[name](case, x)`` -> a ``Contender`` or None (not applicable)
    * ``fastpool_contenders(fp, case, x, threads, reference)`` -> the fastpool
      contenders (kind "fastpool" and optionally "fastpool-out"); only called
      when fastpool is importable
    * ``reference(case, x)`` -> the independent reference result
    * ``exact(case)``: whether results must be equal (else allclose for floats)
    * ``row_label(fp, case, label)``: the table's case label (default: label)
    * ``payload(fp)``: extra top-level entries of the JSON file
    """

    name: str  # "bench_basic": also the JSON's "benchmark"
    title: str  # "basic max / mean pooling"
    doc: str
    cases: List[Case]
    peer_order: List[str]
    peer_builders: Dict[str, Callable]
    make_input: Callable[[Case, Tuple[int, ...]], np.ndarray]
    reference: Callable[[Case, np.ndarray], np.ndarray]
    fastpool_contenders: Callable[..., List[Contender]]
    exact: Callable[[Case], bool]
    full_budget: float = 15.0
    full_repeats: Tuple[int, int] = (5, 15)
    quick_budget: float = 0.5
    quick_repeats: Tuple[int, int] = (3, 3)
    slow_s: Optional[float] = None  # default of --slow (full runs); None: off
    quick_slow_s: Optional[float] = None  # default of --slow with --quick
    legend_extra: str = ""
    single_threaded: str = "numpy, skimage, scipy, tinybrain"
    row_label: Optional[Callable[[Any, Case, str], str]] = None
    payload: Optional[Callable[[Any], Dict[str, Any]]] = None


def wait_for_idle(seconds: float, log=print) -> None:
    """Wait up to ``seconds`` until other processes leave the CPUs < 10% busy."""
    deadline = time.monotonic() + seconds
    while True:
        b = cpu_busy(2.0)
        if b is None or b < 0.1 or time.monotonic() > deadline:
            break
        log(f"waiting for an idle machine (CPU {100 * b:.0f}% busy)")
        time.sleep(10)


def make_parser(bench: Benchmark):
    import argparse

    p = argparse.ArgumentParser(description=bench.doc, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--peers", default=None, help="comma-separated subset of peers: " + ",".join(bench.peer_order))
    p.add_argument("--slow", type=float, default=None, metavar="S",
                   help="a peer whose warm-up call takes more than S seconds is timed by that call only "
                        f"(default: {bench.slow_s}, with --quick {bench.quick_slow_s}; 0 or less: off)")
    return p


def run_benchmark(bench: Benchmark, argv=None) -> int:
    """The whole benchmark: parse ``argv``, run every case at every thread
    count, print the tables and write the JSON file."""
    args = make_parser(bench).parse_args(argv)

    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, ncores})
    filters = [f.strip().lower() for f in args.cases.split(",") if f.strip()]
    cases = [c for c in bench.cases if not filters or any(f in c.name.lower() for f in filters)]
    peers = [q for q in bench.peer_order if args.peers is None or q in args.peers.split(",")]
    if args.quick:
        budget, (lo, hi) = args.budget or bench.quick_budget, bench.quick_repeats
        slow_s = bench.quick_slow_s
    else:
        budget, (lo, hi) = args.budget or bench.full_budget, bench.full_repeats
        slow_s = bench.slow_s
    if args.slow is not None:
        slow_s = args.slow if args.slow > 0 else None

    fp, why = import_fastpool()
    env = environment()
    print(f"# fastpool benchmark: {bench.title}{' (--quick)' if args.quick else ''}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    if fp is None:
        print(f"fastpool: NOT importable ({why}); its columns are n/a"
              " (built in place and not installed? run with PYTHONPATH=<the repository root>)")
    print(f"threads: {threads}; roofline: {CopyRoofline.FORMULA}")
    if args.wait_idle > 0:
        wait_for_idle(args.wait_idle, log=lambda m: print(m, flush=True))
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy0 = cpu_busy()
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
        if bench.row_label is not None:
            label = bench.row_label(fp, case, label)
        print(f"## {label}", flush=True)
        x = bench.make_input(case, shape)
        t0 = time.perf_counter()
        ref = bench.reference(case, x)
        print(f"   reference {time.perf_counter() - t0:.1f} s; output {ref.shape} {ref.dtype}", flush=True)
        exact = bench.exact(case)
        for n in threads:
            with thread_limits(n):
                contenders = []
                if fp is not None:
                    contenders += bench.fastpool_contenders(fp, case, x, n, ref)
                contenders += roofline_contenders(x, ref.nbytes, n)
                contenders.append(FreshOutput(ref.shape, ref.dtype, n).contender())
                for q in peers:
                    c = bench.peer_builders[q](case, x)
                    if c is not None:
                        contenders.append(c)
                t0 = time.perf_counter()
                other = OtherLoad()
                info = run_case(contenders, ref, exact, budget, lo, hi, repeats=args.repeats,
                                log=lambda m: print(m, flush=True), slow_s=slow_s)
                s = summarize(contenders)
                s["repeats"] = info["repeats"]
                s["other_cpu_load"] = other.value()
                s["case"] = label
                s["shape"] = list(shape)
                s["dtype"] = case.dtype
                s["threads"] = n
                results[n].append((label, s))
                descs[label] = {c.name: c.desc for c in contenders if c.kind not in ("roofline", "probe")}
                print(f"   {n} thread(s): {info['repeats']} rounds in {time.perf_counter() - t0:.1f} s "
                      f"(other processes used {fmt_pct(s['other_cpu_load'])} of the CPUs); "
                      f"fastpool {fmt_ms(s['fastpool_ms'])} ms, roofline {fmt_ms(s['roofline_ms'])} ms, "
                      f"fastest peer {s['fastest_peer']} {fmt_ms(s['fastest_peer_ms'])} ms", flush=True)
                del contenders
        del x, ref
    elapsed = time.perf_counter() - t_start
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy1 = cpu_busy()

    # ------------------------------------------------------------------ report
    used = [q for q in peers if any(q in s["peers"] for rows in results.values() for _, s in rows)]
    print()
    print(f"# Results ({elapsed:.0f} s){' --quick' if args.quick else ''}; load average at start {load0}, "
          f"at end {load1}; CPU busy with other processes before {fmt_pct(busy0)}, after {fmt_pct(busy1)}")
    print()
    print(LEGEND + (" " + bench.legend_extra if bench.legend_extra else "")
          + f" Single-threaded peers ({bench.single_threaded}) are measured again in every column.")
    for n in threads:
        print()
        print(f"## {n} thread{'s' if n > 1 else ''}")
        print()
        print(markdown_table(results[n], used))
    print()
    print("## How each contender computes the result")
    for label, dd in descs.items():
        print(f"- {label}:")
        for name, d in dd.items():
            print(f"  - {name}: {d}")
    notes = []
    disturbed = [f"{cname} ({n}T): {fmt_pct(s['other_cpu_load'])}" for n in threads for cname, s in results[n]
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
        import json

        payload = {
            "benchmark": bench.name,
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "quick": args.quick,
            "environment": env,
            "fastpool_import_error": why,
            "roofline_formula": CopyRoofline.FORMULA,
            "units": "milliseconds (medians of interleaved repeats)",
            "elapsed_s": elapsed,
            "loadavg_start": load0,
            "loadavg_end": load1,
            "cpu_busy_other_start": busy0,
            "cpu_busy_other_end": busy1,
            "threads": threads,
            "slow_s": slow_s,
            "results": {str(n): [s for _, s in results[n]] for n in threads},
        }
        if bench.payload is not None:
            payload.update(bench.payload(fp))
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1, default=float)
        print(f"\nJSON written to {args.json}")
    return 0
