"""Argument validation: every error in the contract, and no crash on weird input."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastpool

POOLS = ("max_pool", "min_pool", "avg_pool", "sum_pool", "median_pool", "mode_pool",
         "soft_pool", "avgmax_pool", "dpp_pool")


def _second_array_of(x):
    return np.ones(np.shape(x))


# The pooling functions with a parameter before ``size``, bound to a typical value
# (and the random ones to a seed).
BOUND = {
    "stochastic_pool": lambda x, *a, **k: fastpool.stochastic_pool(x, *a, seed=0, **k),
    "mixed_pool": lambda x, *a, **k: fastpool.mixed_pool(x, *a, seed=0, **k),
    "rank_pool": lambda x, *a, **k: fastpool.rank_pool(x, 1, *a, **k),
    "percentile_pool": lambda x, *a, **k: fastpool.percentile_pool(x, 50, *a, **k),
    "lp_pool": lambda x, *a, **k: fastpool.lp_pool(x, 2, *a, **k),
    "weighted_pool": lambda x, *a, **k: fastpool.weighted_pool(x, _second_array_of(x), *a, **k),
    "lip_pool": lambda x, *a, **k: fastpool.lip_pool(x, _second_array_of(x), *a, **k),
    "generic_pool": lambda x, *a, **k: fastpool.generic_pool(x, np.max, *a, **k),
}


@pytest.fixture(params=POOLS + tuple(BOUND))
def f(request):
    return BOUND.get(request.param) or getattr(fastpool, request.param)


X = np.arange(48, dtype=np.float64).reshape(6, 8)


@pytest.mark.parametrize("axes", [(0, 0), (1, -1), (2,), (-3,), (0, 1, 2), (5,)])
def test_bad_axes(f, axes):
    with pytest.raises(ValueError, match="axes"):
        f(X, 2, axes=axes)


def test_good_axes_accepted(f):
    a = f(X, 2, axes=(0, 1))
    np.testing.assert_array_equal(f(X, 2, axes=(-2, -1)), a)
    np.testing.assert_array_equal(f(X, 2, axes=(1, 0)), a)
    np.testing.assert_array_equal(f(X, 2), a)


@pytest.mark.parametrize("name, value", [
    ("size", 0), ("size", -1), ("size", (2, 0)),
    ("stride", 0), ("stride", -2), ("stride", (1, 0)),
    ("dilation", 0), ("dilation", -1), ("dilation", (0, 1)),
    ("padding", -1), ("padding", (0, -1)),
])
def test_nonpositive_geometry(f, name, value):
    kw = {"size": 2, name: value}
    with pytest.raises(ValueError, match=name):
        f(X, **kw)


@pytest.mark.parametrize("size, padding", [(2, 2), (3, 2), (1, 1), (4, 3), ((2, 4), (1, 3))])
def test_padding_larger_than_half_window(f, size, padding):
    with pytest.raises(ValueError, match="padding"):
        f(X, size, padding=padding)


def test_padding_at_half_window_allowed(f):
    assert f(X, 4, padding=2).shape == (2, 3)
    assert f(X, (5, 2), padding=(2, 1)).shape == (2, 5)


@pytest.mark.parametrize("name", ["size", "stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [(1, 1, 1), (1,), ()])
def test_wrong_number_of_per_axis_values(f, name, value):
    kw = {"size": 2, name: value}
    if name == "size":
        kw["size"] = tuple(v + 1 for v in value)
    with pytest.raises(ValueError, match=name):
        f(X, **kw)


def test_per_axis_count_follows_axes(f):
    # two values for two pooled axes of a 3-D input
    assert f(np.zeros((4, 5, 6)), (2, 3), axes=(0, 2)).shape == (2, 5, 2)
    with pytest.raises(ValueError, match="size"):
        f(np.zeros((4, 5, 6)), (2, 3, 1), axes=(0, 2))


@pytest.mark.parametrize("name", ["size", "stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [2.5, "2", (2, 1.5), object()])
def test_non_integer_geometry(f, name, value):
    kw = {"size": 2, name: value}
    with pytest.raises(TypeError, match=name):
        f(X, **kw)


def test_zero_length_output_names_axis(f):
    x = np.zeros((10, 10, 3))
    with pytest.raises(ValueError) as info:
        f(x, (2, 2, 5))
    assert re.search(r"axis\D{0,12}2", str(info.value)), str(info.value)
    with pytest.raises(ValueError) as info:
        f(x, 3, dilation=(1, 5, 1))  # 1 + 5*2 = 11 > 10 on axis 1
    assert re.search(r"axis\D{0,12}1", str(info.value)), str(info.value)
    # with ceil_mode too (size 4 > 3 + stride - 1), the axis given negatively
    with pytest.raises(ValueError) as info:
        f(x, 4, stride=1, ceil_mode=True, axes=(-1,))
    assert re.search(r"axis\D{0,12}(2|-1)", str(info.value)), str(info.value)
    # ... whereas ceil_mode makes size 4, stride 4 on 3 elements one (partial) window
    assert f(x, 4, ceil_mode=True, axes=(-1,)).shape == (10, 10, 1)


@pytest.mark.parametrize("mode", ["zeros", "Reflect", "", "grid-wrap", None])
def test_bad_mode(f, mode):
    with pytest.raises((ValueError, TypeError), match="mode"):
        f(X, 2, mode=mode)


@pytest.mark.parametrize("policy", ["ignore", "Omit", "", None])
def test_bad_nan_policy(f, policy):
    with pytest.raises((ValueError, TypeError), match="nan_policy"):
        f(X, 2, nan_policy=policy)


def test_nan_policy_raise(f):
    x = X.copy()
    x[5, 7] = np.nan  # even outside every 4x4 window... it is in the input
    with pytest.raises(ValueError, match="(?i)nan"):
        f(x, 4, nan_policy="raise")
    x32 = x.astype(np.float32)
    with pytest.raises(ValueError, match="(?i)nan"):
        f(x32, 2, nan_policy="raise")
    f(X, 2, nan_policy="raise")  # no NaN: fine
    f(X.astype(np.int32), 2, nan_policy="raise")


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, object, "U3", "S3"])
def test_unsupported_dtype(f, dtype):
    x = np.zeros((4, 4), dtype=dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError) as info:
        f(x, 2)
    msg = str(info.value)
    # the message names the dtype (e.g. 'complex128', 'object', '<U3', 'str')
    candidates = {name, str(np.dtype(dtype)), np.dtype(dtype).str, re.sub(r"\d+$", "", name)}
    assert any(c and c in msg for c in candidates), msg


@pytest.mark.parametrize("dtype", ["datetime64[s]", "timedelta64[s]", "V8"])
def test_other_unlisted_dtypes_rejected(f, dtype):
    # not in the contract's list of dtypes: rejected (TypeError preferred)
    with pytest.raises((TypeError, ValueError)):
        f(np.zeros((4, 4), dtype=dtype), 2)


def test_complex_with_return_indices():
    with pytest.raises(TypeError, match="complex"):
        fastpool.max_pool(np.zeros((4, 4), complex), 2, return_indices=True)


def test_output_wrong_shape(f):
    with pytest.raises(ValueError, match="output|shape"):
        f(X, 2, output=np.empty((3, 3)))
    with pytest.raises(ValueError, match="output|shape"):
        f(X, 2, output=np.empty((4, 3)))
    with pytest.raises(ValueError, match="output|shape"):
        f(X, 2, output=np.empty((3, 4, 1)))


def test_output_overlapping_input(f):
    x = np.arange(64, dtype=np.float64).reshape(4, 16)
    before = x.copy()
    with pytest.raises(ValueError, match="output|overlap"):
        f(x, 1, output=x)
    with pytest.raises(ValueError, match="output|overlap"):
        f(x, (1, 2), output=x[:, :8])
    with pytest.raises(ValueError, match="output|overlap"):
        f(x, (1, 2), output=x[:, 1::2])
    np.testing.assert_array_equal(x, before)


def test_output_disjoint_part_of_same_buffer(f):
    # overlap means sharing memory, not sharing a buffer: interleaved rows are fine
    x = np.arange(64, dtype=np.float64).reshape(4, 16)
    buf = np.zeros((4, 24))
    buf[:, :16] = x
    res = f(buf[:, :16], (1, 2), output=buf[:, 16:])
    np.testing.assert_array_equal(res, f(x, (1, 2)))
    np.testing.assert_array_equal(buf[:, 16:], f(x, (1, 2)))
    np.testing.assert_array_equal(buf[:, :16], x)


@pytest.mark.parametrize("workers", [0, -2, -10])
def test_bad_workers(f, workers):
    with pytest.raises(ValueError, match="workers"):
        f(X, 2, workers=workers)


@pytest.mark.parametrize("workers", [0, -2])
def test_bad_set_workers(workers):
    before = fastpool.get_workers()
    with pytest.raises(ValueError):
        fastpool.set_workers(workers)
    assert fastpool.get_workers() == before


def test_return_indices_array_shapes():
    v, i = fastpool.max_pool(X, 2, return_indices=True)
    assert v.shape == i.shape == (3, 4)
    assert i.dtype == np.int64


# ---------------------------------------------------------------------------
# weird inputs, in a subprocess so that a segfault fails the test instead of the run

WEIRD_SCRIPT = textwrap.dedent(r"""
    import json, sys, traceback
    import numpy as np
    import fastpool

    results = {}

    def attempt(name, fn):
        try:
            r = fn()
            if isinstance(r, tuple):
                r = r[0]
            results[name] = ["ok", list(np.shape(r)), str(getattr(r, "dtype", ""))]
        except Exception as e:  # an exception is fine, a crash is not
            results[name] = [type(e).__name__, str(e)[:200]]

    funcs = [fastpool.max_pool, fastpool.min_pool, fastpool.avg_pool, fastpool.sum_pool]
    big = 2**62
    for f in funcs:
        n = f.__name__
        z = np.zeros((0, 6))
        attempt(n + ":empty_batch", lambda: f(z, 2, axes=(1,)))
        attempt(n + ":empty_pooled", lambda: f(z, 2))
        attempt(n + ":empty_pooled_pad", lambda: f(np.zeros((0,)), 1))
        attempt(n + ":empty_3d", lambda: f(np.zeros((3, 0, 4)), 2, axes=(0, 2)))
        attempt(n + ":zero_d", lambda: f(np.float64(3.0), 1))
        attempt(n + ":zero_d_axes", lambda: f(np.float64(3.0), 1, axes=()))
        attempt(n + ":zero_d_list", lambda: f(np.array(3), ()))
        attempt(n + ":scalar_python", lambda: f(3.0, 1))
        attempt(n + ":axes_empty", lambda: f(np.ones((3, 4)), (), axes=()))
        x = np.arange(20.0).reshape(4, 5)
        for k in (10**9, 2**31, 2**31 - 1, 2**32 + 1, 2**62, 2**63 - 1, 2**63, 2**64 + 3):
            attempt(f"{n}:size={k}", lambda: f(x, k))
            attempt(f"{n}:stride={k}", lambda: f(x, 2, stride=k))
            attempt(f"{n}:stride_ceil={k}", lambda: f(x, 2, stride=k, ceil_mode=True))
            attempt(f"{n}:dilation={k}", lambda: f(x, 2, dilation=k))
            attempt(f"{n}:dilation_pad={k}", lambda: f(x, 3, dilation=k, padding=1, mode="wrap"))
        # huge windows made valid by huge padding: one window over everything
        k = 10**6
        attempt(f"{n}:padding_big", lambda: f(x, 2 * k, padding=k))
        attempt(f"{n}:size_stride_pad_big", lambda: f(x, (k, 1), padding=(k // 2, 0), stride=(k, 1), ceil_mode=True))
        attempt(n + ":dilation_overflow", lambda: f(x, 4, dilation=big))
        attempt(n + ":dilation_overflow_ceil", lambda: f(x, 4, dilation=big, ceil_mode=True))
        attempt(n + ":size_neg_huge", lambda: f(x, -(2**63)))
        b = np.broadcast_to(np.arange(7.0), (5, 7))
        attempt(n + ":broadcast", lambda: f(b, 2))
        b0 = np.broadcast_to(np.float32(2.0), (6, 6, 6))
        attempt(n + ":broadcast_scalar", lambda: f(b0, 3, padding=1, mode="reflect"))
        attempt(n + ":broadcast_output", lambda: f(x, 2, output=np.broadcast_to(np.zeros(2), (2, 2))))
        ro = np.zeros((2, 2)); ro.setflags(write=False)
        attempt(n + ":readonly_output2", lambda: f(x, 2, output=ro))
        attempt(n + ":output_dtype_complex", lambda: f(x, 2, output=np.complex128))
        attempt(n + ":output_dtype_object", lambda: f(x, 2, output=object))
        attempt(n + ":many_dims", lambda: f(np.ones((1,) * 32), 1))
        attempt(n + ":many_dims2", lambda: f(np.ones((2,) * 20), 2, axes=tuple(range(0, 20, 2))))
        attempt(n + ":one_elem_pad", lambda: f(np.ones(1), 3, 1, padding=1, mode="mirror"))
        attempt(n + ":one_elem_pad_wrap", lambda: f(np.ones((1, 1)), 5, 1, padding=2, mode="wrap"))
        attempt(n + ":tiny_big_window", lambda: f(np.ones((2, 1)), (5, 3), 1, padding=(2, 1), mode="reflect"))
        attempt(n + ":dilated_all_padding", lambda: f(np.ones(1), 2, padding=1, dilation=2))
        attempt(n + ":nan_cval", lambda: f(x, 3, 1, padding=1, mode="constant", cval=np.nan))
        attempt(n + ":inf_all", lambda: f(np.full((4, 4), np.inf), 2))
        attempt(n + ":nodata_nan", lambda: f(x, 2, nodata=np.nan))
        attempt(n + ":nodata_huge", lambda: f(x.astype(np.int8), 2, nodata=10**30))
        attempt(n + ":cval_huge_int", lambda: f(x.astype(np.int8), 3, 1, padding=1, mode="constant", cval=10**30))
        attempt(n + ":cval_huge_float", lambda: f(x.astype(np.uint8), 3, 1, padding=1, mode="constant", cval=1e300))
        attempt(n + ":workers_many", lambda: f(np.ones((256, 256)), 2, workers=64))
        attempt(n + ":workers_huge2", lambda: f(x, 2, workers=2**62))
        attempt(n + ":unaligned", lambda: f(np.frombuffer(b"\0" + bytes(8 * 20), dtype=np.float64, offset=1).reshape(4, 5), 2))
        attempt(n + ":unaligned_be", lambda: f(np.frombuffer(b"\0" + bytes(8 * 20), dtype=">i8", offset=1).reshape(4, 5), 2))
        attempt(n + ":strided_huge", lambda: f(np.lib.stride_tricks.as_strided(np.zeros(1), (3, 4), (0, 0)), (3, 2)))
    attempt("avg:divisor0", lambda: fastpool.avg_pool(np.ones(4), 2, divisor=0))
    attempt("avg:divisor_neg", lambda: fastpool.avg_pool(np.ones(4), 2, divisor=-3))
    attempt("avg:divisor_huge", lambda: fastpool.avg_pool(np.ones(4), 2, divisor=2**70))
    v, i = fastpool.max_pool(np.arange(16.0).reshape(4, 4), 2, return_indices=True)
    attempt("unpool:ok", lambda: fastpool.max_unpool(v, i, (4, 4)))
    attempt("unpool:index_too_big", lambda: fastpool.max_unpool(v, i + 1000, (4, 4)))
    attempt("unpool:index_negative", lambda: fastpool.max_unpool(v, i - 1000, (4, 4)))
    attempt("unpool:index_min", lambda: fastpool.max_unpool(v, np.full_like(i, -(2**63)), (4, 4)))
    attempt("unpool:index_max", lambda: fastpool.max_unpool(v, np.full_like(i, 2**63 - 1), (4, 4)))
    attempt("unpool:shape_mismatch", lambda: fastpool.max_unpool(v, i[:1], (4, 4)))
    attempt("unpool:small_output", lambda: fastpool.max_unpool(v, i, (1, 1)))
    attempt("unpool:zero_output", lambda: fastpool.max_unpool(v, i, (0, 4)))
    attempt("unpool:wrong_ndim", lambda: fastpool.max_unpool(v, i, (4, 4, 4)))
    attempt("unpool:float_indices", lambda: fastpool.max_unpool(v, i.astype(float), (4, 4)))
    attempt("unpool:int32_indices", lambda: fastpool.max_unpool(v, i.astype(np.int32), (4, 4)))
    attempt("unpool:negative_shape", lambda: fastpool.max_unpool(v, i, (-4, 4)))
    attempt("unpool:huge_shape", lambda: fastpool.max_unpool(v, i, (2**40, 2**40)))
    attempt("unpool:bad_axes", lambda: fastpool.max_unpool(v, i, (4, 4), axes=(3,)))
    attempt("unpool:broadcast_vals", lambda: fastpool.max_unpool(np.broadcast_to(np.ones(2), (2, 2)), i, (4, 4)))
    attempt("set_workers_huge", lambda: fastpool.set_workers(10**6) and None)
    fastpool.set_workers(1)
    attempt("after_set_workers", lambda: fastpool.max_pool(np.ones((64, 64)), 2))
    print("RESULTS" + json.dumps(results))
""")


@pytest.fixture(scope="module")
def weird_results():
    proc = subprocess.run([sys.executable, "-c", WEIRD_SCRIPT], capture_output=True,
                          text=True, timeout=240)
    return proc


def test_weird_inputs_do_not_crash(weird_results):
    proc = weird_results
    assert proc.returncode == 0, (
        f"subprocess died with return code {proc.returncode}\n"
        f"stdout tail: {proc.stdout[-2000:]}\nstderr tail: {proc.stderr[-3000:]}")
    assert "RESULTS" in proc.stdout


def _results(proc):
    if proc.returncode != 0 or "RESULTS" not in proc.stdout:
        pytest.fail("the weird-input subprocess crashed; see test_weird_inputs_do_not_crash")
    return json.loads(proc.stdout.split("RESULTS", 1)[1])


def test_weird_inputs_outcomes(weird_results):
    """Where the contract says what must happen, it does."""
    res = _results(weird_results)
    bad = []
    for name, outcome in res.items():
        fname, _, case = name.partition(":")
        if fname.endswith("_pool"):
            # geometry that leaves no output element on a pooled axis: ValueError
            # (values beyond int64 may also be an OverflowError)
            k = int(case.split("=")[1]) if "=" in case else 0
            allowed = ("ValueError", "OverflowError") if k >= 2**63 else ("ValueError",)
            if case in ("empty_pooled", "empty_pooled_pad") or case.startswith(
                    ("size=", "dilation=", "dilation_pad=")) or case in (
                    "dilation_overflow", "dilation_overflow_ceil"):
                if outcome[0] not in allowed + ("OverflowError",) * case.startswith("dilation_overflow"):
                    bad.append((name, outcome))
            # a huge stride keeps exactly one window per axis
            elif case.startswith(("stride=", "stride_ceil=")):
                if not (outcome[0] == "ok" and outcome[1] == [1, 1] or k >= 2**63 and outcome[0] in allowed):
                    bad.append((name, outcome))
            elif case in ("padding_big", "size_stride_pad_big"):
                if outcome[0] != "ok" or outcome[1] != ([1, 1] if case == "padding_big" else [1, 5]):
                    bad.append((name, outcome))
            elif case == "size_neg_huge" and outcome[0] != "ValueError":
                bad.append((name, outcome))
            elif case == "empty_batch" and not (outcome[0] == "ok" and outcome[1] == [0, 3]
                                                or outcome[0] == "ValueError"):
                bad.append((name, outcome))
            elif case in ("broadcast", "broadcast_scalar", "unaligned", "unaligned_be",
                          "strided_huge", "many_dims", "many_dims2", "one_elem_pad",
                          "one_elem_pad_wrap", "tiny_big_window", "inf_all",
                          "workers_many") and outcome[0] != "ok":
                bad.append((name, outcome))
            elif case in ("broadcast_output", "readonly_output2") and outcome[0] not in (
                    "ValueError", "TypeError"):
                bad.append((name, outcome))
            elif case in ("output_dtype_complex", "output_dtype_object") and outcome[0] not in (
                    "TypeError", "ValueError"):
                bad.append((name, outcome))
    assert res["unpool:ok"][0] == "ok"
    for case in ("index_too_big", "index_negative", "index_min", "index_max"):
        if res["unpool:" + case][0] not in ("ValueError", "IndexError"):
            bad.append(("unpool:" + case, res["unpool:" + case]))
    assert not bad, bad
