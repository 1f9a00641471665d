"""The weighted and random family: Lp, SoftPool, stochastic, mixed, avg+max,
weighted / LIP, detail-preserving, blur and generic pooling (semantics §9).

Every method computes in float64 from the window's valid samples and rounds once
to the result's dtype; the random ones draw one number per window from a
counter-based stream keyed by ``seed``, so results do not depend on threads,
layout or ``output``.
"""

import ctypes
import math
import numbers
import operator

import numpy as np

from . import _support as S
from ._dask import dask_aware
from ._docstrings import fill
from ._kernels import weighted as _weighted
from ._pool import (_Call, _kernel_target, _natural_dtype, avg_pool, counter_id, max_pool,
                    min_pool)

_M = _weighted.Method

# scipy.ndimage.generic_filter's C callback signatures.
_GENERIC_SIGNATURES = ("int (double *, npy_intp, double *, void *)",
                       "int (double *, intptr_t, double *, void *)")


# --------------------------------------------------------------------------- parameters

def _real(name, value, *, lo=None, hi=None, allow_inf=False):
    """``value`` as a float, checked: a real number, not NaN, within [lo, hi]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return v


class StreamKey(int):
    """A stream key already drawn from a seed: what every chunk of one Dask call
    is handed, so that ``seed=None`` or a Generator draws once for the whole."""


def seed_key(seed):
    """The 64-bit key of the random stream for ``seed`` (semantics §9)."""
    if isinstance(seed, StreamKey):
        return int(seed)
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, "
                        f"got {seed!r}")
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def _second_array(name, values, x_shape):
    """``weights`` / ``logits`` of the input's shape, as float32 or float64 (the
    kernels read both; other dtypes are converted to float64)."""
    w = np.asarray(values)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got dtype {w.dtype}")
    if w.shape != x_shape:
        raise ValueError(f"{name} must have the input's shape {x_shape}, got {w.shape}")
    if w.dtype not in (np.float32, np.float64) or not w.dtype.isnative \
            or not w.flags.aligned:
        w = w.astype(np.float64)
    return w


def _same_layout(x, w):
    """``x`` and ``w`` with equal element strides (the kernels address both with
    one offset): as given when they already match, else both C-contiguous."""
    if tuple(s // x.itemsize for s in x.strides) == \
            tuple(s // w.itemsize for s in w.strides) and \
            all(s % w.itemsize == 0 for s in w.strides):
        return x, w
    return np.ascontiguousarray(x), np.ascontiguousarray(w)


def _callable_pointer(function):
    """``(function pointer, user data)`` of a scipy.LowLevelCallable, or None for
    a Python callable."""
    if type(function).__name__ != "LowLevelCallable" or \
            not type(function).__module__.startswith("scipy"):
        if not callable(function):
            raise TypeError(f"function must be callable or a scipy.LowLevelCallable, "
                            f"got {function!r}")
        return None
    if function.signature not in _GENERIC_SIGNATURES:
        raise ValueError(f"function: a LowLevelCallable needs the signature "
                         f"{_GENERIC_SIGNATURES[0]!r}, got {function.signature!r}")
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    api.PyCapsule_GetContext.restype = ctypes.c_void_p
    api.PyCapsule_GetContext.argtypes = [ctypes.py_object]
    # LowLevelCallable is a tuple whose own indexing is disabled.
    capsule = tuple.__getitem__(function, 0)
    pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return pointer, api.PyCapsule_GetContext(capsule) or 0


def binomial_kernel(order, ndim):
    """The blur window: the outer product of ``C(order, k)`` over ``ndim`` axes,
    flattened in C order."""
    row = np.array([math.comb(order, k) for k in range(order + 1)], dtype=np.float64)
    kernel = np.ones(1)
    for _ in range(ndim):
        kernel = np.multiply.outer(kernel, row).ravel()
    return kernel


# --------------------------------------------------------------------------- driver

def _weighted_pool(method, input, size, stride, padding, dilation, ceil_mode, mode,
                   cval, nan_policy, nodata, axes, output, workers, *, weights=None,
                   weights_name="weights", kernel=None, seed=False, function=None,
                   **params):
    """Validate, pick the output target, run the kernel over the batch views.

    ``seed`` False: not a random method; else the user's seed.
    """
    # SoftPool and LIP shift their exponentials per block of outputs along the
    # last pooled axis (see the kernel's softmax_spans): that axis must not
    # depend on the layout, so channels are not folded into it.
    fold = "never" if method in (_M.M_SOFT, _M.M_LIP) else "always"
    call = _Call(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers, fold_channels=fold)
    x = call.x
    kdt = x.dtype
    w = None
    if weights is not None:
        w = _second_array(weights_name, weights, x.shape)
        x, w = _same_layout(x, w)
        call.x = x
    if method in (_M.M_STOCH_TRAIN, _M.M_STOCH_EVAL):
        _check_non_negative(call)
    key = seed_key(seed) if seed is not False else None
    result = call.output(output, _natural_dtype(call.in_dtype, kdt))
    target, as_double = None, False
    if call.in_dtype != np.bool_:
        target = _kernel_target(result, kdt)
    if target is None:
        target = _kernel_target(result, np.dtype(np.float64))
        as_double = target is not None
    direct = target is not None
    if not direct:
        target = np.empty(call.out_shape, dtype=np.float64)
        as_double = True
    err = 0
    python_function = function is not None and function[0] is None
    arrays = (target,) if w is None else (w, target)
    if key is not None:
        counts, first = call.counter_view()
        arrays += (counts,)
    for views in call.views(*arrays):
        xv = views[0]
        wv = views[1] if w is not None else None
        ov = views[len(arrays) - (key is not None)]
        cv, id0 = None, 0
        if key is not None:
            cv = views[-1]
            id0 = counter_id(cv, counts, first)
        if python_function:
            err |= _weighted.generic_python(call.tag, xv, ov, as_double,
                                            *call.geometry_args, function[1], call.omit,
                                            call.nodata, call.cval)
            continue
        err |= _weighted.pool(call.tag, xv, wv, ov, as_double, id0, *call.geometry_args,
                              method, key=key, kernel=kernel,
                              function=function[0] if function is not None else None,
                              omit=call.omit, nodata=call.nodata, cval=call.cval,
                              nthreads=call.nthreads, counter=cv, **params)
    if err & 2:
        raise RuntimeError("generic_pool: the LowLevelCallable reported an error "
                           "(it returned 0)")
    if err & 1:
        raise ValueError(f"the result holds NaN, which output dtype {result.dtype} "
                         "cannot store")
    if not direct:
        S.store(result, target)
    return result


def _delegate(pool, input, size, stride, padding, dilation, ceil_mode, mode, cval,
              nan_policy, nodata, axes, output, workers):
    """Call a basic pool (max/min/avg) with the shared arguments, for the limits
    and halves of the family that are exactly one of them."""
    return pool(input, size, stride, padding=padding, dilation=dilation,
                ceil_mode=ceil_mode, mode=mode, cval=cval, nan_policy=nan_policy,
                nodata=nodata, axes=axes, output=output, workers=workers)


def _check_non_negative(call):
    """stochastic_pool's precondition: no negative value (nodata excepted)."""
    x = call.x
    if x.dtype.kind == "u" or x.size == 0:
        bad = False
    else:
        bad = x.min() < 0
        if bad and call.nodata is not None:
            bad = bool(np.any((x < 0) & (x != call.nodata)))
    if bad:
        raise ValueError("stochastic_pool needs non-negative input; the input holds "
                         "negative values")
    if call.params.mode == "constant" and call.cval < 0:
        raise ValueError(f"stochastic_pool needs non-negative input; cval={call.cval} "
                         "is negative")


# --------------------------------------------------------------------------- public

@dask_aware
@fill
def lp_pool(input, p, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
            mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
            output=None, workers=None, average=False):
    """Lp pooling: ``(sum x**p) ** (1/p)`` over each window.

    Parameters
    ----------
    %(input)s
    p : float
        The power, ``> 0``; ``inf`` gives :func:`max_pool`.
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
    average : bool, optional
        The power mean ``(mean x**p) ** (1/p)`` instead of the sum form: ``p=1``
        is the mean, ``p=2`` the root mean square.

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32), computed in float64.

    Notes
    -----
    The default is PyTorch's ``lp_pool`` (the sum form; on partial ``ceil_mode``
    windows PyTorch scales the mean of the samples present by the full window
    size, fastpool sums what is present).  Powers follow C's ``pow``: a negative
    value with a non-integer ``p``, or a negative sum with a root other than 1,
    gives NaN.  The values are scaled by the window's largest magnitude before
    the power, so a huge ``p`` neither overflows nor underflows.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[3., 4., 1., 1.], [0., 0., 1., 1.]])
    >>> fastpool.lp_pool(x, 2, 2)
    array([[5., 2.]])
    >>> fastpool.lp_pool(x, 1, 2, average=True)
    array([[1.75, 1.  ]])
    """
    p = _real("p", p, lo=0, allow_inf=True)
    if p == 0:
        raise ValueError("p must be > 0, got 0")
    if not isinstance(average, (bool, np.bool_)):
        raise TypeError(f"average must be a bool, got {average!r}")
    if math.isinf(p):
        return _delegate(max_pool, input, size, stride, padding, dilation, ceil_mode,
                         mode, cval, nan_policy, nodata, axes, output, workers)
    return _weighted_pool(_M.M_LP_AVG if average else _M.M_LP, input, size, stride,
                          padding, dilation, ceil_mode, mode, cval, nan_policy, nodata,
                          axes, output, workers, p=p)


@dask_aware
@fill
def soft_pool(input, size, stride=None, *, beta=1.0, padding=0, dilation=1,
              ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
              nodata=None, axes=None, output=None, workers=None):
    """SoftPool: the softmax-weighted mean ``sum(exp(beta*x) * x) / sum(exp(beta*x))``.

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    beta : float, optional
        Inverse temperature: ``0`` is the mean, large values approach the max;
        ``inf`` is :func:`max_pool` and ``-inf`` :func:`min_pool`.
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
        The input's dtype (float16 gives float32), computed in float64.

    Notes
    -----
    Stergiou et al., "Refining activation downsampling with SoftPool" (ICCV 2021).
    The exponentials are taken relative to the window's largest ``beta*x``, so no
    finite input overflows; an infinite input gives NaN.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[0., 1000., 0., 0.]])
    >>> fastpool.soft_pool(x, (1, 2))
    array([[1000.,    0.]])
    >>> fastpool.soft_pool(np.array([[1., 3.]]), (1, 2), beta=0)
    array([[2.]])
    """
    beta = _real("beta", beta, allow_inf=True)
    if math.isinf(beta):
        return _delegate(max_pool if beta > 0 else min_pool, input, size, stride,
                         padding, dilation, ceil_mode, mode, cval, nan_policy, nodata,
                         axes, output, workers)
    return _weighted_pool(_M.M_SOFT, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          beta=beta)


@dask_aware
@fill
def stochastic_pool(input, size, stride=None, *, training=True, seed=None, padding=0,
                    dilation=1, ceil_mode=False, mode="ignore", cval=0.0,
                    nan_policy="propagate", nodata=None, axes=None, output=None,
                    workers=None):
    """Stochastic pooling (Zeiler & Fergus, 2013): one value of each window, drawn
    with probability ``x / sum(x)``.

    Parameters
    ----------
    %(input)s
        Non-negative (a negative value is a ValueError).
    %(size)s
    %(stride)s
    training : bool, optional
        True: sample.  False: the expectation used at inference,
        ``sum(x**2) / sum(x)``.
    %(seed)s
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
        The input's dtype (float16 gives float32).  A sampled value is the input
        value itself; an all-zero window gives 0.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[0, 0, 5, 0], [0, 0, 0, 0]], dtype=np.uint8)
    >>> fastpool.stochastic_pool(x, 2, seed=1)
    array([[0, 5]], dtype=uint8)
    >>> fastpool.stochastic_pool(np.array([[1., 3.]]), (1, 2), training=False)
    array([[2.5]])
    """
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    if not training:
        return _weighted_pool(_M.M_STOCH_EVAL, input, size, stride, padding, dilation,
                              ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                              workers)
    return _weighted_pool(_M.M_STOCH_TRAIN, input, size, stride, padding, dilation,
                          ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                          workers, seed=seed)


@dask_aware
@fill
def mixed_pool(input, size, stride=None, *, alpha=None, seed=None, padding=0,
               dilation=1, ceil_mode=False, mode="ignore", cval=0.0,
               nan_policy="propagate", nodata=None, axes=None, output=None,
               workers=None):
    """Mixed pooling (Yu et al., 2014): max and mean, blended or chosen at random.

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    alpha : float in [0, 1], optional
        Given: ``alpha * max + (1 - alpha) * mean``.  None: each window is its max
        or its mean with probability 1/2 each.
    %(seed)s
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

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1., 3., 2., 2.]])
    >>> fastpool.mixed_pool(x, (1, 2), alpha=0.5)
    array([[2.5, 2. ]])
    """
    if alpha is None:
        return _weighted_pool(_M.M_MIXED_RANDOM, input, size, stride, padding, dilation,
                              ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                              workers, seed=seed)
    alpha = _real("alpha", alpha, lo=0, hi=1)
    if alpha in (0.0, 1.0):
        # Exactly avg_pool / max_pool (the blend would turn an infinite max
        # into 0*inf = NaN and round 64-bit integers above 2**53).
        return _delegate(max_pool if alpha == 1.0 else avg_pool, input, size, stride,
                         padding, dilation, ceil_mode, mode, cval, nan_policy, nodata,
                         axes, output, workers)
    return _weighted_pool(_M.M_MIXED, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          alpha=alpha)


@dask_aware
@fill
def avgmax_pool(input, size, stride=None, *, padding=0, dilation=1, ceil_mode=False,
                mode="ignore", cval=0.0, nan_policy="propagate", nodata=None,
                axes=None, output=None, workers=None):
    """The mean of each window's average and maximum, ``0.5 * (avg + max)`` (timm's
    ``adaptive_avgmax_pool``), in one pass.

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
        The input's dtype (float16 gives float32), computed in float64.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> fastpool.avgmax_pool(np.array([[1., 3., 2., 2.]]), (1, 2))
    array([[2.5, 2. ]])
    """
    return _weighted_pool(_M.M_AVGMAX, input, size, stride, padding, dilation,
                          ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                          workers)


@dask_aware
@fill
def catavgmax_pool(input, size, stride=None, *, axis=None, padding=0, dilation=1,
                   ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
                   nodata=None, axes=None, output=None, workers=None):
    """Average and max pooling side by side (timm's ``catavgmax``).

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    axis : int, optional
        None: the two results are stacked on a new leading axis (avg first).  An
        existing non-pooled axis (e.g. the channels, 1 for NCHW): they are
        concatenated along it, avg first.
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

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1., 3.], [2., 2.]])
    >>> fastpool.catavgmax_pool(x, 2, axes=1)
    array([[[2.],
            [2.]],
    <BLANKLINE>
           [[3.],
            [2.]]])
    >>> fastpool.catavgmax_pool(x, 2, axes=1, axis=0).ravel()
    array([2., 2., 3., 2.])
    """
    call = _Call(input, size, stride, padding, dilation, ceil_mode, mode, cval,
                 nan_policy, nodata, axes, workers, fold_channels="never")
    shape = call.out_shape
    ndim = len(shape)
    if axis is None:
        full = (2,) + shape
    else:
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int or None, got {axis!r}")
        axis = operator.index(axis)
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of range for {ndim} dimensions")
        axis %= ndim
        if axis in call.params.axes:
            raise ValueError(f"axis {axis} is pooled; catavgmax_pool concatenates "
                             "along a non-pooled axis")
        full = shape[:axis] + (2 * shape[axis],) + shape[axis + 1:]
    result = S.prepare_output(output, full, _natural_dtype(call.in_dtype, call.x.dtype),
                              input)
    if axis is None:
        halves = result[0], result[1]
    else:
        n = shape[axis]
        index = [slice(None)] * ndim
        index[axis] = slice(0, n)
        first = result[tuple(index)]
        index[axis] = slice(n, 2 * n)
        halves = first, result[tuple(index)]
    for pool, half in zip((avg_pool, max_pool), halves):
        _delegate(pool, input, size, stride, padding, dilation, ceil_mode, mode, cval,
                  nan_policy, nodata, axes, half, workers)
    return result


@dask_aware
@fill
def weighted_pool(input, weights, size, stride=None, *, padding=0, dilation=1,
                  ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
                  nodata=None, axes=None, output=None, workers=None):
    """Weighted mean of each window, ``sum(w * x) / sum(w)``.

    Parameters
    ----------
    %(input)s
    weights : array_like
        One real weight per input element (the input's shape), read as float64.
        A padded sample takes the weight of the cell it copies (``'constant'``:
        of the nearest cell).
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
        The input's dtype (float16 gives float32), computed in float64; a window
        whose weights sum to 0 gives NaN.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1., 3., 2., 2.]])
    >>> fastpool.weighted_pool(x, [[1, 3, 0, 5]], (1, 2))
    array([[2.5, 2. ]])
    """
    return _weighted_pool(_M.M_WEIGHTED, input, size, stride, padding, dilation,
                          ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                          workers, weights=weights)


@dask_aware
@fill
def lip_pool(input, logits, size, stride=None, *, padding=0, dilation=1,
             ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
             nodata=None, axes=None, output=None, workers=None):
    """Local Importance Pooling (Gao et al., ICCV 2019): :func:`weighted_pool` with
    ``w = exp(logits)``.

    Parameters
    ----------
    %(input)s
    logits : array_like
        One real logit per input element (the input's shape).  The exponentials
        are taken relative to the window's largest logit, so none overflows.
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
        The input's dtype (float16 gives float32), computed in float64.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1., 3., 2., 4.]])
    >>> fastpool.lip_pool(x, [[0., 0., 1000., 0.]], (1, 2))
    array([[2., 2.]])
    """
    return _weighted_pool(_M.M_LIP, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          weights=logits, weights_name="logits")


@dask_aware
@fill
def dpp_pool(input, size, stride=None, *, alpha=1.0, lam=1.0, asymmetric=False,
             padding=0, dilation=1, ceil_mode=False, mode="ignore", cval=0.0,
             nan_policy="propagate", nodata=None, axes=None, output=None,
             workers=None):
    """Detail-Preserving Pooling (Saeedan et al., CVPR 2018), the lite form.

    Each window is the weighted mean ``sum(w_i * x_i) / sum(w_i)`` with

    ``w_i = alpha + rho(x_i - m)``,  ``rho(d) = (d**2 + eps**2) ** (lam / 2)``

    where ``m`` is the window's mean (the "lite" guide of the paper), ``eps =
    1e-3``, and with ``asymmetric=True`` ``rho(d) = (max(d, 0)**2 + eps**2) **
    (lam / 2)`` (only values above the mean are emphasised).  Values far from the
    mean get more weight, so details survive that a mean would blur.

    Parameters
    ----------
    %(input)s
    %(size)s
    %(stride)s
    alpha : float, optional
        The weights' floor, ``>= 0``.  The paper learns it per channel; 1.0 here.
    lam : float, optional
        The weights' exponent ``lambda >= 0`` (0 gives the plain mean).  Learned
        per channel in the paper; 1.0 here.
    asymmetric : bool, optional
        The paper's asymmetric ``rho``.
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
        The input's dtype (float16 gives float32), computed in float64.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[0., 0., 0., 8.]])
    >>> fastpool.dpp_pool(x, (1, 4), lam=0)
    array([[2.]])
    >>> fastpool.dpp_pool(x, (1, 4)).round(3)
    array([[3.5]])
    """
    alpha = _real("alpha", alpha, lo=0)
    lam = _real("lam", lam, lo=0)
    if not isinstance(asymmetric, (bool, np.bool_)):
        raise TypeError(f"asymmetric must be a bool, got {asymmetric!r}")
    return _weighted_pool(_M.M_DPP, input, size, stride, padding, dilation, ceil_mode,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          alpha=alpha, lam=lam, asymmetric=bool(asymmetric))


def _check_order(order):
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be an int in 1..6, got {order!r}")
    order = operator.index(order)
    if not 1 <= order <= 6:
        raise ValueError(f"order must be in 1..6, got {order}")
    return order


@dask_aware
@fill
def blur_pool(input, factor=2, *, order=2, mode="reflect", cval=0.0,
              nan_policy="propagate", nodata=None, axes=None, output=None,
              workers=None):
    """Anti-aliased downsampling (Zhang, ICML 2019): a binomial blur, then every
    ``factor``-th sample, in one pass.

    :func:`weighted_pool` with the fixed window weights ``outer(b, b, ...)``,
    ``b_k = C(order, k)`` (``[1, 2, 1]`` for order 2), window ``order + 1``,
    stride ``factor`` and padding ``order // 2``.  Less aliasing than a box mean
    (:func:`avg_pool`), so it suits image pyramids.

    Parameters
    ----------
    %(input)s
    factor : int or sequence of int, optional
        The downsampling factor (the stride), per pooled axis or for all.
    order : int, optional
        The binomial order, 1..6: the window has ``order + 1`` samples per axis.
    mode : {'reflect', 'ignore', 'constant', 'mirror', 'nearest', 'wrap'}, optional
        What the ``order // 2`` padded samples hold; ``'reflect'`` by default.
        Zhang's ``Downsample`` pads with PyTorch's ``ReflectionPad2d``, which is
        ``mode='mirror'`` here.
    %(cval)s
    %(nan_policy)s
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32), computed in float64.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.zeros((1, 8)); x[0, 3] = 16
    >>> fastpool.blur_pool(x, 2, axes=1)
    array([[0., 4., 4., 0.]])
    """
    order = _check_order(order)
    naxes = len(S.normalize_axes(axes, np.ndim(input)))
    return _weighted_pool(_M.M_WEIGHTED, input, order + 1, factor, order // 2, 1, False,
                          mode, cval, nan_policy, nodata, axes, output, workers,
                          kernel=binomial_kernel(order, naxes))


@dask_aware
@fill
def maxblur_pool(input, factor=2, *, size=2, order=2, mode="reflect", cval=0.0,
                 nan_policy="propagate", nodata=None, axes=None, output=None,
                 workers=None):
    """MaxBlurPool (Zhang, ICML 2019): :func:`max_pool` with stride 1, then
    :func:`blur_pool`: the max's shift invariance without its aliasing.

    Parameters
    ----------
    %(input)s
    factor : int or sequence of int, optional
        The downsampling factor of the blur.
    size : int or sequence of int, optional
        The max's window (stride 1, no padding).
    order : int, optional
        The blur's binomial order, 1..6.
    mode : str, optional
        The blur's padding mode (see :func:`blur_pool`).
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

    Notes
    -----
    The stride-1 max is held as an intermediate array of about the input's size
    (the two passes are not fused yet).

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.zeros((1, 9)); x[0, 4] = 16
    >>> fastpool.maxblur_pool(x, 2, axes=1)
    array([[ 0.,  4., 12.,  0.]])
    """
    order = _check_order(order)
    peaks = max_pool(input, size, 1, nan_policy=nan_policy, nodata=nodata, axes=axes,
                     workers=workers)
    return blur_pool(peaks, factor, order=order, mode=mode, cval=cval,
                     nan_policy=nan_policy, nodata=nodata, axes=axes, output=output,
                     workers=workers)


@dask_aware
@fill
def generic_pool(input, function, size, stride=None, *, extra_arguments=(),
                 extra_keywords=None, padding=0, dilation=1, ceil_mode=False,
                 mode="ignore", cval=0.0, nan_policy="propagate", nodata=None,
                 axes=None, output=None, workers=None):
    """Any function of each window's values, like ``scipy.ndimage.generic_filter``
    evaluated only at the pooled positions.

    Parameters
    ----------
    %(input)s
    function : callable or scipy.LowLevelCallable
        A Python callable ``function(values, *extra_arguments, **extra_keywords)``
        returning a number, ``values`` being a new 1-D float64 array of the
        window's valid samples in C order; it runs serially, holding the GIL.  Or
        a ``scipy.LowLevelCallable`` with generic_filter's C signature ``int
        (double *values, npy_intp n, double *result, void *user_data)``,
        returning 0 on error: it runs without the GIL, in parallel.
    %(size)s
    %(stride)s
    extra_arguments : sequence, optional
        Extra positional arguments of a Python ``function``.
    extra_keywords : dict, optional
        Extra keyword arguments of a Python ``function``.
    %(padding)s
    %(dilation)s
    %(ceil_mode)s
    %(mode)s
    %(cval)s
    %(nan_policy)s
        Under ``'propagate'`` a window with a NaN gives NaN without a call.
    %(nodata)s
    %(axes)s
    %(output)s
    %(workers)s

    Returns
    -------
    ndarray
        The input's dtype (float16 gives float32); integer results are rounded
        half to even and saturated.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.array([[1, 5, 2, 2], [3, 4, 9, 0]])
    >>> fastpool.generic_pool(x, np.ptp, 2)
    array([[4, 9]])
    >>> fastpool.generic_pool(x, lambda v, q: np.quantile(v, q), 2, extra_arguments=(0.5,))
    array([[4, 2]])
    """
    pointer = _callable_pointer(function)
    if pointer is None:
        args = tuple(extra_arguments)
        kwargs = dict(extra_keywords or {})
        plain = function if not args and not kwargs else \
            (lambda values: function(values, *args, **kwargs))
        target = (None, plain)
    else:
        if extra_arguments or extra_keywords:
            raise ValueError("extra_arguments and extra_keywords apply to Python "
                             "callables, not to a LowLevelCallable")
        target = (pointer, None)
    return _weighted_pool(_M.M_GENERIC, input, size, stride, padding, dilation,
                          ceil_mode, mode, cval, nan_policy, nodata, axes, output,
                          workers, function=target)
