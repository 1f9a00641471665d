"""fastpool: fast N-dimensional pooling (block reduction / downsampling) of NumPy arrays."""

from ._beyond import (Pyramid, adaptive_avg_pool, adaptive_max_pool, adaptive_pool,
                      fractional_max_pool, global_avg_pool, global_max_pool,
                      global_pool, pyramid)
from ._kernels._openmp import openmp_enabled
from ._order import median_pool, mode_pool, percentile_pool, rank_pool
from ._pool import avg_pool, max_pool, max_unpool, min_pool, sum_pool
from ._support import get_workers, set_workers
from ._zarr import to_zarr_pyramid
from ._weighted import (avgmax_pool, blur_pool, catavgmax_pool, dpp_pool, generic_pool,
                        lip_pool, lp_pool, maxblur_pool, mixed_pool, soft_pool,
                        stochastic_pool, weighted_pool)

# After the forward functions: fastpool.grad mirrors their signatures.
from . import grad  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Pyramid",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "adaptive_pool",
    "avg_pool",
    "avgmax_pool",
    "blur_pool",
    "catavgmax_pool",
    "dpp_pool",
    "fractional_max_pool",
    "generic_pool",
    "get_workers",
    "global_avg_pool",
    "global_max_pool",
    "global_pool",
    "lip_pool",
    "lp_pool",
    "max_pool",
    "max_unpool",
    "maxblur_pool",
    "median_pool",
    "min_pool",
    "mixed_pool",
    "mode_pool",
    "openmp_enabled",
    "percentile_pool",
    "pyramid",
    "rank_pool",
    "set_workers",
    "soft_pool",
    "stochastic_pool",
    "sum_pool",
    "to_zarr_pyramid",
    "weighted_pool",
]
