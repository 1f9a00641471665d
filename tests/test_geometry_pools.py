"""Correctness of the geometries beyond sliding windows (/work/notes/api_geometry.md):
adaptive_pool / adaptive_avg_pool / adaptive_max_pool, global_pool / global_avg_pool /
global_max_pool, fractional_max_pool and pyramid / Pyramid.

Oracles:
* tests/reference_geometry.py: the adaptive / fractional windows built independently,
  pooled by the existing per-window references (tests/reference.py for max, min, avg,
  sum, median, rank, percentile, mode; tests/reference_weighted.py for the weighted and
  random family, whose random stream is keyed by the flat C index of the output
  element), on randomized shapes, axes, output sizes, dtypes, layouts, nan_policy,
  nodata, outputs and workers;
* PyTorch: adaptive_{avg,max}_pool{1,2,3}d and fractional_max_pool{2,3}d (same random
  samples);
* NumPy: np.mean / np.max / np.sum / np.nan* / np.argmax for global pooling, math.fsum
  for the accuracy of a large float32 mean;
* identities: adaptive == the sliding function when the sizes divide, global ==
  adaptive with output size 1, pyramid level k == the sliding function with
  size = stride = f**k and ceil_mode.
"""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool
from reference import (
    ALL_DTYPES,
    LAYOUTS,
    cast_result,
    default_dtype,
    examples,
    normalize_axes,
    random_array,
    relayout,
)
from reference_geometry import (
    BASIC_METHODS,
    FAMILY_METHODS,
    adaptive_bounds,
    adaptive_output_sizes,
    adaptive_positions,
    compute_dtype,
    exact_mean,
    fractional_output_sizes,
    fractional_starts,
    max_window_size,
    min_window_size,
    pyramid_factors,
    pyramid_level_count,
    pyramid_level_shape,
    ref_adaptive,
    ref_fractional,
    ref_global,
    ref_pyramid_level,
)
from reference_weighted import seed_key
from strategies import draw_output
from test_basic import assert_indices, assert_result
from test_weighted import (
    assert_matches,
    choose_output,
    draw_data,
    draw_params,
    fp,
    has_nan,
    ref_params,
)

ALL_METHODS = BASIC_METHODS + FAMILY_METHODS + ("catavgmax",)
SLIDING_KEYWORDS = ("size", "stride", "padding", "dilation", "ceil_mode")
# the longest axis per number of dimensions (odd and prime lengths included)
LENGTHS = {1: 13, 2: 7, 3: 5, 4: 4}


# ---------------------------------------------------------------------------
# the reference checked on its own (no fastpool)


def test_reference_adaptive_bounds_by_hand():
    assert adaptive_bounds(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert adaptive_bounds(6, 3) == [(0, 2), (2, 4), (4, 6)]
    assert adaptive_bounds(2, 5) == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]
    assert adaptive_bounds(7, 1) == [(0, 7)]
    assert adaptive_bounds(3, 3) == [(0, 1), (1, 2), (2, 3)]
    # every window non-empty, the windows cover the axis in order
    for n in range(1, 15):
        for m in range(1, 20):
            b = adaptive_bounds(n, m)
            assert b[0][0] == 0 and b[-1][1] == n
            assert all(lo < hi for lo, hi in b)
            assert all(b[i][0] <= b[i + 1][0] and b[i][1] <= b[i + 1][1]
                       for i in range(m - 1))
            assert all(lo == math.floor(i * n / m) and hi == math.ceil((i + 1) * n / m)
                       for i, (lo, hi) in enumerate(b))


def test_reference_adaptive_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    _, v, _ = ref_adaptive(x, "avg", 3)
    assert list(v) == [1.5, 3.0, 4.5]
    _, v, i = ref_adaptive(x[::-1].copy(), "max", 3)
    assert list(v) == [5.0, 4.0, 2.0] and list(i) == [0, 1, 3]
    x2 = np.arange(12).reshape(3, 4)
    _, v, _ = ref_adaptive(x2, "sum", (2, None), axes=(1, 0))  # per-axis sizes follow axes
    assert v.shape == (3, 2) and v.tolist() == [[1, 5], [9, 13], [17, 21]]
    _, v, _ = ref_adaptive(x2, "sum", [None, 2], axes=[-2, -1])
    assert v.tolist() == [[1, 5], [9, 13], [17, 21]]
    assert adaptive_output_sizes((3, 4, 5), 2, axes=(2, 0)) == {2: 2, 0: 2}
    # the geometry is restored after the block
    import reference
    assert reference.geometry((5,), 2)[2] == (2,)
    # global: the pooled axes removed, or kept with length 1
    _, v, _ = ref_global(x2, "sum", axes=1)
    assert v.tolist() == [6, 22, 38]
    _, v, _ = ref_global(x2, "max", keepdims=True)
    assert v.shape == (1, 1) and v[0, 0] == 11
    _, v, i = ref_global(x2, "min")
    assert v.shape == () and v[()] == 0 and i[()] == 0


def test_reference_fractional_starts_by_hand():
    assert fractional_starts(10, 5, 2, 0.5) == [0, 2, 4, 6, 8]
    assert fractional_starts(7, 1, 3, 0.9) == [4]
    assert fractional_starts(5, 4, 2, 0.0) == [0, 1, 2, 3]
    # u close to 1 does not skip past the last start
    s = fractional_starts(11, 4, 2, 0.999)
    assert s[-1] == 9 and all(0 <= a <= 9 for a in s) and s == sorted(s)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_fractional_matches_torch(dtype):
    """The reference's generate_intervals against PyTorch's, value by value: pooling a
    ramp gives each window's last index, so the window starts are readable."""
    g = torch.Generator().manual_seed(3)
    for h, w, k, oh, ow in [(9, 11, 2, 4, 5), (13, 7, 3, 5, 5), (8, 8, 2, 7, 3),
                            (30, 31, 2, 17, 29), (6, 5, 1, 6, 1)]:
        x = torch.arange(h * w, dtype=dtype).reshape(1, 1, h, w)
        s = torch.rand(1, 1, 2, generator=g, dtype=dtype)
        v, i = F.fractional_max_pool2d(x, k, output_size=(oh, ow), return_indices=True,
                                       _random_samples=s)
        npdt = np.float32 if dtype == torch.float32 else np.float64
        sh = fractional_starts(h, oh, k, s[0, 0, 1].item(), npdt)
        sw = fractional_starts(w, ow, k, s[0, 0, 0].item(), npdt)
        expected = (np.array(sh)[:, None] + k - 1) * w + (np.array(sw)[None, :] + k - 1)
        np.testing.assert_array_equal(i[0, 0].numpy(), expected)
        # and through ref_fractional (samples in ascending axis order: H then W)
        xv = x.numpy()
        vals, idx = ref_fractional(xv, {2: oh, 3: ow}, k, s.numpy()[..., ::-1])
        np.testing.assert_array_equal(vals, v.numpy())
        np.testing.assert_array_equal(idx, i.numpy())


def test_reference_pyramid_counts():
    assert pyramid_level_count((1, 64, 64), {1: 2, 2: 2}) == 6
    assert pyramid_level_count((65,), {0: 2}) == 7
    assert pyramid_level_count((10, 27), {0: 2, 1: 3}) == 4  # 10 -> 5 3 2 1; 27 -> 1 at 3
    assert pyramid_level_count((10, 27), {0: 1, 1: 3}) == 3
    assert pyramid_level_shape((10, 27), {0: 2, 1: 3}, 2) == (3, 3)


# ---------------------------------------------------------------------------
# randomized adaptive / global cases against the reference


@st.composite
def adaptive_case(draw, max_pooled=3, max_out=360, lengths=None):
    """``(shape, axes, output_size)``: axes as an int, a list or a tuple,
    negative and in any order; ``output_size`` an int or one entry per axis of ``axes``
    in the given order (smaller, equal or larger than the axis, or None)."""
    lengths = lengths or LENGTHS
    ndim = draw(st.sampled_from(sorted(lengths)))
    shape = tuple(draw(st.integers(1, lengths[ndim])) for _ in range(ndim))
    if ndim <= max_pooled and draw(st.integers(0, 3)) == 0:
        axes = None
        given_axes = list(range(ndim))
    else:
        given_axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1,
                                   max_size=min(ndim, max_pooled), unique=True))
        axes = [a - ndim if draw(st.booleans()) else a for a in given_axes]
        axes = draw(st.sampled_from([tuple(axes), list(axes)]))
        if len(axes) == 1 and draw(st.booleans()):
            axes = axes[0]
    sizes = []
    for ax in given_axes:
        n = shape[ax]
        kind = draw(st.sampled_from(["smaller", "smaller", "equal", "larger", "none",
                                     "one"]))
        if kind == "smaller":
            sizes.append(draw(st.integers(1, max(1, n - 1))))
        elif kind == "equal":
            sizes.append(n)
        elif kind == "larger":
            sizes.append(draw(st.integers(n + 1, n + max(4, n // 3))))
        elif kind == "none":
            sizes.append(None)
        else:
            sizes.append(1)
    if None not in sizes and len(set(sizes)) == 1 and draw(st.booleans()):
        output_size = sizes[0]
    elif isinstance(axes, int) and draw(st.booleans()):
        output_size = [sizes[0]]
    else:
        output_size = draw(st.sampled_from([tuple(sizes), list(sizes)]))
    out = adaptive_output_sizes(shape, output_size, axes)
    out_shape = [out.get(a, n) for a, n in enumerate(shape)]
    assume(int(np.prod(out_shape)) <= max_out)
    return shape, axes, output_size


def method_params(draw, method, rng, shape, positions):
    """The method's own keywords (fastpool's names; ``_key`` private)."""
    if method in FAMILY_METHODS:
        return draw_params(draw, method, rng, shape)
    if method in ("max", "min"):
        return {"return_indices": True} if draw(st.booleans()) else {}
    if method == "rank":
        choices = [0, -1]
        if min_window_size(positions) >= 2:
            choices += [1, -2]
        return {"rank": draw(st.sampled_from(choices))}
    if method == "percentile":
        return {"percentile": draw(st.sampled_from([0, 10, 25, 50, 62.5, 90, 100]))}
    return {}


def draw_input(draw, method, params, rng, shape, dtype):
    """Data for ``method`` (the constraints of test_weighted.check_case for lp and
    stochastic), ``nan_policy`` and ``nodata``."""
    nonneg = method == "stochastic"
    ints_small = False
    if method == "lp":
        p = params["p"]
        if p != math.inf and (p < 1 or (float(p).is_integer() and p % 2 == 1 and p > 1)):
            ints_small = True
            nonneg = draw(st.booleans()) if p < 1 else not draw(st.booleans())
    x, _cval, nan_policy, nodata = draw_data(
        draw, rng, shape, dtype, nonneg=nonneg, ints_small=ints_small,
        allow_inf=method in ("lp", "soft", "generic", "max", "min", "median", "mode"))
    if method == "lp" and ints_small and x.dtype.kind == "f" and not nonneg:
        x = np.round(x)
    if method == "lp" and x.dtype.kind == "f":
        x[np.isneginf(x)] = np.inf
    if method in ("max", "min") and x.dtype.kind in "iu" and nodata is None \
            and draw(st.integers(0, 3)) == 0:
        x = random_array(rng, shape, dtype, full_range=True)
    return x, nan_policy, nodata


def call_adaptive(xin, output_size, method, axes, params, call_kw, draw, glob=False,
                  keepdims=False):
    """adaptive_pool / global_pool, or their avg / max shortcuts."""
    p = {k: v for k, v in params.items() if not k.startswith("_")}
    short = method in ("avg", "max") and set(p) <= {"return_indices"} \
        and draw(st.booleans())
    if glob:
        if short:
            f = fastpool.global_avg_pool if method == "avg" else fastpool.global_max_pool
            return f(xin, axes=axes, keepdims=keepdims, **p, **call_kw)
        if draw(st.booleans()):
            return fastpool.global_pool(xin, method, axes=axes, keepdims=keepdims, **p,
                                        **call_kw)
        return fastpool.global_pool(xin, method=method, axes=axes, keepdims=keepdims,
                                    **p, **call_kw)
    if short:
        f = fastpool.adaptive_avg_pool if method == "avg" else fastpool.adaptive_max_pool
        return f(xin, output_size, axes=axes, **p, **call_kw)
    if draw(st.booleans()):
        return fastpool.adaptive_pool(xin, output_size, method, axes=axes, **p, **call_kw)
    return fastpool.adaptive_pool(xin, output_size, method=method, axes=axes, **p,
                                  **call_kw)


def check_adaptive(method, case, dtype, layout, data, seed, glob=False):
    draw = data.draw
    rng = np.random.default_rng(seed)
    shape, axes, output_size = case
    if glob:
        output_size = 1
    positions = adaptive_positions(shape, output_size, axes)
    params = method_params(draw, method, rng, shape, positions)
    x, nan_policy, nodata = draw_input(draw, method, params, rng, shape, dtype)
    keepdims = glob and draw(st.booleans())
    call_kw = dict(nan_policy=nan_policy, nodata=nodata,
                   workers=draw(st.sampled_from([None, 1, 2])))
    axis = None
    if method == "catavgmax":
        pooled = set(positions)
        free = [a for a in range(x.ndim) if a not in pooled]
        if free and draw(st.booleans()):
            axis = draw(st.sampled_from(free)) - (x.ndim if draw(st.booleans()) else 0)
            params["axis"] = axis
    xin = relayout(x, layout, rng)
    before = x.copy()
    note = f"{method} shape={shape} axes={axes} output_size={output_size} " \
           f"params={ {k: v for k, v in params.items() if k not in ('weights', 'logits')} }"

    if nan_policy == "raise" and x.dtype.kind == "f" and np.isnan(x).any():
        with pytest.raises(ValueError, match="(?i)nan"):
            call_adaptive(xin, output_size, method, axes, params, call_kw, draw, glob,
                          keepdims)
        return

    rp, key = ref_params(method, {k: v for k, v in params.items() if k != "axis"})
    rp.pop("return_indices", None)
    ref_kw = dict(nan_policy=nan_policy, nodata=nodata, key=key, axis=axis, **rp)
    if glob:
        kind, values, extra = ref_global(x, method, axes, keepdims, **ref_kw)
    else:
        kind, values, extra = ref_adaptive(x, method, output_size, axes, **ref_kw)

    if kind == "basic":
        exp, out_arr = draw_output(data, method, x.dtype, values, call_kw)
        res = call_adaptive(xin, output_size, method, axes, params, call_kw, draw, glob,
                            keepdims)
        if params.get("return_indices"):
            assert isinstance(res, tuple) and len(res) == 2, note
            res, idx = res
        if out_arr is not None:
            assert res is out_arr
        assert_result(res, exp, method, x, max_window_size(positions))
        if params.get("return_indices"):
            pooled_size = int(np.prod([shape[a] for a in positions]))
            assert_indices(idx, extra, pooled_size)
    else:
        out_dtype, out_arr = choose_output(draw, x.dtype, values, call_kw)
        if out_dtype.kind in "biu" and has_nan(values):
            with pytest.raises(ValueError, match="(?i)nan"):
                call_adaptive(xin, output_size, method, axes, params, call_kw, draw, glob,
                              keepdims)
            return
        res = call_adaptive(xin, output_size, method, axes, params, call_kw, draw, glob,
                            keepdims)
        if out_arr is not None:
            assert res is out_arr
        assert_matches(res, values, extra, out_dtype, note=note)
    np.testing.assert_array_equal(xin, before)  # the input is never modified


@given(case=adaptive_case(), method=st.sampled_from(BASIC_METHODS),
       dtype=st.sampled_from(ALL_DTYPES), layout=st.sampled_from(LAYOUTS), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(500))
def test_adaptive_basic_methods_match_reference(case, method, dtype, layout, data, seed):
    check_adaptive(method, case, dtype, layout, data, seed)


def _make_family_test(method, n):
    @given(case=adaptive_case(), dtype=st.sampled_from(ALL_DTYPES),
           layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
    @settings(max_examples=examples(n))
    def test(case, dtype, layout, data, seed):
        check_adaptive(method, case, dtype, layout, data, seed)

    test.__name__ = f"test_adaptive_{method}_matches_reference"
    return test


test_adaptive_lp_matches_reference = _make_family_test("lp", 120)
test_adaptive_soft_matches_reference = _make_family_test("soft", 90)
test_adaptive_stochastic_matches_reference = _make_family_test("stochastic", 150)
test_adaptive_mixed_matches_reference = _make_family_test("mixed", 150)
test_adaptive_avgmax_matches_reference = _make_family_test("avgmax", 80)
test_adaptive_catavgmax_matches_reference = _make_family_test("catavgmax", 80)
test_adaptive_weighted_matches_reference = _make_family_test("weighted", 90)
test_adaptive_lip_matches_reference = _make_family_test("lip", 90)
test_adaptive_dpp_matches_reference = _make_family_test("dpp", 90)
test_adaptive_generic_matches_reference = _make_family_test("generic", 60)


# longer rows (vectorised loops, row tails, thread splits): every method, fewer examples
@given(case=adaptive_case(max_out=4000, lengths={1: 300, 2: 45, 3: 14}),
       method=st.sampled_from(ALL_METHODS), dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(60))
def test_adaptive_medium_arrays_match_reference(case, method, dtype, layout, data, seed):
    check_adaptive(method, case, dtype, layout, data, seed)


@given(case=adaptive_case(max_pooled=4, max_out=10**6),
       method=st.sampled_from(BASIC_METHODS + FAMILY_METHODS),
       dtype=st.sampled_from(ALL_DTYPES), layout=st.sampled_from(LAYOUTS), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(300))
def test_global_matches_reference(case, method, dtype, layout, data, seed):
    check_adaptive(method, case, dtype, layout, data, seed, glob=True)


def test_stochastic_stream_is_keyed_by_output_flat_index():
    """Hand-made: windows of one sample each except where the stream decides.  With
    output larger than the input every window holds one or two samples; the training
    result of window i is the sample the reference picks with u = uniform(key, i)."""
    from reference_weighted import uniform
    x = np.array([[1.0, 3.0, 0.0, 2.0, 5.0], [4.0, 4.0, 1.0, 1.0, 7.0]])
    key = seed_key(123)
    res = fastpool.adaptive_pool(x, (2, 3), "stochastic", seed=123)
    i = 0
    for r in range(2):
        for c, (lo, hi) in enumerate(adaptive_bounds(5, 3)):
            vals = x[r, lo:hi]
            u = uniform(key, i)
            cum = np.cumsum(vals)
            expected = vals[np.argmax(cum > u * cum[-1])] if cum[-1] > 0 else 0.0
            assert res[r, c] == expected, (r, c)
            i += 1


# ---------------------------------------------------------------------------
# PyTorch oracle for adaptive avg / max pooling

TORCH_AAVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
TORCH_AMAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]), ties=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(200))
def test_adaptive_matches_torch(data, dtype, ties, seed):
    draw = data.draw
    nd = draw(st.integers(1, 3))
    hi = {1: 17, 2: 9, 3: 6}[nd]
    spatial = tuple(draw(st.integers(1, hi)) for _ in range(nd))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    out = tuple(draw(st.integers(1, n + 5)) for n in spatial)
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=ties)
    axes = draw(st.sampled_from([tuple(range(2, 2 + nd)), tuple(range(-nd, 0))]))
    tout = out[0] if nd == 1 else out
    t = TORCH_AAVG[nd](torch.from_numpy(x), tout).numpy()
    tol = 1e-12 if dtype == "float64" else 2e-6  # torch accumulates float32 in float32
    for got in (fastpool.adaptive_avg_pool(x, out, axes=axes),
                fastpool.adaptive_pool(x, out, "avg", axes=axes)):
        assert got.dtype == x.dtype and got.shape == t.shape
        np.testing.assert_allclose(got, t, rtol=tol, atol=tol)
    tv, ti = TORCH_AMAX[nd](torch.from_numpy(x), tout, return_indices=True)
    v, i = fastpool.adaptive_max_pool(x, out, axes=axes, return_indices=True)
    assert v.dtype == x.dtype and i.dtype == np.int64
    np.testing.assert_array_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    v2, i2 = fastpool.adaptive_pool(x, out, "max", axes=axes, return_indices=True)
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(i2, i)
    # min pooling is max pooling of the negation (first occurrence on ties as well)
    tv, ti = TORCH_AMAX[nd](torch.from_numpy(-x), tout, return_indices=True)
    v, i = fastpool.adaptive_pool(x, out, "min", axes=axes, return_indices=True)
    np.testing.assert_array_equal(v, -tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    # sum = avg * window count (torch's avg of ones gives 1; compare with counts)
    counts = np.ones([1] * x.ndim)
    for a, (n, m) in enumerate(zip(spatial, out)):
        c = np.array([hi_ - lo for lo, hi_ in adaptive_bounds(n, m)], dtype=np.float64)
        counts = counts * c.reshape([-1 if b == a + 2 else 1 for b in range(x.ndim)])
    s = fastpool.adaptive_pool(x.astype(np.float64), out, "sum", axes=axes)
    np.testing.assert_allclose(s, t.astype(np.float64) * counts, rtol=max(tol, 1e-11) * 4,
                               atol=tol * np.abs(x).max() * counts.max() * 4)


def test_adaptive_torch_fixed_cases():
    """Non-divisible sizes and outputs larger than the input, by hand."""
    rng = np.random.default_rng(8)
    for shape, out in [((2, 3, 7, 5), (3, 2)), ((1, 1, 3, 4), (7, 9)),
                       ((1, 2, 10, 13), (4, 5)), ((2, 1, 5, 6, 7), (2, 4, 9)),
                       ((1, 2, 11), (4,)), ((1, 2, 2), (5,))]:
        nd = len(out)
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dtype)
            tout = out[0] if nd == 1 else out
            t = TORCH_AAVG[nd](torch.from_numpy(x), tout).numpy()
            tol = 1e-12 if dtype == np.float64 else 2e-6
            np.testing.assert_allclose(
                fastpool.adaptive_avg_pool(x, out, axes=tuple(range(2, 2 + nd))), t,
                rtol=tol, atol=tol)
            tv, ti = TORCH_AMAX[nd](torch.from_numpy(x), tout, return_indices=True)
            v, i = fastpool.adaptive_max_pool(x, out, axes=tuple(range(-nd, 0)),
                                              return_indices=True)
            np.testing.assert_array_equal(v, tv.numpy())
            np.testing.assert_array_equal(i, ti.numpy())


# ---------------------------------------------------------------------------
# identities


def sliding(method, x, size, params, **kw):
    """The sliding fastpool function for ``method``, size = stride = ``size``."""
    p = dict(params)
    if method in ("max", "min", "avg", "sum", "median", "mode"):
        return getattr(fastpool, f"{method}_pool")(x, size, size, **p, **kw)
    if method == "rank":
        return fastpool.rank_pool(x, p.pop("rank"), size, size, **p, **kw)
    if method == "percentile":
        return fastpool.percentile_pool(x, p.pop("percentile"), size, size, **p, **kw)
    if method == "catavgmax":
        return fastpool.catavgmax_pool(x, size, size, **p, **kw)
    return fp(method, x, size, p, stride=size, **kw)


def identity_params(method, shape):
    rng = np.random.default_rng(77)
    return {
        "max": {"return_indices": True}, "min": {"return_indices": True},
        "rank": {"rank": 1}, "percentile": {"percentile": 30},
        "lp": {"p": 2.5, "average": True}, "soft": {"beta": 1.5},
        "stochastic": {"seed": 9}, "mixed": {"seed": 10},
        "dpp": {"lam": 2.0, "alpha": 0.5},
        "weighted": {"weights": rng.random(shape)},
        "lip": {"logits": rng.standard_normal(shape)},
        "generic": {"function": np.ptp},
        "catavgmax": {"axis": 0},
    }.get(method, {})


def bitwise_equal(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        return all(bitwise_equal(u, v) for u, v in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return (a.shape == b.shape and a.dtype == b.dtype
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


IDENTITY_CASES = [  # (shape, axes, output_size)
    ((3, 12, 10), (1, 2), (4, 5)),
    ((3, 12, 10), (2, 1), (5, 3)),  # per-axis sizes follow the given order
    ((6, 9), None, (3, 9)),
    ((4, 8, 6), (-1, 0), (2, 2)),
    ((18,), None, 6),
    ((2, 4, 6, 8), (1, 2, 3), (2, 3, 4)),
]


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint8"])
def test_divisible_adaptive_equals_sliding_bitwise(method, dtype):
    rng = np.random.default_rng(5)
    for shape, axes, output_size in IDENTITY_CASES:
        x = random_array(rng, shape, dtype)
        if method in ("stochastic", "lp"):  # lp with p=2.5: NaN for negative values
            x = np.abs(x) if x.dtype.kind == "f" else x.clip(0)
        if method == "catavgmax" and axes is None:
            continue
        out = adaptive_output_sizes(shape, output_size, axes)
        size = tuple(shape[a] // out[a] for a in normalize_axes(len(shape), axes))
        params = identity_params(method, shape)
        if method == "catavgmax" and 0 in out:
            params = {}
        expected = sliding(method, x, size, params, axes=axes)
        got = fastpool.adaptive_pool(x, output_size, method, axes=axes, **params)
        assert bitwise_equal(got, expected), (method, shape, axes, output_size)


GLOBAL_ID_ARRAYS = {
    "float64": lambda rng: rng.standard_normal((3, 61, 257)) * 5,
    "float32": lambda rng: (rng.standard_normal((3, 61, 257)) * 5).astype(np.float32),
    "float16": lambda rng: rng.standard_normal((3, 61, 257)).astype(np.float16),
    "int32": lambda rng: rng.integers(-10**6, 10**6, (3, 61, 257), dtype=np.int32),
    "uint8": lambda rng: rng.integers(0, 256, (3, 61, 257), dtype=np.uint8),
    "int64": lambda rng: rng.integers(-2**40, 2**40, (3, 61, 257), dtype=np.int64),
    "bool": lambda rng: rng.random((3, 61, 257)) < 0.3,
}


@pytest.mark.parametrize("dtype", sorted(GLOBAL_ID_ARRAYS))
@pytest.mark.parametrize("axes", [None, (1, 2), (0,), (2, 0)])
def test_global_equals_adaptive_output_one(dtype, axes):
    rng = np.random.default_rng(len(dtype))
    x = GLOBAL_ID_ARRAYS[dtype](rng)
    pooled = sorted(normalize_axes(x.ndim, axes))
    kept = [n for a, n in enumerate(x.shape) if a not in pooled]
    for method in ("max", "min", "median", "mode", "avg", "sum", "percentile"):
        params = {"percentile": 75} if method == "percentile" else {}
        a = fastpool.adaptive_pool(x, 1, method, axes=axes, **params)
        g = fastpool.global_pool(x, method, axes=axes, **params)
        gk = fastpool.global_pool(x, method, axes=axes, keepdims=True, **params)
        assert isinstance(g, np.ndarray) and g.shape == tuple(kept), (method, g.shape)
        assert gk.shape == a.shape and g.dtype == a.dtype == gk.dtype
        if a.dtype.kind != "f" or method not in ("avg", "sum"):
            assert bitwise_equal(g, a.reshape(kept)), method
            assert bitwise_equal(gk, a), method
        else:
            tol = 1e-13 if a.dtype.itemsize == 8 else 1.2e-7  # float64 rounding / 1 ulp
            scale = float(np.abs(x.astype(np.float64)).sum() if method == "sum"
                          else np.abs(x.astype(np.float64)).max())
            np.testing.assert_allclose(g, a.reshape(kept), rtol=tol, atol=tol * scale)
            np.testing.assert_array_equal(gk.reshape(kept), g)
    v, i = fastpool.global_max_pool(x, axes=axes, return_indices=True)
    va, ia = fastpool.adaptive_max_pool(x, 1, axes=axes, return_indices=True)
    np.testing.assert_array_equal(v, va.reshape(kept))
    np.testing.assert_array_equal(i, ia.reshape(kept))


def _pooled_last(x, axes):
    """``x`` with its pooled axes (ascending) flattened into one last axis."""
    pooled = sorted(normalize_axes(x.ndim, axes))
    batch = [a for a in range(x.ndim) if a not in pooled]
    xt = np.transpose(x, batch + pooled)
    return xt.reshape(tuple(x.shape[a] for a in batch) + (-1,))


def _exact_int_mean(flat):
    """Exact mean of the last axis rounded half to even (Python ints)."""
    out = np.empty(flat.shape[:-1], dtype=object)
    for idx in np.ndindex(*flat.shape[:-1]):
        row = [int(v) for v in flat[idx]]
        out[idx] = Fraction(sum(row), len(row))
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int16", "uint8",
                                   "int32", "int64", "uint64", "bool"])
@pytest.mark.parametrize("axes", [None, 1, (0, 2), (2, 0), (-1,)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avg_max_sum_match_numpy(dtype, axes, keepdims):
    rng = np.random.default_rng(len(dtype) + (3 if keepdims else 0))
    x = random_array(rng, (5, 37, 23), dtype)
    ax = None if axes is None else tuple(np.atleast_1d(axes))
    flat = _pooled_last(x, axes)
    out_shape = np.max(x, axis=ax, keepdims=keepdims).shape
    # max / min: exact
    mx = fastpool.global_max_pool(x, axes=axes, keepdims=keepdims)
    assert isinstance(mx, np.ndarray) and mx.shape == out_shape
    assert mx.dtype == default_dtype("max", x.dtype)
    np.testing.assert_array_equal(mx, np.max(x, axis=ax, keepdims=keepdims))
    mn = fastpool.global_pool(x, "min", axes=axes, keepdims=keepdims)
    np.testing.assert_array_equal(mn, np.min(x, axis=ax, keepdims=keepdims))
    # indices: the first maximum of the pooled axes, flat in ascending axis order
    v, i = fastpool.global_max_pool(x, axes=axes, keepdims=keepdims, return_indices=True)
    np.testing.assert_array_equal(v, mx)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i.reshape(flat.shape[:-1]), np.argmax(flat, axis=-1))
    _, i = fastpool.global_pool(x, "min", axes=axes, return_indices=True)
    np.testing.assert_array_equal(i.reshape(flat.shape[:-1]), np.argmin(flat, axis=-1))
    # avg and sum
    avg = fastpool.global_avg_pool(x, axes=axes, keepdims=keepdims)
    sm = fastpool.global_pool(x, "sum", axes=axes, keepdims=keepdims)
    assert avg.shape == out_shape and sm.shape == out_shape
    assert avg.dtype == default_dtype("avg", x.dtype)
    assert sm.dtype == default_dtype("sum", x.dtype)
    if x.dtype.kind == "f":
        x64 = x.astype(np.float64)
        exp_sum = np.sum(x64, axis=ax, keepdims=keepdims)
        exp_avg = np.mean(x64, axis=ax, keepdims=keepdims)
        tol = 1e-12 if avg.dtype.itemsize == 8 else 1.2e-7
        scale = float(np.abs(x64).max())
        np.testing.assert_allclose(avg, exp_avg, rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(sm, exp_sum, rtol=tol, atol=tol * scale * flat.shape[-1])
        # float64 output: the float64 rounding of the exact value
        avg64 = fastpool.global_avg_pool(x, axes=axes, keepdims=keepdims, output=np.float64)
        np.testing.assert_allclose(avg64, exp_avg, rtol=1e-13, atol=1e-13 * scale)
    else:
        big = np.uint64 if x.dtype.kind == "u" else np.int64
        np.testing.assert_array_equal(sm, np.asarray(np.sum(x.astype(object), axis=ax,
                                                            keepdims=keepdims)).astype(big))
        exact = _exact_int_mean(flat)
        expected = cast_result(exact, avg.dtype).reshape(out_shape)
        np.testing.assert_array_equal(avg, expected)
        np.testing.assert_allclose(
            fastpool.global_avg_pool(x, axes=axes, keepdims=keepdims, output=np.float64),
            cast_result(exact, np.float64).reshape(out_shape), rtol=1e-15)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16",
                                   "uint64", "bool"])
@pytest.mark.parametrize("n", [100, 4095, 4096, 5000, 70001])
def test_global_integer_mean_into_float_output(dtype, n):
    """The exact mean of integers, rounded once to the float ``output`` dtype (small
    and large pooled sizes: the global path splits long sums into blocks)."""
    rng = np.random.default_rng(n)
    x = random_array(rng, (2, n), dtype)
    exact = _exact_int_mean(x)
    for out in (np.float64, np.float32):
        got = fastpool.global_avg_pool(x, axes=1, output=out)
        np.testing.assert_array_equal(got, cast_result(exact, out), err_msg=str(out))
        got = fastpool.global_pool(x[:1].ravel(), "avg", output=out)
        assert got.shape == () and got == cast_result(exact[:1], out)[0], out
    np.testing.assert_array_equal(fastpool.global_avg_pool(x, axes=-1),
                                  cast_result(exact, default_dtype("avg", x.dtype)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("axes", [None, (1, 2), (0,)])
def test_global_nan_policy_and_nodata_match_numpy(dtype, axes):
    rng = np.random.default_rng(2)
    x = random_array(rng, (4, 9, 11), dtype, nan_frac=0.3)
    x[1] = np.nan  # an all-NaN plane (for axes (1, 2))
    ax = None if axes is None else tuple(axes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x64 = x.astype(np.float64)
        exp = {"avg": np.nanmean(x64, axis=ax), "max": np.nanmax(x64, axis=ax),
               "min": np.nanmin(x64, axis=ax), "sum": np.nansum(x64, axis=ax)}
        # an all-missing window gives NaN (no nodata), also for the sum
        allnan = np.all(np.isnan(x64), axis=ax)
        exp["sum"] = np.where(allnan, np.nan, exp["sum"])
    tol = 1e-12 if dtype == "float64" else 1.2e-7
    for method, e in exp.items():
        got = fastpool.global_pool(x, method, axes=axes, nan_policy="omit")
        np.testing.assert_allclose(got, e, rtol=tol, atol=tol * 40, equal_nan=True,
                                   err_msg=method)
        got = fastpool.global_pool(x, method, axes=axes)  # propagate
        prop = np.where(np.any(np.isnan(x64), axis=ax), np.nan, e)
        np.testing.assert_allclose(got, prop, rtol=tol, atol=tol * 40, equal_nan=True,
                                   err_msg=method)
    with pytest.raises(ValueError, match="(?i)nan"):
        fastpool.global_avg_pool(x, axes=axes, nan_policy="raise")
    # nodata: the same as NaN under 'omit'; an all-nodata window gives nodata
    y = np.where(np.isnan(x), np.asarray(-7.0, dtype), x)
    got = fastpool.global_avg_pool(y, axes=axes, nodata=-7.0)
    np.testing.assert_allclose(got, np.where(allnan, -7.0, exp["avg"]), rtol=tol,
                               atol=tol * 40)
    got = fastpool.global_max_pool(y, axes=axes, nodata=-7.0)
    np.testing.assert_array_equal(got, np.where(allnan, -7.0, exp["max"]).astype(dtype))


def test_global_zero_dim_result():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    for f, expected in ((lambda a: fastpool.global_pool(a, "sum"), 276),
                        (lambda a: fastpool.global_avg_pool(a), 12),  # 11.5 -> 12
                        (lambda a: fastpool.global_max_pool(a), 23),
                        (lambda a: fastpool.global_pool(a, "median", axes=(0, 1, 2)), 12)):
        r = f(x)
        assert isinstance(r, np.ndarray) and r.shape == () and r == expected
    r = fastpool.global_avg_pool(x, keepdims=True)
    assert r.shape == (1, 1, 1) and r[0, 0, 0] == 12
    # 'avg' is the default method of global_pool and adaptive_pool
    assert bitwise_equal(fastpool.global_pool(x), fastpool.global_avg_pool(x))
    xf = x.astype(np.float64)
    assert bitwise_equal(fastpool.adaptive_pool(xf, (1, 2), axes=(2, 0)),
                         fastpool.adaptive_avg_pool(xf, (1, 2), axes=(2, 0)))
    np.testing.assert_array_equal(fastpool.adaptive_pool(xf, (1, 2), axes=(2, 0)),
                                  xf.mean(axis=2, keepdims=True))  # exact here
    v, i = fastpool.global_max_pool(x.astype(np.float64), return_indices=True)
    assert v.shape == () and i.shape == () and v == 23.0 and i == 23


@pytest.mark.parametrize("method, params", [
    ("avg", {}), ("sum", {}), ("max", {"return_indices": True}), ("median", {}),
    ("mode", {}), ("lp", {"p": 2.5}), ("soft", {"beta": 2.0}), ("stochastic", {"seed": 3}),
    ("mixed", {"seed": 4}), ("dpp", {"lam": 2.0}),
])
@pytest.mark.parametrize("output_size", [(37, 53), (400, 90), (1, None)])
def test_adaptive_bitwise_identical_for_every_workers(method, params, output_size):
    rng = np.random.default_rng(31)
    x = (rng.random((2, 180, 200)) * 3).astype(np.float32)
    if method == "mode":
        x = np.round(x)
    base = fastpool.adaptive_pool(x, output_size, method, axes=(1, 2), workers=1, **params)
    for w in (2, 3, -1):
        got = fastpool.adaptive_pool(x, output_size, method, axes=(1, 2), workers=w, **params)
        assert bitwise_equal(got, base), w



def test_given_windows_are_summed_column_first():
    """Non-divisible windows sum each column down the window rows, then the
    columns (docs/semantics.md, adaptive pooling).  Here that order is exact
    (2 / 4); the samples one by one in C order would lose the 1 of row 0 to 1e16."""
    x = np.array([[1e16, 1.0, 0.0, 0.0, 0.0],
                  [-1e16, 1.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0]])
    # 5 -> 3 along the rows: windows [0, 2), [1, 4), [3, 5), not the sliding ones
    for layout in (x, np.asfortranarray(x), np.ascontiguousarray(x[:, ::-1])[:, ::-1]):
        assert fastpool.adaptive_avg_pool(layout, (2, 3))[0, 0] == 0.5, layout.strides
        assert fastpool.adaptive_pool(layout, (2, 3), "sum")[0, 0] == 2.0
    # a strided last axis (every other column of a wider array)
    wide = np.zeros((3, 10))
    wide[:, ::2] = x
    assert fastpool.adaptive_avg_pool(wide[:, ::2], (2, 3))[0, 0] == 0.5


BIG_N = 3_000_000


def test_global_sum_bitwise_identical_for_every_workers():
    rng = np.random.default_rng(99)
    x = (rng.standard_normal(BIG_N) * 10).astype(np.float32)
    x2 = x.reshape(3, -1)
    for f in (lambda w, **k: fastpool.global_pool(x, "sum", workers=w, **k),
              lambda w, **k: fastpool.global_avg_pool(x, workers=w, **k),
              lambda w, **k: fastpool.global_pool(x2, "sum", axes=1, workers=w, **k),
              lambda w, **k: fastpool.global_avg_pool(x2, axes=(1,), workers=w, **k)):
        for out in (None, np.float64):
            base = f(1, output=out)
            for w in (2, -1):
                assert bitwise_equal(f(w, output=out), base), (w, out)
    # the float64 sum is right to float64 rounding (whatever the block split)
    exact = math.fsum(x.astype(np.float64).tolist())
    got = fastpool.global_pool(x, "sum", output=np.float64, workers=2)
    assert abs(float(got) - exact) <= 1e-12 * float(np.abs(x.astype(np.float64)).sum())


def test_global_float32_mean_is_accurate():
    """A float32 accumulator would be far off on 3e6 values; the float64 block sums
    round once to float32."""
    rng = np.random.default_rng(7)
    for x in ((rng.random(BIG_N) * 1000 + 1e4).astype(np.float32),
              (rng.standard_normal(BIG_N) * 3 + 0.5).astype(np.float32)):
        vals = x.astype(np.float64).tolist()
        exact = math.fsum(vals) / len(vals)
        cond = math.fsum(abs(v) for v in vals) / len(vals)
        got = fastpool.global_avg_pool(x)
        assert got.dtype == np.float32 and got.shape == ()
        ulp = float(np.spacing(np.float32(abs(exact))))
        assert abs(float(got) - exact) <= 0.5 * ulp * (1 + 1e-6) + 1e-12 * cond, \
            (float(got), exact)
        got64 = fastpool.global_avg_pool(x, output=np.float64)
        assert abs(float(got64) - exact) <= 1e-12 * cond + 1e-15 * abs(exact)
        total = math.fsum(vals)
        got = fastpool.global_pool(x, "sum")
        assert got.dtype == np.float32
        ulp = float(np.spacing(np.float32(abs(total))))
        assert abs(float(got) - total) <= 0.5 * ulp * (1 + 1e-6) + 1e-12 * cond * BIG_N
    assert exact_mean([1.0, 2.0, 4.0]) == 7 / 3


# ---------------------------------------------------------------------------
# fractional max pooling


def torch_fractional(x, k, out=None, ratio=None, samples=None):
    t = torch.from_numpy(x)
    f = F.fractional_max_pool2d if x.ndim == 4 else F.fractional_max_pool3d
    v, i = f(t, k, output_size=out, output_ratio=ratio, return_indices=True,
             _random_samples=samples)
    return v.numpy(), i.numpy()


@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]), ties=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_fractional_max_pool2d_matches_torch(data, dtype, ties, seed):
    draw = data.draw
    k = draw(st.integers(1, 3))
    h, w = (draw(st.integers(k, 16)) for _ in range(2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=ties)
    tdt = torch.float32 if dtype == "float32" else torch.float64
    s = torch.from_numpy(rng.random(shape[:2] + (2,))).to(tdt)
    samples = s.numpy()[..., ::-1]
    axes = draw(st.sampled_from([(2, 3), (-2, -1)]))
    if draw(st.booleans()):
        out = (draw(st.integers(1, h - k + 1)), draw(st.integers(1, w - k + 1)))
        tv, ti = torch_fractional(x, k, out=out, samples=s)
        v, i = fastpool.fractional_max_pool(x, out, size=k, samples=samples, axes=axes,
                                            return_indices=True)
        # one int for both axes
        if out[0] == out[1]:
            v1 = fastpool.fractional_max_pool(x, out[0], size=k, samples=samples, axes=axes)
            np.testing.assert_array_equal(v1, tv)
    else:
        ratio = tuple(draw(st.floats(0.05, 0.95)) for _ in range(2))
        assume(all(1 <= int(n * r) <= n - k + 1 for n, r in zip((h, w), ratio)))
        tv, ti = torch_fractional(x, k, ratio=ratio, samples=s)
        v, i = fastpool.fractional_max_pool(x, output_ratio=ratio, size=k, samples=samples,
                                            axes=axes, return_indices=True)
    assert v.dtype == x.dtype and i.dtype == np.int64
    np.testing.assert_array_equal(v, tv)
    np.testing.assert_array_equal(i, ti)
    # the values alone
    np.testing.assert_array_equal(
        fastpool.fractional_max_pool(x, output_size=tv.shape[2:], size=k, samples=samples,
                                     axes=axes), tv)


@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(100))
def test_fractional_max_pool3d_matches_torch(data, dtype, seed):
    draw = data.draw
    k = draw(st.integers(1, 2))
    # PyTorch's 3-D version wants m + k - 1 < n (strictly; the 2-D one and the contract
    # allow m + k - 1 == n, checked against the reference below)
    spatial = tuple(draw(st.integers(k + 1, 8)) for _ in range(3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + spatial
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, small=draw(st.booleans()))
    tdt = torch.float32 if dtype == "float32" else torch.float64
    s = torch.from_numpy(rng.random(shape[:2] + (3,))).to(tdt)
    if draw(st.booleans()):
        out = tuple(draw(st.integers(1, n - k)) for n in spatial)
        tv, ti = torch_fractional(x, k, out=out, samples=s)
        v, i = fastpool.fractional_max_pool(x, out, size=k, samples=s.numpy(), axes=(2, 3, 4),
                                            return_indices=True)
    else:
        ratio = draw(st.floats(0.1, 0.9))
        assume(all(1 <= int(n * ratio) <= n - k for n in spatial))
        tv, ti = torch_fractional(x, k, ratio=ratio, samples=s)
        v, i = fastpool.fractional_max_pool(x, output_ratio=ratio, size=k,
                                            samples=s.numpy(), axes=(-3, -2, -1),
                                            return_indices=True)
    assert v.dtype == x.dtype
    np.testing.assert_array_equal(v, tv)
    np.testing.assert_array_equal(i, ti)


FLOAT32_SENSITIVE = [  # (n, m, k, u): float32 and float64 generate_intervals differ
    (56, 29, 1, 0.47272592782974243),
    (58, 54, 3, 0.727270245552063),
    (25, 22, 3, 0.045454103499650955),
    (48, 41, 2, 0.434781938791275),
]


@pytest.mark.parametrize("n, m, k, u", FLOAT32_SENSITIVE)
def test_fractional_intervals_in_the_input_float_type(n, m, k, u):
    """float32 / float16 input: the starts are computed in float32 like PyTorch does;
    float64 and integer input: in float64.  The cases are ones where the two differ."""
    assert fractional_starts(n, m, k, u, np.float32) != fractional_starts(n, m, k, u,
                                                                         np.float64)
    ramp = np.arange(n * k, dtype=np.float64).reshape(1, 1, n, k)
    got = {}
    for dtype in (np.float32, np.float64, np.float16, np.int32):
        x = ramp.astype(dtype) if dtype != np.float16 else ramp.astype(np.float32)
        if dtype == np.float16:  # a ramp that float16 holds exactly: only the order matters
            x = (np.arange(n * k) % 2048).reshape(1, 1, n, k).astype(np.float16)
        samples = np.array([[[u, 0.5]]])  # H (axis 2), then W (axis 3)
        _, i = fastpool.fractional_max_pool(x, (m, 1), size=k, samples=samples, axes=(2, 3),
                                            return_indices=True)
        got[dtype] = i
        starts = fractional_starts(n, m, k, u, compute_dtype(x.dtype))
        # the ramp's maximum is the window's last row, last column
        np.testing.assert_array_equal(i[0, 0, :, 0], (np.array(starts) + k - 1) * k + k - 1,
                                      err_msg=str(dtype))
    np.testing.assert_array_equal(got[np.float16], got[np.float32])
    np.testing.assert_array_equal(got[np.int32], got[np.float64])
    for dtype, tdt in ((np.float32, torch.float32), (np.float64, torch.float64)):
        s = torch.tensor([[[0.5, u]]], dtype=tdt)  # torch: W first
        _, ti = torch_fractional(ramp.astype(dtype), k, out=(m, 1), samples=s)
        np.testing.assert_array_equal(got[dtype], ti)


def test_fractional_per_axis_size_matches_torch():
    """A per-axis window size (PyTorch's kernel_size pair)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 13, 10))
    s = torch.from_numpy(rng.random((2, 3, 2)))
    tv, ti = torch_fractional(x, (3, 2), out=(6, 5), samples=s)
    v, i = fastpool.fractional_max_pool(x, (6, 5), size=(3, 2), samples=s.numpy()[..., ::-1],
                                        axes=(2, 3), return_indices=True)
    np.testing.assert_array_equal(v, tv)
    np.testing.assert_array_equal(i, ti)


@st.composite
def fractional_case(draw):
    """N-D geometry: 1 to 4 pooled axes, in any order, among up to 5 axes."""
    npooled = draw(st.integers(1, 4))
    nbatch = draw(st.integers(0, 5 - npooled))
    ndim = npooled + nbatch
    k = draw(st.integers(1, 3))
    hi = {1: 14, 2: 8, 3: 6, 4: 5}[npooled]
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    given_axes = draw(st.permutations(range(ndim)))[:npooled]
    for ax in given_axes:
        shape[ax] = draw(st.integers(k, max(k, hi)))
    shape = tuple(shape)
    if npooled == ndim and draw(st.booleans()):
        axes = None
        given_axes = list(range(ndim))
    else:
        axes = tuple(a - ndim if draw(st.booleans()) else a for a in given_axes)
    if draw(st.booleans()):
        sizes = [draw(st.integers(1, shape[a] - k + 1)) for a in given_axes]
        output_size = sizes[0] if len(set(sizes)) == 1 and draw(st.booleans()) \
            else tuple(sizes)
        kw = dict(output_size=output_size)
    else:
        ratios = [draw(st.floats(0.1, 0.95)) for _ in given_axes]
        ratio = ratios[0] if draw(st.booleans()) else tuple(ratios)
        r = [ratio] * len(given_axes) if np.ndim(ratio) == 0 else ratio
        assume(all(1 <= int(shape[a] * q) <= shape[a] - k + 1
                   for a, q in zip(given_axes, r)))
        kw = dict(output_ratio=ratio)
    return shape, axes, k, kw


@given(case=fractional_case(),
       dtype=st.sampled_from(["float64", "float32", "float16", "int16", "uint8", "int64",
                              "bool"]),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(200))
def test_fractional_nd_matches_reference(case, dtype, layout, data, seed):
    draw = data.draw
    shape, axes, k, kw = case
    rng = np.random.default_rng(seed)
    x, _cval, nan_policy, nodata = draw_data(draw, rng, shape, dtype, allow_inf=True)
    if nan_policy == "raise":
        nan_policy = "propagate"
    pooled = sorted(normalize_axes(len(shape), axes))
    batch_shape = tuple(n for a, n in enumerate(shape) if a not in pooled)
    samples = rng.random(batch_shape + (len(pooled),))
    if compute_dtype(x.dtype) == np.float32:
        samples = samples.astype(np.float32).astype(np.float64)  # exact in both
    out_sizes = fractional_output_sizes(shape, axes=axes, **kw)
    values, indices = ref_fractional(x, out_sizes, k, samples, nan_policy=nan_policy,
                                     nodata=nodata)
    xin = relayout(x, layout, rng)
    before = x.copy()
    v, i = fastpool.fractional_max_pool(xin, size=k, samples=samples, axes=axes,
                                        return_indices=True, nan_policy=nan_policy,
                                        nodata=nodata, workers=draw(st.sampled_from([None, 1, 2])),
                                        **kw)
    assert v.dtype == values.dtype and v.shape == values.shape
    np.testing.assert_array_equal(v, values)
    assert_indices(i, indices, int(np.prod([shape[a] for a in pooled])))
    np.testing.assert_array_equal(xin, before)


def test_fractional_one_and_four_pooled_axes_by_hand():
    # 1-D: n = 10, k = 2, m = 5, u = 0.5 -> starts 0 2 4 6 8
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0])
    v, i = fastpool.fractional_max_pool(x, 5, size=2, samples=np.array([0.5]),
                                        return_indices=True)
    np.testing.assert_array_equal(v, [3.0, 4.0, 9.0, 6.0, 5.0])
    np.testing.assert_array_equal(i, [0, 2, 5, 7, 8])
    # 4 pooled axes of a 5-D array, batch axis in the middle
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 2, 6, 4, 7))
    axes = (0, 2, 3, 4)
    samples = rng.random((2, 4))
    out = {0: 3, 2: 4, 3: 2, 4: 5}
    values, indices = ref_fractional(x, out, 2, samples)
    v, i = fastpool.fractional_max_pool(x, (3, 4, 2, 5), size=2, samples=samples, axes=axes,
                                        return_indices=True)
    np.testing.assert_array_equal(v, values)
    np.testing.assert_array_equal(i, indices)
    # the same with the axes given in another order (sizes follow them)
    v2 = fastpool.fractional_max_pool(x, (5, 2, 4, 3), size=2, samples=samples,
                                      axes=(4, 3, 2, 0))
    np.testing.assert_array_equal(v2, values)


def test_fractional_seed_reproducible():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 40, 40)).astype(np.float32)
    kw = dict(output_size=(17, 23), size=2, axes=(2, 3), return_indices=True)
    a = fastpool.fractional_max_pool(x, seed=5, **kw)
    b = fastpool.fractional_max_pool(x, seed=5, **kw)
    c = fastpool.fractional_max_pool(x, seed=6, **kw)
    assert bitwise_equal(a, b)
    assert not np.array_equal(a[1], c[1])
    # seed -> numpy.random.default_rng(seed).random((*batch_shape, d))
    s = np.random.default_rng(5).random((4, 3, 2))
    assert bitwise_equal(a, fastpool.fractional_max_pool(x, samples=s, **kw))
    # a Generator: its next draw
    g = np.random.default_rng(21)
    d = fastpool.fractional_max_pool(x, seed=g, **kw)
    s = np.random.default_rng(21).random((4, 3, 2))
    assert bitwise_equal(d, fastpool.fractional_max_pool(x, samples=s, **kw))
    e = fastpool.fractional_max_pool(x, seed=g, **kw)  # the generator has advanced
    assert not np.array_equal(d[1], e[1])
    # and the values are those of the reference
    values, indices = ref_fractional(x[:1, :2], {2: 17, 3: 23}, 2,
                                     np.random.default_rng(5).random((4, 3, 2))[:1, :2])
    np.testing.assert_array_equal(a[0][:1, :2], values)
    np.testing.assert_array_equal(a[1][:1, :2], indices)
    # without seed: random, but valid
    r = fastpool.fractional_max_pool(x, **kw)
    assert r[0].shape == (4, 3, 17, 23)


XF = np.arange(2 * 3 * 9 * 8, dtype=np.float64).reshape(2, 3, 9, 8)


@pytest.mark.parametrize("kw", [
    dict(output_size=3, output_ratio=0.5),
    dict(),
])
def test_fractional_needs_exactly_one_of_size_and_ratio(kw):
    with pytest.raises((ValueError, TypeError), match="output_size|output_ratio"):
        fastpool.fractional_max_pool(XF, axes=(2, 3), seed=0, **kw)


@pytest.mark.parametrize("kw", [
    dict(output_size=(9, 4)),  # 9 + 2 - 1 > 9
    dict(output_size=8, size=2),  # 8 + 1 > 8 on the last axis
    dict(output_size=(3, 8), size=3),
    dict(output_size=0),
    dict(output_size=(3, -1)),
    dict(output_ratio=0.0),
    dict(output_ratio=1.0),
    dict(output_ratio=1.5),
    dict(output_ratio=-0.5),
    dict(output_ratio=(0.5, 1.0)),
    dict(output_ratio=0.05),  # int(9 * 0.05) = 0
])
def test_fractional_bad_output(kw):
    with pytest.raises(ValueError, match="output_size|output_ratio|size"):
        fastpool.fractional_max_pool(XF, axes=(2, 3), seed=0, **kw)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 3), (3, 2, 2), (6, 2), (2, 3, 2, 1), (2,)])
def test_fractional_bad_samples_shape(shape):
    with pytest.raises(ValueError, match="samples"):
        fastpool.fractional_max_pool(XF, 4, axes=(2, 3), samples=np.full(shape, 0.5))


# ---------------------------------------------------------------------------
# pyramids

PYRAMID_CASES = [  # (shape, factor, axes)
    ((13, 17), 2, None),
    ((3, 29, 23), (2, 3), (1, 2)),
    ((9, 11, 3), (2, 2, 1), None),
    ((2, 31, 7), 3, (2, 1)),
    ((7, 2, 19), (3, 2), (-1, 0)),
    ((64,), 2, None),
]
PYRAMID_DTYPES = ["uint8", "uint16", "int32", "float32", "float64", "bool"]
PYRAMID_METHODS = ["avg", "sum", "max", "min", "median", "mode"]


def _direct_level(method, x, factors, k, axes):
    given = normalize_axes(x.ndim, axes)
    sizes = tuple(factors[a] ** k for a in given)
    return getattr(fastpool, f"{method}_pool")(x, sizes, stride=sizes, ceil_mode=True,
                                               mode="ignore", axes=axes)


@pytest.mark.parametrize("method", PYRAMID_METHODS)
@pytest.mark.parametrize("dtype", PYRAMID_DTYPES)
def test_pyramid_levels_equal_direct_pooling(method, dtype):
    rng = np.random.default_rng(len(method) * 31 + len(dtype))
    for shape, factor, axes in PYRAMID_CASES:
        x = random_array(rng, shape, dtype, small=method == "mode")
        factors = pyramid_factors(x.ndim, factor, axes)
        pyr = fastpool.pyramid(x, factor=factor, method=method, axes=axes)
        assert isinstance(pyr, fastpool.Pyramid) and isinstance(pyr, list)
        n_levels = pyramid_level_count(shape, factors)
        assert len(pyr) == n_levels, (shape, factor, len(pyr), n_levels)
        for k, level in enumerate(pyr, start=1):
            direct = _direct_level(method, x, factors, k, axes)
            assert level.shape == pyramid_level_shape(shape, factors, k)
            assert level.dtype == direct.dtype, (level.dtype, direct.dtype)
            if level.dtype.kind == "f" and method in ("avg", "sum"):
                rtol = 1e-6 if level.dtype.itemsize == 4 else 1e-12
                np.testing.assert_allclose(level, direct, rtol=rtol,
                                           atol=rtol * float(np.abs(direct).max()))
            else:
                np.testing.assert_array_equal(level, direct, err_msg=f"level {k}")
        # the last level has length 1 on every axis with a factor > 1
        assert all(pyr[-1].shape[a] == 1 for a, f in factors.items() if f > 1)
        # .scales and .translations
        assert len(pyr.scales) == len(pyr.translations) == n_levels
        for k in range(1, n_levels + 1):
            sc = tuple(factors.get(a, 1) ** k for a in range(x.ndim))
            tr = tuple((factors[a] ** k - 1) / 2 if a in factors else 0.0
                       for a in range(x.ndim))
            assert tuple(pyr.scales[k - 1]) == sc
            assert tuple(pyr.translations[k - 1]) == tr
            assert len(pyr.scales[k - 1]) == x.ndim


@pytest.mark.parametrize("slab_bytes", [1, 200, 5000])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "bool"])
def test_pyramid_of_sums_in_slabs_equals_direct_pooling(monkeypatch, slab_bytes, dtype):
    """Means and sums go slab by slab along axis 0; with small slabs every cut
    (levels inside a slab, levels past it, a short last slab, axis 0 not pooled)
    must give the direct pooling."""
    import fastpool._beyond
    monkeypatch.setattr(fastpool._beyond, "_SLAB_BYTES", slab_bytes)
    rng = np.random.default_rng(slab_bytes)
    for shape, factor, axes in [((53, 37), 2, None), ((29, 6, 9), (3, 2, 1), None),
                                ((7, 20, 18), 2, (1, 2)), ((40, 3, 10), 2, (0, 2)),
                                ((33,), 2, None)]:
        x = random_array(rng, shape, dtype)
        factors = pyramid_factors(x.ndim, factor, axes)
        for method in ("avg", "sum"):
            pyr = fastpool.pyramid(x, factor=factor, method=method, axes=axes)
            assert len(pyr) == pyramid_level_count(shape, factors)
            for k, level in enumerate(pyr, start=1):
                direct = _direct_level(method, x, factors, k, axes)
                assert level.dtype == direct.dtype
                if level.dtype.kind == "f":
                    np.testing.assert_allclose(level, direct, rtol=1e-6,
                                               atol=1e-6 * float(np.abs(direct).max()))
                else:
                    np.testing.assert_array_equal(level, direct, err_msg=f"level {k}")


def test_pyramid_and_fractional_bitwise_identical_for_every_workers():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (300, 257), dtype=np.uint8)
    vol = rng.standard_normal((40, 33, 35)).astype(np.float32)
    calls = [lambda w, m=m, a=a: fastpool.pyramid(a, method=m, workers=w)
             for m in ("avg", "sum", "max", "median") for a in (img, vol)]
    calls.append(lambda w: [fastpool.fractional_max_pool(
        vol, output_ratio=0.6, seed=4, return_indices=True, axes=(1, 2), workers=w)[1]])
    for call in calls:
        base = b"".join(level.tobytes() for level in call(1))
        for w in (2, 3, -1):
            assert b"".join(level.tobytes() for level in call(w)) == base


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64", "bool"])
def test_pyramid_matches_reference(dtype):
    """The first levels of a small pyramid against the sliding reference (independent
    of fastpool's sliding functions)."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (2, 11, 7), dtype)
    for method in ("avg", "sum", "max", "median"):
        pyr = fastpool.pyramid(x, levels=2, factor=(3, 2), method=method, axes=(1, 2))
        factors = {1: 3, 2: 2}
        for k in (1, 2):
            values = ref_pyramid_level(x, method, factors, k)
            exp = cast_result(values, default_dtype(method, x.dtype))
            assert_result(pyr[k - 1], exp, method, x, 6 ** k)


@pytest.mark.parametrize("levels", [1, 2, 4, 7])
def test_pyramid_levels_given(levels):
    rng = np.random.default_rng(levels)
    x = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    pyr = fastpool.pyramid(x, levels, 2, "avg", axes=(1, 2))
    assert len(pyr) == levels  # also past the 1-pixel level (ceil(n / f**k) stays 1)
    for k, level in enumerate(pyr, start=1):
        np.testing.assert_array_equal(level, _direct_level("avg", x, {1: 2, 2: 2}, k,
                                                           (1, 2)))
    # levels=None goes down to 1 x 1: 30 -> 15 8 4 2 1
    assert len(fastpool.pyramid(x, axes=(1, 2))) == 5
    assert fastpool.pyramid(x, axes=(1, 2))[-1].shape == (3, 1, 1)


def test_pyramid_uint8_keeps_mean_brightness():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 64, 128), dtype=np.uint8)
    x[0] = rng.integers(100, 110, (64, 128))  # near-constant plane
    mean = x.astype(np.float64).mean(axis=(1, 2))
    pyr = fastpool.pyramid(x, axes=(1, 2))
    assert len(pyr) == 7
    for k, level in enumerate(pyr, start=1):
        assert level.dtype == np.uint8
        if 64 % 2 ** k == 0 and 128 % 2 ** k == 0:
            lm = level.astype(np.float64).mean(axis=(1, 2))
            assert np.all(np.abs(lm - mean) <= 0.5), (k, lm, mean)
            # rounded once from the exact window mean, not level by level
            blocks = x.reshape(3, 64 // 2**k, 2**k, 128 // 2**k, 2**k).astype(np.int64)
            s = blocks.sum(axis=(2, 4))
            exact = np.empty(s.shape, dtype=object)
            for idx in np.ndindex(s.shape):
                exact[idx] = Fraction(int(s[idx]), 4 ** k)
            np.testing.assert_array_equal(level, cast_result(exact, np.uint8))


def test_pyramid_other_methods_and_kwargs():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 17, 12))
    x[0, 3, 4] = np.nan
    pyr = fastpool.pyramid(x, 2, 2, "max", axes=(1, 2), nan_policy="omit")
    np.testing.assert_array_equal(
        pyr[1], fastpool.max_pool(x, 4, 4, ceil_mode=True, axes=(1, 2), nan_policy="omit"))
    pyr = fastpool.pyramid(x, 2, 2, "percentile", axes=(1, 2), percentile=25)
    np.testing.assert_array_equal(
        pyr[0], fastpool.percentile_pool(x, 25, 2, 2, ceil_mode=True, axes=(1, 2)))


@pytest.mark.parametrize("kw, name", [
    (dict(factor=0), "factor"), (dict(factor=-2), "factor"), (dict(factor=(2, 0)), "factor"),
    (dict(factor=1), "factor"), (dict(factor=(1, 1)), "factor"),
    (dict(levels=0), "levels"), (dict(levels=-1), "levels"),
])
def test_pyramid_errors(kw, name):
    x = np.zeros((8, 8))
    with pytest.raises(ValueError, match=name):
        fastpool.pyramid(x, **kw)


# ---------------------------------------------------------------------------
# errors

XE = np.arange(2 * 6 * 7, dtype=np.float64).reshape(2, 6, 7)


@pytest.mark.parametrize("output_size", [0, -1, (3, 0), (-2, 3), (2, 2, 2), (2,), ()])
def test_adaptive_bad_output_size_value(output_size):
    with pytest.raises(ValueError, match="output_size"):
        fastpool.adaptive_pool(XE, output_size, axes=(1, 2))
    with pytest.raises(ValueError, match="output_size"):
        fastpool.adaptive_max_pool(XE, output_size, axes=(1, 2))


@pytest.mark.parametrize("output_size", [2.5, "3", (2, 1.5), [2.0, 3], True])
def test_adaptive_bad_output_size_type(output_size):
    with pytest.raises((TypeError, ValueError), match="output_size"):
        fastpool.adaptive_avg_pool(XE, output_size, axes=(1, 2))


@pytest.mark.parametrize("f", [lambda m: fastpool.adaptive_pool(XE, 2, m),
                               lambda m: fastpool.global_pool(XE, m)])
@pytest.mark.parametrize("method", ["bogus", "AVG_", "blur", "maxblur", ""])
def test_unknown_method(f, method):
    with pytest.raises(ValueError):
        f(method)


@pytest.mark.parametrize("name", SLIDING_KEYWORDS)
def test_sliding_keywords_rejected(name):
    value = True if name == "ceil_mode" else 2
    with pytest.raises(TypeError):
        fastpool.adaptive_pool(XE, 2, "max", **{name: value})
    with pytest.raises(TypeError):
        fastpool.adaptive_avg_pool(XE, 2, **{name: value})


def test_input_not_modified_by_any_function():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 10, 9))
    x[0, 1, 1] = np.nan
    before = x.copy()
    fastpool.adaptive_pool(x, (4, 5), "median", axes=(1, 2), nan_policy="omit")
    fastpool.adaptive_max_pool(x, (4, 5), axes=(1, 2), return_indices=True)
    fastpool.global_pool(x, "sum", axes=(0, 2))
    fastpool.fractional_max_pool(x, (4, 5), axes=(1, 2), seed=1)
    fastpool.pyramid(x, axes=(1, 2))
    np.testing.assert_array_equal(x, before)


# --------------------------------------------------------------------------- edges

@pytest.mark.parametrize("call", [
    lambda x: fastpool.adaptive_avg_pool(x, 2, axes=1),
    lambda x: fastpool.global_max_pool(x, axes=1),
    lambda x: fastpool.pyramid(x, axes=1),
], ids=["adaptive", "global", "pyramid"])
def test_zero_length_pooled_axis_is_a_value_error(call):
    with pytest.raises(ValueError, match="axis 1: cannot pool an axis of length 0"):
        call(np.zeros((3, 0)))


def test_empty_batch_gives_empty_results():
    x = np.zeros((0, 12, 10), dtype=np.float32)
    v, i = fastpool.fractional_max_pool(x, 5, axes=(1, 2), return_indices=True)
    assert v.shape == i.shape == (0, 5, 5)
    assert [lv.shape for lv in fastpool.pyramid(x, axes=(1, 2))] == [
        (0, 6, 5), (0, 3, 3), (0, 2, 2), (0, 1, 1)]
    assert fastpool.global_avg_pool(x, axes=(1, 2)).shape == (0,)


@pytest.mark.parametrize("method", ["avg", "median", "max"])
def test_pyramid_levels_past_one_pixel_stay_global(method):
    """Windows far longer than the axis (factor**40) are the whole axis: no
    table as long as the window is built."""
    x = np.arange(35, dtype=np.uint8).reshape(5, 7)
    levels = fastpool.pyramid(x, levels=40, method=method)
    whole = fastpool.global_pool(x, method, keepdims=True)
    assert len(levels) == 40 and levels.scales[-1] == (2 ** 40, 2 ** 40)
    for level in levels[3:]:
        np.testing.assert_array_equal(level, whole)


def test_global_output_of_the_wrong_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"output has shape \(3,\), expected \(2,\)"):
        fastpool.global_avg_pool(np.ones((2, 5000)), axes=1, output=np.empty(3))


def test_global_sums_bitwise_the_same_for_every_layout():
    """Global sums of layouts that are not one run walk the pooled axes in C order
    with the lanes and blocks of a run: the same bits (float64 shows any
    difference in association)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((23, 97, 61)) * 1e3
    layouts = [x, np.asfortranarray(x), x.transpose(2, 0, 1).copy().transpose(1, 2, 0),
               np.ascontiguousarray(x[:, ::-1])[:, ::-1]]
    for axes in ((1, 2), (0, 1, 2), (0, 2)):
        for method in ("avg", "sum"):
            for policy in ("propagate", "omit"):
                results = [fastpool.global_pool(a, method, axes=axes, nan_policy=policy)
                           for a in layouts]
                for r in results[1:]:
                    assert r.tobytes() == results[0].tobytes(), (axes, method, policy)


def _layouts(x):
    """``x`` in C order, Fortran order, an axis permutation and flipped axes."""
    perm = tuple(range(x.ndim))[::-1]
    return {"C": x, "F": np.asfortranarray(x),
            "permuted": x.transpose(perm).copy().transpose(np.argsort(perm)),
            "flipped": np.ascontiguousarray(x[..., ::-1, :])[..., ::-1, :],
            "F-flipped": np.asfortranarray(x[::-1])[::-1]}


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16"])
@pytest.mark.parametrize("axes", [None, (1, 2), (0, 2)])
def test_global_extrema_of_every_layout_match_numpy(dtype, axes):
    """Extrema of layouts that are not one run in C order walk the memory; their
    indices are still the first in C order of the pooled axes (ties, NaN and
    winners in several blocks included)."""
    rng = np.random.default_rng(len(dtype) * 10 + len(str(axes)))  # (hash() of a str varies per run)
    x = random_array(rng, (3, 181, 157), dtype, small=True,
                     nan_frac=0.001 if dtype.startswith("f") else 0.0)
    ax = None if axes is None else tuple(axes)
    for name, a in _layouts(x).items():
        flat = _pooled_last(a, axes)
        for method, pick, arg in (("max", np.max, np.argmax), ("min", np.min, np.argmin)):
            v, i = fastpool.global_pool(a, method, axes=axes, return_indices=True)
            np.testing.assert_array_equal(v, pick(x, axis=ax), err_msg=(name, method))
            np.testing.assert_array_equal(i.reshape(flat.shape[:-1]), arg(flat, axis=-1),
                                          err_msg=(name, method))
            for w in (1, 2):
                np.testing.assert_array_equal(
                    fastpool.global_pool(a, method, axes=axes, workers=w), v)
        if dtype.startswith("f"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for method, pick in (("max", np.nanmax), ("min", np.nanmin)):
                    v, i = fastpool.global_pool(a, method, axes=axes, nan_policy="omit",
                                                return_indices=True)
                    np.testing.assert_array_equal(v, pick(x, axis=ax), err_msg=name)
                    np.testing.assert_array_equal(
                        i.reshape(flat.shape[:-1]),
                        np.nanargmax(flat, axis=-1) if method == "max"
                        else np.nanargmin(flat, axis=-1), err_msg=name)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_global_one_byte_runs_match_numpy(dtype):
    """One-byte runs take whole-vector loops (psadbw sums, byte-lane extrema),
    with and without nodata: every length around the vector and block sizes,
    negative nodata, rows that are all nodata, and strided rows (the lane
    loops) against NumPy in int64, at 1 and 2 workers."""
    rng = np.random.default_rng(7 if dtype == "uint8" else 8)
    info = np.iinfo(dtype)
    for n in (1, 31, 32, 63, 64, 65, 4095, 32768, 32768 + 31, 2 * 32768 + 100):
        for nodata in (None, 0, info.max, -3 if dtype == "int8" else 3):
            x = rng.integers(info.min, int(info.max) + 1, (3, n)).astype(dtype)
            if nodata is not None:
                x[0, rng.random(n) < 0.3] = nodata
                x[2] = nodata
            for view in (x, x[:, ::2]):
                wide = view.astype(np.int64)
                keep = np.ones(view.shape, bool) if nodata is None else view != nodata
                count = keep.sum(axis=1)
                total = np.where(keep, wide, 0).sum(axis=1)
                hi = np.where(keep, wide, info.min).max(axis=1)
                lo = np.where(keep, wide, info.max).min(axis=1)
                fill = 0 if nodata is None else nodata
                for workers in (1, 2):
                    kw = dict(axes=1, nodata=nodata, workers=workers)
                    got = {m: fastpool.global_pool(view, m, **kw).astype(np.int64)
                           for m in ("sum", "max", "min")}
                    mean = fastpool.global_pool(view, "avg", output=np.float64, **kw)
                    where = (n, nodata, view.strides, workers)
                    np.testing.assert_array_equal(got["sum"], np.where(count, total, fill),
                                                  err_msg=where)
                    np.testing.assert_array_equal(got["max"], np.where(count, hi, fill),
                                                  err_msg=where)
                    np.testing.assert_array_equal(got["min"], np.where(count, lo, fill),
                                                  err_msg=where)
                    np.testing.assert_allclose(
                        mean, np.where(count, total / np.maximum(count, 1), fill),
                        rtol=1e-15, err_msg=where)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int8", "uint16", "int32"])
@pytest.mark.parametrize("n", [4096 + 13, 3 * 32768 + 29])
def test_global_missing_values_over_blocks_match_numpy(dtype, n):
    """'omit' and ``nodata`` over runs of several blocks (the masked lane loops),
    against NumPy's nan-reductions, and bitwise the same sums as a Fortran
    layout's C-order walk (the scalar lanes)."""
    rng = np.random.default_rng(n)
    x = random_array(rng, (2, n), dtype, small=dtype.startswith("u"),
                     nan_frac=0.05 if dtype.startswith("f") else 0.0)
    x[1, : n // 2] = 0  # one row half nodata
    nodata = 0
    is_float = dtype.startswith("f")
    x64 = x.astype(np.float64)
    masked = np.where(x == nodata, np.nan, x64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if is_float:
            cases = {"omit": (dict(nan_policy="omit"), x64),
                     "nodata": (dict(nodata=nodata), masked),
                     "both": (dict(nodata=nodata, nan_policy="omit"), masked)}
        else:
            cases = {"nodata": (dict(nodata=nodata), masked)}
        for name, (kw, ref) in cases.items():
            prop = is_float and "nan_policy" not in kw
            for method, numpy_f in (("max", np.nanmax), ("min", np.nanmin),
                                    ("avg", np.nanmean), ("sum", np.nansum)):
                exact = dict(output=np.float64) if method == "avg" and not is_float else {}
                got = fastpool.global_pool(x, method, axes=1, **kw, **exact)
                want = numpy_f(ref, axis=1)
                if prop:  # NaN is a value under 'propagate'
                    want = np.where(np.isnan(x64).any(axis=1), np.nan, want)
                if method in ("max", "min"):
                    np.testing.assert_array_equal(got, want.astype(got.dtype),
                                                  err_msg=(name, method))
                else:
                    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32"
                                               else 1e-12, err_msg=(name, method))
            if is_float:
                for method in ("avg", "sum"):
                    c = fastpool.global_pool(x, method, axes=1, **kw)
                    f = fastpool.global_pool(np.asfortranarray(x[:, None, :]), method,
                                             axes=(1, 2), **kw)
                    assert c.tobytes() == f.tobytes(), (name, method)
