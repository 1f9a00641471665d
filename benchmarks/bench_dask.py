#!/usr/bin/env python
"""Out-of-core pyramids: ``fastpool.to_zarr_pyramid`` against Dask and xarray
level by level, on a volume held in a Zarr store on disk.

    python benchmarks/bench_dask.py --json out.json   # full run: 1280^3 uint8 (2 GiB) and uint32 (8 GiB), hours
    python benchmarks/bench_dask.py --quick           # smoke test: 256^3 uint8, one round, max_memory 32MiB
    python benchmarks/bench_dask.py --dtype uint8 --methods avg,max --repeats 5 --json out.json

A 2x2x2 pyramid of 4 levels (levels 1..4, pooled by 2, 4, 8, 16) of a 3-D
uint8 / uint32 volume stored uncompressed in a Zarr v2 array on disk (chunks
128^3), written to Zarr stores on disk, with ``method`` avg, max and mode.

* ``fastpool``: ``fastpool.to_zarr_pyramid(source, out, levels=4, factor=2,
  method=..., max_memory=..., include_input=False, progress=False)`` on the
  Dask threaded scheduler: one task per block, every level written once.
* ``dask``: level by level, ``level = da.from_zarr(previous)``,
  ``da.coarsen(reduction, level, {0: 2, 1: 2, 2: 2}, trim_excess=True)``
  (avg: ``np.mean``, then ``da.rint(...).astype(dtype)``; max: ``np.max``;
  mode: a vectorised NumPy mode of each window, ties to the smallest value),
  ``da.to_zarr`` into a Zarr v2 array, and the next level read back from it.
* ``xarray``: level by level, ``xr.DataArray(da.from_zarr(previous),
  dims=('z', 'y', 'x')).coarsen(z=2, y=2, x=2, boundary='trim')`` and
  ``.mean().round().astype(dtype)`` / ``.max()`` / ``.reduce(mode)``, written
  with ``Dataset.to_zarr(zarr_format=2)``.
* ``roofline``: ``da.from_zarr(source).to_zarr(...)``: the source copied once,
  unchanged (same chunks, uncompressed): the I/O one pass must do at least.

Each measured run is a fresh Python process (this script with ``--case``), so
its peak RSS is its own; it reports the wall time of the work only, its peak
RSS, the RSS just before the work, and the number of tasks the scheduler ran,
as one JSON line.  Runs are interleaved (each round in a rotated order) and
the table shows medians.  Every output store is deleted after its run.

Before timing, a self-check on a 64^3 volume compares every library's levels
with fastpool's (see benchmarks/README.md: the level-by-level peers compute
levels 2..4 from rounded levels / from modes of modes, which is not the
statistic of the whole window, so their avg and mode levels 2..4 may differ).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

# NumPy's OpenBLAS threads busy-wait after a call (see benchmarks/README.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _harness as H  # noqa: E402

LEVELS = 4
FACTOR = 2
SOURCE_CHUNK = 128
FULL_SHAPE = (1280, 1280, 1280)
QUICK_SHAPE = (256, 256, 256)
FULL_MAX_MEMORY = "256MiB"
QUICK_MAX_MEMORY = "32MiB"
CHECK_SHAPE = (64, 64, 64)
CHECK_CHUNK = 32
METHODS = ("avg", "max", "mode")
DTYPES = ("uint8", "uint32")
PEERS = ("dask", "xarray")
LIBS = ("fastpool",) + PEERS
# the source each method reads: smooth noise for avg / max, labels for mode
KIND = {"avg": "intensity", "max": "intensity", "mode": "labels"}
VERSION = 1  # of the source generator: a kept source with another version is rebuilt


# ---------------------------------------------------------------------------
# the source volumes, generated chunk row by chunk row (never whole in RAM)
# ---------------------------------------------------------------------------


def _intensity(dtype: np.dtype, z0: int, y0: int, shape: Tuple[int, int, int], rng) -> np.ndarray:
    """Smooth-ish noise: a sum of slow sines over the whole volume (its
    position, not the chunk's) scaled to the dtype's range, plus uniform noise
    (0..63 for uint8, 0..2**24-1 for uint32)."""
    nz, ny, nx = shape
    z = np.arange(z0, z0 + nz, dtype=np.float32)[:, None, None]
    y = np.arange(y0, y0 + ny, dtype=np.float32)[None, :, None]
    x = np.arange(nx, dtype=np.float32)[None, None, :]
    s = np.sin(z * np.float32(0.021)) + np.sin(y * np.float32(0.017) + np.float32(1.0))
    s = s + np.sin(x * np.float32(0.013) + np.float32(2.0))
    s = s + np.float32(0.5) * np.sin((z + x) * np.float32(0.11)) * np.sin(y * np.float32(0.07))
    s = (s + np.float32(3.5)) * np.float32(1 / 7.0)  # about [0, 1]
    info = np.iinfo(dtype)
    span = 64 if dtype.itemsize == 1 else 1 << 24
    out = (np.clip(s, 0, 1) * np.float32(info.max - span)).astype(dtype)
    out += rng.integers(0, span, size=out.shape, dtype=dtype)
    return out


def _splitmix(h: np.ndarray) -> np.ndarray:
    h = h + np.uint64(0x9E3779B97F4A7C15)
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _labels(dtype: np.dtype, z0: int, y0: int, shape: Tuple[int, int, int], rng) -> np.ndarray:
    """A label volume: cells of 6x7x5 voxels on staggered grids (their
    boundaries cut the 2x2x2 windows: most windows hold one label, many two to
    four), each cell a hashed label (any of 256 values for uint8, the whole
    uint32 range for uint32); 10% of the voxels are salt, a random label."""
    nz, ny, nx = shape
    z = np.arange(z0, z0 + nz, dtype=np.uint64)[:, None, None]
    y = np.arange(y0, y0 + ny, dtype=np.uint64)[None, :, None]
    x = np.arange(nx, dtype=np.uint64)[None, None, :]
    cz = z // np.uint64(6)
    cy = (y + (cz % np.uint64(3)) * np.uint64(2)) // np.uint64(7)
    cx = (x + (cy % np.uint64(4))) // np.uint64(5)
    h = _splitmix(cz * np.uint64(0x1F1F1F1F) ^ cy * np.uint64(0x2545F491) ^ cx)
    bits = 8 * dtype.itemsize
    out = (h >> np.uint64(64 - bits)).astype(dtype)
    salt = rng.integers(0, 10, size=out.shape, dtype=np.uint8) == 0
    out[salt] = rng.integers(0, np.iinfo(dtype).max, size=int(salt.sum()), dtype=dtype,
                             endpoint=True)
    return out


GENERATORS = {"intensity": _intensity, "labels": _labels}


def write_source(path: str, kind: str, dtype: str, shape, chunk: int, seed: int = 0,
                 log=print) -> None:
    """An uncompressed Zarr v2 array at ``path``, written one row of chunks
    (chunk x chunk x whole x) at a time."""
    import zarr
    dt = np.dtype(dtype)
    arr = zarr.create_array(path, shape=tuple(shape), chunks=(chunk,) * 3, dtype=dt,
                            zarr_format=2, compressors=None, filters=None, fill_value=0,
                            overwrite=True, config={"write_empty_chunks": True})
    gen = GENERATORS[kind]
    t0 = time.perf_counter()
    rows = [(z0, y0) for z0 in range(0, shape[0], chunk) for y0 in range(0, shape[1], chunk)]
    for i, (z0, y0) in enumerate(rows):
        nz, ny = min(chunk, shape[0] - z0), min(chunk, shape[1] - y0)
        rng = np.random.default_rng([seed, z0, y0])
        arr[z0:z0 + nz, y0:y0 + ny, :] = gen(dt, z0, y0, (nz, ny, shape[2]), rng)
        if log and len(rows) > 20 and (i + 1) % max(1, len(rows) // 10) == 0:
            log(f"   ... {i + 1}/{len(rows)} chunk rows, {time.perf_counter() - t0:.0f} s")
    arr.attrs["bench_dask"] = _fingerprint(kind, dtype, shape, chunk, seed)


def _fingerprint(kind, dtype, shape, chunk, seed) -> Dict[str, Any]:
    return {"kind": kind, "dtype": dtype, "shape": list(shape), "chunk": chunk, "seed": seed,
            "version": VERSION}


def source_ok(path: str, kind, dtype, shape, chunk, seed=0) -> bool:
    """Whether ``path`` holds a complete source with these parameters."""
    import zarr
    try:
        arr = zarr.open_array(path, mode="r")
    except Exception:
        return False
    return arr.attrs.get("bench_dask") == _fingerprint(kind, dtype, shape, chunk, seed)


# ---------------------------------------------------------------------------
# the peers' reductions
# ---------------------------------------------------------------------------


def _window_mode(w: np.ndarray) -> np.ndarray:
    """Mode along the last axis, ties to the smallest value: sort, then walk
    the sorted values once keeping the run length; a longer run (strictly)
    replaces the best, so of equal runs the first, i.e. smallest, value wins."""
    s = np.sort(w, axis=-1)
    n = s.shape[-1]
    ct = np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int64  # run lengths up to n
    best = s[..., 0].copy()
    best_n = np.ones(best.shape, ct)
    run = np.ones(best.shape, ct)
    one = ct(1)
    for j in range(1, n):
        same = s[..., j] == s[..., j - 1]
        run = np.where(same, run + one, one)
        better = run > best_n
        best = np.where(better, s[..., j], best)
        best_n = np.maximum(best_n, run)
    return best


def mode_reduce(a, axis=None):
    """The mode over ``axis`` (a tuple; None: all axes), ties to the smallest
    value.  A ``reduction`` for ``da.coarsen`` (called on NumPy blocks) and for
    xarray's ``coarsen(...).reduce`` (called on the reshaped Dask array: each
    block reduced with ``map_blocks``, the window axes are one chunk each)."""
    if axis is None:
        axis = tuple(range(a.ndim))
    elif not isinstance(axis, tuple):
        axis = (axis,)
    axis = tuple(sorted(ax % a.ndim for ax in axis))
    if H.try_import("dask.array") is not None and type(a).__module__.startswith("dask."):
        if any(len(a.chunks[ax]) > 1 for ax in axis):
            a = a.rechunk({ax: -1 for ax in axis})
        return a.map_blocks(mode_reduce, axis=axis, drop_axis=axis, dtype=a.dtype)
    a = np.asarray(a)
    keep = [i for i in range(a.ndim) if i not in axis]
    w = a.transpose(keep + list(axis)).reshape([a.shape[i] for i in keep] + [-1])
    return _window_mode(w)


def _coarsen_axes() -> Dict[int, int]:
    return {0: FACTOR, 1: FACTOR, 2: FACTOR}


def dask_level(level, method: str):
    """One level of the ``dask`` peer from the previous one (a Dask array)."""
    import dask.array as da
    if method == "avg":
        return da.rint(da.coarsen(np.mean, level, _coarsen_axes(), trim_excess=True)).astype(level.dtype)
    if method == "max":
        return da.coarsen(np.max, level, _coarsen_axes(), trim_excess=True)
    if method == "mode":
        return da.coarsen(mode_reduce, level, _coarsen_axes(), trim_excess=True)
    raise ValueError(method)


def xarray_level(level, method: str):
    """One level of the ``xarray`` peer from the previous one (a Dask array)."""
    import xarray as xr
    c = xr.DataArray(level, dims=("z", "y", "x")).coarsen(z=FACTOR, y=FACTOR, x=FACTOR, boundary="trim")
    if method == "avg":
        return c.mean().round().astype(level.dtype)
    if method == "max":
        return c.max()
    if method == "mode":
        return c.reduce(mode_reduce)
    raise ValueError(method)


def numpy_direct(x: np.ndarray, k: int, method: str) -> np.ndarray:
    """Level ``k`` straight from the input with the peers' reductions and
    windows of ``FACTOR**k`` (the self-check: the peers' statistic, applied to
    whole windows, must equal fastpool's level bitwise)."""
    w = FACTOR ** k
    r = x.reshape(x.shape[0] // w, w, x.shape[1] // w, w, x.shape[2] // w, w)
    if method == "avg":
        return np.rint(r.mean(axis=(1, 3, 5))).astype(x.dtype)
    if method == "max":
        return r.max(axis=(1, 3, 5))
    return mode_reduce(r, axis=(1, 3, 5))


DESCRIPTIONS = {
    "fastpool": "fastpool.to_zarr_pyramid(zarr.open_array(source), out, levels=4, factor=2, method=m, "
                "max_memory=M, include_input=False, progress=False): one Dask task per block of "
                "whole level-4 windows, each writes one chunk of every level (Zarr v2, zstd)",
    "dask": "per level: level = da.from_zarr(previous); da.coarsen(np.mean | np.max | mode, level, "
            "{0: 2, 1: 2, 2: 2}, trim_excess=True) (avg: da.rint(...).astype(dtype)); "
            "da.to_zarr into a Zarr v2 array (zstd, the level's chunks); the next level reads it back",
    "xarray": "per level: xr.DataArray(da.from_zarr(previous), dims=('z','y','x'))"
              ".coarsen(z=2, y=2, x=2, boundary='trim').mean().round().astype(dtype) | .max() | "
              ".reduce(mode); .to_dataset(name='data').to_zarr(store_k, zarr_format=2) (zstd); "
              "the next level reads store_k back",
    "roofline": "da.to_zarr(da.from_zarr(source), <Zarr v2 array, same chunks, uncompressed>): "
                "one read and one write of the source",
}


# ---------------------------------------------------------------------------
# the measured work (also used by the self-check)
# ---------------------------------------------------------------------------


def _new_array(path: str, shape, chunks, dtype, compressed: bool = True):
    import zarr
    kw = {} if compressed else {"compressors": None, "filters": None}
    return zarr.create_array(path, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
                             zarr_format=2, fill_value=0, overwrite=True,
                             config={"write_empty_chunks": True}, **kw)


def _regular(x):
    """Regular chunks (all equal but the last) for a Zarr array of the same
    grid; a no-op for the chunks the peers produce here."""
    if all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in x.chunks):
        return x
    return x.rechunk(tuple(max(c) for c in x.chunks))


def work(lib: str, method: Optional[str], src: str, out: str, max_memory: str) -> Dict[str, Any]:
    """Compute one case; returns what it can say about the graph."""
    import dask
    import dask.array as da
    import zarr
    if lib == "fastpool":
        import fastpool
        group = fastpool.to_zarr_pyramid(zarr.open_array(src, mode="r"), out, levels=LEVELS, factor=FACTOR,
                                         method=method, max_memory=max_memory, include_input=False,
                                         progress=False)
        return {"graph_tasks": int(group["1"].nchunks), "graph_tasks_what": "blocks (level-1 chunks)",
                "level1_chunks": list(group["1"].chunks)}
    if lib == "roofline":
        x = da.from_zarr(src)
        dst = _new_array(out, x.shape, x.chunksize, x.dtype, compressed=False)
        d = da.to_zarr(x, dst, compute=False)
        n = len(d.__dask_graph__())
        dask.compute(d)
        return {"graph_tasks": n, "graph_tasks_what": "len(graph) of the store"}
    if lib in PEERS:
        zarr.open_group(out, mode="w", zarr_format=2)
        prev = da.from_zarr(src)
        n = 0
        chunks = []
        for k in range(1, LEVELS + 1):
            path = os.path.join(out, str(k))
            if lib == "dask":
                level = _regular(dask_level(prev, method))
                dst = _new_array(path, level.shape, level.chunksize, level.dtype)
                d = da.to_zarr(level, dst, compute=False)
                chunks.append(list(level.chunksize))
            else:
                level = xarray_level(prev, method)
                chunks.append([max(c) for c in level.data.chunks])
                d = level.to_dataset(name="data").to_zarr(path, mode="w", zarr_format=2, compute=False)
            n += len(d.__dask_graph__())
            dask.compute(d)
            prev = da.from_zarr(path, component="data") if lib == "xarray" else da.from_zarr(path)
        return {"graph_tasks": n, "graph_tasks_what": "sum over levels of len(graph) of the store",
                "level_chunks": chunks}
    raise ValueError(lib)


def read_levels(lib: str, out: str) -> List[np.ndarray]:
    import zarr
    res = []
    for k in range(1, LEVELS + 1):
        if lib == "xarray":
            res.append(zarr.open_array(os.path.join(out, str(k)), path="data", mode="r")[...])
        else:
            res.append(zarr.open_array(os.path.join(out, str(k)), mode="r")[...])
    return res


# ---------------------------------------------------------------------------
# the child process: one measured run
# ---------------------------------------------------------------------------


def _status_kib(field: str) -> Optional[int]:
    """A field of /proc/self/status in KiB: ``VmRSS`` (resident now) or
    ``VmHWM`` (the peak resident set of this process image)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child_main(spec: Dict[str, Any]) -> int:
    import dask
    import dask.array  # noqa: F401
    import zarr  # noqa: F401
    from dask.callbacks import Callback
    if spec["lib"] == "fastpool":
        import fastpool  # noqa: F401
    if spec["lib"] == "xarray":
        import xarray  # noqa: F401

    class Count(Callback):
        def __init__(self):
            super().__init__()
            self.n = 0

        def _posttask(self, key, result, dsk, state, id):
            self.n += 1

    counter = Count()
    with dask.config.set(scheduler="threads", num_workers=spec["threads"]):
        base = _status_kib("VmRSS")
        with counter:
            t0 = time.perf_counter()
            info = work(spec["lib"], spec.get("method"), spec["src"], spec["out"], spec["max_memory"])
            t1 = time.perf_counter()
    # ru_maxrss (KiB on Linux) is not this run's own peak: Linux keeps the
    # larger of it and the peak of the image exec replaced, i.e. the parent's
    # RSS at the fork (~460 MiB once the parent has imported Dask and run the
    # self-check).  VmHWM is the peak of this image only; ru_maxrss is kept
    # in the JSON for reference.
    hwm = _status_kib("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info.update({"wall_s": t1 - t0, "peak_rss_mib": (hwm if hwm is not None else maxrss) / 1024,
                 "peak_rss_from": "VmHWM" if hwm is not None else "ru_maxrss",
                 "ru_maxrss_mib": maxrss / 1024,
                 "base_rss_mib": None if base is None else base / 1024,
                 "tasks": counter.n})
    print(json.dumps(info))
    return 0


# ---------------------------------------------------------------------------
# the self-check
# ---------------------------------------------------------------------------


def _diff_note(got: np.ndarray, want: np.ndarray) -> str:
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    d = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return (f"max |diff| {int(d.max())}, {100 * np.count_nonzero(d) / d.size:.2f}% of "
            f"{d.size} elements differ")


WHY = {
    "avg": "each level is rounded and the next level averages the rounded values (fastpool rounds each "
           "level once from the exact window sum, = rint(mean of the 2**k window))",
    "mode": "each level is the mode of the previous level's modes, which is not the mode of the 2**k "
            "window (fastpool's level k is)",
}


def self_check(dtypes, methods, peers, scratch: str, log=print) -> Dict[Tuple[str, str, str], Dict[str, str]]:
    """Every library's pyramid of a 64^3 volume (chunks 32^3; fastpool's
    blocks 32^3) compared with fastpool's.  Returns ``{(dtype, method, lib):
    {"status": exact | documented | MISMATCH | error, "note": ...}}``."""
    import dask
    import zarr
    fp, why = H.import_fastpool()
    res: Dict[Tuple[str, str, str], Dict[str, str]] = {}
    # the mode reduction against the harness's reference mode, tie-heavy input
    rng = np.random.default_rng(5)
    w = rng.integers(0, 3, size=(20000, 8)).astype(np.uint8)
    if not np.array_equal(_window_mode(w), H.window_mode(w)):
        log("   MISMATCH: the peers' mode reduction differs from the harness's window_mode on tie-heavy input")
        res[("*", "mode", "peers")] = {"status": "MISMATCH", "note": "mode reduction != harness window_mode"}
    with dask.config.set(scheduler="threads"):
        for dtype in dtypes:
            itemsize = np.dtype(dtype).itemsize
            for kind in sorted({KIND[m] for m in methods}):
                src = os.path.join(scratch, f"check-{dtype}-{kind}.zarr")
                write_source(src, kind, dtype, CHECK_SHAPE, CHECK_CHUNK, seed=1, log=None)
                x = zarr.open_array(src, mode="r")[...]
                # a tie-heavy second input for mode: labels 0..3 only
                inputs = [("", src, x)]
                if kind == "labels":
                    src2 = os.path.join(scratch, f"check-{dtype}-ties.zarr")
                    _new_array(src2, CHECK_SHAPE, (CHECK_CHUNK,) * 3, dtype, compressed=False)[...] = \
                        np.random.default_rng(2).integers(0, 4, size=CHECK_SHAPE).astype(dtype)
                    inputs.append((" (labels 0..3)", src2, zarr.open_array(src2, mode="r")[...]))
                for method in [m for m in methods if KIND[m] == kind]:
                    for suffix, path, xin in inputs:
                        _check_one(fp, dtype, method, suffix, path, xin, itemsize, peers, scratch, res, log)
    return res


def _check_one(fp, dtype, method, suffix, path, xin, itemsize, peers, scratch, res, log):
    label = f"{dtype} {method}{suffix}"
    what = "labels 0..3" if suffix else KIND[method]

    def put(lib, status, note):
        note = f"[{what}] {note}" if note else note
        key = (dtype, method, lib)
        old = res.get(key)
        order = ["exact", "documented", "MISMATCH", "error"]
        if old is None or order.index(status) > order.index(old["status"]):
            res[key] = {"status": status, "note": note}
        elif status == old["status"] and note and note not in old["note"]:
            res[key] = {"status": status, "note": old["note"] + "; " + note}
        log(f"   check {label}: {lib}: {status}{': ' + note if note else ''}")

    want = None
    if fp is not None:
        out = os.path.join(scratch, "check-out-fastpool")
        try:
            # blocks of 32^3 (8 of them): the bound that gives exactly 32^3 elements
            work("fastpool", method, path, out, str(CHECK_CHUNK ** 3 * (2 * itemsize + 8)))
            got = read_levels("fastpool", out)
            ref = fp.pyramid(xin, LEVELS, FACTOR, method)
            bad = [k + 1 for k in range(LEVELS) if not np.array_equal(got[k], ref[k])]
            direct = [numpy_direct(xin, k + 1, method) for k in range(LEVELS)]
            bad_direct = [k + 1 for k in range(LEVELS) if not np.array_equal(got[k], direct[k])]
            if bad:
                put("fastpool", "MISMATCH", f"to_zarr_pyramid levels {bad} != fastpool.pyramid in memory")
            elif bad_direct:
                put("fastpool", "MISMATCH",
                    f"levels {bad_direct} != the peers' reduction of whole 2**k windows (NumPy): " +
                    "; ".join(f"level {k}: {_diff_note(got[k - 1], direct[k - 1])}" for k in bad_direct))
            else:
                put("fastpool", "exact", "= fastpool.pyramid in memory = the peers' reduction of whole "
                                         "2**k windows, every level")
            want = got
        except Exception as exc:
            put("fastpool", "error", f"{type(exc).__name__}: {exc}")
        shutil.rmtree(out, ignore_errors=True)
    if want is None:  # no fastpool: the peers' statistic on whole windows
        want = [numpy_direct(xin, k + 1, method) for k in range(LEVELS)]
    for lib in peers:
        out = os.path.join(scratch, f"check-out-{lib}")
        try:
            work(lib, method, path, out, "")
            got = read_levels(lib, out)
        except Exception as exc:
            put(lib, "error", f"{type(exc).__name__}: {exc}")
            shutil.rmtree(out, ignore_errors=True)
            continue
        shutil.rmtree(out, ignore_errors=True)
        differ = [k + 1 for k in range(LEVELS) if not (got[k].shape == want[k].shape
                                                       and np.array_equal(got[k], want[k]))]
        if not differ:
            put(lib, "exact", "")
        elif method in WHY and 1 not in differ and all(got[k].shape == want[k].shape for k in range(LEVELS)):
            put(lib, "documented", f"level 1 exact; levels {differ} differ ({WHY[method]}): " + "; ".join(
                f"level {k}: {_diff_note(got[k - 1], want[k - 1])}" for k in differ))
        else:
            put(lib, "MISMATCH", "; ".join(f"level {k}: {_diff_note(got[k - 1], want[k - 1])}" for k in differ))


# ---------------------------------------------------------------------------
# the parent: sources, interleaved runs, report
# ---------------------------------------------------------------------------


def _meminfo() -> Dict[str, Optional[float]]:
    res: Dict[str, Optional[float]] = {"total_gib": None, "available_gib": None}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    res["total_gib"] = int(line.split()[1]) / 2 ** 20
                elif line.startswith("MemAvailable:"):
                    res["available_gib"] = int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return res


def environment() -> Dict[str, Any]:
    env = {k: v for k, v in H.environment().items()
           if k in ("python", "platform", "cpu", "cpu_count", "affinity", "numpy", "fastpool")}
    for name in ("dask", "distributed", "zarr", "xarray", "numcodecs"):
        env[name] = H._version(name)
    mem = _meminfo()
    env["ram_gib"] = None if mem["total_gib"] is None else round(mem["total_gib"], 1)
    env["ram_available_gib"] = None if mem["available_gib"] is None else round(mem["available_gib"], 1)
    return env


class _Load:
    """CPU share of other processes during a child's run: busy jiffies in
    /proc/stat minus this process's and its children's CPU time."""

    def __init__(self):
        self.t0 = time.monotonic()
        t = os.times()
        self.own0 = t[0] + t[1] + t[2] + t[3]
        self.busy0 = H.OtherLoad._busy()

    def value(self) -> Optional[float]:
        busy1 = H.OtherLoad._busy()
        if busy1 is None or self.busy0 is None:
            return None
        t = os.times()
        own = t[0] + t[1] + t[2] + t[3] - self.own0
        wall = time.monotonic() - self.t0
        return max(0.0, (busy1 - self.busy0 - own) / max(1e-9, wall * (os.cpu_count() or 1)))


def _child_env() -> Dict[str, str]:
    """The environment of a run: this one, with the directory this process
    imported fastpool from first on PYTHONPATH, so every run times the build
    the self-check checked."""
    env = dict(os.environ)
    fp = sys.modules.get("fastpool")
    if fp is not None and getattr(fp, "__file__", None):
        root = os.path.dirname(os.path.dirname(os.path.abspath(fp.__file__)))
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run_child(spec: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
    load = _Load()
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", json.dumps(spec)],
                           capture_output=True, text=True, timeout=timeout, env=_child_env())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "other_cpu_load": load.value()}
    other = load.value()
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-6:]
        return {"error": f"exit {p.returncode}: " + " | ".join(tail), "other_cpu_load": other}
    res = json.loads(lines[-1])
    res["other_cpu_load"] = other
    return res


def _in_repo(path: str) -> bool:
    a, b = os.path.realpath(path), os.path.realpath(REPO)
    return os.path.commonpath([a, b]) == b


def make_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"a {QUICK_SHAPE[0]}^3 volume and 1 round (unless --repeats): a smoke test")
    p.add_argument("--shape", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help=f"the volume's shape, multiples of {FACTOR ** LEVELS} "
                        f"(default {' '.join(map(str, FULL_SHAPE))}; --quick {' '.join(map(str, QUICK_SHAPE))})")
    p.add_argument("--dtype", default=None,
                   help="comma-separated: uint8,uint32 (default both; --quick uint8; the self-check does both)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated: avg,max,mode (default all)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of dask,xarray "
                   "(fastpool and the roofline always run)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; --quick 1)")
    p.add_argument("--threads", default=None,
                   help="comma-separated Dask scheduler thread counts, one table each (default: all cores)")
    p.add_argument("--max-memory", default=None,
                   help=f"to_zarr_pyramid's max_memory (default {FULL_MAX_MEMORY}; --quick {QUICK_MAX_MEMORY}: "
                        f"blocks of 128^3, 8 of them, as the full run's 256^3 blocks make 125)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "fastpool-bench-dask"),
                   help="scratch directory for the sources and outputs (never inside the repository; "
                        "default %(default)s)")
    p.add_argument("--keep-sources", action="store_true",
                   help="keep the source volumes in --dir, and reuse ones a previous run kept")
    p.add_argument("--skip-check", action="store_true", help="skip the self-check")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one run may take (default 3600)")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for the other processes to leave the CPUs idle before starting")
    p.add_argument("--json", default=None, help="also write every run's numbers as JSON to this path")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one measured run
    return p


def _fmt_s(v: Optional[float]) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _fmt_mib(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    if args.case is not None:
        return child_main(json.loads(args.case))

    shape = tuple(args.shape) if args.shape else (QUICK_SHAPE if args.quick else FULL_SHAPE)
    top = FACTOR ** LEVELS
    if any(n % top for n in shape):
        print(f"--shape must be multiples of {top}: fastpool keeps partial windows at the far edge (ceil), "
              f"Dask's trim_excess and xarray's boundary='trim' drop them", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in (args.dtype or ("uint8" if args.quick else ",".join(DTYPES))).split(",")
              if d.strip()]
    if args.max_memory is None:
        args.max_memory = QUICK_MAX_MEMORY if args.quick else FULL_MAX_MEMORY
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    peers = [q.strip() for q in args.peers.split(",") if q.strip()]
    for vals, allowed, what in ((dtypes, DTYPES, "--dtype"), (methods, METHODS, "--methods"),
                                (peers, PEERS, "--peers")):
        bad = [v for v in vals if v not in allowed]
        if bad:
            print(f"{what}: unknown {bad}; choose from {list(allowed)}", file=sys.stderr)
            return 2
    repeats = args.repeats or (1 if args.quick else 3)
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [ncores]
    if _in_repo(args.dir):
        print(f"--dir {args.dir} is inside the repository; use a scratch directory elsewhere", file=sys.stderr)
        return 2
    os.makedirs(args.dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="run-", dir=args.dir)
    libs = ["fastpool"] + peers
    kinds_by_dtype = sorted({KIND[m] for m in methods})

    env = environment()
    fp, why = H.import_fastpool()
    nbytes = {d: int(np.prod(shape)) * np.dtype(d).itemsize for d in dtypes}
    print(f"# fastpool benchmark: out-of-core {FACTOR}x{FACTOR}x{FACTOR} pyramids ({LEVELS} levels) "
          f"from Zarr on disk: to_zarr_pyramid vs dask / xarray{' (--quick)' if args.quick else ''}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"machine: {env['cpu']}, {env['cpu_count']} cores ({env['affinity']} usable), "
          f"RAM {env['ram_gib']} GiB ({env['ram_available_gib']} GiB available)")
    print("versions: " + ", ".join(f"{k} {env[k]}" for k in
                                   ("python", "numpy", "dask", "distributed", "zarr", "numcodecs", "xarray",
                                    "fastpool")))
    print(f"volume: {'x'.join(map(str, shape))}, " + ", ".join(
        f"{d} {nbytes[d] / 2 ** 30:.2f} GiB" for d in dtypes)
        + f"; source: Zarr v2, chunks {SOURCE_CHUNK}^3, uncompressed; outputs Zarr v2, zstd (zarr's default); "
          f"max_memory {args.max_memory}; Dask threads {threads}; {repeats} round(s); scratch {scratch}")
    if fp is None:
        print(f"fastpool: NOT importable ({why}); its rows are n/a")
    free = shutil.disk_usage(args.dir).free
    need = max(nbytes.values()) * (len(kinds_by_dtype) + 1.3) if nbytes else 0
    if need > free:
        print(f"not enough disk in {args.dir}: {need / 2 ** 30:.1f} GiB needed, {free / 2 ** 30:.1f} GiB free",
              file=sys.stderr)
        shutil.rmtree(scratch, ignore_errors=True)
        return 2
    if args.wait_idle > 0:
        H.wait_for_idle(args.wait_idle, log=lambda m: print(m, flush=True))
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy0 = H.cpu_busy()
    print(f"load average at start: {load0}; CPU busy (other processes, 1 s sample): {H.fmt_pct(busy0)}"
          + ("  WARNING: the machine is busy; timings will be noisy" if busy0 and busy0 > 0.1 else ""))
    print(flush=True)

    t_start = time.perf_counter()
    checks: Dict[Tuple[str, str, str], Dict[str, str]] = {}
    if not args.skip_check:
        print(f"## Self-check ({'x'.join(map(str, CHECK_SHAPE))}, chunks {CHECK_CHUNK}^3, "
              f"fastpool blocks {CHECK_CHUNK}^3)", flush=True)
        t0 = time.perf_counter()
        checks = self_check(DTYPES, methods, peers, scratch, log=lambda m: print(m, flush=True))
        for name in os.listdir(scratch):
            shutil.rmtree(os.path.join(scratch, name), ignore_errors=True)
        print(f"   self-check {time.perf_counter() - t0:.1f} s", flush=True)
        print(flush=True)

    runs: List[Dict[str, Any]] = []
    try:
        for dtype in dtypes:
            print(f"## {dtype} {'x'.join(map(str, shape))} ({nbytes[dtype] / 2 ** 30:.2f} GiB)", flush=True)
            sources = {}
            for kind in kinds_by_dtype:
                kept = os.path.join(args.dir, f"source-{dtype}-{kind}-{'x'.join(map(str, shape))}.zarr")
                path = kept if args.keep_sources else os.path.join(scratch, f"source-{dtype}-{kind}.zarr")
                if args.keep_sources and source_ok(path, kind, dtype, shape, SOURCE_CHUNK):
                    print(f"   source {kind}: reusing {path}", flush=True)
                else:
                    t0 = time.perf_counter()
                    write_source(path, kind, dtype, shape, SOURCE_CHUNK, log=lambda m: print(m, flush=True))
                    print(f"   source {kind}: written in {time.perf_counter() - t0:.1f} s ({path})", flush=True)
                sources[kind] = path
            os.sync()
            # one roofline per dtype: both sources are uncompressed and the same size, so
            # their copies move the same bytes
            cases = [("roofline", None, kinds_by_dtype[0])] + [
                (lib, m, KIND[m]) for m in methods for lib in libs
                if not (lib == "fastpool" and fp is None)]
            for n in threads:
                for r in range(repeats):
                    order = cases[r % len(cases):] + cases[:r % len(cases)]
                    for lib, method, kind in order:
                        out = os.path.join(scratch, "out")
                        shutil.rmtree(out, ignore_errors=True)
                        spec = {"lib": lib, "method": method, "src": sources[kind], "out": out,
                                "max_memory": args.max_memory, "threads": n}
                        res = run_child(spec, args.timeout)
                        shutil.rmtree(out, ignore_errors=True)
                        os.sync()  # the next run does not pay for this one's writeback
                        time.sleep(0.2)
                        res.update({"dtype": dtype, "lib": lib, "method": method, "kind": kind, "threads": n,
                                    "round": r})
                        runs.append(res)
                        what = f"{lib} {method or kind}"
                        if "error" in res:
                            print(f"   [{n}T r{r}] {what}: ERROR {res['error']}", flush=True)
                        else:
                            print(f"   [{n}T r{r}] {what}: {_fmt_s(res['wall_s'])} s, peak RSS "
                                  f"{_fmt_mib(res['peak_rss_mib'])} MiB (before the work "
                                  f"{_fmt_mib(res['base_rss_mib'])}), {res['tasks']} tasks; other processes "
                                  f"{H.fmt_pct(res['other_cpu_load'])}", flush=True)
            if not args.keep_sources:
                for path in sources.values():
                    shutil.rmtree(path, ignore_errors=True)
            print(flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - t_start
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy1 = H.cpu_busy()

    # ------------------------------------------------------------------ report
    bound_mib = {n: n * _mib_of(args.max_memory) for n in threads}
    rows = summarize(runs, dtypes, methods, libs, kinds_by_dtype, threads, checks)
    print(f"# Results ({elapsed:.0f} s){' --quick' if args.quick else ''}; load average at start {load0}, "
          f"at end {load1}; CPU busy with other processes before {H.fmt_pct(busy0)}, after {H.fmt_pct(busy1)}")
    print()
    print(f"machine: {env['cpu']}, {env['cpu_count']} cores, RAM {env['ram_gib']} GiB; "
          + ", ".join(f"{k} {env[k]}" for k in ("numpy", "dask", "zarr", "xarray", "fastpool"))
          + f"; volume {'x'.join(map(str, shape))} ("
          + ", ".join(f"{d} {nbytes[d] / 2 ** 30:.2f} GiB" for d in dtypes)
          + f"); max_memory {args.max_memory}; {repeats} round(s)")
    print()
    print(LEGEND.format(bound=", ".join(f"{n} thread(s): {b:.0f} MiB" for n, b in bound_mib.items())))
    for n in threads:
        print()
        print(f"## {n} Dask thread{'s' if n > 1 else ''}")
        print()
        print(markdown_table([r for r in rows if r["threads"] == n], bound_mib[n]))
    print()
    print("## How each contender computes the result")
    for lib in ["roofline"] + libs:
        print(f"- {lib}: {DESCRIPTIONS[lib]}")
    notes = closing_notes(rows, threads, bound_mib)
    print()
    print("## Ratios")
    for line in notes:
        print(line)
    if checks:
        odd = [(k, v) for k, v in checks.items() if v["status"] != "exact"]
        print()
        print("## Self-check results that were not exact")
        if not odd:
            print("- none: every library's every level equals fastpool's")
        for (dtype, method, lib), v in odd:
            print(f"- {dtype} {method} {lib}: {v['status']}: {v['note']}")
    disturbed = [f"{r['dtype']} {r['method'] or r['kind']} {r['lib']} ({r['threads']}T round {r['round']}): "
                 f"{H.fmt_pct(r['other_cpu_load'])}" for r in runs if (r.get("other_cpu_load") or 0) > 0.05]
    if disturbed:
        print()
        print("## Runs during which other processes used > 5% of the CPUs (timings disturbed)")
        for line in disturbed:
            print(f"- {line}")
    errors = [f"{r['dtype']} {r['method'] or r['kind']} {r['lib']}: {r['error']}" for r in runs if "error" in r]
    if errors:
        print()
        print("## Runs that failed")
        for line in dict.fromkeys(errors):
            print(f"- {line}")

    if args.json:
        payload = {
            "benchmark": "bench_dask",
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "quick": args.quick,
            "environment": env,
            "shape": list(shape),
            "levels": LEVELS,
            "factor": FACTOR,
            "source_chunks": SOURCE_CHUNK,
            "max_memory": args.max_memory,
            "memory_bound_mib": {str(n): b for n, b in bound_mib.items()},
            "threads": threads,
            "repeats": repeats,
            "elapsed_s": elapsed,
            "loadavg_start": load0,
            "loadavg_end": load1,
            "cpu_busy_other_start": busy0,
            "cpu_busy_other_end": busy1,
            "checks": [{"dtype": k[0], "method": k[1], "lib": k[2], **v} for k, v in checks.items()],
            "descriptions": DESCRIPTIONS,
            "summary": rows,
            "runs": runs,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1, default=float)
        print(f"\nJSON written to {args.json}")
    bad = [k for k, v in checks.items() if v["status"] in ("MISMATCH", "error")]
    return 1 if errors or bad else 0


def _mib_of(text: str) -> float:
    """MiB of a byte count such as '256MiB', '1.5GiB' or '268435456' (the
    forms to_zarr_pyramid's max_memory accepts)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    if t and t[-1] in units:
        return float(t[:-1]) * units[t[-1]] / 2 ** 20
    return float(t) / 2 ** 20


LEGEND = (
    "Times are medians over the rounds of the wall time of the work in a fresh process (imports and "
    "process start excluded). `peer / fastpool`: the library's time over fastpool's for the same dtype "
    "and method (> 1: fastpool is faster). `/ roofline`: the time over the roofline's (one uncompressed "
    "copy of the source through Dask; < 1 is possible, the pyramids write 1/7 of the input, compressed). "
    "`peak RSS`: the process's peak resident memory (VmHWM; ru_maxrss would include the parent's RSS at "
    "the fork), the largest over the rounds; "
    "`work RSS`: that peak minus the RSS just before the work (imports, source opened). fastpool's bound "
    "is max_memory per task times the scheduler's threads ({bound}): `!` after fastpool's work RSS if it "
    "is above. `tasks`: the tasks the scheduler ran (a dask callback), `graph`: the tasks in the graph "
    "handed to it (fastpool: its blocks; peers: the store graphs, summed over the levels). Check: `†` "
    "levels 2..4 differ from fastpool's for the documented reason in the self-check (level-by-level "
    "rounding / mode of modes), `!` an unexplained mismatch, `err` the check failed.")


def summarize(runs, dtypes, methods, libs, kinds, threads, checks) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for n in threads:
        for dtype in dtypes:
            def pick(lib, method, kind):
                return [r for r in runs if r["threads"] == n and r["dtype"] == dtype and r["lib"] == lib
                        and r["method"] == method and r["kind"] == kind and "error" not in r]

            rs = pick("roofline", None, kinds[0])
            roof = _med(r["wall_s"] for r in rs)
            rows.append(_row(n, dtype, "copy", "roofline", rs, None, roof, None))
            for method in methods:
                fp_t = _med(r["wall_s"] for r in pick("fastpool", method, KIND[method]))
                for lib in libs:
                    rs = pick(lib, method, KIND[method])
                    rows.append(_row(n, dtype, method, lib, rs, fp_t, roof, checks.get((dtype, method, lib))))
    return rows


def _row(n, dtype, method, lib, rs, fp_t, roof_t, check) -> Dict[str, Any]:
    t = _med(r["wall_s"] for r in rs)
    work = [r["peak_rss_mib"] - r["base_rss_mib"] for r in rs if r.get("base_rss_mib") is not None]
    return {
        "threads": n, "dtype": dtype, "method": method, "lib": lib, "rounds": len(rs),
        "wall_s": t, "wall_s_all": [r["wall_s"] for r in rs],
        "ratio_to_fastpool": None if t is None or not fp_t else t / fp_t,
        "ratio_to_roofline": None if t is None or not roof_t else t / roof_t,
        "peak_rss_mib": max((r["peak_rss_mib"] for r in rs), default=None),
        "work_rss_mib": max(work, default=None),
        "tasks": _med(r["tasks"] for r in rs),
        "graph_tasks": _med(r.get("graph_tasks") for r in rs),
        "check": None if check is None else check["status"],
        "check_note": None if check is None else check["note"],
    }


MARK = {"exact": "", "documented": " †", "MISMATCH": " !", "error": " err", None: ""}


def markdown_table(rows, bound_mib: float) -> str:
    head = ["dtype", "method", "library", "wall s", "peer / fastpool", "/ roofline", "peak RSS MiB",
            "work RSS MiB", "tasks", "graph"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        work = _fmt_mib(r["work_rss_mib"])
        if r["lib"] == "fastpool" and r["work_rss_mib"] is not None and r["work_rss_mib"] > bound_mib:
            work += " !"
        ratio = "n/a" if r["lib"] == "roofline" else H.fmt_ratio(r["ratio_to_fastpool"])
        tasks = "n/a" if r["tasks"] is None else f"{r['tasks']:.0f}"
        graph = "n/a" if r["graph_tasks"] is None else f"{r['graph_tasks']:.0f}"
        lines.append("| " + " | ".join([
            r["dtype"], r["method"], r["lib"] + MARK.get(r["check"], ""),
            _fmt_s(r["wall_s"]) if r["rounds"] else "err", ratio, H.fmt_ratio(r["ratio_to_roofline"]),
            _fmt_mib(r["peak_rss_mib"]), work, tasks, graph]) + " |")
    return "\n".join(lines)


def _tasks(r) -> str:
    return "n/a" if r["tasks"] is None else f"{r['tasks']:.0f}"


def closing_notes(rows, threads, bound_mib) -> List[str]:
    """One line per (threads, dtype, method): fastpool against the roofline and
    its memory bound, each peer's time as a multiple of fastpool's."""
    out = []
    for n in threads:
        for r in rows:
            if r["threads"] != n or r["lib"] != "fastpool":
                continue
            peers = [q for q in rows if q["threads"] == n and q["dtype"] == r["dtype"]
                     and q["method"] == r["method"] and q["lib"] in PEERS]
            parts = [f"{q['lib']} {H.fmt_ratio(q['ratio_to_fastpool'])}x fastpool's time"
                     f"{MARK.get(q['check'], '')} (peak RSS {_fmt_mib(q['peak_rss_mib'])} MiB, "
                     f"{_tasks(q)} tasks)" for q in peers]
            within = ("n/a" if r["work_rss_mib"] is None else
                      "within" if r["work_rss_mib"] <= bound_mib[n] else "ABOVE")
            out.append(f"- {r['dtype']} {r['method']} ({n}T): fastpool {_fmt_s(r['wall_s'])} s = "
                       f"{H.fmt_ratio(r['ratio_to_roofline'])}x the roofline, peak RSS "
                       f"{_fmt_mib(r['peak_rss_mib'])} MiB (work {_fmt_mib(r['work_rss_mib'])} MiB, {within} "
                       f"the bound {bound_mib[n]:.0f} MiB), {_tasks(r)} tasks; " + "; ".join(parts))
    return out


if __name__ == "__main__":
    sys.exit(main())
