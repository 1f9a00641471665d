"""Whether the kernels were built with OpenMP, and its default team size."""

cdef extern from "_fastpool.h":
    int fp_openmp_enabled() nogil
    int fp_max_threads() nogil


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
