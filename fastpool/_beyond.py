"""Geometry beyond sliding windows: adaptive, global, fractional and pyramid pooling.

Adaptive and global pooling hand the method's own function a
:class:`~fastpool._geometry.GivenGeometry` where it takes ``size``: every method
runs its kernel unchanged on windows of varying size.
"""

import math
import numbers

import numpy as np

from numpy.lib.stride_tricks import as_strided

from . import _order, _pool, _weighted
from . import _support as S
from ._dask import dask_aware
from ._docstrings import fill
from ._kernels import sums as _sums
from ._kernels import whole as _whole
from ._geometry import (GivenGeometry, adaptive_windows, check_length, fractional_starts,
                        given_windows)

# The functions that take a window ``size``, by their ``method=`` name.
METHODS = {
    "max": _pool.max_pool, "min": _pool.min_pool, "avg": _pool.avg_pool,
    "sum": _pool.sum_pool, "median": _order.median_pool, "rank": _order.rank_pool,
    "percentile": _order.percentile_pool, "mode": _order.mode_pool,
    "lp": _weighted.lp_pool, "soft": _weighted.soft_pool,
    "stochastic": _weighted.stochastic_pool, "mixed": _weighted.mixed_pool,
    "avgmax": _weighted.avgmax_pool, "catavgmax": _weighted.catavgmax_pool,
    "weighted": _weighted.weighted_pool, "lip": _weighted.lip_pool,
    "dpp": _weighted.dpp_pool, "generic": _weighted.generic_pool,
}

# Keywords of the sliding geometry, which these functions set themselves.
_SLIDING = ("size", "stride", "padding", "dilation", "ceil_mode")


def _method(method, caller):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"{caller}: method must be one of "
                         f"{', '.join(map(repr, METHODS))}; got {method!r}")
    return METHODS[method]


def _no_sliding(kwargs, caller, also=()):
    for name in _SLIDING + tuple(also):
        if name in kwargs:
            raise TypeError(f"{caller} takes no {name} argument; got "
                            f"{name}={kwargs[name]!r}")


# --------------------------------------------------------------------------- adaptive

def _adaptive_geometry(output_size, caller):
    def windows(lengths):
        out = S.per_axis(output_size, len(lengths), "output_size",
                         lambda v: S.int_at_least(v, "output_size", 1, allow_none=True))
        return tuple(adaptive_windows(n, n if m is None else m)
                     for n, m in zip(lengths, out))
    return GivenGeometry(windows, caller)


@dask_aware
@fill
def adaptive_pool(input, output_size, method="avg", *, axes=None, **method_kwargs):
    """Pool the ``axes`` to a given output size with any method (PyTorch's adaptive
    pooling, N-D).

    Output ``i`` of an axis of length ``n`` pooled to ``m`` is the window
    ``[floor(i*n/m), ceil((i+1)*n/m))``: windows of varying size that cover the
    axis (``m`` may exceed ``n``; windows then repeat elements).

    Parameters
    ----------
    %(input)s
    %(output_size)s
    %(method)s
    %(axes)s
    %(method_kwargs)s

    Returns
    -------
    ndarray, or what the method returns
        Each window reduced exactly as the method's own function reduces a window.

    See Also
    --------
    adaptive_avg_pool, adaptive_max_pool, global_pool

    Notes
    -----
    Where ``m`` divides ``n`` the windows are the sliding ones of
    ``size = stride = n // m``, and the result equals the method's function
    called with that size.  ``torch.nn.functional.adaptive_avg_pool2d(x, (h, w))``
    equals ``adaptive_pool(x, (h, w), 'avg', axes=(-2, -1))``.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(10.0)
    >>> fastpool.adaptive_pool(x, 4)
    array([1., 3., 6., 8.])
    >>> fastpool.adaptive_pool(x, 3, 'max')
    array([3., 6., 9.])
    >>> fastpool.adaptive_pool(np.arange(12).reshape(3, 4), (None, 2), 'median')
    array([[ 1,  3],
           [ 5,  7],
           [ 9, 11]])
    """
    function = _method(method, "adaptive_pool")
    _no_sliding(method_kwargs, "adaptive_pool")
    return function(input, size=_adaptive_geometry(output_size, "adaptive_pool"),
                    axes=axes, **method_kwargs)


@dask_aware
@fill
def adaptive_avg_pool(input, output_size, *, axes=None, nan_policy="propagate",
                      nodata=None, output=None, workers=None):
    """Mean over PyTorch's adaptive windows (see :func:`adaptive_pool`).

    Parameters
    ----------
    %(input)s
    %(output_size)s
    %(axes)s
    %(nan_policy)s
    %(nodata)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> fastpool.adaptive_avg_pool(np.arange(5.0), 2)
    array([1., 3.])
    """
    return adaptive_pool(input, output_size, "avg", axes=axes, nan_policy=nan_policy,
                         nodata=nodata, output=output, workers=workers)


@dask_aware
@fill
def adaptive_max_pool(input, output_size, *, axes=None, return_indices=False,
                      nan_policy="propagate", nodata=None, output=None, workers=None):
    """Maximum over PyTorch's adaptive windows (see :func:`adaptive_pool`).

    Parameters
    ----------
    %(input)s
    %(output_size)s
    %(axes)s
    return_indices : bool, optional
        Also return the flat index of each maximum over the input's pooled axes,
        as :func:`max_pool` (and PyTorch's ``adaptive_max_pool*d``).
    %(nan_policy)s
    %(nodata)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> fastpool.adaptive_max_pool(np.array([3, 1, 4, 1, 5]), 2, return_indices=True)
    (array([4, 5]), array([2, 4]))
    """
    return adaptive_pool(input, output_size, "max", axes=axes,
                         return_indices=return_indices, nan_policy=nan_policy,
                         nodata=nodata, output=output, workers=workers)


# --------------------------------------------------------------------------- global

def _whole_axes(caller):
    return GivenGeometry(lambda lengths: tuple(adaptive_windows(n, 1) for n in lengths),
                         caller)


# Runs shorter than this go through the method's own kernel (one window each).
_SHORT_RUN = 1 << 12


def _run_view(view):
    """``view`` (items, *pooled) as (items, n) when its pooled axes form one
    strided run in C order, else None."""
    shape = [(n, s) for n, s in zip(view.shape[1:], view.strides[1:]) if n != 1]
    for (n0, s0), (n1, s1) in zip(shape, shape[1:]):
        if s0 != s1 * n1:
            return None
    n = math.prod(view.shape[1:])
    run = view.reshape(view.shape[0], n)
    if run.base is (view if view.base is None else view.base):
        return run   # reshape merges such axes without a copy (and costs less)
    step = shape[-1][1] if shape else view.itemsize
    return as_strided(view, (view.shape[0], n), (view.strides[0], step), writeable=False)


def _memory_walk(view):
    """``view`` (items, *pooled) as (items, n) walked in memory order (the pooled
    axes by decreasing stride, none negative), with what maps a place ``q`` of
    the walk back to the C-order index of the pooled axes: the walk's axis
    lengths, each axis's weight in C order (negative where flipped) and the
    offset of the flips; None where no order makes one strided run."""
    shape = view.shape[1:]
    c_weight = [math.prod(shape[k + 1:]) for k in range(len(shape))]
    order = sorted(range(len(shape)), key=lambda k: -abs(view.strides[1 + k]))
    offset, weight = 0, []
    for k in order:
        if view.strides[1 + k] < 0:
            view = np.flip(view, 1 + k)
            offset += (shape[k] - 1) * c_weight[k]
            weight.append(-c_weight[k])
        else:
            weight.append(c_weight[k])
    run = _run_view(view.transpose([0] + [1 + k for k in order]))
    if run is None:
        return None
    return (run, np.array([shape[k] for k in order], dtype=np.int64),
            np.array(weight, dtype=np.int64), offset)


def _round_half_even_div(total, count):
    """``total / count`` rounded half to even, exactly, for int64 arrays."""
    q, r = np.divmod(total, count)
    twice = 2 * r
    return q + ((twice > count) | ((twice == count) & (q % 2 == 1)))


def _global_runs(method, input, axes, kwargs):
    """avg, sum, max or min over the whole pooled axes from per-block partials
    (parallel for any batch), with the pooled axes kept; None where this path
    does not apply (the method's own kernel runs instead)."""
    extra = {"nan_policy", "nodata", "output", "workers"}
    if method in ("max", "min"):
        extra.add("return_indices")
    elif method not in ("avg", "sum"):
        return None
    if set(kwargs) - extra:
        return None
    x, in_dtype = S.as_input(input)
    p = S.pool_params(x.ndim, 1, None, 0, 1, False, "ignore",
                      kwargs.get("nan_policy", "propagate"), axes)
    pooled = p.axes
    if math.prod(x.shape[a] for a in pooled) < _SHORT_RUN:
        return None
    if method in ("avg", "sum") and x.dtype.kind in "iu" and x.dtype.itemsize == 8:
        return None  # 64-bit integer sums need the 128-bit accumulators
    groups = _pool.batch_views((x,), pooled)
    runs = [_run_view(views[0]) for views in groups]
    walks = [None] * len(runs)
    if any(r is None for r in runs):
        if method in ("max", "min"):
            # An extremum is the same in any order: walk the memory (a Fortran
            # array read in C order jumps a page an element), and map the first
            # index back to C order.
            walks = [None if r is not None else _memory_walk(views[0])
                     for r, views in zip(runs, groups)]
            if any(r is None and w is None for r, w in zip(runs, walks)):
                return None  # one window per item: the same values, first index
            runs = [r if r is not None else w[0] for r, w in zip(runs, walks)]
        else:
            # Sums walk other layouts in C order, associated as a run would be.
            runs = [r if r is not None else views[0] for r, views in zip(runs, groups)]
    S.check_nan_policy(x, p.nan_policy)
    _, nodata, nan_policy = S.fill_values(x, "ignore", 0.0, kwargs.get("nodata"),
                                          p.nan_policy, in_dtype)
    omit = nan_policy == "omit"
    kept = tuple(1 if a in pooled else n for a, n in enumerate(x.shape))
    natural = np.dtype(np.float32) if in_dtype == np.float16 else in_dtype
    if method == "sum" and natural.kind not in "f":
        natural = np.dtype(np.uint64 if natural.kind == "u" else np.int64)
    result = S.prepare_output(kwargs.get("output"), kept, natural, input)
    want_idx = bool(kwargs.get("return_indices", False))
    indices = np.empty(kept, dtype=np.int64) if want_idx else None
    targets = _pool.batch_views((x, result) + ((indices,) if want_idx else ()), pooled)
    tag = np.empty(0, dtype=x.dtype)
    for run, walk, views in zip(runs, walks, targets):
        items, n = run.shape[0], math.prod(run.shape[1:])
        nblocks = -(-n // _whole.BLOCK_LENGTH)
        nthreads = S.threads_for(items * n, kwargs.get("workers"))
        count = np.empty((items, nblocks), dtype=np.int64)
        if method in ("avg", "sum"):
            fsum = np.zeros((items, nblocks))
            isum = np.zeros((items, nblocks), dtype=np.int64)
            _whole.global_sums(tag, run, fsum, isum, count, omit, nodata, nthreads)
            valid = count.sum(axis=1)
            if x.dtype.kind == "f":
                total = fsum.sum(axis=1)
                values = total / np.maximum(valid, 1) if method == "avg" else total
                values[valid == 0] = np.nan if nodata is None else nodata
            else:
                total = isum.sum(axis=1)
                if method == "sum":
                    values = total
                elif result.dtype.kind == "f":
                    values = total / np.maximum(valid, 1)
                else:
                    values = _round_half_even_div(total, np.maximum(valid, 1))
                if nodata is not None:
                    values[valid == 0] = nodata
        else:
            val = np.empty((items, nblocks), dtype=x.dtype)
            _whole.global_extremum(tag, method == "min", run, val, count, omit, nodata,
                                   nthreads)
            values, block_of, hit = _merge_extrema(method == "min", val, count, nodata)
            if want_idx:
                want = np.ascontiguousarray(values, dtype=x.dtype)
                if walk is None:
                    # Only the block that holds each item's first winner is scanned.
                    where = np.zeros(items, dtype=np.int64)
                    _whole.global_first_index(tag, run, block_of, want, where, omit,
                                              nodata, nthreads)
                else:
                    # Every block that holds a winner is scanned.
                    least = np.full(hit.shape, np.iinfo(np.int64).max, dtype=np.int64)
                    _whole.global_least_index(tag, run, hit, want,
                                              walk[1], walk[2], walk[3], least, omit,
                                              nodata, nthreads)
                    where = np.where(block_of < 0, 0, least.min(axis=1))
                S.store(views[2], where.reshape(views[2].shape))
        S.store(views[1], values.reshape(views[1].shape))
    return (result, indices) if want_idx else result


def _merge_extrema(is_min, val, count, nodata):
    """The extremum over blocks (a NaN wins, as in a window), the first block
    that holds it (-1 where no block has a valid element), and which blocks
    hold it."""
    items = val.shape[0]
    best = np.empty(items, dtype=val.dtype)
    first = np.empty(items, dtype=np.int64)
    hit = np.empty(val.shape, dtype=np.uint8)
    _whole.merge_extrema(val, count, is_min, best, first, hit)
    empty = first < 0
    if empty.any():
        best[empty] = nodata if nodata is not None else np.nan
    return best, first, hit


@dask_aware
@fill
def global_pool(input, method="avg", *, axes=None, keepdims=False, **method_kwargs):
    """Pool the whole of the ``axes`` with any method.

    Parameters
    ----------
    %(input)s
    %(method)s
    %(axes)s
    %(keepdims)s
    %(method_kwargs)s

    Returns
    -------
    ndarray, or what the method returns
        A 0-d array when every axis is pooled and ``keepdims`` is False.

    Notes
    -----
    Equal to ``adaptive_pool(input, 1, method, ...)`` without the pooled axes.
    A batch too small to occupy every thread is pooled in parallel all the same
    for ``'avg'``, ``'sum'``, ``'max'`` and ``'min'``: the window is cut into
    blocks of a fixed length merged in a fixed order, so the result is the same
    for every thread count (float sums in float64, rounded once).

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> fastpool.global_pool(x, 'max', axes=(1, 2))
    array([11, 23], dtype=uint8)
    >>> fastpool.global_pool(x, 'avg', axes=(1, 2), keepdims=True).shape
    (2, 1, 1)
    >>> fastpool.global_pool(x, 'median')  # rank n // 2, as scipy.ndimage
    array(12, dtype=uint8)
    """
    function = _method(method, "global_pool")
    _no_sliding(method_kwargs, "global_pool")
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"keepdims must be a bool, got {keepdims!r}")
    ndim = np.ndim(input)
    pooled = S.normalize_axes(axes, max(ndim, 1))
    # catavgmax stacks its halves on a new leading axis unless given one
    lead = 1 if method == "catavgmax" and method_kwargs.get("axis") is None else 0
    squeeze = tuple(a + lead for a in sorted(pooled))
    output = method_kwargs.get("output")
    if not keepdims and isinstance(output, np.ndarray):
        expected = tuple(n for a, n in enumerate(np.shape(input)) if a not in pooled)
        if method == "catavgmax":
            expected = None  # checked by catavgmax_pool itself
        if expected is not None and output.shape != expected:
            raise ValueError(f"output has shape {output.shape}, expected {expected}")
        method_kwargs["output"] = np.expand_dims(output, squeeze)
    result = _global_runs(method, input, axes, method_kwargs)
    if result is None:
        result = function(input, size=_whole_axes("global_pool"), axes=axes,
                          **method_kwargs)
    if keepdims:
        return result
    given = isinstance(output, np.ndarray)
    if isinstance(result, tuple):
        return ((output if given else np.squeeze(result[0], squeeze)),
                np.squeeze(result[1], squeeze))
    return output if given else np.squeeze(result, squeeze)


@dask_aware
@fill
def global_avg_pool(input, *, axes=None, keepdims=False, nan_policy="propagate",
                    nodata=None, output=None, workers=None):
    """Mean over the whole of the ``axes`` (see :func:`global_pool`).

    Parameters
    ----------
    %(input)s
    %(axes)s
    %(keepdims)s
    %(nan_policy)s
    %(nodata)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> fastpool.global_avg_pool(np.arange(12.0).reshape(3, 4), axes=1)
    array([1.5, 5.5, 9.5])
    """
    return global_pool(input, "avg", axes=axes, keepdims=keepdims,
                       nan_policy=nan_policy, nodata=nodata, output=output,
                       workers=workers)


@dask_aware
@fill
def global_max_pool(input, *, axes=None, keepdims=False, return_indices=False,
                    nan_policy="propagate", nodata=None, output=None, workers=None):
    """Maximum over the whole of the ``axes`` (see :func:`global_pool`).

    Parameters
    ----------
    %(input)s
    %(axes)s
    %(keepdims)s
    return_indices : bool, optional
        Also return the flat index of each maximum over the pooled axes (the first
        in C order on ties), as :func:`max_pool`.
    %(nan_policy)s
    %(nodata)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[3, 9, 4], [8, 1, 8]])
    >>> fastpool.global_max_pool(x, axes=1, return_indices=True)
    (array([9, 8]), array([1, 0]))
    """
    return global_pool(input, "max", axes=axes, keepdims=keepdims,
                       return_indices=return_indices, nan_policy=nan_policy,
                       nodata=nodata, output=output, workers=workers)


# --------------------------------------------------------------------------- fractional

def _ratio(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"output_ratio must hold real numbers, got {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"output_ratio must lie in (0, 1), got {value}")
    return value


def _fractional_lengths(shape, axes, output_size, output_ratio, size):
    """Per pooled axis (in the order of ``axes``): output length and window size."""
    d = len(axes)
    if (output_size is None) == (output_ratio is None):
        raise ValueError("fractional_max_pool needs exactly one of output_size and "
                         "output_ratio")
    sizes = S.normalize_sequence(size, d, "size", 1)
    if output_size is not None:
        outs = S.normalize_sequence(output_size, d, "output_size", 1)
    else:
        ratios = S.per_axis(output_ratio, d, "output_ratio", _ratio, "a number")
        outs = tuple(int(shape[a] * r) for a, r in zip(axes, ratios))
    for a, m, k in zip(axes, outs, sizes):
        n = shape[a]
        if m < 1 or m + k - 1 > n:
            raise ValueError(f"axis {a}: fractional_max_pool cannot give {m} outputs "
                             f"from length {n} with windows of {k} (it needs "
                             f"1 <= output + size - 1 <= length)")
    return outs, sizes


def _fractional_samples(samples, seed, batch_shape, d):
    if samples is None:
        return np.random.default_rng(seed).random(batch_shape + (d,))
    u = np.asarray(samples)
    if u.dtype.kind not in "fiu":
        raise TypeError(f"samples must be a real array, got dtype {u.dtype}")
    if u.shape != batch_shape + (d,):
        raise ValueError(f"samples must have shape {batch_shape + (d,)} (the non-pooled "
                         f"axes, then one per pooled axis), got {u.shape}")
    if u.size and not (np.all(u >= 0) and np.all(u < 1)):
        raise ValueError("samples must lie in [0, 1)")
    return u


@dask_aware
@fill
def fractional_max_pool(input, output_size=None, output_ratio=None, size=2, *,
                        seed=None, samples=None, axes=None, return_indices=False,
                        nan_policy="propagate", nodata=None, output=None, workers=None):
    """Fractional max pooling (Graham 2014): windows at pseudo-random starts.

    Each plane (one index of the non-pooled axes) draws one sample ``u`` in
    ``[0, 1)`` per pooled axis.  Along an axis of length ``n`` pooled to ``m``
    outputs with windows of ``k``, output ``i < m - 1`` is the window starting at
    ``int((i + u) * alpha) - int(u * alpha)``, ``alpha = (n - k) / (m - 1)``, and the
    last one starts at ``n - k``: PyTorch's ``generate_intervals``, computed in
    float32 for float32 and float16 input (as PyTorch does) and float64 otherwise.

    Parameters
    ----------
    %(input)s
    output_size : int or sequence of int, optional
        Output length of every pooled axis, or one per pooled axis.
    output_ratio : float or sequence of float, optional
        Instead of ``output_size``: output length ``int(n * ratio)``, ratio in
        ``(0, 1)``.
    size : int or sequence of int, optional
        Window size (default 2); ``output + size - 1 <= n`` on every axis.
    %(seed)s
    samples : array_like, optional
        The samples themselves, of shape ``(*batch, d)``: the input's shape without
        the pooled axes, then one per pooled axis in ascending axis order.  By
        default they are ``numpy.random.default_rng(seed).random((*batch, d))``.
    %(axes)s
    return_indices : bool, optional
        Also return the flat index of each maximum over the input's pooled axes
        (as :func:`max_pool`).
    %(nan_policy)s
    %(nodata)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``

    Notes
    -----
    ``torch.nn.functional.fractional_max_pool2d(x, k, output_size=(h, w),
    _random_samples=s)`` equals ``fractional_max_pool(x, (h, w), size=k,
    samples=s.numpy()[..., ::-1], axes=(-2, -1))`` (PyTorch's 2-D samples are
    ordered width, height); ``fractional_max_pool3d`` takes ``s.numpy()`` as is.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(10.0)
    >>> fastpool.fractional_max_pool(x, 6, samples=[0.5])
    array([1., 3., 5., 6., 8., 9.])
    >>> fastpool.fractional_max_pool(x, output_ratio=0.5, seed=0).shape
    (5,)
    """
    x = np.asarray(input)
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension, got a 0-d array")
    user_axes = S.normalize_axes(axes, x.ndim)
    outs, sizes = _fractional_lengths(x.shape, user_axes, output_size, output_ratio, size)
    by_axis = dict(zip(user_axes, zip(outs, sizes)))
    pooled = tuple(sorted(user_axes))
    batch_shape = tuple(n for a, n in enumerate(x.shape) if a not in pooled)
    u = _fractional_samples(samples, seed, batch_shape, len(pooled))
    nplanes = math.prod(batch_shape)
    if nplanes == 0:
        u = np.zeros((1, len(pooled)))  # no plane: any windows give the empty result
    arithmetic = np.dtype(np.float32 if x.dtype in (np.float16, np.float32) else np.float64)
    # Packed tables, one row per plane: the pooled axes in ascending order.
    parts = []
    for j, a in enumerate(pooled):
        m, k = by_axis[a]
        starts = fractional_starts(u[..., j], x.shape[a], m, k, arithmetic)
        parts.append((starts[..., None] + np.arange(k)).reshape(-1, m * k))
    tables = np.ascontiguousarray(np.concatenate(parts, axis=1))

    def first_plane(lengths):
        row, off = tables[0], 0
        windows = {}
        for a in pooled:
            m, k = by_axis[a]
            starts = row[off:off + m * k:k]
            windows[a] = given_windows(x.shape[a], starts, starts + k)
            off += m * k
        return tuple(windows[a] for a in user_axes)

    call = _pool._Call(x if x is input else input, GivenGeometry(first_plane,
                       "fractional_max_pool"), None, 0, 1, False, "ignore", 0.0,
                       nan_policy, nodata, axes, workers, fold_channels="never")
    plane = np.arange(nplanes, dtype=np.int64).reshape(batch_shape)
    plane = np.broadcast_to(np.expand_dims(plane, pooled), call.x.shape)
    return _pool.extremum_run(call, False, output, return_indices, plane, tables)


# --------------------------------------------------------------------------- pyramid

class Pyramid(list):
    """The levels of :func:`pyramid` (level 1 first), with where each one lies.

    Attributes
    ----------
    scales : list of tuple of int
        Per level, per input axis: input pixels per level pixel (``factor**k`` on
        the pooled axes, 1 on the others).
    translations : list of tuple of float
        Per level, per input axis: where the centre of the level's first pixel
        lies, in input pixel coordinates (pixel centres at integers):
        ``(factor**k - 1) / 2`` on the pooled axes, 0 on the others.  Level pixel
        ``j`` lies at ``translation + j * scale``.
    """

    def __init__(self, levels=(), scales=(), translations=()):
        super().__init__(levels)
        self.scales = list(scales)
        self.translations = list(translations)

    def __repr__(self):
        shapes = ", ".join(str(level.shape) for level in self)
        return f"Pyramid({len(self)} levels: {shapes})"


def _level_count(shape, axes, factors):
    """Levels until every pooled axis with a factor above 1 has length 1."""
    levels = 0
    for a, f in zip(axes, factors):
        n, k = shape[a], 0
        while f > 1 and n > 1:
            n, k = -(-n // f), k + 1
        levels = max(levels, k)
    return levels


def _sums_dtype(x, window):
    """The narrowest float that holds every window sum of ``x`` exactly (floats:
    float64), or None."""
    if x.dtype.kind == "f":
        return np.dtype(np.float64)
    info = np.iinfo(np.uint8 if x.dtype == np.bool_ else x.dtype)
    largest = max(-int(info.min), int(info.max)) * window
    if largest < 2 ** 24:
        return np.dtype(np.float32)
    if largest < 2 ** 53:
        return np.dtype(np.float64)
    return None


def _sums_chain_ok(x, windows, axes, kwargs):
    """Whether the levels of a mean or sum can be pooled from exact level sums:
    every window counted in full (no missing values) and its sum exact."""
    if set(kwargs) - {"nan_policy", "workers"} or not windows:
        return False
    if kwargs.get("nan_policy", "propagate") == "omit":
        return False
    window = math.prod(windows[-1][a] for a in axes)
    return _sums_dtype(x, window) is not None


def _window_counts(shape, axes, side, ndim):
    """Per level axis: how many input elements each ceil-mode window covers."""
    counts = []
    for a in range(ndim):
        if a in axes:
            k = side[a]
            starts = np.arange(-(-shape[a] // k), dtype=np.int64) * k
            counts.append(np.minimum(k, shape[a] - starts).astype(np.float64))
        else:
            counts.append(np.ones(shape[a]))
    return counts


def _power_of_two_inverse(counts):
    """``1 / counts`` where a count is a power of two (exact), else 0."""
    mantissa, _ = np.frexp(counts)
    return np.where(mantissa == 0.5, 1.0 / counts, 0.0)


def _column_scale(counts):
    """float32 ``1 / counts`` when every count is a power of two, else None."""
    scale = _power_of_two_inverse(counts)
    return scale.astype(np.float32) if scale.all() else None


# Input per slab of a pyramid of sums.  The slabs' level sums go to buffers that
# are reused: a level-sized intermediate costs more in fresh pages (zeroed by the
# OS) than the sums themselves.  16 MiB measured best on 8192^2 uint8 and 512^3
# uint8 (2 MiB: Python's per-slab calls add up; 64 MiB: the pages again).
_SLAB_BYTES = 1 << 24


def _pyramid_of_sums(method, x, in_dtype, factors, axes, windows, kwargs):
    """Mean or sum levels from exact window sums, each level's sums pooled from
    the last: the input is read once, and each level is rounded once.

    The work goes slab by slab along axis 0 (cut where no window of the first
    ``m`` levels straddles two slabs), so the level sums are written to reused
    buffers instead of level-sized arrays; levels past ``m`` are pooled from the
    assembled level-``m`` sums.
    """
    workers = kwargs.get("workers")
    S.check_nan_policy(x, kwargs.get("nan_policy", "propagate"))
    sums_dtype = _sums_dtype(x, math.prod(windows[-1][a] for a in axes))
    natural = np.dtype(np.float32) if in_dtype == np.float16 else in_dtype
    if method == "sum" and natural.kind != "f":
        natural = np.dtype(np.uint64 if natural.kind == "u" else np.int64)
    kernel_dtype = np.dtype(np.uint8) if natural == np.bool_ else natural
    tag = np.empty(0, dtype=kernel_dtype)
    shapes = [tuple(-(-n // k) for n, k in zip(x.shape, side)) for side in windows]
    levels = [np.empty(shape, dtype=natural) for shape in shapes]
    counts = [_window_counts(x.shape, axes, side, x.ndim) for side in windows]

    divisors = {}

    def emit(k, sums, lo, hi):
        out = levels[k][lo:hi]
        if method == "sum":
            np.copyto(out, sums, casting="unsafe")
            return
        # Slabs of equal length but the last see the same counts.
        key = (k, hi - lo, hi == shapes[k][0])
        if key not in divisors:
            row_count = counts[k][0][lo:hi]
            for c in counts[k][1:-1]:
                row_count = np.multiply.outer(row_count, c).ravel()
            if x.ndim == 1:
                row_count = np.ones(1)
            col = counts[k][-1][lo:hi] if x.ndim == 1 else counts[k][-1]
            divisors[key] = (row_count, col, _power_of_two_inverse(row_count),
                             _column_scale(col))
        _sums.means_of_sums(tag, sums.reshape(-1, sums.shape[-1]),
                            out.view(kernel_dtype), *divisors[key],
                            S.threads_for(sums.size * 4, workers))

    f0 = dict(zip(axes, factors)).get(0, 1)
    n0, row_bytes = x.shape[0], max(1, x.nbytes // max(1, x.shape[0]))
    m = len(windows)
    if f0 > 1:
        m = 0
        while m < len(windows) and f0 ** (m + 1) * row_bytes <= _SLAB_BYTES:
            m += 1
    step = (f0 ** m) * max(1, _SLAB_BYTES // (f0 ** m * row_bytes)) if m else n0
    if x.ndim == 1 or step >= n0:
        m, step = len(windows), max(n0, 1)
    deep = m < len(windows)
    sums_m = np.empty(shapes[m - 1], dtype=sums_dtype) if deep and m else None
    buffers, calls = {}, {}

    def slab_sums(src, target):
        """``sum_pool(src, factors, ceil_mode=True, output=target)``, validated once
        per slab shape and layout: the slabs differ only in where they start."""
        key = (src.shape, src.strides, src.dtype, target.dtype)
        if key not in calls:
            call = _pool._Call(src, factors, None, 0, 1, True, "ignore", 0.0,
                               "propagate", None, axes, workers, fold_channels="integers")
            calls[key] = (call, _pool._sum_code(target.dtype, call.x.dtype))
        call, code = calls[key]
        for xv, ov in _pool.batch_views((src, target), call.kernel_params.axes):
            _sums.sums(call.tag, xv, ov, code, False, 0, call.windows[-1].counts,
                       *call.geometry_args, False, None, call.cval, call.nthreads)
        return target

    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    for r0 in range(0, n0, step):
        sums = x[r0:r0 + step]
        for k in range(m):
            lo, hi = -(-r0 // f0 ** (k + 1)), -(-min(r0 + step, n0) // f0 ** (k + 1))
            shape = (hi - lo,) + shapes[k][1:]
            if k == m - 1 and deep:
                target = sums_m[lo:hi]
            else:
                target = buffers.get((k, shape))
                if target is None:
                    target = buffers[(k, shape)] = np.empty(shape, dtype=sums_dtype)
            sums = slab_sums(sums, target)
            emit(k, sums, lo, hi)
    sums = sums_m if m else x
    for k in range(m, len(windows)):
        sums = _pool.sum_pool(sums, factors, ceil_mode=True, axes=axes,
                              output=sums_dtype, workers=workers)
        emit(k, sums, 0, shapes[k][0])
    return levels


@dask_aware
@fill
def pyramid(input, levels=None, factor=2, method="avg", *, axes=None, **method_kwargs):
    """Mipmaps: the input pooled by ``factor``, ``factor**2``, ... (levels 1, 2, ...).

    Level ``k`` equals pooling the input directly with windows of
    ``factor**k`` (``size = stride = factor**k``, ``ceil_mode=True``): every input
    pixel is kept, a partial window at the far edge is pooled over the pixels it
    has.  Integer levels are rounded once from exact window sums, never built on
    rounded levels; ``'mode'`` and the order statistics are exact at every level.

    Parameters
    ----------
    %(input)s
    levels : int, optional
        How many levels; by default down to the level where every pooled axis
        (with a factor above 1) has length 1.
    factor : int or sequence of int, optional
        Reduction per level, for every pooled axis or one per pooled axis
        (e.g. ``(2, 2, 1)``: 1 leaves that axis alone).
    %(method)s
    %(axes)s
    %(method_kwargs)s

    Returns
    -------
    Pyramid
        A list of the levels (ndarrays), with ``scales`` and ``translations``
        saying where each lies relative to the input.

    Notes
    -----
    ``'max'``, ``'min'``, ``'avg'`` and ``'sum'`` read the input once: each
    level's extrema, or exact window sums (float32 while that is exact, float64
    otherwise), are pooled from the level before, and a mean is rounded once from
    its exact sum.  Integer levels therefore equal the direct pooling bitwise;
    float sums equal it to float64 rounding (they are associated by level).
    Means under ``nan_policy='omit'`` or ``nodata``, sums of 64-bit integers
    and the other methods pool the input once per level.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(25, dtype=np.uint8).reshape(5, 5)
    >>> levels = fastpool.pyramid(x)
    >>> levels
    Pyramid(3 levels: (3, 3), (2, 2), (1, 1))
    >>> levels[0]
    array([[ 3,  5,  6],
           [13, 15, 16],
           [20, 22, 24]], dtype=uint8)
    >>> levels.scales[1], levels.translations[1]
    ((4, 4), (1.5, 1.5))
    >>> [level.shape for level in fastpool.pyramid(np.zeros((8, 8, 3)), 2, (2, 2, 1))]
    [(4, 4, 3), (2, 2, 3)]
    """
    return pyramid_of_block(input, None, levels, factor, method, axes, method_kwargs)


def pyramid_of_block(input, whole_shape, levels, factor, method, axes, method_kwargs):
    """:func:`pyramid` of ``input``, or, with ``whole_shape``, of a block of an
    array of that shape cut at multiples of the last level's window: the block's
    windows are then the whole array's (a window longer than the block but not
    than the array is a partial one, as it is in the array), so its levels are
    the array's levels' blocks, bitwise."""
    function = _method(method, "pyramid")
    _no_sliding(method_kwargs, "pyramid", also=("mode", "cval", "output", "return_indices"))
    x, in_dtype = S.as_input(input)
    shape = x.shape if whole_shape is None else tuple(whole_shape)
    user_axes = S.normalize_axes(axes, x.ndim)
    factors = S.normalize_sequence(factor, len(user_axes), "factor", 1)
    if all(f == 1 for f in factors):
        raise ValueError(f"factor must be above 1 on some pooled axis, got {factor!r}")
    if levels is None:
        levels = _level_count(shape, user_axes, factors)
    else:
        levels = S.int_at_least(levels, "levels", 1)
    if in_dtype == np.bool_:
        x = x.view(np.bool_)
    for a in user_axes:
        check_length(x.shape[a], a)
    scales, translations, windows, out = [], [], [], []
    for k in range(1, levels + 1):
        side = dict(zip(user_axes, (f ** k for f in factors)))
        scales.append(tuple(side.get(a, 1) for a in range(x.ndim)))
        translations.append(tuple((side[a] - 1) / 2 if a in side else 0.0
                                  for a in range(x.ndim)))
        # A window longer than its axis is the whole axis: the same single
        # window, without a table as long as factor**k.
        windows.append(tuple(min(side.get(a, 1), max(n, 1))
                             for a, n in enumerate(shape)))
    if method in ("max", "min"):
        # An extremum of extrema is exact: each level from the one before, so
        # the input is read once.
        level = x
        for k in range(levels):
            level = function(level, size=factors, ceil_mode=True, axes=user_axes,
                             **method_kwargs)
            out.append(level)
    elif method in ("avg", "sum") and _sums_chain_ok(x, windows, user_axes,
                                                     method_kwargs):
        out = _pyramid_of_sums(method, x, in_dtype, factors, user_axes, windows,
                               method_kwargs)
    else:
        # Every level from the input (its windows cannot be pooled from a level).
        for window in windows:
            out.append(function(x, size=tuple(window[a] for a in user_axes),
                                ceil_mode=True, axes=user_axes, **method_kwargs))
    return Pyramid(out, scales, translations)
