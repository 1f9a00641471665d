"""Slow, obviously-correct NumPy/Python reference for fastpool's sliding-window pooling.

This module is the test oracle.  It deliberately does not import fastpool and uses
explicit Python loops over output positions and window positions, following the
contract in SPEC.md sections 1 and 2 word for word:

* one axis: output ``i`` looks at positions ``start + j*d`` (``j = 0..k-1``) with
  ``start = i*s - p`` in unpadded coordinates;
* positions in ``[0, n)`` are input elements, positions in ``[-p, 0)`` and
  ``[n, n + p)`` are padding, positions ``>= n + p`` (only reachable with
  ``ceil_mode``) are never part of a window;
* padding is excluded under ``mode='ignore'``, holds ``cval`` under ``'constant'``
  and holds the input value at scipy.ndimage's extension index otherwise;
* an N-D window is the Cartesian product of the per-axis positions, iterated in C
  order over the pooled axes taken in ascending axis order.

Values are computed exactly where it matters: Python ints for integer and bool
input (no overflow, uint64 above 2**53 exact), ``fractions.Fraction`` for integer
means, ``math.fsum`` (correctly rounded) for float sums.  ``cast_result`` turns the
exact values into an array of the requested dtype (round half to even, saturate).

Order statistics ('median', 'rank', 'percentile') sort each window's kept values with
``sorted()`` and pick rank ``r``; 'mode' counts them with ``collections.Counter``,
floats keyed by their bits (-0.0 and +0.0 differ, -0.0 the smaller), ties to the
smallest value.  A window whose values are all missing gives ``nodata`` when it is
given, else NaN, for every method.
"""

import collections
import itertools
import math
import os
import struct
from fractions import Fraction

import numpy as np

MODES = ("ignore", "constant", "reflect", "mirror", "nearest", "wrap")
NAN_POLICIES = ("propagate", "omit", "raise")
METHODS = ("max", "min", "avg", "sum")
ORDER_METHODS = ("median", "rank", "percentile", "mode")
ALL_METHODS = METHODS + ORDER_METHODS

# Sentinel kinds for a window position along one axis.
INPUT = "input"  # a real element, or a padded position copied from one (extension modes)
CVAL = "cval"  # a padded position that holds cval (mode='constant')


class EmptyWindow(Exception):
    """Raised when some window has no position at all (only possible in 'ignore' mode
    with dilation); the contract does not say what such a window produces."""


def extend_index(pos, n, mode):
    """Index of the input element that scipy.ndimage's extension mode copies into
    (unpadded) position ``pos`` of an axis of length ``n``."""
    if 0 <= pos < n:
        return pos
    if mode == "nearest":  # a a | a b c d | d d
        return min(max(pos, 0), n - 1)
    if mode == "wrap":  # b c d | a b c d | a b c
        return pos % n
    if mode == "reflect":  # d c b a | a b c d | d c b a   (period 2n)
        m = pos % (2 * n)
        return m if m < n else 2 * n - 1 - m
    if mode == "mirror":  # d c b | a b c d | c b a   (period 2n - 2)
        if n == 1:
            return 0
        m = pos % (2 * n - 2)
        return m if m < n else 2 * n - 2 - m
    raise ValueError(f"no extension rule for mode {mode!r}")


def output_length(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length (pooling_output_shape in ATen)."""
    num = n + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        length = -((-num) // s) + 1  # ceil division
        # the last window must start inside the input or the left padding
        if (length - 1) * s >= n + p:
            length -= 1
    else:
        length = num // s + 1  # floor division
    return length


def axis_windows(n, k, s, p, d, ceil_mode, mode):
    """For one axis: a list (one entry per output position) of lists of
    ``(kind, index)`` pairs, in window order.  Excluded positions are left out."""
    length = output_length(n, k, s, p, d, ceil_mode)
    windows = []
    for i in range(length):
        start = i * s - p
        win = []
        for j in range(k):
            pos = start + j * d
            if 0 <= pos < n:
                win.append((INPUT, pos))
            elif -p <= pos < n + p:  # padding
                if mode == "ignore":
                    continue
                if mode == "constant":
                    win.append((CVAL, min(max(pos, 0), n - 1)))
                else:
                    win.append((INPUT, extend_index(pos, n, mode)))
            # pos >= n + p: never part of a window
        windows.append(win)
    return windows


def _per_axis(value, naxes, name):
    if np.ndim(value) == 0:
        return [int(value)] * naxes
    value = [int(v) for v in value]
    if len(value) != naxes:
        raise ValueError(f"{name}: expected {naxes} values, got {len(value)}")
    return value


def normalize_axes(ndim, axes):
    if axes is None:
        return list(range(ndim))
    if np.ndim(axes) == 0:
        axes = [axes]
    return [int(a) % ndim if -ndim <= int(a) < ndim else int(a) for a in axes]


def geometry(shape, size, stride=None, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", axes=None):
    """Returns (sorted pooled axes, {axis: windows}, output shape)."""
    ndim = len(shape)
    axes_given = normalize_axes(ndim, axes)
    m = len(axes_given)
    ks = _per_axis(size, m, "size")
    ss = ks if stride is None else _per_axis(stride, m, "stride")
    ps = _per_axis(padding, m, "padding")
    ds = _per_axis(dilation, m, "dilation")
    # per-axis parameters follow the order of ``axes`` as given
    params = {ax: (ks[i], ss[i], ps[i], ds[i]) for i, ax in enumerate(axes_given)}
    pooled = sorted(params)
    wins = {}
    out_shape = list(shape)
    for ax in pooled:
        k, s, p, d = params[ax]
        wins[ax] = axis_windows(shape[ax], k, s, p, d, ceil_mode, mode)
        if len(wins[ax]) <= 0:
            raise ValueError(f"zero-length output along axis {ax}")
        if any(len(w) == 0 for w in wins[ax]):
            raise EmptyWindow(f"a window along axis {ax} has no position")
        out_shape[ax] = len(wins[ax])
    return pooled, wins, tuple(out_shape)


def has_empty_window(shape, size, stride=None, padding=0, dilation=1,
                     ceil_mode=False, mode="ignore", axes=None):
    """True when the geometry is valid but some window is empty (undefined result)."""
    try:
        geometry(shape, size, stride, padding, dilation, ceil_mode, mode, axes)
    except EmptyWindow:
        return True
    except ValueError:
        return False
    return False


def _is_nan(v):
    return isinstance(v, float) and math.isnan(v)


def _exact_sum(vals):
    if all(isinstance(v, (bool, int)) for v in vals):
        return sum(int(v) for v in vals)
    vals = [float(v) for v in vals]
    if all(math.isfinite(v) for v in vals):
        return math.fsum(vals)
    return sum(vals)  # inf / nan arithmetic


def _float_key(v):
    """Total order on non-NaN floats that tells -0.0 (smaller) from +0.0."""
    return (v, math.copysign(1.0, v))


def _float_bits(v):
    return struct.unpack("<q", struct.pack("<d", v))[0]


def order_rank(method, n, rank=None, percentile=None):
    """The 0-based rank in the sorted ``n`` kept values that ``method`` selects."""
    if method == "median":
        r = n // 2
    elif method == "rank":
        r = rank if rank >= 0 else n + rank
    elif method == "percentile":
        p = float(percentile)
        r = n - 1 if p == 100 else int(n * p / 100)
    else:
        raise ValueError(method)
    return min(max(r, 0), n - 1)


def window_mode(vals):
    """Most frequent value of ``vals`` (no NaN), ties to the smallest; floats keyed by
    their bits."""
    if any(isinstance(v, float) for v in vals):
        vals = [float(v) for v in vals]
        counts = collections.Counter(_float_bits(v) for v in vals)
        by_bits = {_float_bits(v): v for v in vals}
        best = max(counts.values())
        return min((by_bits[b] for b, c in counts.items() if c == best), key=_float_key)
    counts = collections.Counter(int(v) for v in vals)
    best = max(counts.values())
    winner = min(v for v, c in counts.items() if c == best)
    return bool(winner) if all(isinstance(v, bool) for v in vals) else winner


def _cval_in_dtype(cval, dtype):
    """cval as the input's own dtype holds it: integers rounded half to even and
    saturated, floats rounded to the (float32 for float16) compute dtype."""
    if dtype.kind == "f":
        return float(np.dtype(dtype).type(cval))
    c = float(cval) if not isinstance(cval, (bool, int, np.integer)) else int(cval)
    if isinstance(c, float):
        if math.isnan(c):
            raise ValueError("cval=nan with integer input")
        c = -(2 ** 70) if c == -math.inf else 2 ** 70 if c == math.inf else round(c)
    if dtype.kind == "b":
        return bool(min(max(c, 0), 1))
    info = np.iinfo(dtype)
    return min(max(c, int(info.min)), int(info.max))


def ref_pool(x, method, size, stride=None, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             divisor=None, rank=None, percentile=None):
    """Reference pooling.

    Returns ``(values, indices)``: ``values`` is an object array of exact Python
    scalars (int / Fraction / float / bool) in the output shape; ``indices`` (an int64
    array) is the flat winner index over the pooled axes for max/min, -1 where the
    window held only missing elements, and None for the other methods.

    ``rank`` (method 'rank') and ``percentile`` (method 'percentile') are the
    methods' own parameters.
    """
    x = np.asarray(x)
    if method not in ALL_METHODS:
        raise ValueError(f"method {method!r}")
    if method == "rank" and not isinstance(rank, (int, np.integer)):
        raise ValueError("method 'rank' needs an integer rank=")
    if method == "percentile" and percentile is None:
        raise ValueError("method 'percentile' needs percentile=")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}")
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy {nan_policy!r}")
    is_float = x.dtype.kind == "f"
    if nodata is not None and isinstance(nodata, float) and math.isnan(nodata):
        # a NaN nodata is nan_policy='omit' (and nothing for integer input)
        nodata = None
        if is_float:
            nan_policy = "omit"
    if nan_policy == "raise" and is_float and np.isnan(x).any():
        raise ValueError("nan_policy='raise' and the input contains NaN")

    pooled, wins, out_shape = geometry(x.shape, size, stride, padding, dilation,
                                       ceil_mode, mode, axes)
    pooled_shape = tuple(x.shape[ax] for ax in pooled)

    if is_float:
        cval_value = float(cval)
    elif x.dtype.kind == "b":
        cval_value = cval  # compared / summed as a number
    else:
        cval_value = int(cval) if float(cval).is_integer() else float(cval)
    if method in ORDER_METHODS and mode == "constant":
        cval_value = _cval_in_dtype(cval, x.dtype)
    # a window whose values are all missing gives nodata, or NaN without one
    all_missing = float("nan") if nodata is None else nodata

    def missing(v):
        if nodata is not None and not _is_nan(v) and v == nodata:
            return True
        return nan_policy == "omit" and _is_nan(v)

    values = np.empty(out_shape, dtype=object)
    indices = None
    if method in ("max", "min"):
        indices = np.full(out_shape, -1, dtype=np.int64)

    for out_idx in np.ndindex(*out_shape):
        per_axis = [wins[ax][out_idx[ax]] for ax in pooled]
        # collect the window: (value, multi-index over pooled axes) in C order
        items = []
        for combo in itertools.product(*per_axis):
            src = list(out_idx)
            is_cval = False
            for ax, (kind, idx) in zip(pooled, combo):
                src[ax] = idx
                is_cval = is_cval or kind == CVAL
            v = cval_value if is_cval else x[tuple(src)].item()
            items.append((v, tuple(src[ax] for ax in pooled)))

        kept = [(v, i) for v, i in items if not missing(v)]

        if method in ("max", "min"):
            if not kept:
                values[out_idx] = all_missing
                continue
            nans = [(v, i) for v, i in kept if _is_nan(v)]
            if nans:  # propagate: the first NaN wins
                best_v, best_i = nans[0]
            else:
                best_v, best_i = kept[0]
                for v, i in kept[1:]:
                    if (v > best_v) if method == "max" else (v < best_v):
                        best_v, best_i = v, i
            values[out_idx] = best_v
            indices[out_idx] = np.ravel_multi_index(best_i, pooled_shape)
        elif method in ORDER_METHODS:
            vals = [v for v, _ in kept]
            if not vals:
                values[out_idx] = all_missing
            elif any(_is_nan(v) for v in vals):  # nan_policy='propagate'
                values[out_idx] = float("nan")
            elif method == "mode":
                values[out_idx] = window_mode(vals)
            else:
                ordered = sorted(vals, key=_float_key if is_float else None)
                values[out_idx] = ordered[order_rank(method, len(vals), rank, percentile)]
        else:
            if not kept:
                values[out_idx] = all_missing
                continue
            vals = [v for v, _ in kept]
            total = _exact_sum(vals)
            if method == "sum":
                values[out_idx] = total
            else:
                den = len(vals) if divisor is None else divisor
                if isinstance(total, int):
                    values[out_idx] = Fraction(total, den)
                else:
                    values[out_idx] = total / den
    return values, indices


def default_dtype(method, in_dtype):
    in_dtype = np.dtype(in_dtype).newbyteorder("=")  # results are native-endian
    if in_dtype == np.float16:
        return np.dtype(np.float32)
    if method == "sum" and in_dtype.kind in "biu":
        return np.dtype(np.uint64 if in_dtype.kind == "u" else np.int64)
    return in_dtype


def cast_result(values, dtype):
    """Exact object values -> array of ``dtype``: floats rounded from the exact value,
    integers rounded half to even and saturated, bool saturated to {0, 1}."""
    dtype = np.dtype(dtype)
    out = np.empty(values.shape, dtype=dtype)
    flat = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1)):
        if dtype.kind == "f":
            # float(Fraction) is correctly rounded; float64 -> narrower rounds once more
            flat[i] = float(v)
        else:
            if isinstance(v, float) and math.isnan(v):
                raise ValueError("NaN cannot be cast to an integer dtype in the reference")
            if isinstance(v, float) and math.isinf(v):
                r = v
            else:
                r = round(v) if not isinstance(v, (bool, int)) else int(v)  # half to even
            if dtype.kind == "b":
                lo, hi = 0, 1
            else:
                info = np.iinfo(dtype)
                lo, hi = int(info.min), int(info.max)
            r = lo if r < lo else hi if r > hi else int(r)
            flat[i] = r
    return out


def ref(x, method, size, dtype=None, **kw):
    """Convenience: reference values cast to the expected output dtype, plus indices."""
    x = np.asarray(x)
    values, indices = ref_pool(x, method, size, **kw)
    if dtype is None:
        dtype = default_dtype(method, x.dtype)
    return cast_result(values, dtype), indices


def ref_unpool(values, indices, output_shape, axes=None):
    """Reference max_unpool: zeros of ``output_shape`` with ``values`` scattered to the
    flat (over the pooled axes, ascending order) positions in ``indices``."""
    values = np.asarray(values)
    indices = np.asarray(indices)
    output_shape = tuple(output_shape)
    pooled = sorted(normalize_axes(len(output_shape), axes))
    pooled_shape = tuple(output_shape[ax] for ax in pooled)
    out = np.zeros(output_shape, dtype=values.dtype)
    for pos in np.ndindex(*values.shape):
        dest = list(pos)
        for ax, i in zip(pooled, np.unravel_index(int(indices[pos]), pooled_shape)):
            dest[ax] = int(i)
        out[tuple(dest)] = values[pos]
    return out


# ---------------------------------------------------------------------------
# Test-data helpers (still fastpool-free)

ALL_DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)


def random_array(rng, shape, dtype, *, full_range=False, small=False, nan_frac=0.0,
                 inf_frac=0.0):
    """Random data of ``dtype``.  ``small`` draws from few distinct values (many ties);
    ``full_range`` draws integers over the whole dtype range (extremes included)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if small:
            lo, hi = (0, 4) if dtype.kind == "u" else (-3, 3)
        elif full_range:
            lo, hi = int(info.min), int(info.max)
        else:
            lo, hi = max(int(info.min), -(2 ** 40)), min(int(info.max), 2 ** 40)
        x = rng.integers(lo, hi, size=shape, dtype=dtype, endpoint=True)
        if full_range and size >= 2:  # make sure the extremes appear
            flat = x.reshape(-1)
            flat[rng.integers(size)] = info.max
            flat[rng.integers(size)] = info.min
        return x
    x = rng.standard_normal(shape) * 4
    if small:
        x = np.round(x / 2)
    x = x.astype(dtype)
    flat = x.reshape(-1)
    if nan_frac:
        flat[rng.random(size) < nan_frac] = np.nan
    if inf_frac:
        flat[rng.random(size) < inf_frac] = np.inf
        flat[rng.random(size) < inf_frac] = -np.inf
    return x


def relayout(x, layout, rng=None):
    """The same values as ``x`` in another memory layout."""
    rng = rng or np.random.default_rng(0)
    if layout == "C":
        return np.ascontiguousarray(x)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "negative":  # negative strides along every axis
        idx = tuple(slice(None, None, -1) for _ in range(x.ndim))
        return x[idx].copy()[idx]
    if layout == "sliced":  # non-contiguous view into a bigger array
        big = np.zeros(tuple(2 * n + 1 for n in x.shape), dtype=x.dtype)
        view = big[tuple(slice(1, None, 2) for _ in range(x.ndim))]
        view[...] = x
        return view
    if layout == "readonly":
        y = x.copy()
        y.setflags(write=False)
        return y
    if layout == "bigendian":
        return x.astype(x.dtype.newbyteorder(">"))
    if layout == "transposed":  # a transposed view of a transposed copy
        perm = tuple(rng.permutation(x.ndim))
        inv = tuple(np.argsort(perm))
        return np.ascontiguousarray(x.transpose(perm)).transpose(inv)
    raise ValueError(layout)


LAYOUTS = ("C", "F", "negative", "sliced", "readonly", "bigendian", "transposed")


def examples(n):
    """Hypothesis example count ``n``, scaled by $FASTPOOL_HYPOTHESIS_SCALE (default 1)."""
    return max(1, int(n * float(os.environ.get("FASTPOOL_HYPOTHESIS_SCALE", "1"))))
