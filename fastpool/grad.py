"""Gradients of the pooling functions: ``fastpool.grad.<name>(grad_output, input, ...)``.

Each function takes the forward function's own arguments after ``grad_output``
(the gradient of a loss with respect to the forward result) and returns the
gradient with respect to ``input``: the vector-Jacobian product, of the input's
shape, float32 for float16/float32 input and float64 otherwise.

Every gradient is computed by gathering: each input element sums the
contributions of the windows that read it (an element an extension mode copies
into a window receives that sample's share), so the kernels run in parallel
without atomics and the result is bitwise the same for every thread count.
See docs/semantics.md §12 for the derivative of every method.

Examples
--------
>>> import numpy as np, fastpool
>>> x = np.array([[1., 5., 2., 0.], [3., 4., 8., 8.]])
>>> fastpool.grad.max_pool(np.ones((1, 2)), x, 2)
array([[0., 1., 0., 0.],
       [0., 0., 1., 0.]])
>>> fastpool.grad.avg_pool(np.ones((1, 2)), x, 2)
array([[0.25, 0.25, 0.25, 0.25],
       [0.25, 0.25, 0.25, 0.25]])
"""

import inspect
import math

import numpy as np

from . import _beyond, _dask, _order, _pool, _weighted
from . import _support as S
from ._geometry import read_once, reading_lists
from ._dask import is_dask_array
from ._grad_docs import docstring
from ._kernels import gradients as _kernel
from ._pool import _Call, _check_divisor, counter_id

_STAT = _kernel.Stat
_KIND = _kernel.Kind
_CELL = _kernel.Cell
_DISJOINT = _kernel.Disjoint

# The largest window the one-pass SoftPool gradient takes (its SOFT_WINDOW).
_SOFT_WINDOW = 64

# Windows of up to this many samples find their selected sample by value.
_FIND_BY_VALUE = 64



# --------------------------------------------------------------------------- engine

class _Backward:
    """One gradient call: the forward geometry, ``grad_output`` checked against
    the forward result's shape, and the two kernels."""

    def __init__(self, grad_output, input, size, stride=None, padding=0, dilation=1,
                 ceil_mode=False, mode="ignore", cval=0.0, nan_policy="propagate",
                 nodata=None, axes=None, workers=None, output=None, weights=None,
                 weights_name="weights", grad_shape=None):
        self.call = call = _Call(input, size, stride, padding, dilation, ceil_mode, mode,
                                 cval, nan_policy, nodata, axes, workers,
                                 fold_channels="never")
        self.weights = None
        if weights is not None:
            w = _weighted._second_array(weights_name, weights, call.x.shape)
            call.x, self.weights = _weighted._same_layout(call.x, w)
        # grad_shape: the forward result's shape from the pooled one, where the
        # forward reshapes it (catavgmax)
        shape = call.out_shape if grad_shape is None else grad_shape(call)
        self.grad_output = checked_grad_output(grad_output, shape)
        self._g = None
        self.dtype = np.dtype(np.float32 if call.x.dtype == np.float32 else np.float64)
        self.output = output
        self.input = input

    @property
    def g(self):
        """``grad_output`` as a C-contiguous float64 array (made on first use)."""
        if self._g is None:
            self._g = S.aligned_c(self.grad_output, np.float64)
        return self._g

    def g_native(self):
        """``grad_output`` for the kernels that also read float32: as it is where
        it and the gradient are float32 (no float64 copy), else :attr:`g`."""
        if self.dtype == np.float32 and self.grad_output.dtype == np.float32:
            return S.aligned_c(self.grad_output)
        return self.g

    def window_array(self, dtype=np.float64):
        return np.empty(self.call.out_shape, dtype=dtype)

    def stats(self, stat, need, target=None, kernel=None, key=None, **params):
        """The window statistics ``need`` (names among sel, a, b, c, d)."""
        call = self.call
        arrays = {name: self.window_array(np.int64 if name == "sel" else np.float64)
                  for name in need}
        order = [n for n in ("sel", "a", "b", "c", "d") if n in arrays]
        extra = [self.weights] if self.weights is not None else []
        if target is not None:
            target = _as_kernel_dtype(target, call.x.dtype)
            extra.append(target)
        # The random draws are replayed with the forward's counters.
        counts, first = call.counter_view() if key is not None else (None, 0)
        tail = (counts,) if key is not None else ()
        for views in call.views(*extra, *(arrays[n] for n in order), *tail):
            xv, rest = views[0], list(views[1:])
            wv = rest.pop(0) if self.weights is not None else None
            tv = rest.pop(0) if target is not None else None
            cv = rest.pop() if key is not None else None
            named = dict(zip(order, rest))
            id0 = counter_id(cv, counts, first) if key is not None else 0
            _kernel.window_stats(call.tag, xv, wv, tv, named.get("sel"), named.get("a"),
                                 named.get("b"), named.get("c"), named.get("d"), id0,
                                 *call.geometry_args, stat, key=key, kernel=kernel,
                                 omit=call.omit, nodata=call.nodata, cval=call.cval,
                                 nthreads=call.nthreads, counter=cv, **params)
        return arrays

    def uniform_count(self):
        """The valid samples of a window where every window holds as many (and no
        value is missing), else None."""
        call = self.call
        if call.omit or call.nodata is not None:
            return None
        count = 1
        for w in call.windows:
            if w.counts.size and w.counts.min() != w.counts.max():
                return None
            count *= int(w.counts[0]) if w.counts.size else 1
        return count

    def counts(self):
        """Valid samples per window, as the averaging methods divide by them."""
        call = self.call
        if call.omit or call.nodata is not None:
            return self.stats(_STAT.S_COUNT, ("a",))["a"]
        count = np.ones((), dtype=np.float64)
        shape = [1] * len(call.out_shape)
        for a, w in zip(call.kernel_params.axes, call.windows):
            shape[a] = w.out_len
            count = count * w.counts.astype(np.float64).reshape(shape)
            shape[a] = 1
        return np.broadcast_to(count, call.out_shape)

    def gather(self, kind, g_lin=None, g_sel=None, sel=None, target=None, b=None,
               c=None, d=None, cell=_CELL.C_ONE, kernel=None, use_weights=False,
               **params):
        """The gradient with respect to the input (see the kernel's ``gather``)."""
        call = self.call
        dx = self.result()
        if target is not None:
            target = _as_kernel_dtype(target, call.x.dtype)
        window = [None if a is None else a if a is target else
                  np.ascontiguousarray(a, dtype=np.int64 if a is sel else np.float64)
                  for a in (g_lin, g_sel, sel, target, b, c, d)]
        present = [a for a in window if a is not None]
        weights = self.weights if use_weights else None
        # Linear and index-selection terms read the last axis' interior
        # directly (the kernel's spread_row): they need only its edge lists.
        spread = kind == _KIND.K_LINEAR and target is None and (g_sel is None
                                                               or sel is not None)
        lists = reading_lists(call.windows, full_last=not spread)
        tables, tab_off, _, out_len, interior = call.geometry_args
        front = [dx] + ([weights] if weights is not None else [])
        for views in call.views(*front, *present):
            xv, dxv = views[0], views[1]
            wv = views[2] if weights is not None else None
            it = iter(views[len(front) + 1:])
            wins = [next(it) if a is not None else None for a in window]
            _kernel.gather(call.tag, xv, wv, dxv, *wins, *lists, tables, tab_off,
                           out_len, interior, kind,
                           cell=cell, kernel=kernel, omit=call.omit, nodata=call.nodata,
                           cval=call.cval, nthreads=call.nthreads, **params)
        return self.finish(dx)

    def selected(self, values):
        """How the gather finds each window's selected sample (the first valid
        one equal to ``values``): by value in small windows; in large ones (where
        ties would make that quadratic) by its index, located once per window."""
        if math.prod(w.width for w in self.call.windows) <= _FIND_BY_VALUE:
            return dict(target=values)
        return dict(sel=self.stats(_STAT.S_LOCATE, ("sel",), target=values)["sel"])

    def result(self, zeroed=False):
        """The array the kernels write: the user's ``output`` where it is a float
        array of the gradient's dtype, else a new one laid out like the input."""
        out = self.output
        if (isinstance(out, np.ndarray) and out.dtype == self.dtype
                and out.dtype.isnative and out.flags.aligned
                and all(s % out.itemsize == 0 for s in out.strides)):
            out = S.prepare_output(out, self.call.x.shape, self.dtype, self.input)
            if zeroed:
                out[...] = 0
            return out
        return (np.zeros_like if zeroed else np.empty_like)(self.call.x, dtype=self.dtype)

    def finish(self, dx):
        if self.output is None or dx is self.output:
            return dx
        result = S.prepare_output(self.output, dx.shape, dx.dtype, self.input)
        if result.dtype.kind != "f":
            raise TypeError(f"output must be a float array or dtype for a gradient, "
                            f"got {result.dtype}")
        np.copyto(result, dx, casting="unsafe")
        return result


def _as_kernel_dtype(values, dtype):
    """Forward results as the kernels' input dtype (C-contiguous; bool as uint8)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    return values.astype(dtype, copy=False)


def checked_grad_output(grad_output, shape):
    """``grad_output`` as an array, checked to be real and of the forward result's
    shape."""
    g = np.asarray(grad_output)
    if g.dtype.kind not in "biuf":
        raise TypeError(f"grad_output must be a real array, got dtype {g.dtype}")
    if g.shape != tuple(shape):
        raise ValueError(f"grad_output has shape {g.shape}; the forward result has "
                         f"shape {tuple(shape)}")
    return g


def grad_output_array(grad_output, shape):
    """``grad_output`` as a C-contiguous float64 array of the forward result's shape."""
    return S.aligned_c(checked_grad_output(grad_output, shape), np.float64)


def _divide(g, a):
    """``g / a`` with 0 where ``a`` is 0 (an empty or all-zero window sends nothing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a == 0, 0.0, g / a)


def _negative_factor(p):
    """C's pow of a negative base to the power ``p``: the sign for an integer ``p``,
    else NaN (as the forward kernel's)."""
    if abs(p) < 2.0**53 and float(p).is_integer():
        return -1.0 if int(p) % 2 else 1.0
    return math.nan


def _selection(bw, is_min):
    """The flat input index of each window's max (or min): the first in C order,
    the first NaN where one propagates; -1 where a cval sample wins."""
    stat = _STAT.S_ARGMIN if is_min else _STAT.S_ARGMAX
    return dict(sel=bw.stats(stat, ("sel",))["sel"])


# --------------------------------------------------------------------------- methods
# Each takes grad_output, input and the forward function's keywords by name.


def _extremum(is_min):
    def backward(grad_output, input, output=None, return_indices=False, **kw):
        bw = _Backward(grad_output, input, output=output, **kw)
        dx = _disjoint(bw, is_min=is_min)
        if dx is None:
            dx = _overlap(bw, is_min=is_min)
        if dx is not None:
            return dx
        return bw.gather(_KIND.K_LINEAR, g_sel=bw.g, **_selection(bw, is_min))
    return backward


def _disjoint(bw, factors=None, is_min=False, beta=None):
    """Where no two windows share an element (blocks: stride >= size), each
    window writes its own elements in one pass: ``factors`` (a mean's share, see
    :func:`_shares`) to all of them, with ``beta`` SoftPool's gradient, else max
    (min) pooling's.  None where that does not hold (and with nodata, or missing
    values for the means and SoftPool)."""
    call = bw.call
    disjoint, covering = read_once(call.windows)
    if call.whole_disjoint is not None:
        disjoint = call.whole_disjoint   # a chunk takes the whole pool's path
    mode = (_DISJOINT.D_LINEAR if factors is not None else
            _DISJOINT.D_SOFT if beta is not None else _DISJOINT.D_EXTREMUM)
    if (not disjoint or call.nodata is not None
            or (mode != _DISJOINT.D_EXTREMUM and call.omit)
            or (mode == _DISJOINT.D_SOFT
                and math.prod(w.width for w in call.windows) > _SOFT_WINDOW)):
        return None
    dx = bw.result(zeroed=not covering)
    g, divide = _shares(bw, factors)
    for xv, dxv, gv in call.views(dx, g):
        _kernel.disjoint(call.tag, xv, dxv, gv, *call.geometry_args, mode, is_min,
                         omit=call.omit, beta=1.0 if beta is None else beta,
                         cval=call.cval, divide=divide, nthreads=call.nthreads)
    return bw.finish(dx)


def _shares(bw, factors):
    """The kernels' ``gout`` and ``divide`` for ``factors``: None (the gradient
    itself), a number (the one count every window divides by: the gradient is
    read as it is and divided in the kernel, no array of shares), or an array of
    per-window shares."""
    if factors is None or isinstance(factors, (int, float)):
        return bw.g_native(), (0.0 if factors in (None, 1) else float(factors))
    return S.aligned_c(factors, np.float64), 0.0


def _overlap(bw, is_min=False, factors=None, power=None):
    """Over two pooled axes, in one pass (no index array, no lists): max (min)
    pooling's gradient, or with ``factors`` (a mean's share per window, see
    :func:`_shares`, or the windows' counts along each axis: the share is
    grad_output over their product) the means', each cell's sum times
    ``x ** power[0]`` with ``power`` (Lp's).  None with more or fewer axes, with
    nodata, and for the means with missing values."""
    call = bw.call
    if (len(call.windows) != 2 or call.nodata is not None
            or (factors is not None and call.omit)):
        return None
    dx = bw.result()
    counts = factors if isinstance(factors, tuple) else None
    g, divide = _shares(bw, None if counts else factors)
    for xv, dxv, gv in call.views(dx, g):
        _kernel.overlap(call.tag, xv, dxv, gv, *call.geometry_args,
                        linear=factors is not None, is_min=is_min, omit=call.omit,
                        cval=call.cval, divide=divide, counts=counts, power=power,
                        nthreads=call.nthreads)
    return bw.finish(dx)


def _mean(average):
    def backward(grad_output, input, output=None, divisor=None, **kw):
        bw = _Backward(grad_output, input, output=output, **kw)
        missing = bw.call.omit or bw.call.nodata is not None
        divisor = _check_divisor(divisor) if average else 1
        count = divisor or (None if missing else bw.uniform_count())
        if count is None and not missing:
            # two axes: the kernel divides by the per-axis counts (no arrays of
            # counts and shares)
            dx = _overlap(bw, factors=tuple(np.asarray(w.counts, dtype=np.float64)
                                            for w in bw.call.windows))
            if dx is not None:
                return dx
        if count is not None:
            factors = count   # one count for every window: divided in the kernels
        else:
            # Without missing values every window holds a sample.
            count = bw.counts()
            factors = _divide(bw.g, count) if missing else bw.g / count
        dx = _disjoint(bw, factors)
        if dx is None:
            dx = _overlap(bw, factors=factors)
        if dx is not None:
            return dx
        if not isinstance(factors, np.ndarray):
            factors = _divide(bw.g, factors) if missing else bw.g / factors
        return bw.gather(_KIND.K_LINEAR, g_lin=factors)
    return backward


def _order_statistic(forward):
    def backward(grad_output, input, output=None, rank=None, percentile=None, **kw):
        own = {k: v for k, v in (("rank", rank), ("percentile", percentile))
               if v is not None}
        values = forward(input, **own, **kw)
        bw = _Backward(grad_output, input, output=output, **kw)
        return bw.gather(_KIND.K_LINEAR, g_sel=bw.g, **bw.selected(values))
    return backward


def _lp_backward(grad_output, input, p, size, output=None, average=False, **kw):
    p = _weighted._real("p", p, lo=0, allow_inf=True)
    if math.isinf(p):
        return _extremum(False)(grad_output, input, size=size, output=output, **kw)
    scale = _weighted.lp_pool(input, p, size, output=np.float64, average=average, **kw)
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    # scale = out ** (1 - p) (C's pow: signed for an integer 1 - p), in place
    zero = scale == 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 1.0:
            scale[...] = 1.0
        elif p == 2.0:
            np.divide(1.0, scale, out=scale)
        elif p == 0.5:
            # sqrt, as ``** 0.5`` took it (correctly rounded; np.power may not
            # be); out is >= 0 or NaN for a non-integer p
            np.sqrt(scale, out=scale)
        else:
            negative = _negative_factor(1.0 - p)
            below = scale < 0
            np.abs(scale, out=scale)
            np.power(scale, 1.0 - p, out=scale)
            if negative != 1.0:
                np.multiply(scale, negative, out=scale, where=below)
    # An all-zero window: the subgradient 0 (PyTorch's formula gives NaN).
    scale[zero] = 0.0
    if average:
        scale = _divide(scale, bw.counts())
    np.multiply(scale, bw.grad_output, out=scale)
    power = None if p == 1.0 else (p - 1.0, _negative_factor(p - 1.0))
    dx = _overlap(bw, factors=scale, power=power)
    if dx is not None:
        return dx
    return bw.gather(_KIND.K_LINEAR, g_lin=scale,
                     cell=_CELL.C_ONE if p == 1.0 else _CELL.C_POWER, p1=p - 1.0,
                     neg_p1=_negative_factor(p - 1.0))


def _soft_backward(grad_output, input, size, beta=1.0, output=None, **kw):
    beta = _weighted._real("beta", beta, allow_inf=True)
    if math.isinf(beta):
        return _extremum(beta < 0)(grad_output, input, size=size, output=output, **kw)
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    dx = _disjoint(bw, beta=beta)
    if dx is not None:
        return dx
    st = bw.stats(_STAT.S_SOFTMAX, ("a", "b"), beta=beta, soft=True)
    return bw.gather(_KIND.K_EXP, g_lin=bw.g, b=st["a"], c=st["b"], beta=beta,
                     soft=True)


def _lip_backward(grad_output, input, logits, size, output=None, **kw):
    bw = _Backward(grad_output, input, size=size, output=output, weights=logits,
                   weights_name="logits", **kw)
    st = bw.stats(_STAT.S_SOFTMAX, ("a",))
    return bw.gather(_KIND.K_EXP, g_lin=bw.g, b=st["a"], use_weights=True)


def _weighted_backward(grad_output, input, weights, size, output=None, **kw):
    bw = _Backward(grad_output, input, size=size, output=output, weights=weights, **kw)
    total = bw.stats(_STAT.S_WSUM, ("a",))["a"]
    return bw.gather(_KIND.K_LINEAR, g_lin=_divide(bw.g, total), cell=_CELL.C_WEIGHT,
                     use_weights=True)


def _blur_backward(grad_output, input, factor=2, order=2, mode="reflect", cval=0.0,
                   nan_policy="propagate", nodata=None, axes=None, output=None,
                   workers=None, geometry=None):
    """``geometry``: the windows of a chunk (a GivenGeometry) instead of the
    sliding ones of ``factor`` and ``order``."""
    order = _weighted._check_order(order)
    kernel = _weighted.binomial_kernel(order, len(S.normalize_axes(axes, np.ndim(input))))
    sliding = (order + 1, factor, order // 2) if geometry is None else (geometry, None, 0)
    bw = _Backward(grad_output, input, *sliding, 1, False, mode, cval,
                   nan_policy, nodata, axes, workers, output=output)
    total = bw.stats(_STAT.S_WSUM, ("a",), kernel=kernel)["a"]
    return bw.gather(_KIND.K_LINEAR, g_lin=_divide(bw.g, total), kernel=kernel)


def _maxblur_backward(grad_output, input, factor=2, size=2, order=2, mode="reflect",
                      cval=0.0, nan_policy="propagate", nodata=None, axes=None,
                      output=None, workers=None):
    peaks = _pool.max_pool(input, size, 1, nan_policy=nan_policy, nodata=nodata,
                           axes=axes, workers=workers)
    g_peaks = _blur_backward(grad_output, peaks, factor, order, mode, cval, nan_policy,
                             nodata, axes, None, workers)
    return _extremum(False)(g_peaks, input, size=size, stride=1, nan_policy=nan_policy,
                            nodata=nodata, axes=axes, output=output, workers=workers)


def _stochastic_backward(grad_output, input, size, training=True, seed=None,
                         output=None, **kw):
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    _weighted._check_non_negative(bw.call)
    if training:
        st = bw.stats(_STAT.S_STOCH, ("sel", "a"), key=_weighted.seed_key(seed))
        g_lin = bw.g * st["a"] if np.isnan(st["a"]).any() else None
        return bw.gather(_KIND.K_LINEAR, g_lin=g_lin, g_sel=bw.g, sel=st["sel"])
    st = bw.stats(_STAT.S_SQUARES, ("a", "b"))
    return bw.gather(_KIND.K_AFFINE, g_lin=_divide(bw.g, st["a"]), b=st["b"])


def _mixed_backward(grad_output, input, size, alpha=None, seed=None, output=None, **kw):
    if alpha is not None:
        alpha = _weighted._real("alpha", alpha, lo=0, hi=1)
        if alpha in (0.0, 1.0):
            backward = _extremum(False) if alpha == 1.0 else _mean(True)
            return backward(grad_output, input, size=size, output=output, **kw)
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    if alpha is None:
        st = bw.stats(_STAT.S_MIXED, ("sel", "a"), key=_weighted.seed_key(seed))
        return bw.gather(_KIND.K_LINEAR, g_lin=_divide(bw.g, st["a"]), g_sel=bw.g,
                         sel=st["sel"])
    st = bw.stats(_STAT.S_MAXSEL, ("sel", "a"))
    return bw.gather(_KIND.K_LINEAR, g_lin=_divide((1.0 - alpha) * bw.g, st["a"]),
                     g_sel=alpha * bw.g, sel=st["sel"])


def _avgmax_backward(grad_output, input, size, output=None, **kw):
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    st = bw.stats(_STAT.S_MAXSEL, ("sel", "a"))
    return bw.gather(_KIND.K_LINEAR, g_lin=_divide(0.5 * bw.g, st["a"]),
                     g_sel=0.5 * bw.g, sel=st["sel"])


def _catavgmax_backward(grad_output, input, size, axis=None, output=None, **kw):
    def stacked(call):
        """catavgmax_pool's result shape: the halves stacked or concatenated."""
        nonlocal axis
        shape = call.out_shape
        if axis is None:
            return (2,) + shape
        axis = S.normalize_axes(axis, len(shape))[0]
        if axis in call.params.axes:
            raise ValueError(f"axis {axis} is pooled; catavgmax_pool concatenates "
                             "along a non-pooled axis")
        return shape[:axis] + (2 * shape[axis],) + shape[axis + 1:]

    bw = _Backward(grad_output, input, size=size, output=output, grad_shape=stacked,
                   **kw)
    g_avg, g_max = (bw.g[0], bw.g[1]) if axis is None else np.split(bw.g, 2, axis=axis)
    return bw.gather(_KIND.K_LINEAR, g_lin=_divide(g_avg, bw.counts()),
                     g_sel=np.ascontiguousarray(g_max), **_selection(bw, False))


def _dpp_backward(grad_output, input, size, alpha=1.0, lam=1.0, asymmetric=False,
                  output=None, **kw):
    alpha = _weighted._real("alpha", alpha, lo=0)
    lam = _weighted._real("lam", lam, lo=0)
    if not isinstance(asymmetric, (bool, np.bool_)):
        raise TypeError(f"asymmetric must be a bool, got {asymmetric!r}")
    bw = _Backward(grad_output, input, size=size, output=output, **kw)
    params = dict(alpha=alpha, lam=lam, asymmetric=bool(asymmetric))
    st = bw.stats(_STAT.S_DPP, ("a", "b", "c", "d"), **params)
    return bw.gather(_KIND.K_DPP, g_lin=_divide(bw.g, st["a"]), b=st["b"], c=st["c"],
                     d=st["d"], **params)


# --------------------------------------------------------------------------- geometry

def _adaptive_backward(grad_output, input, output_size, method="avg", axes=None,
                       method_kwargs=None):
    method_kwargs = dict(method_kwargs or {})
    backward = _method_backward(method, "adaptive_pool")
    _beyond._no_sliding(method_kwargs, "adaptive_pool")
    geometry = _beyond._adaptive_geometry(output_size, "adaptive_pool")
    return backward(grad_output, input, size=geometry, axes=axes, **method_kwargs)


def _global_backward(grad_output, input, method="avg", axes=None, keepdims=False,
                     method_kwargs=None):
    method_kwargs = dict(method_kwargs or {})
    backward = _method_backward(method, "global_pool")
    _beyond._no_sliding(method_kwargs, "global_pool")
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"keepdims must be a bool, got {keepdims!r}")
    pooled = S.normalize_axes(axes, max(np.ndim(input), 1))
    g = np.asarray(grad_output)
    if not keepdims:
        lead = 1 if method == "catavgmax" and method_kwargs.get("axis") is None else 0
        expected = tuple(n for a, n in enumerate(np.shape(input)) if a not in pooled)
        if method == "catavgmax":
            expected = ((2,) if lead else ()) + expected
        if method != "catavgmax" and g.shape != expected:
            raise ValueError(f"grad_output has shape {g.shape}; the forward result has "
                             f"shape {expected}")
        g = np.expand_dims(g, tuple(a + lead for a in sorted(pooled)))
    return backward(g, input, size=_beyond._whole_axes("global_pool"), axes=axes,
                    **method_kwargs)


def _fractional_backward(grad_output, input, output_size=None, output_ratio=None,
                         size=2, seed=None, samples=None, axes=None,
                         return_indices=False, nan_policy="propagate", nodata=None,
                         output=None, workers=None):
    values, indices = _beyond.fractional_max_pool(
        input, output_size, output_ratio, size, seed=seed, samples=samples, axes=axes,
        return_indices=True, nan_policy=nan_policy, nodata=nodata, workers=workers)
    x, _ = S.as_input(input)
    g = grad_output_array(grad_output, values.shape)
    # A window with no valid sample (only omitted NaN or nodata) sends nothing:
    # its index names its first element, which holds no maximum.
    omit = nan_policy == "omit" or (isinstance(nodata, float) and math.isnan(nodata))
    empty = np.zeros(values.shape, dtype=bool)
    if omit and values.dtype.kind == "f":
        empty |= np.isnan(values)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        empty |= values == nodata
    if empty.any():
        g = np.where(empty, 0.0, g)
    pooled = sorted(S.normalize_axes(axes, x.ndim))
    batch = [a for a in range(x.ndim) if a not in pooled]
    order = batch + pooled
    cells = math.prod(x.shape[a] for a in pooled)
    planes = math.prod(x.shape[a] for a in batch)
    # Windows differ per plane and may overlap: one ordered sum per element.
    idx = np.ascontiguousarray(indices.transpose(order)).reshape(planes, -1)
    idx = idx + (np.arange(planes, dtype=np.int64) * cells)[:, None]
    sums = np.bincount(idx.ravel(), weights=g.transpose(order).ravel(),
                       minlength=planes * cells)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    moved = sums.reshape([x.shape[a] for a in order]).astype(dtype, copy=False)
    dx = np.ascontiguousarray(np.moveaxis(moved, range(x.ndim), order))
    if output is None:
        return dx
    result = S.prepare_output(output, dx.shape, dx.dtype, input)
    np.copyto(result, dx, casting="unsafe")
    return result


_BACKWARD = {
    "max": _extremum(False),
    "min": _extremum(True),
    "avg": _mean(True),
    "sum": _mean(False),
    "median": _order_statistic(_order.median_pool),
    "rank": _order_statistic(_order.rank_pool),
    "percentile": _order_statistic(_order.percentile_pool),
    "mode": _order_statistic(_order.mode_pool),
    "lp": _lp_backward,
    "soft": _soft_backward,
    "stochastic": _stochastic_backward,
    "mixed": _mixed_backward,
    "avgmax": _avgmax_backward,
    "catavgmax": _catavgmax_backward,
    "weighted": _weighted_backward,
    "lip": _lip_backward,
    "dpp": _dpp_backward,
}


def _method_backward(method, caller):
    if method == "generic":
        raise ValueError(f"{caller}: generic_pool has no gradient (its function is "
                         "opaque)")
    _beyond._method(method, caller)
    return _BACKWARD[method]


# --------------------------------------------------------------------------- public

def _adaptive_avg(grad_output, input, output_size, axes=None, nan_policy="propagate",
                  nodata=None, output=None, workers=None):
    return _adaptive_backward(grad_output, input, output_size, "avg", axes,
                              dict(nan_policy=nan_policy, nodata=nodata, output=output,
                                   workers=workers))


def _adaptive_max(grad_output, input, output_size, axes=None, return_indices=False,
                  nan_policy="propagate", nodata=None, output=None, workers=None):
    return _adaptive_backward(grad_output, input, output_size, "max", axes,
                              dict(nan_policy=nan_policy, nodata=nodata, output=output,
                                   workers=workers))


def _global_avg(grad_output, input, axes=None, keepdims=False, nan_policy="propagate",
                nodata=None, output=None, workers=None):
    return _global_backward(grad_output, input, "avg", axes, keepdims,
                            dict(nan_policy=nan_policy, nodata=nodata, output=output,
                                 workers=workers))


def _global_max(grad_output, input, axes=None, keepdims=False, return_indices=False,
                nan_policy="propagate", nodata=None, output=None, workers=None):
    return _global_backward(grad_output, input, "max", axes, keepdims,
                            dict(nan_policy=nan_policy, nodata=nodata, output=output,
                                 workers=workers))


_FUNCTIONS = {
    "max_pool": _BACKWARD["max"],
    "min_pool": _BACKWARD["min"],
    "avg_pool": _BACKWARD["avg"],
    "sum_pool": _BACKWARD["sum"],
    "median_pool": _BACKWARD["median"],
    "rank_pool": _BACKWARD["rank"],
    "percentile_pool": _BACKWARD["percentile"],
    "mode_pool": _BACKWARD["mode"],
    "lp_pool": _lp_backward,
    "soft_pool": _soft_backward,
    "stochastic_pool": _stochastic_backward,
    "mixed_pool": _mixed_backward,
    "avgmax_pool": _avgmax_backward,
    "catavgmax_pool": _catavgmax_backward,
    "weighted_pool": _weighted_backward,
    "lip_pool": _lip_backward,
    "dpp_pool": _dpp_backward,
    "blur_pool": _blur_backward,
    "maxblur_pool": _maxblur_backward,
    "adaptive_pool": _adaptive_backward,
    "adaptive_avg_pool": _adaptive_avg,
    "adaptive_max_pool": _adaptive_max,
    "global_pool": _global_backward,
    "global_avg_pool": _global_avg,
    "global_max_pool": _global_max,
    "fractional_max_pool": _fractional_backward,
}


def _public(name, backward):
    """``fastpool.grad.<name>``: the forward function's signature after
    ``grad_output``, its arguments bound as the forward binds them."""
    import fastpool

    forward = getattr(fastpool, name)
    signature = inspect.signature(forward)
    first = inspect.Parameter("grad_output", inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def function(grad_output, *args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"grad.{name}(): {error}") from None
        bound.apply_defaults()
        if is_dask_array(grad_output) or any(map(is_dask_array, args)) or any(
                map(is_dask_array, kwargs.values())):
            return _dask.gradient(name, dict(bound.arguments), grad_output)
        with S.in_flight():
            return backward(grad_output, **bound.arguments)

    function.__signature__ = signature.replace(
        parameters=[first] + list(signature.parameters.values()))
    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = docstring(name, forward)
    return function


__all__ = sorted(_FUNCTIONS)
for _name in __all__:
    globals()[_name] = _public(_name, _FUNCTIONS[_name])
del _name
