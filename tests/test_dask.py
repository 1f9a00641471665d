"""Dask arrays in, Dask arrays out (SPEC section 3).

Every public function handed a ``dask.array.Array`` returns one, lazily, whose
computed value is bitwise the NumPy function's on ``x.compute()`` (same dtype,
same shape, same values and signs of zero), for any chunking: uneven chunks,
chunks of one, empty chunks, chunks that are not multiples of the stride, a tiny
trailing chunk.  The oracle is fastpool's own NumPy path, called on the same
values with the same arguments.
"""

import subprocess
import sys

import dask
import dask.array as da
import distributed
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool
from reference import MODES, examples, random_array
from strategies import pool_case

DIMS = {1: 40, 2: 12, 3: 6}
DTYPES = ("uint8", "int16", "int32", "int64", "float32", "float64")
BOOL_METHODS = ("max", "min", "sum")
SLIDING = ("max", "min", "avg", "sum", "median", "rank", "percentile", "mode", "lp",
           "soft", "stochastic", "mixed", "avgmax", "catavgmax", "weighted", "lip",
           "dpp", "generic", "blur", "maxblur")
NONNEGATIVE = ("lp", "stochastic")  # negative input is NaN (lp) or an error (stochastic)
# -0.0 and 0.0 tie in a selection, and either may be returned (docs/semantics.md,
# order statistics): a chunk's window may take the 2x2 network where the whole
# array takes the general selection, so only their values must agree.
SIGN_FREE_ZEROS = ("median", "rank", "percentile")


@pytest.fixture(autouse=True, scope="module")
def synchronous_scheduler():
    """Most tests compute with the synchronous scheduler (fast, deterministic)."""
    with dask.config.set(scheduler="synchronous"):
        yield


# ---------------------------------------------------------------------------
# helpers


@st.composite
def chunk_tuple(draw, n):
    """Explicit chunk lengths summing to ``n``: random cuts (sometimes with an
    empty chunk), chunks of one, one chunk, a trailing chunk of one, or regular
    chunks with a shorter remainder."""
    kind = draw(st.sampled_from(["cuts", "cuts", "ones", "whole", "trailing",
                                 "regular", "empty"]))
    if kind == "whole" or n == 1:
        return (n,)
    if kind == "ones":
        return (1,) * n
    if kind == "trailing":
        return (n - 1, 1)
    if kind == "regular":
        c = draw(st.integers(1, n))
        return (c,) * (n // c) + ((n % c,) if n % c else ())
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), unique=True, max_size=6)))
    edges = [0, *cuts, n]
    chunks = [b - a for a, b in zip(edges[:-1], edges[1:])]
    if kind == "empty":
        chunks.insert(draw(st.integers(0, len(chunks))), 0)
    return tuple(chunks)


@st.composite
def chunks_for(draw, shape):
    """One explicit chunk tuple per axis of ``shape``."""
    return tuple(draw(chunk_tuple(n)) for n in shape)


def to_dask(x, chunks):
    """``x`` as a Dask array with exactly ``chunks``."""
    d = da.from_array(x, chunks=chunks)
    assert d.chunks == tuple(chunks)
    return d


def make_input(seed, shape, dtype, nan_frac=0.0):
    """Random data (sometimes with many ties) of ``dtype``."""
    rng = np.random.default_rng(seed)
    return random_array(rng, shape, dtype, small=bool(rng.integers(2)),
                        nan_frac=nan_frac if np.dtype(dtype).kind == "f" else 0.0)


def assert_same(got, expected, zero_signs=True):
    """``got`` (computed) equals ``expected`` bitwise: dtype, shape, values, the
    sign of zeros (unless not ``zero_signs``) and NaNs."""
    got = np.asarray(got)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if expected.dtype.kind == "f" and zero_signs:
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected),
                                      err_msg="sign bits differ (e.g. -0.0 vs 0.0)")


def assert_lazy_same(result, expected, zero_signs=True):
    """``result``, a Dask array (or a tuple of them) with the right dtype before
    computing, computes to ``expected`` (an ndarray or a tuple of them); see
    :func:`assert_same`."""
    if isinstance(expected, tuple):
        assert isinstance(result, tuple) and len(result) == len(expected)
        computed = dask.compute(*result)
        for r, c, e in zip(result, computed, expected):
            assert isinstance(r, da.Array)
            assert r.dtype == e.dtype and r.shape == e.shape
            assert_same(c, e, zero_signs)
        return
    assert isinstance(result, da.Array)
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    assert_same(result.compute(), expected, zero_signs)


def agree(function, x, dx, *args, **kw):
    """``function`` on the Dask array ``dx`` equals it on the NumPy array ``x``;
    where the NumPy call raises a ValueError or TypeError, the Dask call raises
    the same type when it is made (not when computed)."""
    try:
        expected = function(x, *args, **kw)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            function(dx, *args, **kw)
        return False
    assert_lazy_same(function(dx, *args, **kw), expected)
    return True


# ---------------------------------------------------------------------------
# 1. the sliding family, any geometry, dtype and chunking


def call_sliding(method, x, second, case, params, kw):
    """fastpool's function for ``method`` on ``x`` (``second``: the weights or
    logits) with the case's geometry."""
    geo = {k: case[k] for k in ("stride", "padding", "dilation", "ceil_mode", "mode")}
    size = case["size"]
    if method == "blur":
        return fastpool.blur_pool(x, params["factor"], order=params["order"],
                                  mode=case["mode"], **kw)
    if method == "maxblur":
        return fastpool.maxblur_pool(x, params["factor"], size=size,
                                     order=params["order"], mode=case["mode"], **kw)
    if method == "rank":
        return fastpool.rank_pool(x, params["rank"], size, **geo, **kw)
    if method == "percentile":
        return fastpool.percentile_pool(x, params["percentile"], size, **geo, **kw)
    if method == "lp":
        return fastpool.lp_pool(x, params["p"], size, average=params["average"],
                                **geo, **kw)
    if method == "weighted":
        return fastpool.weighted_pool(x, second, size, **geo, **kw)
    if method == "lip":
        return fastpool.lip_pool(x, second, size, **geo, **kw)
    if method == "generic":
        return fastpool.generic_pool(x, params["function"], size, **geo, **kw)
    return getattr(fastpool, f"{method}_pool")(x, size, **geo, **params, **kw)


@st.composite
def method_params(draw, method, case, ndim, pooled):
    """The method's own parameters."""
    if method == "avg":
        return {"divisor": draw(st.sampled_from([None, None, 3, -2]))}
    if method == "rank":
        return {"rank": draw(st.integers(-case["wsize"], case["wsize"] - 1))}
    if method == "percentile":
        return {"percentile": draw(st.sampled_from([0, 12.5, 50, 99.0, 100]))}
    if method == "lp":
        return {"p": draw(st.sampled_from([1, 2, 3, 1.5])), "average": draw(st.booleans())}
    if method == "soft":
        return {"beta": draw(st.sampled_from([1.0, 0.5, -2.0]))}
    if method == "stochastic":
        return {"training": draw(st.booleans()), "seed": draw(st.integers(0, 2**32))}
    if method == "mixed":
        return {"alpha": draw(st.sampled_from([None, None, 0.25])),
                "seed": draw(st.integers(0, 2**32))}
    if method == "catavgmax":
        batch = [a for a in range(ndim) if a not in pooled]
        return {"axis": draw(st.sampled_from([None, *batch]))}
    if method == "dpp":
        return {"alpha": draw(st.sampled_from([1.0, 0.5])),
                "lam": draw(st.sampled_from([1.0, 2.0])),
                "asymmetric": draw(st.booleans())}
    if method == "generic":
        return {"function": draw(st.sampled_from([np.ptp, np.std]))}
    if method in ("blur", "maxblur"):
        return {"factor": draw(st.integers(1, 3)), "order": draw(st.integers(1, 4))}
    return {}


@settings(max_examples=examples(220), deadline=None)
@given(data=st.data(), case=pool_case(dims=DIMS, max_size=5),
       method=st.sampled_from(SLIDING))
def test_sliding_any_chunking(data, case, method):
    """Every sliding method, random geometry, dtype, NaNs, nodata and chunking:
    the Dask result is bitwise NumPy's (except for the sign of a zero in a
    selection: see SIGN_FREE_ZEROS)."""
    shape = case["shape"]
    ndim = len(shape)
    axes = case["axes"]
    pooled = sorted({a % ndim for a in np.atleast_1d(axes if axes is not None
                                                     else range(ndim))})
    dtype = data.draw(st.sampled_from(DTYPES + (("bool",) if method in BOOL_METHODS
                                                else ())), label="dtype")
    nan_frac = data.draw(st.sampled_from([0.0, 0.1, 0.4]), label="nan_frac")
    x = make_input(data.draw(st.integers(0, 2**32), label="seed"), shape, dtype, nan_frac)
    if method in NONNEGATIVE and dtype != "bool":
        x = np.maximum(x, 0).astype(dtype)
    params = data.draw(method_params(method, case, ndim, pooled), label="params")
    kw = {"axes": axes, "nan_policy": data.draw(st.sampled_from(["propagate", "omit"]))}
    if case["mode"] == "constant":
        kw["cval"] = data.draw(st.sampled_from([0.0, 2.5, -1.0, 300.0]))
    if dtype != "bool" and data.draw(st.integers(0, 3)) == 0:
        kw["nodata"] = data.draw(st.sampled_from(
            [x.flat[0], 0] + ([np.nan] if x.dtype.kind == "f" else [])), label="nodata")
    output = data.draw(st.sampled_from([None, None, np.float64]), label="output")
    if output is not None:
        kw["output"] = output
    dx = to_dask(x, data.draw(chunks_for(shape), label="chunks"))
    second = dsecond = None
    if method in ("weighted", "lip"):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
        second = (rng.random(shape) + 0.05 if method == "weighted"
                  else rng.standard_normal(shape)).astype(
            data.draw(st.sampled_from([np.float64, np.float32])))
        dsecond = data.draw(st.sampled_from([
            second, to_dask(second, data.draw(chunks_for(shape), label="wchunks"))]))
    try:
        expected = call_sliding(method, x, second, case, params, kw)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            call_sliding(method, dx, dsecond, case, params, kw)
        return
    result = call_sliding(method, dx, dsecond, case, params, kw)
    assert_lazy_same(result, expected, zero_signs=method not in SIGN_FREE_ZEROS)


BAD = [
    ({"size": 0}, ValueError),
    ({"size": 2, "stride": 0}, ValueError),
    ({"size": 2, "padding": 2}, ValueError),
    ({"size": 2, "padding": -1}, ValueError),
    ({"size": 2, "dilation": 0}, ValueError),
    ({"size": 50}, ValueError),
    ({"size": 2.5}, TypeError),
    ({"size": (2, 2, 2)}, ValueError),
    ({"size": 2, "mode": "bogus"}, ValueError),
    ({"size": 2, "nan_policy": "bogus"}, ValueError),
    ({"size": 2, "axes": (0, 0)}, ValueError),
    ({"size": 2, "axes": 5}, ValueError),
    ({"size": 2, "nodata": -9999}, ValueError),
    ({"size": 3, "stride": 1, "padding": 1, "dilation": 9}, ValueError),
]


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data(), bad=st.sampled_from(BAD),
       method=st.sampled_from(["max", "avg", "sum", "median", "mode", "soft",
                               "stochastic", "generic"]))
def test_bad_parameters_raise_at_call_time(data, bad, method):
    """Where NumPy raises for bad parameters, the Dask call raises the same type
    when it is made."""
    params, error = bad
    params = dict(params)
    x = make_input(1, (7, 9), "uint8")
    dx = to_dask(x, data.draw(chunks_for(x.shape)))
    size = params.pop("size")
    function = getattr(fastpool, f"{method}_pool")
    extra = (np.std,) if method == "generic" else ()
    with pytest.raises(error):
        function(x, *extra, size, **params)
    with pytest.raises(error):
        function(dx, *extra, size, **params)


def test_axes_not_ascending():
    """Pooled axes given in descending order pool each axis by its own window
    (on one chunk and on several)."""
    x = np.arange(12.0).reshape(3, 4)
    for chunks in (((3,), (4,)), ((2, 1), (2, 2))):
        assert agree(fastpool.max_pool, x, to_dask(x, chunks), (2, 3), axes=(1, 0))
    u = np.array([[[4, 3]]], np.uint8)
    assert agree(fastpool.max_pool, u, to_dask(u, ((1,), (1,), (2,))), (2, 1),
                 axes=(2, 0))
    assert agree(fastpool.adaptive_avg_pool, x, to_dask(x, ((3,), (4,))), (None, 1),
                 axes=(1, 0))
    assert agree(fastpool.global_pool, x, to_dask(x, ((1, 2), (4,))), "median",
                 axes=(1, 0))


def test_order_methods_dilated():
    """Order statistics of dilated windows (one chunk) read the dilated samples."""
    x = np.array([[4, 0, 3], [4, 4, 2], [3, 0, 1]], np.uint8)
    dx = to_dask(x, ((3,), (3,)))
    geo = dict(stride=(1, 2), dilation=(1, 2))
    assert agree(fastpool.median_pool, x, dx, (2, 2), **geo)
    assert agree(fastpool.mode_pool, x, dx, (2, 2), **geo)
    assert agree(fastpool.rank_pool, x, dx, 0, (2, 2), **geo)
    assert agree(fastpool.percentile_pool, x, dx, 100, (2, 2), **geo)


def test_weighted_pool_integer_input():
    """weighted_pool of integer input with positive weights works on Dask (the
    call does not fail on a probe with zero weights)."""
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    dx = to_dask(x, ((2, 1), (2, 2)))
    assert agree(fastpool.weighted_pool, x, dx, np.ones(x.shape), 2)


def test_max_unpool_empty_batch_chunk():
    """max_unpool with an empty chunk along a batch axis (and so an empty batch
    block) equals NumPy's."""
    x = np.arange(20, dtype=np.float32).reshape(2, 10)
    values, indices = fastpool.max_pool(x, 2, axes=1, return_indices=True)
    dv = to_dask(values, ((0, 2), (5,)))
    expected = fastpool.max_unpool(values, indices, x.shape, axes=1)
    assert_lazy_same(fastpool.max_unpool(dv, indices, x.shape, axes=1), expected)


# ---------------------------------------------------------------------------
# 2. return_indices


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data(), case=pool_case(dims=DIMS, max_size=5),
       method=st.sampled_from(["max", "min"]),
       dtype=st.sampled_from(DTYPES + ("bool",)))
def test_return_indices(data, case, method, dtype):
    """max_pool/min_pool(return_indices=True): values and global indices equal."""
    x = make_input(data.draw(st.integers(0, 2**32)), case["shape"], dtype, 0.2)
    kw = {k: case[k] for k in ("size", "stride", "padding", "dilation", "ceil_mode",
                               "mode", "axes")}
    kw["nan_policy"] = data.draw(st.sampled_from(["propagate", "omit"]))
    dx = to_dask(x, data.draw(chunks_for(x.shape)))
    function = getattr(fastpool, f"{method}_pool")
    assert agree(function, x, dx, return_indices=True, **kw)


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(17,), (9, 11), (3, 8, 7)]),
       dtype=st.sampled_from(DTYPES))
def test_return_indices_adaptive_fractional(data, shape, dtype):
    """adaptive_max_pool and fractional_max_pool with return_indices: values and
    indices equal."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype, 0.1)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    out = tuple(data.draw(st.integers(1, 2 * n)) for n in shape)
    assert agree(fastpool.adaptive_max_pool, x, dx, out, return_indices=True)
    axes = tuple(range(1, len(shape))) if len(shape) > 1 else None
    pooled = shape[1:] if len(shape) > 1 else shape
    sizes = tuple(data.draw(st.integers(1, 3)) for _ in pooled)
    outs = tuple(data.draw(st.integers(1, n - k + 1)) for n, k in zip(pooled, sizes))
    assert agree(fastpool.fractional_max_pool, x, dx, outs, size=sizes, axes=axes,
                 seed=data.draw(st.integers(0, 99)), return_indices=True)


# ---------------------------------------------------------------------------
# 3. random methods


CHUNKINGS_2D = [((13,), (17,)), ((1,) * 13, (5, 12)), ((4, 4, 5), (3, 3, 3, 3, 3, 2)),
                ((12, 1), (16, 1)), ((7, 0, 6), (2, 15))]


@pytest.mark.parametrize("chunks", CHUNKINGS_2D)
def test_random_methods_int_seed(chunks):
    """stochastic_pool(training=True) and mixed_pool(alpha=None) with an int seed
    equal NumPy's with the same seed, for several chunkings."""
    x = np.abs(make_input(3, (13, 17), "float32"))
    dx = to_dask(x, chunks)
    for size, stride, padding in [(2, None, 0), (3, 1, 1), ((3, 2), (2, 3), (1, 0))]:
        geo = dict(stride=stride, padding=padding, mode="reflect")
        assert agree(fastpool.stochastic_pool, x, dx, size, training=True, seed=7, **geo)
        assert agree(fastpool.mixed_pool, x, dx, size, alpha=None, seed=11, **geo)


def test_random_methods_generator_and_none_seed():
    """A Generator seed gives NumPy's result for a fresh equal Generator; with
    seed=None the key is drawn once, so two computes agree."""
    x = np.abs(make_input(4, (10, 23), "float64"))
    dx = to_dask(x, ((3, 7), (5, 1, 17)))
    for function in (fastpool.stochastic_pool, fastpool.mixed_pool):
        got = function(dx, 3, stride=2, seed=np.random.default_rng(5))
        assert_lazy_same(got, function(x, 3, stride=2, seed=np.random.default_rng(5)))
        lazy = function(dx, 3, stride=2, seed=None)
        assert_same(lazy.compute(), lazy.compute())


# ---------------------------------------------------------------------------
# 4. laziness


def test_lazy_until_computed():
    """A graph that raises when computed does not raise at call time, only when
    the result is computed."""
    def broken():
        raise RuntimeError("computed")

    dx = da.from_delayed(dask.delayed(broken)(), shape=(8, 10), dtype=np.float64)
    calls = [
        lambda: fastpool.avg_pool(dx, 3, stride=2, padding=1, mode="wrap"),
        lambda: fastpool.median_pool(dx, 2),
        lambda: fastpool.max_pool(dx, 2, return_indices=True)[1],
        lambda: fastpool.stochastic_pool(dx, 2, seed=1),
        lambda: fastpool.weighted_pool(dx, np.ones((8, 10)), 2),
        lambda: fastpool.generic_pool(dx, np.ptp, 3),
        lambda: fastpool.blur_pool(dx),
        lambda: fastpool.maxblur_pool(dx),
        lambda: fastpool.catavgmax_pool(dx, 2),
        lambda: fastpool.adaptive_pool(dx, (3, 4), "median"),
        lambda: fastpool.global_pool(dx, "mode"),
        lambda: fastpool.fractional_max_pool(dx, (5, 6), seed=1),
        lambda: fastpool.pyramid(dx)[0],
        lambda: fastpool.max_unpool(dx, da.zeros((8, 10), dtype=np.int64, chunks=3),
                                    (16, 20)),
    ]
    for call in calls:
        result = call()
        assert isinstance(result, da.Array)
        with pytest.raises(RuntimeError, match="computed"):
            result.compute()


# ---------------------------------------------------------------------------
# 5. beyond sliding windows


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(23,), (9, 14), (4, 7, 6)]),
       method=st.sampled_from(["avg", "max", "min", "sum", "median", "mode", "lp",
                               "soft", "rank"]),
       dtype=st.sampled_from(DTYPES))
def test_adaptive(data, shape, method, dtype):
    """adaptive_pool (output bigger and smaller than the input), adaptive_avg_pool
    and adaptive_max_pool equal NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype, 0.1)
    if method == "lp":
        x = np.maximum(x, 0).astype(dtype)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    ndim = len(shape)
    axes = data.draw(st.sampled_from([None, (ndim - 1,), tuple(range(ndim))[::-1]]))
    naxes = ndim if axes is None else len(axes)
    out = tuple(data.draw(st.sampled_from([None, 1, 2, 5, 30])) for _ in range(naxes))
    assume(any(o is not None for o in out))
    kw = {"p": 2} if method == "lp" else {"rank": -1} if method == "rank" else {}
    kw["nan_policy"] = data.draw(st.sampled_from(["propagate", "omit"]))
    assert agree(fastpool.adaptive_pool, x, dx, out, method, axes=axes, **kw)
    assert agree(fastpool.adaptive_avg_pool, x, dx, out, axes=axes)
    assert agree(fastpool.adaptive_max_pool, x, dx, out, axes=axes)


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(31,), (6, 13), (3, 5, 7)]),
       method=st.sampled_from(["avg", "max", "median", "mode", "sum"]),
       dtype=st.sampled_from(DTYPES), keepdims=st.booleans())
def test_global(data, shape, method, dtype, keepdims):
    """global_pool (axes subsets, keepdims), global_avg_pool and global_max_pool
    equal NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype, 0.1)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    ndim = len(shape)
    axes = data.draw(st.sampled_from(
        [None, (0,), (-1,), tuple(range(1, ndim)) or None,
         tuple(dict.fromkeys((ndim - 1, 0)))]))
    assert agree(fastpool.global_pool, x, dx, method, axes=axes, keepdims=keepdims)
    assert agree(fastpool.global_avg_pool, x, dx, axes=axes, keepdims=keepdims)
    assert agree(fastpool.global_max_pool, x, dx, axes=axes, keepdims=keepdims,
                 return_indices=True)


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(29,), (10, 13), (2, 9, 8)]),
       dtype=st.sampled_from(DTYPES))
def test_fractional(data, shape, dtype):
    """fractional_max_pool with output_size or output_ratio, seeds and axes equals
    NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype, 0.1)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    ndim = len(shape)
    axes = data.draw(st.sampled_from([None, (ndim - 1,)]))
    kw = {"size": data.draw(st.integers(1, 3)), "axes": axes,
          "seed": data.draw(st.integers(0, 1000))}
    if data.draw(st.booleans()):
        kw["output_ratio"] = data.draw(st.sampled_from([0.5, 0.7]))
    else:
        naxes = ndim if axes is None else 1
        kw["output_size"] = data.draw(st.sampled_from([3, 4])) if naxes == 1 else \
            tuple(data.draw(st.integers(1, 3)) for _ in range(naxes))
    agree(fastpool.fractional_max_pool, x, dx, **kw)


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(37,), (13, 10), (5, 9, 6)]),
       method=st.sampled_from(["avg", "max", "mode", "median", "sum"]),
       dtype=st.sampled_from(["uint8", "float32"]))
def test_pyramid(data, shape, method, dtype):
    """pyramid (levels None or explicit, per-axis factors): every level, and the
    scales and translations, equal NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    ndim = len(shape)
    axes = None if ndim == 1 else data.draw(st.sampled_from([None, (0, ndim - 1)]))
    naxes = ndim if axes is None else 2
    factor = data.draw(st.sampled_from([2, 3, (2, 1, 3)[:naxes], (2, 3, 1)[:naxes]]))
    levels = data.draw(st.sampled_from([None, 1, 2]))
    kw = dict(levels=levels, factor=factor, method=method, axes=axes)
    expected = fastpool.pyramid(x, **kw)
    got = fastpool.pyramid(dx, **kw)
    assert isinstance(got, fastpool.Pyramid)
    assert len(got) == len(expected)
    assert got.scales == expected.scales
    assert got.translations == expected.translations
    for level, want in zip(got, expected):
        assert_lazy_same(level, want)


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(3, 16), (5, 4, 9)]),
       dtype=st.sampled_from(DTYPES))
def test_catavgmax_blur_maxblur(data, shape, dtype):
    """catavgmax_pool (axis None or a batch axis), blur_pool and maxblur_pool
    equal NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype, 0.1)
    dx = to_dask(x, data.draw(chunks_for(shape)))
    axes = tuple(range(1, len(shape)))
    mode = data.draw(st.sampled_from(MODES))
    assert agree(fastpool.catavgmax_pool, x, dx, 3, 2, padding=1, axes=axes, mode=mode,
                 axis=data.draw(st.sampled_from([None, 0, -len(shape)])))
    factor = data.draw(st.integers(1, 3))
    order = data.draw(st.integers(1, 5))
    assert agree(fastpool.blur_pool, x, dx, factor, order=order, mode=mode, axes=axes)
    assert agree(fastpool.maxblur_pool, x, dx, factor, size=data.draw(st.integers(1, 3)),
                 order=order, mode=mode, axes=axes)


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data(), shape=st.sampled_from([(20,), (9, 10), (2, 7, 8)]),
       dtype=st.sampled_from(DTYPES))
def test_max_unpool(data, shape, dtype):
    """max_unpool of Dask values and Dask indices (chunked differently) equals
    NumPy's."""
    x = make_input(data.draw(st.integers(0, 2**32)), shape, dtype)
    axes = tuple(range(1, len(shape))) if len(shape) > 1 else None
    values, indices = fastpool.max_pool(x, 2, stride=data.draw(st.integers(1, 2)),
                                        axes=axes, return_indices=True)
    dv = to_dask(values, data.draw(chunks_for(values.shape)))
    di = to_dask(indices, data.draw(chunks_for(indices.shape)))
    expected = fastpool.max_unpool(values, indices, shape, axes=axes)
    assert_lazy_same(fastpool.max_unpool(dv, di, shape, axes=axes), expected)
    assert_lazy_same(fastpool.max_unpool(dv, indices, shape, axes=axes), expected)


def test_pyramid_median_signed_zero():
    """A float median pyramid on Dask keeps the sign of zero medians as NumPy's
    (a median that ties -0.0 and 0.0)."""
    x = make_input(0, (13, 10), "float32")
    kw = dict(levels=2, factor=3, method="median")
    for level, want in zip(fastpool.pyramid(to_dask(x, ((9, 4), (9, 1))), **kw),
                           fastpool.pyramid(x, **kw), strict=True):
        assert_lazy_same(level, want)


# ---------------------------------------------------------------------------
# 6. dtypes known before computing


@pytest.mark.parametrize("function, dtype, kw", [
    (fastpool.avg_pool, np.float16, {}),
    (fastpool.max_pool, np.float16, {}),
    (fastpool.median_pool, np.float16, {}),
    (fastpool.soft_pool, np.float16, {}),
    (fastpool.max_pool, np.bool_, {}),
    (fastpool.avg_pool, np.bool_, {}),
    (fastpool.sum_pool, np.bool_, {}),
    (fastpool.sum_pool, np.uint8, {}),
    (fastpool.sum_pool, np.int16, {}),
    (fastpool.avg_pool, np.uint8, {"output": np.float64}),
    (fastpool.sum_pool, np.uint8, {"output": np.uint8}),
    (fastpool.mode_pool, np.int32, {"output": np.float64}),
])
def test_dtype_before_compute(function, dtype, kw):
    """The Dask result's dtype (before computing) is NumPy's: float16 -> float32,
    bool, sum of uint8 -> uint64, a given output dtype."""
    x = (make_input(6, (9, 14), "float32") * 10).astype(dtype)
    dx = to_dask(x, ((4, 5), (3, 11)))
    assert agree(function, x, dx, 3, stride=2, **kw)


# ---------------------------------------------------------------------------
# 7. the threaded scheduler


def test_threaded_scheduler():
    """Under the threaded scheduler (fastpool's workers untouched) the results
    equal NumPy's."""
    x = make_input(8, (4, 30, 26), "float32", 0.05)
    dx = to_dask(x, ((1, 3), (7, 8, 15), (13, 13)))
    w = np.random.default_rng(1).random(x.shape)
    with dask.config.set(scheduler="threads"):
        assert agree(fastpool.avg_pool, x, dx, 3, 2, padding=1, mode="mirror", axes=(1, 2))
        assert agree(fastpool.median_pool, x, dx, 4, 3, nan_policy="omit", axes=(1, 2))
        assert agree(fastpool.stochastic_pool, np.abs(x), abs(dx), 2, seed=3, axes=(1, 2))
        assert agree(fastpool.weighted_pool, x, dx, w, 3, 1, axes=(1, 2))
        assert agree(fastpool.max_pool, x, dx, 2, return_indices=True)
        assert agree(fastpool.global_pool, x, dx, "sum", axes=(1, 2))


# ---------------------------------------------------------------------------
# 8. dask.distributed


def test_distributed_local_cluster():
    """A LocalCluster of two worker processes computes the results NumPy gives."""
    rng = np.random.default_rng(9)
    x = rng.random((3, 21, 19)).astype(np.float32)
    w = rng.random(x.shape) + 0.1
    dx = to_dask(x, ((2, 1), (5, 16), (10, 6, 3)))
    dw = to_dask(w, ((1, 2), (11, 10), (19,)))
    axes = (1, 2)
    pyr = fastpool.pyramid(x, factor=2, method="max", axes=axes)
    cases = [
        (fastpool.avg_pool(dx, 3, 1, padding=1, mode="wrap", axes=axes),
         fastpool.avg_pool(x, 3, 1, padding=1, mode="wrap", axes=axes)),
        (fastpool.max_pool(dx, 3, 2, axes=axes, return_indices=True),
         fastpool.max_pool(x, 3, 2, axes=axes, return_indices=True)),
        (fastpool.stochastic_pool(dx, 2, seed=4, axes=axes),
         fastpool.stochastic_pool(x, 2, seed=4, axes=axes)),
        (fastpool.weighted_pool(dx, dw, 3, 2, padding=1, axes=axes),
         fastpool.weighted_pool(x, w, 3, 2, padding=1, axes=axes)),
        (tuple(fastpool.pyramid(dx, factor=2, method="max", axes=axes)), tuple(pyr)),
        (fastpool.global_pool(dx, "median", axes=axes),
         fastpool.global_pool(x, "median", axes=axes)),
    ]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for lazy, expected in cases:
            lazy = lazy if isinstance(lazy, tuple) else (lazy,)
            expected = expected if isinstance(expected, tuple) else (expected,)
            computed = client.gather(client.compute(list(lazy)))
            for got, want in zip(computed, expected, strict=True):
                assert_same(got, want)


# ---------------------------------------------------------------------------
# 9. errors


def test_errors():
    """An ndarray output is a TypeError naming output; size 0 and weights of the
    wrong shape are ValueErrors when the call is made."""
    x = make_input(2, (6, 8), "float64")
    dx = to_dask(x, ((3, 3), (3, 3, 2)))
    out = np.empty((3, 4))
    for call in (lambda: fastpool.avg_pool(dx, 2, output=out),
                 lambda: fastpool.max_pool(dx, 2, output=out, return_indices=True),
                 lambda: fastpool.weighted_pool(dx, np.ones(x.shape), 2, output=out),
                 lambda: fastpool.global_pool(dx, "avg", output=np.empty(())),
                 lambda: fastpool.catavgmax_pool(dx, 2, output=np.empty((2, 3, 4)))):
        with pytest.raises(TypeError, match="output"):
            call()
    with pytest.raises(ValueError):
        fastpool.max_pool(dx, 0)
    with pytest.raises(ValueError):
        fastpool.weighted_pool(dx, np.ones((6, 7)), 2)
    with pytest.raises(ValueError):
        fastpool.lip_pool(dx, da.ones((5, 8), chunks=2), 2)


def test_import_needs_no_optional_package():
    """Importing fastpool and pooling NumPy arrays imports none of Dask, Zarr,
    distributed or tqdm."""
    code = ("import sys, numpy, fastpool; fastpool.avg_pool(numpy.ones((4, 4)), 2); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'zarr', 'distributed', 'tqdm')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
