"""Threads, leaks and huge index arithmetic (docs/reliability.md)."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastpool

RNG = np.random.default_rng(7)
IMAGE = RNG.random((3, 96, 80)).astype(np.float32)
IMAGE.flags.writeable = False
LABELS = RNG.integers(0, 5, (3, 96, 80)).astype(np.uint16)
LABELS.flags.writeable = False

CALLS = {
    "max": lambda: fastpool.max_pool(IMAGE, 3, 2, padding=1, axes=(1, 2),
                                     return_indices=True),
    "avg": lambda: fastpool.avg_pool(IMAGE, 2, mode="reflect", padding=1, axes=(1, 2)),
    "median": lambda: fastpool.median_pool(IMAGE, 3, axes=(1, 2)),
    "mode": lambda: fastpool.mode_pool(LABELS, 9, axes=(1, 2)),
    "soft": lambda: fastpool.soft_pool(IMAGE, 3, 1, axes=(1, 2)),
    "stochastic": lambda: fastpool.stochastic_pool(IMAGE, 2, seed=3, axes=(1, 2)),
    "lp": lambda: fastpool.lp_pool(IMAGE, 3, 2, axes=(1, 2)),
    "adaptive": lambda: fastpool.adaptive_pool(IMAGE, (7, 9), "dpp", axes=(1, 2)),
    "global": lambda: fastpool.global_pool(IMAGE, "median", axes=(1, 2)),
    "pyramid": lambda: tuple(fastpool.pyramid(LABELS, 2, method="mode", axes=(1, 2))),
    "grad": lambda: fastpool.grad.max_pool(np.ones((3, 48, 40)), IMAGE, 3, 2, padding=1,
                                           axes=(1, 2)),
}


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def test_threads_share_inputs():
    """Eight Python threads calling every function on shared read-only inputs at
    once (each with two kernel threads) give the serial results, bitwise."""
    serial = {name: call() for name, call in CALLS.items()}
    jobs = [name for name in CALLS for _ in range(6)]
    with fastpool.set_workers(2), ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda name: (name, CALLS[name]()), jobs))
    for name, result in results:
        assert _same(result, serial[name]), name


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _failing():
    with pytest.raises(ValueError):
        fastpool.avg_pool(IMAGE, 0)
    with pytest.raises(TypeError):
        fastpool.max_pool(IMAGE.astype(np.complex64), 2)


@pytest.mark.parametrize("name", ["max", "mode", "soft", "stochastic", "grad", "errors"])
def test_no_leak(name):
    """Repeated calls (10,000 of the error paths; as many of the others as run in
    a second or two) leave traced Python memory and the RSS flat."""
    call = _failing if name == "errors" else CALLS[name]
    small = {"max": 2000, "mode": 300, "soft": 1000, "stochastic": 2000, "grad": 500,
             "errors": 10000}[name]
    for _ in range(100):
        call()
    gc.collect()
    tracemalloc.start()
    before_traced = tracemalloc.get_traced_memory()[0]
    before_rss = _rss()
    for _ in range(small):
        call()
    gc.collect()
    grown_traced = tracemalloc.get_traced_memory()[0] - before_traced
    tracemalloc.stop()
    grown_rss = _rss() - before_rss
    assert grown_traced < 64 * 1024, grown_traced
    assert grown_rss < 8 * 1024 * 1024, grown_rss


def test_index_arithmetic_past_2_31():
    """A (65537, 65536) view of 2**32 elements (zero stride down the rows, so it
    takes 256 KiB): maxima, their flat indices past 2**31, and sums."""
    row = np.arange(2**16, dtype=np.float32)
    big = as_strided(row, (2**16 + 1, 2**16), (0, 4), writeable=False)
    values, indices = fastpool.max_pool(big, (1, 2**16), return_indices=True)
    assert values.shape == (2**16 + 1, 1)
    assert (values == 2**16 - 1).all()
    expected = np.arange(2**16 + 1, dtype=np.int64) * 2**16 + 2**16 - 1
    np.testing.assert_array_equal(indices[:, 0], expected)
    assert indices.max() > 2**32
    total = fastpool.global_pool(big, "sum", axes=(0, 1))
    assert total == (2**16 + 1) * (2**16 - 1) * 2**16 / 2


def test_interrupt_leaves_process_usable():
    """SIGINT during a long kernel call: KeyboardInterrupt once the call returns
    to Python, and the process pools correctly afterwards."""
    code = textwrap.dedent("""
        import sys, time, numpy as np, fastpool
        x = np.random.default_rng(0).random((8, 512, 512)).astype(np.float32)
        print("ready", flush=True)
        try:
            for _ in range(200):
                fastpool.median_pool(x, 5, 1, workers=2)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        small = np.arange(16.0).reshape(4, 4)
        print(fastpool.max_pool(small, 2).tolist(), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert out.split("\n")[:2] == ["interrupted", "[[5.0, 7.0], [13.0, 15.0]]"]


def test_concurrent_calls_share_the_cores():
    """Calls running at once from several Python threads share the default
    threads (no oversubscription); a lone call, and an explicit ``workers``, get
    what they ask."""
    import threading
    cores = fastpool.get_workers()
    barrier = threading.Barrier(4)
    seen = []

    def window(values):
        barrier.wait(timeout=30)     # all four calls are running now
        seen.append((fastpool.get_workers(), fastpool._support.resolve_workers(3)))
        barrier.wait(timeout=30)     # and stay so until each has looked
        return 0.0

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: fastpool.generic_pool(np.ones(2), window, 2), range(4)))
    assert seen == [(max(1, cores // 4), 3)] * 4
    alone = []
    fastpool.generic_pool(np.ones(2), lambda v: alone.append(fastpool.get_workers()) or 0,
                          2)
    assert alone == [cores] and fastpool.get_workers() == cores


def test_axis_longer_than_2_31(tmp_path):
    """One axis of 2**31 + 16 elements (a sparse memory-mapped file: 2 GiB that
    take no memory): the global maximum and its index past 2**31."""
    n = 2**31 + 16
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(n)
    m = np.memmap(path, dtype=np.uint8, mode="r+", shape=(n,))
    m[2**31 + 3] = 5
    m[n - 1] = 7
    m.flush()
    del m
    big = np.memmap(path, dtype=np.uint8, mode="r", shape=(n,))
    value, index = fastpool.global_max_pool(big, return_indices=True)
    assert value == 7 and index == n - 1
