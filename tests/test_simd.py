"""The AVX2 build of the kernels gives bitwise the results of the portable build."""

import importlib

import numpy as np
import pytest

import fastpool
import fastpool._beyond
import fastpool._kernels
import fastpool._order
import fastpool._pool
import fastpool._weighted

avx2 = pytest.mark.skipif(
    not fastpool._kernels._openmp.cpu_has_avx2(), reason="this CPU has no AVX2")


def _use(monkeypatch, variant):
    """Route every pooling function to the ``variant`` build of the kernels."""
    suffix = "_avx2" if variant == "avx2" else ""
    for owner, attr, name in ((fastpool._pool, "_extremum", "_extremum"),
                              (fastpool._pool, "_sums", "_sums"),
                              (fastpool._order, "_order", "_order"),
                              (fastpool._weighted, "_weighted", "_weighted"),
                              (fastpool._beyond, "_whole", "_global"),
                              (fastpool._beyond, "_sums", "_sums")):
        monkeypatch.setattr(owner, attr,
                            importlib.import_module(f"fastpool._kernels.{name}{suffix}"))


def test_avx2_variant_is_used_where_the_cpu_has_it():
    cpu = fastpool._kernels._openmp
    expected = "baseline"
    if cpu.cpu_has_avx2():
        expected = "avx2+avx512" if cpu.cpu_has_avx512() else "avx2"
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
@pytest.mark.parametrize("method", ["max", "min", "avg", "sum", "median", "rank", "mode",
                                    "lp", "soft", "stochastic", "mixed", "lip", "dpp",
                                    "blur"])
def test_avx2_equals_baseline_bitwise(monkeypatch, method, dtype):
    rng = np.random.default_rng(7)
    # (9, 150): rows long enough for the 32-output SIMD blocks of 2x2 means.
    shapes = [(37, 53), (9, 150), (5, 19, 23), (3, 4, 17, 66)]
    func = getattr(fastpool, f"{method}_pool")
    # The weighted family's float64 arithmetic (exp, log, pow included) must not
    # depend on the build either; each method with a parameter that takes its
    # general path.
    special = {
        "rank": lambda x, **kw: fastpool.rank_pool(x, 1, **kw),
        "lp": lambda x, **kw: fastpool.lp_pool(
            np.abs(x.astype(np.float64)) if x.dtype.kind == "i" else np.abs(x), 1.5, **kw),
        "soft": lambda x, **kw: fastpool.soft_pool(x, beta=0.3, **kw),
        "stochastic": lambda x, **kw: fastpool.stochastic_pool(
            np.abs(x.astype(np.float64)), seed=3, **kw),
        "mixed": lambda x, **kw: fastpool.mixed_pool(x, seed=3, **kw),
        "lip": lambda x, **kw: fastpool.lip_pool(x, np.sin(np.arange(x.size)).reshape(
            x.shape) * 50, **kw),
        "dpp": lambda x, **kw: fastpool.dpp_pool(x, lam=0.7, **kw),
        "blur": lambda x, **kw: fastpool.weighted_pool(
            x, np.cos(np.arange(x.size)).reshape(x.shape) + 2, **kw),
    }
    func = special.get(method, func)
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


@avx2
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
def test_global_and_pyramid_avx2_equal_baseline_bitwise(monkeypatch, dtype):
    """The whole-run kernels (lanes of sums and extrema), the float32 2x2(x2)
    sums and the means of a pyramid of sums."""
    rng = np.random.default_rng(11)
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal((3, 150, 221)).astype(dtype) * 100
        x[rng.random(x.shape) < 0.001] = np.nan
    else:
        x = rng.integers(-100 if dtype == "int16" else 0, 256, (3, 150, 221)).astype(dtype)
    calls = [lambda m=m, kw=kw: fastpool.global_pool(x, m, axes=(1, 2), **kw)
             for m in ("avg", "sum", "max", "min")
             for kw in ({}, {"nan_policy": "omit"})]
    calls += [lambda m=m: fastpool.global_pool(x, m, axes=(1, 2), return_indices=True)
              for m in ("max", "min")]
    clean = np.nan_to_num(x) if x.dtype.kind == "f" else x
    calls += [lambda m=m, a=a: fastpool.pyramid(a, method=m)
              for m in ("avg", "sum") for a in (clean[0], clean[:, :64, :70])]
    calls += [lambda: fastpool.sum_pool(clean, 2, output=np.float32),
              lambda: fastpool.sum_pool(clean, 2, axes=(1, 2), output=np.float32)]
    for call in calls:
        results = {}
        for variant in ("baseline", "avx2"):
            _use(monkeypatch, variant)
            out = call()
            out = out if isinstance(out, (list, tuple)) else [out]
            results[variant] = b"".join(np.asarray(o).tobytes() for o in out)
        assert results["baseline"] == results["avx2"]


@avx2
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
def test_gradients_avx2_equal_baseline_bitwise(monkeypatch, dtype):
    """fastpool.grad's kernels: the 2x2 blocks' extremum loop, the one-pass
    overlapping extremum, the disjoint means and SoftPool, and the gather."""
    rng = np.random.default_rng(12)
    if np.dtype(dtype).kind == "f":
        x = np.round(rng.standard_normal((3, 22, 150)) * 4).astype(dtype)
        x[rng.random(x.shape) < 0.03] = np.nan
    else:
        x = rng.integers(0, 9, (3, 22, 150)).astype(dtype)
    calls = []
    for fn in (fastpool.grad.max_pool, fastpool.grad.min_pool):
        for kw in (dict(size=2), dict(size=2, nan_policy="omit"),
                   dict(size=3, stride=2, padding=1),
                   dict(size=3, stride=2, padding=1, mode="reflect", nan_policy="omit")):
            calls.append((fn, kw))
    calls += [(fastpool.grad.avg_pool, dict(size=2)),
              (fastpool.grad.avg_pool, dict(size=3, stride=2, padding=1)),
              (fastpool.grad.soft_pool, dict(size=2)),
              (fastpool.grad.lp_pool, dict(size=3, stride=2))]
    for fn, kw in calls:
        results = {}
        for variant in ("baseline", "avx2"):
            suffix = "_avx2" if variant == "avx2" else ""
            monkeypatch.setattr(fastpool.grad, "_kernel", importlib.import_module(
                f"fastpool._kernels._grad{suffix}"))
            args = (2.0,) if fn is fastpool.grad.lp_pool else ()
            y = getattr(fastpool, fn.__name__)(np.abs(x) if args else x, *args,
                                               axes=(1, 2), **kw)
            g = np.cos(np.arange(y.size)).reshape(y.shape).astype(y.dtype)
            results[variant] = fn(g, np.abs(x) if args else x, *args, axes=(1, 2),
                                  **kw).tobytes()
        assert results["baseline"] == results["avx2"], (fn.__name__, kw)


@avx2
def test_avx512_loops_equal_avx2_bitwise(tmp_path):
    """Where the CPU has AVX-512, the AVX2 build runs 512-bit loops for 2x2 means
    and 3x3/2 float32 medians; FASTPOOL_SIMD=avx2 keeps them off.  Both give the
    same bits (zero signs and NaN included)."""
    import os
    import subprocess
    import sys
    if not fastpool._kernels._openmp.cpu_has_avx512():
        pytest.skip("this CPU has no AVX-512: the 512-bit loops cannot run")
    rng = np.random.default_rng(3)
    signed_zeros = rng.choice(np.array([-0.0, 0.0, 1.0], np.float32), (9, 301))
    with_nan = rng.standard_normal((9, 301)).astype(np.float32)
    with_nan[rng.random(with_nan.shape) < 0.01] = np.nan
    cases = {"f32": rng.standard_normal((9, 301)).astype(np.float32),
             "zeros": signed_zeros, "nan": with_nan,
             "u8": rng.integers(0, 256, (9, 301), dtype=np.uint8)}
    for name, x in cases.items():
        x[0, :7] = x[0, 0]  # ties and exact halves
        np.save(tmp_path / f"{name}.npy", x)
    calls = {"avg": "fastpool.avg_pool(x, 2)",
             "median": "fastpool.median_pool(x, 3, 2)"}
    code = ("import numpy as np, fastpool, sys; d = sys.argv[1]\n"
            f"for n in {tuple(cases)!r}:\n"
            "    x = np.load(f'{d}/{n}.npy')\n"
            + "".join(f"    np.save(f'{{d}}/{{n}}_{m}.npy', {c})\n"
                      for m, c in calls.items()))
    env = dict(os.environ, FASTPOOL_SIMD="avx2")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True)
    for name, x in cases.items():
        for method, call in calls.items():
            here = eval(call, {"fastpool": fastpool, "x": x})
            there = np.load(tmp_path / f"{name}_{method}.npy")
            assert here.tobytes() == there.tobytes(), (name, method)


@avx2
@pytest.mark.parametrize("method", ["max", "min", "avg", "sum"])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
def test_streaming_pair_loops_equal_baseline_bitwise(monkeypatch, method, nan_policy):
    """Float32 2x2 and 2x2x2 windows take the AVX2 loops that stream whole rows
    (``fp_sum2x2_f32``, ``fp_extrema2x2_f32``; max and min on rows longer than a
    block, sums and means on short rows too): the same bits as the portable
    loops (-0.0, infinities, subnormals and NaN included; a window of -0.0 sums
    to +0.0 on every path), at 1 and 2 threads, and the independent reference's
    values."""
    from reference import ref
    rng = np.random.default_rng(5)
    # (huge values only for max and min: their sums depend on the order of adding)
    huge = [3e38, -3e38] if method in ("max", "min") else []
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45] + huge, np.float32)
    geometries = [((6, 263), dict(size=2)),                       # 131 outputs a row
                  ((5, 301), dict(size=2, padding=1)),            # edge windows too
                  ((3, 4, 1031), dict(size=2, ceil_mode=True)),   # 2x2x2, odd tail
                  ((2, 4, 6, 290), dict(size=2, axes=(1, 2, 3))),
                  ((4, 6, 300), dict(size=(2, 2), stride=2, padding=(1, 1), axes=(1, 2))),
                  ((3, 8, 100), dict(size=2, axes=(1, 2))),       # short rows (NCHW)
                  ((2, 4, 6, 70), dict(size=2, axes=(1, 2, 3)))]
    func = getattr(fastpool, f"{method}_pool")
    for shape, kw in geometries:
        x = rng.standard_normal(shape).astype(np.float32)
        hit = rng.random(shape) < 0.1
        x[hit] = rng.choice(specials, int(hit.sum()))
        x[..., :40] = -0.0
        kw = dict(kw, nan_policy=nan_policy)
        results = {}
        for variant in ("baseline", "avx2"):
            _use(monkeypatch, variant)
            for workers in (1, 2):
                results[variant, workers] = func(x, workers=workers, **kw)
        want, _ = ref(x, method, **kw)
        for key, got in results.items():
            assert got.dtype == want.dtype, key
            if method in ("max", "min"):
                assert got.tobytes() == results["baseline", 1].tobytes(), (key, shape)
                np.testing.assert_array_equal(got, want, err_msg=str((key, shape)))
            else:
                # NaN from inf - inf has no sign or payload that every path agrees on
                a, b = got.view(np.uint32), results["baseline", 1].view(np.uint32)
                np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
                assert np.array_equal(a[~np.isnan(got)], b[~np.isnan(got)]), (key, shape)
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
                assert not np.signbit(got[..., :15]).any(), (key, shape)
