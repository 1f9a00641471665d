"""Order statistics and mode pooling: median, rank, percentile, mode.

Every result is a selection (one of the window's values), so every dtype stays
exact: uint64 labels above 2**53 never pass through float.
"""

import functools
import math
import numbers
import operator

import numpy as np

from ._dask import dask_aware
from ._docstrings import fill
from ._kernels import order as _order
from ._pool import _Call, _kernel_target, _natural_dtype
from . import _support as S

_KIND = _order.RankKind

# Windows of up to this many samples take the vectorised lane path (the kernel's
# MAX_LANE_WINDOW).
_MAX_LANE_WINDOW = 64
# Mode of up to this many samples counts equal pairs instead of sorting (the
# kernel's MODE_COUNT_WINDOW).
_MODE_COUNT_WINDOW = 8
# Same-width signed integers that mode pooling reads float input as.
_FLOAT_KEYS = {np.dtype(np.float32): np.dtype(np.int32),
               np.dtype(np.float64): np.dtype(np.int64)}


# --------------------------------------------------------------------------- networks

@functools.lru_cache(maxsize=None)
def sorting_network(n):
    """Batcher's odd-even merge sort for ``n`` values as comparator pairs ``(i, j)``,
    ``i < j`` (the smaller value goes to ``i``).

    Built for the next power of two and pruned: positions ``>= n`` would hold
    +inf and never move, so their comparators are no-ops.
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


@functools.lru_cache(maxsize=None)
def selection_network(n, r):
    """The comparators of :func:`sorting_network` that position ``r`` depends on."""
    needed = {r}
    kept = []
    for i, j in reversed(sorting_network(n)):
        if i in needed or j in needed:
            kept.append((i, j))
            needed.update((i, j))
    return tuple(reversed(kept))


def _pairs(network):
    return np.asarray(network, dtype=np.int32).reshape(-1)


_NO_PAIRS = np.empty(0, dtype=np.int32)


# --------------------------------------------------------------------------- checks

def _check_rank(rank, window):
    if isinstance(rank, (bool, np.bool_)) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"rank must be an int, got {rank!r}")
    rank = operator.index(rank)
    if not -window <= rank < window:
        raise ValueError(f"rank must lie in [-{window}, {window}) for a window of "
                         f"{window} samples, got {rank}")
    return rank


def _check_percentile(percentile):
    if isinstance(percentile, (bool, np.bool_)) or not isinstance(percentile,
                                                                  numbers.Real):
        raise TypeError(f"percentile must be a real number, got {percentile!r}")
    value = float(percentile)
    if not -100.0 <= value <= 100.0:
        raise ValueError(f"percentile must lie in [-100, 100], got {percentile!r}")
    # scipy.ndimage's rule: a negative percentile counts from the top.
    return value + 100.0 if value < 0 else value


def _full_rank(kind, rank, percentile, n):
    """The rank a window of ``n`` samples gets (the kernel's ``rank_of``)."""
    if kind == _KIND.RANK_MEDIAN:
        r = n // 2
    elif kind == _KIND.RANK_PERCENTILE:
        r = n - 1 if percentile >= 100.0 else int(n * percentile / 100.0)
    else:
        r = rank if rank >= 0 else n + rank
    return min(max(r, 0), n - 1)


def _fast_path(call, full_rank=None):
    """``(fast, lanes, pairs)``: the kernel's register path for full interior
    windows (0: none), whether the lanes can take them, and the lanes' network
    (the comparators of rank ``full_rank``, or a full sort for mode)."""
    widths = [w.width for w in call.windows]
    rows = math.prod(widths[:-1])
    k = widths[-1]
    n = rows * k
    unit = call.windows[-1].dilation == 1
    fast = 0
    if len(widths) >= 2 and rows == 2 and k == 2 and unit:
        fast = 1
    elif full_rank is None and rows == 4 and k == 2 and unit:
        fast = 4
    elif len(widths) >= 2 and rows == 3 and k == 3 and unit and full_rank == 4:
        fast = 2
    lanes = n <= _MAX_LANE_WINDOW
    pairs = _NO_PAIRS
    if lanes and full_rank is not None:
        pairs = _pairs(selection_network(n, full_rank))
    elif lanes and n > _MODE_COUNT_WINDOW:
        pairs = _pairs(sorting_network(n))
    return fast, lanes, pairs


# --------------------------------------------------------------------------- drivers

def _setup(input, size, stride, padding, dilation, ceil_mode, mode, cval, nan_policy,
           nodata, axes, output, workers):
    call = _Call(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers, fold_channels="always")
    result = call.output(output, _natural_dtype(call.in_dtype, call.x.dtype))
    target = _kernel_target(result, call.x.dtype)
    return call, result, target


def _rank_pool(kind, input, size, stride, padding, dilation, ceil_mode, mode, cval,
               nan_policy, nodata, axes, output, workers, rank=0, percentile=0.0):
    call, result, target = _setup(input, size, stride, padding, dilation, ceil_mode,
                                  mode, cval, nan_policy, nodata, axes, output, workers)
    window = math.prod(call.params.size)
    if kind == _KIND.RANK_FIXED:
        rank = _check_rank(rank, window)
    elif kind == _KIND.RANK_PERCENTILE:
        percentile = _check_percentile(percentile)
    direct = target is not None
    if not direct:
        target = np.empty(call.out_shape, dtype=call.x.dtype)
    full = math.prod(w.width for w in call.windows)
    full_rank = _full_rank(kind, rank, percentile, full)
    fast, lanes, pairs = _fast_path(call, full_rank)
    for views in call.views(target):
        _order.rank(call.tag, views[0], views[1], *call.geometry_args, kind, rank,
                    percentile, fast, lanes, full_rank, pairs, call.omit, call.nodata,
                    call.cval, call.nthreads)
    if not direct:
        S.store(result, target)
    return result


def _bits(value, dtype, key_dtype):
    return None if value is None else np.array(value, dtype=dtype).view(key_dtype).item()


def _mode_pool(input, size, stride, padding, dilation, ceil_mode, mode, cval,
               nan_policy, nodata, axes, output, workers):
    call, result, target = _setup(input, size, stride, padding, dilation, ceil_mode,
                                  mode, cval, nan_policy, nodata, axes, output, workers)
    direct = target is not None
    if not direct:
        target = np.empty(call.out_shape, dtype=call.x.dtype)
    kdt = call.x.dtype
    key_dtype = _FLOAT_KEYS.get(kdt, kdt)
    float_keys = key_dtype != kdt
    nd, nd_alt, cv = call.nodata, None, call.cval
    if float_keys:
        # Values compare by bits, but nodata as in every method: -0.0 == 0.0.
        if nd is not None and nd == 0:
            nd_alt = _bits(-nd, kdt, key_dtype)
        nd, cv = _bits(nd, kdt, key_dtype), _bits(cv, kdt, key_dtype)
    tag = np.empty(0, dtype=key_dtype)
    fast, lanes, pairs = _fast_path(call)
    for views in call.views(target):
        _order.mode(tag, views[0].view(key_dtype), views[1].view(key_dtype),
                    *call.geometry_args, float_keys, fast, lanes, pairs, call.omit, nd,
                    nd_alt, cv, call.nthreads)
    if not direct:
        S.store(result, target)
    return result


# --------------------------------------------------------------------------- public

@dask_aware
@fill
def median_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
                mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
                output=None, workers=None):
    """Median of each window: the value of rank ``n // 2`` of its ``n`` values.

    For an even ``n`` this is the upper of the two middle values (scipy.ndimage's
    ``median_filter`` rule), never their mean, so the result is always one of the
    window's values and every dtype stays exact.

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    %(padding)s
    %(dilation)s
    %(ceil_mode)s
    %(mode)s
    %(cval)s
    %(nan_policy)s
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32).

    See Also
    --------
    rank_pool, percentile_pool, mode_pool

    Notes
    -----
    ``n`` counts the samples that are part of the window: under ``mode='ignore'``
    an edge window takes the median of what exists; NaNs under
    ``nan_policy='omit'`` and ``nodata`` samples are not counted.

    ``torch.median`` returns the *lower* median (rank ``(n - 1) // 2``); the two
    agree for odd ``n``.  For the lower median use ``rank_pool`` or
    ``percentile_pool`` as fits your windows.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1, 9, 2, 2],
    ...               [3, 4, 2, 7]], dtype=np.uint8)
    >>> fastpool.median_pool(x, 2)
    array([[4, 2]], dtype=uint8)
    >>> fastpool.median_pool(np.array([5., np.nan, 1., 3.]), 2, nan_policy="omit")
    array([5., 3.])
    """
    return _rank_pool(_KIND.RANK_MEDIAN, input, size, stride, padding, dilation,
                      ceil_mode, mode, cval, nan_policy, nodata, axes, output, workers)


@dask_aware
@fill
def rank_pool(input, rank, size, stride=None, *, padding=0, dilation=1,
              ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
              nodata=None, axes=None, output=None, workers=None):
    """The value of a given rank in each window (0: the smallest).

    Parameters
    ----------
    %(input)s
    rank : int
        Rank in the sorted window, ``-N <= rank < N`` for a full window of ``N``
        samples; negative ranks count from the end (-1: the largest).  A window
        with fewer values (edges under ``mode='ignore'``, omitted NaNs, nodata)
        takes ``rank`` (or ``n + rank``) clamped to its ``n`` values, so
        ``rank=0`` is always the minimum and ``rank=-1`` the maximum.
    %(size)s
    %(stride)s
    %(padding)s
    %(dilation)s
    %(ceil_mode)s
    %(mode)s
    %(cval)s
    %(nan_policy)s
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32).

    See Also
    --------
    median_pool, percentile_pool, min_pool, max_pool

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([4, 8, 1, 6, 3, 5, 9, 2, 7])
    >>> fastpool.rank_pool(x, 1, 3)
    array([4, 5, 7])
    >>> fastpool.rank_pool(x, -1, 3)
    array([8, 6, 9])
    """
    return _rank_pool(_KIND.RANK_FIXED, input, size, stride, padding, dilation,
                      ceil_mode, mode, cval, nan_policy, nodata, axes, output, workers,
                      rank=rank)


@dask_aware
@fill
def percentile_pool(input, percentile, size, stride=None, *, padding=0, dilation=1,
                    ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
                    nodata=None, axes=None, output=None, workers=None):
    """The given percentile of each window, by selection.

    Parameters
    ----------
    %(input)s
    percentile : float
        In ``[0, 100]``; a negative value counts from the top (``-20`` is 80), as
        in scipy.ndimage's ``percentile_filter``.  A window of ``n`` values gives its
        value of rank ``int(n * percentile / 100)`` (``n - 1`` for 100): no
        interpolation between values.
    %(size)s
    %(stride)s
    %(padding)s
    %(dilation)s
    %(ceil_mode)s
    %(mode)s
    %(cval)s
    %(nan_policy)s
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32).

    See Also
    --------
    rank_pool, median_pool

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(16, dtype=np.int16)[::-1]
    >>> fastpool.percentile_pool(x, 25, 8)
    array([10,  2], dtype=int16)
    >>> fastpool.percentile_pool(x, 100, 8)
    array([15,  7], dtype=int16)
    """
    return _rank_pool(_KIND.RANK_PERCENTILE, input, size, stride, padding, dilation,
                      ceil_mode, mode, cval, nan_policy, nodata, axes, output, workers,
                      percentile=percentile)


@dask_aware
@fill
def mode_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
              mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
              output=None, workers=None):
    """Most frequent value of each window; ties go to the smallest value.

    The pooling for label images: every output is a label that exists in its
    window.  With ``nodata`` as the background label (e.g. ``nodata=0``), a
    window's mode ignores the background unless the window holds nothing else,
    so thin structures survive downsampling ("sparse" mode).

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    %(padding)s
    %(dilation)s
    %(ceil_mode)s
    %(mode)s
    %(cval)s
    %(nan_policy)s
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32).

    See Also
    --------
    median_pool

    Notes
    -----
    Values are compared exactly: integers of every width (uint64 labels above
    2**53 included) and floats by their bits, so ``-0.0`` and ``0.0`` are two
    values (``-0.0`` the smaller).  Ties go to the smallest value, as in
    ``scipy.stats.mode``.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> labels = np.array([[1, 1, 0, 7],
    ...                    [2, 1, 0, 0]], dtype=np.uint32)
    >>> fastpool.mode_pool(labels, 2)
    array([[1, 0]], dtype=uint32)
    >>> fastpool.mode_pool(labels, 2, nodata=0)
    array([[1, 7]], dtype=uint32)
    """
    return _mode_pool(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                      nan_policy, nodata, axes, output, workers)
