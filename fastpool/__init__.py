"""fastpool: fast N-dimensional pooling (block reduction / downsampling) of NumPy arrays."""

from ._kernels._openmp import openmp_enabled
from ._order import median_pool, mode_pool, percentile_pool, rank_pool
from ._pool import avg_pool, max_pool, max_unpool, min_pool, sum_pool
from ._support import get_workers, set_workers

__version__ = "0.1.0"

__all__ = [
    "avg_pool",
    "get_workers",
    "max_pool",
    "max_unpool",
    "median_pool",
    "min_pool",
    "mode_pool",
    "openmp_enabled",
    "percentile_pool",
    "rank_pool",
    "set_workers",
    "sum_pool",
]
