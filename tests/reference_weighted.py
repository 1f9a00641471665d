"""Slow, obviously-correct reference for the weighted and random pooling family
(docs/semantics.md section 9): lp_pool, soft_pool, stochastic_pool, mixed_pool,
avgmax_pool, catavgmax_pool, weighted_pool, lip_pool, dpp_pool, blur_pool,
maxblur_pool and generic_pool.

Like tests/reference.py (whose geometry it reuses) it does not import fastpool.
For every output element it builds the list of the window's *valid* samples in the
window's C order (the pooled axes in ascending order), each with

* ``value``: the sample's value (a Python float for float input, a Python int or
  bool for integer and bool input; ``cval`` in the input's dtype for padding under
  ``mode='constant'``);
* ``cell``: the full index of the input cell the sample reads -- the cell an
  extension mode copies, the nearest input cell for a ``cval`` sample -- which is
  where ``weights`` and ``logits`` are looked up;
* ``offset``: the sample's position ``j`` in the window along each pooled axis (the
  fixed kernel weights of ``blur_pool`` are indexed by it);
* ``is_cval``.

Missing samples (``mode='ignore'`` padding, NaN under ``nan_policy='omit'``,
``nodata``) are not in the list.  Then, for every method:

* a NaN among the valid samples (``nan_policy='propagate'``) gives NaN;
* no valid sample gives ``nodata`` if there is one, else NaN;
* otherwise the method's formula, evaluated *literally* in float64 (NumPy float64
  scalars, so ``pow``/``exp``/division follow C's IEEE rules: ``pow(-8, 1/3)`` is
  NaN, ``1/0`` is inf) with sums accumulated in the window's C order.

Each method returns ``(value, err)``: ``value`` is a Python float, or an exact
Python scalar for the selections (``stochastic_pool`` in training, ``mixed_pool``
when it picks the max, ``p=inf``, ``beta=+-inf``, ``avg``/``max`` of integers);
``err`` is ``None`` for exact values, else an absolute bound, in float64, for how
far a correct implementation's float64 value may be from ``value`` (different
rounding of the same formula: ``REL`` times the magnitudes that enter the sums,
plus method-specific terms for ill-conditioned steps).  Comparisons add the final
rounding to the output dtype on top of ``err`` (tests/test_weighted.py).

The random stream (``stochastic_pool``, ``mixed_pool(alpha=None)``) is the
documented counter-based splitmix64 stream, implemented on Python ints masked to
64 bits.
"""

import itertools
import math
from typing import NamedTuple

import numpy as np

from reference import (
    CVAL,
    _cval_in_dtype,
    _per_axis,
    cast_result,
    default_dtype,
    geometry,
    normalize_axes,
    ref_pool,
)

# relative error allowed between two float64 evaluations of the same formula
REL = 1e-12
EPS64 = float(np.finfo(np.float64).eps)
DPP_EPS = 1e-3  # Saeedan et al.'s epsilon
F64 = np.float64

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------
# the random stream (docs/semantics.md, "Random streams")


def splitmix64(z):
    """The splitmix64 finaliser of the 64-bit state ``z`` (a Python int)."""
    z &= MASK64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z


def seed_key(seed):
    """The stream's 64-bit key (a Python int) for ``seed``: an int, or a
    ``numpy.random.Generator`` (which this advances by one draw)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"the reference takes an int or a Generator seed, got {seed!r}")
    return int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0])


def stream_bits(key, i):
    """The 64-bit number of window ``i`` (flat C-order index over the result)."""
    return splitmix64((key + (i + 1) * GOLDEN) & MASK64)


def uniform(key, i):
    """Window ``i``'s uniform number in [0, 1)."""
    return (stream_bits(key, i) >> 11) * 2.0**-53


def uniforms(key, shape):
    """``uniform(key, i)`` for every flat index of ``shape``, as a float64 array."""
    n = int(np.prod(shape, dtype=np.int64))
    return np.array([uniform(key, i) for i in range(n)], dtype=np.float64).reshape(shape)


# ---------------------------------------------------------------------------
# window samples


class Sample(NamedTuple):
    value: object  # Python float / int / bool
    cell: tuple  # full index into the input (nearest cell for cval)
    offset: tuple  # window position j along each pooled axis (ascending axes)
    is_cval: bool


def _axis_offsets(n, k, s, p, d, length, mode):
    """For one axis, per output position, the window positions ``j`` that are part of
    the window -- the same positions, in the same order, as reference.axis_windows
    lists (it does not say which ``j`` each entry is)."""
    out = []
    for i in range(length):
        start = i * s - p
        offs = []
        for j in range(k):
            pos = start + j * d
            if pos >= n + p:  # only ceil_mode reaches it: never part of a window
                continue
            if not 0 <= pos < n and mode == "ignore":
                continue
            offs.append(j)
        out.append(offs)
    return out


def window_geometry(shape, size, stride=None, padding=0, dilation=1, ceil_mode=False,
                    mode="ignore", axes=None):
    """reference.geometry plus the window offsets:
    ``(pooled axes ascending, {axis: windows}, {axis: offsets}, output shape)``."""
    pooled, wins, out_shape = geometry(shape, size, stride, padding, dilation, ceil_mode,
                                       mode, axes)
    given = normalize_axes(len(shape), axes)
    m = len(given)
    ks = _per_axis(size, m, "size")
    ss = ks if stride is None else _per_axis(stride, m, "stride")
    ps = _per_axis(padding, m, "padding")
    ds = _per_axis(dilation, m, "dilation")
    params = {ax: (ks[i], ss[i], ps[i], ds[i]) for i, ax in enumerate(given)}
    offs = {}
    for ax in pooled:
        k, s, p, d = params[ax]
        offs[ax] = _axis_offsets(shape[ax], k, s, p, d, len(wins[ax]), mode)
        assert [len(o) for o in offs[ax]] == [len(w) for w in wins[ax]]
    return pooled, wins, offs, out_shape


def _is_nan(v):
    return isinstance(v, float) and math.isnan(v)


def prepare_missing(x, nan_policy, nodata):
    """``(nan_policy, nodata)`` after the NaN-nodata rule; raises for 'raise' + NaN."""
    is_float = x.dtype.kind == "f"
    if nodata is not None and isinstance(nodata, float) and math.isnan(nodata):
        nodata = None  # a NaN nodata is nan_policy='omit' (nothing for integer input)
        if is_float:
            nan_policy = "omit"
    if nan_policy == "raise" and is_float and np.isnan(x).any():
        raise ValueError("nan_policy='raise' and the input holds NaN")
    return nan_policy, nodata


def cval_sample_value(x, cval):
    """What a cval sample holds: float input: ``float(cval)`` (tests pick cvals the
    input's dtype represents exactly); integer and bool input: cval rounded half to
    even and saturated to the dtype (docs/semantics.md section 11)."""
    if x.dtype.kind == "f":
        return float(cval)
    return _cval_in_dtype(cval, x.dtype)


def window_samples(x, size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   mode="ignore", cval=0.0, nan_policy="propagate", nodata=None,
                   axes=None):
    """``(output shape, pooled axes, iterator of (output index, [Sample, ...]))``,
    the samples being the window's valid ones in C order."""
    x = np.asarray(x)
    nan_policy, nodata = prepare_missing(x, nan_policy, nodata)
    pooled, wins, offs, out_shape = window_geometry(x.shape, size, stride, padding,
                                                    dilation, ceil_mode, mode, axes)
    cval_value = cval_sample_value(x, cval) if mode == "constant" else None

    def missing(v):
        if nodata is not None and not _is_nan(v) and v == nodata:
            return True
        return nan_policy == "omit" and _is_nan(v)

    def gen():
        for out_idx in np.ndindex(*out_shape):
            per_axis = [list(zip(wins[ax][out_idx[ax]], offs[ax][out_idx[ax]]))
                        for ax in pooled]
            samples = []
            for combo in itertools.product(*per_axis):
                cell = list(out_idx)
                is_cval = False
                for ax, ((kind, idx), _) in zip(pooled, combo):
                    cell[ax] = idx
                    is_cval = is_cval or kind == CVAL
                cell = tuple(cell)
                v = cval_value if is_cval else x[cell].item()
                if missing(v):
                    continue
                samples.append(Sample(v, cell, tuple(j for _, j in combo), is_cval))
            yield out_idx, samples

    return out_shape, pooled, gen(), nodata


# ---------------------------------------------------------------------------
# per-window formulas: f(samples, **params) -> (value, err)


def _f(v):
    return F64(float(v))


def _fsum_c_order(terms):
    """Left-to-right float64 sum (the window's C order)."""
    s = F64(0.0)
    for t in terms:
        s = s + t
    return s


def _tol(value, scale, extra=0.0):
    """REL * (|value| + scale) + extra, as a float (inf/NaN-safe: NaN -> inf)."""
    t = REL * (abs(float(value)) + float(scale)) + float(extra)
    return t if not math.isnan(t) else math.inf


def _exact_max(vals):
    best = vals[0]
    for v in vals[1:]:
        if v > best:
            best = v
    return best


def _exact_min(vals):
    best = vals[0]
    for v in vals[1:]:
        if v < best:
            best = v
    return best


def _weighted_mean(vals, ws):
    """(sum(w*x) / sum(w), err) in float64, C order; ``vals`` and ``ws`` float64."""
    num = _fsum_c_order(w * v for w, v in zip(ws, vals))
    den = _fsum_c_order(ws)
    r = num / den
    absden = abs(float(den))
    if absden == 0 or not math.isfinite(absden) or not math.isfinite(float(r)):
        return float(r), None
    scale = (sum(abs(float(w)) * abs(float(v)) for w, v in zip(ws, vals))
             + abs(float(r)) * sum(abs(float(w)) for w in ws)) / absden
    return float(r), _tol(r, scale)


def m_lp(samples, p, average=False):
    vals = [s.value for s in samples]
    p = float(p)
    if p == math.inf:
        return _exact_max(vals), None
    terms = [np.power(_f(v), F64(p)) for v in vals]
    s = _fsum_c_order(terms)
    big = sum(abs(float(t)) for t in terms)
    if average:
        s = s / F64(len(vals))
        big = big / len(vals)
    inv = F64(1.0) / F64(p)
    r = np.power(s, inv)
    if math.isnan(float(r)):
        return math.nan, None
    # |d(s^(1/p))| from a sum rounded relative to sum |x_i^p|
    scale = float(np.power(F64(big), inv)) if big > 0 else 0.0
    return float(r), _tol(r, scale)


def m_soft(samples, beta=1.0):
    vals = [s.value for s in samples]
    beta = float(beta)
    if beta == math.inf:
        return _exact_max(vals), None
    if beta == -math.inf:
        return _exact_min(vals), None
    xs = [_f(v) for v in vals]
    bx = [F64(beta) * v for v in xs]
    m = bx[0]
    for b in bx[1:]:  # NaN (inf - inf, 0 * inf) propagates below
        m = b if (b > m or math.isnan(float(b))) else m
    es = [np.exp(b - m) for b in bx]
    r, err = _weighted_mean(xs, es)
    if err is None or math.isnan(r):
        return math.nan, None
    # the exponents b - m are rounded relative to |beta * x|
    spread = max(abs(float(v) - r) for v in xs)
    arg = max(abs(float(b)) for b in bx) + abs(float(m))
    return r, err + 8 * EPS64 * (arg + 1.0) * spread


def m_stochastic(samples, u, training=True):
    vals = [s.value for s in samples]
    xs = [_f(v) for v in vals]
    s = _fsum_c_order(xs)
    if training:
        if s == 0:
            v0 = vals[0]
            zero = False if isinstance(v0, bool) else 0.0 if isinstance(v0, float) else 0
            return zero, None
        threshold = F64(u) * s
        run = F64(0.0)
        for v, xv in zip(vals, xs):
            run = run + xv
            if run > threshold:
                return v, None
        # u*s rounded up to s (probability ~2**-53): the last nonzero value
        return [v for v in vals if v][-1], None
    if s == 0:
        return 0.0, 0.0
    q = _fsum_c_order(xv * xv for xv in xs)
    r = q / s
    return float(r), _tol(r, 0.0)


def m_mixed(samples, u=None, alpha=None):
    vals = [s.value for s in samples]
    xs = [_f(v) for v in vals]
    mx = _exact_max(vals)
    mean = _fsum_c_order(xs) / F64(len(xs))
    absmean = sum(abs(float(v)) for v in xs) / len(xs)
    if alpha is None:
        if u < 0.5:
            return mx, None
        return float(mean), _tol(mean, absmean)
    a = F64(alpha)
    r = a * _f(mx) + (F64(1.0) - a) * mean
    return float(r), _tol(r, absmean + abs(float(mx)))


def m_avgmax(samples):
    vals = [s.value for s in samples]
    xs = [_f(v) for v in vals]
    mx = _exact_max(vals)
    mean = _fsum_c_order(xs) / F64(len(xs))
    absmean = sum(abs(float(v)) for v in xs) / len(xs)
    r = F64(0.5) * (mean + _f(mx))
    return float(r), _tol(r, absmean + abs(float(mx)))


def m_avg(samples):
    """avg_pool: exact (half-even rounding) for integers, float64 mean for floats."""
    vals = [s.value for s in samples]
    if all(isinstance(v, (bool, int)) for v in vals):
        from fractions import Fraction
        return Fraction(sum(int(v) for v in vals), len(vals)), None
    xs = [_f(v) for v in vals]
    mean = _fsum_c_order(xs) / F64(len(xs))
    absmean = sum(abs(float(v)) for v in xs) / len(xs)
    if not math.isfinite(float(mean)):
        return float(mean), None
    return float(mean), _tol(mean, absmean)


def m_max(samples):
    return _exact_max([s.value for s in samples]), None


def m_weighted(samples, weights):
    xs = [_f(s.value) for s in samples]
    ws = [F64(float(weights[s.cell])) for s in samples]
    return _weighted_mean(xs, ws)


def m_lip(samples, logits):
    xs = [_f(s.value) for s in samples]
    ls = [F64(float(logits[s.cell])) for s in samples]
    top = max(ls)
    ws = [np.exp(l - top) for l in ls]
    r, err = _weighted_mean(xs, ws)
    if err is None or math.isnan(r):
        return r, err
    spread = max(abs(float(v) - r) for v in xs)
    arg = max(abs(float(l)) for l in ls)
    return r, err + 8 * EPS64 * (arg + 1.0) * spread


def _dpp_value(xs, m, alpha, lam, asymmetric):
    e2 = F64(DPP_EPS) * F64(DPP_EPS)
    ws = []
    for v in xs:
        d = v - m
        if asymmetric:
            d = d if d > 0 else F64(0.0)
        ws.append(F64(alpha) + np.power(d * d + e2, F64(lam) / F64(2.0)))
    return _weighted_mean(xs, ws)


def m_dpp(samples, alpha=1.0, lam=1.0, asymmetric=False):
    xs = [_f(s.value) for s in samples]
    m = _fsum_c_order(xs) / F64(len(xs))
    r, err = _dpp_value(xs, m, alpha, lam, asymmetric)
    if err is None or not math.isfinite(r):
        return r, err
    # the guide m is a rounded mean: bound the effect of moving it by a few roundings
    delta = F64(4 * (len(xs) + 1) * EPS64 * (sum(abs(float(v)) for v in xs) / len(xs)
                                             + abs(float(m)) + 1e-300))
    lo, _ = _dpp_value(xs, m - delta, alpha, lam, asymmetric)
    hi, _ = _dpp_value(xs, m + delta, alpha, lam, asymmetric)
    return r, err + 2 * max(abs(lo - r), abs(hi - r))


def m_kernel(samples, kernels):
    """Fixed window weights: the product over the pooled axes of ``kernels[a][j]``."""
    xs = [_f(s.value) for s in samples]
    ws = []
    for s in samples:
        w = 1.0
        for a, j in enumerate(s.offset):
            w *= float(kernels[a][j])
        ws.append(F64(w))
    return _weighted_mean(xs, ws)


def m_generic(samples, function, extra_arguments=(), extra_keywords=None):
    values = np.array([float(s.value) for s in samples], dtype=np.float64)
    r = function(values, *extra_arguments, **(extra_keywords or {}))
    r = float(r)
    return r, (None if not math.isfinite(r) else _tol(r, 0.0))


METHODS = {
    "lp": m_lp,
    "soft": m_soft,
    "stochastic": m_stochastic,
    "mixed": m_mixed,
    "avgmax": m_avgmax,
    "avg": m_avg,
    "max": m_max,
    "weighted": m_weighted,
    "lip": m_lip,
    "dpp": m_dpp,
    "kernel": m_kernel,
    "generic": m_generic,
}
RANDOM = ("stochastic", "mixed")
GEO_KEYS = ("stride", "padding", "dilation", "ceil_mode", "mode", "cval", "nan_policy",
            "nodata", "axes")


def ref_family(x, method, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
               mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
               key=None, **params):
    """Reference values of ``method`` (a key of ``METHODS``) on ``x``.

    Returns ``(values, errs)``, object arrays of the result's shape: ``values`` holds
    Python scalars (float, or exact int/bool/float/Fraction for selections), ``errs``
    ``None`` (exact) or the float64 error bound.  ``key`` is the random stream's key
    (``seed_key(seed)``) for the random methods; they draw ``u`` for the window with
    flat index ``i`` only where it is used (stochastic training, mixed alpha=None).
    Raises ValueError under ``nan_policy='raise'`` with NaN in the input.
    """
    with np.errstate(all="ignore"):
        return _ref_family(x, method, size, stride, padding, dilation, ceil_mode, mode,
                           cval, nan_policy, nodata, axes, key, params)


def _ref_family(x, method, size, stride, padding, dilation, ceil_mode, mode, cval,
                nan_policy, nodata, axes, key, params):
    x = np.asarray(x)
    fn = METHODS[method]
    out_shape, pooled, it, nodata_eff = window_samples(
        x, size, stride, padding, dilation, ceil_mode, mode, cval, nan_policy, nodata,
        axes)
    values = np.empty(out_shape, dtype=object)
    errs = np.empty(out_shape, dtype=object)
    if method == "kernel":
        if len(params["kernels"]) != len(pooled):
            raise ValueError("one kernel per pooled axis")
    flat = 0
    for out_idx, samples in it:
        i = flat
        flat += 1
        if not samples:
            values[out_idx] = math.nan if nodata_eff is None else nodata_eff
            errs[out_idx] = None
            continue
        if any(_is_nan(s.value) for s in samples):
            values[out_idx] = math.nan
            errs[out_idx] = None
            continue
        kw = dict(params)
        if method == "stochastic" and kw.get("training", True):
            kw["u"] = uniform(key, i)
        elif method == "stochastic":
            kw["u"] = None
        if method == "mixed" and kw.get("alpha") is None:
            kw["u"] = uniform(key, i)
        v, e = fn(samples, **kw)
        values[out_idx] = v
        errs[out_idx] = e
    return values, errs


# ---------------------------------------------------------------------------
# the composite methods


def binomial(order):
    """Zhang's blur row: C(order, k), k = 0 .. order."""
    return [math.comb(order, k) for k in range(order + 1)]


def pooled_axes(ndim, axes):
    return sorted(normalize_axes(ndim, axes))


def ref_blur(x, factor=2, *, order=2, mode="reflect", cval=0.0, nan_policy="propagate",
             nodata=None, axes=None):
    x = np.asarray(x)
    m = len(pooled_axes(x.ndim, axes))
    b = binomial(order)
    return ref_family(x, "kernel", order + 1, stride=factor, padding=order // 2,
                      mode=mode, cval=cval, nan_policy=nan_policy, nodata=nodata,
                      axes=axes, kernels=[b] * m)


def ref_max_stride1(x, size, *, nan_policy="propagate", nodata=None, axes=None):
    """max_pool(x, size, stride=1) as an array of max_pool's dtype (via reference.py)."""
    x = np.asarray(x)
    vals, _ = ref_pool(x, "max", size, stride=1, nan_policy=nan_policy, nodata=nodata,
                       axes=axes)
    return cast_result(vals, default_dtype("max", x.dtype))


def ref_maxblur(x, factor=2, *, size=2, order=2, mode="reflect", cval=0.0,
                nan_policy="propagate", nodata=None, axes=None):
    x = np.asarray(x)
    nan_policy, nodata_eff = prepare_missing(x, nan_policy, nodata)
    mx = ref_max_stride1(x, size, nan_policy=nan_policy, nodata=nodata_eff, axes=axes)
    return ref_blur(mx, factor, order=order, mode=mode, cval=cval, nan_policy=nan_policy,
                    nodata=nodata_eff, axes=axes)


def ref_catavgmax(x, size, *, axis=None, **geo):
    """avg_pool and max_pool values stacked on a new leading axis, or concatenated
    along ``axis``: ``(values, errs)``."""
    a_v, a_e = ref_family(x, "avg", size, **geo)
    m_v, m_e = ref_family(x, "max", size, **geo)
    if axis is None:
        return np.stack([a_v, m_v]), np.stack([a_e, m_e])
    return np.concatenate([a_v, m_v], axis=axis), np.concatenate([a_e, m_e], axis=axis)


def result_dtype(in_dtype):
    """The family's default result dtype: the input's (native), float16 -> float32."""
    return default_dtype("avg", in_dtype)
