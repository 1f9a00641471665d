"""Validation and normalisation shared by every public function.

All semantics and all checks live here and in ``_geometry``; the kernels trust
what they are given.
"""

import functools
import numbers
import operator
import os
import threading
from dataclasses import dataclass

import numpy as np

from ._geometry import MODES
from ._kernels import _openmp

NAN_POLICIES = ("propagate", "omit", "raise")

# dtypes the kernels are compiled for; bool is pooled as uint8, float16 as float32.
KERNEL_DTYPES = tuple(np.dtype(t) for t in (
    np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64,
    np.float32, np.float64))

# Lengths, steps and counts are int64 in the geometry tables and the kernels.
LIMIT = 2 ** 63

# Below this many window samples a call runs on one thread: starting a team of
# threads costs more than it saves.
SERIAL_WORK = 1 << 16


# --------------------------------------------------------------------------- threads

_default_workers = None  # None: OpenMP's own default (honours threadpoolctl, OMP_NUM_THREADS)


def cpu_count():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _WorkersContext:
    """Returned by :func:`set_workers`; restores the previous default on exit."""

    def __init__(self, previous):
        self._previous = previous

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _default_workers
        _default_workers = self._previous
        return False


def set_workers(workers):
    """Set the default number of threads used when ``workers=None``.

    Parameters
    ----------
    workers : int or None
        ``-1`` for all cores, ``>= 1`` for exactly that many, ``None`` to go back to
        OpenMP's default (all cores unless limited by ``OMP_NUM_THREADS`` or
        threadpoolctl).

    Returns
    -------
    context
        Usable as a context manager that restores the previous default on exit.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> with fastpool.set_workers(1):
    ...     fastpool.max_pool(x, 2)
    array([[ 5.,  7.],
           [13., 15.]])
    """
    global _default_workers
    previous = _default_workers
    _default_workers = None if workers is None else _check_workers(workers)
    return _WorkersContext(previous)


def get_workers():
    """The number of threads a call with ``workers=None`` uses now."""
    return resolve_workers(None)


def _check_workers(workers):
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, numbers.Integral):
        raise TypeError(f"workers must be an int or None, got {workers!r}")
    workers = int(workers)
    if workers == 0 or workers < -1:
        raise ValueError(f"workers must be -1 (all cores) or >= 1, got {workers}")
    return workers


class in_flight:
    """Marks a public call as running (a context manager): the library default
    shares the cores among the calls that run at once, so that Python threads
    (a ``ThreadPoolExecutor``) calling fastpool do not oversubscribe them.
    Calls a public function makes to another count once."""

    _depth = threading.local()   # nesting of public calls in this thread
    _lock = threading.Lock()
    active = 0                   # outermost calls running, in every thread

    def __enter__(self):
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        if depth == 0:
            with self._lock:
                in_flight.active += 1
        return self

    def __exit__(self, *exc):
        self._depth.value -= 1
        if self._depth.value == 0:
            with self._lock:
                in_flight.active -= 1
        return False


def resolve_workers(workers):
    """Threads for one call: ``workers`` as in the SPEC, else the library default
    (the cores OpenMP would use, shared among the calls running at once)."""
    if workers is None:
        workers = _default_workers
        if workers is None:
            return max(1, _openmp.max_threads() // max(1, in_flight.active))
    workers = _check_workers(workers)
    return cpu_count() if workers == -1 else workers


def threads_for(work, workers):
    """Threads to use for a call of ``work`` window samples."""
    n = resolve_workers(workers)
    return 1 if work < SERIAL_WORK else n


# --------------------------------------------------------------------------- input

def as_input(input, name="input"):
    """``input`` as an ndarray the kernels accept, plus its original dtype.

    Big-endian and misaligned arrays are converted once; float16 is computed in
    float32 (a copy); bool is viewed as uint8.  Other layouts (any strides, negative
    included) are passed through without a copy.
    """
    x = np.asarray(input)
    dtype = x.dtype
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} has unsupported dtype {dtype}; fastpool pools bool, "
                        "integer and real floating-point arrays")
    if dtype.kind == "f" and dtype.itemsize not in (2, 4, 8):
        raise TypeError(f"{name} has unsupported dtype {dtype}")
    if dtype.kind == "f" and dtype.itemsize == 2:
        x = x.astype(np.float32)
    elif not dtype.isnative:
        x = x.astype(dtype.newbyteorder("="))
    if not x.flags.aligned or any(s % x.itemsize for s in x.strides):
        x = aligned_c(x)
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    return x, dtype.newbyteorder("=")


def aligned_c(array, dtype=None):
    """``array`` as a C-contiguous and aligned array (of ``dtype``), copied only
    when it is not one: ``np.ascontiguousarray`` keeps a contiguous array whose
    address is not a multiple of its itemsize, which the kernels must not read."""
    return np.require(array, dtype, ("C", "A"))


def check_nan_policy(x, nan_policy):
    """Raise for NaN in ``x`` under ``nan_policy='raise'``."""
    if nan_policy == "raise" and x.dtype.kind == "f" and x.size and np.isnan(x.min()):
        raise ValueError("input contains NaN and nan_policy='raise'")


# --------------------------------------------------------------------------- parameters

def normalize_axes(axes, ndim):
    """Validated pooled axes (non-negative), in the order given."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, numbers.Integral) and not isinstance(axes, (bool, np.bool_)):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(f"axes must be an int, a sequence of ints or None, got {axes!r}")
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axes must hold ints, got {a!r}")
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axes: axis {a} is out of range for an array of "
                             f"{ndim} dimension(s)")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axes must not repeat an axis, got {axes!r}")
    if not out:
        raise ValueError("axes must name at least one axis")
    return tuple(out)


def int_at_least(value, name, minimum, allow_none=False):
    """``value`` as an int ``>= minimum`` (or None where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must hold ints{' or None' if allow_none else ''}, "
                        f"got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value >= LIMIT:
        raise ValueError(f"{name} must fit in 64 bits, got {value}")
    return value


def per_axis(value, n, name, check, what="an int"):
    """``value`` (one for every pooled axis, or a sequence of ``n``) as a tuple
    of ``check(v)``; ``what`` names a single value in messages."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if value is None or isinstance(value, (numbers.Number, np.generic)):
        return (check(value),) * n
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {what} or a sequence, got {value!r}")
    try:
        values = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be {what} or a sequence, got {value!r}")
    if len(values) != n:
        raise ValueError(f"{name} must have one value per pooled axis ({n}), "
                         f"got {len(values)}: {value!r}")
    return tuple(check(v) for v in values)


def normalize_sequence(value, n, name, minimum):
    """``value`` as a tuple of ``n`` ints, each ``>= minimum``."""
    return per_axis(value, n, name, lambda v: int_at_least(v, name, minimum))


def _choice(value, choices, name):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; "
                         f"got {value!r}")
    return value


@dataclass(frozen=True)
class PoolParams:
    """Normalised parameters of a sliding-window pool, pooled axes ascending."""

    axes: tuple
    size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool
    mode: str
    nan_policy: str


def _plain(value):
    """``value`` is None, a str, a bool, an int or a tuple of ints, by exact type:
    values that hash and compare only to what validates the same way (a bool
    ``size`` must not hit the cache entry of an int ``size``)."""
    t = type(value)
    return (value is None or t is int or t is str or t is bool
            or (t is tuple and all(type(v) is int for v in value)))


def pool_params(ndim, size, stride, padding, dilation, ceil_mode, mode, nan_policy, axes):
    """Validate the shared sliding-window parameters (SPEC section 2).

    Plain arguments (ints, tuples of ints, strings) are validated once and cached:
    the Python layer is most of the time of a call on a small array.
    """
    args = (ndim, size, stride, padding, dilation, ceil_mode, mode, nan_policy, axes)
    if all(_plain(a) for a in args) and type(ceil_mode) is bool:
        return _pool_params_cached(*args)
    return _pool_params(*args)


@functools.lru_cache(maxsize=256)
def _pool_params_cached(*args):
    return _pool_params(*args)


def _pool_params(ndim, size, stride, padding, dilation, ceil_mode, mode, nan_policy,
                 axes):
    axes = normalize_axes(axes, ndim)
    n = len(axes)
    size = normalize_sequence(size, n, "size", 1)
    stride = size if stride is None else normalize_sequence(stride, n, "stride", 1)
    padding = normalize_sequence(padding, n, "padding", 0)
    dilation = normalize_sequence(dilation, n, "dilation", 1)
    for p, k in zip(padding, size):
        if p > k // 2:
            raise ValueError(f"padding must be at most size // 2 on every axis; got "
                             f"padding={p} for size={k}")
    mode = _choice(mode, MODES, "mode")
    nan_policy = _choice(nan_policy, NAN_POLICIES, "nan_policy")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    order = sorted(range(n), key=lambda i: axes[i])
    pick = lambda t: tuple(t[i] for i in order)  # noqa: E731
    return PoolParams(pick(axes), pick(size), pick(stride), pick(padding), pick(dilation),
                      bool(ceil_mode), mode, nan_policy)


def _as_real(value, name):
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"{name} must be a real number, got {value!r}")


def to_dtype_scalar(value, dtype, name, saturate):
    """``value`` as a scalar of the kernel ``dtype``.

    For integer dtypes the value is rounded half to even and, when ``saturate``,
    clipped to the dtype's range; otherwise a value out of range is a ValueError.
    """
    value = _as_real(value, name)
    if dtype.kind == "f":
        return dtype.type(value)
    if isinstance(value, float):
        if np.isnan(value):
            raise ValueError(f"{name}=nan cannot be used with {dtype} input")
        if np.isinf(value):
            if not saturate:
                raise ValueError(f"{name}={value} cannot be represented in {dtype}")
            value = -(2 ** 70) if value < 0 else 2 ** 70
        else:
            value = int(np.rint(value))
    lo, hi = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    if not lo <= value <= hi:
        if not saturate:
            raise ValueError(f"{name}={value} cannot be represented in {dtype}")
        value = min(max(value, lo), hi)
    # bool input runs in the kernels as its uint8 view
    return np.uint8(value) if dtype.kind == "b" else dtype.type(value)


def fill_values(x, mode, cval, nodata, nan_policy, in_dtype=None):
    """``(cval, nodata, nan_policy)`` ready for a kernel on ``x``.

    ``nodata`` is ``None`` or a scalar of ``x.dtype``; a NaN ``nodata`` is the same
    as ``nan_policy='omit'`` and is turned into it.  ``in_dtype`` bool: ``x`` is
    its uint8 view, and the values are limited to 0 and 1.
    """
    dtype = np.dtype(np.bool_) if in_dtype == np.bool_ else x.dtype
    cval_t = to_dtype_scalar(cval, dtype, "cval", saturate=True) \
        if mode == "constant" else x.dtype.type(0)
    if nodata is not None:
        nd = _as_real(nodata, "nodata")
        if isinstance(nd, float) and np.isnan(nd):
            if x.dtype.kind == "f":
                return cval_t, None, "omit"
            nodata = None
        else:
            nodata = to_dtype_scalar(nd, dtype, "nodata", saturate=False)
    return cval_t, nodata, nan_policy


# --------------------------------------------------------------------------- output

def check_dtype(dtype, name="output"):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be an ndarray, a dtype or None, got {dtype!r}")
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise TypeError(f"{name} dtype {dtype} is not supported")
    return dtype


def prepare_output(output, shape, default_dtype, input_array, layout=None):
    """The array to return and its dtype.

    ``output`` may be None, a dtype or an ndarray (checked for shape, writability,
    dtype and overlap with the input).  ``layout``: the order of the axes in the
    memory of a new array, outermost first (None: C order).
    """
    if output is None or not isinstance(output, np.ndarray):
        dtype = default_dtype if output is None else check_dtype(output)
        if layout is None:
            return np.empty(shape, dtype=dtype)
        return np.empty([shape[a] for a in layout], dtype=dtype).transpose(
            np.argsort(layout))
    if output.shape != tuple(shape):
        raise ValueError(f"output has shape {output.shape}, expected {tuple(shape)}")
    if not output.flags.writeable:
        raise ValueError("output is read-only")
    check_dtype(output.dtype)
    if np.shares_memory(output, input_array):
        raise ValueError("output overlaps the input; pass a separate array")
    return output


def store(dst, src):
    """Copy ``src`` into ``dst`` with fastpool's casting rule.

    Floats to integers are rounded half to even and saturated; NaN cannot be
    stored in an integer array (ValueError).  Integers are saturated.
    """
    if dst.dtype == src.dtype or dst.dtype.kind == "f":
        np.copyto(dst, src, casting="unsafe")
        return dst
    if src.dtype.kind == "f":
        if np.isnan(src).any():
            raise ValueError(f"the result holds NaN, which output dtype {dst.dtype} "
                             "cannot store")
        src = np.rint(src)
    if dst.dtype == np.bool_:
        np.copyto(dst, src != 0)
        return dst
    info = np.iinfo(dst.dtype)
    if src.dtype.kind == "f":
        # float(info.max) rounds up to 2**63 / 2**64 for 64-bit types, which no
        # longer fits: those values are set to info.max explicitly.
        clipped = np.clip(src, info.min, info.max)
        with np.errstate(invalid="ignore"):
            cast = clipped.astype(dst.dtype)
        np.copyto(dst, np.where(clipped >= float(info.max), dst.dtype.type(info.max), cast))
    elif src.dtype.kind == "u":
        np.copyto(dst, np.minimum(src, np.uint64(info.max)).astype(dst.dtype),
                  casting="unsafe")
    else:
        lo = max(info.min, np.iinfo(np.int64).min)
        hi = min(info.max, np.iinfo(np.int64).max)
        clipped = np.clip(src.astype(np.int64), lo, hi)
        if info.min == 0:
            clipped = clipped.astype(np.uint64)
        np.copyto(dst, clipped, casting="unsafe")
    return dst

