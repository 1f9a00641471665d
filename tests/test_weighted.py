"""Correctness of the weighted and random family (docs/semantics.md section 9):
lp_pool, soft_pool, stochastic_pool, mixed_pool, avgmax_pool, catavgmax_pool,
weighted_pool, lip_pool, dpp_pool, blur_pool, maxblur_pool and generic_pool.

Oracles:
* tests/reference_weighted.py, a slow per-window reference built on the geometry of
  tests/reference.py, on randomized shapes, axes, strides, padding, dilation,
  ceil_mode, modes, dtypes, layouts, workers, nan_policy, nodata and outputs.  It
  evaluates each formula literally in float64 in the window's C order and returns an
  error bound per element; floats are compared within that bound plus one unit of
  the output dtype, integers within 1 (+ the bound) of the reference (rounding a
  float64 value can land on the other side of .5), selections exactly;
* PyTorch's lp_pool1d/2d/3d;
* a direct NumPy convolution (np.pad + kernel sums) for blur_pool;
* scipy.ndimage.generic_filter (same LowLevelCallable) for generic_pool;
* identities with max_pool, min_pool, avg_pool, sum_pool;
* statistics of the random stream (deterministic seeds, 5-sigma bounds).
"""

import ctypes
import math

import numpy as np
import pytest
import scipy
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool
from reference import (
    ALL_DTYPES,
    LAYOUTS,
    axis_windows,
    cast_result,
    examples,
    output_length,
    random_array,
    relayout,
)
from reference_weighted import (
    GOLDEN,
    binomial,
    ref_blur,
    ref_catavgmax,
    ref_family,
    ref_maxblur,
    result_dtype,
    seed_key,
    splitmix64,
    stream_bits,
    uniform,
    uniforms,
)
from strategies import pool_case

GEO = ("stride", "padding", "dilation", "ceil_mode", "mode", "axes")
SMALL_DIMS = {1: 9, 2: 6, 3: 4, 4: 3}


# ---------------------------------------------------------------------------
# calling fastpool


def fp(method, x, size, params, **kw):
    """Call fastpool's function for ``method`` with its own ``params``."""
    p = {k: v for k, v in params.items() if not k.startswith("_")}
    if method == "lp":
        return fastpool.lp_pool(x, p.pop("p"), size, **p, **kw)
    if method == "weighted":
        return fastpool.weighted_pool(x, p.pop("weights"), size, **p, **kw)
    if method == "lip":
        return fastpool.lip_pool(x, p.pop("logits"), size, **p, **kw)
    if method == "generic":
        return fastpool.generic_pool(x, p.pop("function"), size, **p, **kw)
    return getattr(fastpool, f"{method}_pool")(x, size, **p, **kw)


def ref_params(method, params):
    """fastpool's parameters -> the reference's (the seed becomes the stream key)."""
    p = dict(params)
    key = p.pop("_key", None)
    seed = p.pop("seed", None)
    if key is None and seed is not None:
        assert not isinstance(seed, np.random.Generator), "pass _key with a Generator"
        key = seed_key(seed)
    return p, key


# ---------------------------------------------------------------------------
# comparing with the reference


def _one(value):
    a = np.empty(1, dtype=object)
    a[0] = value
    return a


def _cast(value, dtype):
    return cast_result(_one(value), dtype)[0].item()


def _ulp(dtype, v):
    with np.errstate(over="ignore"):
        return float(np.spacing(np.abs(np.array(v, dtype=dtype))))


def assert_matches(res, values, errs, out_dtype, *, note=""):
    """``res`` (fastpool) against the reference ``(values, errs)``: shape, dtype, NaN
    positions, exact equality where ``errs`` is None, else ``|res - value| <= err +
    1 ulp of the output dtype`` for floats, and within ``err + 1`` (after rounding and
    saturation) for integers and bool."""
    out_dtype = np.dtype(out_dtype)
    assert isinstance(res, np.ndarray), type(res)
    assert res.shape == values.shape, (res.shape, values.shape, note)
    assert res.dtype.newbyteorder("=") == out_dtype, (res.dtype, out_dtype, note)
    if out_dtype.kind == "b":
        assert (np.ascontiguousarray(res).view(np.uint8) <= 1).all(), "invalid bool bytes"
    bad = []
    for idx in np.ndindex(values.shape):
        v, e, r = values[idx], errs[idx], res[idx].item()
        if out_dtype.kind == "f":
            fv = float(v)
            if math.isnan(fv):
                ok = math.isnan(r)
            else:
                exact = _cast(v, out_dtype)
                if e is None or not math.isfinite(fv) or not math.isfinite(exact):
                    ok = r == exact
                else:
                    ok = abs(r - fv) <= e + _ulp(out_dtype, fv)
        else:
            if e is None:
                ok = r == _cast(v, out_dtype)
            else:
                fv = float(v)
                lo, hi = _cast(fv - e - 1, out_dtype), _cast(fv + e + 1, out_dtype)
                ok = lo <= r <= hi
        if not ok:
            bad.append((idx, r, v, e))
    assert not bad, f"{note}: {len(bad)} of {values.size} differ (index, got, expected, " \
                    f"err): {bad[:8]}"


def has_nan(values):
    return any(isinstance(v, float) and math.isnan(v) for v in values.ravel())


def choose_output(draw, in_dtype, values, call_kw, int_dtypes=(np.int64, np.int16)):
    """Draw the default result, an ``output`` dtype or an ``output`` array (set in
    ``call_kw``); returns ``(out_dtype, out_array or None)``."""
    choice = draw(st.sampled_from(["default", "default", "default", "dtype", "array"]))
    out_dtype = result_dtype(in_dtype)
    if choice == "default":
        return out_dtype, None
    options = [np.dtype(np.float64), out_dtype]
    if not (in_dtype.kind in "iu" and in_dtype.itemsize == 8):
        options.append(np.dtype(np.float32))
    if in_dtype.kind in "biu":
        options += [np.dtype(t) for t in int_dtypes]
    out_dtype = draw(st.sampled_from(options))
    if out_dtype.kind in "biu" and has_nan(values):
        out_dtype = np.dtype(np.float64)
    if choice == "dtype":
        call_kw["output"] = out_dtype
        return out_dtype, None
    out = np.full(values.shape, 7, dtype=out_dtype)
    call_kw["output"] = out
    return out_dtype, out


# ---------------------------------------------------------------------------
# data


FLOAT_CVALS = [0.0, 1.0, -2.0, 1.5, 100.0, -0.25, np.nan]


def draw_data(draw, rng, shape, dtype, *, nonneg=False, allow_inf=False, ints_small=False):
    """``(x, cval, nan_policy, nodata)``: data of ``dtype`` (non-negative if
    ``nonneg``), a cval the dtype represents (rounded for integers), a nan_policy and
    sometimes a nodata sentinel (never together with NaN)."""
    dtype = np.dtype(dtype)
    kind = dtype.kind
    small = ints_small or draw(st.booleans())
    if kind == "f":
        nan_frac = draw(st.sampled_from([0.0, 0.0, 0.1, 0.4]))
        inf_frac = draw(st.sampled_from([0.0, 0.0, 0.05])) if allow_inf else 0.0
        x = random_array(rng, shape, dtype, small=small, nan_frac=nan_frac,
                         inf_frac=inf_frac)
    else:
        x = random_array(rng, shape, dtype, small=small)
    if nonneg and kind in "fi":
        x = np.abs(x)
        if kind == "i":
            x[x < 0] = 0  # abs(int min)
        if kind == "f" and draw(st.booleans()):
            x.reshape(-1)[rng.random(x.size) < 0.3] = 0  # zeros, all-zero windows
    nan_policy = draw(st.sampled_from(["propagate", "propagate", "omit", "raise"]))
    if kind == "f":
        cval = draw(st.sampled_from(FLOAT_CVALS))
        if nan_policy == "raise" and math.isnan(cval):
            cval = 0.0
    elif kind == "b":
        cval = draw(st.sampled_from([0, 1, True, 0.0]))
    else:
        info = np.iinfo(dtype)
        cval = draw(st.sampled_from([0, 1, 3, 2.5, int(info.max), -2, -1.5, int(info.min)]))
    if nonneg and (isinstance(cval, (int, float)) and cval < 0 or
                   isinstance(cval, float) and math.isnan(cval)):
        cval = 1.5 if kind == "f" else 2
    nodata = None
    if kind != "b" and draw(st.integers(0, 3)) == 0:
        if kind == "f":
            x[np.isnan(x)] = 0
            if isinstance(cval, float) and math.isnan(cval):
                cval = 0.0
        flat = x.reshape(-1)
        nodata = flat[draw(st.integers(0, flat.size - 1))].item()
        if kind == "f" and not math.isfinite(nodata):
            nodata = 1024.0
        if draw(st.booleans()):
            flat[rng.random(flat.size) < 0.4] = nodata
        if draw(st.booleans()):
            cval = nodata
    return x, cval, nan_policy, nodata


def draw_weights(draw, rng, shape):
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "int32", "uint8", ">f8"]))
    w = rng.integers(0, 5, size=shape).astype(np.float64)
    if draw(st.booleans()):
        w = w + rng.random(shape)  # non-integer weights
    w = w.astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "negative", "sliced"]))
    return relayout(w, layout, rng)


def draw_params(draw, method, rng, shape):
    if method == "lp":
        p = draw(st.sampled_from([1, 2, 3, 1.5, 0.5, 4.0, 2.5, math.inf]))
        return {"p": p, "average": draw(st.booleans())}
    if method == "soft":
        return {"beta": draw(st.sampled_from([1.0, 0.0, -1.0, 2.5, 0.1, math.inf, -math.inf]))}
    if method in ("stochastic", "mixed"):
        s = draw(st.integers(0, 2**63))
        params = {"seed": s}
        if draw(st.booleans()):  # a Generator: the key is its next draw
            params = {"seed": np.random.default_rng(s),
                      "_key": seed_key(np.random.default_rng(s))}
        if method == "stochastic":
            params["training"] = draw(st.booleans())
        else:
            params["alpha"] = draw(st.sampled_from([None, None, 0.0, 1.0, 0.3]))
        return params
    if method == "weighted":
        return {"weights": draw_weights(draw, rng, shape)}
    if method == "lip":
        big = draw(st.sampled_from([3.0, 3.0, 800.0]))
        logits = (rng.standard_normal(shape) * big).astype(
            draw(st.sampled_from(["float64", "float32"])))
        return {"logits": logits}
    if method == "dpp":
        return {"alpha": draw(st.sampled_from([1.0, 0.0, 0.5, 2.0])),
                "lam": draw(st.sampled_from([1.0, 0.0, 0.5, 2.0, 3.0])),
                "asymmetric": draw(st.booleans())}
    if method == "generic":
        which = draw(st.sampled_from(["ptp", "sum", "first", "extra"]))
        if which == "ptp":
            return {"function": np.ptp}
        if which == "sum":
            return {"function": lambda v: v.sum()}
        if which == "first":
            return {"function": lambda v: v[0]}
        return {"function": lambda v, a, b=0.0: a * v.max() + b - v.min(),
                "extra_arguments": (2.0,), "extra_keywords": {"b": 0.5}}
    return {}


METHODS = ("lp", "soft", "stochastic", "mixed", "avgmax", "weighted", "lip", "dpp",
           "generic")


def check_case(method, case, dtype, layout, data, seed):
    draw = data.draw
    rng = np.random.default_rng(seed)
    params = draw_params(draw, method, rng, case["shape"])
    nonneg = method == "stochastic"
    ints_small = False
    if method == "lp":
        p = params["p"]
        if p != math.inf and (p < 1 or (float(p).is_integer() and p % 2 == 1 and p > 1)):
            # odd powers: cancellation in sum(x**p) only with exact (small) values;
            # p < 1: mostly non-negative data (negative values give NaN)
            ints_small = True
            nonneg = draw(st.booleans()) if p < 1 else not draw(st.booleans())
    x, cval, nan_policy, nodata = draw_data(
        draw, rng, case["shape"], dtype, nonneg=nonneg, ints_small=ints_small,
        allow_inf=method in ("lp", "soft", "generic"))
    if method == "lp" and ints_small and x.dtype.kind == "f" and not nonneg:
        x = np.round(x)  # exact cubes
    if method == "lp" and x.dtype.kind == "f":
        # -inf ** p: C's pow (and PyTorch) give +-inf, section 9's "a negative x_i with
        # a non-integer p gives NaN" gives NaN -- ambiguous, left out
        x[np.isneginf(x)] = np.inf
    kw = {k: case[k] for k in GEO}
    kw.update(cval=cval, nan_policy=nan_policy, nodata=nodata)
    call_kw = dict(kw, workers=draw(st.sampled_from([None, 1, 2, 3])))
    xin = relayout(x, layout, rng)

    if nan_policy == "raise" and x.dtype.kind == "f" and np.isnan(x).any():
        with pytest.raises(ValueError, match="(?i)nan"):
            fp(method, xin, case["size"], params, **call_kw)
        return

    rp, key = ref_params(method, params)
    values, errs = ref_family(x, method, case["size"], key=key, **kw, **rp)
    out_dtype, out_arr = choose_output(draw, x.dtype, values, call_kw)
    before = x.copy()
    if out_dtype.kind in "biu" and has_nan(values):
        with pytest.raises(ValueError, match="(?i)nan"):
            fp(method, xin, case["size"], params, **call_kw)
        return
    res = fp(method, xin, case["size"], params, **call_kw)
    if out_arr is not None:
        assert res is out_arr
    assert_matches(res, values, errs, out_dtype, note=f"{method} {params}")
    np.testing.assert_array_equal(xin, before)  # the input is not modified


# one test per method, so that each keeps a modest example count
def _make_property_test(method, n):
    @given(case=pool_case(SMALL_DIMS, max_size=3), dtype=st.sampled_from(ALL_DTYPES),
           layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
    @settings(max_examples=examples(n))
    def test(case, dtype, layout, data, seed):
        check_case(method, case, dtype, layout, data, seed)

    test.__name__ = f"test_{method}_matches_reference"
    return test


test_lp_matches_reference = _make_property_test("lp", 400)
test_soft_matches_reference = _make_property_test("soft", 240)
test_stochastic_matches_reference = _make_property_test("stochastic", 400)
test_mixed_matches_reference = _make_property_test("mixed", 300)
test_avgmax_matches_reference = _make_property_test("avgmax", 160)
test_weighted_matches_reference = _make_property_test("weighted", 300)
test_lip_matches_reference = _make_property_test("lip", 240)
test_dpp_matches_reference = _make_property_test("dpp", 300)
test_generic_matches_reference = _make_property_test("generic", 160)


# longer rows (vectorised loops, row tails): every method, fewer examples
@given(case=pool_case({1: 200, 2: 30, 3: 10}, max_size=4),
       method=st.sampled_from(METHODS), dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(100))
def test_medium_arrays_match_reference(case, method, dtype, layout, data, seed):
    check_case(method, case, dtype, layout, data, seed)


# catavgmax, blur and maxblur: their own geometry / arguments


@given(case=pool_case(SMALL_DIMS, max_size=3), dtype=st.sampled_from(ALL_DTYPES),
       layout=st.sampled_from(LAYOUTS), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(100))
def test_catavgmax_matches_reference(case, dtype, layout, data, seed):
    draw = data.draw
    rng = np.random.default_rng(seed)
    x, cval, nan_policy, nodata = draw_data(draw, rng, case["shape"], dtype)
    if nan_policy == "raise":
        nan_policy = "propagate"
    kw = {k: case[k] for k in GEO}
    kw.update(cval=cval, nan_policy=nan_policy, nodata=nodata)
    ndim = x.ndim
    axes = case["axes"]
    pooled = set(range(ndim)) if axes is None else {a % ndim for a in np.atleast_1d(axes)}
    free = [a for a in range(ndim) if a not in pooled]
    axis = None
    if free and draw(st.booleans()):
        axis = draw(st.sampled_from(free))
        if draw(st.booleans()):
            axis -= ndim
    values, errs = ref_catavgmax(x, case["size"], axis=axis, **kw)
    call_kw = dict(kw, workers=draw(st.sampled_from([None, 1, 2])))
    out_dtype = result_dtype(x.dtype)
    if draw(st.booleans()) and not (out_dtype.kind in "biu" and has_nan(values)):
        out = np.zeros(values.shape, out_dtype)
        call_kw["output"] = out
    res = fastpool.catavgmax_pool(relayout(x, layout, rng), case["size"], axis=axis,
                                  **call_kw)
    if "output" in call_kw:
        assert res is call_kw["output"]
    assert_matches(res, values, errs, out_dtype, note=f"catavgmax axis={axis}")


@given(data=st.data(), dtype=st.sampled_from(ALL_DTYPES), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_blur_and_maxblur_match_reference(data, dtype, layout, seed):
    draw = data.draw
    rng = np.random.default_rng(seed)
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, {1: 12, 2: 7, 3: 5}[ndim])) for _ in range(ndim))
    if draw(st.booleans()):
        axes = None
        m = ndim
    else:
        axes = tuple(sorted(draw(st.lists(st.integers(0, ndim - 1), min_size=1,
                                          max_size=ndim, unique=True))))
        m = len(axes)
    order = draw(st.integers(1, 6 if m == 1 else 3))
    factor = draw(st.integers(1, 3))
    maxblur = draw(st.booleans())
    size = draw(st.integers(1, 3))
    pooled = range(ndim) if axes is None else axes
    for ax in pooled:
        n = shape[ax] - size + 1 if maxblur else shape[ax]
        assume(n >= 1 and output_length(n, order + 1, factor, order // 2, 1, False) >= 1)
    x, cval, nan_policy, nodata = draw_data(draw, rng, shape, dtype)
    mode = draw(st.sampled_from([None, "reflect", "constant", "nearest", "mirror", "wrap",
                                 "ignore"]))
    kw = dict(cval=cval, nan_policy=nan_policy, nodata=nodata, axes=axes)
    if mode is not None:
        kw["mode"] = mode
    call_kw = dict(kw, workers=draw(st.sampled_from([None, 1, 2])))
    xin = relayout(x, layout, rng)
    f = fastpool.maxblur_pool if maxblur else fastpool.blur_pool
    if maxblur:
        call_kw["size"] = size
    if nan_policy == "raise" and x.dtype.kind == "f" and np.isnan(x).any():
        with pytest.raises(ValueError, match="(?i)nan"):
            f(xin, factor, order=order, **call_kw)
        return
    try:
        if maxblur:
            values, errs = ref_maxblur(x, factor, size=size, order=order, **kw)
        else:
            values, errs = ref_blur(x, factor, order=order, **kw)
    except Exception as exc:  # e.g. 'ignore' windows of padding only
        assume(not type(exc).__name__ == "EmptyWindow")
        raise
    out_dtype, out_arr = choose_output(draw, x.dtype, values, call_kw)
    if out_dtype.kind in "biu" and has_nan(values):
        with pytest.raises(ValueError, match="(?i)nan"):
            f(xin, factor, order=order, **call_kw)
        return
    res = f(xin, factor, order=order, **call_kw)
    if out_arr is not None:
        assert res is out_arr
    assert_matches(res, values, errs, out_dtype,
                   note=f"{'maxblur' if maxblur else 'blur'} order={order} factor={factor}")


# ---------------------------------------------------------------------------
# the reference checked on its own (no fastpool)


def test_reference_splitmix64_known_values():
    # the first outputs of the standard splitmix64 generator seeded with 0
    assert [stream_bits(0, i) for i in range(3)] == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert splitmix64(GOLDEN) == 0xE220A8397B1DCDAF
    key = seed_key(7)
    assert key == int(np.random.SeedSequence(7).generate_state(1, np.uint64)[0])
    u = uniforms(key, (3, 4))
    assert ((u >= 0) & (u < 1)).all()
    assert u[1, 2] == uniform(key, 6)
    # the state wraps mod 2**64
    assert stream_bits(2**64 - 1, 0) == splitmix64((GOLDEN - 1) % 2**64)


def test_reference_seed_key_generator_advances():
    g = np.random.default_rng(3)
    k1, k2 = seed_key(g), seed_key(g)
    h = np.random.default_rng(3)
    assert k1 == int(h.integers(0, 2**64, dtype=np.uint64)) != k2


def test_reference_hand_examples():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    v, _ = ref_family(x, "lp", 2, p=2)
    np.testing.assert_allclose(v.astype(float), [math.sqrt(5), 5.0])
    v, _ = ref_family(x, "lp", 2, p=2, average=True)
    np.testing.assert_allclose(v.astype(float), [math.sqrt(2.5), math.sqrt(12.5)])
    v, _ = ref_family(np.array([-1.0, 2.0, -3.0, 1.0]), "lp", 2, p=3)
    assert v[0] == pytest.approx(7 ** (1 / 3)) and math.isnan(v[1])  # pow(-26, 1/3)
    v, _ = ref_family(np.array([-1.0, 2.0]), "lp", 2, p=1.5)
    assert math.isnan(v[0])
    v, _ = ref_family(np.array([-1.0, -2.0]), "lp", 2, p=1)
    assert v[0] == -3.0  # a root of 1 keeps the sign
    v, _ = ref_family(x, "soft", 4, beta=1.0)
    assert v[0] == pytest.approx((np.exp(x) * x).sum() / np.exp(x).sum())
    v, _ = ref_family(np.array([1000.0, -1000.0, 999.0]), "soft", 3)
    assert v[0] == pytest.approx((1000 + 999 * math.exp(-1)) / (1 + math.exp(-1)))
    v, _ = ref_family(x, "weighted", 2, weights=np.array([0.0, 1.0, 3.0, 1.0]))
    assert list(v) == [2.0, 3.25]
    v, _ = ref_family(x, "weighted", 2, weights=np.array([0.0, 0.0, 1.0, 1.0]))
    assert math.isnan(v[0]) and v[1] == 3.5
    v, _ = ref_family(x, "lip", 4, logits=np.log(np.array([1.0, 2.0, 3.0, 4.0])))
    assert v[0] == pytest.approx(3.0)
    # dpp: mean 2.5, d = -1.5 -.5 .5 1.5, w = 1 + sqrt(d^2 + 1e-6)
    d = x - 2.5
    w = 1 + np.sqrt(d * d + 1e-6)
    v, _ = ref_family(np.array([1.0, 2.0, 3.0, 10.0]), "dpp", 4, lam=2.0, alpha=0.0)
    d2 = np.array([1.0, 2.0, 3.0, 10.0]) - 4.0
    w2 = d2 * d2 + 1e-6
    assert v[0] == pytest.approx((w2 * [1, 2, 3, 10]).sum() / w2.sum())
    v, _ = ref_family(x, "dpp", 4)
    assert v[0] == pytest.approx((w * x).sum() / w.sum())
    v, _ = ref_family(x, "dpp", 4, asymmetric=True)
    wa = 1 + np.sqrt(np.maximum(d, 0) ** 2 + 1e-6)
    assert v[0] == pytest.approx((wa * x).sum() / wa.sum())
    # blur: [1, 2, 1] / 4, reflect padding
    v, _ = ref_blur(np.array([0.0, 4.0, 8.0, 4.0, 0.0]))
    np.testing.assert_allclose(v.astype(float), [1.0, 6.0, 1.0])
    v, _ = ref_blur(np.arange(5.0), mode="constant", cval=4.0)
    np.testing.assert_allclose(v.astype(float), [1.25, 2.0, 3.75])
    assert binomial(4) == [1, 4, 6, 4, 1]
    # stochastic: thresholds from u
    key = seed_key(11)
    u = uniform(key, 0)
    v, e = ref_family(x, "stochastic", 4, key=key)
    cum = np.cumsum(x)
    assert v[0] == x[np.argmax(cum > u * 10)] and e[0] is None
    v, _ = ref_family(np.zeros(4), "stochastic", 4, key=key)
    assert v[0] == 0
    v, _ = ref_family(x, "stochastic", 4, training=False)
    assert v[0] == 3.0  # 30 / 10
    v, _ = ref_family(np.array([1, 2, 3, 4], np.uint8), "mixed", 4, alpha=0.25)
    assert v[0] == 0.25 * 4 + 0.75 * 2.5
    v, _ = ref_family(x, "generic", 2, function=np.ptp)
    assert list(v) == [1.0, 1.0]
    # weights of cval and extension samples: the nearest / copied cell
    w = np.array([1.0, 0.0, 0.0, 3.0])
    v, _ = ref_family(x, "weighted", 3, stride=3, padding=1, mode="constant", cval=9.0,
                      weights=w)
    # [cval (w of cell 0 = 1), 1 (w 1), 2 (w 0)], [3 (w 0), 4 (w 3), cval (w of cell 3)]
    assert v[0] == (9.0 + 1.0) / 2 and v[1] == (3 * 4 + 3 * 9) / 6
    v, _ = ref_family(x, "weighted", 3, stride=3, padding=1, mode="wrap", weights=w)
    # [4 (cell 3, w 3), 1 (w 1), 2 (w 0)], [3 (w 0), 4 (w 3), 1 (cell 0, w 1)]
    assert v[0] == (3 * 4 + 1) / 4 and v[1] == (3 * 4 + 1) / 4


def test_reference_offsets_match_axis_windows():
    # the offsets the reference adds are the window positions of reference.axis_windows
    from reference_weighted import _axis_offsets
    for n in range(1, 7):
        for k in range(1, 4):
            for s in range(1, 3):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            for mode in ("ignore", "constant", "reflect"):
                                if output_length(n, k, s, p, d, ceil) < 1:
                                    continue
                                w = axis_windows(n, k, s, p, d, ceil, mode)
                                o = _axis_offsets(n, k, s, p, d, len(w), mode)
                                for i, (wi, oi) in enumerate(zip(w, o)):
                                    assert len(wi) == len(oi)
                                    for (kind, idx), j in zip(wi, oi):
                                        pos = i * s - p + j * d
                                        if 0 <= pos < n:
                                            assert kind == "input" and idx == pos


# ---------------------------------------------------------------------------
# PyTorch oracle for lp_pool

TORCH_LP = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}


def window_counts(shape, k, s, ceil, axes):
    """Number of samples in each window (no padding, 'ignore'), result-shaped."""
    counts = np.ones([1] * len(shape), dtype=np.int64)
    for ax, kk, ss in zip(axes, k, s):
        lens = np.array([len(w) for w in axis_windows(shape[ax], kk, ss, 0, 1, ceil,
                                                      "ignore")])
        b = [1] * len(shape)
        b[ax] = -1
        counts = counts * lens.reshape(b)
    return counts


def test_torch_lp_pool_partial_windows_are_rescaled():
    """What PyTorch does on ceil_mode's partial windows: lp_pool*d is
    ``avg_pool(x**p) * prod(kernel_size)`` (then the root), and avg_pool with
    ceil_mode divides a partial window by the number of elements it holds, so a
    partial window of n of K elements gives ``(sum * K / n) ** (1/p)``, not the sum.
    fastpool's lp_pool is the true sum over what the window holds (section 9)."""
    x = torch.arange(1.0, 6.0, dtype=torch.float64)[None, None]
    t = F.lp_pool1d(x, 2, 2, ceil_mode=True)[0, 0].numpy()
    np.testing.assert_allclose(t, np.sqrt([1 + 4, 9 + 16, 25 * 2 / 1]))
    got = fastpool.lp_pool(x.numpy(), 2, 2, ceil_mode=True, axes=-1)[0, 0]
    np.testing.assert_allclose(got, np.sqrt([5.0, 25.0, 25.0]), rtol=1e-15)
    # p = inf: torch takes max(|x|), fastpool max(x)
    y = np.array([[[-5.0, 1.0, -0.5, -2.0]]])
    np.testing.assert_array_equal(F.lp_pool1d(torch.from_numpy(y), math.inf, 2).numpy(),
                                  [[[5.0, 2.0]]])
    np.testing.assert_array_equal(fastpool.lp_pool(y, math.inf, 2, axes=-1), [[[1.0, -0.5]]])


@given(data=st.data(), p=st.sampled_from([1, 2, 3, 1.5, 2.5, math.inf]),
       dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(150))
def test_lp_pool_matches_torch(data, p, dtype, seed):
    """Full windows: equal.  ceil_mode's partial windows of n < K samples: PyTorch gives
    ``(K/n * sum) ** (1/p)`` (see the test above), i.e. fastpool's value times
    ``(K/n) ** (1/p)``.  Signed data only for p in (1, 2) (PyTorch and fastpool agree on
    NaN for a negative value with p=1.5 too, but cancellation in sum(x**3) makes the
    comparison ill-conditioned); p=inf only on non-negative data (PyTorch: max |x|)."""
    draw = data.draw
    nd = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, {1: 12, 2: 8, 3: 5}[nd])) for _ in range(nd))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    ceil = draw(st.booleans())
    assume(all(output_length(n, kk, ss, 0, 1, ceil) >= 1 for n, kk, ss in zip(spatial, k, s)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    if p not in (1, 2) or draw(st.booleans()):
        x = np.abs(x)
    x = x.astype(dtype)
    axes = tuple(range(2, 2 + nd))
    tk, ts = (k[0], s[0]) if nd == 1 else (k, s)  # lp_pool1d multiplies by kernel_size
    try:
        t = TORCH_LP[nd](torch.from_numpy(x.astype(np.float64)), p, tk, ts, ceil).numpy()
    except RuntimeError:  # PyTorch refuses a kernel larger than the input
        assume(False)
    got = fastpool.lp_pool(x, p, k, s, ceil_mode=ceil, axes=axes)
    assert got.dtype == x.dtype and got.shape == t.shape
    K = int(np.prod(k))
    n = np.broadcast_to(window_counts(x.shape, k, s, ceil, axes), got.shape)
    scaled = got.astype(np.float64) * (K / n) ** (1.0 / p) if p != math.inf \
        else got.astype(np.float64)
    rtol = 1e-12 if dtype == "float64" else 3e-7
    scale = np.abs(x).max() * K
    np.testing.assert_allclose(scaled, t, rtol=rtol, atol=rtol * scale, equal_nan=True)
    full = n == K
    np.testing.assert_allclose(got[full], t[full].astype(dtype), rtol=rtol,
                               atol=rtol * scale, equal_nan=True)


# ---------------------------------------------------------------------------
# identities

ID_CASES = [
    dict(size=2),
    dict(size=3, stride=2, padding=1),
    dict(size=3, stride=1, padding=1, mode="reflect"),
    dict(size=(2, 3), stride=(1, 2), padding=(1, 1), mode="constant", cval=1.5),
    dict(size=2, ceil_mode=True, padding=1),
    dict(size=3, dilation=2, mode="wrap", padding=1),
    dict(size=(3, 2), axes=(1, 2), ceil_mode=True),
]


def _id_arrays():
    rng = np.random.default_rng(2024)
    out = []
    for dtype in ("float64", "float32", "float16"):
        x = random_array(rng, (7, 9, 4), dtype)
        out.append(x)
    xn = random_array(rng, (7, 9, 4), "float64", nan_frac=0.1)
    out.append(xn)
    for dtype in ("int16", "uint8", "int64"):
        out.append(random_array(rng, (7, 9, 4), dtype))
    return out


ID_ARRAYS = _id_arrays()


def _geo(case, ndim):
    kw = dict(case)
    kw.setdefault("axes", (0, 1))
    return kw


def _close(a, b, dtype, note=""):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, note
    if np.dtype(dtype).kind == "f":
        rtol = 1e-12 if np.dtype(dtype).itemsize == 8 else 2.5e-7
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                                   atol=rtol * 16, equal_nan=True, err_msg=note)
    else:
        assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0) <= 1, note


@pytest.mark.parametrize("case", ID_CASES)
@pytest.mark.parametrize("xi", range(len(ID_ARRAYS)))
def test_identities_with_basic_pools(case, xi):
    x = ID_ARRAYS[xi]
    kw = _geo(case, x.ndim)
    size = kw.pop("size")
    mx = fastpool.max_pool(x, size, **kw)
    mn = fastpool.min_pool(x, size, **kw)
    avg = fastpool.avg_pool(x, size, **kw)
    dt = mx.dtype
    # mixed: alpha=1 is max, alpha=0 is the mean
    np.testing.assert_array_equal(fastpool.mixed_pool(x, size, alpha=1.0, **kw), mx)
    _close(fastpool.mixed_pool(x, size, alpha=0.0, **kw), avg, dt, "mixed alpha=0")
    if dt.kind in "iu":  # integer means are exact; moderate values: float64 agrees
        np.testing.assert_array_equal(fastpool.mixed_pool(x, size, alpha=0.0, **kw), avg)
    # soft: beta=0 is the mean, +-inf are max and min
    _close(fastpool.soft_pool(x, size, beta=0.0, **kw), avg, dt, "soft beta=0")
    np.testing.assert_array_equal(fastpool.soft_pool(x, size, beta=math.inf, **kw), mx)
    np.testing.assert_array_equal(fastpool.soft_pool(x, size, beta=-math.inf, **kw), mn)
    # lp: p=inf is max for both forms; p=1 on non-negative data is sum / mean
    np.testing.assert_array_equal(fastpool.lp_pool(x, math.inf, size, **kw), mx)
    np.testing.assert_array_equal(fastpool.lp_pool(x, math.inf, size, average=True, **kw), mx)
    xp = np.abs(x) if x.dtype.kind != "u" else x
    _close(fastpool.lp_pool(xp, 1, size, average=True, **kw),
           fastpool.avg_pool(xp, size, **kw), dt, "lp p=1 average")
    if x.dtype.kind == "f":
        _close(fastpool.lp_pool(xp, 1, size, **kw), fastpool.sum_pool(xp, size, **kw), dt,
               "lp p=1")
    # weighted with equal weights, lip with equal logits, dpp with lam=0: the mean
    ones = np.ones(x.shape)
    _close(fastpool.weighted_pool(x, ones, size, **kw), avg, dt, "weighted ones")
    _close(fastpool.weighted_pool(x, np.full(x.shape, 3, np.uint8), size, **kw), avg, dt,
           "weighted threes")
    _close(fastpool.lip_pool(x, np.zeros(x.shape), size, **kw), avg, dt, "lip zeros")
    _close(fastpool.lip_pool(x, np.full(x.shape, 700.0), size, **kw), avg, dt, "lip 700")
    _close(fastpool.dpp_pool(x, size, lam=0.0, **kw), avg, dt, "dpp lam=0")
    # avgmax is the mean of avg and max; catavgmax stacks them
    _close(fastpool.avgmax_pool(x, size, **kw),
           0.5 * (avg.astype(np.float64) + mx.astype(np.float64)), dt, "avgmax")
    # (the max half exactly; the avg half is avg_pool's value -- exactly for integers,
    # within rounding for floats: section 9 asks for a C-order float64 sum, and
    # avg_pool's float sums may be ordered otherwise)
    cat = fastpool.catavgmax_pool(x, size, **kw)
    assert cat.dtype == dt and cat.shape == (2,) + mx.shape
    np.testing.assert_array_equal(cat[1], mx)
    _check_avg_half(cat[0], avg, "catavgmax")
    free = [a for a in range(x.ndim) if a not in {a % x.ndim for a in kw["axes"]}][0]
    cat = fastpool.catavgmax_pool(x, size, axis=free, **kw)
    c = mx.shape[free]
    assert cat.dtype == dt and cat.shape == tuple(
        2 * n if a == free else n for a, n in enumerate(mx.shape))
    np.testing.assert_array_equal(np.take(cat, range(c, 2 * c), axis=free), mx)
    _check_avg_half(np.take(cat, range(c), axis=free), avg, f"catavgmax axis={free}")
    cat2 = fastpool.catavgmax_pool(x, size, axis=free - x.ndim, **kw)
    np.testing.assert_array_equal(cat2, cat)


def _check_avg_half(got, avg, note):
    if avg.dtype.kind == "f":
        _close(got, avg, avg.dtype, note)
    else:
        np.testing.assert_array_equal(got, avg, err_msg=note)


def test_weights_of_padded_samples():
    """A cval sample takes the weight of the nearest input cell, an extension-mode
    sample the weight of the cell it copies; blur_pool's weights belong to the window
    positions (an 'ignore' position drops its kernel weight)."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 0.0, 0.0, 3.0])
    kw = dict(stride=3, padding=1)
    # [cval (w 1), 1 (w 1), 2 (w 0)], [3 (w 0), 4 (w 3), cval (w 3)]
    np.testing.assert_allclose(
        fastpool.weighted_pool(x, w, 3, mode="constant", cval=9.0, **kw),
        [(9.0 + 1.0) / 2, (12.0 + 27.0) / 6], rtol=1e-15)
    # [4 (cell 3, w 3), 1 (w 1), 2 (w 0)], [3 (w 0), 4 (w 3), 1 (cell 0, w 1)]
    np.testing.assert_allclose(fastpool.weighted_pool(x, w, 3, mode="wrap", **kw),
                               [13.0 / 4, 13.0 / 4], rtol=1e-15)
    # reflect: [1 (cell 0, w 1), 1, 2], [3, 4, 4 (cell 3, w 3)]
    np.testing.assert_allclose(fastpool.weighted_pool(x, w, 3, mode="reflect", **kw),
                               [1.0, 4.0], rtol=1e-15)
    # 'ignore': [1 (w 1), 2 (w 0)], [3 (w 0), 4 (w 3)]
    np.testing.assert_allclose(fastpool.weighted_pool(x, w, 3, **kw), [1.0, 4.0], rtol=1e-15)
    logits = np.log(np.array([1.0, 2.0, 3.0, 4.0]))
    # lip: cval samples with the nearest cell's logit -> weights [1, 1, 2], [3, 4, 4]
    np.testing.assert_allclose(
        fastpool.lip_pool(x, logits, 3, mode="constant", cval=9.0, **kw),
        [(9 + 1 + 4) / 4, (9 + 16 + 36) / 11], rtol=1e-14)
    # blur, 'ignore': window 0 holds positions 0, 1 with kernel weights 2, 1
    np.testing.assert_allclose(
        fastpool.blur_pool(np.array([0.0, 4.0, 8.0, 4.0, 0.0]), mode="ignore"),
        [4.0 / 3, 6.0, 4.0 / 3], rtol=1e-15)
    np.testing.assert_allclose(
        fastpool.blur_pool(np.array([0.0, 4.0, 8.0, 4.0, 0.0]), mode="constant", cval=4.0),
        [2.0, 6.0, 2.0], rtol=1e-15)
    # the weights and logits are not modified
    np.testing.assert_array_equal(w, [1.0, 0.0, 0.0, 3.0])


@pytest.mark.parametrize("xi", range(len(ID_ARRAYS)))
def test_lip_is_weighted_with_exp_logits(xi):
    x = ID_ARRAYS[xi]
    rng = np.random.default_rng(xi)
    logits = rng.standard_normal(x.shape) * 2
    for kw in (dict(size=2), dict(size=3, stride=2, padding=1, mode="nearest")):
        a = fastpool.lip_pool(x, logits, axes=(0, 1), **kw)
        b = fastpool.weighted_pool(x, np.exp(logits), axes=(0, 1), **kw)
        _close(a, b, a.dtype, "lip vs weighted")


def _numpy_blur_2d(x, factor, order, mode, cval):
    """Direct 2-D blur: pad with NumPy (scipy's mode names mapped to np.pad's), then for
    every output the kernel-weighted sum of the window over the kernel's sum."""
    b = np.array(binomial(order), dtype=np.float64)
    K = np.outer(b, b)
    pad = order // 2
    npmode = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge",
              "wrap": "wrap", "constant": "constant"}[mode]
    extra = {"constant_values": cval} if mode == "constant" else {}
    xp = np.pad(x.astype(np.float64), pad, mode=npmode, **extra)
    k = order + 1
    oh = output_length(x.shape[0], k, factor, pad, 1, False)
    ow = output_length(x.shape[1], k, factor, pad, 1, False)
    out = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[i * factor:i * factor + k, j * factor:j * factor + k]
            out[i, j] = (win * K).sum() / K.sum()
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("factor", [1, 2, 3])
@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_blur_pool_is_numpy_convolution(order, factor, mode):
    rng = np.random.default_rng(order * 10 + factor)
    x = rng.standard_normal((13, 16))
    exp = _numpy_blur_2d(x, factor, order, mode, 2.5)
    got = fastpool.blur_pool(x, factor, order=order, mode=mode, cval=2.5)
    np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
    if mode == "reflect":  # the default mode
        np.testing.assert_array_equal(fastpool.blur_pool(x, factor, order=order), got)


def test_blur_pool_defaults_and_integer_input():
    x = np.arange(64, dtype=np.uint8).reshape(8, 8)
    got = fastpool.blur_pool(x)
    assert got.dtype == np.uint8 and got.shape == (4, 4)
    exp = _numpy_blur_2d(x, 2, 2, "reflect", 0)
    # rounded half to even from the float64 value (within 1 for .5 ties in float64)
    assert np.abs(got.astype(np.float64) - exp).max() <= 0.5 + 1e-9
    # a constant image stays constant for every order and mode
    c = np.full((9, 10), 3.25)
    for order in range(1, 7):
        for mode in ("reflect", "constant", "ignore", "wrap"):
            r = fastpool.blur_pool(c, 2, order=order, mode=mode, cval=3.25)
            np.testing.assert_allclose(r, 3.25, rtol=1e-15)
    # blur_pool is weighted pooling with kernel weights on the window positions: with
    # stride 1 on the interior of a 1-D signal it is np.convolve
    s = np.random.default_rng(1).standard_normal(40)
    for order in range(1, 7):
        b = np.array(binomial(order), float)
        full = np.convolve(s, b[::-1] / b.sum(), mode="valid")
        got = fastpool.blur_pool(s, 1, order=order)
        pad = order // 2
        np.testing.assert_allclose(got[pad:pad + full.size], full, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32", "uint8", "int32"])
def test_maxblur_is_blur_of_max(size, order, dtype):
    rng = np.random.default_rng(size * 7 + order)
    x = random_array(rng, (3, 11, 12), dtype)
    for factor in (1, 2, 3):
        for mode in ("reflect", "constant", "ignore"):
            kw = dict(order=order, mode=mode, cval=2, axes=(1, 2))
            mx = fastpool.max_pool(x, size, stride=1, axes=(1, 2))
            exp = fastpool.blur_pool(mx, factor, **kw)
            got = fastpool.maxblur_pool(x, factor, size=size, **kw)
            assert got.dtype == exp.dtype
            np.testing.assert_array_equal(got, exp)
    # default size=2, order=2, factor=2, reflect
    np.testing.assert_array_equal(
        fastpool.maxblur_pool(x, axes=(1, 2)),
        fastpool.blur_pool(fastpool.max_pool(x, 2, stride=1, axes=(1, 2)), axes=(1, 2)))


# ---------------------------------------------------------------------------
# stochastic and mixed: the random stream


def test_stochastic_returns_window_values_and_never_zero():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(60, 80)).astype(np.float64)
    for seed in range(5):
        r = fastpool.stochastic_pool(x, (2, 4), seed=seed)
        blocks = x.reshape(30, 2, 20, 4).transpose(0, 2, 1, 3).reshape(30, 20, 8)
        assert ((blocks == r[..., None]).any(axis=-1)).all()
        allzero = (blocks == 0).all(axis=-1)
        assert (r[allzero] == 0).all()
        assert (r[~allzero] > 0).all()  # a zero is never chosen
    # exactly one value per window: the chosen value, with its exact bits
    u = np.array([[2**60 + 1, 3, 2**60 + 7, 0]], dtype=np.uint64)
    r = fastpool.stochastic_pool(u, (1, 4), seed=1)
    assert r.dtype == np.uint64 and int(r[0, 0]) in (2**60 + 1, 3, 2**60 + 7)


def _binomial_ok(count, n, p, sigmas=5.0):
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sigmas * sd + 1


def test_stochastic_frequencies_many_windows():
    """One call, 40000 windows [1, 2, 3, 4]: each value's frequency is x / sum(x)."""
    row = np.array([1.0, 2.0, 3.0, 4.0])
    x = np.tile(row, (40000, 1))
    r = fastpool.stochastic_pool(x, (1, 4), seed=20240531)
    n = r.size
    for v in row:
        assert _binomial_ok(int((r == v).sum()), n, v / 10), (v, (r == v).sum())
    # with a zero and duplicated values: positions weighted by value
    x2 = np.tile(np.array([0.0, 5.0, 5.0, 0.0, 10.0], dtype=np.float32), (30000, 1))
    r2 = fastpool.stochastic_pool(x2, (1, 5), seed=7)
    assert set(np.unique(r2)) <= {5.0, 10.0}
    assert _binomial_ok(int((r2 == 10).sum()), r2.size, 0.5)


def test_stochastic_frequencies_many_seeds():
    """One 2x2 window, 4000 seeds: a chi-square test of the choice frequencies."""
    x = np.array([[1, 3], [0, 6]], dtype=np.uint16)
    counts = {1: 0, 3: 0, 6: 0}
    n = 4000
    for seed in range(n):
        v = int(fastpool.stochastic_pool(x, 2, seed=seed)[0, 0])
        counts[v] += 1
    probs = {1: 0.1, 3: 0.3, 6: 0.6}
    chi2 = sum((counts[k] - n * p) ** 2 / (n * p) for k, p in probs.items())
    assert chi2 < 30.0, counts  # 2 degrees of freedom: P(chi2 > 30) ~ 3e-7
    for k, p in probs.items():
        assert _binomial_ok(counts[k], n, p), counts


def test_stochastic_matches_stream_exactly_large():
    """The documented stream, on an array big enough to use threads."""
    rng = np.random.default_rng(5)
    x = rng.random((256, 300)).astype(np.float32)
    seed = 123456789
    r = fastpool.stochastic_pool(x, 2, seed=seed)
    key = seed_key(seed)
    u = uniforms(key, r.shape)
    blocks = x.reshape(128, 2, 150, 2).transpose(0, 2, 1, 3).reshape(128, 150, 4)
    xs = blocks.astype(np.float64)
    s = np.zeros(xs.shape[:2])
    for j in range(4):  # C-order float64 sum, as the reference
        s = s + xs[..., j]
    thr = u * s
    run = np.zeros_like(s)
    chosen = np.full(s.shape, -1)
    for j in range(4):
        run = run + xs[..., j]
        chosen = np.where((chosen < 0) & (run > thr), j, chosen)
    exp = np.take_along_axis(blocks, chosen[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(r, exp)


@pytest.mark.parametrize("method", ["stochastic", "mixed"])
def test_random_same_for_workers_layouts_outputs(method):
    rng = np.random.default_rng(9)
    x = rng.random((3, 200, 160)) * 4
    kw = dict(stride=2, padding=1, axes=(1, 2), mode="reflect")
    params = {"seed": 42} if method == "stochastic" else {"seed": 42, "alpha": None}
    base = fp(method, x, 3, params, workers=1, **kw)
    for w in (2, 3, None, -1):
        np.testing.assert_array_equal(fp(method, x, 3, params, workers=w, **kw), base)
    for layout in ("F", "negative", "sliced", "transposed", "bigendian", "readonly"):
        np.testing.assert_array_equal(fp(method, relayout(x, layout, rng), 3, params, **kw),
                                      base)
    out = np.empty(base.shape, np.float64)
    assert fp(method, x, 3, params, output=out, **kw) is out
    np.testing.assert_array_equal(out, base)
    outf = np.empty((base.shape[2], base.shape[1], base.shape[0]), np.float64).T
    fp(method, x, 3, params, output=outf, **kw)
    np.testing.assert_array_equal(outf, base)
    # float32 input: the same choices, in float32
    x32 = x.astype(np.float32)
    r32 = fp(method, x32, 3, params, **kw)
    assert r32.dtype == np.float32
    # another seed gives another result; the same seed the same one
    np.testing.assert_array_equal(fp(method, x, 3, params, **kw), base)
    other = fp(method, x, 3, dict(params, seed=43), **kw)
    assert not np.array_equal(other, base)
    # seed=None: fresh entropy each call
    a = fp(method, x, 3, dict(params, seed=None), **kw)
    b = fp(method, x, 3, dict(params, seed=None), **kw)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("method", ["stochastic", "mixed"])
def test_generator_seed_uses_and_advances(method):
    x = np.random.default_rng(1).random((40, 30)) + 0.1
    params = {"alpha": None} if method == "mixed" else {}
    g = np.random.default_rng(77)
    a = fp(method, x, 2, dict(params, seed=g))
    b = fp(method, x, 2, dict(params, seed=g))
    assert not np.array_equal(a, b)  # the generator advanced
    h = np.random.default_rng(77)
    key1 = int(h.integers(0, 2**64, dtype=np.uint64))
    key2 = int(h.integers(0, 2**64, dtype=np.uint64))
    # exactly one draw per call
    assert int(g.integers(0, 2**64, dtype=np.uint64)) == int(h.integers(0, 2**64,
                                                                        dtype=np.uint64))
    for res, key in ((a, key1), (b, key2)):
        values, errs = ref_family(x, method, 2, key=key, **params)
        assert_matches(res, values, errs, np.float64)
    # an int seed is the SeedSequence key
    c = fp(method, x, 2, dict(params, seed=5))
    values, errs = ref_family(x, method, 2, key=seed_key(5), **params)
    assert_matches(c, values, errs, np.float64)
    np.testing.assert_array_equal(c, fp(method, x, 2, dict(params, seed=np.int64(5))))


def test_stochastic_zero_windows_and_inference():
    x = np.array([[0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 2.0]])
    r = fastpool.stochastic_pool(x, 2, seed=3)
    assert r[0, 0] == 0 and r[0, 1] in (1.0, 3.0, 2.0)
    inf = fastpool.stochastic_pool(x, 2, training=False)
    np.testing.assert_allclose(inf, [[0.0, (1 + 9 + 4) / 6]], rtol=1e-15)
    xi = np.array([[0, 0, 1, 3], [0, 0, 0, 2]], dtype=np.uint8)
    np.testing.assert_array_equal(fastpool.stochastic_pool(xi, 2, training=False),
                                  [[0, 2]])  # 14 / 6 = 2.33 -> 2
    # training=False ignores the seed
    np.testing.assert_array_equal(fastpool.stochastic_pool(x, 2, training=False, seed=1),
                                  fastpool.stochastic_pool(x, 2, training=False, seed=2))


def test_mixed_alpha_none_picks_max_or_mean_by_stream():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 200))
    seed = 99
    r = fastpool.mixed_pool(x, 2, seed=seed)
    mx = fastpool.max_pool(x, 2)
    avg = fastpool.avg_pool(x, 2)
    u = uniforms(seed_key(seed), r.shape)
    np.testing.assert_array_equal(r[u < 0.5], mx[u < 0.5])
    np.testing.assert_allclose(r[u >= 0.5], avg[u >= 0.5], rtol=1e-12, atol=1e-14)
    frac = (u < 0.5).mean()
    assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / u.size)
    # the choice frequency over the windows themselves
    picked_max = (r == mx) & (mx != avg)
    assert _binomial_ok(int(picked_max.sum()), int((mx != avg).sum()), 0.5)


# ---------------------------------------------------------------------------
# overflow, underflow, float16


def test_soft_and_lip_extreme_inputs():
    x = np.array([[1000.0, -1000.0, 999.0, 998.0], [-1000.0, -999.0, -1000.0, -1000.0]])
    r = fastpool.soft_pool(x, (1, 4))
    e = np.exp(np.array([0.0, -1.0, -2.0]))
    exp0 = (1000 * e[0] + 999 * e[1] + 998 * e[2]) / e.sum()
    e1 = np.exp(np.array([-1.0, 0.0, -1.0, -1.0]))
    exp1 = (np.array([-1000.0, -999.0, -1000.0, -1000.0]) * e1).sum() / e1.sum()
    assert np.isfinite(r).all()
    np.testing.assert_allclose(r[:, 0], [exp0, exp1], rtol=1e-13)
    # beta scales the exponent: beta=-1 with the same data is the soft minimum
    rn = fastpool.soft_pool(x, (1, 4), beta=-1.0)
    assert np.isfinite(rn).all() and rn[0, 0] == pytest.approx(-1000.0, rel=1e-12)
    # lip with huge logits
    vals = np.array([[1.0, 2.0, 3.0, 4.0]])
    logits = np.array([[1000.0, 999.0, -1000.0, 1000.0]])
    w = np.exp(logits - 1000.0)
    r = fastpool.lip_pool(vals, logits, (1, 4))
    np.testing.assert_allclose(r, [[(w * vals).sum() / w.sum()]], rtol=1e-13)
    r = fastpool.lip_pool(vals, -logits, (1, 4))
    w = np.exp(-logits - 1000.0)
    np.testing.assert_allclose(r, [[(w * vals).sum() / w.sum()]], rtol=1e-13)
    # float32 and float16 logits/inputs
    r = fastpool.lip_pool(vals.astype(np.float32), logits.astype(np.float32), (1, 4))
    assert r.dtype == np.float32 and np.isfinite(r).all()
    r = fastpool.soft_pool(x.astype(np.float32), (1, 4))
    assert r.dtype == np.float32 and np.isfinite(r).all()
    np.testing.assert_allclose(r[:, 0], [exp0, exp1], rtol=3e-7)
    # float16 input beyond exp's float16/float32 range
    h = np.array([60000.0, -60000.0, 59000.0, 0.0], dtype=np.float16)
    r = fastpool.soft_pool(h, 4)
    assert r.dtype == np.float32 and r[0] == np.float32(60000.0)
    # infinite input gives NaN (inf - inf)
    assert np.isnan(fastpool.soft_pool(np.array([np.inf, 1.0]), 2)[0])
    assert np.isnan(fastpool.soft_pool(np.array([-np.inf, 1.0]), 2)[0])


def test_lp_huge_p_and_float16():
    rng = np.random.default_rng(8)
    x = rng.random((40, 50))  # values in [0, 1): x**200 and its mean stay finite
    for average in (False, True):
        r = fastpool.lp_pool(x, 200, 2, average=average)
        values, errs = ref_family(x, "lp", 2, p=200, average=average)
        assert np.isfinite(r).all()
        assert_matches(r, values, errs, np.float64, note=f"p=200 average={average}")
        # between the mean and the max of the window
        mx = fastpool.max_pool(x, 2)
        assert (r <= mx * (4 ** (1 / 200) if not average else 1) * (1 + 1e-12)).all()
    r = fastpool.lp_pool(x, 1000.0, 2, average=True)
    assert np.isfinite(r).all()
    np.testing.assert_array_less(r, fastpool.max_pool(x, 2) * (1 + 1e-12))
    # float16: computed in float64, returned as float32
    h = (rng.random((6, 8)) * 100).astype(np.float16)
    for p in (1, 2, 3, 2.5):
        r = fastpool.lp_pool(h, p, 2)
        assert r.dtype == np.float32
        values, errs = ref_family(h, "lp", 2, p=p)
        assert_matches(r, values, errs, np.float32, note=f"float16 p={p}")
    # 60000**2 overflows float16 and float32 but not float64
    big = np.array([60000.0, 60000.0], dtype=np.float16)
    np.testing.assert_allclose(fastpool.lp_pool(big, 2, 2), [60000.0 * math.sqrt(2)],
                               rtol=1e-7)
    # negative values: NaN for a non-integer p, a signed root of 1 for p=1
    assert np.isnan(fastpool.lp_pool(np.array([-1.0, 2.0]), 1.5, 2)[0])
    assert fastpool.lp_pool(np.array([-1.0, -2.0]), 1, 2)[0] == -3.0
    assert np.isnan(fastpool.lp_pool(np.array([-2.0, 1.0]), 3, 2)[0])  # pow(-7, 1/3)
    np.testing.assert_allclose(fastpool.lp_pool(np.array([-1.0, 2.0]), 3, 2), [7 ** (1 / 3)])


def test_float16_every_method():
    rng = np.random.default_rng(16)
    h = (rng.random((5, 6)) * 8).astype(np.float16)
    for method, params in (("soft", {"beta": 1.0}), ("avgmax", {}), ("dpp", {}),
                           ("mixed", {"alpha": 0.5}), ("stochastic", {"seed": 1}),
                           ("weighted", {"weights": np.arange(30.0).reshape(5, 6)}),
                           ("lip", {"logits": np.ones((5, 6), np.float16)}),
                           ("generic", {"function": np.ptp})):
        r = fp(method, h, 2, params, padding=1, mode="nearest")
        rp, key = ref_params(method, params)
        values, errs = ref_family(h, method, 2, key=key, padding=1, mode="nearest", **rp)
        assert_matches(r, values, errs, np.float32, note=method)


# ---------------------------------------------------------------------------
# generic_pool


def test_generic_python_callables():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((7, 9))
    kw = dict(stride=2, padding=1, mode="reflect")
    for func in (np.ptp, lambda v: v.sum(), np.median, lambda v: float(v.size)):
        got = fastpool.generic_pool(x, func, 3, **kw)
        values, errs = ref_family(x, "generic", 3, function=func, **kw)
        assert_matches(got, values, errs, np.float64)
    # the values are a new 1-D float64 array of the valid samples, in C order
    seen = []

    def record(v):
        assert isinstance(v, np.ndarray) and v.dtype == np.float64 and v.ndim == 1
        seen.append(v.copy())
        v[:] = -1  # a new array: writing to it changes nothing
        return 0.0

    xi = np.arange(12, dtype=np.int16).reshape(3, 4)
    fastpool.generic_pool(xi, record, 2, padding=1, ceil_mode=True)
    # windows (2 x 3 of them): [0] [1 2] [3] / [4 8] [5 6 9 10] [7 11]; any call order
    expected = [[0.0], [1.0, 2.0], [3.0], [4.0, 8.0], [5.0, 6.0, 9.0, 10.0], [7.0, 11.0]]
    assert sorted(list(s) for s in seen) == sorted(expected)
    np.testing.assert_array_equal(xi, np.arange(12).reshape(3, 4))
    # extra_arguments and extra_keywords
    got = fastpool.generic_pool(x, lambda v, a, b=1.0: a * v.max() - b, 2,
                                extra_arguments=(3.0,), extra_keywords={"b": 0.5})
    np.testing.assert_allclose(got, 3.0 * fastpool.max_pool(x, 2) - 0.5, rtol=1e-15)
    # integer input: the result rounded half to even into the input's dtype
    u8 = np.array([[1, 2, 3, 4]], dtype=np.uint8)
    got = fastpool.generic_pool(u8, np.mean, (1, 2))
    np.testing.assert_array_equal(got, [[2, 4]])  # 1.5 -> 2, 3.5 -> 4
    got = fastpool.generic_pool(u8, lambda v: 1000.0, (1, 2))
    np.testing.assert_array_equal(got, [[255, 255]])  # saturated
    # NaN under 'propagate': no call
    calls = []
    xn = np.array([1.0, np.nan, 3.0, 4.0])
    got = fastpool.generic_pool(xn, lambda v: calls.append(1) or v.sum(), 2)
    assert np.isnan(got[0]) and got[1] == 7.0 and len(calls) == 1
    got = fastpool.generic_pool(xn, np.sum, 2, nan_policy="omit")
    np.testing.assert_array_equal(got, [1.0, 7.0])


def test_generic_exception_propagates():
    class Boom(Exception):
        pass

    def f(v):
        raise Boom("from the callable")

    with pytest.raises(Boom, match="from the callable"):
        fastpool.generic_pool(np.arange(8.0), f, 2)
    with pytest.raises(ZeroDivisionError):
        fastpool.generic_pool(np.arange(8.0), lambda v: 1 / 0, 2)


_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_ssize_t,
                       ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)


def _range_times(values, n, result, user_data):
    """max - min of the window, times the double that user_data points to."""
    scale = ctypes.cast(user_data, ctypes.POINTER(ctypes.c_double))[0] if user_data else 1.0
    vals = [values[i] for i in range(n)]
    result[0] = (max(vals) - min(vals)) * scale
    return 1


def _fail(values, n, result, user_data):
    return 0


_RANGE_CB = _CB(_range_times)
_FAIL_CB = _CB(_fail)
_SCALE = ctypes.c_double(2.5)


def _low_level(cb, data=None, signature="int (double *, npy_intp, double *, void *)"):
    ud = None if data is None else ctypes.cast(ctypes.pointer(data), ctypes.c_void_p)
    return scipy.LowLevelCallable(cb, ud, signature)


def test_generic_low_level_callable():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 30, 40))
    llc = _low_level(_RANGE_CB, _SCALE)
    kw = dict(stride=2, padding=1, mode="mirror", axes=(1, 2))
    got = fastpool.generic_pool(x, llc, 3, **kw)
    py = fastpool.generic_pool(x, lambda v: np.ptp(v) * 2.5, 3, **kw)
    np.testing.assert_array_equal(got, py)
    for w in (1, 2, 3):
        np.testing.assert_array_equal(fastpool.generic_pool(x, llc, 3, workers=w, **kw), got)
    # scipy.ndimage.generic_filter with the same callable, at the pooling positions
    # (window o spans 2o-1 .. 2o+1: the filter centred at 2o)
    filt = ndi.generic_filter(x, llc, size=(1, 3, 3), mode="mirror")
    np.testing.assert_array_equal(got, filt[:, ::2, ::2])
    # no user data
    got1 = fastpool.generic_pool(x, _low_level(_RANGE_CB), 2, axes=(1, 2))
    np.testing.assert_array_equal(got1, fastpool.generic_pool(x, np.ptp, 2, axes=(1, 2)))
    # a return of 0 is an error
    with pytest.raises(RuntimeError):
        fastpool.generic_pool(x, _low_level(_FAIL_CB), 2, axes=(1, 2))


def test_generic_low_level_callable_intptr_signature():
    """scipy.ndimage.generic_filter also accepts the intptr_t spelling of the signature."""
    x = np.random.default_rng(2).standard_normal((8, 10))
    llc = _low_level(_RANGE_CB, _SCALE, "int (double *, intptr_t, double *, void *)")
    np.testing.assert_array_equal(ndi.generic_filter(x, llc, size=2)[1::2, 1::2],
                                  np.ptp(x.reshape(4, 2, 5, 2), axis=(1, 3)) * 2.5)
    np.testing.assert_array_equal(fastpool.generic_pool(x, llc, 2),
                                  np.ptp(x.reshape(4, 2, 5, 2), axis=(1, 3)) * 2.5)


# ---------------------------------------------------------------------------
# threads: bitwise identical for every thread count (arrays large enough to split)


BIG = np.random.default_rng(31).random((2, 180, 200)) * 3


@pytest.mark.parametrize("method, params", [
    ("lp", {"p": 2.5}), ("lp", {"p": 3, "average": True}), ("soft", {"beta": 2.0}),
    ("stochastic", {"seed": 1}), ("stochastic", {"training": False}),
    ("mixed", {"seed": 2}), ("mixed", {"alpha": 0.25}), ("avgmax", {}),
    ("weighted", {"weights": np.random.default_rng(1).random(BIG.shape)}),
    ("lip", {"logits": np.random.default_rng(2).standard_normal(BIG.shape)}),
    ("dpp", {"lam": 2.0, "asymmetric": True}),
])
def test_bitwise_identical_for_every_workers(method, params):
    kw = dict(stride=2, padding=1, mode="reflect", axes=(1, 2))
    base = fp(method, BIG, 3, params, workers=1, **kw)
    for w in (2, 3, -1):
        r = fp(method, BIG, 3, params, workers=w, **kw)
        assert np.array_equal(r.view(np.uint64), base.view(np.uint64)), w
    # and right: a corner of the result against the reference
    rp, key = ref_params(method, params)
    sub = BIG[:1, :12, :14]
    sub_params = {k: (v[:1, :12, :14] if isinstance(v, np.ndarray) else v)
                  for k, v in rp.items()}
    values, errs = ref_family(sub, method, 3, key=key, **kw, **sub_params)
    # windows away from the sub-array's far edges are the big array's windows
    h, w_ = values.shape[1] - 1, values.shape[2] - 1
    if method in ("stochastic", "mixed") and key is not None:
        return  # the counter depends on the result's shape; covered above
    assert_matches(base[:1, :h, :w_], values[:, :h, :w_], errs[:, :h, :w_], np.float64)


def test_blur_bitwise_identical_for_every_workers():
    base = fastpool.blur_pool(BIG, 2, order=4, axes=(1, 2), workers=1)
    for w in (2, 3):
        assert np.array_equal(fastpool.blur_pool(BIG, 2, order=4, axes=(1, 2), workers=w),
                              base)
    base = fastpool.maxblur_pool(BIG, 2, axes=(1, 2), workers=1)
    assert np.array_equal(fastpool.maxblur_pool(BIG, 2, axes=(1, 2), workers=3), base)


# ---------------------------------------------------------------------------
# the portable build (FASTPOOL_SIMD=baseline) gives the same bits


def test_baseline_build_equals_default_build_bitwise(tmp_path):
    import os
    import subprocess
    import sys
    rng = np.random.default_rng(17)
    arrays = {"f64": rng.standard_normal((3, 37, 131)) * 3,
              "f32": (rng.standard_normal((3, 37, 131)) * 3).astype(np.float32),
              "u8": rng.integers(0, 256, (3, 37, 131), dtype=np.uint8),
              "pos": rng.random((3, 37, 131)).astype(np.float32)}
    arrays["f64"][rng.random(arrays["f64"].shape) < 0.02] = np.nan
    arrays["w"] = rng.random((3, 37, 131))
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
    geo = "axes=(1, 2), padding=1, stride=2"
    calls = {
        "lp": f"fastpool.lp_pool(x, 2.5, 3, {geo}, nan_policy='omit')",
        "lp3": "fastpool.lp_pool(u, 3, 2, axes=(1, 2), average=True)",
        "soft": f"fastpool.soft_pool(x, 3, {geo}, beta=1.5, mode='reflect')",
        "sto": f"fastpool.stochastic_pool(p, 3, {geo}, seed=5)",
        "sto_inf": "fastpool.stochastic_pool(p, 2, axes=(1, 2), training=False)",
        "mixed": f"fastpool.mixed_pool(y, 3, {geo}, seed=6)",
        "mixed_a": "fastpool.mixed_pool(u, 2, axes=(1, 2), alpha=0.3)",
        "avgmax": "fastpool.avgmax_pool(y, 2, axes=(1, 2), ceil_mode=True)",
        "cat": "fastpool.catavgmax_pool(u, 2, axes=(1, 2), axis=0)",
        "weighted": f"fastpool.weighted_pool(y, w, 3, {geo}, mode='constant', cval=1.5)",
        "lip": "fastpool.lip_pool(y, w * 5, 2, axes=(1, 2))",
        "dpp": f"fastpool.dpp_pool(y, 3, {geo}, lam=2.0, asymmetric=True)",
        "blur": "fastpool.blur_pool(y, 2, order=4, axes=(1, 2))",
        "blur_u8": "fastpool.blur_pool(u, 3, order=3, axes=(1, 2), mode='constant')",
        "maxblur": "fastpool.maxblur_pool(x, 2, axes=(1, 2), nan_policy='omit')",
    }
    setup = ("x = np.load(f'{d}/f64.npy'); y = np.load(f'{d}/f32.npy'); "
             "u = np.load(f'{d}/u8.npy'); p = np.load(f'{d}/pos.npy'); "
             "w = np.load(f'{d}/w.npy')\n")
    code = ("import numpy as np, fastpool, sys; d = sys.argv[1]\n" + setup
            + "".join(f"np.save(f'{{d}}/out_{m}.npy', {c})\n" for m, c in calls.items()))
    env = dict(os.environ, FASTPOOL_SIMD="baseline")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True)
    ns = {"fastpool": fastpool, "x": arrays["f64"], "y": arrays["f32"], "u": arrays["u8"],
          "p": arrays["pos"], "w": arrays["w"]}
    for m, c in calls.items():
        here = eval(c, ns)
        there = np.load(tmp_path / f"out_{m}.npy")
        assert here.dtype == there.dtype and here.tobytes() == there.tobytes(), m


# ---------------------------------------------------------------------------
# errors

XE = np.arange(24, dtype=np.float64).reshape(4, 6)


@pytest.mark.parametrize("p", [0, -1, -0.5, math.nan, -math.inf])
def test_lp_bad_p(p):
    with pytest.raises(ValueError, match=r"\bp\b"):
        fastpool.lp_pool(XE, p, 2)


def test_lp_non_numeric_p():
    with pytest.raises((TypeError, ValueError), match=r"\bp\b"):
        fastpool.lp_pool(XE, "2", 2)


def test_soft_nan_beta():
    with pytest.raises(ValueError, match="beta"):
        fastpool.soft_pool(XE, 2, beta=math.nan)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan, math.inf])
def test_mixed_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        fastpool.mixed_pool(XE, 2, alpha=alpha)


@pytest.mark.parametrize("name, value", [("alpha", -1.0), ("lam", -0.5), ("alpha", -1e-9)])
def test_dpp_bad_parameters(name, value):
    with pytest.raises(ValueError, match=name):
        fastpool.dpp_pool(XE, 2, **{name: value})


@pytest.mark.parametrize("order", [0, 7, -1])
def test_blur_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        fastpool.blur_pool(XE, 2, order=order)
    with pytest.raises(ValueError, match="order"):
        fastpool.maxblur_pool(XE, 2, order=order)


def test_stochastic_negative_input_or_cval():
    x = XE.copy()
    x[1, 2] = -1.0
    with pytest.raises(ValueError, match="(?i)negative"):
        fastpool.stochastic_pool(x, 2, seed=0)
    with pytest.raises(ValueError, match="(?i)negative"):
        fastpool.stochastic_pool(x, 2, training=False)
    with pytest.raises(ValueError, match="(?i)negative"):
        fastpool.stochastic_pool(np.array([1, -3, 2], np.int8), 1, seed=0)
    with pytest.raises(ValueError, match="cval"):
        fastpool.stochastic_pool(XE, 3, padding=1, mode="constant", cval=-1.0, seed=0)
    # a negative cval that no window reads is not an error under another mode
    fastpool.stochastic_pool(XE, 2, cval=-1.0, seed=0)


@pytest.mark.parametrize("shape", [(4, 5), (6, 4), (24,), (1, 4, 6)])
def test_weights_and_logits_shape(shape):
    with pytest.raises(ValueError, match="weights"):
        fastpool.weighted_pool(XE, np.ones(shape), 2)
    with pytest.raises(ValueError, match="logits"):
        fastpool.lip_pool(XE, np.ones(shape), 2)


def test_generic_not_callable():
    with pytest.raises((TypeError, ValueError), match="function"):
        fastpool.generic_pool(XE, 3, 2)
    with pytest.raises((TypeError, ValueError), match="function"):
        fastpool.generic_pool(XE, "sum", 2)


@pytest.mark.parametrize("axis", [1, -1, 2, 3, -4])
def test_catavgmax_bad_axis(axis):
    x = np.zeros((3, 4, 6))
    with pytest.raises(ValueError, match="axis"):
        fastpool.catavgmax_pool(x, 2, axes=(1, 2), axis=axis)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int64", "float64"])
def test_missing_samples_do_not_make_integer_results_nan(dtype):
    """A missing sample (nodata, an omitted NaN) is not part of the formula: a
    negative nodata with a non-integer p, or a zero weight on a nodata cell, must not
    turn an integer result into NaN (a ValueError)."""
    out = np.int16 if dtype == "float64" else None
    x = np.array([-5, 3, 4, 4] * 20, dtype=dtype)
    np.testing.assert_array_equal(
        fastpool.lp_pool(x, 1.5, 2, nodata=-5, average=True, output=out), [3, 4] * 20)
    np.testing.assert_array_equal(
        fastpool.lp_pool(np.array([-5, 3], dtype), 1.5, 2, nodata=-5, output=out), [3])
    # a window holding only nodata gives nodata, whatever the weight of its cell
    x = np.array([3, -5, 2], dtype=dtype)
    np.testing.assert_array_equal(
        fastpool.weighted_pool(x, np.array([1, 0, 1]), 1, nodata=-5, output=out), [3, -5, 2])
    np.testing.assert_array_equal(
        fastpool.lip_pool(x, np.array([0.0, -1e4, 0.0]), 1, nodata=-5, output=out),
        [3, -5, 2])


def test_nan_into_integer_output():
    x = np.array([[1, 2, 3, 4]], dtype=np.int32)
    with pytest.raises(ValueError, match="(?i)nan"):
        fastpool.weighted_pool(x, np.zeros(x.shape), (1, 2))  # 0/0
    with pytest.raises(ValueError, match="(?i)nan"):
        fastpool.lp_pool(np.array([-1, 2], np.int16), 1.5, 2)


def test_complex_input_rejected():
    with pytest.raises(TypeError, match="complex"):
        fastpool.soft_pool(np.zeros(4, complex), 2)


def test_catavgmax_output_shape():
    x = np.zeros((3, 4, 6))
    assert fastpool.catavgmax_pool(x, 2, axes=(1, 2)).shape == (2, 3, 2, 3)
    assert fastpool.catavgmax_pool(x, 2, axes=(1, 2), axis=0).shape == (6, 2, 3)
    assert fastpool.catavgmax_pool(x, 2, axes=(1, 2), axis=-3).shape == (6, 2, 3)
    with pytest.raises(ValueError, match="output"):
        fastpool.catavgmax_pool(x, 2, axes=(1, 2), output=np.zeros((3, 2, 3)))


@pytest.mark.parametrize("p", [2, 3, 4])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int32"])
def test_lp_overlapping_windows_cell_powers_equal_window_powers(p, dtype):
    """Overlapping windows of small integer powers take each cell's power once per
    block; a block holding a NaN or nodata takes each window's powers again: the
    windows that do not hold it agree bitwise between the two."""
    rng = np.random.default_rng(p)
    x = (random_array(rng, (2, 7, 150), dtype) % 100).astype(dtype)
    y = x.copy()
    missing = np.nan if dtype == "float32" else 200
    y[1, 3, 71] = missing
    extra = {} if dtype == "float32" else dict(nodata=200)
    for kw in (dict(size=3, stride=2), dict(size=(3, 2), stride=1, dilation=(1, 2)),
               dict(size=3, stride=2, average=True, padding=1)):
        got = fastpool.lp_pool(x, p, axes=(1, 2), **kw, **extra)
        with_missing = fastpool.lp_pool(y, p, axes=(1, 2), **kw, **extra)
        geometry = {k: v for k, v in kw.items() if k != "average"}
        touched = fastpool.max_pool((y != y) | (y == 200), axes=(1, 2), **geometry)
        assert 0 < touched.sum() < touched.size
        np.testing.assert_array_equal(got[~touched], with_missing[~touched])
        expected, _ = ref_family(x, "lp", kw.pop("size"), p=p, axes=(1, 2), **kw)
        # (integer outputs are the reference rounded)
        np.testing.assert_allclose(got, np.asarray(expected, np.float64), rtol=2e-6,
                                   atol=0 if dtype == "float32" else 0.5)
