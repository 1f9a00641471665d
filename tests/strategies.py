"""Hypothesis helpers shared by the randomized agreement tests."""

import math

import numpy as np
from hypothesis import strategies as st

from reference import cast_result, default_dtype


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
