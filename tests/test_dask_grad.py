"""fastpool.grad on Dask arrays: chunked as the input, bitwise the NumPy gradient."""

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastpool

# Each method with its own arguments (the sliding geometry is drawn apart).
METHODS = {
    "max_pool": {}, "min_pool": {}, "avg_pool": {}, "sum_pool": {},
    "median_pool": {}, "mode_pool": {},
    "rank_pool": {"rank": -1}, "percentile_pool": {"percentile": 30},
    "lp_pool": {"p": 3}, "soft_pool": {"beta": 2.0},
    "stochastic_pool": {"seed": 7}, "mixed_pool": {"seed": 11},
    "avgmax_pool": {}, "dpp_pool": {"alpha": 0.5, "lam": 2.0},
    "weighted_pool": {"weights": None}, "lip_pool": {"logits": None},
}
MODES = ("ignore", "constant", "reflect", "mirror", "nearest", "wrap")


def chunking(draw, n):
    """Random chunks summing to ``n``: uneven, ones, or one chunk."""
    kind = draw(st.sampled_from(["one", "ones", "random"]))
    if kind == "one" or n == 1:
        return (n,)
    if kind == "ones":
        return (1,) * n
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=4)))
    return tuple(b - a for a, b in zip([0] + cuts, cuts + [n]))


def equal_gradient(name, x, chunks, g_chunks, *args, **kw):
    """The Dask gradient (input and grad_output chunked as given) equals NumPy's
    bitwise, with the input's chunks and the same dtype."""
    forward = getattr(fastpool, name)(x, *args, **kw)
    forward = forward[0] if isinstance(forward, tuple) else forward
    rng = np.random.default_rng(x.size)
    g = rng.standard_normal(forward.shape)
    expected = getattr(fastpool.grad, name)(g, x, *args, **kw)
    d = da.from_array(x, chunks=chunks)
    got = getattr(fastpool.grad, name)(da.from_array(g, chunks=g_chunks), d, *args, **kw)
    assert got.chunks == d.chunks
    assert got.dtype == expected.dtype
    computed = got.compute()
    assert computed.dtype == expected.dtype
    np.testing.assert_array_equal(computed, expected)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_sliding_gradients_any_chunking(data):
    """Every sliding method's gradient, random geometry, modes and chunkings."""
    name = data.draw(st.sampled_from(sorted(METHODS)))
    ndim = data.draw(st.integers(1, 2))
    shape = tuple(data.draw(st.integers(3, 17)) for _ in range(ndim))
    size = data.draw(st.integers(1, 3))
    stride = data.draw(st.integers(1, 3))
    padding = data.draw(st.integers(0, size // 2))
    dilation = data.draw(st.integers(1, 2))
    mode = data.draw(st.sampled_from(MODES))
    ceil_mode = data.draw(st.booleans())
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.random(shape).astype(dtype) + (0.5 if name == "stochastic_pool" else 0)
    if name == "mode_pool":
        x = np.round(x * 3).astype(dtype)
    kw = dict(METHODS[name])
    args = (size, stride)
    for second in ("weights", "logits"):
        if kw.pop(second, False) is None:   # an array of the input's shape, first
            args = (rng.random(shape) + 0.1,) + args
    for own in ("rank", "percentile", "p"):   # positional, before size
        if own in kw:
            args = (kw.pop(own),) + args
    kw.update(padding=padding, dilation=dilation, mode=mode, ceil_mode=ceil_mode)
    try:
        forward = getattr(fastpool, name)(x, *args, **kw)
    except ValueError:
        assume(False)
    out_shape = np.shape(forward[0] if isinstance(forward, tuple) else forward)
    chunks = tuple(chunking(data.draw, n) for n in shape)
    g_chunks = tuple(chunking(data.draw, n) for n in out_shape)
    equal_gradient(name, x, chunks, g_chunks, *args, **kw)


@pytest.mark.parametrize("name, args, kw", [
    ("blur_pool", (), {}),
    ("blur_pool", (3,), {"order": 3, "mode": "wrap"}),
    ("maxblur_pool", (), {"size": 3}),
    ("catavgmax_pool", (2,), {"axes": (1, 2)}),
    ("catavgmax_pool", (3, 2), {"axes": (1, 2), "axis": 0, "padding": 1}),
    ("adaptive_pool", ((5, 4), "soft"), {"axes": (1, 2)}),
    ("adaptive_pool", ((13, 17), "stochastic"), {"axes": (1, 2), "seed": 3}),
    ("adaptive_avg_pool", ((4, 6),), {"axes": (1, 2)}),
    ("adaptive_max_pool", ((3, 7),), {"axes": (1, 2)}),
    ("global_pool", ("median",), {"axes": (1, 2)}),
    ("global_pool", ("mixed",), {"axes": (1, 2), "seed": 2, "keepdims": True}),
    ("global_avg_pool", (), {"axes": (1, 2)}),
    ("global_max_pool", (), {"axes": 2}),
    ("fractional_max_pool", ((6, 9),), {"axes": (1, 2), "seed": 4}),
    ("stochastic_pool", (3, 2), {"axes": (1, 2), "seed": 1, "padding": 1,
                                 "mode": "wrap"}),
])
def test_other_gradients(name, args, kw):
    """Functions with their own geometry or result layout, several chunkings."""
    x = np.random.default_rng(1).random((3, 12, 14)) + 0.25
    for chunks in [(1, 5, 4), (2, 12, 3), (3, (1, 11), (13, 1))]:
        forward = getattr(fastpool, name)(x, *args, **kw)
        shape = np.shape(forward[0] if isinstance(forward, tuple) else forward)
        equal_gradient(name, x, chunks, tuple(max(1, n // 2) for n in shape), *args, **kw)


def test_numpy_grad_output_and_threads():
    """A NumPy grad_output with a Dask input works, under the threaded scheduler."""
    x = np.random.default_rng(2).random((20, 24)).astype(np.float32)
    g = np.ones((10, 12))
    with dask.config.set(scheduler="threads"):
        got = fastpool.grad.max_pool(g, da.from_array(x, chunks=7), 3, 2, padding=1)
        np.testing.assert_array_equal(got.compute(),
                                      fastpool.grad.max_pool(g, x, 3, 2, padding=1))


def test_gradient_errors():
    """Shape and argument errors are raised at the call, as NumPy raises them."""
    d = da.zeros((8, 8), chunks=3)
    with pytest.raises(ValueError, match="grad_output has shape"):
        fastpool.grad.avg_pool(np.ones((3, 3)), d, 2)
    with pytest.raises(ValueError, match="size"):
        fastpool.grad.avg_pool(np.ones((4, 4)), d, 0)
    with pytest.raises(TypeError, match="output"):
        fastpool.grad.avg_pool(np.ones((4, 4)), d, 2, output=np.empty((8, 8)))
    out = fastpool.grad.avg_pool(np.ones((4, 4)), d, 2, output=np.float32)
    assert out.dtype == np.float32 and out.compute().dtype == np.float32
