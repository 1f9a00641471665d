"""Forward pooling API: validate -> geometry -> kernel, thin per family."""

import itertools
import math
import numbers
import operator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _support as S
from ._dask import dask_aware
from ._docstrings import fill
from ._geometry import (GivenGeometry, check_length, pack_tables, sliding_geometry,
                        unit_windows)
from ._kernels import _unpool
from ._kernels import extremum as _extremum
from ._kernels import sums as _sums

_OUT = _sums.OutCode


# --------------------------------------------------------------------------- layout

def batch_views(arrays, pooled):
    """Views of ``arrays`` (same shape) as ``(batch, *pooled)`` without copying.

    The non-pooled axes are ordered by the first array's strides and merged where
    every array allows it; axes that cannot be merged are iterated here, so this
    yields one tuple of views per kernel call (usually exactly one).
    """
    ref = arrays[0]
    batch = [a for a in range(ref.ndim) if a not in pooled]
    if any(ref.shape[a] == 0 for a in batch):
        return []
    batch = [a for a in batch if ref.shape[a] != 1]
    batch.sort(key=lambda a: -abs(ref.strides[a]))
    groups = []
    for a in batch:
        if groups and all(arr.strides[groups[-1][-1]] == arr.strides[a] * arr.shape[a]
                          for arr in arrays):
            groups[-1].append(a)
        else:
            groups.append([a])
    inner = groups.pop() if groups else []
    outer = [a for g in groups for a in g]
    singles = [a for a in range(ref.ndim) if a not in pooled and a not in batch]
    order = outer + inner + list(pooled) + singles
    moved = [arr.transpose(order) for arr in arrays]
    n_in = math.prod(ref.shape[a] for a in inner)
    views = []
    for index in itertools.product(*[range(ref.shape[a]) for a in outer]):
        group = []
        for arr in moved:
            sub = arr[index] if index else arr
            pooled_shape = sub.shape[len(inner):len(inner) + len(pooled)]
            view = sub.reshape((n_in,) + pooled_shape)
            if view.base is not (sub if sub.base is None else sub.base):
                # reshape copied (it should not: the inner axes merge by their
                # strides); a kernel must see the caller's memory.
                stride = sub.strides[len(inner) - 1] if inner else 0
                view = as_strided(sub, (n_in,) + pooled_shape,
                                  (stride,) + sub.strides[len(inner):len(inner) + len(pooled)],
                                  writeable=sub.flags.writeable)
            group.append(view)
        views.append(group)
    return views


def _kernel_target(result, kernel_dtype):
    """``result`` itself when a kernel can write into it as ``kernel_dtype``, else None."""
    if result.dtype == np.bool_ and kernel_dtype == np.uint8:
        result = result.view(np.uint8)
    if (result.dtype == kernel_dtype and result.dtype.isnative and result.flags.aligned
            and all(s % result.itemsize == 0 for s in result.strides)):
        return result
    return None


# --------------------------------------------------------------------------- sliding

class _Call:
    """One validated call: input, parameters, geometry, output.

    ``size`` is the sliding window's size, or a :class:`GivenGeometry` whose
    windows replace the sliding ones (adaptive and global pooling).
    """

    def __init__(self, input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers, fold_channels, any_order=False):
        self.source = input
        self.layout = None   # the result's axes from the outermost in memory; None: C
        x, self.in_dtype = S.as_input(input)
        chunk = size if isinstance(size, GivenGeometry) else None
        self.counter = chunk.counter if chunk else None
        self.whole_disjoint = chunk.disjoint if chunk else None
        p, windows = plan_windows(x.shape, size, stride, padding, dilation, ceil_mode,
                                  mode, nan_policy, axes)
        S.check_nan_policy(x, p.nan_policy)
        self.cval, self.nodata, nan_policy = S.fill_values(x, p.mode, cval, nodata,
                                                           p.nan_policy, self.in_dtype)
        self.omit = nan_policy == "omit"
        self.x = x
        self.params = p
        if fold_channels == "always" or (fold_channels == "integers"
                                         and x.dtype.kind in "iu"):
            if any_order:
                ordered, windows = _memory_order(x, p, windows)
                if ordered is not p:
                    # a result laid out as the input, so the kernel writes rows
                    self.layout = sorted(range(x.ndim), key=lambda a: -abs(x.strides[a]))
                p = ordered
            p = _fold_unit_stride_axis(x, p)
        self.kernel_params = p
        if len(p.axes) > len(windows):  # the folded channel axis
            windows = windows + (unit_windows(x.shape[p.axes[-1]]),)
        self.windows = windows
        shape = list(x.shape)
        for a, w in zip(p.axes, self.windows):
            shape[a] = w.out_len
        self.out_shape = tuple(shape)
        self.packed = pack_tables(self.windows)
        window = math.prod(w.width for w in self.windows)
        self.nthreads = S.threads_for(math.prod(shape) * window, workers)
        self.tag = np.empty(0, dtype=x.dtype)

    def output(self, output, default_dtype):
        return S.prepare_output(output, self.out_shape, default_dtype, self.source,
                                self.layout)

    def views(self, *arrays):
        return batch_views((self.x,) + arrays, self.kernel_params.axes)

    def counter_view(self):
        """A virtual array of the result's shape whose element strides are the
        random counter's steps (never read), and the counter of its element 0:
        the flat C index over the result, or the chunk's place in a whole."""
        first, steps = self.counter or (0, c_steps(self.out_shape))
        view = as_strided(np.zeros(1, dtype=np.int64), self.out_shape,
                          tuple(8 * s for s in steps), writeable=False)
        return view, first

    @property
    def geometry_args(self):
        """The kernels' geometry arguments: tables, offsets, widths, out_lens, interior."""
        return self.packed


def c_steps(shape):
    """Element steps of a C-ordered array of ``shape``."""
    steps, step = [], 1
    for n in reversed(shape):
        steps.append(step)
        step *= n
    return tuple(reversed(steps))


def counter_id(view, counts, first):
    """The random counter of ``view``'s first element: ``view`` is one of the
    batch views of ``counts`` (a :meth:`_Call.counter_view`)."""
    origin = counts.__array_interface__["data"][0]
    return first + (view.__array_interface__["data"][0] - origin) // 8


def plan_windows(shape, size, stride, padding, dilation, ceil_mode, mode, nan_policy,
                 axes):
    """The validated parameters of a pool of an array of ``shape`` and the windows
    of its pooled axes (ascending): what every call, and every chunk of a Dask
    call, pools by.  ``size`` is a window size or a :class:`GivenGeometry`."""
    if not isinstance(size, GivenGeometry):
        p = S.pool_params(len(shape), size, stride, padding, dilation, ceil_mode, mode,
                          nan_policy, axes)
        return p, sliding_geometry(tuple(shape[a] for a in p.axes), p)
    given = size
    for name, value, default in (("stride", stride, None), ("padding", padding, 0),
                                 ("dilation", dilation, 1), ("ceil_mode", ceil_mode, False)):
        if value is not default and value != default:
            raise TypeError(f"{given.caller} takes no {name} (its windows follow from "
                            f"the output size); got {name}={value!r}")
    user_axes = S.normalize_axes(axes, len(shape))
    for a in user_axes:
        check_length(shape[a], a)
    windows = dict(zip(user_axes, given.windows(tuple(shape[a] for a in user_axes))))
    for a, w in windows.items():
        # The kernels trust the tables: windows of another length would read
        # outside the array.
        if w.n != shape[a]:
            raise ValueError(f"{given.caller}: the windows of axis {a} are for a length "
                             f"of {w.n}; the axis has {shape[a]}")
    sorted_axes = tuple(sorted(user_axes))
    width = tuple(windows[a].width for a in sorted_axes)
    ones = (1,) * len(sorted_axes)
    p = S.pool_params(len(shape), width, ones, 0, 1, False, mode, nan_policy, sorted_axes)
    return p, tuple(windows[a] for a in sorted_axes)


def _memory_order(x, p, windows):
    """Parameters and windows with the pooled axes in memory order (decreasing
    stride), for reductions whose result does not depend on the order of a
    window's samples (extrema without indices, integer sums).

    A Fortran-ordered array or a transpose is then read along its contiguous
    axis: in C order each window row jumps a page an element (2x2 max of a
    4096^2 Fortran float32 array: 44 ms, against 6.1 in memory order).  The
    caller lays the result out as the input (``_Call.layout``), so the kernel
    writes contiguous rows of it too.
    """
    order = sorted(range(len(p.axes)), key=lambda i: -abs(x.strides[p.axes[i]]))
    if order == sorted(order):
        return p, windows
    pick = lambda t: tuple(t[i] for i in order)  # noqa: E731
    return (S.PoolParams(pick(p.axes), pick(p.size), pick(p.stride), pick(p.padding),
                         pick(p.dilation), p.ceil_mode, p.mode, p.nan_policy),
            pick(windows))


def _fold_unit_stride_axis(x, p):
    """Parameters that also pool a contiguous batch axis, with a window of 1.

    Channels-last arrays (``(H, W, C)`` images, NHWC) pooled over H and W have a
    non-pooled innermost axis; as the kernels' last axis, with size 1, it turns
    every window row into a contiguous run of channels instead of one strided
    pass per channel.  The result is the same; the kernel sees the axis last.
    Only for exact reductions (any sample order gives the same bits).
    """
    last = p.axes[-1]
    if x.strides[last] == x.itemsize or x.shape[last] == 1:
        return p
    for c in range(x.ndim - 1, -1, -1):
        if c not in p.axes and x.strides[c] == x.itemsize and x.shape[c] > 1:
            return S.PoolParams(p.axes + (c,), p.size + (1,), p.stride + (1,),
                                p.padding + (0,), p.dilation + (1,), p.ceil_mode,
                                p.mode, p.nan_policy)
    return p


def _natural_dtype(in_dtype, kernel_dtype):
    """Result dtype of a method that keeps the input's dtype (float16 -> float32)."""
    return kernel_dtype if in_dtype == np.float16 else in_dtype


def _extremum_pool(is_min, input, size, stride, padding, dilation, ceil_mode, mode,
                   cval, nan_policy, nodata, axes, output, workers, return_indices):
    call = _Call(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers,
                 fold_channels="never" if return_indices else "always",
                 any_order=not return_indices)
    return extremum_run(call, is_min, output, return_indices)


def extremum_run(call, is_min, output, return_indices, plane=None, plane_tables=None):
    """Run the extremum kernel for ``call``.

    ``plane`` (an int64 array of the input's shape, constant along the pooled
    axes) and ``plane_tables`` (one row of packed tables per plane id): windows
    that differ per batch item, read through the tables only.
    """
    result = call.output(output, _natural_dtype(call.in_dtype, call.x.dtype))
    target = _kernel_target(result, call.x.dtype)
    direct = target is not None
    if not direct:
        target = call.output(None, call.x.dtype)
    indices = np.empty(call.out_shape, dtype=np.int64) if return_indices else None
    arrays = (target,) if indices is None else (target, indices)
    geometry = list(call.geometry_args)
    per_plane = {}
    if plane is not None:
        arrays = arrays + (plane,)
        interior = geometry[4].copy()
        interior[:2] = 0
        geometry[0], geometry[4] = plane_tables.ravel(), interior
    for views in call.views(*arrays):
        if plane is not None:
            ids = views[-1][(slice(None),) + (0,) * (views[-1].ndim - 1)]
            per_plane = dict(plane=ids, tab_plane=plane_tables.shape[1])
        _extremum.extremum(call.tag, is_min, views[0], views[1],
                           views[2] if return_indices else None, *geometry,
                           call.omit, call.nodata, call.cval, call.nthreads, **per_plane)
    if not direct:
        S.store(result, target)
    return (result, indices) if return_indices else result


def _sum_code(result_dtype, kernel_dtype):
    """The kernel's OutCode for writing ``result_dtype`` directly, or None."""
    if result_dtype == kernel_dtype or (result_dtype == np.bool_
                                        and kernel_dtype == np.uint8):
        return _OUT.OUT_SAME
    if result_dtype == np.float32:
        return _OUT.OUT_FLOAT32
    if result_dtype == np.float64:
        return _OUT.OUT_FLOAT64
    if kernel_dtype.kind in "iu":
        if result_dtype == np.int64:
            return _OUT.OUT_INT64
        if result_dtype == np.uint64:
            return _OUT.OUT_UINT64
    return None


def _sum_pool(average, input, size, stride, padding, dilation, ceil_mode, mode, cval,
              nan_policy, nodata, axes, output, workers, divisor):
    # Integer sums are exact in any order; float sums keep their association.
    call = _Call(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers, fold_channels="integers",
                 any_order=True)
    kdt = call.x.dtype
    if average:
        default = _natural_dtype(call.in_dtype, kdt)
    elif kdt.kind == "f":
        default = kdt
    else:
        default = np.dtype(np.uint64 if call.in_dtype.kind == "u" else np.int64)
    result = call.output(output, default)
    code = _sum_code(result.dtype, kdt)
    target = _kernel_target(result, result.dtype if code != _OUT.OUT_SAME else kdt) \
        if code is not None else None
    direct = target is not None
    if not direct:
        # Compute in the widest dtype of the result's kind, then store with
        # fastpool's casting rule.
        if kdt.kind == "f" or result.dtype.kind == "f":
            code, tmp_dtype = _OUT.OUT_FLOAT64, np.float64
        elif result.dtype.kind == "u":
            code, tmp_dtype = _OUT.OUT_UINT64, np.uint64
        else:
            code, tmp_dtype = _OUT.OUT_INT64, np.int64
        target = call.output(None, tmp_dtype)
    colcount = call.windows[-1].counts
    for views in call.views(target):
        _sums.sums(call.tag, views[0], views[1], code, average, divisor, colcount,
                   *call.geometry_args, call.omit, call.nodata, call.cval,
                   call.nthreads)
    if not direct:
        S.store(result, target)
    return result


def _check_divisor(divisor):
    if divisor is None:
        return 0
    if isinstance(divisor, (bool, np.bool_)) or not isinstance(divisor, numbers.Integral):
        raise TypeError(f"divisor must be a nonzero int or None, got {divisor!r}")
    divisor = operator.index(divisor)
    if divisor == 0:
        raise ValueError("divisor must be nonzero, got 0")
    if not -2**63 <= divisor < 2**63:
        raise ValueError(f"divisor must fit in 64 bits, got {divisor}")
    return divisor


# --------------------------------------------------------------------------- public

@dask_aware
@fill
def max_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             output=None, workers=None, return_indices=False):
    """Maximum over each window.

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
    return_indices : bool, optional
        Also return the position of each maximum: int64, the flat index
        (``np.ravel_multi_index``) over the input's pooled axes in ascending axis
        order; the first in C order of the window on ties, the first NaN when a NaN
        wins.  A padded sample reports the input element it copies (under
        ``'constant'``, the nearest input element).

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``
        The pooled array (the input's dtype; float16 gives float32).

    See Also
    --------
    min_pool, avg_pool, max_unpool

    Notes
    -----
    ``torch.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode)`` equals
    ``max_pool(x, k, s, padding=p, dilation=d, ceil_mode=ceil_mode, axes=(-2, -1))``.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(16).reshape(4, 4)
    >>> fastpool.max_pool(x, 2)
    array([[ 5,  7],
           [13, 15]])
    >>> fastpool.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    (array([[ 5,  7],
           [13, 15]]), array([[ 5,  7],
           [13, 15]]))
    """
    return _extremum_pool(False, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          return_indices)


@dask_aware
@fill
def min_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             output=None, workers=None, return_indices=False):
    """Minimum over each window.

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
    return_indices : bool, optional
        Also return the flat index of each minimum over the input's pooled axes
        (see :func:`max_pool`).

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``

    See Also
    --------
    max_pool

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[3, 1, 4, 1], [5, 9, 2, 6]], dtype=np.uint8)
    >>> fastpool.min_pool(x, 2)
    array([[1, 1]], dtype=uint8)
    >>> fastpool.min_pool(x, 2, axes=1)
    array([[1, 1],
           [5, 2]], dtype=uint8)
    """
    return _extremum_pool(True, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          return_indices)


@dask_aware
@fill
def avg_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             output=None, workers=None, divisor=None):
    """Mean over each window.

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
    divisor : int, optional
        Divide the window's sum by this instead of its count (PyTorch's
        ``divisor_override``).

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32); integer means are rounded half
        to even from an exact integer sum.

    Notes
    -----
    PyTorch's ``avg_pool2d(..., count_include_pad=True)`` is ``mode='constant',
    cval=0``; ``count_include_pad=False`` is the default ``mode='ignore'``.
    Sums of float32 input are accumulated in float64.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1, 2, 3, 4], [5, 6, 7, 9]], dtype=np.uint8)
    >>> fastpool.avg_pool(x, 2)
    array([[4, 6]], dtype=uint8)
    >>> fastpool.avg_pool(x.astype(float), 2)
    array([[3.5 , 5.75]])
    """
    return _sum_pool(True, input, size, stride, padding, dilation, ceil_mode, mode,
                     cval, nan_policy, nodata, axes, output, workers,
                     _check_divisor(divisor))


@dask_aware
@fill
def sum_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             output=None, workers=None):
    """Sum over each window.

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
        NumPy's sum dtype: int64 for bool and signed integers, uint64 for unsigned
        integers (exact, saturated rather than wrapped), the input's float dtype
        otherwise (float16 gives float32).

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> fastpool.sum_pool(np.ones((4, 6), dtype=np.uint8), (2, 3))
    array([[6, 6],
           [6, 6]], dtype=uint64)
    """
    return _sum_pool(False, input, size, stride, padding, dilation, ceil_mode, mode,
                     cval, nan_policy, nodata, axes, output, workers, 0)


@dask_aware
def max_unpool(input, indices, output_shape, axes=None, *, workers=None):
    """Place pooled values back at the positions ``indices`` name; zeros elsewhere.

    The inverse scatter of ``max_pool(..., return_indices=True)``, as
    ``torch.nn.functional.max_unpool*d``.

    Parameters
    ----------
    input : array_like
        Pooled values.
    indices : array_like of int
        Flat indices over the pooled axes of the result, of ``input``'s shape.
    output_shape : sequence of int
        The full shape of the result; non-pooled axes must match ``input``.
    axes : int or sequence of int, optional
        The pooled axes (default: all).
    workers : int, optional
        Threads, as in the pooling functions.

    Returns
    -------
    ndarray
        Of ``output_shape`` and ``input``'s dtype.  Where two indices coincide the
        later one in C order wins.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1., 5.], [7., 2.]])
    >>> v, i = fastpool.max_pool(x, 2, return_indices=True)
    >>> fastpool.max_unpool(v, i, x.shape)
    array([[0., 0.],
           [7., 0.]])
    """
    x, in_dtype = S.as_input(input)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.shape != x.shape:
        raise ValueError(f"indices has shape {idx.shape}, expected input's {x.shape}")
    try:
        output_shape = tuple(operator.index(n) for n in output_shape)
    except TypeError:
        raise TypeError(f"output_shape must be a sequence of ints, got {output_shape!r}")
    if len(output_shape) != x.ndim or any(n < 0 for n in output_shape):
        raise ValueError(f"output_shape must give {x.ndim} non-negative lengths, "
                         f"got {output_shape}")
    pooled = tuple(sorted(S.normalize_axes(axes, x.ndim)))
    batch = [a for a in range(x.ndim) if a not in pooled]
    for a in batch:
        if output_shape[a] != x.shape[a]:
            raise ValueError(f"output_shape[{a}] = {output_shape[a]} must equal the "
                             f"input's length {x.shape[a]} on non-pooled axis {a}")
    pooled_shape = tuple(output_shape[a] for a in pooled)
    count = int(np.prod(pooled_shape, dtype=np.int64))
    if idx.size and (idx.min() < 0 or idx.max() >= count):
        raise ValueError(f"indices must lie in [0, {count}) for pooled shape "
                         f"{pooled_shape}; got values in [{idx.min()}, {idx.max()}]")
    dtype = np.dtype(np.float32) if in_dtype == np.float16 else in_dtype
    order = batch + list(pooled)
    moved = np.zeros([output_shape[a] for a in order], dtype=x.dtype)
    nb = int(np.prod([x.shape[a] for a in batch], dtype=np.int64))
    per_item = int(np.prod([x.shape[a] for a in pooled], dtype=np.int64))
    values = np.ascontiguousarray(x.transpose(order)).reshape(nb, per_item)
    flat = S.aligned_c(idx.transpose(order), np.int64).reshape(nb, per_item)
    if values.size:
        _unpool.unpool(values, flat, moved.reshape((nb,) + pooled_shape),
                       S.threads_for(values.size, workers))
    result = np.ascontiguousarray(np.moveaxis(moved, range(len(order)), order))
    return result.view(np.bool_) if dtype == np.bool_ else result
