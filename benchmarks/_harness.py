"""Reusable pieces for the fastpool benchmarks.

Everything here is independent of the pooling method being benchmarked:

* thread control for every library in the process (``thread_limits``),
* interleaved (round-robin) timing with medians (``time_interleaved``),
* the memory-copy roofline (``CopyRoofline``),
* an independent NumPy reference for sliding-window reductions (``reference_pool``),
* result checks (``check_result``),
* markdown / JSON reporting (``markdown_table``, ``environment``).

Benchmark scripts (``bench_basic.py`` and later ones for other methods) build a
list of ``Contender`` objects per case and hand them to ``run_case``.
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


def reference_pool(x: np.ndarray, size, stride, axes, reducer: str, out_dtype=None) -> np.ndarray:
    """Independent, slow reference: ``sliding_window_view`` + strided slicing
    + a NumPy reduction in float64 (mean/sum) or the input dtype (max/min).
    Integer means are rounded half to even and cast to ``out_dtype``."""
    from numpy.lib.stride_tricks import sliding_window_view

    axes = normalize_axes(x.ndim, axes)
    win = sliding_window_view(x, tuple(size), axis=axes)
    sl = [slice(None)] * x.ndim
    for ax, s in zip(axes, stride):
        sl[ax] = slice(None, None, s)
    win = win[tuple(sl)]
    red_axes = tuple(range(x.ndim, win.ndim))
    if reducer == "max":
        r = win.max(axis=red_axes)
    elif reducer == "min":
        r = win.min(axis=red_axes)
    elif reducer in ("mean", "sum"):
        r = getattr(win, reducer)(axis=red_axes, dtype=np.float64)
    else:
        raise ValueError(reducer)
    out_dtype = np.dtype(out_dtype or x.dtype)
    if r.dtype != out_dtype:
        if out_dtype.kind in "iub" and r.dtype.kind == "f":
            info = np.iinfo(out_dtype)
            r = np.clip(np.rint(r), info.min, info.max)
        r = r.astype(out_dtype)
    return np.ascontiguousarray(r)


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


OK_STATUSES = ("exact", "close", "dtype", "lsb")


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
) -> Dict[str, Any]:
    """Warm up and check every contender once, then time them interleaved.

    Checks: fastpool against the independent reference; every peer against
    fastpool's result when fastpool ran, else against the reference (and, if
    it disagrees with fastpool, also against the reference, to tell who is
    wrong).  Returns a dict with per-contender medians (seconds) and checks.
    """
    fp_result = None
    warm = []
    for c in contenders:
        try:
            t0 = time.perf_counter()
            res = c.fn()
            warm.append(time.perf_counter() - t0)
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
    time_interleaved(contenders, repeats)
    return {"repeats": repeats}


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


CHECK_MARK = {"exact": "", "close": "", "dtype": "‡", "lsb": "†", "MISMATCH": "!", "error": "err", "": ""}


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
                cells.append(fmt_ms(info["ms"]) + CHECK_MARK.get(info["check"], ""))
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
