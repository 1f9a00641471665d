"""The compiled kernels, with the SIMD variant chosen once at import.

Where the CPU has AVX2 and the AVX2 build exists, the ``*_avx2`` modules (the same
source compiled with ``-mavx2``) are used; ``FASTPOOL_SIMD=baseline`` forces the
portable build.  Where the CPU also has AVX-512, a few loops of the AVX2 build (2x2
means) run with 512-bit vectors; ``FASTPOOL_SIMD=avx2`` keeps them off.  All give
bitwise identical results.
"""

import importlib
import os

from . import _openmp


def _load(name):
    if os.environ.get("FASTPOOL_SIMD", "auto") != "baseline" and _openmp.cpu_has_avx2():
        try:
            return importlib.import_module(f"{__name__}.{name}_avx2"), "avx2"
        except ImportError:
            pass
    return importlib.import_module(f"{__name__}.{name}"), "baseline"


extremum, SIMD = _load("_extremum")
if (SIMD == "avx2" and _openmp.cpu_has_avx512()
        and os.environ.get("FASTPOOL_SIMD", "auto") != "avx2"):
    SIMD = "avx2+avx512"
sums, _ = _load("_sums")
order, _ = _load("_order")
weighted, _ = _load("_weighted")
whole, _ = _load("_global")
gradients, _ = _load("_grad")
