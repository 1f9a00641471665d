"""max_unpool: scatter pooled values to the positions their indices name."""

from cython.parallel cimport prange
from libc.stdint cimport int64_t

cimport numpy as cnp

from ._common cimport MAX_DIMS, T

cnp.import_array()


def unpool(const T[:, ::1] values, const int64_t[:, ::1] indices, cnp.ndarray out,
           int nthreads):
    """``out[b, unravel(indices[b, m])] = values[b, m]`` for every ``b`` and ``m``.

    ``out`` is a zero-filled (batch, *pooled) view of any strides; the indices are
    valid flat indices over its pooled shape (checked by the caller).  Batches run
    in parallel; within one, later elements overwrite earlier ones (C order), so the
    result does not depend on the thread count.
    """
    cdef Py_ssize_t nb = values.shape[0], m = values.shape[1], d = out.ndim - 1
    cdef Py_ssize_t b, i, a
    cdef int64_t shape[MAX_DIMS]
    cdef int64_t stride[MAX_DIMS]
    cdef int64_t f, off
    cdef T* base = <T*>cnp.PyArray_DATA(out)
    for a in range(d + 1):
        shape[a] = out.shape[a]
        stride[a] = out.strides[a] // out.itemsize
    with nogil:
        for b in prange(nb, schedule="static", num_threads=nthreads):
            for i in range(m):
                f = indices[b, i]
                off = b * stride[0]
                for a in range(d, 0, -1):
                    off = off + (f % shape[a]) * stride[a]
                    f = f // shape[a]
                base[off] = values[b, i]
