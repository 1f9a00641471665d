"""Correctness of max/min/avg/sum pooling and max_unpool.

Oracles: PyTorch (where it has the operation), scipy.ndimage filters (extension
modes), and the slow independent reference in tests/reference.py (everything).
"""

import math
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool
from strategies import MEDIUM, draw_output, pool_case
from reference import (
    ALL_DTYPES,
    LAYOUTS,
    MODES,
    default_dtype,
    examples,
    has_empty_window,
    output_length,
    random_array,
    ref,
    ref_pool,
    ref_unpool,
    relayout,
)

METHODS = ("max", "min", "avg", "sum")


def pool(method, x, size, **kw):
    return getattr(fastpool, f"{method}_pool")(x, size, **kw)


def out_dtype_of(res):
    return res.dtype.newbyteorder("=")


def float_tolerances(out_dtype, x, wsize, cval=0.0):
    """(rtol, atol) for avg/sum: the reference is exact (rounded once or twice), the
    library accumulates in float64 and rounds once at the end."""
    finite = np.asarray(x, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    cval = float(cval)
    scale = max(scale, abs(cval) if math.isfinite(cval) else 0.0, 1.0)
    if np.dtype(out_dtype).itemsize < 8:
        return 1e-6, 1e-12 * scale * wsize
    return 1e-12, 1e-15 * scale * wsize * wsize


def assert_result(res, exp, method, x, wsize, cval=0.0):
    """``res`` (library) against ``exp`` (reference already cast to the output dtype)."""
    assert isinstance(res, np.ndarray)
    assert res.shape == exp.shape, (res.shape, exp.shape)
    assert out_dtype_of(res) == exp.dtype, (res.dtype, exp.dtype)
    if exp.dtype.kind == "f" and method in ("avg", "sum"):
        rtol, atol = float_tolerances(exp.dtype, x, wsize, cval)
        np.testing.assert_allclose(res, exp, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(res, exp)


def assert_indices(idx, exp_idx, pooled_size):
    assert isinstance(idx, np.ndarray)
    assert idx.dtype == np.int64
    assert idx.shape == exp_idx.shape
    assert ((idx >= 0) & (idx < pooled_size)).all(), "index out of range"
    defined = exp_idx >= 0  # -1 marks windows holding only missing elements
    np.testing.assert_array_equal(idx[defined], exp_idx[defined])


# ---------------------------------------------------------------------------
# (a) PyTorch oracle

TORCH_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
TORCH_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
TORCH_UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}


@st.composite
def torch_geometry(draw, dilation=True):
    nd = draw(st.integers(1, 3))
    hi = {1: 12, 2: 8, 3: 5}[nd]
    spatial = tuple(draw(st.integers(1, hi)) for _ in range(nd))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, kk // 2)) for kk in k]
    d = [draw(st.integers(1, 3)) if dilation else 1 for _ in range(nd)]
    ceil = draw(st.booleans())
    lens = [output_length(n, kk, ss, pp, dd, ceil) for n, kk, ss, pp, dd in zip(spatial, k, s, p, d)]
    assume(min(lens) >= 1)
    axes = tuple(range(2, 2 + nd))
    # windows made of padding only: undefined in the contract (PyTorch gives -inf)
    assume(not has_empty_window(shape, k, s, p, d, ceil, "ignore", axes))
    return nd, shape, k, s, p, d, ceil


@given(geo=torch_geometry(), dtype=st.sampled_from(["float32", "float64"]),
       ties=st.booleans(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(300))
def test_max_pool_matches_torch(geo, dtype, ties, seed):
    nd, shape, k, s, p, d, ceil = geo
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=ties)
    tv, ti = TORCH_MAX[nd](torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
    axes = tuple(range(2, 2 + nd))
    v, i = fastpool.max_pool(x, k, s, padding=p, dilation=d, ceil_mode=ceil, axes=axes,
                             return_indices=True)
    assert v.dtype == x.dtype
    np.testing.assert_array_equal(v, tv.numpy())
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i, ti.numpy())
    # axes=None would pool N and C too; the last-axes form with negative axes
    v2 = fastpool.max_pool(x, k, s, padding=p, dilation=d, ceil_mode=ceil,
                           axes=tuple(range(-nd, 0)))
    np.testing.assert_array_equal(v2, tv.numpy())
    # min pooling is max pooling of the negation
    tv, ti = TORCH_MAX[nd](torch.from_numpy(-x), k, s, p, d, ceil, return_indices=True)
    v, i = fastpool.min_pool(x, k, s, padding=p, dilation=d, ceil_mode=ceil, axes=axes,
                             return_indices=True)
    np.testing.assert_array_equal(v, -tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


@given(geo=torch_geometry(dilation=False), dtype=st.sampled_from(["float32", "float64"]),
       count_include_pad=st.booleans(), divisor=st.none() | st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(300))
def test_avg_pool_matches_torch(geo, dtype, count_include_pad, divisor, seed):
    nd, shape, k, s, p, _, ceil = geo
    if nd == 1:
        divisor = None  # avg_pool1d has no divisor_override
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    kw = {} if divisor is None else {"divisor_override": divisor}
    try:
        tv = TORCH_AVG[nd](torch.from_numpy(x), k, s, p, ceil, count_include_pad, **kw)
    except (RuntimeError, ValueError):  # PyTorch refuses some inputs the contract allows
        assume(False)
    mode = "constant" if count_include_pad else "ignore"
    v = fastpool.avg_pool(x, k, s, padding=p, ceil_mode=ceil, mode=mode, cval=0,
                          divisor=divisor, axes=tuple(range(2, 2 + nd)))
    assert v.dtype == x.dtype
    # PyTorch accumulates float32 in float32; fastpool is more accurate
    tol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(v, tv.numpy(), rtol=tol, atol=tol)


@given(geo=torch_geometry(), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_max_unpool_matches_torch(geo, dtype, seed):
    nd, shape, k, s, p, d, ceil = geo
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    axes = tuple(range(2, 2 + nd))
    v, i = fastpool.max_pool(x, k, s, padding=p, dilation=d, ceil_mode=ceil, axes=axes,
                             return_indices=True)
    tv, ti = TORCH_MAX[nd](torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
    try:
        expected = TORCH_UNPOOL[nd](tv, ti, k, s, p, output_size=shape[2:]).numpy()
    except (RuntimeError, ValueError):  # PyTorch rejects sizes it cannot infer from k, s, p
        expected = ref_unpool(tv.numpy(), ti.numpy(), x.shape, axes=axes)
    u = fastpool.max_unpool(v, i, x.shape, axes=axes)
    assert u.shape == x.shape and u.dtype == x.dtype
    np.testing.assert_array_equal(u, expected)
    # negative axes, and the default axes=None meaning all axes
    np.testing.assert_array_equal(fastpool.max_unpool(v, i, x.shape, axes=tuple(range(-nd, 0))),
                                  expected)


def test_max_unpool_all_axes_default():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 8))
    v, i = fastpool.max_pool(x, (2, 4), return_indices=True)
    u = fastpool.max_unpool(v, i, x.shape)
    np.testing.assert_array_equal(u, ref_unpool(v, i, x.shape))
    # every maximum is kept, everything else is zero
    assert np.count_nonzero(u) == v.size
    np.testing.assert_array_equal(np.sort(u[u != 0]), np.sort(v.ravel()))


@pytest.mark.parametrize("axes", [(0,), (1,), (0, 2), (2, 0), (-1, -3), (1, 2)])
@pytest.mark.parametrize("dtype", ["float64", "int16", "uint64", "bool"])
def test_max_unpool_reference_any_axes(axes, dtype):
    rng = np.random.default_rng(len(axes) * 7 + len(dtype))
    x = random_array(rng, (5, 6, 7), dtype, full_range=True)
    v, i = fastpool.max_pool(x, 2, 1 if dtype == "bool" else 2, axes=axes, return_indices=True)
    u = fastpool.max_unpool(v, i, x.shape, axes=axes)
    assert u.dtype == x.dtype
    np.testing.assert_array_equal(u, ref_unpool(v, i, x.shape, axes=axes))


# ---------------------------------------------------------------------------
# (b) reference comparisons




def draw_options(draw, method, dtype, rng, shape):
    """Data, cval, nan_policy, nodata, divisor for one case."""
    dtype = np.dtype(dtype)
    kind = dtype.kind
    flavour = draw(st.sampled_from(["small", "normal", "full"]))
    if kind == "f":
        nan_frac = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
        inf_frac = draw(st.sampled_from([0.0, 0.0, 0.05]))
        x = random_array(rng, shape, dtype, small=flavour == "small", nan_frac=nan_frac,
                         inf_frac=inf_frac)
    else:
        full = flavour == "full" and method in ("max", "min")  # avg/sum: see test_int64_*
        x = random_array(rng, shape, dtype, small=flavour == "small", full_range=full)
    nan_policy = draw(st.sampled_from(["propagate", "omit", "raise"]))

    # cval: something representable in the input's dtype
    if kind == "f":
        cval = draw(st.sampled_from([0.0, 1.5, -2.25, 100.0, -np.inf, np.nan]))
        if nan_policy == "raise" and math.isnan(cval):
            cval = 0.0
    elif kind == "b":
        cval = draw(st.sampled_from([0.0, 1.0, 0, 1, False, True]))
    else:
        info = np.iinfo(dtype)
        # 64-bit extremes as cval: see test_cval_64bit_extremes
        big = dtype.itemsize == 8
        choices = [0, 1, 3, 2**40 if big else int(info.max), 0.0, 2.0]
        if kind == "i":
            choices += [-2, -(2**40) if big else int(info.min), -1.0]
        cval = draw(st.sampled_from(choices))

    nodata = None
    if kind != "b" and draw(st.integers(0, 3)) == 0:
        if kind == "f":
            x[np.isnan(x)] = 0  # NaN and nodata together: see test_nodata_*
        flat = x.reshape(-1)
        nodata = flat[draw(st.integers(0, flat.size - 1))].item()
        if kind == "f" and not np.isfinite(nodata):
            nodata = -1024.0  # exact in float16 too
        if kind == "f" and isinstance(cval, float) and math.isnan(cval):
            cval = 0.0  # NaN cval and nodata together: ambiguous all-missing windows
        if draw(st.booleans()):
            flat[rng.random(flat.size) < 0.4] = nodata  # many missing, some all-missing windows
        if draw(st.booleans()):
            cval = nodata  # padded cval positions are missing too
        if kind == "i" and not isinstance(nodata, float) and draw(st.booleans()):
            nodata = float(nodata) if abs(nodata) < 2 ** 53 else nodata
    divisor = None
    if method == "avg" and draw(st.integers(0, 3)) == 0:
        divisor = draw(st.integers(1, 10))
    return x, cval, nan_policy, nodata, divisor


@given(case=pool_case(), method=st.sampled_from(METHODS), dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(1000))
def test_matches_reference(case, method, dtype, layout, data, seed):
    check_case(case, method, dtype, layout, data, seed)


@given(case=pool_case(MEDIUM, max_size=6), method=st.sampled_from(METHODS),
       dtype=st.sampled_from(ALL_DTYPES), layout=st.sampled_from(LAYOUTS), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(300))
def test_matches_reference_medium(case, method, dtype, layout, data, seed):
    check_case(case, method, dtype, layout, data, seed)


def check_case(case, method, dtype, layout, data, seed):
    rng = np.random.default_rng(seed)
    x, cval, nan_policy, nodata, divisor = draw_options(data.draw, method, dtype, rng,
                                                        case["shape"])
    geo = {k: case[k] for k in ("size", "stride", "padding", "dilation", "ceil_mode",
                                "mode", "axes")}
    kw = dict(geo, cval=cval, nan_policy=nan_policy, nodata=nodata)
    if method == "avg":
        kw["divisor"] = divisor
    with_indices = method in ("max", "min") and data.draw(st.booleans())
    xin = relayout(x, layout, rng)
    call_kw = {k: v for k, v in kw.items() if k not in ("size",)}
    if with_indices:
        call_kw["return_indices"] = True

    if nan_policy == "raise" and x.dtype.kind == "f" and np.isnan(x).any():
        with pytest.raises(ValueError, match="(?i)nan"):
            pool(method, xin, kw["size"], **call_kw)
        return

    ref_kw = {k: v for k, v in kw.items() if k != "size"}
    values, exp_idx = ref_pool(x, method, kw["size"], **ref_kw)

    # output: default, a dtype, or an array to write into
    exp, out_arr = draw_output(data, method, x.dtype, values, call_kw, weights=(2, 1, 1))

    x_before = x.copy()
    res = pool(method, xin, kw["size"], **call_kw)
    if with_indices:
        assert isinstance(res, tuple) and len(res) == 2
        res, idx = res
    if out_arr is not None:
        assert res is out_arr
    assert_result(res, exp, method, x, case["wsize"], cval)
    if with_indices:
        axes = range(x.ndim) if kw["axes"] is None else np.atleast_1d(kw["axes"])
        pooled = sorted({int(a) % x.ndim for a in axes})
        assert_indices(idx, exp_idx, int(np.prod([x.shape[a] for a in pooled])))
    np.testing.assert_array_equal(xin, x_before)  # the input is never modified


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_every_dtype_default_output(method, dtype):
    rng = np.random.default_rng(3)
    x = random_array(rng, (6, 7, 5), dtype)
    res = pool(method, x, (2, 3), axes=(0, 2), padding=(1, 1), mode="reflect")
    exp, _ = ref(x, method, (2, 3), axes=(0, 2), padding=(1, 1), mode="reflect")
    expected_dtype = {"sum": {"b": np.int64, "i": np.int64, "u": np.uint64}}.get(
        method, {}).get(np.dtype(dtype).kind, np.float32 if dtype == "float16" else dtype)
    assert res.dtype == np.dtype(expected_dtype)
    assert_result(res, exp, method, x, 6)


_LAYOUT_DTYPES = ["bool", "int8", "uint16", "int64", "uint64", "float16", "float32",
                  "float64"]
# A list of Python scalars round-trips only the dtypes np.asarray gives back.
_LAYOUT_CASES = [(layout, dtype) for layout in LAYOUTS + ("broadcast", "list")
                 for dtype in _LAYOUT_DTYPES
                 if layout != "list" or dtype in ("bool", "int64", "float64")]


def _memory_order(a):
    return tuple(sorted(range(a.ndim), key=lambda k: -abs(a.strides[k])))


def test_order_free_reductions_of_fortran_input_walk_its_memory():
    """Extrema without indices and integer sums read a Fortran array or a
    transpose along its contiguous axis and return a result laid out as the
    input (the same values as the C-ordered input's); index-returning and float
    sums keep the C order.  A given ``output`` of any layout gets the values."""
    rng = np.random.default_rng(5)
    for dtype in ("float32", "uint8", "int16"):
        x = random_array(rng, (3, 17, 12), dtype, full_range=True)
        for xin in (np.asfortranarray(x),
                    np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)):
            for method in ("max", "min", "sum", "avg"):
                kw = dict(size=(3, 2), stride=(2, 1), padding=(1, 0), axes=(1, 2))
                want = pool(method, x, **kw)
                got = pool(method, xin, **kw)
                np.testing.assert_array_equal(got, want, err_msg=(dtype, method))
                assert out_dtype_of(got) == want.dtype
                ordered = method in ("max", "min") or dtype != "float32"
                assert _memory_order(got) == (_memory_order(xin) if ordered
                                              else (0, 1, 2)), (dtype, method)
                out = np.full(want.shape, 7, dtype=want.dtype)
                pool(method, xin, output=out, **kw)
                np.testing.assert_array_equal(out, want)
            v, i = fastpool.max_pool(xin, **kw, return_indices=True)
            w, j = fastpool.max_pool(x, **kw, return_indices=True)
            np.testing.assert_array_equal(i, j)
            assert v.flags.c_contiguous and i.flags.c_contiguous


@pytest.mark.parametrize("layout,dtype", _LAYOUT_CASES)
def test_layouts_identical(layout, dtype):
    """Every memory layout gives exactly the C-contiguous result."""
    rng = np.random.default_rng(11)
    x = random_array(rng, (4, 9, 10), dtype, full_range=True)
    if layout == "broadcast":  # zero strides
        x = np.broadcast_to(x[:, :1, :], x.shape)
        xin = x
        x = np.ascontiguousarray(x)
    elif layout == "list":
        xin = x.tolist()
    else:
        xin = relayout(x, layout, rng)
    for method in METHODS:
        for kw in (dict(size=3, stride=2, padding=1, mode="mirror", axes=(1, 2)),
                   dict(size=(2, 3), dilation=(2, 1), axes=(-1, 0), ceil_mode=True),
                   dict(size=(5, 4), stride=(2, 3), axes=(1, 2)),  # column first
                   dict(size=2)):
            x_use, xin_use = x, xin
            expected = pool(method, x_use, **kw)
            got = pool(method, xin_use, **kw)
            assert out_dtype_of(got) == expected.dtype
            np.testing.assert_array_equal(got, expected)
            if method in ("max", "min"):
                e_v, e_i = pool(method, x_use, return_indices=True, **kw)
                g_v, g_i = pool(method, xin_use, return_indices=True, **kw)
                np.testing.assert_array_equal(g_i, e_i)
    # and the C result itself is right
    exp, _ = ref(x, "max", 3, stride=2, padding=1, mode="mirror", axes=(1, 2))
    np.testing.assert_array_equal(pool("max", x, 3, stride=2, padding=1, mode="mirror",
                                       axes=(1, 2)), exp)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
def test_modes_explicit(method, mode):
    """Small hand-checkable case per mode, against the reference."""
    x = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]])
    for kw in (dict(size=3, stride=1, padding=1), dict(size=(2, 3), stride=(2, 2),
                                                       padding=(1, 1), ceil_mode=True),
               dict(size=3, stride=2, padding=1, dilation=(1, 2))):
        if has_empty_window(x.shape, mode=mode, **kw):
            continue
        exp, exp_idx = ref(x, method, mode=mode, cval=-0.5, **kw)
        if method in ("max", "min"):
            res, idx = pool(method, x, mode=mode, cval=-0.5, return_indices=True, **kw)
            assert_indices(idx, exp_idx, x.size)
        else:
            res = pool(method, x, mode=mode, cval=-0.5, **kw)
        assert_result(res, exp, method, x, 9)


def test_mode_values_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # windows of size 3, stride 1, padding 1: left window [pad, 1, 2], right [3, 4, pad]
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="ignore"),
                                  [3, 6, 9, 7])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="constant",
                                                    cval=10), [13, 6, 9, 17])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="reflect"),
                                  [4, 6, 9, 11])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="mirror"),
                                  [5, 6, 9, 10])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="nearest"),
                                  [4, 6, 9, 11])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 3, 1, padding=1, mode="wrap"),
                                  [7, 6, 9, 8])
    np.testing.assert_array_equal(fastpool.avg_pool(x, 3, 1, padding=1, mode="ignore"),
                                  [1.5, 2, 3, 3.5])
    # ceil_mode: size 4, stride 3, padding 2 on 5 elements: the last window starts at 4
    # and covers positions 4 (input), 5, 6 (padding) and 7 (past the padding: never part
    # of a window, whatever the mode)
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for mode, last in [("ignore", 5.0), ("constant", 25.0), ("reflect", 14.0),
                       ("mirror", 12.0), ("nearest", 15.0), ("wrap", 8.0)]:
        res = fastpool.sum_pool(y, 4, 3, padding=2, ceil_mode=True, mode=mode, cval=10)
        assert res.shape == (3,)
        assert res[2] == last, (mode, res)
    # windows of 2, stride 3, no padding: the last window holds x[3] only
    np.testing.assert_array_equal(
        fastpool.avg_pool(x, 2, 3, padding=0, ceil_mode=True, mode="constant", cval=100.0),
        [1.5, 4.0])


@pytest.mark.parametrize("mode", ["constant", "reflect", "mirror", "nearest", "wrap"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, (3, 2), (5, 1)])
def test_scipy_filters(mode, size):
    """Stride 1 and padding size//2 reproduce scipy.ndimage's filters (per mode)."""
    rng = np.random.default_rng(7)
    for shape in [(9, 8), (2, 3), (1, 5)]:
        x = rng.standard_normal(shape)
        ks = (size, size) if np.ndim(size) == 0 else size
        pad = tuple(k // 2 for k in ks)
        crop = tuple(slice(0, n) for n in shape)
        for method, filt in (("max", ndi.maximum_filter), ("min", ndi.minimum_filter),
                             ("avg", ndi.uniform_filter)):
            res = pool(method, x, ks, stride=1, padding=pad, mode=mode, cval=0.75)
            exp = filt(x, size=ks, mode=mode, cval=0.75)
            assert res.shape == tuple(n + 1 - k % 2 for n, k in zip(shape, ks))
            np.testing.assert_allclose(res[crop], exp, rtol=1e-12, atol=1e-12)


def test_nan_policies_by_hand():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan, 2.0, np.nan, np.nan]])
    v, i = fastpool.max_pool(x, 2, return_indices=True)
    assert np.isnan(v).all()
    np.testing.assert_array_equal(i, [[1, 3]])  # first NaN in C order of the window
    v, i = fastpool.min_pool(x, 2, nan_policy="omit", return_indices=True)
    np.testing.assert_array_equal(v, [[1.0, 3.0]])
    np.testing.assert_array_equal(i, [[0, 2]])
    v, i = fastpool.max_pool(x, (1, 2), nan_policy="omit", return_indices=True)
    np.testing.assert_array_equal(v, [[1.0, 3.0], [2.0, np.nan]])  # all-NaN window: NaN
    assert (i[0, 0], i[0, 1], i[1, 0]) == (0, 2, 5)
    assert i[1, 1] in (6, 7)  # any element of the all-NaN window
    np.testing.assert_array_equal(fastpool.sum_pool(x, 2, nan_policy="omit"), [[3.0, 3.0]])
    np.testing.assert_array_equal(fastpool.sum_pool(x, (1, 2), nan_policy="omit"),
                                  [[1.0, 3.0], [2.0, np.nan]])
    np.testing.assert_array_equal(fastpool.avg_pool(x, 2, nan_policy="omit"), [[1.5, 3.0]])
    np.testing.assert_array_equal(fastpool.avg_pool(x, (1, 2), nan_policy="omit"),
                                  [[1.0, 3.0], [2.0, np.nan]])
    assert np.isnan(fastpool.avg_pool(x, 2)).all()
    with pytest.raises(ValueError, match="(?i)nan"):
        fastpool.max_pool(x, 2, nan_policy="raise")
    # no NaN: 'raise' is silent
    np.testing.assert_array_equal(fastpool.sum_pool(np.ones((2, 2)), 2, nan_policy="raise"),
                                  [[4.0]])


def test_nodata_by_hand():
    x = np.array([[0, 5, 0, 0], [7, 0, 0, 0]], dtype=np.int16)
    np.testing.assert_array_equal(fastpool.avg_pool(x, 2, nodata=0), [[6, 0]])
    np.testing.assert_array_equal(fastpool.min_pool(x, 2, nodata=0), [[5, 0]])
    np.testing.assert_array_equal(fastpool.max_pool(x, 2, nodata=0), [[7, 0]])
    np.testing.assert_array_equal(fastpool.sum_pool(x, 2, nodata=0), [[12, 0]])
    r = np.array([[-9999.0, 2.0], [4.0, -9999.0], [-9999.0, -9999.0], [1.0, 1.0]])
    np.testing.assert_array_equal(fastpool.avg_pool(r, (1, 2), nodata=-9999),
                                  [[2.0], [4.0], [-9999.0], [1.0]])
    np.testing.assert_array_equal(fastpool.min_pool(r, (2, 2), nodata=-9999.0),
                                  [[2.0], [1.0]])
    # padded cval equal to nodata is missing too
    np.testing.assert_array_equal(
        fastpool.avg_pool(np.array([2.0, 4.0, 6.0]), 3, 1, padding=1, mode="constant",
                          cval=-1.0, nodata=-1.0), [3.0, 4.0, 5.0])


@given(shape=st.tuples(st.integers(1, 8), st.integers(1, 8)), seed=st.integers(0, 2**32 - 1),
       method=st.sampled_from(METHODS), size=st.integers(1, 3), mode=st.sampled_from(MODES))
@settings(max_examples=examples(100))
def test_nodata_equals_nan_omit(shape, seed, method, size, mode):
    """nodata behaves like an omitted NaN (windows that are not all missing)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape))
    mask = rng.random(shape) < 0.4
    x_nodata = np.where(mask, -9999.0, x)
    x_nan = np.where(mask, np.nan, x)
    kw = dict(stride=1, padding=size // 2, mode=mode, cval=0.5)
    a = pool(method, x_nodata, size, nodata=-9999.0, **kw)
    b = pool(method, x_nan, size, nan_policy="omit", **kw)
    all_missing = np.isnan(b)
    np.testing.assert_array_equal(a[~all_missing], b[~all_missing])
    np.testing.assert_array_equal(a[all_missing], -9999.0)


# ---------------------------------------------------------------------------
# integers: exactness, rounding, saturation


def test_uint64_max_min_exact():
    big = np.array([2**64 - 1, 2**64 - 2, 2**53 + 1, 2**53, 2**63 + 1, 2**63], dtype=np.uint64)
    v, i = fastpool.max_pool(big, 2, return_indices=True)
    np.testing.assert_array_equal(v, np.array([2**64 - 1, 2**53 + 1, 2**63 + 1], np.uint64))
    np.testing.assert_array_equal(i, [0, 2, 4])
    np.testing.assert_array_equal(fastpool.min_pool(big, 2),
                                  np.array([2**64 - 2, 2**53, 2**63], np.uint64))
    s = np.array([2**62 + 1, 2**62 + 2, -(2**62) - 1, -(2**62) - 2], dtype=np.int64)
    np.testing.assert_array_equal(fastpool.max_pool(s, 2), [2**62 + 2, -(2**62) - 1])


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_int64_avg_sum_exact(dtype):
    """Integer means are exact (rounded half to even), not float64 approximations."""
    b = 2**62
    x = np.array([b + 1, b + 2, b + 4, b + 1, b + 2, b + 2], dtype=dtype)
    # means: b + 7/3 -> b + 2 ; b + 5/3 -> b + 2
    np.testing.assert_array_equal(fastpool.avg_pool(x, 3), np.array([b + 2, b + 2], dtype))
    y = np.array([b + 1, b + 2, b + 3, b + 6], dtype=dtype)
    # b + 1.5 -> b + 2 (ties to even), b + 4.5 -> b + 4
    np.testing.assert_array_equal(fastpool.avg_pool(y, 2), np.array([b + 2, b + 4], dtype))
    # the mean of values whose sum overflows the dtype is still exact
    hi = np.iinfo(dtype).max
    z = np.array([hi, hi - 2, hi, hi], dtype=dtype)
    np.testing.assert_array_equal(fastpool.avg_pool(z, 2), np.array([hi - 1, hi], dtype))
    # sums are exact where they fit
    w = np.array([2**61 + 1, 2**61 + 2, 3, 4], dtype=dtype)
    res = fastpool.sum_pool(w, 2)
    assert res.dtype == (np.int64 if dtype == "int64" else np.uint64)
    np.testing.assert_array_equal(res, np.array([2**62 + 3, 7], dtype=res.dtype))


def test_sum_saturates():
    b = 2**62
    x = np.array([b, b, -b, -b, -b], dtype=np.int64)
    np.testing.assert_array_equal(fastpool.sum_pool(x, 2, ceil_mode=False),
                                  [2**63 - 1, -(2**63)])
    u = np.array([2**63, 2**63, 1, 2], dtype=np.uint64)
    np.testing.assert_array_equal(fastpool.sum_pool(u, 2), np.array([2**64 - 1, 3], np.uint64))
    # into a narrow output
    x8 = np.full((4,), 200, np.uint8)
    np.testing.assert_array_equal(fastpool.sum_pool(x8, 2, output=np.uint8), [255, 255])
    xi = np.array([-100, -100, 100, 100], np.int8)
    np.testing.assert_array_equal(fastpool.sum_pool(xi, 2, output=np.int8), [-128, 127])


def test_rounding_half_to_even_and_saturation():
    x = np.array([2, 3, 3, 4, -2, -3, 0, 1, 1, 2], dtype=np.int32)
    # means 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0, 1.5 -> 2
    np.testing.assert_array_equal(fastpool.avg_pool(x, 2), [2, 4, -2, 0, 2])
    f = np.array([300.7, 1.0, -1e9, 0.0, 2.5, 2.5, -3.5, -3.5, 0.25, 0.25])
    res = fastpool.avg_pool(f, 2, output=np.int8)
    assert res.dtype == np.int8
    np.testing.assert_array_equal(res, [127, -128, 2, -4, 0])
    res = fastpool.sum_pool(np.array([1.5, 1.0, -0.75, -0.75]), 2, output=np.int16)
    np.testing.assert_array_equal(res, [2, -2])
    # uint8 means
    u = np.array([255, 254, 0, 1, 1, 2], dtype=np.uint8)
    np.testing.assert_array_equal(fastpool.avg_pool(u, 2), [254, 0, 2])
    # bool: mean rounded half to even
    b = np.array([True, False, True, True, False, False])
    res = fastpool.avg_pool(b, 2)
    assert res.dtype == np.bool_
    np.testing.assert_array_equal(res, [False, True, False])
    np.testing.assert_array_equal(fastpool.sum_pool(b, 3), [2, 1])
    assert fastpool.sum_pool(b, 3).dtype == np.int64


def test_float16_computed_as_float32():
    x = np.array([1.0, 2.0, 65504.0, 65504.0, 0.1, 0.2], dtype=np.float16)
    res = fastpool.sum_pool(x, 2)
    assert res.dtype == np.float32
    # 65504 + 65504 overflows float16 but not float32
    np.testing.assert_array_equal(res, np.array([3.0, 131008.0, np.float32(
        np.float64(np.float16(0.1)) + np.float64(np.float16(0.2)))], np.float32))
    assert fastpool.max_pool(x, 2).dtype == np.float32
    np.testing.assert_array_equal(fastpool.max_pool(x, 2), x.astype(np.float32)[1::2])
    assert fastpool.avg_pool(x, 2).dtype == np.float32


def test_float32_sum_accumulates_in_float64():
    x = np.array([1e8, 1.0, -1e8, 1.0] * 4, dtype=np.float32)
    res = fastpool.sum_pool(x, 16)
    assert res.dtype == np.float32
    assert res[0] == 8.0  # float32 accumulation would lose the ones
    np.testing.assert_array_equal(fastpool.avg_pool(x, 16), [0.5])


# ---------------------------------------------------------------------------
# output=


def test_output_array_and_dtype():
    rng = np.random.default_rng(2)
    x = rng.integers(-50, 50, (6, 8)).astype(np.int16)
    out = np.empty((3, 4), np.float64)
    res = fastpool.avg_pool(x, 2, output=out)
    assert res is out
    exp = x.reshape(3, 2, 4, 2).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(out, exp)
    res = fastpool.avg_pool(x, 2, output=np.float32)
    assert res.dtype == np.float32
    np.testing.assert_array_equal(res, exp.astype(np.float32))
    res = fastpool.avg_pool(x, 2, output="float64")
    np.testing.assert_array_equal(res, exp)
    # max with indices into a given array
    out = np.empty((3, 4), np.int16)
    v, i = fastpool.max_pool(x, 2, output=out, return_indices=True)
    assert v is out
    np.testing.assert_array_equal(v, x.reshape(3, 2, 4, 2).max(axis=(1, 3)))
    np.testing.assert_array_equal(x.ravel()[i], v)
    # a non-contiguous output view: only the view is written
    big = np.full((3, 9), -1.0)
    view = big[:, ::2][:, :4]
    res = fastpool.max_pool(x, 2, output=view)
    assert res is view
    np.testing.assert_array_equal(big[:, 0:8:2], x.reshape(3, 2, 4, 2).max(axis=(1, 3)))
    assert (big[:, 1::2] == -1.0).all() and (big[:, 8] == -1.0).all()
    # Fortran-ordered output
    out = np.empty((3, 4), np.int32, order="F")
    np.testing.assert_array_equal(fastpool.sum_pool(x, 2, output=out),
                                  x.reshape(3, 2, 4, 2).sum(axis=(1, 3)))


# ---------------------------------------------------------------------------
# (c) identities


@given(case=pool_case(), dtype=st.sampled_from(["int8", "int32", "int64", "float32",
                                                  "float64", "float16"]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_max_of_negation_is_negated_min(case, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, case["shape"], dtype, small=bool(seed % 2), full_range=True)
    if x.dtype.kind == "i":
        x[x == np.iinfo(x.dtype).min] = 0  # -min overflows
    geo = {k: case[k] for k in ("stride", "padding", "dilation", "ceil_mode", "mode", "axes")}
    vmax, imax = fastpool.max_pool(-x, case["size"], cval=-3, return_indices=True, **geo)
    vmin, imin = fastpool.min_pool(x, case["size"], cval=3, return_indices=True, **geo)
    np.testing.assert_array_equal(vmax, -vmin)
    np.testing.assert_array_equal(imax, imin)


@given(case=pool_case(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_sum_avg_identities(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["shape"])
    geo = {k: case[k] for k in ("stride", "padding", "dilation", "ceil_mode", "axes")}
    size = case["size"]
    k = case["wsize"]
    # zero-padding counted in the mean adds nothing to the sum; without ceil_mode every
    # window has all of its k positions inside [-p, n + p)
    if not case["ceil_mode"] and not has_empty_window(x.shape, size, mode="ignore", **geo):
        a = fastpool.avg_pool(x, size, mode="constant", cval=0, **geo)
        s = fastpool.sum_pool(x, size, mode="ignore", **geo)
        np.testing.assert_allclose(a * k, s, rtol=1e-12, atol=1e-12 * k)
    # divisor=1 is the sum, in every mode
    for mode in MODES:
        if has_empty_window(x.shape, size, mode=mode, **geo):
            continue
        np.testing.assert_allclose(fastpool.avg_pool(x, size, mode=mode, divisor=1, **geo),
                                   fastpool.sum_pool(x, size, mode=mode, **geo),
                                   rtol=1e-13, atol=1e-13)
    # without padding the mode is irrelevant (positions past the input never count)
    geo0 = dict(geo, padding=0)
    lens_ok = not has_empty_window(x.shape, size, mode="ignore", **geo0)
    try:
        base = {m: pool(m, x, size, mode="ignore", **geo0) for m in METHODS}
    except ValueError:
        lens_ok = False  # zero-length output without the padding
    if lens_ok:
        for mode in MODES[1:]:
            for m in METHODS:
                np.testing.assert_array_equal(pool(m, x, size, mode=mode, cval=99.0, **geo0),
                                              base[m])


def test_sum_is_avg_times_count_no_padding():
    rng = np.random.default_rng(9)
    x = rng.integers(-1000, 1000, (5, 12, 9)).astype(np.int32)
    s = fastpool.sum_pool(x, (3, 2), axes=(1, 2), mode="constant")
    a = fastpool.avg_pool(x, (3, 2), axes=(1, 2), mode="constant", output=np.float64)
    np.testing.assert_allclose(a * 6, s, rtol=1e-14, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["uint8", "int64", "float32", "float64", "bool"])
def test_size_one_is_identity_and_global_pool(method, dtype):
    rng = np.random.default_rng(4)
    x = random_array(rng, (3, 4, 5), dtype)
    res = pool(method, x, 1)
    exp_dtype = default_dtype(method, x.dtype)
    assert res.dtype == exp_dtype
    np.testing.assert_array_equal(res, x.astype(exp_dtype))
    # a window covering the pooled axes is a reduction over them
    g = pool(method, x, (3, 5), axes=(0, 2))
    assert g.shape == (1, 4, 1)
    exp, _ = ref(x, method, (3, 5), axes=(0, 2))
    assert_result(g, exp, method, x, 15)
    if dtype.startswith("float"):
        npf = {"max": np.max, "min": np.min, "sum": np.sum, "avg": np.mean}[method]
        np.testing.assert_allclose(g, npf(x.astype(np.float64), axis=(0, 2), keepdims=True),
                                   rtol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_cval_64bit_extremes(dtype):
    """cval is exact for 64-bit integers (not rounded through float64)."""
    info = np.iinfo(dtype)
    x = np.array([5, 7, 9], dtype=dtype)
    for cval in (int(info.max), int(info.max) - 1, int(info.min) + 1, 2**53 + 1):
        if cval < 0 and dtype == "uint64":
            continue
        # windows [cval, 5, 7] and [7, 9, cval]
        exp = np.array([max(cval, 5, 7), max(7, 9, cval)], dtype=dtype)
        np.testing.assert_array_equal(
            fastpool.max_pool(x, 3, 2, padding=1, mode="constant", cval=cval), exp)
        exp = np.array([min(cval, 5, 7), min(7, 9, cval)], dtype=dtype)
        np.testing.assert_array_equal(
            fastpool.min_pool(x, 3, 2, padding=1, mode="constant", cval=cval), exp)
    # nodata above 2**53 for uint64 rasters
    if dtype == "uint64":
        nd = int(info.max)
        y = np.array([nd, 3, nd, nd], dtype=dtype)
        np.testing.assert_array_equal(fastpool.max_pool(y, 2, nodata=nd),
                                      np.array([3, nd], dtype=dtype))
        np.testing.assert_array_equal(fastpool.max_pool(y, 2, nodata=nd - 1),
                                      np.array([nd, nd], dtype=dtype))


def test_stride_defaults_to_size():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 9))
    for m in METHODS:
        f = getattr(fastpool, f"{m}_pool")
        np.testing.assert_array_equal(f(x, (2, 3)), f(x, (2, 3), (2, 3)))
        np.testing.assert_array_equal(f(x, (2, 3)), f(x, (2, 3), stride=None))
        np.testing.assert_array_equal(f(x, (2, 3), 1), f(x, (2, 3), stride=(1, 1)))
    # numpy integer scalars are integers too
    np.testing.assert_array_equal(fastpool.max_pool(x, np.int64(2), stride=np.int32(1)),
                                  fastpool.max_pool(x, 2, 1))


@pytest.mark.parametrize("method", METHODS)
def test_batch_axes_are_independent(method):
    """Pooling a batch equals pooling each batch element on its own."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 3, 7))
    kw = dict(size=(3, 2), stride=(2, 1), padding=(1, 1), axes=(0, 2), mode="wrap")
    full = pool(method, x, **kw)
    for c in range(3):
        one = pool(method, x[:, c, :], **dict(kw, axes=(0, 1)))
        np.testing.assert_array_equal(full[:, c, :], one)


# ---------------------------------------------------------------------------
# (d) the input is never modified


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint64", "float16"])
def test_input_not_modified(dtype):
    rng = np.random.default_rng(13)
    x = random_array(rng, (5, 6, 7), dtype, nan_frac=0.2 if dtype[0] == "f" else 0.0)
    for layout in ("C", "F", "negative", "sliced"):
        xin = relayout(x, layout, rng)
        before = xin.copy()
        for method in METHODS:
            for kw in (dict(), dict(padding=1, mode="reflect", stride=1),
                       dict(nan_policy="omit", mode="constant", cval=5, padding=1),
                       dict(nodata=0, axes=(0, 2))):
                r = pool(method, xin, 3, **kw)
                r[...] = 0  # the result does not alias the input either
                np.testing.assert_array_equal(xin, before)
        v, i = fastpool.max_pool(xin, 2, return_indices=True)
        fastpool.max_unpool(v, i, xin.shape)
        np.testing.assert_array_equal(xin, before)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint8"])
def test_float_result_saturates_into_integer_output(dtype):
    """Floats beyond an integer output's range saturate, 64-bit types included."""
    info = np.iinfo(dtype)
    x = np.array([2.0 ** 70, -(2.0 ** 70), 2.5, 3.5, float(info.max) * 4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fastpool.max_pool(x, 1, output=np.dtype(dtype))
    expected = [info.max, info.min, 2, 4, info.max]
    assert got.dtype == np.dtype(dtype)
    assert [int(v) for v in got] == expected


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_channels_last_equals_per_channel(method, dtype):
    """(H, W, C) and NHWC arrays (a contiguous non-pooled axis) pool each channel
    exactly as a separate image, bitwise."""
    rng = np.random.default_rng(5)
    for shape, axes in (((23, 17, 3), (0, 1)), ((2, 9, 14, 8), (1, 2))):
        x = random_array(rng, shape, dtype)
        for kw in (dict(size=2), dict(size=3, stride=2, padding=1, mode="reflect"),
                   dict(size=(2, 3), ceil_mode=True, mode="constant", cval=1)):
            got = pool(method, x, axes=axes, **kw)
            moved = np.moveaxis(x, -1, 0)
            per_channel = np.stack(
                [pool(method, np.ascontiguousarray(c), axes=axes,
                      **kw) for c in moved], axis=-1)
            assert got.dtype == per_channel.dtype
            assert got.tobytes() == per_channel.tobytes(), (shape, kw)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("window", [(2, 2), (4, 2), (6, 2), (3, 2), (8, 2), (2, 2, 2), (3, 2, 2)])
def test_float32_sums_of_two_wide_windows(dtype, window):
    """Regression: the one-pass float32 sums of 2x2 / 2x2x2 windows (uint8 or float32
    rows) were taken for any window two wide, so a 6x2 window summed its last two
    rows only."""
    rng = np.random.default_rng(sum(window))
    shape = tuple(3 * k for k in window)
    x = rng.integers(0, 256, shape).astype(dtype)
    got = fastpool.sum_pool(x, window, output=np.float32)
    blocks = x.reshape(sum(([n // k, k] for n, k in zip(shape, window)), []))
    expected = blocks.astype(np.float64).sum(axis=tuple(range(1, 2 * len(window), 2)))
    np.testing.assert_array_equal(got, expected.astype(np.float32))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
@pytest.mark.parametrize("width", [7, 112, 257, 1030])
@pytest.mark.parametrize("window", [(2, 2), (2, 2, 2)])
def test_two_wide_means_of_short_and_long_rows(dtype, width, window):
    """2x2 and 2x2x2 means and float32 sums take a one-pass loop per output row; rows
    of one block (NCHW maps) skip the per-row bookkeeping, longer rows go block by
    block, and padded windows through the tables: all equal the reference."""
    rng = np.random.default_rng(width)
    shape = (3,) + tuple(3 * k + 1 for k in window[:-1]) + (width,)
    x = random_array(rng, shape, dtype)
    axes = tuple(range(-len(window), 0))
    for kw in (dict(), dict(padding=1), dict(ceil_mode=True)):
        expected, _ = ref(x, "avg", window, axes=axes, **kw)
        got = fastpool.avg_pool(x, window, axes=axes, **kw)
        if dtype == "float64":  # the reference's sums are exact, fastpool's rounded
            np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-14)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=str(kw))
        if dtype in ("uint8", "float32"):
            expected, _ = ref(x, "sum", window, dtype=np.float32, axes=axes, **kw)
            got = fastpool.sum_pool(x, window, axes=axes, output=np.float32, **kw)
            np.testing.assert_array_equal(got, expected, err_msg=str(kw))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
@pytest.mark.parametrize("func", ["max_pool", "min_pool"])
def test_indices_of_common_windows_equal_the_sample_path(dtype, nan_policy, func):
    """2x2, 3x3/2 and 2x2x2 windows along contiguous float rows find their
    extremum and its index in one vectorised loop; a Fortran-ordered copy takes
    the per-sample path: the same values and indices (ties, signed zeros, NaN,
    all-NaN windows, infinities), and the indices against the values.  The same
    without NaN, for the loops that run where a row has none (3x3/2: from the
    columns' extrema)."""
    rng = np.random.default_rng([83, nan_policy == "omit", func == "min_pool"])
    x = rng.choice(np.array([-1.0, -0.0, 0.0, 2.0, np.inf, -np.inf]), (3, 8, 10, 143))
    # (inf - inf in a column sum reads as NaN: one sign of infinity)
    clean = np.where(x == -np.inf, -1.0, x).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, :, 2:4, 20:24] = np.nan
    x = x.astype(dtype)
    fn = getattr(fastpool, func)
    cases = (dict(size=2, axes=(2, 3)), dict(size=3, stride=2, padding=1, axes=(2, 3)),
             dict(size=2, axes=(1, 2, 3)), dict(size=2, ceil_mode=True, axes=(2, 3)))
    for x, kw in [(data, kw) for data in (x, clean) for kw in cases]:
        v, i = fn(x, **kw, nan_policy=nan_policy, return_indices=True)
        fv, fi = fn(np.asfortranarray(x), **kw, nan_policy=nan_policy,
                    return_indices=True)
        assert np.array_equal(i, fi), kw
        assert np.ascontiguousarray(fv).tobytes() == v.tobytes(), kw
        axes = kw["axes"]
        pooled = x.reshape(x.shape[:4 - len(axes)] + (-1,))
        picked = np.take_along_axis(pooled, i.reshape(i.shape[:4 - len(axes)] + (-1,)),
                                    axis=-1).reshape(v.shape)
        assert np.array_equal(picked, v, equal_nan=True), kw
