"""Correctness of the order-statistic pools: median_pool, rank_pool, percentile_pool
and mode_pool.

Oracles:
* the slow Python reference in tests/reference.py (``sorted()`` per window for ranks,
  ``collections.Counter`` keyed by the float bits for the mode) on randomized cases;
* ``vec_ref`` below: a vectorised NumPy version (gather every window, ``np.sort``),
  itself checked against the reference, for arrays too large for the slow one;
* scipy.ndimage's median/rank/percentile filters sliced at the pooling positions;
* PyTorch: ``unfold`` + ``median`` (odd windows: torch takes the lower median),
  ``kthvalue`` for ranks, ``nanmedian`` where the kept count is odd;
* scipy.stats.mode on non-overlapping blocks.

Semantics (per window, ``vals`` = the samples that are part of the window minus the
missing ones, ``n = len(vals)``): a kept NaN under 'propagate' gives NaN; ``n == 0``
gives ``nodata`` (or NaN without one); median is rank ``n // 2``; ``rank_pool``
counts negative ranks from the end and clamps to ``[0, n - 1]``; percentile rank is
``int(n * p / 100)`` (``n - 1`` for 100); the mode is the most frequent value, ties
to the smallest, floats compared by their bits (-0.0 < +0.0 and distinct).
"""

import math
import zlib

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool
from strategies import draw_output, pool_case
from reference import (
    ALL_DTYPES,
    LAYOUTS,
    MODES,
    EmptyWindow,
    cast_result,
    default_dtype,
    examples,
    geometry,
    output_length,
    random_array,
    ref,
    ref_pool,
    relayout,
)

ORDER = ("median", "rank", "percentile", "mode")
GEO_KEYS = ("stride", "padding", "dilation", "ceil_mode", "mode", "axes")


def opool(method, x, size, *, rank=None, percentile=None, **kw):
    """Call the fastpool function for ``method`` (its own parameter given by keyword)."""
    if method == "rank":
        return fastpool.rank_pool(x, rank, size, **kw)
    if method == "percentile":
        return fastpool.percentile_pool(x, percentile, size, **kw)
    return getattr(fastpool, f"{method}_pool")(x, size, **kw)


def float_bits(a):
    """Float array -> integer array of its float64 bits (the sign of zero kept)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def assert_same(res, exp, method):
    """``res`` (fastpool) equals ``exp`` (an oracle, already of the expected dtype):
    shape, dtype and values; NaN where NaN; for the mode also the sign of zeros
    (floats are compared by their bits).  Results are selections, never
    interpolations, so there is no tolerance."""
    assert isinstance(res, np.ndarray), type(res)
    assert res.shape == exp.shape, (res.shape, exp.shape)
    assert res.dtype.newbyteorder("=") == exp.dtype.newbyteorder("="), (res.dtype, exp.dtype)
    if exp.dtype.kind == "b":  # a bool result holds only the bytes 0 and 1
        assert (np.ascontiguousarray(res).view(np.uint8) <= 1).all(), "invalid bool bytes"
    if exp.dtype.kind == "f":
        r = np.asarray(res, dtype=np.float64)
        e = np.asarray(exp, dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(r), np.isnan(e), err_msg="NaN positions")
        np.testing.assert_array_equal(r, e)
        if method == "mode":
            ok = ~np.isnan(e)
            np.testing.assert_array_equal(float_bits(r)[ok], float_bits(e)[ok],
                                          err_msg="mode: -0.0 and +0.0 are different values")
    else:
        np.testing.assert_array_equal(res, exp)


# ---------------------------------------------------------------------------
# A vectorised oracle for larger arrays (gathers every window, then np.sort)


def _orderable_key(vals):
    """Values -> keys whose order is the numeric order, floats keyed by their bits
    (-0.0 < +0.0, both distinct); no NaN expected where keys matter."""
    if vals.dtype.kind == "f":
        b = float_bits(vals).reshape(vals.shape)
        return b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))
    return vals


def vec_ref(x, method, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
            mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
            rank=None, percentile=None):
    """Same contract as ``ref(x, method, size, ...)`` (default output dtype), vectorised.

    Uses ``reference.axis_windows`` for the per-axis geometry, builds an array of
    every window's values (in C order over the pooled axes) with a 'part of the
    window' mask, then selects with ``np.sort``.  Memory is O(output * window)."""
    x = np.asarray(x)
    cdt = np.dtype(np.float32) if x.dtype == np.float16 else x.dtype.newbyteorder("=")
    is_float = cdt.kind == "f"
    if nan_policy == "raise" and is_float and np.isnan(x).any():
        raise ValueError("nan")
    pooled, wins, out_shape = geometry(x.shape, size, stride, padding, dilation, ceil_mode,
                                       mode, axes)
    vals = np.asarray(x, dtype=cdt)
    # 0: input element, 1: cval, 2: not part of the window
    state = np.zeros(vals.shape, dtype=np.int8)
    nwin_axes = 0
    for ax in pooled:
        ws = wins[ax]
        k = max(len(w) for w in ws)
        idx = np.zeros((len(ws), k), dtype=np.intp)
        st_ = np.full((len(ws), k), 2, dtype=np.int8)
        for i, w in enumerate(ws):
            for j, (kind, src) in enumerate(w):
                idx[i, j] = src
                st_[i, j] = 1 if kind == "cval" else 0
        vals = np.take(vals, idx.ravel(), axis=ax)
        state = np.take(state, idx.ravel(), axis=ax)
        shp = vals.shape[:ax] + (len(ws), k) + vals.shape[ax + 1:]
        vals = np.moveaxis(vals.reshape(shp), ax + 1, -1)
        state = np.moveaxis(state.reshape(shp), ax + 1, -1)
        bshape = [1] * state.ndim
        bshape[ax] = len(ws)
        bshape[-1] = k
        state = np.maximum(state, st_.reshape(bshape))
        nwin_axes += 1
    # the window axes are now last, in ascending pooled-axis order (C order)
    W = int(np.prod(vals.shape[x.ndim:], dtype=np.int64))
    vals = np.array(vals.reshape(-1, W))
    state = state.reshape(-1, W)
    if mode == "constant":
        if is_float:
            cv = cdt.type(np.dtype(x.dtype).type(cval)) if x.dtype == np.float16 \
                else cdt.type(cval)
        else:
            cv = cast_result(np.array([cval], dtype=object), cdt)[0]
        vals[state == 1] = cv
    miss = state == 2
    isnan = np.isnan(vals) if is_float else np.zeros(vals.shape, bool)
    if nodata is not None:
        miss |= (vals == nodata) & ~isnan
    if nan_policy == "omit":
        miss |= isnan
    kept_nan = (isnan & ~miss).any(axis=1)
    n = (~miss).sum(axis=1)
    rows = np.arange(vals.shape[0])
    if method == "mode":
        key = _orderable_key(vals)
        order = np.lexsort((key, miss), axis=-1)  # kept values first, ascending
        skey = np.take_along_axis(key, order, axis=1)
        sval = np.take_along_axis(vals, order, axis=1)
        smiss = np.take_along_axis(miss, order, axis=1)
        run = np.zeros(len(rows), np.int64)
        best = np.zeros(len(rows), np.int64)
        best_j = np.zeros(len(rows), np.intp)
        for j in range(W):
            same = skey[:, j] == skey[:, j - 1] if j else np.zeros(len(rows), bool)
            run = np.where(same, run + 1, 1)
            better = (run > best) & ~smiss[:, j]  # strictly: ties keep the smaller value
            best = np.where(better, run, best)
            best_j = np.where(better, j, best_j)
        res = sval[rows, best_j]
    else:
        if is_float:
            s = np.where(miss, np.nan, vals)
        else:
            s = np.where(miss, np.array(np.iinfo(cdt).max if cdt.kind != "b" else True,
                                        dtype=cdt), vals)
        s = np.sort(s, axis=1)  # kept values first (ties with the filler are equal)
        nf = n.astype(np.float64)
        if method == "median":
            r = n // 2
        elif method == "rank":
            r = np.full(len(rows), rank) if rank >= 0 else n + rank
        else:
            p = float(percentile)
            r = n - 1 if p == 100 else np.trunc(nf * p / 100).astype(np.int64)
        r = np.clip(r, 0, np.maximum(n - 1, 0))
        res = s[rows, r]
    res = np.array(res, dtype=cdt)
    if is_float:
        res[kept_nan] = np.nan
    empty = n == 0
    if empty.any():
        if nodata is None:
            res[empty] = np.nan
        else:
            res[empty] = cast_result(np.array([nodata], dtype=object), cdt)[0]
    return res.reshape(out_shape)


# ---------------------------------------------------------------------------
# strategies


def draw_param(draw, method, wsize):
    """The method's own parameter: ``{'rank': r}``, ``{'percentile': p}`` or ``{}``."""
    if method == "rank":
        special = [0, -1, wsize - 1, -wsize, wsize // 2, -(wsize // 2) - 1]
        r = draw(st.sampled_from(special) | st.integers(-wsize, wsize - 1))
        return {"rank": r}
    if method == "percentile":
        p = draw(st.sampled_from([0, 100, 50, 25, 75.0, 12.5, 33.3, 66.7, 99.99, 0.01,
                                  100.0, 0.0, 10, 90])
                 | st.floats(0, 100, allow_nan=False))
        return {"percentile": p}
    return {}


LABEL_FLOATS = np.array([-0.0, 0.0, 1.0, -1.0, 2.5, np.inf, -np.inf])


def draw_data(draw, method, dtype, rng, shape):
    """Data, cval, nan_policy, nodata for one case."""
    dtype = np.dtype(dtype)
    kind = dtype.kind
    flavours = ["small", "small", "normal", "full", "labels"]
    flavour = draw(st.sampled_from(flavours))
    if kind == "f":
        nan_frac = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
        inf_frac = draw(st.sampled_from([0.0, 0.0, 0.05]))
        if flavour == "labels":  # few values, both zeros, infinities
            x = rng.choice(LABEL_FLOATS[:draw(st.integers(2, len(LABEL_FLOATS)))],
                           size=shape).astype(dtype)
            x.reshape(-1)[rng.random(x.size) < nan_frac] = np.nan
        else:
            x = random_array(rng, shape, dtype, small=flavour == "small", nan_frac=nan_frac,
                             inf_frac=inf_frac)
    elif flavour == "labels" and kind in "iu" and dtype.itemsize == 8:
        # few distinct labels above 2**53 (not exact in float64)
        base = 2 ** 63 + 2 ** 53 if kind == "u" else -(2 ** 62) - 2 ** 53
        x = (np.array(base, dtype=object) + rng.integers(0, 4, shape)).astype(dtype)
    else:
        x = random_array(rng, shape, dtype, small=flavour in ("small", "labels"),
                         full_range=flavour == "full")
    nan_policy = draw(st.sampled_from(["propagate", "omit", "omit", "raise"]))

    if kind == "f":
        cval = draw(st.sampled_from([0.0, -0.0, 1.0, 1.5, -2.25, 100.0, -np.inf, np.inf,
                                     np.nan]))
        if nan_policy == "raise" and math.isnan(cval):
            cval = 0.0
    elif kind == "b":
        cval = draw(st.sampled_from([0.0, 1.0, 0, 1, False, True]))
    else:
        info = np.iinfo(dtype)
        choices = [0, 1, 3, 0.0, 2.0, int(info.max), int(info.max) - 1]
        if kind == "i":
            choices += [-2, -1.0, int(info.min), int(info.min) + 1]
        if dtype.itemsize == 8:
            choices += [2 ** 53 + 1, (2 ** 63 + 2 ** 53 + 1) if kind == "u"
                        else -(2 ** 62) - 2 ** 53 + 1]
        cval = draw(st.sampled_from(choices))

    nodata = None
    if kind != "b" and x.size and draw(st.integers(0, 3)) == 0:
        flat = x.reshape(-1)
        nodata = flat[draw(st.integers(0, flat.size - 1))].item()
        if kind == "f" and not np.isfinite(nodata):
            nodata = -1024.0  # exact in float16 too
        if draw(st.booleans()):
            # many missing values, windows with only missing values
            flat[rng.random(flat.size) < 0.4] = nodata
        if draw(st.integers(0, 2)) == 0:
            cval = nodata  # padded cval positions are missing too
        if kind == "i" and abs(nodata) < 2 ** 53 and draw(st.booleans()):
            nodata = float(nodata)
    return x, cval, nan_policy, nodata


def run_case(case, method, dtype, layout, data, seed, oracle="ref"):
    """Draws data and options for ``case`` and checks fastpool against the reference."""
    rng = np.random.default_rng(seed)
    x, cval, nan_policy, nodata = draw_data(data.draw, method, dtype, rng, case["shape"])
    param = draw_param(data.draw, method, case["wsize"])
    geo = {k: case[k] for k in GEO_KEYS}
    kw = dict(geo, cval=cval, nan_policy=nan_policy, nodata=nodata)
    xin = relayout(x, layout, rng)
    call_kw = dict(kw, **param)
    call_kw["workers"] = data.draw(st.sampled_from([None, 1, 2]))

    if nan_policy == "raise" and x.dtype.kind == "f" and np.isnan(x).any():
        with pytest.raises(ValueError, match="(?i)nan"):
            opool(method, xin, case["size"], **call_kw)
        return

    if oracle == "ref":
        values, _ = ref_pool(x, method, case["size"], **kw, **param)
    else:
        v = vec_ref(x, method, case["size"], **kw, **param)
        values = np.empty(v.shape, dtype=object)
        values.reshape(-1)[:] = v.reshape(-1).tolist()  # Python scalars, as ref_pool
    exp, out_arr = draw_output(data, method, x.dtype, values, call_kw, weights=(3, 1, 1),
                               int_dtypes=(np.int64, np.int8, np.uint16))

    before = xin.copy()
    res = opool(method, xin, case["size"], **call_kw)
    if out_arr is not None:
        assert res is out_arr
    assert_same(res, exp, method)
    np.testing.assert_array_equal(xin, before)  # the input is never modified


# ---------------------------------------------------------------------------
# (a) randomized agreement with the reference


@given(case=pool_case(), method=st.sampled_from(ORDER), dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(1000))
def test_matches_reference(case, method, dtype, layout, data, seed):
    run_case(case, method, dtype, layout, data, seed)


@st.composite
def fast_path_case(draw):
    """The geometries with dedicated kernels: 2x2 stride 2 (2-D, last two axes of 3-D/4-D,
    channels-last), 3x3 stride 2, 2x2x2, and windows above 32 values (7x7, 5x5x5, 6x6)."""
    kind = draw(st.sampled_from(["2x2", "2x2", "2x2", "3x3s2", "3x3s2", "2x2x2", "big2d",
                                 "big3d"]))
    if kind in ("2x2", "3x3s2"):
        k = 2 if kind == "2x2" else 3
        ndim = draw(st.sampled_from([2, 3, 4]))
        hw = (draw(st.integers(1, 13)), draw(st.integers(1, 19)))
        if ndim == 2:
            shape, axes = hw, draw(st.sampled_from([None, (0, 1), (-2, -1)]))
        elif ndim == 3:
            if draw(st.booleans()):
                shape, axes = (draw(st.integers(1, 3)),) + hw, (1, 2)  # C, H, W
            else:
                shape, axes = hw + (draw(st.integers(1, 4)),), (0, 1)  # H, W, C
        else:
            if draw(st.booleans()):
                shape, axes = (2, draw(st.integers(1, 3))) + hw, (-2, -1)  # N, C, H, W
            else:
                shape, axes = (2,) + hw + (3,), (1, 2)  # N, H, W, C
        size, stride = k, 2
    elif kind == "2x2x2":
        dhw = tuple(draw(st.integers(1, 7)) for _ in range(3))
        if draw(st.booleans()):
            shape, axes = dhw, None
        else:
            shape, axes = (2,) + dhw, (1, 2, 3)
        size, stride = 2, 2
    elif kind == "big2d":
        size = draw(st.sampled_from([7, 6, (7, 5), (6, 7)]))
        shape = (draw(st.integers(7, 13)), draw(st.integers(7, 13)))
        axes = None
        if draw(st.booleans()):
            shape, axes = (2,) + shape, (1, 2)
        stride = draw(st.sampled_from([None, 1, 3, (2, 5)]))
    else:
        size = draw(st.sampled_from([5, (4, 5, 3)]))
        shape = tuple(draw(st.integers(5, 7)) for _ in range(3))
        axes = None
        stride = draw(st.sampled_from([None, 2, (1, 3, 2)]))
    kmin = size if np.ndim(size) == 0 else min(size)
    padding = draw(st.sampled_from([0, 0, kmin // 2]))
    ceil = draw(st.booleans())
    mode = draw(st.sampled_from(MODES + ("ignore", "ignore")))
    try:
        pooled, _, _ = geometry(shape, size, stride, padding, 1, ceil, mode, axes)
    except (ValueError, EmptyWindow):
        assume(False)
    ks = [size] * len(pooled) if np.ndim(size) == 0 else list(size)
    wsize = int(np.prod(ks))
    return dict(shape=shape, axes=axes, size=size, stride=stride, padding=padding,
                dilation=1, ceil_mode=ceil, mode=mode, wsize=wsize)


@given(case=fast_path_case(), method=st.sampled_from(ORDER + ("median", "mode")),
       dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS + ("F", "negative", "transposed")), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(500))
def test_fast_paths_match_reference(case, method, dtype, layout, data, seed):
    run_case(case, method, dtype, layout, data, seed, oracle="vec")


# the vectorised oracle itself is checked against the reference (no fastpool involved)
@given(case=pool_case(), method=st.sampled_from(ORDER), dtype=st.sampled_from(ALL_DTYPES),
       data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_vectorised_oracle_matches_reference(case, method, dtype, data, seed):
    rng = np.random.default_rng(seed)
    x, cval, nan_policy, nodata = draw_data(data.draw, method, dtype, rng, case["shape"])
    if nan_policy == "raise":
        nan_policy = "propagate"
    param = draw_param(data.draw, method, case["wsize"])
    kw = dict({k: case[k] for k in GEO_KEYS}, cval=cval, nan_policy=nan_policy,
              nodata=nodata, **param)
    exp, _ = ref(x, method, case["size"], **kw)
    assert_same(vec_ref(x, method, case["size"], **kw), exp, method)


# ---------------------------------------------------------------------------
# (b) every dtype through the dedicated kernels, deterministic cases


FAST_GEOMETRIES = [
    dict(size=2),
    dict(size=2, ceil_mode=True),
    dict(size=2, padding=1, mode="reflect"),
    dict(size=2, padding=1, ceil_mode=True),  # 'ignore': partial windows of 1 and 2
    dict(size=3, stride=2),
    dict(size=3, stride=2, padding=1),
    dict(size=3, stride=2, padding=1, mode="constant", cval=3),
    dict(size=3, stride=2, ceil_mode=True, mode="wrap", padding=1),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("method,param", [("median", {}), ("rank", {"rank": 0}),
                                          ("rank", {"rank": 1}), ("rank", {"rank": -1}),
                                          ("rank", {"rank": -3}),
                                          ("percentile", {"percentile": 75}),
                                          ("mode", {})])
def test_fast_2d_every_dtype(dtype, method, param):
    rng = np.random.default_rng(zlib.crc32(f"{dtype}{method}{param}".encode()))
    flavour = dict(small=method == "mode", full_range=method != "mode",
                   nan_frac=0.15)
    x = random_array(rng, (3, 11, 13), dtype, **flavour)
    for geo in FAST_GEOMETRIES:
        for axes, xx in (((1, 2), x), ((0, 1), np.ascontiguousarray(np.moveaxis(x, 0, -1)))):
            kw = dict(geo, axes=axes, **param)
            exp = vec_ref(xx, method, **kw)
            assert_same(opool(method, xx, **kw), exp, method)
            if xx.dtype.kind == "f":
                kw_omit = dict(kw, nan_policy="omit")
                assert_same(opool(method, xx, **kw_omit), vec_ref(xx, method, **kw_omit),
                            method)
            # Fortran order and negative strides: same result
            assert_same(opool(method, np.asfortranarray(xx), **kw), exp, method)
            assert_same(opool(method, relayout(xx, "negative"), **kw), exp, method)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "uint64", "int64",
                                   "float16", "float32", "float64", "bool"])
@pytest.mark.parametrize("geo", [dict(size=2), dict(size=2, ceil_mode=True),
                                 dict(size=2, padding=1, mode="nearest", ceil_mode=True),
                                 dict(size=3, stride=2, padding=1)])
def test_fast_3d_mode_and_median(dtype, geo):
    """2x2x2 (and 3x3x3 stride 2) label pooling, with batch axes, larger arrays."""
    rng = np.random.default_rng(len(dtype) * 31 + geo["size"])
    x = random_array(rng, (2, 9, 10, 11), dtype, small=True)
    if x.dtype.kind == "f":
        x.reshape(-1)[rng.random(x.size) < 0.1] = -0.0
        x.reshape(-1)[rng.random(x.size) < 0.05] = np.nan
    for method in ("mode", "median"):
        for policy in ("propagate", "omit"):
            kw = dict(geo, axes=(1, 2, 3), nan_policy=policy)
            exp = vec_ref(x, method, **kw)
            assert_same(opool(method, x, **kw), exp, method)
            assert_same(opool(method, relayout(x, "F"), **kw), exp, method)


@pytest.mark.parametrize("dtype", ["uint8", "int32", "uint64", "float32", "float64"])
@pytest.mark.parametrize("size", [7, (5, 5, 5), (6, 6), 9])
def test_large_windows(dtype, size):
    """Windows of more than 32 values: the general selection path, and mode on them."""
    rng = np.random.default_rng(77)
    shape = (9, 8, 11) if np.ndim(size) and len(size) == 3 else (19, 22)
    x = random_array(rng, shape, dtype, small=True)
    axes = None if np.ndim(size) and len(size) == 3 else (0, 1)
    N = int(np.prod(size if np.ndim(size) else (size, size)))
    for geo in (dict(stride=3), dict(stride=2, padding=2, ceil_mode=True),
                dict(stride=4, padding=2, mode="mirror")):
        kw = dict(geo, axes=axes)
        for method, param in (("median", {}), ("rank", {"rank": N // 3}),
                              ("rank", {"rank": -N // 4}), ("percentile", {"percentile": 90}),
                              ("mode", {})):
            exp = vec_ref(x, method, size, **kw, **param)
            assert_same(opool(method, x, size, **kw, **param), exp, method)
        # many distinct values, NaN omitted
        y = random_array(rng, shape, dtype, full_range=True, nan_frac=0.2)
        for method in ("median", "mode"):
            kw2 = dict(kw, nan_policy="omit")
            assert_same(opool(method, y, size, **kw2), vec_ref(y, method, size, **kw2), method)


# ---------------------------------------------------------------------------
# (c) scipy.ndimage and PyTorch oracles


def _scipy_filter(method, x, footprint, axes, param, mode, cval):
    # scipy's 1-D fast path ignores the footprint's holes (scipy 1.17, dilation with
    # 1-D input): filter a 2-D view instead
    if x.ndim == 1:
        return _scipy_filter(method, x[None], footprint, (1,), param, mode, cval)[0]
    if method == "median":
        return ndi.median_filter(x, footprint=footprint, mode=mode, cval=cval, axes=axes)
    if method == "rank":
        return ndi.rank_filter(x, param["rank"], footprint=footprint, mode=mode, cval=cval,
                               axes=axes)
    return ndi.percentile_filter(x, param["percentile"], footprint=footprint, mode=mode,
                                 cval=cval, axes=axes)


@given(data=st.data(), method=st.sampled_from(["median", "rank", "percentile"]),
       dtype=st.sampled_from(["float64", "float32", "int32", "int64", "uint8", "int16"]),
       scipy_mode=st.sampled_from(["constant", "reflect", "mirror", "nearest", "wrap"]),
       ties=st.booleans(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(300))
def test_matches_scipy_filters(data, method, dtype, scipy_mode, ties, seed):
    """Pooling output i along an axis is the filter at i*stride - padding + K//2
    (K = dilation*(size-1) + 1, origin 0), wherever that position is in the array."""
    draw = data.draw
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, {1: 14, 2: 9, 3: 6}[ndim])) for _ in range(ndim))
    pooled = sorted(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                  unique=True)))
    ks = [draw(st.integers(1, 5)) for _ in pooled]
    ss = [draw(st.integers(1, 3)) for _ in pooled]
    ps = [draw(st.integers(0, k // 2)) for k in ks]
    ds = [draw(st.integers(1, 2)) for _ in pooled]
    for ax, k, s, p, d in zip(pooled, ks, ss, ps, ds):
        assume(output_length(shape[ax], k, s, p, d, False) >= 1)
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=ties)
    N = int(np.prod(ks))
    param = draw_param(draw, method, N)
    cval = draw(st.sampled_from([0, 1, 2, -1])) if dtype != "uint8" else 3
    fp = np.zeros([d * (k - 1) + 1 for k, d in zip(ks, ds)], dtype=bool)
    fp[tuple(slice(None, None, d) for d in ds)] = True
    filt = _scipy_filter(method, x, fp, tuple(pooled), param, scipy_mode, cval)
    got = opool(method, x, ks, stride=ss, padding=ps, dilation=ds, mode=scipy_mode,
                cval=cval, axes=pooled, **param)
    assert got.dtype == x.dtype
    # filter positions of the pooled outputs, and which of them are inside the array
    index, valid = [], np.ones(got.shape, dtype=bool)
    for ax in range(ndim):
        if ax in pooled:
            i = pooled.index(ax)
            c = np.arange(got.shape[ax]) * ss[i] - ps[i] + (ds[i] * (ks[i] - 1) + 1) // 2
        else:
            c = np.arange(shape[ax])
        bshape = [1] * ndim
        bshape[ax] = -1
        c = c.reshape(bshape)
        valid &= (c >= 0) & (c < shape[ax])
        index.append(np.clip(c, 0, shape[ax] - 1))
    expected = filt[tuple(index)]
    np.testing.assert_array_equal(got[valid], expected[valid])


def test_scipy_filters_stride_one_all_positions():
    """Stride 1, odd sizes, padding size//2: every output is a filter output."""
    rng = np.random.default_rng(3)
    for dtype in ("float64", "int32", "uint16"):
        x = random_array(rng, (9, 12), dtype, small=True)
        for mode in ("constant", "reflect", "mirror", "nearest", "wrap"):
            for size in (1, 3, 5, (3, 5), (1, 3)):
                ks = (size, size) if np.ndim(size) == 0 else size
                pad = tuple(k // 2 for k in ks)
                kw = dict(stride=1, padding=pad, mode=mode, cval=2)
                np.testing.assert_array_equal(
                    fastpool.median_pool(x, ks, **kw),
                    ndi.median_filter(x, size=ks, mode=mode, cval=2))
                N = ks[0] * ks[1]
                for r in sorted({0, 1, N - 1, -2, N // 3, -N} & set(range(-N, N))):
                    np.testing.assert_array_equal(
                        fastpool.rank_pool(x, r, ks, **kw),
                        ndi.rank_filter(x, r, size=ks, mode=mode, cval=2))
                for p in (0, 10, 37.5, 50, 80, 99.9, 100):
                    np.testing.assert_array_equal(
                        fastpool.percentile_pool(x, p, ks, **kw),
                        ndi.percentile_filter(x, p, size=ks, mode=mode, cval=2))


def _torch_windows(x, k, s, p, d):
    """(N, C, H, W) tensor -> (N, C, kh*kw, oh, ow) zero-padded windows via unfold."""
    n, c, h, w = x.shape
    cols = F.unfold(x, k, dilation=d, padding=p, stride=s)  # (N, C*kh*kw, L)
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return cols.reshape(n, c, k[0] * k[1], oh, ow)


@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]),
       ties=st.booleans(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_matches_torch_unfold(data, dtype, ties, seed):
    draw = data.draw
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)),
             draw(st.integers(1, 9)))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    for n, kk, ss, pp, dd in zip(shape[2:], k, s, p, d):
        assume(output_length(n, kk, ss, pp, dd, False) >= 1)
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=ties)
    kw = dict(stride=s, padding=p, dilation=d, mode="constant", cval=0, axes=(2, 3))
    win = _torch_windows(torch.from_numpy(x), k, s, p, d)
    N = k[0] * k[1]
    # every rank, through kthvalue (1-based)
    r = draw(st.integers(-N, N - 1))
    tv = torch.kthvalue(win, (r % N) + 1, dim=2).values.numpy()
    np.testing.assert_array_equal(fastpool.rank_pool(x, r, k, **kw), tv)
    if N % 2 == 1:  # torch's (lower) median is ours for odd window volumes
        np.testing.assert_array_equal(fastpool.median_pool(x, k, **kw),
                                      torch.median(win, dim=2).values.numpy())
        # NaN propagates in both
        xn = x.copy()
        xn.reshape(-1)[rng.random(x.size) < 0.1] = np.nan
        winn = _torch_windows(torch.from_numpy(xn), k, s, p, d)
        assert_same(fastpool.median_pool(xn, k, **kw),
                    torch.median(winn, dim=2).values.numpy(), "median")
        # omit: nanmedian where the kept count is odd (torch's lower median again)
        got = fastpool.median_pool(xn, k, nan_policy="omit", **kw)
        exp = torch.nanmedian(winn, dim=2).values.numpy()
        kept = (~torch.isnan(winn)).sum(dim=2).numpy()
        odd = kept % 2 == 1
        np.testing.assert_array_equal(got[odd], exp[odd])
        assert np.isnan(got[kept == 0]).all()


@pytest.mark.parametrize("nd", [1, 3])
def test_matches_torch_tensor_unfold(nd):
    """1-D and 3-D windows (no padding) through Tensor.unfold + median / kthvalue."""
    rng = np.random.default_rng(nd)
    shape = (2, 3, 40) if nd == 1 else (2, 7, 8, 9)
    for dtype in ("float32", "float64"):
        x = random_array(rng, shape, dtype, small=True)
        for k, s in ((3, 1), (3, 2), (5, 3), (1, 1), (2, 2)):
            t = torch.from_numpy(x)
            axes = tuple(range(x.ndim - nd, x.ndim))
            for ax in axes:
                t = t.unfold(ax, k, s)
            t = t.reshape(t.shape[:x.ndim] + (-1,))
            N = k ** nd
            if N % 2 == 1:
                np.testing.assert_array_equal(fastpool.median_pool(x, k, s, axes=axes),
                                              torch.median(t, dim=-1).values.numpy())
            for r in (0, N // 2, N - 1, -1):
                np.testing.assert_array_equal(
                    fastpool.rank_pool(x, r, k, s, axes=axes),
                    torch.kthvalue(t, (r % N) + 1, dim=-1).values.numpy())


@given(data=st.data(), dtype=st.sampled_from(["uint8", "int16", "int32", "uint32", "int64",
                                              "uint64", "float32", "float64"]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(100))
def test_mode_matches_scipy_stats(data, dtype, seed):
    """Non-overlapping windows: mode_pool equals scipy.stats.mode (ties to the smallest)."""
    draw = data.draw
    nd = draw(st.integers(1, 3))
    ks = [draw(st.integers(1, 4)) for _ in range(nd)]
    nb = [draw(st.integers(1, 5)) for _ in range(nd)]
    rng = np.random.default_rng(seed)
    nlabels = draw(st.integers(1, 6))
    shape = tuple(k * b for k, b in zip(ks, nb))
    x = rng.integers(0, nlabels, shape)
    if dtype == "int64" or dtype == "int32":
        x = x - 3
    x = x.astype(dtype)
    got = fastpool.mode_pool(x, ks)
    # blocks -> (b0, b1, ..., window)
    split = x.reshape([v for b, k in zip(nb, ks) for v in (b, k)])
    perm = list(range(0, 2 * nd, 2)) + list(range(1, 2 * nd, 2))
    blocks = split.transpose(perm).reshape(tuple(nb) + (-1,))
    exp = scipy.stats.mode(blocks, axis=-1, keepdims=False).mode
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, exp.astype(x.dtype))


# ---------------------------------------------------------------------------
# (d) identities


@given(case=pool_case(), dtype=st.sampled_from(["int8", "uint16", "int32", "int64",
                                                  "uint64", "float16", "float32",
                                                  "float64", "bool"]),
       nan=st.booleans(), seed=st.integers(0, 2**32 - 1), data=st.data())
@settings(max_examples=examples(150))
def test_identities(case, dtype, nan, seed, data):
    rng = np.random.default_rng(seed)
    x = random_array(rng, case["shape"], dtype, small=bool(seed % 2), full_range=True,
                     nan_frac=0.2 if nan else 0.0)
    geo = {k: case[k] for k in GEO_KEYS}
    geo["cval"] = 1
    geo["nan_policy"] = data.draw(st.sampled_from(["propagate", "omit"]))
    if x.dtype.kind != "b" and data.draw(st.booleans()):
        geo["nodata"] = x.reshape(-1)[0].item() if not (nan and x.dtype.kind == "f") else 0.0
    size, N = case["size"], case["wsize"]
    mn = fastpool.min_pool(x, size, **geo)
    mx = fastpool.max_pool(x, size, **geo)
    for r in (0, -N):
        assert_same(fastpool.rank_pool(x, r, size, **geo), mn, "rank")
    for r in (-1, N - 1):
        assert_same(fastpool.rank_pool(x, r, size, **geo), mx, "rank")
    assert_same(fastpool.percentile_pool(x, 0, size, **geo), mn, "percentile")
    assert_same(fastpool.percentile_pool(x, 100.0, size, **geo), mx, "percentile")
    med = fastpool.median_pool(x, size, **geo)
    assert_same(fastpool.percentile_pool(x, 50, size, **geo), med, "percentile")
    assert_same(fastpool.percentile_pool(x, 50.0, size, **geo), med, "percentile")
    # median is between min and max (NaN-free windows)
    if x.dtype.kind != "b":
        ok = ~(np.isnan(mn) | np.isnan(mx)) if x.dtype.kind == "f" else np.ones(mn.shape, bool)
        assert (mn[ok] <= med[ok]).all() and (med[ok] <= mx[ok]).all()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_size_one_is_identity(dtype):
    rng = np.random.default_rng(6)
    x = random_array(rng, (3, 4, 5), dtype, full_range=True, nan_frac=0.2)
    if x.dtype.kind == "f":
        x.reshape(-1)[:3] = -0.0
    exp = x.astype(default_dtype("median", x.dtype))
    for method, param in (("median", {}), ("rank", {"rank": 0}), ("rank", {"rank": -1}),
                          ("percentile", {"percentile": 30}), ("mode", {})):
        res = opool(method, x, 1, **param)
        assert res.dtype == exp.dtype
        assert_same(res, exp, "mode")  # size 1: bitwise the input, zeros' signs included
        res = opool(method, x, 1, nan_policy="omit", **param)
        assert_same(res, exp, "mode")


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int64", "uint64", "float32",
                                   "float64", "float16"])
@pytest.mark.parametrize("block", [(2, 2), (3, 3), (2, 3), (4, 4), (2, 2, 2), (3, 2, 5)])
def test_mode_of_block_labels_is_the_label(dtype, block):
    rng = np.random.default_rng(len(block) + block[0])
    nb = (5, 4, 3)[:len(block)]
    labels = random_array(rng, nb, dtype, full_range=True)
    if labels.dtype.kind == "f":
        labels.reshape(-1)[: labels.size // 2] = rng.choice([-0.0, 0.0], labels.size // 2)
    if dtype == "uint64":
        labels = (labels | np.uint64(2**63)) ^ np.uint64(1)  # above 2**53, odd and even
    img = labels
    for ax, k in enumerate(block):
        img = np.repeat(img, k, axis=ax)
    res = fastpool.mode_pool(img, block)
    assert_same(res, labels.astype(default_dtype("mode", labels.dtype)), "mode")
    # partial blocks at the edges (ceil_mode, 'ignore') are still constant
    cut = img[tuple(slice(0, n - 1) for n in img.shape)]
    res = fastpool.mode_pool(cut, block, ceil_mode=True)
    assert_same(res, labels.astype(default_dtype("mode", labels.dtype)), "mode")
    # the median of a constant block is the label too
    assert_same(fastpool.median_pool(img, block), labels.astype(res.dtype), "mode")


@pytest.mark.parametrize("method,param", [("median", {}), ("rank", {"rank": 2}),
                                          ("percentile", {"percentile": 40}), ("mode", {})])
def test_batch_axes_are_independent(method, param):
    rng = np.random.default_rng(12)
    x = np.round(rng.standard_normal((6, 3, 7)))
    kw = dict(size=(3, 2), stride=(2, 1), padding=(1, 1), axes=(0, 2), mode="wrap")
    full = opool(method, x, **kw, **param)
    for c in range(3):
        one = opool(method, x[:, c, :], **dict(kw, axes=(0, 1)), **param)
        assert_same(full[:, c, :], one, "mode")


# ---------------------------------------------------------------------------
# (e) semantics by hand


def test_median_is_upper_middle():
    x = np.array([4.0, 1.0, 3.0, 2.0, 10.0, 20.0])
    np.testing.assert_array_equal(fastpool.median_pool(x, 4, 2, ceil_mode=True), [3.0, 10.0])
    np.testing.assert_array_equal(fastpool.median_pool(x, 2), [4.0, 3.0, 20.0])
    np.testing.assert_array_equal(fastpool.median_pool(x, 3), [3.0, 10.0])
    i = np.array([[1, 2], [3, 4]], dtype=np.int32)
    np.testing.assert_array_equal(fastpool.median_pool(i, 2), [[3]])
    assert fastpool.median_pool(i, 2).dtype == np.int32
    # 'ignore' edge windows have fewer values: n counts only those
    y = np.array([5, 1, 4, 2, 3], dtype=np.int16)
    # windows (size 3, stride 2, padding 1): [1 value pad, 5, 1], [1, 4, 2], [2, 3, pad]
    np.testing.assert_array_equal(fastpool.median_pool(y, 3, 2, padding=1), [5, 2, 3])
    np.testing.assert_array_equal(
        fastpool.median_pool(y, 3, 2, padding=1, mode="constant", cval=0), [1, 2, 2])


def test_rank_negative_and_clamped():
    y = np.array([5, 1, 4, 2, 3], dtype=np.int64)
    # windows [5, 1] (ignore), [1, 4, 2], [2, 3]; rank 2 clamps to n - 1 for n = 2
    np.testing.assert_array_equal(fastpool.rank_pool(y, 2, 3, 2, padding=1), [5, 4, 3])
    np.testing.assert_array_equal(fastpool.rank_pool(y, -3, 3, 2, padding=1), [1, 1, 2])
    np.testing.assert_array_equal(fastpool.rank_pool(y, -2, 3, 2, padding=1), [1, 2, 2])
    np.testing.assert_array_equal(fastpool.rank_pool(y, 1, 3, 2, padding=1), [5, 2, 3])
    # missing values shrink n the same way
    z = np.array([7.0, np.nan, 1.0, 9.0, np.nan, np.nan])
    np.testing.assert_array_equal(fastpool.rank_pool(z, -1, 3, nan_policy="omit"), [7.0, 9.0])
    np.testing.assert_array_equal(fastpool.rank_pool(z, 2, 3, nan_policy="omit"), [7.0, 9.0])
    np.testing.assert_array_equal(fastpool.rank_pool(z, 1, 3, nan_policy="omit"), [7.0, 9.0])
    np.testing.assert_array_equal(fastpool.rank_pool(z, 0, 3, nan_policy="omit"), [1.0, 9.0])
    assert np.isnan(fastpool.rank_pool(z, 0, 3)).all()


def test_percentile_rank_rule():
    x = np.arange(10, dtype=np.float64)[::-1].copy()  # one window of 10 values
    for p in (0, 5, 9.99, 10, 25, 33.3, 50, 66.7, 89.9, 90, 99.9, 100):
        r = 9 if p == 100 else int(10 * p / 100)
        assert fastpool.percentile_pool(x, p, 10)[0] == r, p
    # a float64 rounding case: int(n * p / 100) as computed in float64
    n = 7
    for p in (100 / 7 * 3, 42.857142857142854, 57.14285714285714, 28.57142857142857):
        x = np.arange(n, dtype=np.float64)
        assert fastpool.percentile_pool(x, p, n)[0] == min(int(n * p / 100), n - 1), p
    # edge windows under 'ignore' use their own n
    y = np.array([3, 1, 2, 9, 8], dtype=np.uint8)
    np.testing.assert_array_equal(fastpool.percentile_pool(y, 60, 3, ceil_mode=True), [2, 9])


def test_mode_by_hand():
    x = np.array([1, 2, 2, 1, 3, 3, 4, 4, 4, 9, 9, 8], dtype=np.int32)
    np.testing.assert_array_equal(fastpool.mode_pool(x, 4), [1, 3, 9])  # ties: smallest
    np.testing.assert_array_equal(fastpool.mode_pool(x, 3), [2, 3, 4, 9])
    f = np.array([0.0, -0.0, 0.0, -0.0, -0.0, 0.0, 0.0, 5.0, np.nan, np.nan, 1.0, np.nan])
    res = fastpool.mode_pool(f, 2)
    # [0, -0] tie: -0.0 is the smaller; [0, -0]; [-0, 0]; [0, 5]: 0.0; NaN windows
    assert_same(res[:4], np.array([-0.0, -0.0, -0.0, 0.0]), "mode")
    assert np.isnan(res[4:]).all()
    res = fastpool.mode_pool(f, 3)
    assert_same(res[:2], np.array([0.0, -0.0]), "mode")
    assert np.isnan(res[2:]).all()
    res = fastpool.mode_pool(f, 3, nan_policy="omit")
    assert_same(res, np.array([0.0, -0.0, 0.0, 1.0]), "mode")
    # float16 -> float32, -0.0 kept
    h = np.array([-0.0, -0.0, 0.0, 1.0], dtype=np.float16)
    res = fastpool.mode_pool(h, 4)
    assert res.dtype == np.float32 and np.signbit(res[0]) and res[0] == 0
    # bool
    b = np.array([True, False, True, False, False, True])
    np.testing.assert_array_equal(fastpool.mode_pool(b, 2), [False, False, False])
    np.testing.assert_array_equal(fastpool.mode_pool(b, 3), [True, False])
    assert fastpool.mode_pool(b, 3).dtype == np.bool_


def test_nodata_and_all_missing():
    x = np.array([[0, 5, 0, 0], [7, 5, 0, 0]], dtype=np.int16)
    np.testing.assert_array_equal(fastpool.median_pool(x, 2, nodata=0), [[5, 0]])
    np.testing.assert_array_equal(fastpool.mode_pool(x, 2, nodata=0), [[5, 0]])
    np.testing.assert_array_equal(fastpool.rank_pool(x, 0, 2, nodata=0), [[5, 0]])
    np.testing.assert_array_equal(fastpool.rank_pool(x, -1, 2, nodata=0), [[7, 0]])
    np.testing.assert_array_equal(fastpool.percentile_pool(x, 100, 2, nodata=0.0), [[7, 0]])
    # NaN and nodata under 'omit': a window of only missing values gives nodata
    r = np.array([np.nan, -9999.0, np.nan, np.nan, 2.0, -9999.0])
    for f in (fastpool.median_pool, fastpool.mode_pool):
        np.testing.assert_array_equal(f(r, 2, nan_policy="omit", nodata=-9999.0),
                                      [-9999.0, -9999.0, 2.0])
        got = f(r, 2, nodata=-9999.0)  # propagate: a kept NaN wins
        assert np.isnan(got[:2]).all() and got[2] == 2.0
    # no nodata: the all-NaN window gives NaN, -9999 is an ordinary value
    assert_same(fastpool.median_pool(r, 2, nan_policy="omit"), np.array([-9999.0, np.nan, 2.0]),
                "median")
    assert_same(fastpool.mode_pool(r, 2, nan_policy="omit"),
                np.array([-9999.0, np.nan, -9999.0]), "mode")
    # uint64 nodata above 2**53
    nd = 2**64 - 1
    u = np.array([nd, 2**60 + 1, nd, nd, 2**60 + 3, 2**60 + 3], dtype=np.uint64)
    np.testing.assert_array_equal(fastpool.median_pool(u, 3, nodata=nd),
                                  np.array([2**60 + 1, 2**60 + 3], np.uint64))
    np.testing.assert_array_equal(fastpool.mode_pool(u, 2, nodata=nd),
                                  np.array([2**60 + 1, nd, 2**60 + 3], np.uint64))


def test_cval_rounded_into_the_dtype():
    """cval is converted as for max_pool: integers rounded half to even, saturated."""
    x = np.array([2, 5, 7, 8], dtype=np.uint8)
    # size 3, stride 2, padding 1: windows [cval, x0, x1] and [x1, x2, x3]
    kw = dict(stride=2, padding=1, mode="constant")
    np.testing.assert_array_equal(fastpool.mode_pool(x, 3, cval=2.4, **kw), [2, 5])
    np.testing.assert_array_equal(fastpool.mode_pool(x, 3, cval=300, **kw), [2, 5])
    np.testing.assert_array_equal(fastpool.median_pool(x, 3, cval=300, **kw), [5, 7])
    np.testing.assert_array_equal(fastpool.median_pool(x, 3, cval=-5, **kw), [2, 7])
    y = np.array([5, 255], dtype=np.uint8)
    np.testing.assert_array_equal(fastpool.mode_pool(y, 3, 1, padding=1, mode="constant",
                                                     cval=1e9), [255, 255])
    x3 = np.array([3, 5, 7, 8], dtype=np.uint8)
    np.testing.assert_array_equal(fastpool.mode_pool(x3, 3, cval=2.5, **kw), [2, 5])  # not 3
    np.testing.assert_array_equal(fastpool.mode_pool(x3, 3, cval=1.5, **kw), [2, 5])  # not 1
    x4 = np.array([4, 5, 7, 8], dtype=np.int8)
    np.testing.assert_array_equal(fastpool.mode_pool(x4, 3, cval=3.5, **kw), [4, 5])  # not 3
    np.testing.assert_array_equal(fastpool.mode_pool(x4, 3, cval=-3.5, **kw), [-4, 5])
    np.testing.assert_array_equal(fastpool.mode_pool(x4, 3, cval=-1000, **kw), [-128, 5])


def test_uint64_above_2_53_exact():
    b = 2**53
    x = np.array([b + 1, b + 3, b + 2, b + 1, b, b + 1, b + 5, b + 5, b + 4], dtype=np.uint64)
    np.testing.assert_array_equal(fastpool.median_pool(x, 3),
                                  np.array([b + 2, b + 1, b + 5], np.uint64))
    np.testing.assert_array_equal(fastpool.mode_pool(x, 3),
                                  np.array([b + 1, b + 1, b + 5], np.uint64))
    np.testing.assert_array_equal(fastpool.rank_pool(x, -1, 3),
                                  np.array([b + 3, b + 1, b + 5], np.uint64))
    top = 2**64 - 1
    y = np.array([[top, top - 1], [top - 2, top - 1]], dtype=np.uint64)
    np.testing.assert_array_equal(fastpool.median_pool(y, 2), np.array([[top - 1]], np.uint64))
    np.testing.assert_array_equal(fastpool.mode_pool(y, 2), np.array([[top - 1]], np.uint64))
    np.testing.assert_array_equal(fastpool.rank_pool(y, 0, 2), np.array([[top - 2]], np.uint64))
    # 2x2 labels, many windows (the dedicated kernels), against exact Python
    rng = np.random.default_rng(1)
    lab = (np.uint64(2**63 + 2**53) + rng.integers(0, 3, (32, 34)).astype(np.uint64))
    got_mode = fastpool.mode_pool(lab, 2)
    got_med = fastpool.median_pool(lab, 2)
    for i in range(16):
        for j in range(17):
            win = [int(v) for v in lab[2 * i:2 * i + 2, 2 * j:2 * j + 2].ravel()]
            counts = {v: win.count(v) for v in win}
            best = max(counts.values())
            assert int(got_mode[i, j]) == min(v for v in counts if counts[v] == best)
            assert int(got_med[i, j]) == sorted(win)[2]
    s = np.array([-(2**62) - 1, -(2**62) - 3, -(2**62) - 1, 2**62 + 1], dtype=np.int64)
    np.testing.assert_array_equal(fastpool.median_pool(s, 4), [-(2**62) - 1])
    np.testing.assert_array_equal(fastpool.mode_pool(s, 4), [-(2**62) - 1])


# ---------------------------------------------------------------------------
# (f) threads, input not modified, output=


def test_workers_bitwise_identical_and_right():
    rng = np.random.default_rng(2024)
    f64 = rng.standard_normal((600, 700))
    f64[rng.random(f64.shape) < 0.01] = np.nan
    f64[rng.random(f64.shape) < 0.01] = -0.0
    labels = rng.integers(0, 5, (600, 700)).astype(np.uint16)
    f32 = np.round(rng.standard_normal((3, 200, 180)).astype(np.float32))
    cases = [
        ("median", f64, 2, {}, {}),
        ("median", f64, 3, dict(stride=2, padding=1, nan_policy="omit"), {}),
        ("rank", f64, 2, dict(nan_policy="omit", ceil_mode=True), {"rank": 1}),
        ("percentile", f64, (3, 5), dict(stride=(2, 3), mode="reflect", padding=1),
         {"percentile": 30}),
        ("mode", labels, 2, {}, {}),
        ("mode", labels, 3, dict(stride=2, padding=1, mode="nearest"), {}),
        ("median", labels, 7, dict(stride=5), {}),
        ("mode", f32, 2, dict(axes=(1, 2), ceil_mode=True), {}),
        ("median", f32, 2, dict(axes=(0, 1, 2), ceil_mode=True), {}),
    ]
    for method, x, size, kw, param in cases:
        base = opool(method, x, size, workers=1, **kw, **param)
        assert_same(base, vec_ref(x, method, size, **kw, **param), method)
        for w in (2, -1, None, 2):
            got = opool(method, x, size, workers=w, **kw, **param)
            assert got.dtype == base.dtype and got.tobytes() == base.tobytes(), (method, w)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint64", "float16"])
def test_input_not_modified(dtype):
    rng = np.random.default_rng(13)
    x = random_array(rng, (5, 6, 7), dtype, small=True,
                     nan_frac=0.2 if dtype[0] == "f" else 0.0)
    for layout in ("C", "F", "negative", "sliced"):
        xin = relayout(x, layout, rng)
        before = xin.copy()
        for method, param in (("median", {}), ("rank", {"rank": -2}),
                              ("percentile", {"percentile": 20}), ("mode", {})):
            for kw in (dict(), dict(padding=1, mode="reflect", stride=1),
                       dict(nan_policy="omit", mode="constant", cval=5, padding=1),
                       dict(nodata=0, axes=(0, 2)), dict(size=2)):
                kw = dict(kw)
                size = kw.pop("size", 3)
                r = opool(method, xin, size, **kw, **param)
                r[...] = 0  # the result does not alias the input either
                np.testing.assert_array_equal(xin, before)
                assert_same(relayout(xin, "C"), before, "mode")


_LAYOUT_DTYPES = ["bool", "int8", "uint16", "int64", "uint64", "float16", "float32",
                  "float64"]


@pytest.mark.parametrize("layout,dtype", [
    (layout, dtype) for layout in LAYOUTS + ("broadcast", "channels_last", "list")
    for dtype in _LAYOUT_DTYPES
    # a Python list round-trips only bool, int64 and float64
    if layout != "list" or dtype in ("bool", "int64", "float64")])
def test_layouts_identical(layout, dtype):
    """Every memory layout gives the C-contiguous result, which is the oracle's."""
    rng = np.random.default_rng(11)
    x = random_array(rng, (4, 9, 10), dtype, small=True)
    if x.dtype.kind == "f":
        x.reshape(-1)[rng.random(x.size) < 0.1] = np.nan
    if layout == "broadcast":  # zero strides
        xin = np.broadcast_to(x[:, :1, :], x.shape)
        x = np.ascontiguousarray(xin)
    elif layout == "channels_last":  # a C array seen through a transposed view
        xin = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0)
    elif layout == "list":
        xin = x.tolist()
    else:
        xin = relayout(x, layout, rng)
    for kw in (dict(size=2, axes=(1, 2)), dict(size=2), dict(size=3, stride=2, axes=(1, 2)),
               dict(size=3, stride=2, padding=1, mode="mirror", axes=(1, 2)),
               dict(size=(2, 3), dilation=(2, 1), axes=(-1, 0), ceil_mode=True),
               dict(size=2, axes=(0, 2), nan_policy="omit"), dict(size=7, stride=3, axes=(1, 2)),
               dict(size=(2, 2, 2))):
        for method, param in (("median", {}), ("rank", {"rank": 1}), ("mode", {})):
            exp = vec_ref(x, method, **kw, **param)
            assert_same(opool(method, xin, **kw, **param), exp, method)


def test_output_array_and_dtype():
    rng = np.random.default_rng(2)
    x = rng.integers(-50, 50, (6, 8)).astype(np.int16)
    exp = vec_ref(x, "median", 2)
    out = np.empty((3, 4), np.float64)
    assert fastpool.median_pool(x, 2, output=out) is out
    np.testing.assert_array_equal(out, exp.astype(np.float64))
    res = fastpool.mode_pool(x, 2, output=np.int8)
    assert res.dtype == np.int8
    np.testing.assert_array_equal(res, vec_ref(x, "mode", 2).astype(np.int8))
    # saturating into a narrow dtype
    big = np.array([[300, 301], [302, -400]], dtype=np.int32)
    np.testing.assert_array_equal(fastpool.median_pool(big, 2, output=np.uint8), [[255]])
    np.testing.assert_array_equal(fastpool.rank_pool(big, 0, 2, output=np.uint8), [[0]])
    # a non-contiguous output view: only the view is written
    buf = np.full((3, 9), -1.0)
    view = buf[:, ::2][:, :4]
    assert fastpool.rank_pool(x, -1, 2, output=view) is view
    np.testing.assert_array_equal(buf[:, 0:8:2], fastpool.max_pool(x, 2))
    assert (buf[:, 1::2] == -1.0).all()
    with pytest.raises(ValueError):
        fastpool.median_pool(x, 2, output=np.empty((2, 4)))


# ---------------------------------------------------------------------------
# (g) errors


X = np.arange(48, dtype=np.float64).reshape(6, 8)


@pytest.mark.parametrize("rank", [True, False, 1.0, 2.5, "1", None, [1], np.nan])
def test_rank_type_error(rank):
    with pytest.raises(TypeError, match="rank"):
        fastpool.rank_pool(X, rank, 2)


@pytest.mark.parametrize("rank,size", [(4, 2), (-5, 2), (6, (2, 3)), (-7, (2, 3)),
                                       (100, 3), (9, 3), (-10, 3)])
def test_rank_out_of_range(rank, size):
    with pytest.raises(ValueError, match="rank"):
        fastpool.rank_pool(X, rank, size)


def test_rank_limits_accepted():
    # -N <= rank < N, N the full window volume (not the shrunken edge windows)
    for rank, size in ((3, 2), (-4, 2), (5, (2, 3)), (-6, (2, 3))):
        fastpool.rank_pool(X, rank, size, padding=1, ceil_mode=True)
    # dilation does not change N
    fastpool.rank_pool(X, 3, 2, dilation=2)
    with pytest.raises(ValueError, match="rank"):
        fastpool.rank_pool(X, 4, 2, dilation=2)


@pytest.mark.parametrize("p", [-100.1, 100.1, -101, 101, np.nan, np.inf, -np.inf, 1e9])
def test_percentile_value_error(p):
    with pytest.raises(ValueError, match="percentile"):
        fastpool.percentile_pool(X, p, 2)


@pytest.mark.parametrize("p", ["50", None, [50], object()])
def test_percentile_type_error(p):
    with pytest.raises(TypeError, match="percentile"):
        fastpool.percentile_pool(X, p, 2)


def test_negative_percentile_counts_from_the_top():
    # scipy.ndimage.percentile_filter: percentile -20 is 80, -100 is 0.
    for p in (-20, -0.5, -100, -75.25):
        np.testing.assert_array_equal(fastpool.percentile_pool(X, p, 3),
                                      fastpool.percentile_pool(X, p + 100, 3))
        np.testing.assert_array_equal(
            fastpool.percentile_pool(X, p, 3, stride=1, mode="reflect", padding=1),
            ndi.percentile_filter(X, p, size=3, mode="reflect"))


def test_percentile_numeric_types_accepted():
    exp = fastpool.percentile_pool(X, 50, 2)
    for p in (50.0, np.float64(50), np.float32(50), np.int64(50)):
        np.testing.assert_array_equal(fastpool.percentile_pool(X, p, 2), exp)


@pytest.mark.parametrize("name", ["median_pool", "rank_pool", "percentile_pool", "mode_pool"])
def test_bad_input_dtypes(name):
    f = getattr(fastpool, name)
    extra = {"rank_pool": (0,), "percentile_pool": (50,)}.get(name, ())
    for bad in (X.astype(np.complex128), X.astype(np.complex64), X.astype(object),
                X.astype(str)):
        with pytest.raises(TypeError, match=str(bad.dtype) if bad.dtype.kind == "c"
                           else None):
            f(bad, *extra, 2)


@pytest.mark.parametrize("name", ["median_pool", "rank_pool", "percentile_pool", "mode_pool"])
def test_nan_policy_raise_and_bad_geometry(name):
    f = getattr(fastpool, name)
    extra = {"rank_pool": (0,), "percentile_pool": (50,)}.get(name, ())
    y = X.copy()
    y[2, 3] = np.nan
    with pytest.raises(ValueError, match="(?i)nan"):
        f(y, *extra, 2, nan_policy="raise")
    f(X, *extra, 2, nan_policy="raise")  # no NaN: fine
    with pytest.raises(ValueError):
        f(X, *extra, 2, nan_policy="bogus")
    with pytest.raises(ValueError, match="mode"):
        f(X, *extra, 2, mode="bogus")
    with pytest.raises(ValueError, match="axes"):
        f(X, *extra, 2, axes=(0, 0))
    with pytest.raises(ValueError, match="padding"):
        f(X, *extra, 2, padding=2)
    with pytest.raises(ValueError):
        f(X, *extra, 9)  # zero-length output


# --------------------------------------------------------------------------- regressions

def test_register_paths_follow_the_last_axis_stride():
    # The register loops once read a window's second column at +1 element whatever
    # the stride: Fortran order, reversed and sliced views gave other windows.
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(fastpool.rank_pool(np.asfortranarray(x), 3, 2),
                                  [[5.0, 7.0]])
    np.testing.assert_array_equal(fastpool.rank_pool(x[:, ::-1], -1, 2), [[7.0, 5.0]])
    wide = np.zeros((3, 8))
    wide[:, ::2] = x
    np.testing.assert_array_equal(fastpool.median_pool(wide[:, ::2], 2), [[4.0, 6.0]])
    labels = np.arange(16, dtype=np.uint32).reshape(2, 2, 4)
    np.testing.assert_array_equal(fastpool.mode_pool(labels[:, :, ::-1], 2),
                                  [[[2, 0]]])


def test_bool_cval_saturates_to_true():
    b = np.array([False, True, False, True])
    kw = dict(size=3, stride=1, padding=1, mode="constant", cval=3)
    np.testing.assert_array_equal(fastpool.mode_pool(b, **kw), [True, False, True, True])
    for result in (fastpool.max_pool(b, **kw), fastpool.rank_pool(b, -1, **kw)):
        assert result.dtype == np.bool_
        np.testing.assert_array_equal(result.view(np.uint8), [1, 1, 1, 1])


def test_mode_nodata_zero_matches_both_zeros():
    # Values compare by bits in mode_pool, but nodata as in every method: -0.0 == 0.
    z = np.array([0.0, -0.0, 1.0, 0.0])
    np.testing.assert_array_equal(fastpool.mode_pool(z, 4, nodata=0.0), [1.0])
    np.testing.assert_array_equal(fastpool.median_pool(z, 4, nodata=0.0), [1.0])


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int64", "uint64",
                                   "float32", "float64"])
@pytest.mark.parametrize("shape,size", [((2, 9, 70), (2, 2)), ((6, 8, 70), (2, 2, 2))])
def test_sparse_mode_register_paths(dtype, shape, size):
    # Label pyramids: mode with a background nodata runs the register paths; every
    # window kind (all background, background majority, ties) against the oracle.
    rng = np.random.default_rng(zlib.crc32(f"{dtype}{shape}".encode()))
    x = rng.choice(np.array([0, 0, 0, 3, 5, 7], dtype=dtype), shape)
    x[..., :8] = 0  # windows of only background
    axes = tuple(range(-len(size), 0))
    for nodata in (0, 5):
        kw = dict(nodata=nodata, axes=axes)
        assert_same(fastpool.mode_pool(x, size, **kw), vec_ref(x, "mode", size, **kw),
                    "mode")
    if x.dtype.kind == "f":
        x.reshape(-1)[::17] = -0.0  # both zeros are the background
        x.reshape(-1)[::23] = np.nan
        for policy in ("propagate", "omit"):
            kw = dict(nodata=0.0, axes=axes, nan_policy=policy)
            assert_same(fastpool.mode_pool(x, size, **kw),
                        vec_ref(x, "mode", size, **kw), "mode")


@given(dtype=st.sampled_from(["uint8", "int8", "uint16", "int16", "bool", "uint32",
                              "int64", "float32", "float64"]),
       size=st.tuples(st.integers(5, 11), st.integers(14, 19)),
       stride=st.integers(1, 9), padding=st.integers(0, 2),
       mode=st.sampled_from(["ignore", "constant", "wrap"]), ceil_mode=st.booleans(),
       nodata=st.sampled_from([None, 0, 3]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(40), deadline=None)
def test_mode_of_large_small_int_windows(dtype, size, stride, padding, mode, ceil_mode,
                                         nodata, seed):
    """Windows of more than 64 samples (mode by counting: a bin per value for 8-
    and 16-bit input, a hash table for wider and float keys; edge and interior
    windows): the reference's mode, ties to the smallest, floats by their bits."""
    rng = np.random.default_rng(seed)
    span = 2 if dtype == "bool" else 4
    signed = dtype.startswith(("int", "float"))
    x = rng.integers(-span if signed else 0, span, (23, 41))
    if dtype in ("uint16", "int16", "uint32", "int64"):
        x = x * 1000 + (1 if dtype.startswith("u") else -17)   # far apart
    x = x.astype(dtype)
    if dtype.startswith("float"):
        x = x * 0.5
        x[(x == 0) & (rng.random(x.shape) < 0.5)] = -0.0   # a value of its own
    kw = dict(stride=stride, padding=padding, mode=mode, ceil_mode=ceil_mode, cval=1,
              nodata=None if dtype == "bool" else nodata)
    got = fastpool.mode_pool(x, size, **kw)
    expected, _ = ref_pool(x, "mode", size, **kw)
    np.testing.assert_array_equal(got, cast_result(expected, got.dtype))
