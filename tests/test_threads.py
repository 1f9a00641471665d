"""Threads: results do not depend on `workers`, defaults, concurrency, threadpoolctl."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastpool

METHODS = ("max", "min", "avg", "sum")
WORKERS = (1, 2, 3, -1, None)


def pool(method, x, size, **kw):
    return getattr(fastpool, f"{method}_pool")(x, size, **kw)


def bitwise_equal(a, b):
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def big_arrays():
    rng = np.random.default_rng(2024)
    f64 = rng.standard_normal((512, 512))
    f64[rng.random(f64.shape) < 0.01] = np.nan
    f32 = rng.standard_normal((4, 64, 64, 64)).astype(np.float32)
    u8 = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    i64 = rng.integers(-(2**40), 2**40, (512, 512))
    return {"f64": f64, "f32": f32, "u8": u8, "i64": i64}


CASES = [
    ("f64", dict(size=2)),
    ("f64", dict(size=3, stride=1, padding=1, mode="reflect", nan_policy="omit")),
    ("f64", dict(size=(3, 5), stride=(2, 3), dilation=(2, 1), ceil_mode=True)),
    ("f32", dict(size=2, axes=(1, 2, 3))),
    ("f32", dict(size=3, stride=2, padding=1, axes=(-3, -1), mode="constant", cval=0.5)),
    ("u8", dict(size=4, stride=3, padding=2, mode="wrap")),
    ("i64", dict(size=(2, 7), stride=1, axes=(0, 1), nodata=0)),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("key, kw", CASES)
def test_bitwise_identical_for_every_workers(big_arrays, method, key, kw):
    x = big_arrays[key]
    kw = dict(kw)
    size = kw.pop("size")
    base = pool(method, x, size, workers=1, **kw)
    for w in WORKERS[1:] * 2:  # twice: races need not show up on every call
        assert bitwise_equal(pool(method, x, size, workers=w, **kw), base), w
    if method in ("max", "min"):
        v1, i1 = pool(method, x, size, workers=1, return_indices=True, **kw)
        assert bitwise_equal(v1, base)
        for w in (2, -1, None):
            v, i = pool(method, x, size, workers=w, return_indices=True, **kw)
            assert bitwise_equal(v, v1) and bitwise_equal(i, i1), w


@pytest.mark.parametrize("workers", WORKERS)
def test_parallel_results_are_right(big_arrays, workers):
    """Independent vectorised NumPy checks of the (possibly parallel) result."""
    x = big_arrays["f32"]
    blocks = x.reshape(4, 32, 2, 32, 2, 32, 2)
    np.testing.assert_array_equal(fastpool.max_pool(x, 2, axes=(1, 2, 3), workers=workers),
                                  blocks.max(axis=(2, 4, 6)))
    np.testing.assert_array_equal(fastpool.min_pool(x, 2, axes=(1, 2, 3), workers=workers),
                                  blocks.min(axis=(2, 4, 6)))
    exp = blocks.astype(np.float64).sum(axis=(2, 4, 6))
    np.testing.assert_allclose(fastpool.sum_pool(x, 2, axes=(1, 2, 3), workers=workers),
                               exp.astype(np.float32), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fastpool.avg_pool(x, 2, axes=(1, 2, 3), workers=workers),
                               (exp / 8).astype(np.float32), rtol=1e-6, atol=1e-7)
    u = big_arrays["u8"]
    ub = u.reshape(128, 4, 128, 4)
    np.testing.assert_array_equal(fastpool.sum_pool(u, 4, workers=workers),
                                  ub.sum(axis=(1, 3), dtype=np.uint64))
    # means of 16 uint8 values, rounded half to even
    np.testing.assert_array_equal(fastpool.avg_pool(u, 4, workers=workers),
                                  np.round(ub.sum(axis=(1, 3)) / 16).astype(np.uint8))
    v, i = fastpool.max_pool(u, 4, workers=workers, return_indices=True)
    np.testing.assert_array_equal(u.ravel()[i], v)
    np.testing.assert_array_equal(v, ub.max(axis=(1, 3)))


def test_set_workers_context_manager_restores():
    before = fastpool.get_workers()
    assert isinstance(before, int) and (before >= 1 or before == -1)
    with fastpool.set_workers(1):
        assert fastpool.get_workers() == 1
        with fastpool.set_workers(2):
            assert fastpool.get_workers() == 2
        assert fastpool.get_workers() == 1
    assert fastpool.get_workers() == before
    # restored on an exception too
    with pytest.raises(RuntimeError):
        with fastpool.set_workers(3):
            assert fastpool.get_workers() == 3
            raise RuntimeError("boom")
    assert fastpool.get_workers() == before


def test_set_workers_plain_call():
    before = fastpool.get_workers()
    try:
        fastpool.set_workers(3)
        assert fastpool.get_workers() == 3
        x = np.random.default_rng(0).standard_normal((300, 300))
        assert bitwise_equal(fastpool.avg_pool(x, 3), fastpool.avg_pool(x, 3, workers=1))
    finally:
        fastpool.set_workers(None)  # back to OpenMP's default, not a pinned count
    assert fastpool.get_workers() == before


def test_default_workers_is_all_cores():
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    # default unless limited by set_workers or threadpoolctl
    assert fastpool.get_workers() in (cores, os.cpu_count(), -1)


def test_concurrent_calls_from_threads(big_arrays):
    x = big_arrays["f64"]
    x32 = big_arrays["f32"]
    jobs = []
    for method in METHODS:
        jobs.append((method, x, 3, dict(stride=2, padding=1, mode="mirror", nan_policy="omit")))
        jobs.append((method, x32, 2, dict(axes=(1, 2, 3))))
        jobs.append((method, big_arrays["u8"], (3, 2), dict(ceil_mode=True)))
    jobs.append(("max", x, 2, dict(return_indices=True)))
    serial = [pool(m, a, s, **kw) for m, a, s, kw in jobs]
    start = threading.Barrier(8)

    def run(j):
        if j < 8:
            start.wait()  # make the first calls really overlap
        m, a, s, kw = jobs[j % len(jobs)]
        return j % len(jobs), pool(m, a, s, **kw)

    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(run, range(4 * len(jobs))))
    for j, r in results:
        exp = serial[j]
        if isinstance(exp, tuple):
            assert bitwise_equal(r[0], exp[0]) and bitwise_equal(r[1], exp[1])
        else:
            assert bitwise_equal(r, exp), jobs[j][0]


def test_concurrent_calls_with_workers_argument(big_arrays):
    x = big_arrays["f64"]
    serial = fastpool.max_pool(x, 3, 1, padding=1, workers=1)
    with ThreadPoolExecutor(max_workers=8) as ex:
        futs = [ex.submit(fastpool.max_pool, x, 3, 1, padding=1, workers=w)
                for w in (1, 2, -1, None) * 4]
        for fut in futs:
            assert bitwise_equal(fut.result(), serial)


def test_openmp_enabled():
    assert fastpool.openmp_enabled()


def test_threadpoolctl_limits(big_arrays):
    x = big_arrays["f64"]
    default = fastpool.get_workers()
    expected = fastpool.avg_pool(x, 4, workers=1)
    with threadpool_limits(1):
        got = fastpool.avg_pool(x, 4)
        got_omp = fastpool.avg_pool(x, 4, workers=2)
    assert bitwise_equal(got, expected)
    assert bitwise_equal(got_omp, expected)
    with threadpool_limits(limits=1, user_api="openmp"):
        assert bitwise_equal(fastpool.avg_pool(x, 4), expected)
        # threadpoolctl reaches fastpool's own OpenMP runtime
        assert fastpool.get_workers() == 1
    assert bitwise_equal(fastpool.avg_pool(x, 4), expected)
    assert fastpool.get_workers() == default
