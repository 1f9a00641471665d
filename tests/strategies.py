"""Hypothesis helpers shared by the randomized agreement tests."""

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from reference import MODES, cast_result, default_dtype, has_empty_window, output_length

SMALL = {1: 9, 2: 7, 3: 5, 4: 4}
MEDIUM = {1: 300, 2: 45, 3: 14}  # long rows: vectorised loops, row tails, blocking


def draw_output(data, method, in_dtype, values, call_kw, weights=(2, 1, 1),
                int_dtypes=(np.int64,)):
    """Draw how the result is asked for: the default dtype, another dtype, or an array
    to write into (set in ``call_kw``).  Returns ``(expected, out_array or None)``,
    ``expected`` being the reference ``values`` cast to the result's dtype."""
    choices = (["default"] * weights[0] + ["dtype"] * weights[1]
               + ["array"] * weights[2])
    out_choice = data.draw(st.sampled_from(choices))
    in_dtype = np.dtype(in_dtype)
    out_dtype = default_dtype(method, in_dtype)
    if out_choice != "default":
        options = [np.dtype(np.float64), out_dtype]
        if not (in_dtype.kind in "iu" and in_dtype.itemsize == 8):
            options.append(np.dtype(np.float32))  # int64 -> float32: double rounding
        if in_dtype.kind in "biu":
            options += [np.dtype(t) for t in int_dtypes]
        out_dtype = data.draw(st.sampled_from(options))
        if out_dtype.kind in "iub" and any(isinstance(v, float) and math.isnan(v)
                                           for v in values.ravel()):
            out_dtype = np.dtype(np.float64)  # NaN has no integer representation
    expected = cast_result(values, out_dtype)
    out_arr = None
    if out_choice == "dtype":
        call_kw["output"] = out_dtype
    elif out_choice == "array":
        out_arr = np.full(expected.shape, 7, dtype=out_dtype)
        call_kw["output"] = out_arr
    return expected, out_arr


@st.composite
def pool_case(draw, dims=SMALL, max_size=4):
    """Random geometry: shape, axes, size, stride, padding, dilation, ceil_mode, mode
    (every window non-empty, every output length >= 1) and ``wsize``, the window's
    sample count."""
    ndim = draw(st.sampled_from(sorted(dims)))
    shape = tuple(draw(st.integers(1, dims[ndim])) for _ in range(ndim))
    if draw(st.booleans()):
        axes = None
        pooled = list(range(ndim))
    else:
        pooled = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                               unique=True))
        axes = tuple(a - ndim if draw(st.booleans()) else a for a in pooled)
        if len(axes) == 1:  # also as a list, or a bare int
            axes = draw(st.sampled_from([axes, list(axes), axes[0]]))
    m = len(pooled)

    def per_axis(lo_hi):
        vals = [draw(st.integers(*lo_hi(i))) for i in range(m)]
        if len(set(vals)) == 1 and draw(st.booleans()):
            return vals[0], vals
        return tuple(vals), vals

    size, ks = per_axis(lambda i: (1, max_size))
    if draw(st.integers(0, 3)) == 0:
        stride, ss = None, ks
    else:
        stride, ss = per_axis(lambda i: (1, max_size))
    padding, ps = per_axis(lambda i: (0, ks[i] // 2))
    if draw(st.integers(0, 2)) == 0:
        dilation, ds = per_axis(lambda i: (1, 3))
    else:
        dilation, ds = 1, [1] * m
    ceil = draw(st.booleans())
    for ax, k, s, p, d in zip(pooled, ks, ss, ps, ds):
        assume(output_length(shape[ax], k, s, p, d, ceil) >= 1)
    mode = draw(st.sampled_from(MODES))
    assume(not has_empty_window(shape, size, stride, padding, dilation, ceil, mode, axes))
    return dict(shape=shape, axes=axes, size=size, stride=stride, padding=padding,
                dilation=dilation, ceil_mode=ceil, mode=mode,
                wsize=int(np.prod(ks)))
