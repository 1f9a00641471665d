"""The AVX2 build of the kernels gives bitwise the results of the portable build."""

import importlib

import numpy as np
import pytest

import fastpool
import fastpool._kernels
import fastpool._order
import fastpool._pool

avx2 = pytest.mark.skipif(
    not fastpool._kernels._openmp.cpu_has_avx2(), reason="this CPU has no AVX2")


def _use(monkeypatch, variant):
    """Route every pooling function to the ``variant`` build of the kernels."""
    suffix = "_avx2" if variant == "avx2" else ""
    for owner, attr, name in ((fastpool._pool, "_extremum", "_extremum"),
                              (fastpool._pool, "_sums", "_sums"),
                              (fastpool._order, "_order", "_order")):
        monkeypatch.setattr(owner, attr,
                            importlib.import_module(f"fastpool._kernels.{name}{suffix}"))


def test_avx2_variant_is_used_where_the_cpu_has_it():
    expected = "avx2" if fastpool._kernels._openmp.cpu_has_avx2() else "baseline"
    assert fastpool._kernels.SIMD == expected


CASES = [
    dict(size=2),
    dict(size=3, stride=2),
    dict(size=(2, 3), stride=(2, 1), padding=(1, 1), mode="reflect"),
    dict(size=2, ceil_mode=True, mode="constant", cval=3),
    dict(size=3, stride=2, dilation=2, nan_policy="omit"),
    dict(size=2, nodata=0),
]


@avx2
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint64",
                                   "float32", "float64"])
@pytest.mark.parametrize("method", ["max", "min", "avg", "sum", "median", "rank", "mode"])
def test_avx2_equals_baseline_bitwise(monkeypatch, method, dtype):
    rng = np.random.default_rng(7)
    # (9, 150): rows long enough for the 32-output SIMD blocks of 2x2 means.
    shapes = [(37, 53), (9, 150), (5, 19, 23), (3, 4, 17, 66)]
    func = getattr(fastpool, f"{method}_pool")
    if method == "rank":
        func = lambda x, **kw: fastpool.rank_pool(x, 1, **kw)  # noqa: E731
    for shape in shapes:
        if np.dtype(dtype).kind == "f":
            x = rng.standard_normal(shape).astype(dtype)
            x[rng.random(shape) < 0.05] = np.nan
        else:
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        for kw in CASES:
            kw = dict(kw, axes=(-2, -1))
            results = {}
            for variant in ("baseline", "avx2"):
                _use(monkeypatch, variant)
                results[variant] = func(x, **kw)
            a, b = results["baseline"], results["avx2"]
            assert a.dtype == b.dtype
            assert a.tobytes() == b.tobytes(), (shape, kw)
