"""Slow, obviously-correct reference for the pooling geometries beyond sliding windows:
adaptive pooling, global pooling, fractional max pooling and image pyramids
(/work/notes/api_geometry.md).

Like tests/reference.py and tests/reference_weighted.py it does not import fastpool.
It computes only the *windows*; what a method does with a window's values is left to
the existing per-window references:

* ``reference.ref_pool`` (max, min, avg, sum, median, rank, percentile, mode, with the
  max/min indices) and
* ``reference_weighted.ref_family`` / ``ref_catavgmax`` (lp, soft, stochastic, mixed,
  avgmax, catavgmax, weighted, lip, dpp, generic; the random stream's window id is the
  flat C index of the output element).

Both build their windows from one geometry function (``reference.geometry``, and
``reference_weighted.window_geometry`` on top of it).  ``windows_from`` swaps that
function, for the duration of a ``with`` block, for one that returns explicit per-axis
lists of input positions (the adapter asked for by the contract): the window of output
``o`` along pooled axis ``a`` is ``positions[a][o[a]]``, and the N-D window is the
Cartesian product of those in C order over the pooled axes in ascending order --
exactly the sliding references' rule, so everything else (NaN / nodata handling, the
exact sums, ranks, modes, first-in-C-order indices, error bounds) is theirs.
"""

import contextlib
import math

import numpy as np

import reference
import reference_weighted
from reference import INPUT, ORDER_METHODS, cast_result, default_dtype, normalize_axes

BASIC_METHODS = ("max", "min", "avg", "sum") + ORDER_METHODS  # reference.ref_pool
FAMILY_METHODS = ("lp", "soft", "stochastic", "mixed", "avgmax", "weighted", "lip", "dpp",
                  "generic")  # reference_weighted.ref_family
ALL_ADAPTIVE_METHODS = BASIC_METHODS + FAMILY_METHODS + ("catavgmax",)


# ---------------------------------------------------------------------------
# windows given as explicit positions


@contextlib.contextmanager
def windows_from(positions):
    """Within the block, ``reference.ref_pool`` and ``reference_weighted.ref_family``
    pool the windows ``positions`` (``{axis: [[input index, ...] per output position]}``,
    every listed index inside the input) instead of the sliding windows; their
    geometry arguments (size, stride, ...) are ignored.  Not thread-safe."""
    pooled = sorted(positions)
    for ax in pooled:
        assert len(positions[ax]) >= 1 and all(len(w) >= 1 for w in positions[ax]), ax

    def geometry(shape, *args, **kwargs):
        out_shape = list(shape)
        wins = {}
        for ax in pooled:
            n = shape[ax]
            assert all(0 <= p < n for w in positions[ax] for p in w), (ax, n)
            wins[ax] = [[(INPUT, int(p)) for p in w] for w in positions[ax]]
            out_shape[ax] = len(wins[ax])
        return pooled, wins, tuple(out_shape)

    def window_geometry(shape, *args, **kwargs):
        got_pooled, wins, out_shape = geometry(shape)
        # the window offset j of a sample = its position in the window's list
        offs = {ax: [list(range(len(w))) for w in wins[ax]] for ax in got_pooled}
        return got_pooled, wins, offs, out_shape

    saved = reference.geometry, reference_weighted.window_geometry
    reference.geometry = geometry
    reference_weighted.window_geometry = window_geometry
    try:
        yield
    finally:
        reference.geometry, reference_weighted.window_geometry = saved


def ref_windows(x, method, positions, *, nan_policy="propagate", nodata=None, key=None,
                axis=None, **params):
    """The reference of ``method`` over explicit windows ``positions`` (see
    ``windows_from``).

    Returns ``("basic", values, indices)`` for the methods of reference.ref_pool
    (``values`` exact Python scalars, ``indices`` for max/min, -1 for windows with no
    valid sample) and ``("family", values, errs)`` for the others (``errs``: None for
    exact, else an absolute float64 bound).  ``key`` is the random stream's key;
    ``axis`` catavgmax's axis; ``params`` the method's own parameters (``rank``,
    ``percentile``, ``p``, ``weights``, ...)."""
    x = np.asarray(x)
    with windows_from(positions):
        if method in BASIC_METHODS:
            values, indices = reference.ref_pool(x, method, 1, nan_policy=nan_policy,
                                                 nodata=nodata, **params)
            return "basic", values, indices
        if method == "catavgmax":
            values, errs = reference_weighted.ref_catavgmax(
                x, 1, axis=axis, nan_policy=nan_policy, nodata=nodata)
            return "family", values, errs
        if method in FAMILY_METHODS:
            values, errs = reference_weighted.ref_family(
                x, method, 1, nan_policy=nan_policy, nodata=nodata, key=key, **params)
            return "family", values, errs
    raise ValueError(f"no reference for method {method!r}")


# ---------------------------------------------------------------------------
# adaptive pooling


def adaptive_bounds(n, m):
    """PyTorch's adaptive windows along an axis of length ``n`` pooled to ``m``:
    ``[floor(i*n/m), ceil((i+1)*n/m))`` for ``i < m``, in exact integer arithmetic."""
    assert n >= 1 and m >= 1
    return [((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)]


def adaptive_output_sizes(shape, output_size, axes=None):
    """``{pooled axis: output length}``: ``output_size`` an int (every pooled axis) or
    one entry per axis of ``axes`` in the order given (None keeps the axis' length)."""
    given = normalize_axes(len(shape), axes)
    if np.ndim(output_size) == 0 and output_size is not None:
        sizes = [output_size] * len(given)
    else:
        sizes = list(output_size)
        assert len(sizes) == len(given), (output_size, axes)
    return {ax: (shape[ax] if m is None else int(m)) for ax, m in zip(given, sizes)}


def adaptive_positions(shape, output_size, axes=None):
    out = adaptive_output_sizes(shape, output_size, axes)
    return {ax: [list(range(a, b)) for a, b in adaptive_bounds(shape[ax], m)]
            for ax, m in out.items()}


def max_window_size(positions):
    """The largest window's sample count (for tolerances)."""
    return int(np.prod([max(len(w) for w in wins) for wins in positions.values()]))


def min_window_size(positions):
    return int(np.prod([min(len(w) for w in wins) for wins in positions.values()]))


def ref_adaptive(x, method, output_size, axes=None, **kw):
    """``ref_windows`` over the adaptive windows of ``x``."""
    x = np.asarray(x)
    return ref_windows(x, method, adaptive_positions(x.shape, output_size, axes), **kw)


def ref_global(x, method, axes=None, keepdims=False, **kw):
    """The reference of global pooling: the adaptive reference with output length 1 on
    every pooled axis, the pooled axes then removed (``keepdims=False``)."""
    x = np.asarray(x)
    kind, values, extra = ref_adaptive(x, method, 1, axes, **kw)
    if not keepdims:
        pooled = tuple(sorted(set(normalize_axes(x.ndim, axes))))
        values = values.reshape([n for a, n in enumerate(values.shape) if a not in pooled])
        if extra is not None:
            extra = extra.reshape(values.shape)
    return kind, values, extra


# ---------------------------------------------------------------------------
# fractional max pooling


def compute_dtype(in_dtype):
    """The dtype of generate_intervals' arithmetic: float32 for float32 / float16
    input (PyTorch computes in scalar_t), float64 otherwise."""
    return np.float32 if np.dtype(in_dtype) in (np.float32, np.float16) else np.float64


def fractional_starts(n, m, k, u, dtype=np.float64):
    """PyTorch's generate_intervals, evaluated with NumPy scalars of ``dtype`` so that
    every operation rounds like the C++ code: ``alpha = (n - k) / (m - 1)``,
    ``start[i] = int((i + u) * alpha) - int(u * alpha)`` for ``i < m - 1`` and
    ``start[m - 1] = n - k``."""
    t = np.dtype(dtype).type
    starts = []
    if m > 1:
        u = t(u)
        alpha = t(n - k) / t(m - 1)
        for i in range(m - 1):
            starts.append(int((t(i) + u) * alpha) - int(u * alpha))
    starts.append(n - k)
    return starts


def fractional_output_sizes(shape, output_size=None, output_ratio=None, axes=None):
    """``{pooled axis: m}`` (the per-axis entries in the order of ``axes`` as given;
    a ratio gives ``int(n * ratio)``)."""
    given = normalize_axes(len(shape), axes)
    if output_size is not None:
        return adaptive_output_sizes(shape, output_size, axes)
    ratios = [output_ratio] * len(given) if np.ndim(output_ratio) == 0 else list(output_ratio)
    return {ax: int(shape[ax] * float(r)) for ax, r in zip(given, ratios)}


def ref_fractional(x, out_sizes, size, samples, *, nan_policy="propagate", nodata=None):
    """Fractional max pooling of ``x``: ``out_sizes`` ``{pooled axis: m}``, ``size``
    the window size (an int, or ``{axis: k}``), ``samples`` of shape
    ``(*batch_shape, n_pooled)`` with ``samples[..., j]`` for the j-th pooled axis in
    ascending order.  Every plane (one index of the non-pooled axes) gets its own
    windows; ``reference.ref_pool`` pools it.  Returns ``(values, indices)`` with
    values cast to max_pool's default dtype."""
    x = np.asarray(x)
    pooled = sorted(out_sizes)
    batch_axes = [a for a in range(x.ndim) if a not in pooled]
    ks = {ax: (size[ax] if isinstance(size, dict) else int(size)) for ax in pooled}
    samples = np.asarray(samples)
    batch_shape = tuple(x.shape[a] for a in batch_axes)
    assert samples.shape == batch_shape + (len(pooled),), samples.shape
    dt = compute_dtype(x.dtype)
    out_dtype = default_dtype("max", x.dtype)
    # the input with the batch axes first, the pooled axes (ascending) last
    xt = x.transpose(batch_axes + pooled)
    res_shape_t = batch_shape + tuple(out_sizes[ax] for ax in pooled)
    values = np.empty(res_shape_t, dtype=out_dtype)
    indices = np.empty(res_shape_t, dtype=np.int64)
    for b in np.ndindex(*batch_shape):
        plane = xt[b]
        positions = {}
        for j, ax in enumerate(pooled):
            n, m, k = x.shape[ax], out_sizes[ax], ks[ax]
            starts = fractional_starts(n, m, k, samples[b + (j,)], dt)
            positions[j] = [list(range(s, s + k)) for s in starts]
        _, v, idx = ref_windows(plane, "max", positions, nan_policy=nan_policy,
                                nodata=nodata)
        values[b] = cast_result(v, out_dtype)
        indices[b] = idx
    # back to the input's axis order
    inv = np.argsort(batch_axes + pooled)
    return values.transpose(inv), indices.transpose(inv)


# ---------------------------------------------------------------------------
# pyramids


def pyramid_factors(ndim, factor, axes=None):
    """``{pooled axis: factor}`` (per-axis factors in the order of ``axes`` as given)."""
    given = normalize_axes(ndim, axes)
    fs = [factor] * len(given) if np.ndim(factor) == 0 else list(factor)
    return {ax: int(f) for ax, f in zip(given, fs)}


def pyramid_level_count(shape, factors):
    """levels=None: the first level k where every pooled axis with f > 1 has
    ``ceil(n / f**k) == 1``."""
    k = 0
    while any(f > 1 and -(-shape[ax] // f ** k) > 1 for ax, f in factors.items()):
        k += 1
    return k


def pyramid_level_shape(shape, factors, k):
    out = list(shape)
    for ax, f in factors.items():
        out[ax] = -(-shape[ax] // f ** k)
    return tuple(out)


def ref_pyramid_level(x, method, factors, k, **kw):
    """Level ``k`` through the sliding reference: size = stride = f**k, ceil_mode,
    mode='ignore' (partial edge windows hold the pixels that exist)."""
    axes = sorted(factors)
    sizes = [factors[ax] ** k for ax in axes]
    values, _ = reference.ref_pool(np.asarray(x), method, sizes, stride=sizes,
                                   ceil_mode=True, mode="ignore", axes=axes, **kw)
    return values


def is_close_to_exact(got, exact, dtype):
    """``got`` (a float of ``dtype``) within half a unit in the last place of the
    exact value ``exact`` (plus a hair for the float64 rounding before the final
    one)."""
    ulp = float(np.spacing(np.abs(np.array(exact, dtype=dtype))))
    return abs(float(got) - float(exact)) <= 0.5 * ulp * (1 + 1e-6)


def exact_mean(values):
    """Correctly rounded float64 mean of finite floats (math.fsum)."""
    values = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    return math.fsum(values) / len(values)
