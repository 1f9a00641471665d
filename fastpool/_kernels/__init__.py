"""The compiled kernels, with the SIMD variant chosen once at import.

Where the CPU has AVX2 and the AVX2 build exists, the ``*_avx2`` modules (the same
source compiled with ``-mavx2``) are used; ``FASTPOOL_SIMD=baseline`` forces the
portable build.  Both give bitwise identical results.
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
sums, _ = _load("_sums")
order, _ = _load("_order")
