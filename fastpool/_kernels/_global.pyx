"""Whole-run reductions for global pooling: sums (with valid counts) and extrema
(with the first index) of every batch item's pooled elements.

Each item's run is cut into blocks of BLOCK elements whatever the thread count, and
every block is reduced on its own (interleaved lanes, merged in a fixed order), so
one item keeps every thread busy and the result does not depend on how many there
are.  The caller merges the per-block partials in block order.  Blocks are dealt
out statically: each thread then streams one contiguous stretch of memory (dynamic
chunks interleaved the threads block by block and scaled 1.3x on 2 cores, static
1.9x).
"""

from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t
from libc.math cimport NAN

cimport numpy as cnp

from ._common cimport Dir, MaxTag, MinTag, T, fp_prefetch, highest, lowest, select

cnp.import_array()

cdef extern from "_fastpool.h":
    int FP_STREAM_AHEAD
    void fp_lanes_max_f32(const float* p, Py_ssize_t blocks, float* lanes,
                          int* nans) noexcept nogil
    void fp_lanes_min_f32(const float* p, Py_ssize_t blocks, float* lanes,
                          int* nans) noexcept nogil
    void fp_lanes_max_f64(const double* p, Py_ssize_t blocks, double* lanes,
                          int* nans) noexcept nogil
    void fp_lanes_min_f64(const double* p, Py_ssize_t blocks, double* lanes,
                          int* nans) noexcept nogil
    void fp_byte_lanes_max_u8(const uint8_t* p, Py_ssize_t blocks, int has_nd, uint8_t nd,
                              uint8_t worst, uint8_t* lanes, long long* missing) noexcept nogil
    void fp_byte_lanes_min_u8(const uint8_t* p, Py_ssize_t blocks, int has_nd, uint8_t nd,
                              uint8_t worst, uint8_t* lanes, long long* missing) noexcept nogil
    void fp_byte_lanes_max_i8(const int8_t* p, Py_ssize_t blocks, int has_nd, int8_t nd,
                              int8_t worst, int8_t* lanes, long long* missing) noexcept nogil
    void fp_byte_lanes_min_i8(const int8_t* p, Py_ssize_t blocks, int has_nd, int8_t nd,
                              int8_t worst, int8_t* lanes, long long* missing) noexcept nogil
    void fp_byte_sums_u8(const uint8_t* p, Py_ssize_t blocks, int has_nd, uint8_t nd,
                         long long* sum, long long* missing) noexcept nogil
    void fp_byte_sums_i8(const int8_t* p, Py_ssize_t blocks, int has_nd, int8_t nd,
                         long long* sum, long long* missing) noexcept nogil
    void fp_masked_lanes_max_f32(const float* p, Py_ssize_t blocks, int omit, int has_nd,
                                 float nd, float* lanes, int* counts, int* nans) noexcept nogil
    void fp_masked_lanes_min_f32(const float* p, Py_ssize_t blocks, int omit, int has_nd,
                                 float nd, float* lanes, int* counts, int* nans) noexcept nogil
    void fp_masked_lanes_max_f64(const double* p, Py_ssize_t blocks, int omit, int has_nd,
                                 double nd, double* lanes, int* counts,
                                 int* nans) noexcept nogil
    void fp_masked_lanes_min_f64(const double* p, Py_ssize_t blocks, int omit, int has_nd,
                                 double nd, double* lanes, int* counts,
                                 int* nans) noexcept nogil
    void fp_masked_sums_f32(const float* p, Py_ssize_t blocks, int omit, int has_nd,
                            float nd, double* sums, int* counts) noexcept nogil
    void fp_masked_sums_f64(const double* p, Py_ssize_t blocks, int omit, int has_nd,
                            double nd, double* sums, int* counts) noexcept nogil

cdef enum:
    BLOCK = 32768   # elements per partial: fixed, so results never depend on threads
    LANES = 8       # extrema (fp_lanes_* in _fastpool.h hold 8 per vector)
    BYTE_LANES = 64  # extrema of one-byte integers: a vector of 64 bytes
    SUM_LANES = 16  # sums: four double vectors in flight hide the add latency

BLOCK_LENGTH = BLOCK


cdef inline bint missing(T v, bint omit, bint has_nd, T nd) noexcept nogil:
    # Bitwise, not short-circuit: the chunk loops stay free of branches.
    return (omit & (v != v)) | (has_nd & (v == nd))


cdef inline T worst(Dir tag, T kind) noexcept nogil:
    """The identity of the extremum: the lowest value for max, the highest for min."""
    if Dir is MaxTag:
        return lowest(kind)
    else:
        return highest(kind)


cdef inline void masked_sum_chunk(const T* q, int64_t s, Py_ssize_t k, bint omit,
                                  bint has_nd, T nd, double* fa, int64_t* ia,
                                  int32_t* sa, int* na) noexcept nogil:
    """Lane ``j < k`` adds ``q[j * s]`` unless it is missing, and counts it.
    8- and 16-bit integers add in int32 (``sa``): a lane adds BLOCK / SUM_LANES
    of them, exact, and int32 vectors are four times as wide as int64."""
    cdef Py_ssize_t j
    cdef T v
    cdef bint ok
    for j in range(k):
        v = q[j * s]
        ok = not missing(v, omit, has_nd, nd)
        if T is float or T is double:
            fa[j] += <double>select(ok, v, <T>0)
        elif T is uint8_t or T is int8_t or T is uint16_t or T is int16_t:
            sa[j] += <int32_t>select(ok, v, <T>0)
        else:
            ia[j] += <int64_t>select(ok, v, <T>0)
        na[j] += ok


cdef void block_sum(const T* p, Py_ssize_t n, int64_t s, bint omit, bint has_nd, T nd,
                    double* fsum, int64_t* isum, int64_t* count) noexcept nogil:
    """Sum (as double for floats, int64 for integers) and valid count of ``n``
    elements ``p[i * s]``."""
    cdef double fa[SUM_LANES]
    cdef int64_t ia[SUM_LANES]
    cdef int na[SUM_LANES]
    cdef int32_t sa[SUM_LANES]
    cdef int64_t ca[SUM_LANES]
    cdef Py_ssize_t i, j, m = n - n % SUM_LANES
    cdef const T* q
    cdef long long byte_sum = 0, gone = 0
    if T is uint8_t or T is int8_t:
        if s == 1:
            # Integer sums are exact in any order: whole vectors of bytes (psadbw),
            # with or without nodata (an integer is never NaN, so 'omit' is moot).
            m = n - n % 32
            if T is uint8_t:
                fp_byte_sums_u8(p, m // 32, has_nd, nd, &byte_sum, &gone)
            elif T is int8_t:
                fp_byte_sums_i8(p, m // 32, has_nd, nd, &byte_sum, &gone)
            for i in range(m, n):
                if has_nd and p[i] == nd:
                    gone += 1
                else:
                    byte_sum += p[i]
            fsum[0] = 0.0
            isum[0] = byte_sum
            count[0] = n - gone
            return
    for j in range(SUM_LANES):
        fa[j] = 0.0
        ia[j] = 0
        na[j] = 0
        sa[j] = 0
        ca[j] = 0
    if not (omit or has_nd):
        if s == 1 and (T is uint8_t or T is int8_t or T is uint16_t or T is int16_t):
            # A lane adds BLOCK / SUM_LANES values of at most 16 bits: int32 is exact
            # and four times as wide a vector as int64.
            for i in range(m // SUM_LANES):
                q = p + i * SUM_LANES
                for j in range(SUM_LANES):
                    sa[j] += <int32_t>q[j]
            for j in range(SUM_LANES):
                ia[j] = sa[j]
        elif s == 1:
            for i in range(m // SUM_LANES):
                q = p + i * SUM_LANES
                fp_prefetch(<const char*>q + FP_STREAM_AHEAD)
                if sizeof(T) == 8:
                    fp_prefetch(<const char*>q + FP_STREAM_AHEAD + 64)
                for j in range(SUM_LANES):
                    if T is float or T is double:
                        fa[j] += <double>q[j]
                    else:
                        ia[j] += <int64_t>q[j]
        else:
            for i in range(m // SUM_LANES):
                q = p + i * SUM_LANES * s
                for j in range(SUM_LANES):
                    if T is float or T is double:
                        fa[j] += <double>q[j * s]
                    else:
                        ia[j] += <int64_t>q[j * s]
        for i in range(m, n):
            if T is float or T is double:
                fa[i - m] += <double>p[i * s]
            else:
                ia[i - m] += <int64_t>p[i * s]
        ca[0] = n
    else:
        # The plain loop's lanes (an element's place modulo SUM_LANES), added in
        # the same order, so the bits are those of a run without missing values;
        # whole chunks let the compiler keep the lanes in vectors.
        if s == 1 and (T is float or T is double):
            if T is float:
                fp_masked_sums_f32(p, m // SUM_LANES, omit, has_nd, nd, fa, na)
            elif T is double:
                fp_masked_sums_f64(p, m // SUM_LANES, omit, has_nd, nd, fa, na)
        elif s == 1:
            for i in range(m // SUM_LANES):
                masked_sum_chunk(p + i * SUM_LANES, 1, SUM_LANES, omit, has_nd, nd,
                                 fa, ia, sa, na)
        else:
            for i in range(m // SUM_LANES):
                masked_sum_chunk(p + i * SUM_LANES * s, s, SUM_LANES, omit, has_nd, nd,
                                 fa, ia, sa, na)
        masked_sum_chunk(p + m * s, s, n - m, omit, has_nd, nd, fa, ia, sa, na)
        for j in range(SUM_LANES):
            ca[j] = na[j]
            if T is uint8_t or T is int8_t or T is uint16_t or T is int16_t:
                ia[j] = sa[j]
    merge_lanes(fa, ia, ca, fsum, isum, count)


cdef inline void merge_lanes(double* fa, int64_t* ia, int64_t* ca, double* fsum,
                             int64_t* isum, int64_t* count) noexcept nogil:
    """The lanes added pairwise, in a fixed order."""
    cdef Py_ssize_t i, j = SUM_LANES
    while j > 1:
        j //= 2
        for i in range(j):
            fa[i] = fa[i] + fa[i + j]
            ia[i] = ia[i] + ia[i + j]
            ca[i] = ca[i] + ca[i + j]
    fsum[0] = fa[0]
    isum[0] = ia[0]
    count[0] = ca[0]


cdef void block_sum_nd(const T* p, Py_ssize_t d, const int64_t* shape,
                       const int64_t* strides, Py_ssize_t start, Py_ssize_t n,
                       bint omit, bint has_nd, T nd, double* fsum, int64_t* isum,
                       int64_t* count) noexcept nogil:
    """:func:`block_sum` of the elements ``start .. start + n`` in C order of ``d``
    axes of any strides: the same lanes (the element's place in its block modulo
    SUM_LANES), added in the same order, so a layout that is not one run gives
    the same bits."""
    cdef double fa[SUM_LANES]
    cdef int64_t ia[SUM_LANES]
    cdef int64_t ca[SUM_LANES]
    cdef int64_t idx[64]
    cdef int64_t rem = start, off, last = shape[d - 1], step = strides[d - 1]
    cdef Py_ssize_t a, j, lane, c, seg, done = 0
    cdef const T* row
    cdef T v
    cdef bint ok
    for j in range(SUM_LANES):
        fa[j] = 0.0
        ia[j] = 0
        ca[j] = 0
    for a in range(d - 1, -1, -1):
        idx[a] = rem % shape[a]
        rem = rem // shape[a]
    while done < n:
        off = 0
        for a in range(d - 1):
            off += idx[a] * strides[a]
        row = p + off
        c = idx[d - 1]
        seg = min(last - c, n - done)
        for j in range(seg):
            v = row[(c + j) * step]
            lane = (done + j) % SUM_LANES
            ok = not missing(v, omit, has_nd, nd)
            if T is float or T is double:
                fa[lane] += <double>select(ok, v, <T>0)
            else:
                ia[lane] += <int64_t>select(ok, v, <T>0)
            ca[lane] += ok
        done += seg
        idx[d - 1] = 0
        a = d - 2
        while a >= 0:
            idx[a] += 1
            if idx[a] < shape[a]:
                break
            idx[a] = 0
            a -= 1
    merge_lanes(fa, ia, ca, fsum, isum, count)


cdef inline T larger(T a, T v, Dir tag) noexcept nogil:
    """``v`` where it beats ``a``, else ``a`` (a NaN never beats: the caller counts
    NaNs separately, which keeps the loop a compare and a blend)."""
    if Dir is MaxTag:
        return select(v > a, v, a)
    else:
        return select(v < a, v, a)


cdef inline void masked_extremum_chunk(const T* q, int64_t s, Py_ssize_t k, bint omit,
                                       bint has_nd, T nd, T* la, int* ca,
                                       int* nans, Dir tag) noexcept nogil:
    """Lane ``j < k`` takes ``q[j * s]`` unless it is missing, and counts it (and
    its NaNs)."""
    cdef Py_ssize_t j
    cdef T v
    cdef bint ok
    for j in range(k):
        v = q[j * s]
        ok = not missing(v, omit, has_nd, nd)
        la[j] = select(ok, larger(la[j], v, tag), la[j])
        if T is float or T is double:
            nans[j] += ok & (v != v)
        ca[j] += ok


cdef inline void byte_extremum(const T* p, Py_ssize_t n, bint has_nd, T nd,
                               T* la, int* ca, int* nans, Dir tag) noexcept nogil:
    """The lanes and counts of :func:`block_extremum` for a run of one-byte
    integers, in 64 byte lanes (eight lanes would fill an eighth of a vector);
    with ``has_nd`` the nodata bytes take the identity's value, and are not
    counted."""
    cdef T wide[BYTE_LANES]
    cdef Py_ssize_t j, m = n - n % BYTE_LANES
    cdef long long gone = 0
    for j in range(BYTE_LANES):
        wide[j] = la[0]
    if T is uint8_t:
        if Dir is MaxTag:
            fp_byte_lanes_max_u8(p, m // BYTE_LANES, has_nd, nd, la[0], wide, &gone)
        else:
            fp_byte_lanes_min_u8(p, m // BYTE_LANES, has_nd, nd, la[0], wide, &gone)
    elif T is int8_t:
        if Dir is MaxTag:
            fp_byte_lanes_max_i8(p, m // BYTE_LANES, has_nd, nd, la[0], wide, &gone)
        else:
            fp_byte_lanes_min_i8(p, m // BYTE_LANES, has_nd, nd, la[0], wide, &gone)
    for j in range(BYTE_LANES):
        la[j % LANES] = larger(la[j % LANES], wide[j], tag)
    ca[0] = <int>(m - gone)
    while m < n:
        masked_extremum_chunk(p + m, 1, min(<Py_ssize_t>LANES, n - m), False, has_nd, nd,
                              la, ca, nans, tag)
        m += LANES


cdef void block_extremum(const T* p, Py_ssize_t n, int64_t s, bint omit, bint has_nd,
                         T nd, T* val, int64_t* count, Dir tag) noexcept nogil:
    """Extremum of the valid elements among ``p[i * s]``, ``i < n``, and the
    valid count.  A NaN wins under 'propagate'.  No valid element: NaN (or
    nodata)."""
    cdef T la[LANES]
    cdef int ca[LANES]
    cdef int nans[LANES]
    cdef Py_ssize_t i, j, m = n - n % LANES
    cdef const T* q
    cdef T a
    cdef int64_t c = 0, nan_count = 0
    cdef bint byte_run
    for j in range(LANES):
        la[j] = worst(tag, nd)
        ca[j] = 0
        nans[j] = 0
    byte_run = False
    if T is uint8_t or T is int8_t:
        byte_run = s == 1
        if byte_run:
            byte_extremum(p, n, has_nd, nd, la, ca, nans, tag)
    if byte_run:
        pass
    elif not has_nd:
        # Without nodata every element counts but NaNs, which are counted: a NaN
        # never beats a lane value, so 'omit' takes the same loops.
        if s == 1 and (T is float or T is double):
            if T is float:
                if Dir is MaxTag:
                    fp_lanes_max_f32(p, m // LANES, la, nans)
                else:
                    fp_lanes_min_f32(p, m // LANES, la, nans)
            elif T is double:
                if Dir is MaxTag:
                    fp_lanes_max_f64(p, m // LANES, la, nans)
                else:
                    fp_lanes_min_f64(p, m // LANES, la, nans)
        elif s == 1:
            for i in range(m // LANES):
                q = p + i * LANES
                for j in range(LANES):
                    la[j] = larger(la[j], q[j], tag)
        else:
            for i in range(m // LANES):
                q = p + i * LANES * s
                for j in range(LANES):
                    la[j] = larger(la[j], q[j * s], tag)
                    if T is float or T is double:
                        nans[j] += q[j * s] != q[j * s]
        for i in range(m, n):
            a = p[i * s]
            la[(i - m) % LANES] = larger(la[(i - m) % LANES], a, tag)
            if T is float or T is double:
                nans[(i - m) % LANES] += a != a
        c = n
    else:
        if s == 1 and (T is float or T is double):
            if T is float:
                if Dir is MaxTag:
                    fp_masked_lanes_max_f32(p, m // LANES, omit, has_nd, nd, la, ca, nans)
                else:
                    fp_masked_lanes_min_f32(p, m // LANES, omit, has_nd, nd, la, ca, nans)
            elif T is double:
                if Dir is MaxTag:
                    fp_masked_lanes_max_f64(p, m // LANES, omit, has_nd, nd, la, ca, nans)
                else:
                    fp_masked_lanes_min_f64(p, m // LANES, omit, has_nd, nd, la, ca, nans)
        elif s == 1:
            for i in range(m // LANES):
                masked_extremum_chunk(p + i * LANES, 1, LANES, omit, has_nd, nd, la, ca,
                                      nans, tag)
        else:
            for i in range(m // LANES):
                masked_extremum_chunk(p + i * LANES * s, s, LANES, omit, has_nd, nd, la,
                                      ca, nans, tag)
        masked_extremum_chunk(p + m * s, s, n - m, omit, has_nd, nd, la, ca, nans, tag)
    a = la[0]
    for j in range(LANES):
        a = larger(a, la[j], tag)
        c += ca[j]
        nan_count += nans[j]
    if T is float or T is double:
        if omit:
            c -= nan_count   # without nodata, NaNs were counted as elements
        elif nan_count:
            a = <T>NAN
    count[0] = c
    if c == 0:
        if T is float or T is double:
            val[0] = nd if has_nd else <T>NAN
        else:
            val[0] = nd
        return
    val[0] = a


cdef Py_ssize_t first_of(const T* p, Py_ssize_t n, int64_t s, T a, bint omit,
                         bint has_nd, T nd) noexcept nogil:
    """Index of the first valid ``p[i * s]`` equal to ``a`` (NaN matches NaN)."""
    cdef Py_ssize_t i, c, m = n - n % 64
    cdef int hits
    cdef T v
    cdef bint nan_a = a != a
    if s == 1 and not (omit or has_nd):
        # Chunks of 64 tested without an early exit (a vector loop); the hit is
        # then looked for in its chunk only.
        for c in range(0, m, 64):
            hits = 0
            for i in range(c, c + 64):
                hits += (p[i] == a) | (nan_a & (p[i] != p[i]))
            if hits:
                break
        else:
            c = m
    else:
        c = 0
    for i in range(c, n):
        v = p[i * s]
        if missing(v, omit, has_nd, nd):
            continue
        if v == a or (nan_a and v != v):
            return i
    return 0


def global_sums(const T[:] dtype_tag, cnp.ndarray x, double[:, ::1] fsum,
                int64_t[:, ::1] isum, int64_t[:, ::1] count, bint omit, object nodata,
                int nthreads):
    """Per-block sums and valid counts of the items of ``x`` (nitems, n): one run
    per item, or (nitems, *pooled) of any strides, walked in C order.  Into
    ``fsum`` (float input) or ``isum`` (integer input) and ``count``, each
    (nitems, nblocks); the other sum array is left alone."""
    cdef Py_ssize_t nitems = x.shape[0], d = x.ndim - 1, a
    cdef Py_ssize_t nblocks = count.shape[1], t, b, k, total = nitems * nblocks
    cdef Py_ssize_t n = 1
    cdef int64_t sb = x.strides[0] // x.itemsize, s = x.strides[d] // x.itemsize
    cdef int64_t shape[64]
    cdef int64_t strides[64]
    cdef const T* base = <const T*>cnp.PyArray_DATA(x)
    cdef T nd = nodata if nodata is not None else 0
    cdef bint has_nd = nodata is not None
    cdef double* fp = &fsum[0, 0]
    cdef int64_t* ip = &isum[0, 0]
    cdef int64_t* cp = &count[0, 0]
    for a in range(d):
        shape[a] = x.shape[a + 1]
        strides[a] = x.strides[a + 1] // x.itemsize
        n *= shape[a]
    if total == 0:
        return
    with nogil:
        for t in prange(total, schedule="static", num_threads=nthreads):
            b = t // nblocks
            k = t - b * nblocks
            if d == 1:
                block_sum(base + b * sb + k * BLOCK * s,
                          min(<Py_ssize_t>BLOCK, n - k * BLOCK), s, omit, has_nd, nd,
                          fp + t, ip + t, cp + t)
            else:
                block_sum_nd(base + b * sb, d, shape, strides, k * BLOCK,
                             min(<Py_ssize_t>BLOCK, n - k * BLOCK), omit, has_nd, nd,
                             fp + t, ip + t, cp + t)


def global_extremum(const T[:] dtype_tag, bint is_min, cnp.ndarray x, T[:, ::1] val,
                    int64_t[:, ::1] count, bint omit, object nodata, int nthreads):
    """Per-block extrema and valid counts of the rows of ``x`` (nitems, n), any
    strides, each (nitems, nblocks)."""
    cdef Py_ssize_t nitems = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t nblocks = count.shape[1], t, b, k, total = nitems * nblocks
    cdef int64_t sb = x.strides[0] // x.itemsize, s = x.strides[1] // x.itemsize
    cdef const T* base = <const T*>cnp.PyArray_DATA(x)
    cdef T nd = nodata if nodata is not None else 0
    cdef bint has_nd = nodata is not None
    cdef T* vp = &val[0, 0]
    cdef int64_t* cp = &count[0, 0]
    cdef MaxTag mx
    cdef MinTag mn
    if total == 0:
        return
    with nogil:
        for t in prange(total, schedule="static", num_threads=nthreads):
            b = t // nblocks
            k = t - b * nblocks
            if is_min:
                block_extremum(base + b * sb + k * BLOCK * s,
                               min(<Py_ssize_t>BLOCK, n - k * BLOCK), s, omit, has_nd, nd,
                               vp + t, cp + t, mn)
            else:
                block_extremum(base + b * sb + k * BLOCK * s,
                               min(<Py_ssize_t>BLOCK, n - k * BLOCK), s, omit, has_nd, nd,
                               vp + t, cp + t, mx)


def merge_extrema(const T[:, ::1] val, const int64_t[:, ::1] count, bint is_min,
                  T[::1] best, int64_t[::1] first, uint8_t[:, ::1] hit):
    """Merges the per-block extrema of :func:`global_extremum` (nitems, nblocks)
    in block order: each item's extremum over the blocks with a valid element
    (a NaN wins, as in a window) into ``best``, which blocks hold it into
    ``hit``, and the first of them into ``first`` (-1, ``best`` left alone,
    where no block has a valid element)."""
    cdef Py_ssize_t nitems = val.shape[0], nblocks = val.shape[1], b, k
    cdef T v, m = 0
    cdef bint have, nan_wins
    for b in range(nitems):
        have = False
        nan_wins = False
        for k in range(nblocks):
            if count[b, k] <= 0:
                continue
            v = val[b, k]
            if v != v:
                m = v
                have = True
                nan_wins = True
                break
            if not have or (v < m if is_min else v > m):
                m = v
                have = True
        first[b] = -1
        for k in range(nblocks):
            v = val[b, k]
            hit[b, k] = count[b, k] > 0 and (v != v if nan_wins else v == m)
            if hit[b, k] and first[b] < 0:
                first[b] = k
        if have:
            best[b] = m


def global_first_index(const T[:] dtype_tag, cnp.ndarray x, const int64_t[::1] block,
                       const T[::1] value, int64_t[::1] index, bint omit, object nodata,
                       int nthreads):
    """For every row of ``x`` (nitems, n): the index of the first valid element
    equal to ``value`` in the row's block ``block`` (rows with block < 0 skipped)."""
    cdef Py_ssize_t nitems = x.shape[0], n = x.shape[1], b, k
    cdef int64_t sb = x.strides[0] // x.itemsize, s = x.strides[1] // x.itemsize
    cdef const T* base = <const T*>cnp.PyArray_DATA(x)
    cdef T nd = nodata if nodata is not None else 0
    cdef bint has_nd = nodata is not None
    if nitems == 0:
        return
    with nogil:
        for b in prange(nitems, schedule="dynamic", chunksize=1, num_threads=nthreads):
            k = block[b]
            if k < 0:
                continue
            index[b] = k * BLOCK + first_of(base + b * sb + k * BLOCK * s,
                                            min(<Py_ssize_t>BLOCK, n - k * BLOCK), s,
                                            value[b], omit, has_nd, nd)


def global_least_index(const T[:] dtype_tag, cnp.ndarray x, const uint8_t[:, ::1] hit,
                       const T[::1] value, const int64_t[::1] shape,
                       const int64_t[::1] weight, int64_t offset, int64_t[:, ::1] least,
                       bint omit, object nodata, int nthreads):
    """For the rows of ``x`` (nitems, n) that walk their pooled axes in memory
    order, not in C order: per block flagged in ``hit``, the least C-order index
    of the valid elements equal to the row's ``value`` (NaN matches NaN), into
    ``least`` (nitems, nblocks; other blocks are left alone).  An element's place
    ``q`` in the walk is a multi-index over ``shape``; its C-order index is
    ``offset + sum(index * weight)`` (a flipped axis has a negative weight)."""
    cdef Py_ssize_t nitems = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t nblocks = hit.shape[1], t, b, k, i, m, a, d = shape.shape[0]
    cdef int64_t sb = x.strides[0] // x.itemsize, s = x.strides[1] // x.itemsize
    cdef int64_t q, c, best
    cdef const T* base = <const T*>cnp.PyArray_DATA(x)
    cdef const T* p
    cdef T nd = nodata if nodata is not None else 0
    cdef bint has_nd = nodata is not None, nan_a
    cdef T v, want
    if nitems == 0:
        return
    with nogil:
        for t in prange(nitems * nblocks, schedule="dynamic", chunksize=16,
                        num_threads=nthreads):
            b = t // nblocks
            k = t - b * nblocks
            if not hit[b, k]:
                continue
            p = base + b * sb + k * BLOCK * s
            m = min(<Py_ssize_t>BLOCK, n - k * BLOCK)
            want = value[b]
            nan_a = want != want
            best = least[b, k]
            for i in range(m):
                v = p[i * s]
                if missing(v, omit, has_nd, nd) or not (v == want or (nan_a and v != v)):
                    continue
                q = k * BLOCK + i
                c = offset
                for a in range(d - 1, -1, -1):
                    c = c + (q % shape[a]) * weight[a]
                    q = q // shape[a]
                best = min(best, c)
            least[b, k] = best
