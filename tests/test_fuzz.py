"""Crash-only fuzzing: every public function on hostile arrays and parameters.

Any array (zero-length and length-1 axes, negative and zero strides, unaligned
views, big-endian, read-only, every dtype, unsupported ones included) and any
parameter (at and past its limits, of the wrong type) must give a result or a
``TypeError`` / ``ValueError`` (``MemoryError`` for what cannot fit): never a
crash, another exception, or a result of the wrong shape.  A crash kills the
test process, which fails the run.  ``FASTPOOL_FUZZ_EXAMPLES`` sets how many
examples (CI: a smoke run; the long runs are documented in docs/reliability.md).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpool

EXAMPLES = int(os.environ.get("FASTPOOL_FUZZ_EXAMPLES", "400"))
ALLOWED = (TypeError, ValueError, MemoryError)

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64",
          "int64", "float16", "float32", "float64", ">f4", ">i2", ">u8", "complex64",
          "object", "U2", "datetime64[s]"]

# function -> the extra positional arguments before ``size`` and own keywords
SLIDING = {
    "max_pool": {"return_indices": st.booleans()},
    "min_pool": {"return_indices": st.booleans()},
    "avg_pool": {"divisor": st.sampled_from([None, 0, 1, -3, 2.5, 10**30])},
    "sum_pool": {},
    "median_pool": {},
    "mode_pool": {},
    "rank_pool": {"rank": st.sampled_from([0, 1, -1, 5, -100, 10**20, 1.5])},
    "percentile_pool": {"percentile": st.sampled_from([0, 50, 100, -1, 101,
                                                       float("nan"), "50"])},
    "lp_pool": {"p": st.sampled_from([1, 2, 3, 0.5, 0, -1, float("inf"),
                                      float("nan")]),
                "average": st.booleans()},
    "soft_pool": {"beta": st.sampled_from([1.0, 0.0, -2.0, float("inf"),
                                           float("-inf"), float("nan"), 1e308])},
    "stochastic_pool": {"training": st.booleans(), "seed": st.sampled_from([0, 1, None])},
    "mixed_pool": {"alpha": st.sampled_from([None, 0.0, 0.5, 1.0, -0.1, 2.0,
                                             float("nan")]),
                   "seed": st.sampled_from([0, None])},
    "avgmax_pool": {},
    "catavgmax_pool": {"axis": st.sampled_from([None, 0, -1, 5])},
    "dpp_pool": {"alpha": st.sampled_from([1.0, 0.0, -1.0]),
                 "lam": st.sampled_from([1.0, 0.0, 3.0, -1.0]),
                 "asymmetric": st.booleans()},
    "weighted_pool": {},
    "lip_pool": {},
    "generic_pool": {},
}
POSITIONAL = {"rank_pool": "rank", "percentile_pool": "percentile", "lp_pool": "p"}
SECOND = {"weighted_pool", "lip_pool"}


@st.composite
def arrays(draw):
    """A hostile array: any dtype, shape with 0/1 lengths, and layout."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.sampled_from([0, 1, 1, 2, 3, 5, 8])) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = int(np.prod(shape))
    if dtype.kind in "biuf":
        special = draw(st.booleans())
        values = rng.normal(0, 100, n)
        if special and dtype.kind == "f":
            values[rng.random(n) < 0.3] = np.nan
            values[rng.random(n) < 0.1] = np.inf
            values[rng.random(n) < 0.1] = -np.inf
        with np.errstate(all="ignore"):
            x = values.astype(dtype) if dtype.kind != "b" else values > 0
        if dtype.kind in "iu" and special:
            info = np.iinfo(dtype)
            x.flat[::2] = info.max
            x.flat[1::3] = info.min
    elif dtype.kind == "c":
        x = (rng.normal(size=n) + 1j).astype(dtype)
    elif dtype.kind == "O":
        x = np.array([object()] * n, dtype=object)
    elif dtype.kind == "M":
        x = np.zeros(n, dtype=dtype)
    else:
        x = np.array(["ab"] * n, dtype=dtype)
    x = x.reshape(shape)
    layout = draw(st.sampled_from(["c", "f", "reversed", "strided", "broadcast",
                                   "unaligned", "oddstride", "readonly"]))
    if layout == "f":
        x = np.asfortranarray(x)
    elif layout == "reversed":
        x = x[tuple(slice(None, None, -1) for _ in shape)]
    elif layout == "strided" and n:
        big = np.repeat(x, 2, axis=-1)
        x = big[..., ::2]
    elif layout == "broadcast" and ndim >= 2 and shape[0]:
        x = np.broadcast_to(x[:1], (draw(st.sampled_from([0, 1, 4])),) + shape[1:])
    elif layout == "unaligned" and dtype.kind in "biufc" and dtype.itemsize > 1:
        raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
        y = np.frombuffer(raw.data, dtype=x.dtype, count=x.size, offset=1)
        y = y.reshape(shape) if not y.flags.writeable else y.reshape(shape)
        x = np.lib.stride_tricks.as_strided(y, shape, y.strides)
    elif layout == "oddstride" and dtype.kind in "biufc" and dtype.itemsize > 1 and n:
        # Strides that are no multiple of the itemsize: a view into a byte buffer.
        strides, step = [], dtype.itemsize + 1
        for length in reversed(shape):
            strides.append(step)
            step *= max(length, 1)
        strides = tuple(reversed(strides))
        raw = rng.integers(0, 256, sum((k - 1) * s for k, s in zip(shape, strides))
                           + dtype.itemsize, dtype=np.uint8)
        x = np.ndarray(shape, dtype=dtype, buffer=raw, strides=strides)
    elif layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
    return x


def per_axis(draw, lo, hi):
    """Mostly a valid value (so the kernels run), else one past a limit or of a
    wrong type."""
    if draw(st.integers(0, 3)):
        return draw(st.sampled_from([lo, hi, (lo, hi), (hi, lo)]))
    return draw(st.sampled_from([0, -1, 10**12, 2**63, (2, 2, 2, 2, 2), (1, 0), 2.0,
                                 "2", None, float("nan")]))


@st.composite
def geometry(draw):
    kw = {}
    if draw(st.booleans()):
        kw["stride"] = per_axis(draw, 1, 3)
    if draw(st.booleans()):
        kw["padding"] = per_axis(draw, 0, 1)
    if draw(st.booleans()):
        kw["dilation"] = per_axis(draw, 1, 2)
    if draw(st.booleans()):
        kw["ceil_mode"] = draw(st.sampled_from([True, False, 1, "yes"]))
    if draw(st.booleans()):
        kw["mode"] = draw(st.sampled_from(["ignore", "constant", "reflect", "mirror",
                                           "nearest", "wrap", "bogus", None]))
    if draw(st.booleans()):
        kw["cval"] = draw(st.sampled_from([0, -1, 1e300, float("nan"), float("inf"),
                                           2**70, "x"]))
    if draw(st.booleans()):
        kw["nan_policy"] = draw(st.sampled_from(["propagate", "omit", "raise", "x"]))
    if draw(st.booleans()):
        kw["nodata"] = draw(st.sampled_from([None, 0, -1, float("nan"), 1e300, 300]))
    if draw(st.booleans()):
        kw["axes"] = draw(st.sampled_from([None, 0, -1, (0, 0), (1, 0), 7, (0, 1, 2, 3),
                                           "0", 1.0]))
    if draw(st.booleans()):
        kw["workers"] = draw(st.sampled_from([None, 1, 2, -1, 0, -5, 1000, 1.5]))
    return kw


def check(call):
    """``call()`` returns arrays or raises an allowed error."""
    try:
        result = call()
    except ALLOWED:
        return None
    parts = result if isinstance(result, (tuple, list)) else (result,)
    for part in parts:
        assert isinstance(part, np.ndarray), type(part)
        assert all(n >= 0 for n in part.shape)
    return result


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(SLIDING)), x=arrays(), geo=geometry(),
       size=st.sampled_from([1, 2, 3, (2, 1), (3, 2), 2, 3, 0, -2, 10**9, 2**62, None,
                             2.5]),
       output=st.sampled_from([None, "float64", "int8", "uint8", "bool", "complex64",
                               "wrong-shape", "readonly"]),
       data=st.data())
def test_sliding_functions(name, x, geo, size, output, data):
    """Every sliding function: a result of the right kind or a clean error."""
    kw = dict(geo)
    for key, strategy in SLIDING[name].items():
        kw[key] = data.draw(strategy)
    args = [x]
    if name in POSITIONAL:
        args.append(kw.pop(POSITIONAL[name]))
    if name in SECOND:
        args.append(np.ones(x.shape) if data.draw(st.booleans()) else np.ones(3))
    if name == "generic_pool":
        args.append(data.draw(st.sampled_from([np.max, len, None, "max"])))
    args.append(size)
    if output == "wrong-shape":
        kw["output"] = np.empty((1,) * (x.ndim + 1))
    elif output == "readonly":
        out = np.empty(x.shape)
        out.flags.writeable = False
        kw["output"] = out
    elif output is not None:
        kw["output"] = np.dtype(output)
    with np.errstate(all="ignore"):
        check(lambda: getattr(fastpool, name)(*args, **kw))
        if name != "generic_pool":
            g = np.ones(3) if data.draw(st.booleans()) else None
            result = None
            try:
                result = getattr(fastpool, name)(*args, **kw)
            except ALLOWED:
                pass
            if result is not None:
                forward = result[0] if isinstance(result, tuple) else result
                g = np.ones(forward.shape)
            kw.pop("output", None)
            check(lambda: getattr(fastpool.grad, name)(g, *args, **kw))


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(x=arrays(), data=st.data())
def test_geometry_functions(x, data):
    """Adaptive, global, fractional, pyramid, unpooling and blur: clean errors only."""
    method = data.draw(st.sampled_from(["avg", "max", "median", "mode", "soft", "sum",
                                        "stochastic", "catavgmax", "bogus"]))
    axes = data.draw(st.sampled_from([None, 0, -1, (0, 0), 9]))
    out_size = data.draw(st.sampled_from([1, 2, 3, 0, -1, None, (2, 2), 10**4]))
    with np.errstate(all="ignore"):
        check(lambda: fastpool.adaptive_pool(x, out_size, method, axes=axes))
        check(lambda: fastpool.global_pool(x, method, axes=axes,
                                           keepdims=data.draw(st.booleans())))
        check(lambda: fastpool.fractional_max_pool(
            x, output_size=out_size, size=data.draw(st.sampled_from([1, 2, 3, 0])),
            seed=0, axes=axes, return_indices=data.draw(st.booleans())))
        check(lambda: fastpool.pyramid(x, data.draw(st.sampled_from([None, 1, 2, 0, 40])),
                                       data.draw(st.sampled_from([2, 3, 1, 0, (2, 1)])),
                                       method, axes=axes))
        check(lambda: fastpool.blur_pool(x, data.draw(st.sampled_from([1, 2, 3, 0])),
                                         order=data.draw(st.sampled_from([0, 1, 2, 6, 7])),
                                         axes=axes))
        check(lambda: fastpool.maxblur_pool(x, 2, size=data.draw(st.sampled_from([1, 2, 0])),
                                            axes=axes))
        idx = data.draw(st.sampled_from(["good", "negative", "huge", "float"]))
        indices = {"good": np.zeros(x.shape, np.int64),
                   "negative": -np.ones(x.shape, np.int64),
                   "huge": np.full(x.shape, 2**62, np.int64),
                   "float": np.zeros(x.shape)}[idx]
        shape = data.draw(st.sampled_from([x.shape, tuple(2 * n for n in x.shape), (),
                                           (-1,) * x.ndim]))
        check(lambda: fastpool.max_unpool(x, indices, shape, axes=axes))


# The cases the fuzzing found, kept as regression tests.

def test_found_divisor_past_64_bits():
    """avg_pool(divisor=10**30) raised OverflowError from the kernel call."""
    with pytest.raises(ValueError, match="divisor"):
        fastpool.avg_pool(np.ones(4), 2, divisor=10**30)


@pytest.mark.parametrize("name", ["stride", "padding", "dilation", "size"])
def test_found_geometry_past_64_bits(name):
    """A stride, padding, dilation or size of 2**63 raised OverflowError."""
    kw = {"size": 2, name: 2**63}
    with pytest.raises(ValueError, match=name):
        fastpool.max_pool(np.ones(4), **kw)


def test_found_table_larger_than_memory():
    """A window of 10**9 samples made valid by padding built a table of 10**9
    entries per temporary array, and the process was killed."""
    with pytest.raises(MemoryError, match="table"):
        fastpool.avg_pool(np.ones(3), 10**9, padding=5 * 10**8)


@pytest.mark.parametrize("name", ["median_pool", "max_pool", "avg_pool", "soft_pool"])
def test_found_contiguous_misaligned_input(name):
    """A C-contiguous float32 view at an odd address reached the kernels as it
    was (UndefinedBehaviorSanitizer: misaligned loads): now read through an
    aligned copy, with the aligned array's result."""
    raw = np.zeros(4 * 64 + 1, dtype=np.uint8)
    view = np.frombuffer(raw.data, dtype=np.float32, count=64, offset=1).reshape(8, 8)
    assert not view.flags.aligned and view.flags.c_contiguous
    aligned = np.arange(64, dtype=np.float32).reshape(8, 8) % 7
    raw[1:] = np.frombuffer(aligned.tobytes(), dtype=np.uint8)
    np.testing.assert_array_equal(getattr(fastpool, name)(view, 3, 1),
                                  getattr(fastpool, name)(aligned, 3, 1))
    g = np.frombuffer(np.zeros(8 * 36 + 1, np.uint8).data, np.float64, 36, 1).reshape(6, 6)
    np.testing.assert_array_equal(fastpool.grad.max_pool(g, view, 3, 1),
                                  fastpool.grad.max_pool(np.zeros((6, 6)), aligned, 3, 1))
