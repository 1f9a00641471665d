"""Gradients of every pooling function: fastpool.grad.

Oracles:
* PyTorch autograd (CPU) for max, avg and lp pooling, adaptive and global avg/max
  pooling and fractional max pooling;
* tests/reference_grad.py, a slow per-window reference on the window lists of
  tests/reference_weighted.py (selections picked in Python, smooth formulas
  differentiated by torch autograd in float64), on randomized shapes, batch axes,
  axes subsets, strides, padding, dilation, ceil_mode, modes, nan_policy and nodata;
* central finite differences of fastpool's own forward functions;
* the adjoint identity <pool(x), g> == <x, grad(g)> of the linear methods;
* bitwise determinism over thread counts and memory layouts;
* small hand-checked cases, errors and result dtypes.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastpool
from reference import (
    ALL_DTYPES,
    LAYOUTS,
    MODES,
    geometry,
    has_empty_window,
    normalize_axes,
    output_length,
    relayout,
)
from reference_geometry import adaptive_positions
from reference_grad import (
    ref_grad,
    ref_grad_adaptive,
    ref_grad_blur,
    ref_grad_catavgmax,
    ref_grad_fractional,
    ref_grad_global,
    ref_grad_maxblur,
)
from reference_weighted import seed_key, uniform

# the method's own parameter that the forward function takes before ``size``
POSITIONAL = {"lp": "p", "weighted": "weights", "lip": "logits", "rank": "rank",
              "percentile": "percentile"}


def fp_call(module, method, x, size, params, geo, g=None):
    """fastpool.<method>_pool (module fastpool) or fastpool.grad.<method>_pool (with
    ``g``) with the method's ``params`` and the geometry ``geo``."""
    p = dict(params)
    args = [p.pop(POSITIONAL[method])] if method in POSITIONAL else []
    fn = getattr(module, f"{method}_pool")
    if g is None:
        return fn(x, *args, size, **p, **geo)
    return fn(g, x, *args, size, **p, **geo)


def fp_grad(method, g, x, size, params, geo):
    return fp_call(fastpool.grad, method, x, size, params, geo, g=g)


def fp_forward(method, x, size, params, geo):
    return fp_call(fastpool, method, x, size, params, geo)


def grad_dtype(in_dtype):
    return np.dtype(np.float32 if np.dtype(in_dtype) in (np.float16, np.float32)
                    else np.float64)


def assert_grad(got, want, in_dtype=np.float64, rtol=None, context=""):
    """``got`` has the input's shape, the gradient dtype, NaN where ``want`` has, and
    agrees within ``rtol`` (1e-9 for float64, 2e-6 for float32 results)."""
    assert got.shape == want.shape, context
    assert got.dtype == grad_dtype(in_dtype), (got.dtype, context)
    if rtol is None:
        rtol = 1e-9 if got.dtype == np.float64 else 2e-6
    finite = want[np.isfinite(want)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol,
                               atol=rtol * scale, equal_nan=True, err_msg=context)


def torch_grad(fn, x, g):
    """d(sum(g * fn(x))) / dx by PyTorch autograd, as a NumPy array."""
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    assert tuple(out.shape) == g.shape, (tuple(out.shape), g.shape)
    out.backward(torch.tensor(g, dtype=out.dtype))
    return xt.grad.numpy()


def ntuple(v, d):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * d


# ---------------------------------------------------------------------------
# small hand-checked cases


def test_docstring_examples():
    x = np.array([[1., 5., 2., 0.], [3., 4., 8., 8.]])
    np.testing.assert_array_equal(fastpool.grad.max_pool(np.ones((1, 2)), x, 2),
                                  [[0, 1, 0, 0], [0, 0, 1, 0]])  # 8, 8 tie: the first
    np.testing.assert_array_equal(fastpool.grad.avg_pool(np.ones((1, 2)), x, 2),
                                  np.full((2, 4), 0.25))


def test_hand_checked_geometry():
    x = np.array([5.0, 1.0, 2.0])
    # reflect: window 0 reads [x0, x0, x1]; x0 receives g[0] once, not twice
    np.testing.assert_array_equal(
        fastpool.grad.max_pool(np.ones(3), x, 3, 1, padding=1, mode="reflect"), [2, 0, 1])
    # a cval that ties with the first real sample comes first in C order: nothing sent
    np.testing.assert_array_equal(
        fastpool.grad.max_pool(np.ones(2), np.array([2.0, 1.0]), 3, 1, padding=1,
                               mode="constant", cval=2), [1, 0])
    # a cval that wins sends nothing
    np.testing.assert_array_equal(
        fastpool.grad.max_pool(np.ones(3), np.array([1.0, 2.0, 5.0]), 3, 1, padding=1,
                               mode="constant", cval=9), [0, 0, 1])
    # avg shares add up on the cell a mode copies: [x0 x0 x1] [x0 x1 x2] [x1 x2 x2]
    got = fastpool.grad.avg_pool(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]), 3,
                                 1, padding=1, mode="reflect")
    np.testing.assert_allclose(got, [4 / 3, 7 / 3, 10 / 3], rtol=1e-15)
    # cval samples count in the mean, and receive nothing
    got = fastpool.grad.avg_pool(np.ones(2), np.array([1.0, 2.0]), 3, 1, padding=1,
                                 mode="constant")
    np.testing.assert_allclose(got, [2 / 3, 2 / 3], rtol=1e-15)
    # divisor replaces the count
    np.testing.assert_allclose(fastpool.grad.avg_pool(np.ones(2), np.arange(4.0), 2,
                                                      divisor=4), np.full(4, 0.25))


def test_hand_checked_nan():
    x = np.array([np.nan, 1.0, 2.0, 3.0])
    g = np.ones(2)
    # propagate: NaN elements get the same share (PyTorch's avg backward)
    np.testing.assert_array_equal(fastpool.grad.avg_pool(g, x, 2), [0.5] * 4)
    np.testing.assert_array_equal(fastpool.grad.sum_pool(g, x, 2), [1.0] * 4)
    # omit: NaN gets nothing and is not counted
    np.testing.assert_array_equal(fastpool.grad.avg_pool(g, x, 2, nan_policy="omit"),
                                  [0, 1, 0.5, 0.5])
    # a NaN result selects the first NaN
    np.testing.assert_array_equal(
        fastpool.grad.max_pool(np.ones(1), np.array([1.0, np.nan, np.nan, 2.0]), 4),
        [0, 1, 0, 0])
    # a smooth method's NaN window sends NaN to each of its samples
    got = fastpool.grad.soft_pool(g, x, 2)
    assert np.isnan(got[:2]).all() and np.isfinite(got[2:]).all()
    # nodata elements get nothing and are not counted
    np.testing.assert_array_equal(
        fastpool.grad.avg_pool(g, np.array([-1.0, 1.0, 2.0, -1.0]), 2, nodata=-1.0),
        [0, 1, 1, 0])


@pytest.mark.parametrize("p", [1, 2, 0.5, 3])
@pytest.mark.parametrize("average", [False, True])
def test_lp_zero_window_sends_zero(p, average):
    x = np.array([0.0, 0.0, 3.0, 4.0])
    got = fastpool.grad.lp_pool(np.ones(2), x, p, 2, average=average)
    np.testing.assert_array_equal(got[:2], [0.0, 0.0])
    n = 2 if average else 1
    out = (np.sum(x[2:] ** p) / n) ** (1 / p)
    np.testing.assert_allclose(got[2:], x[2:] ** (p - 1) * out ** (1 - p) / n, rtol=1e-13)


def test_stochastic_all_zero_window_sends_nothing():
    x = np.array([0.0, 0.0, 1.0, 3.0])
    got = fastpool.grad.stochastic_pool(np.array([2.0, 5.0]), x, 2, seed=3)
    assert got[0] == 0 and got[1] == 0
    assert sorted(got[2:]) == [0.0, 5.0]


def test_stochastic_follows_the_forward_draw():
    """With blocks (stride = size) the gradient of ones lands, in every window, on a
    cell that holds the forward's result, and g[o] replays with the same seed."""
    rng = np.random.default_rng(11)
    x = rng.random((12, 12)) + 0.01
    for seed in range(5):
        out = fastpool.stochastic_pool(x, 3, seed=seed)
        gx = fastpool.grad.stochastic_pool(np.ones(out.shape), x, 3, seed=seed)
        blocks = gx.reshape(4, 3, 4, 3).transpose(0, 2, 1, 3).reshape(4, 4, 9)
        xb = x.reshape(4, 3, 4, 3).transpose(0, 2, 1, 3).reshape(4, 4, 9)
        assert (blocks.sum(-1) == 1).all() and ((blocks == 0) | (blocks == 1)).all()
        np.testing.assert_array_equal(xb[blocks == 1].reshape(4, 4), out)
        again = fastpool.grad.stochastic_pool(np.ones(out.shape), x, 3, seed=seed)
        np.testing.assert_array_equal(gx, again)


def test_stochastic_draw_by_hand():
    """One window [1, 2, 3]: u < 1/6 picks x0, u < 1/2 x1, else x2."""
    x = np.array([1.0, 2.0, 3.0])
    for seed in range(8):
        u = uniform(seed_key(seed), 0)
        want = np.zeros(3)
        want[0 if u * 6 < 1 else 1 if u * 6 < 3 else 2] = 7.0
        got = fastpool.grad.stochastic_pool(np.array([7.0]), x, 3, seed=seed)
        np.testing.assert_array_equal(got, want)


def test_mixed_alpha_none_by_hand():
    x = np.array([1.0, 4.0, 2.0, 3.0])
    for seed in range(8):
        u = uniform(seed_key(seed), 0)
        want = [0, 6.0, 0, 0] if u < 0.5 else [1.5] * 4
        got = fastpool.grad.mixed_pool(np.array([6.0]), x, 4, seed=seed)
        np.testing.assert_array_equal(got, want)


def test_return_indices_is_ignored():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 7))
    g = rng.standard_normal((3, 3))
    for name in ("max_pool", "min_pool"):
        fn = getattr(fastpool.grad, name)
        np.testing.assert_array_equal(fn(g, x, 2, return_indices=True), fn(g, x, 2))
    np.testing.assert_array_equal(
        fastpool.grad.adaptive_max_pool(g, x, 3, return_indices=True),
        fastpool.grad.adaptive_max_pool(g, x, 3))
    g0 = np.float64(2.5)
    np.testing.assert_array_equal(fastpool.grad.global_max_pool(g0, x, return_indices=True),
                                  fastpool.grad.global_max_pool(g0, x))


def test_alpha_and_beta_limits():
    """mixed alpha=1 is max, alpha=0 avg; soft beta=+-inf is max / min; lp p=inf max."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 8))
    g = rng.standard_normal((5, 4))
    kw = dict(axes=-1)
    gmax = fastpool.grad.max_pool(g, x, 2, **kw)
    np.testing.assert_array_equal(fastpool.grad.mixed_pool(g, x, 2, alpha=1.0, **kw), gmax)
    np.testing.assert_array_equal(fastpool.grad.mixed_pool(g, x, 2, alpha=0.0, **kw),
                                  fastpool.grad.avg_pool(g, x, 2, **kw))
    np.testing.assert_array_equal(fastpool.grad.soft_pool(g, x, 2, beta=np.inf, **kw), gmax)
    np.testing.assert_array_equal(fastpool.grad.soft_pool(g, x, 2, beta=-np.inf, **kw),
                                  fastpool.grad.min_pool(g, x, 2, **kw))
    np.testing.assert_array_equal(fastpool.grad.lp_pool(g, x, np.inf, 2, **kw), gmax)


# ---------------------------------------------------------------------------
# PyTorch autograd


TORCH_DTYPES = [np.float64, np.float32]
TORCH_SHAPES = {1: (2, 3, 13), 2: (2, 3, 9, 8), 3: (1, 2, 6, 5, 7)}
# (kernel, stride, padding, dilation, ceil_mode)
MAX_CONFIGS = [
    (2, None, 0, 1, False),
    (3, 1, 1, 1, False),
    (3, 2, 1, 1, True),
    (2, 1, 1, 1, True),
    (3, 2, 0, 2, False),
    (3, 1, 1, 2, True),
    (4, 3, 2, 1, True),
]


def _torch_fn(kind, d):
    return getattr(F, f"{kind}{d}d")


def _rtol(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("config", MAX_CONFIGS)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_vs_torch(d, dtype, config, ties):
    k, s, p, dil, ceil = config
    rng = np.random.default_rng([d, MAX_CONFIGS.index(config), ties])
    x = rng.standard_normal(TORCH_SHAPES[d])
    if ties:  # integer values: many ties, the first in C order wins
        x = np.round(x)
    x = x.astype(dtype)
    fn = _torch_fn("max_pool", d)

    def tfn(t):
        return fn(t, k, stride=s, padding=p, dilation=dil, ceil_mode=ceil)

    g = rng.standard_normal(tuple(tfn(torch.tensor(x)).shape)).astype(dtype)
    want = torch_grad(tfn, x, g)
    axes = tuple(range(-d, 0))
    got = fastpool.grad.max_pool(g, x, k, s, padding=p, dilation=dil, ceil_mode=ceil,
                                 axes=axes)
    assert_grad(got, want.astype(np.float64), dtype, rtol=_rtol(dtype))


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CONFIGS = [
    (2, None, 0, False, True, None),
    (3, 1, 1, False, True, None),
    (3, 1, 1, False, False, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    (2, 1, 1, True, False, None),
    (4, 3, 2, True, True, None),
    (3, 2, 1, False, True, 5),
    (3, 2, 1, True, False, -2),
]


@pytest.mark.parametrize("d, config", [(d, c) for d in (1, 2, 3) for c in AVG_CONFIGS
                                        if d > 1 or c[5] is None])  # no 1-d divisor
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_avg_pool_vs_torch(d, dtype, config):
    k, s, p, ceil, include, divisor = config
    rng = np.random.default_rng([d, AVG_CONFIGS.index(config)])
    x = rng.standard_normal(TORCH_SHAPES[d]).astype(dtype)
    fn = _torch_fn("avg_pool", d)
    extra = {} if d == 1 else dict(divisor_override=divisor)

    def tfn(t):
        return fn(t, k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=include,
                  **extra)

    g = rng.standard_normal(tuple(tfn(torch.tensor(x)).shape)).astype(dtype)
    want = torch_grad(tfn, x, g)
    mode = dict(mode="constant", cval=0.0) if include else dict(mode="ignore")
    got = fastpool.grad.avg_pool(g, x, k, s, padding=p, ceil_mode=ceil,
                                 axes=tuple(range(-d, 0)), divisor=divisor, **mode)
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 1.5, 0.8])
@pytest.mark.parametrize("ks", [(2, None), (3, 2), (3, 1)])
def test_lp_pool_vs_torch(d, dtype, p, ks):
    k, s = ks
    rng = np.random.default_rng([d, int(p * 10), k])
    x = (np.abs(rng.standard_normal(TORCH_SHAPES[d])) + 0.05).astype(dtype)
    fn = _torch_fn("lp_pool", d)

    def tfn(t):
        return fn(t, p, k, stride=s)

    g = rng.standard_normal(tuple(tfn(torch.tensor(x)).shape)).astype(dtype)
    want = torch_grad(tfn, x, g)
    got = fastpool.grad.lp_pool(g, x, p, k, s, axes=tuple(range(-d, 0)))
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-10 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("out", [1, 2, 3, 4, 8])
def test_adaptive_vs_torch(d, dtype, kind, out):
    rng = np.random.default_rng([d, out, kind == "max"])
    x = rng.standard_normal(TORCH_SHAPES[d]).astype(dtype)  # tie-free
    size = tuple(out + i for i in range(d))  # 3x4 ... : some bigger than the input
    fn = _torch_fn(f"adaptive_{kind}_pool", d)

    def tfn(t):
        r = fn(t, size)
        return r[0] if kind == "max" and isinstance(r, tuple) else r

    g = rng.standard_normal(tuple(tfn(torch.tensor(x)).shape)).astype(dtype)
    want = torch_grad(tfn, x, g)
    axes = tuple(range(-d, 0))
    got = getattr(fastpool.grad, f"adaptive_{kind}_pool")(g, x, size, axes=axes)
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-12 if dtype == np.float64 else 1e-5)
    got = fastpool.grad.adaptive_pool(g, x, size, kind, axes=axes)
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("axes", [None, (1,), (-1, 0), (1, 3), (0, 2, 3)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_vs_torch(dtype, kind, axes, keepdims):
    rng = np.random.default_rng([kind == "max", keepdims, len(axes or ())])
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)  # tie-free (amax splits ties)
    dims = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)

    def tfn(t):
        if kind == "avg":
            return t.mean(dim=dims, keepdim=keepdims)
        return t.amax(dim=dims, keepdim=keepdims)

    g = np.asarray(rng.standard_normal(tuple(tfn(torch.tensor(x)).shape))).astype(dtype)
    want = torch_grad(tfn, x, g)
    got = getattr(fastpool.grad, f"global_{kind}_pool")(g, x, axes=axes, keepdims=keepdims)
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-12 if dtype == np.float64 else 1e-5)
    got = fastpool.grad.global_pool(g, x, kind, axes=axes, keepdims=keepdims)
    assert_grad(got, want.astype(np.float64), dtype,
                rtol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("case", range(4))
def test_fractional_max_pool2d_vs_torch(dtype, case):
    rng = np.random.default_rng([case, dtype == np.float32])
    shape = [(2, 3, 11, 9), (1, 2, 8, 8), (2, 1, 13, 7), (1, 1, 5, 6)][case]
    k = [(2, 3), 2, (3, 2), 2][case]
    out = [(5, 4), (4, 7), (6, 3), (4, 5)][case]
    x = rng.standard_normal(shape)
    if case == 3:
        x = np.round(x)  # ties: the first in C order
    x = x.astype(dtype)
    # fastpool's samples (*batch, 2) in ascending axis order (H, W); PyTorch's (W, H)
    samples = rng.random(shape[:2] + (2,)).astype(dtype).astype(np.float64)
    torch_samples = torch.tensor(samples[..., ::-1].copy(), dtype=torch.from_numpy(x).dtype)

    def tfn(t):
        return F.fractional_max_pool2d(t, k, output_size=out,
                                       _random_samples=torch_samples)

    g = rng.standard_normal(shape[:2] + out).astype(dtype)
    want = torch_grad(tfn, x, g)
    got = fastpool.grad.fractional_max_pool(g, x, out, size=k, samples=samples,
                                            axes=(-2, -1))
    assert_grad(got, want.astype(np.float64), dtype, rtol=_rtol(dtype))


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_fractional_max_pool3d_vs_torch(dtype):
    rng = np.random.default_rng(7)
    shape, k, out = (2, 2, 7, 6, 8), 2, (4, 3, 5)
    x = rng.standard_normal(shape).astype(dtype)
    samples = rng.random(shape[:2] + (3,)).astype(dtype).astype(np.float64)
    torch_samples = torch.tensor(samples, dtype=torch.from_numpy(x).dtype)  # axis order

    def tfn(t):
        return F.fractional_max_pool3d(t, k, output_size=out,
                                       _random_samples=torch_samples)

    g = rng.standard_normal(shape[:2] + out).astype(dtype)
    want = torch_grad(tfn, x, g)
    got = fastpool.grad.fractional_max_pool(g, x, out, size=k, samples=samples,
                                            axes=(-3, -2, -1))
    assert_grad(got, want.astype(np.float64), dtype, rtol=_rtol(dtype))


# ---------------------------------------------------------------------------
# the reference: randomized cases per method

DIMS = {1: 8, 2: 6, 3: 4}
CASES = 30


def random_geometry(rng, *, modes=MODES, max_size=3):
    """A random sliding geometry with every window non-empty: ``(shape, geo)``, geo
    holding size, stride, padding, dilation, ceil_mode, mode and axes (per-axis
    values in the order of ``axes``, which may be permuted and negative)."""
    while True:
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, DIMS[ndim] + 1, size=ndim))
        if rng.random() < 0.4:
            axes, given = None, list(range(ndim))
        else:
            count = int(rng.integers(1, ndim + 1))
            given = [int(a) for a in rng.permutation(ndim)[:count]]
            axes = tuple(a - ndim if rng.random() < 0.5 else a for a in given)
            if len(axes) == 1 and rng.random() < 0.5:
                axes = axes[0]
        m = len(given)
        ks = [int(v) for v in rng.integers(1, max_size + 1, size=m)]
        ss = (None if rng.random() < 0.3
              else [int(v) for v in rng.integers(1, max_size + 1, size=m)])
        ps = [int(rng.integers(0, k // 2 + 1)) for k in ks]
        ds = ([int(v) for v in rng.integers(1, 3, size=m)] if rng.random() < 0.3
              else [1] * m)
        ceil = bool(rng.random() < 0.4)
        mode = str(rng.choice(modes))
        if any(output_length(shape[a], k, s, p, d, ceil) < 1
               for a, k, s, p, d in zip(given, ks, ss or ks, ps, ds)):
            continue
        geo = dict(size=tuple(ks), stride=None if ss is None else tuple(ss),
                   padding=tuple(ps), dilation=tuple(ds), ceil_mode=ceil, mode=mode,
                   axes=axes)
        if has_empty_window(shape, **geo):
            continue
        return shape, geo


def out_shape_of(shape, geo):
    return geometry(shape, geo["size"], geo["stride"], geo["padding"], geo["dilation"],
                    geo["ceil_mode"], geo["mode"], geo["axes"])[2]


# what each method accepts: non-negative input, NaN under 'propagate'
NON_NEGATIVE = ("lp", "stochastic")
NO_PROPAGATED_NAN = ("stochastic", "mixed")  # the contract says nothing there
REF_METHODS = ("max", "min", "median", "rank", "percentile", "mode", "avg", "sum", "lp",
               "soft", "weighted", "lip", "dpp", "stochastic", "mixed", "avgmax",
               "catavgmax")


def method_params(rng, method, shape, geo):
    """The method's own parameters (fastpool's and the reference's are the same)."""
    wsize = int(np.prod(geo["size"]))
    if method == "rank":
        return dict(rank=int(rng.integers(-wsize, wsize)))
    if method == "percentile":
        return dict(percentile=float(rng.choice([0, 100, 50, 25, 37.5, 90, -20, -100])))
    if method == "avg":
        return dict(divisor=[None, None, 3, -2][int(rng.integers(4))])
    if method == "lp":
        return dict(p=float(rng.choice([1.0, 2.0, 3.0, 1.5, 0.75, 4.0])),
                    average=bool(rng.random() < 0.5))
    if method == "soft":
        return dict(beta=float(rng.choice([1.0, 0.5, -1.5, 0.0, 2.0])))
    if method == "weighted":
        return dict(weights=rng.uniform(0.2, 2.0, shape))
    if method == "lip":
        return dict(logits=rng.standard_normal(shape) * 2)
    if method == "dpp":
        return dict(alpha=float(rng.choice([0.0, 1.0, 0.5])),
                    lam=float(rng.choice([0.0, 1.0, 2.0, 0.5, 3.0])),
                    asymmetric=bool(rng.random() < 0.5))
    if method == "stochastic":
        return dict(training=bool(rng.random() < 0.6), seed=int(rng.integers(1000)))
    if method == "mixed":
        return dict(alpha=[None, None, 0.3, 0.8][int(rng.integers(4))],
                    seed=int(rng.integers(1000)))
    if method == "catavgmax":
        pooled = normalize_axes(len(shape), geo["axes"])
        free = [a for a in range(len(shape)) if a not in pooled]
        if free and rng.random() < 0.5:
            return dict(axis=int(rng.choice(free)))
        return dict(axis=None)
    return {}


def random_data(rng, method, shape):
    """Float64 data, ``(x, nan_policy, nodata, cval)``: sometimes NaN under
    'propagate' or 'omit', sometimes a nodata value."""
    x = rng.standard_normal(shape) * 2
    if method == "mode" or rng.random() < 0.25:
        x = np.round(x) + 0.0  # ties (and no -0.0)
    if method in NON_NEGATIVE:
        x = np.abs(x)
        if method == "lp":
            x = x + 0.1
    cvals = [0.0, 1.5, 10.0] if method in NON_NEGATIVE else [0.0, 1.5, -2.0, 10.0]
    cval = float(rng.choice(cvals))
    kinds = ["none", "omit", "nodata"]
    if method not in NO_PROPAGATED_NAN:
        kinds.append("propagate")
    kind = str(rng.choice(kinds))
    nan_policy, nodata = "propagate", None
    if kind in ("omit", "propagate"):
        x[rng.random(shape) < (0.2 if kind == "omit" else 0.08)] = np.nan
        nan_policy = kind
    elif kind == "nodata":
        nodata = float(rng.choice([3.0, cval]))
        x[rng.random(shape) < 0.2] = nodata
    return x, nan_policy, nodata, cval


def _as_dtype(rng, x, nodata):
    """Sometimes another input dtype (float32, int16): the values round-trip."""
    r = rng.random()
    if r < 0.15 and not np.isnan(x).any():
        scaled = np.round(x * 3)
        nodata = None if nodata is None else float(np.round(nodata * 3))
        return scaled.astype(np.int16), nodata
    if r < 0.3:
        return x.astype(np.float32), nodata
    return x, nodata


@pytest.mark.parametrize("method", REF_METHODS)
@pytest.mark.parametrize("case", range(CASES))
def test_against_reference(method, case):
    rng = np.random.default_rng([REF_METHODS.index(method), case])
    shape, geo = random_geometry(rng)
    x, nan_policy, nodata, cval = random_data(rng, method, shape)
    x, nodata = _as_dtype(rng, x, nodata)
    if x.dtype.kind == "i":
        cval = float(np.round(cval * 3))
    params = method_params(rng, method, shape, geo)
    geo = dict(geo, cval=cval, nan_policy=nan_policy, nodata=nodata)
    size = geo.pop("size")
    out_shape = out_shape_of(shape, dict(geo, size=size))
    if method == "catavgmax":
        axis = params["axis"]
        full = ((2,) + out_shape if axis is None else
                out_shape[:axis] + (2 * out_shape[axis],) + out_shape[axis + 1:])
        g = rng.standard_normal(full)
        want = ref_grad_catavgmax(x, g, size, axis=axis, **geo)
        got = fastpool.grad.catavgmax_pool(g, x, size, axis=axis, **geo)
    else:
        g = rng.standard_normal(out_shape)
        want = ref_grad(method, x, g, size, **geo, **params)
        got = fp_grad(method, g, x, size, params, geo)
    assert_grad(got, want, x.dtype, context=f"{method} {shape} {size} {geo} {params}")


@pytest.mark.parametrize("case", range(24))
def test_blur_against_reference(case):
    rng = np.random.default_rng([100, case])
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(2, DIMS[ndim] + 3, size=ndim))
    axes = None if rng.random() < 0.5 else tuple(
        int(a) for a in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))])
    x, nan_policy, nodata, cval = random_data(rng, "blur", shape)
    kw = dict(order=int(rng.integers(1, 7)), mode=str(rng.choice(MODES)), cval=cval,
              nan_policy=nan_policy, nodata=nodata, axes=axes)
    factor = int(rng.integers(1, 4))
    pooled = normalize_axes(ndim, axes)
    k, p = kw["order"] + 1, kw["order"] // 2
    if any(output_length(shape[a], k, factor, p, 1, False) < 1 for a in pooled):
        return  # too short for this order: the forward refuses it
    out = geometry(shape, k, factor, p, 1, False, kw["mode"], axes)[2]
    g = rng.standard_normal(out)
    want = ref_grad_blur(x, g, factor, **kw)
    got = fastpool.grad.blur_pool(g, x, factor, **kw)
    assert_grad(got, want, context=f"{shape} {factor} {kw}")


@pytest.mark.parametrize("case", range(20))
def test_maxblur_against_reference(case):
    rng = np.random.default_rng([101, case])
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(3, DIMS[ndim] + 3, size=ndim))
    axes = None if rng.random() < 0.5 else tuple(
        int(a) for a in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))])
    x, nan_policy, nodata, cval = random_data(rng, "maxblur", shape)
    kw = dict(size=int(rng.integers(1, 4)), order=int(rng.integers(1, 4)),
              mode=str(rng.choice(MODES)), cval=cval, nan_policy=nan_policy,
              nodata=nodata, axes=axes)
    factor = int(rng.integers(1, 4))
    pooled = normalize_axes(ndim, axes)
    peaks = list(shape)
    for a in pooled:
        peaks[a] = shape[a] - kw["size"] + 1
    k, p = kw["order"] + 1, kw["order"] // 2
    if any(output_length(peaks[a], k, factor, p, 1, False) < 1 for a in pooled):
        return
    out = geometry(tuple(peaks), k, factor, p, 1, False, kw["mode"], axes)[2]
    g = rng.standard_normal(out)
    want = ref_grad_maxblur(x, g, factor, **kw)
    got = fastpool.grad.maxblur_pool(g, x, factor, **kw)
    assert_grad(got, want, context=f"{shape} {factor} {kw}")


@pytest.mark.parametrize("method", REF_METHODS)
@pytest.mark.parametrize("case", range(6))
def test_adaptive_against_reference(method, case):
    rng = np.random.default_rng([102, REF_METHODS.index(method), case])
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(1, DIMS[ndim] + 1, size=ndim))
    axes = None if rng.random() < 0.5 else tuple(
        int(a) for a in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))])
    pooled = normalize_axes(ndim, axes)
    output_size = tuple(int(rng.integers(1, shape[a] + 3)) for a in pooled)
    x, nan_policy, nodata, _ = random_data(rng, method, shape)
    params = method_params(rng, method, shape, dict(size=1, axes=axes))
    if method in ("rank",):  # validated against the largest window
        positions = adaptive_positions(shape, output_size, axes)
        big = int(np.prod([max(len(w) for w in positions[a]) for a in positions]))
        params = dict(rank=int(rng.integers(-big, big)))
    if method == "avg":
        params = {}  # adaptive avg takes no divisor
    kw = dict(params, nan_policy=nan_policy, nodata=nodata)
    out = list(shape)
    for a, m in zip(pooled, output_size):
        out[a] = m
    if method == "catavgmax":
        axis = params["axis"]
        out = ([2] + out if axis is None else
               out[:axis] + [2 * out[axis]] + out[axis + 1:])
    g = rng.standard_normal(tuple(out))
    want = ref_grad_adaptive(method, x, g, output_size, axes, **kw)
    got = fastpool.grad.adaptive_pool(g, x, output_size, method, axes=axes, **kw)
    assert_grad(got, want, context=f"{method} {shape} {output_size} {axes} {kw}")


@pytest.mark.parametrize("method", REF_METHODS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_against_reference(method, keepdims):
    rng = np.random.default_rng([103, REF_METHODS.index(method), keepdims])
    for _ in range(3):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, DIMS[ndim] + 1, size=ndim))
        axes = None if rng.random() < 0.4 else tuple(
            int(a) for a in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))])
        pooled = normalize_axes(ndim, axes)
        x, nan_policy, nodata, _ = random_data(rng, method, shape)
        params = method_params(rng, method, shape, dict(size=shape, axes=axes))
        if method == "rank":
            n = int(np.prod([shape[a] for a in pooled]))
            params = dict(rank=int(rng.integers(-n, n)))
        if method == "avg":
            params = {}
        if method == "catavgmax":
            params = dict(axis=None)
        kw = dict(params, nan_policy=nan_policy, nodata=nodata)
        out = [1 if a in pooled else n for a, n in enumerate(shape)]
        if not keepdims:
            out = [n for a, n in enumerate(out) if a not in pooled]
        if method == "catavgmax":
            out = [2] + out
        g = np.asarray(rng.standard_normal(tuple(out)))
        want = ref_grad_global(method, x, g, axes, keepdims, **kw)
        got = fastpool.grad.global_pool(g, x, method, axes=axes, keepdims=keepdims, **kw)
        assert_grad(got, want, context=f"{method} {shape} {axes} {kw}")


@pytest.mark.parametrize("case", range(16))
def test_fractional_against_reference(case):
    rng = np.random.default_rng([104, case])
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(3, 9, size=ndim))
    pooled = sorted(int(a) for a in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))])
    axes = tuple(pooled)
    k = int(rng.integers(1, 3))
    out = {a: int(rng.integers(1, shape[a] - k + 2)) for a in pooled}
    batch = tuple(shape[a] for a in range(ndim) if a not in pooled)
    samples = rng.random(batch + (len(pooled),))
    x = rng.standard_normal(shape)
    if case % 4 == 0:
        x = np.round(x)
    nan_policy, nodata = "propagate", None
    if case % 4 == 1:
        x[rng.random(shape) < 0.2] = np.nan
        nan_policy = str(rng.choice(["propagate", "omit"]))
    elif case % 4 == 2:
        nodata = 1.0
        x = np.round(x)
    gshape = tuple(out[a] if a in out else n for a, n in enumerate(shape))
    g = rng.standard_normal(gshape)
    want = ref_grad_fractional(x, g, out, k, samples, nan_policy=nan_policy, nodata=nodata)
    got = fastpool.grad.fractional_max_pool(g, x, tuple(out[a] for a in pooled), size=k,
                                            samples=samples, axes=axes,
                                            nan_policy=nan_policy, nodata=nodata)
    assert_grad(got, want, context=f"{shape} {axes} {out} {k} {nan_policy} {nodata}")


def test_fractional_seed_and_ratio():
    """``seed`` draws the samples as default_rng(seed).random((*batch, d));
    ``output_ratio`` gives int(n * ratio)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 10, 9))
    g = rng.standard_normal((2, 5, 6))
    samples = np.random.default_rng(42).random((2, 2))
    want = ref_grad_fractional(x, g, {1: 5, 2: 6}, 2, samples)
    got = fastpool.grad.fractional_max_pool(g, x, output_ratio=(0.5, 0.7), size=2, seed=42,
                                            axes=(1, 2))
    assert_grad(got, want)


# ---------------------------------------------------------------------------
# finite differences


def finite_difference(f, x, g, h=1e-6):
    """Central differences of sum(g * f(x)) with respect to every element of x."""
    dx = np.empty_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        dx[i] = (np.sum(g * f(xp)) - np.sum(g * f(xm))) / (2 * h)
    return dx


FD_CASES = [
    ("soft", dict(beta=1.0), dict(stride=1, padding=1, mode="reflect")),
    ("soft", dict(beta=-2.5), dict(stride=2, padding=1, mode="constant", cval=0.5)),
    ("lp", dict(p=2.5), dict(stride=1, padding=1, mode="wrap")),
    ("lp", dict(p=1.5, average=True), dict(stride=2, ceil_mode=True)),
    ("weighted", "weights", dict(stride=1, padding=1, mode="mirror")),
    ("lip", "logits", dict(stride=1, padding=1, mode="nearest")),
    ("dpp", dict(), dict(stride=1, padding=1, mode="reflect")),
    ("dpp", dict(alpha=0.5, lam=2.0), dict(stride=2, padding=1, mode="constant", cval=1.0)),
    ("dpp", dict(asymmetric=True), dict(stride=1, padding=1, mode="wrap")),
    ("dpp", dict(asymmetric=True, alpha=0.0, lam=0.5), dict(stride=1)),
    ("avg", dict(), dict(stride=1, padding=1, mode="reflect")),
    ("avg", dict(), dict(stride=2, padding=1, ceil_mode=True, mode="ignore")),
    ("stochastic", dict(training=False), dict(stride=1, padding=1, mode="mirror")),
    ("avgmax", dict(), dict(stride=1, padding=1, mode="nearest")),
    ("mixed", dict(alpha=0.3), dict(stride=1, padding=1, mode="wrap")),
]


@pytest.mark.parametrize("case", range(len(FD_CASES)))
def test_finite_differences(case):
    method, params, geo = FD_CASES[case]
    rng = np.random.default_rng([200, case])
    shape = (5, 6)
    x = rng.standard_normal(shape)
    if method in ("lp", "stochastic"):
        x = np.abs(x) + 0.3
    if params == "weights":
        params = dict(weights=rng.uniform(0.2, 2.0, shape))
    elif params == "logits":
        params = dict(logits=rng.standard_normal(shape))
    g = rng.standard_normal(fp_forward(method, x, 3, params, geo).shape)
    got = fp_grad(method, g, x, 3, params, geo)
    want = finite_difference(lambda v: fp_forward(method, v, 3, params, geo), x, g)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
def test_blur_finite_differences(order, mode):
    rng = np.random.default_rng([201, order])
    x = rng.standard_normal((6, 7))
    kw = dict(order=order, mode=mode, cval=0.5)
    g = rng.standard_normal(fastpool.blur_pool(x, 2, **kw).shape)
    got = fastpool.grad.blur_pool(g, x, 2, **kw)
    want = finite_difference(lambda v: fastpool.blur_pool(v, 2, **kw), x, g)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# the adjoint identity of the linear methods


LINEAR_CASES = [
    ("avg", {}, dict(size=3, stride=2, padding=1)),
    ("avg", {}, dict(size=(2, 3), stride=1, padding=(1, 1), ceil_mode=True)),
    ("avg", dict(divisor=7), dict(size=3, stride=2, padding=1, dilation=2)),
    ("sum", {}, dict(size=3, stride=1, padding=1)),
    ("sum", {}, dict(size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True)),
    ("weighted", "weights", dict(size=3, stride=2, padding=1)),
    ("weighted", "weights", dict(size=(3, 3), stride=1, padding=1, dilation=(1, 2))),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", range(len(LINEAR_CASES)))
def test_adjoint_identity(mode, case):
    method, params, geo = LINEAR_CASES[case]
    rng = np.random.default_rng([300, case, MODES.index(mode)])
    x = rng.standard_normal((2, 9, 8))
    if params == "weights":
        params = dict(weights=rng.uniform(0.2, 2.0, x.shape))  # fixed weights
    geo = dict(geo, mode=mode, cval=0.0, axes=(-2, -1))
    size = geo.pop("size")
    y = fp_forward(method, x, size, params, geo)
    g = rng.standard_normal(y.shape)
    dx = fp_grad(method, g, x, size, params, geo)
    lhs, rhs = np.sum(y * g), np.sum(x * dx)
    assert abs(lhs - rhs) <= 1e-12 * (np.sum(np.abs(y * g)) + np.sum(np.abs(x * dx)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [1, 2, 4])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_adjoint_identity_blur(mode, order, factor):
    rng = np.random.default_rng([301, order, factor])
    x = rng.standard_normal((3, 10, 9))
    kw = dict(order=order, mode=mode, cval=0.0, axes=(1, 2))
    y = fastpool.blur_pool(x, factor, **kw)
    g = rng.standard_normal(y.shape)
    dx = fastpool.grad.blur_pool(g, x, factor, **kw)
    lhs, rhs = np.sum(y * g), np.sum(x * dx)
    assert abs(lhs - rhs) <= 1e-12 * (np.sum(np.abs(y * g)) + np.sum(np.abs(x * dx)))


# ---------------------------------------------------------------------------
# determinism: workers and memory layouts

BIG = (2, 80, 90)  # 3x3 windows: > 65536 samples, so workers=2 does use two threads


def _determinism_calls():
    rng = np.random.default_rng(400)
    w = rng.uniform(0.2, 2.0, BIG)
    lg = rng.standard_normal(BIG)
    sl = dict(stride=1, padding=1, axes=(1, 2))
    return [
        ("max_pool", (3,), dict(sl, mode="reflect")),
        ("min_pool", (3,), dict(sl, mode="constant", cval=0.5)),
        ("avg_pool", (3,), dict(sl, mode="wrap")),
        ("sum_pool", (3,), dict(sl, mode="mirror")),
        ("median_pool", (3,), dict(sl, mode="nearest")),
        ("rank_pool", (2, 3), dict(sl)),
        ("percentile_pool", (30, 3), dict(sl, mode="reflect")),
        ("mode_pool", (3,), dict(sl)),
        ("lp_pool", (2.5, 3), dict(sl, mode="reflect")),
        ("soft_pool", (3,), dict(sl, beta=1.5)),
        ("stochastic_pool", (3,), dict(sl, seed=5)),
        ("stochastic_pool", (3,), dict(sl, training=False)),
        ("mixed_pool", (3,), dict(sl, seed=3)),
        ("mixed_pool", (3,), dict(sl, alpha=0.3)),
        ("avgmax_pool", (3,), dict(sl)),
        ("catavgmax_pool", (3,), dict(sl)),
        ("weighted_pool", (w, 3), dict(sl, mode="reflect")),
        ("lip_pool", (lg, 3), dict(sl)),
        ("dpp_pool", (3,), dict(sl, asymmetric=True)),
        ("blur_pool", (), dict(axes=(1, 2))),
        ("maxblur_pool", (), dict(axes=(1, 2))),
        ("adaptive_pool", ((30, 40), "soft"), dict(axes=(1, 2))),
        ("adaptive_avg_pool", ((30, 40),), dict(axes=(1, 2))),
        ("adaptive_max_pool", ((30, 40),), dict(axes=(1, 2))),
        ("global_pool", ("dpp",), dict(axes=(1, 2))),
        ("global_avg_pool", (), dict(axes=(1, 2))),
        ("global_max_pool", (), dict(axes=(1, 2))),
        ("fractional_max_pool", ((50, 60),), dict(seed=1, axes=(1, 2))),
    ]


DETERMINISM = _determinism_calls()


def _determinism_data(index):
    name = DETERMINISM[index][0]
    rng = np.random.default_rng([401, index])
    x = np.round(np.abs(rng.standard_normal(BIG)) * 8) / 4 + 0.25  # ties, positive
    if name in ("avg_pool", "sum_pool", "max_pool", "soft_pool"):
        x[rng.random(BIG) < 0.05] = np.nan  # propagate: NaN shares, NaN windows
    return x


def _determinism_grads(index, workers, layouts=("C",)):
    """``(workers=1 C-order result, [(layout, result), ...])``."""
    name, args, kw = DETERMINISM[index]
    x = _determinism_data(index)
    y = getattr(fastpool, name)(x, *args, **kw)
    g = np.random.default_rng([402, index]).standard_normal(np.shape(y))
    fn = getattr(fastpool.grad, name)
    base = fn(g, x, *args, workers=1, **kw)
    return base, [(layout, fn(g, relayout(x, layout), *args, workers=workers, **kw))
                  for layout in layouts]


def _threaded_mismatches(index, repeats=8):
    """The runs with workers=2 (C order, repeated, then every layout) whose bits
    differ from workers=1."""
    base, runs = _determinism_grads(index, 2, ("C",) * repeats + LAYOUTS)
    return [f"{layout} (run {i})" for i, (layout, got) in enumerate(runs)
            if got.dtype != base.dtype
            or np.ascontiguousarray(got).tobytes() != base.tobytes()]


def _threaded_stress(runs=100):
    """Many workers=2 runs of a few cheap calls on a batch of small planes (many row
    chunks to share out): the runs whose bits differ from workers=1."""
    rng = np.random.default_rng(403)
    x = rng.standard_normal((16, 30, 30))
    g = rng.standard_normal((16, 30, 30))
    bad = []
    for name in ("sum_pool", "avg_pool", "max_pool"):
        fn = getattr(fastpool.grad, name)
        one = fn(g, x, 3, 1, padding=1, mode="reflect", axes=(1, 2), workers=1)
        count = sum(fn(g, x, 3, 1, padding=1, mode="reflect", axes=(1, 2),
                       workers=2).tobytes() != one.tobytes() for _ in range(runs))
        if count:
            bad.append(f"{name}: {count} of {runs} runs")
    return bad


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import test_grad
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    bad = (test_grad._threaded_stress() if i == len(test_grad.DETERMINISM)
           else test_grad._threaded_mismatches(i))
    print(json.dumps([i, bad]), flush=True)
"""


@pytest.fixture(scope="module")
def threaded_mismatches():
    """``{index: mismatching runs, or why there is no answer}`` for DETERMINISM, from
    a child process: a crash in the threaded kernels fails the affected call's test
    instead of the whole session."""
    results = {}
    start, n = 0, len(DETERMINISM) + 1  # the last: _threaded_stress
    while start < n:
        proc = subprocess.run([sys.executable, "-c", _CHILD, os.path.dirname(__file__),
                               str(start), str(n)], capture_output=True, text=True,
                              timeout=600)
        for line in proc.stdout.splitlines():
            i, bad = json.loads(line)
            results[i] = bad
            start = i + 1
        if proc.returncode != 0 and start < n:
            results[start] = [f"the process died (return code {proc.returncode}): "
                              f"{proc.stderr[-500:]}"]
            start += 1
    return results


@pytest.mark.parametrize("index", range(len(DETERMINISM)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DETERMINISM)])
def test_bitwise_across_layouts(index):
    base, runs = _determinism_grads(index, 1, LAYOUTS)
    assert base.dtype == np.float64 and base.flags.c_contiguous
    for layout, got in runs:
        assert got.dtype == base.dtype and got.shape == base.shape, layout
        assert np.ascontiguousarray(got).tobytes() == base.tobytes(), layout
    # grad_output's layout does not matter either
    name, args, kw = DETERMINISM[index]
    x = _determinism_data(index)
    y = getattr(fastpool, name)(x, *args, **kw)
    g = np.random.default_rng([402, index]).standard_normal(np.shape(y))
    fn = getattr(fastpool.grad, name)
    for layout in ("F", "negative", "sliced"):
        got = fn(relayout(g, layout), x, *args, workers=1, **kw)
        assert np.ascontiguousarray(got).tobytes() == base.tobytes(), f"g {layout}"


@pytest.mark.parametrize("index", range(len(DETERMINISM)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DETERMINISM)])
def test_bitwise_across_workers(index, threaded_mismatches):
    assert threaded_mismatches[index] == [], (
        f"workers=2 differs from workers=1: {threaded_mismatches[index]}")


def test_bitwise_across_workers_repeated(threaded_mismatches):
    stress = threaded_mismatches[len(DETERMINISM)]
    assert stress == [], f"workers=2 differs from workers=1: {stress}"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_float32(layout):
    rng = np.random.default_rng(402)
    x = rng.standard_normal((3, 9, 10)).astype(np.float32)
    g = rng.standard_normal((3, 9, 10))
    for fn, args in ((fastpool.grad.soft_pool, (3, 1)), (fastpool.grad.max_pool, (3, 1)),
                     (fastpool.grad.avg_pool, (3, 1))):
        base = fn(g, x, *args, padding=1, mode="reflect", axes=(1, 2))
        got = fn(g, relayout(x, layout), *args, padding=1, mode="reflect", axes=(1, 2))
        assert got.dtype == np.float32
        assert np.ascontiguousarray(got).tobytes() == base.tobytes()


# ---------------------------------------------------------------------------
# errors


def test_no_generic_gradient():
    assert not hasattr(fastpool.grad, "generic_pool")
    assert not hasattr(fastpool.grad, "max_unpool")
    assert not hasattr(fastpool.grad, "pyramid")


ERROR_CALLS = [
    ("max_pool", (2,), {}), ("min_pool", (2,), {}), ("avg_pool", (2,), {}),
    ("sum_pool", (2,), {}), ("median_pool", (2,), {}), ("rank_pool", (1, 2), {}),
    ("percentile_pool", (50, 2), {}), ("mode_pool", (2,), {}), ("lp_pool", (2, 2), {}),
    ("soft_pool", (2,), {}), ("stochastic_pool", (2,), dict(seed=0)),
    ("mixed_pool", (2,), dict(seed=0)), ("avgmax_pool", (2,), {}),
    ("catavgmax_pool", (2,), {}), ("weighted_pool", (np.ones((4, 6)), 2), {}),
    ("lip_pool", (np.ones((4, 6)), 2), {}), ("dpp_pool", (2,), {}), ("blur_pool", (), {}),
    ("maxblur_pool", (), {}), ("adaptive_pool", (3, "max"), {}),
    ("adaptive_avg_pool", (3,), {}), ("adaptive_max_pool", (3,), {}),
    ("global_pool", ("avg",), {}), ("global_avg_pool", (), {}),
    ("global_max_pool", (), {}), ("fractional_max_pool", (3,), dict(seed=0)),
]


def test_every_function_is_listed():
    assert sorted(c[0] for c in ERROR_CALLS) == sorted(fastpool.grad.__all__)


@pytest.mark.parametrize("index", range(len(ERROR_CALLS)),
                         ids=[c[0] for c in ERROR_CALLS])
def test_errors(index):
    name, args, kw = ERROR_CALLS[index]
    x = np.abs(np.random.default_rng(500).standard_normal((4, 6))) + 0.1
    fn = getattr(fastpool.grad, name)
    shape = np.shape(getattr(fastpool, name)(x, *args, **kw))
    # the right shape works
    assert fn(np.ones(shape), x, *args, **kw).shape == x.shape
    # grad_output of the wrong shape
    for bad in (tuple(n + 1 for n in shape) or (1,), shape + (1,), (3,)):
        with pytest.raises(ValueError):
            fn(np.ones(bad), x, *args, **kw)
    # complex grad_output
    with pytest.raises(TypeError):
        fn(np.ones(shape, dtype=np.complex128), x, *args, **kw)
    # an unknown keyword
    with pytest.raises(TypeError):
        fn(np.ones(shape), x, *args, no_such_keyword=1, **kw)
    # nan_policy='raise' with a NaN in the input
    xn = x.copy()
    xn[1, 2] = np.nan
    with pytest.raises(ValueError):
        fn(np.ones(shape), xn, *args, nan_policy="raise", **kw)
    assert fn(np.ones(shape), x, *args, nan_policy="raise", **kw).shape == x.shape


def test_global_grad_output_shape_follows_keepdims():
    x = np.ones((3, 4, 5))
    with pytest.raises(ValueError):
        fastpool.grad.global_avg_pool(np.ones((3, 1, 1)), x, axes=(1, 2))
    with pytest.raises(ValueError):
        fastpool.grad.global_max_pool(np.ones(3), x, axes=(1, 2), keepdims=True)
    assert fastpool.grad.global_avg_pool(np.ones(3), x, axes=(1, 2)).shape == x.shape
    assert fastpool.grad.global_avg_pool(np.ones((3, 1, 1)), x, axes=(1, 2),
                                         keepdims=True).shape == x.shape


# ---------------------------------------------------------------------------
# result dtype and output=


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("method", ["max", "avg", "sum", "median", "soft"])
def test_result_dtype(dtype, method):
    rng = np.random.default_rng([600, ALL_DTYPES.index(dtype)])
    if dtype == "bool":
        x = rng.random((5, 6)) < 0.5
    elif np.dtype(dtype).kind in "iu":
        x = rng.integers(0, 50, (5, 6)).astype(dtype)
    else:
        x = rng.standard_normal((5, 6)).astype(dtype)
    geo = dict(stride=1, padding=1, mode="reflect")
    g = rng.standard_normal((5, 6))
    got = fp_grad(method, g, x, 3, {}, geo)
    assert got.dtype == grad_dtype(dtype)
    want = ref_grad(method, x, g, 3, **geo)
    assert_grad(got, want, dtype, rtol=1e-9 if got.dtype == np.float64 else 2e-6)


@pytest.mark.parametrize("in_dtype", [np.float64, np.float32, np.int16])
@pytest.mark.parametrize("out_dtype", [np.float64, np.float32])
def test_output_argument(in_dtype, out_dtype):
    rng = np.random.default_rng(601)
    x = (rng.standard_normal((6, 8)) * 10).astype(in_dtype)
    g = rng.standard_normal((6, 8))
    geo = dict(stride=1, padding=1, mode="reflect")
    for method in ("max", "avg", "soft", "dpp"):
        default = fp_grad(method, g, x, 3, {}, geo)
        got = fp_grad(method, g, x, 3, {}, dict(geo, output=out_dtype))
        assert got.dtype == out_dtype and got.shape == x.shape
        np.testing.assert_array_equal(got, default.astype(out_dtype))
        out = np.full(x.shape, 7, dtype=out_dtype)
        got = fp_grad(method, g, x, 3, {}, dict(geo, output=out))
        assert got is out
        np.testing.assert_array_equal(out, default.astype(out_dtype))
    out = np.full(x.shape, 7, dtype=out_dtype)
    samples = rng.random((2,))
    default = fastpool.grad.fractional_max_pool(np.ones((4, 5)), x, (4, 5), samples=samples)
    got = fastpool.grad.fractional_max_pool(np.ones((4, 5)), x, (4, 5), samples=samples,
                                            output=out)
    assert got is out
    np.testing.assert_array_equal(out, default.astype(out_dtype))


def test_grad_output_dtypes():
    """Integer, bool and float32 grad_output are read as float64 values."""
    rng = np.random.default_rng(602)
    x = rng.standard_normal((6, 6))
    g = rng.integers(-3, 4, (3, 3))
    want = fastpool.grad.avg_pool(g.astype(np.float64), x, 2)
    for gg in (g, g.astype(np.int8), g.astype(np.float32), g.astype(np.float16)):
        np.testing.assert_array_equal(fastpool.grad.avg_pool(gg, x, 2), want)
    b = rng.random((3, 3)) < 0.5
    np.testing.assert_array_equal(fastpool.grad.max_pool(b, x, 2),
                                  fastpool.grad.max_pool(b.astype(np.float64), x, 2))


@pytest.mark.parametrize("name", ["soft_pool", "max_pool", "avg_pool"])
def test_one_pass_blocks_are_bitwise_across_layouts(name):
    """Regression: 2x2 blocks take the one-pass path whatever the input's strides
    (it required the gradient to share the input's strides, so a strided input took
    the gather, whose SoftPool sums round differently)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 16, 20))[:, ::2, :]
    g = rng.standard_normal((3, 4, 10))
    want = getattr(fastpool.grad, name)(g, np.ascontiguousarray(x), 2, axes=(1, 2))
    for layout in (x, np.asfortranarray(x)):
        got = getattr(fastpool.grad, name)(g, layout, 2, axes=(1, 2))
        assert np.array_equal(got, want)


OVERLAP_CASES = [
    # (shape, size, stride, padding, dilation, ceil_mode, mode, nan_policy)
    ((2, 21, 8197), 3, 2, 1, 1, False, "ignore", "propagate"),
    ((1, 19, 8195), (3, 2), (2, 1), (1, 0), 1, True, "reflect", "omit"),
    ((2, 17, 8193), 3, 1, 1, (1, 2), False, "wrap", "propagate"),
    ((1, 23, 8194), (4, 3), (3, 2), (2, 1), 1, True, "constant", "propagate"),
    ((1, 13, 8200), 5, 2, 2, 1, False, "nearest", "omit"),
    ((3, 9, 40), 3, 2, 1, 1, True, "mirror", "propagate"),
    # tall maps: the accumulator rolls (rows written out as the windows pass
    # them), across bands, past rows no window reads, or not at all ('wrap')
    ((2, 230, 31), 3, 2, 1, 1, False, "ignore", "propagate"),
    ((1, 260, 25), (4, 3), (3, 2), (2, 1), (2, 1), True, "constant", "omit"),
    ((1, 250, 24), 3, 2, 1, 1, True, "reflect", "omit"),
    ((1, 300, 17), (2, 3), (3, 1), 0, 1, False, "ignore", "propagate"),
    ((1, 250, 300), 3, 2, 1, 1, False, "ignore", "propagate"),
    ((2, 240, 20), 3, 1, 1, 1, False, "wrap", "propagate"),
]


@pytest.mark.parametrize("is_min", [False, True])
@pytest.mark.parametrize("case", range(len(OVERLAP_CASES)))
def test_overlapping_extremum_bands_equal_the_gather(case, is_min, monkeypatch):
    """Max and min gradients over two axes with overlapping windows take one pass
    over bands of input rows (rows this wide make several bands per image): bitwise
    the same as the index-and-gather path for every mode and NaN policy, with ties,
    NaN, a cval that wins, float32 and float64 gradients, a strided result and 1 or
    2 threads."""
    shape, size, stride, padding, dilation, ceil, mode, nan_policy = OVERLAP_CASES[case]
    rng = np.random.default_rng([77, case, is_min])
    x = np.round(rng.standard_normal(shape) * 3)          # many ties
    x[rng.random(shape) < 0.01] = np.nan
    x[:, 5:7, 100:104] = np.nan                           # all-NaN windows
    x[:, 1, 10:13] = [np.inf, -np.inf, np.inf]            # inf - inf in a row sum
    kw = dict(size=size, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil, mode=mode, cval=5.0 if is_min else -5.0,
              nan_policy=nan_policy, axes=(1, 2))
    fn = fastpool.grad.min_pool if is_min else fastpool.grad.max_pool
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        y = (fastpool.min_pool if is_min else fastpool.max_pool)(xd, **kw)
        g = rng.standard_normal(y.shape).astype(dtype)
        with monkeypatch.context() as m:
            m.setattr(fastpool.grad, "_overlap", lambda bw, is_min: None)
            want = fn(g, xd, **kw, workers=1)
        for workers in (1, 2):
            got = fn(g, xd, **kw, workers=workers)
            assert got.dtype == want.dtype
            assert got.tobytes() == want.tobytes(), (dtype, workers)
        out = np.full(shape[::-1], 7.0, dtype=want.dtype).T     # Fortran order
        assert fn(g.astype(np.float64), xd[:, ::-1, :][:, ::-1, :], **kw,
                  output=out) is out
        assert out.tobytes(order="C") == want.tobytes()


def test_overlapping_max_pool_vs_torch_across_bands():
    """The one-pass overlapping max gradient against PyTorch where rows are wide
    enough for several bands (tie-free input; PyTorch sums a cell's contributions
    in float32, fastpool in float64)."""
    rng = np.random.default_rng(78)
    x = rng.permutation(2 * 3 * 19 * 8300).reshape(2, 3, 19, 8300).astype(np.float32)
    y = F.max_pool2d(torch.from_numpy(x), 3, 2, 1)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    want = torch_grad(lambda t: F.max_pool2d(t, 3, 2, 1), x, g)
    got = fastpool.grad.max_pool(g, x, 3, 2, padding=1, axes=(2, 3))
    assert_grad(got, want.astype(np.float64), np.float32)
    np.testing.assert_array_equal(got != 0, want != 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
@pytest.mark.parametrize("is_min", [False, True])
def test_two_by_two_blocks_extremum_equals_the_gather(dtype, nan_policy, is_min,
                                                      monkeypatch):
    """2x2 blocks over two contiguous rows take one branch-free loop: bitwise the
    gather path's result with ties, signed zeros, NaN (single and whole blocks),
    odd lengths (a ceil_mode edge block), strided input and a float32 or float64
    gradient."""
    rng = np.random.default_rng([79, is_min, nan_policy == "omit"])
    x = rng.choice(np.array([-1.0, -0.0, 0.0, 2.0, 3.0]), (4, 9, 135))
    if np.dtype(dtype).kind == "f":
        x[rng.random(x.shape) < 0.05] = np.nan
        x[:, 2:4, 10:14] = np.nan
    x = x.astype(dtype) if np.dtype(dtype).kind == "f" else np.nan_to_num(x).astype(dtype)
    fn = fastpool.grad.min_pool if is_min else fastpool.grad.max_pool
    for xv in (x, x[:, :, ::-1], np.asfortranarray(x)):
        for ceil in (False, True):
            kw = dict(size=2, ceil_mode=ceil, nan_policy=nan_policy, axes=(1, 2))
            y = (fastpool.min_pool if is_min else fastpool.max_pool)(xv, **kw)
            for gdt in (np.float32, np.float64):
                g = rng.standard_normal(y.shape).astype(gdt)
                with monkeypatch.context() as m:
                    m.setattr(fastpool.grad, "_disjoint", lambda *a, **k: None)
                    m.setattr(fastpool.grad, "_overlap", lambda *a, **k: None)
                    want = fn(g, xv, **kw)
                got = fn(g, xv, **kw)
                assert got.dtype == want.dtype
                assert np.ascontiguousarray(got).tobytes() == \
                    np.ascontiguousarray(want).tobytes(), (ceil, gdt)


@pytest.mark.parametrize("case", range(len(OVERLAP_CASES)))
def test_overlapping_means_bands_equal_the_gather(case, monkeypatch):
    """The means' gradient over two axes with overlapping windows takes the same
    one-pass bands: equal to the gather path within float64 rounding (the two add
    a cell's shares in different orders), bitwise the same for 1 and 2 threads and
    for a strided result, with every mode and a divisor."""
    shape, size, stride, padding, dilation, ceil, mode, _ = OVERLAP_CASES[case]
    rng = np.random.default_rng([80, case])
    x = rng.standard_normal(shape)
    for divisor in (None, 7):
        kw = dict(size=size, stride=stride, padding=padding, dilation=dilation,
                  ceil_mode=ceil, mode=mode, cval=2.0, axes=(1, 2), divisor=divisor)
        y = fastpool.avg_pool(x, **kw)
        g = rng.standard_normal(y.shape)
        with monkeypatch.context() as m:
            m.setattr(fastpool.grad, "_overlap", lambda *a, **k: None)
            want = fastpool.grad.avg_pool(g, x, **kw)
        got = fastpool.grad.avg_pool(g, x, **kw, workers=1)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        assert fastpool.grad.avg_pool(g, x, **kw, workers=2).tobytes() == got.tobytes()
        out = np.zeros(shape[::-1]).T
        fastpool.grad.avg_pool(g, x, **kw, output=out)
        assert out.tobytes(order="C") == got.tobytes()


def test_overlapping_avg_pool_vs_torch_across_bands():
    rng = np.random.default_rng(81)
    x = rng.standard_normal((2, 3, 19, 8300)).astype(np.float32)
    for include in (True, False):
        fn = lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=include)  # noqa: E731
        g = rng.standard_normal(tuple(fn(torch.from_numpy(x)).shape)).astype(np.float32)
        want = torch_grad(fn, x, g)
        got = fastpool.grad.avg_pool(g, x, 3, 2, padding=1, axes=(2, 3),
                                     mode="constant" if include else "ignore")
        assert_grad(got, want.astype(np.float64), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_pool_blocks_loop_equals_the_window_loop(dtype):
    """SoftPool's 2x2 blocks over contiguous rows take one vectorised loop; a
    Fortran-ordered copy takes the window-by-window loop: the same bits, NaN and
    infinities included, for several beta and a ceil_mode edge."""
    rng = np.random.default_rng(82)
    x = (rng.standard_normal((3, 10, 131)) * 30).astype(dtype)
    x[rng.random(x.shape) < 0.02] = np.nan
    x[0, 0, :6] = [np.inf, 1.0, -np.inf, 2.0, 0.0, -0.0]
    for beta in (1.0, -0.5, 0.0, 3.0):
        for ceil in (False, True):
            kw = dict(beta=beta, ceil_mode=ceil, axes=(1, 2))
            y = fastpool.soft_pool(x, 2, **kw)
            g = rng.standard_normal(y.shape).astype(dtype)
            want = fastpool.grad.soft_pool(g, x, 2, **kw)
            got = fastpool.grad.soft_pool(g, np.asfortranarray(x), 2, **kw)
            assert np.ascontiguousarray(got).tobytes() == want.tobytes(), (beta, ceil)
