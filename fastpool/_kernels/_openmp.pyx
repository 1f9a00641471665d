"""Build and machine facts: OpenMP, its default team size, the CPU's SIMD level."""

cdef extern from "_fastpool.h":
    int fp_openmp_enabled() nogil
    int fp_max_threads() nogil
    int fp_cpu_has_avx2() nogil
    int fp_cpu_has_avx512() nogil


def openmp_enabled():
    """True when fastpool's kernels were compiled with OpenMP (parallel).

    Examples
    --------
    >>> import fastpool
    >>> fastpool.openmp_enabled() in (True, False)
    True
    """
    return bool(fp_openmp_enabled())


def max_threads():
    """OpenMP's default number of threads (``omp_get_max_threads``)."""
    return fp_max_threads()


def cpu_has_avx2():
    """True when the CPU running this process has AVX2."""
    return bool(fp_cpu_has_avx2())


def cpu_has_avx512():
    """True when the CPU has the AVX-512 subsets (F, BW, DQ, VL) that the 512-bit
    loops of the AVX2 build use."""
    return bool(fp_cpu_has_avx512())
