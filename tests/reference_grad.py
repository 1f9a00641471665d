"""Slow, obviously-correct reference for the gradients of fastpool.grad.

Like the other references it does not import fastpool.  It walks the windows that
``reference_weighted.window_samples`` lists (the window's *valid* samples in C order,
each with the input cell it reads) and, per window ``o``, computes the row of the
Jacobian of the window's result with respect to its samples; ``g[o]`` times each
entry is added into the sample's cell (a ``cval`` sample is a constant and sends
nothing; an input cell that an extension mode copies into the window more than once
receives the sum of its samples' shares).

The per-window rules (the contract of fastpool.grad):

* selections (max, min, median, rank, percentile, mode): all of ``g[o]`` goes to the
  first sample, in C order, whose value equals the forward result -- computed here
  from the samples (first max / min, order statistic of rank ``n // 2`` etc. as
  scipy.ndimage, most frequent value with ties to the smallest); a NaN result (a
  NaN in the window under nan_policy='propagate') matches the first NaN;
* avg: ``1 / count`` to every sample (``count`` the number of valid samples, or
  ``divisor``), NaN samples included; sum: 1 to every sample;
* the smooth methods (lp, soft, weighted, lip, dpp, stochastic with training=False,
  avgmax, mixed with alpha given, the fixed-kernel blur): the derivative of the
  forward formula, by torch autograd in float64 on the window's sample values; a
  window that holds a NaN sends NaN to each of its samples (lp: the formula
  ``x_i**(p-1) * out**(1-p)`` with C's pow, NaN except for p = 1); an lp window whose
  result is 0 sends 0 (for every p, p = 1 included, as PyTorch's lp_pool);
* stochastic with training=True: ``g[o]`` to the sample the forward draws (the first
  whose running float64 sum exceeds ``u * total``); mixed with alpha=None: the max
  rule where the window's ``u < 0.5``, else the avg rule.

Composite functions (blur, maxblur, catavgmax, adaptive, global, fractional) are
built from ``ref_grad`` below.
"""

import math

import numpy as np
import torch

from reference import normalize_axes, order_rank, window_mode
from reference_geometry import (
    adaptive_positions,
    compute_dtype,
    fractional_starts,
    windows_from,
)
from reference_weighted import binomial, seed_key, uniform, window_samples

SELECTIONS = ("max", "min", "median", "rank", "percentile", "mode")
LINEAR = ("avg", "sum")
SMOOTH = ("lp", "soft", "weighted", "lip", "dpp", "stochastic", "avgmax", "mixed",
          "kernel")
DPP_EPS = 1e-3


def _is_nan(v):
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------------------
# selections: which sample of the window the result is


def selected_value(method, values, rank=None, percentile=None):
    """The forward result of a selection over ``values`` (no NaN among them)."""
    n = len(values)
    if method == "max":
        best = values[0]
        for v in values[1:]:
            if v > best:
                best = v
        return best
    if method == "min":
        best = values[0]
        for v in values[1:]:
            if v < best:
                best = v
        return best
    if method == "mode":
        return window_mode(values)
    if method == "percentile" and float(percentile) < 0:
        percentile = float(percentile) + 100.0
    return sorted(values)[order_rank(method, n, rank, percentile)]


def select_index(method, samples, **params):
    """Index (into ``samples``) of the sample a selection's gradient goes to."""
    values = [s.value for s in samples]
    for i, v in enumerate(values):
        if _is_nan(v):  # a NaN result: the first NaN
            return i
    target = selected_value(method, values, **params)
    for i, v in enumerate(values):
        if v == target:
            return i
    raise AssertionError("the selected value is not in the window")


def one_hot(n, i):
    shares = [0.0] * n
    if i is not None:
        shares[i] = 1.0
    return shares


# ---------------------------------------------------------------------------
# the smooth methods, written in torch for autograd: f(v, samples, **params) with
# ``v`` the window's sample values (a float64 tensor)


def t_lp(v, samples, p, average=False):
    s = (v ** p).sum()
    if average:
        s = s / len(v)
    return s ** (1.0 / p)


def t_soft(v, samples, beta=1.0):
    b = beta * v
    e = torch.exp(b - b.max().detach())  # the shift cancels in the ratio
    return (e * v).sum() / e.sum()


def _weighted_mean(v, w):
    return (w * v).sum() / w.sum()


def t_weighted(v, samples, weights):
    w = torch.tensor([float(weights[s.cell]) for s in samples], dtype=torch.float64)
    return _weighted_mean(v, w)


def t_lip(v, samples, logits):
    lg = torch.tensor([float(logits[s.cell]) for s in samples], dtype=torch.float64)
    return _weighted_mean(v, torch.exp(lg - lg.max()))


def t_dpp(v, samples, alpha=1.0, lam=1.0, asymmetric=False):
    m = v.mean()  # the guide depends on x too
    d = v - m
    if asymmetric:
        d = torch.clamp(d, min=0.0)
    w = alpha + (d * d + DPP_EPS ** 2) ** (lam / 2.0)
    return _weighted_mean(v, w)


def t_stochastic_eval(v, samples):
    return (v * v).sum() / v.sum()


def _first_max(samples):
    return select_index("max", samples)


def t_avgmax(v, samples):
    return 0.5 * (v.mean() + v[_first_max(samples)])


def t_mixed(v, samples, alpha):
    return alpha * v[_first_max(samples)] + (1.0 - alpha) * v.mean()


def t_kernel(v, samples, kernels):
    """Fixed window weights: the product over the pooled axes of kernels[a][j]."""
    w = []
    for s in samples:
        prod = 1.0
        for a, j in enumerate(s.offset):
            prod *= float(kernels[a][j])
        w.append(prod)
    return _weighted_mean(v, torch.tensor(w, dtype=torch.float64))


def autograd_shares(formula, samples, **params):
    v = torch.tensor([float(s.value) for s in samples], dtype=torch.float64,
                     requires_grad=True)
    out = formula(v, samples, **params)
    (grad,) = torch.autograd.grad(out, v)
    return grad.tolist()


# ---------------------------------------------------------------------------
# the per-window rules: rule(samples, u, **params) -> one share per sample


def rule_selection(method):
    def rule(samples, u, **params):
        return one_hot(len(samples), select_index(method, samples, **params))
    return rule


def rule_avg(samples, u, divisor=None):
    count = len(samples) if divisor is None else divisor
    return [1.0 / count] * len(samples)


def rule_sum(samples, u):
    return [1.0] * len(samples)


def smooth(formula):
    def rule(samples, u, **params):
        if any(_is_nan(s.value) for s in samples):
            return [math.nan] * len(samples)
        return autograd_shares(formula, samples, **params)
    return rule


def rule_lp(samples, u, p, average=False):
    p = float(p)
    if p == math.inf:
        return rule_selection("max")(samples, u)
    if any(_is_nan(s.value) for s in samples):
        # the formula x_i**(p-1) * out**(1-p) with out = NaN, powers as C's pow:
        # NaN for every p but 1, where pow(NaN, 0) = 1 (lp with p = 1 is the sum)
        n = len(samples) if average else 1
        with np.errstate(all="ignore"):
            return [float(np.power(np.float64(float(s.value)), p - 1.0)
                          * np.power(np.float64(math.nan), 1.0 - p)) / n
                    for s in samples]
    total = np.float64(0.0)  # the forward's sum, in the window's C order
    for s in samples:
        total = total + np.power(np.float64(float(s.value)), np.float64(p))
    if total == 0:  # the result is 0 (every p, 1 included): the window sends 0
        return [0.0] * len(samples)
    return autograd_shares(t_lp, samples, p=p, average=average)


def rule_soft(samples, u, beta=1.0):
    if beta == math.inf:
        return rule_selection("max")(samples, u)
    if beta == -math.inf:
        return rule_selection("min")(samples, u)
    return smooth(t_soft)(samples, u, beta=beta)


def rule_stochastic(samples, u, training=True):
    if not training:
        if all(float(s.value) == 0 for s in samples):
            return [0.0] * len(samples)
        return smooth(t_stochastic_eval)(samples, u)
    total = np.float64(0.0)
    for s in samples:
        total = total + np.float64(float(s.value))
    if total == 0:  # an all-zero window: nothing is drawn
        return [0.0] * len(samples)
    threshold = np.float64(u) * total
    run = np.float64(0.0)
    for i, s in enumerate(samples):
        run = run + np.float64(float(s.value))
        if run > threshold:
            return one_hot(len(samples), i)
    raise AssertionError("u * total reached the total")


def rule_mixed(samples, u, alpha=None):
    if alpha is None:
        if u < 0.5:
            return rule_selection("max")(samples, u)
        return rule_avg(samples, u)
    return smooth(t_mixed)(samples, u, alpha=float(alpha))


RULES = {
    **{m: rule_selection(m) for m in SELECTIONS},
    "avg": rule_avg,
    "sum": rule_sum,
    "lp": rule_lp,
    "soft": rule_soft,
    "weighted": smooth(t_weighted),
    "lip": smooth(t_lip),
    "dpp": smooth(t_dpp),
    "stochastic": rule_stochastic,
    "avgmax": smooth(t_avgmax),
    "mixed": rule_mixed,
    "kernel": smooth(t_kernel),
}


def _draws(method, params):
    """Whether ``method`` with ``params`` draws a uniform number per window."""
    if method == "stochastic":
        return params.get("training", True)
    if method == "mixed":
        return params.get("alpha") is None
    return False


# ---------------------------------------------------------------------------
# the reference gradient


def ref_grad(method, x, g, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
             mode="ignore", cval=0.0, nan_policy="propagate", nodata=None, axes=None,
             **params):
    """d(sum(g * forward(x))) / dx for ``method`` (a key of ``RULES``) with the
    sliding-window geometry, as a float64 array of ``x``'s shape.  ``params`` are
    the method's own (``rank``, ``p``, ``weights``, ``seed``, ``kernels``, ...)."""
    x = np.asarray(x)
    g = np.asarray(g, dtype=np.float64)
    params = dict(params)
    seed = params.pop("seed", None)
    key = seed_key(seed) if _draws(method, params) else None
    out_shape, _, windows, _ = window_samples(x, size, stride, padding, dilation,
                                              ceil_mode, mode, cval, nan_policy, nodata,
                                              axes)
    if g.shape != tuple(out_shape):
        raise ValueError(f"g has shape {g.shape}, the forward result {out_shape}")
    rule = RULES[method]
    dx = np.zeros(x.shape, dtype=np.float64)
    with np.errstate(all="ignore"):
        for flat, (o, samples) in enumerate(windows):
            if not samples:  # nothing valid: nothing to send
                continue
            u = uniform(key, flat) if key is not None else None
            shares = rule(samples, u, **params)
            assert len(shares) == len(samples)
            for s, share in zip(samples, shares):
                if s.is_cval or share == 0:
                    continue
                dx[s.cell] += g[o] * share
    return dx


def ref_forward_selection(method, x, size, **geo):
    """The forward result of a selection (float64 array), for the chain rules."""
    x = np.asarray(x)
    params = {k: geo.pop(k) for k in ("rank", "percentile") if k in geo}
    out_shape, _, windows, nodata = window_samples(x, size, **geo)
    out = np.empty(out_shape, dtype=np.float64)
    for o, samples in windows:
        if not samples:
            out[o] = math.nan if nodata is None else nodata
        elif any(_is_nan(s.value) for s in samples):
            out[o] = math.nan
        else:
            out[o] = selected_value(method, [s.value for s in samples], **params)
    return out


# ---------------------------------------------------------------------------
# composite functions


def ref_grad_blur(x, g, factor=2, *, order=2, mode="reflect", cval=0.0,
                  nan_policy="propagate", nodata=None, axes=None):
    m = len(normalize_axes(np.ndim(x), axes))
    return ref_grad("kernel", x, g, order + 1, stride=factor, padding=order // 2,
                    mode=mode, cval=cval, nan_policy=nan_policy, nodata=nodata, axes=axes,
                    kernels=[binomial(order)] * m)


def ref_grad_maxblur(x, g, factor=2, *, size=2, order=2, mode="reflect", cval=0.0,
                     nan_policy="propagate", nodata=None, axes=None):
    """Chain rule: y = max_pool(x, size, stride=1), then blur_pool(y)."""
    x = np.asarray(x)
    common = dict(nan_policy=nan_policy, nodata=nodata, axes=axes)
    y = ref_forward_selection("max", x, size, stride=1, **common)
    gy = ref_grad_blur(y, g, factor, order=order, mode=mode, cval=cval, **common)
    return ref_grad("max", x, gy, size, stride=1, **common)


def ref_grad_catavgmax(x, g, size, *, axis=None, **geo):
    """The avg rule on the first half of ``g``, the max rule on the second."""
    g = np.asarray(g, dtype=np.float64)
    if axis is None:
        g_avg, g_max = g[0], g[1]
    else:
        g_avg, g_max = np.split(g, 2, axis=axis)
    return ref_grad("avg", x, g_avg, size, **geo) + ref_grad("max", x, g_max, size, **geo)


def ref_grad_windows(method, x, g, positions, **params):
    """``ref_grad`` over explicit windows ``{axis: [[input index, ...], ...]}``."""
    with windows_from(positions):
        if method == "catavgmax":
            return ref_grad_catavgmax(x, g, 1, **params)
        return ref_grad(method, x, g, 1, **params)


def ref_grad_adaptive(method, x, g, output_size, axes=None, **params):
    x = np.asarray(x)
    return ref_grad_windows(method, x, g, adaptive_positions(x.shape, output_size, axes),
                            **params)


def ref_grad_global(method, x, g, axes=None, keepdims=False, **params):
    """Global pooling = adaptive pooling to 1; ``g`` without the pooled axes unless
    ``keepdims`` (catavgmax's stacking axis, when it has none, leads)."""
    x = np.asarray(x)
    g = np.asarray(g, dtype=np.float64)
    pooled = sorted(set(normalize_axes(x.ndim, axes)))
    if not keepdims:
        lead = 1 if method == "catavgmax" and params.get("axis") is None else 0
        g = np.expand_dims(g, tuple(a + lead for a in pooled))
    return ref_grad_adaptive(method, x, g, 1, axes, **params)


def ref_grad_fractional(x, g, out_sizes, size, samples, *, nan_policy="propagate",
                        nodata=None):
    """Fractional max pooling's gradient: every plane (index of the non-pooled axes)
    has its own windows (reference_geometry.fractional_starts) and the max rule."""
    x = np.asarray(x)
    g = np.asarray(g, dtype=np.float64)
    pooled = sorted(out_sizes)
    batch = [a for a in range(x.ndim) if a not in pooled]
    samples = np.asarray(samples)
    dt = compute_dtype(x.dtype)
    xt = x.transpose(batch + pooled)
    gt = g.transpose(batch + pooled)
    dxt = np.zeros(xt.shape, dtype=np.float64)
    for b in np.ndindex(*xt.shape[:len(batch)]):
        positions = {}
        for j, ax in enumerate(pooled):
            n, m = x.shape[ax], out_sizes[ax]
            k = size[ax] if isinstance(size, dict) else int(size)
            starts = fractional_starts(n, m, k, samples[b + (j,)], dt)
            positions[j] = [list(range(s, s + k)) for s in starts]
        dxt[b] = ref_grad_windows("max", xt[b], gt[b], positions, nan_policy=nan_policy,
                                  nodata=nodata)
    return dxt.transpose(np.argsort(batch + pooled))


__all__ = ["ref_grad", "ref_forward_selection", "ref_grad_blur", "ref_grad_maxblur",
           "ref_grad_catavgmax", "ref_grad_windows", "ref_grad_adaptive",
           "ref_grad_global", "ref_grad_fractional", "SELECTIONS", "LINEAR", "SMOOTH"]
