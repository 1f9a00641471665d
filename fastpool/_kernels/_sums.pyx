"""Sum and average pooling over the shared geometry.

Same traversal as the extremum family: window rows are folded into a per-thread
row of accumulators (double for floats, int64 for integers up to 32 bits, 128 bits
for 64-bit integers, so integer sums are exact), then written once, rounded half to
even and saturated for integer outputs.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.math cimport NAN

cimport numpy as cnp

from ._common cimport (EXCLUDED, adjacent_pairs, aligned_alloc, columns_first, pair_stream,
                       Acc, Geom, RowScratch, T, block_len, collect_rows, div_round_even,
                       fp_prefetch, plain_row_pairs, prefetch_block, prefetch_rows, fp_i128, make_geom,
                       round_half_even, saturate, scratch_at, scratch_size,
                       short_rows_ahead)

cnp.import_array()

cdef extern from "_fastpool.h":
    Py_ssize_t fp_mean2x2_u8(const uint8_t* q0, const uint8_t* q1, uint8_t* o,
                             Py_ssize_t n) noexcept nogil
    Py_ssize_t fp_sum2x2_u8_f32(const uint8_t** rows, int nr, float* o,
                                Py_ssize_t n) noexcept nogil
    Py_ssize_t fp_sum2x2_f32(const float** rows, int nr, float* o, Py_ssize_t n,
                             double scale, Py_ssize_t ahead) noexcept nogil
    void fp_means_f32_u8(const float* s, uint8_t* o, Py_ssize_t n, float row_scale,
                         const float* col_scale) noexcept nogil
    void fp_means_f32_i8(const float* s, int8_t* o, Py_ssize_t n, float row_scale,
                         const float* col_scale) noexcept nogil
    void fp_means_f32_u16(const float* s, uint16_t* o, Py_ssize_t n, float row_scale,
                          const float* col_scale) noexcept nogil
    void fp_means_f32_i16(const float* s, int16_t* o, Py_ssize_t n, float row_scale,
                          const float* col_scale) noexcept nogil

# What the output array holds.
cpdef enum OutCode:
    OUT_SAME = 0      # the input's dtype
    OUT_INT64 = 1
    OUT_UINT64 = 2
    OUT_FLOAT32 = 3
    OUT_FLOAT64 = 4


cdef inline bint missing(T v, bint omit, bint has_nd, T nd) noexcept nogil:
    return (omit and v != v) or (has_nd and v == nd)


cdef void row_tables(const Geom* g, const T* rp, bint cval_row, T cval, Py_ssize_t c0,
                     Py_ssize_t c1, Acc* acc, int64_t* cnt, bint dynamic, bint omit,
                     bint has_nd, T nd) noexcept nogil:
    """Add one window row into outputs ``[c0, c1)`` through the sample table."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef int64_t e
    cdef Py_ssize_t w, j
    cdef T v
    for w in range(c0, c1):
        for j in range(g.k):
            e = tab[w * g.k + j]
            if e == EXCLUDED:
                continue
            if e < EXCLUDED or cval_row:
                v = cval
            else:
                v = rp[e * g.sc]
            if dynamic:
                if missing(v, omit, has_nd, nd):
                    continue
                cnt[w] += 1
            acc[w] += <Acc>v


cdef inline void store_missing(char* op, Py_ssize_t w, int64_t os, int code,
                               bint has_nd, T nd) noexcept nogil:
    """Write the result of a window with no valid sample: nodata, else NaN."""
    cdef double f = <double>nd if has_nd else NAN
    if code == OUT_FLOAT32:
        (<float*>op)[w * os] = <float>f
    elif code == OUT_FLOAT64:
        (<double*>op)[w * os] = f
    elif code == OUT_INT64:
        (<int64_t*>op)[w * os] = <int64_t>nd
    elif code == OUT_UINT64:
        (<uint64_t*>op)[w * os] = <uint64_t>nd
    else:
        (<T*>op)[w * os] = nd if has_nd else <T>f


cdef inline Acc sum2(const T* q, Py_ssize_t i, Acc* kind) noexcept nogil:
    return <Acc>q[2 * i] + <Acc>q[2 * i + 1]


cdef inline Acc sum3(const T* q, Py_ssize_t i, Acc* kind) noexcept nogil:
    return <Acc>q[2 * i] + <Acc>q[2 * i + 1] + <Acc>q[2 * i + 2]


cdef inline Acc sumk(const T* q, Py_ssize_t k, int64_t step, Acc* kind) noexcept nogil:
    cdef Py_ssize_t j
    cdef Acc m = <Acc>q[0]
    for j in range(1, k):
        m += <Acc>q[j * step]
    return m


cdef void rows_direct(const Geom* g, const T* r0, const T* r1, const T* r2, const T* r3,
                      int nr, Acc* acc, Py_ssize_t c0, Py_ssize_t c1,
                      Acc* col) noexcept nogil:
    """Add ``nr`` (1 to 4) data rows into the interior outputs ``[c0, c1)``.

    Several rows per pass halve or quarter the sweeps over the accumulators; the
    literal strides of the common windows let the loops vectorise.  Other
    windows of contiguous samples add the pass's rows column by column first,
    into ``col`` (``(c1 - c0 - 1) * stride + k`` entries), then each window's
    columns: the rows stream through vector lanes instead of one serial sum per
    window row.
    """
    cdef Py_ssize_t i, j, c, n = c1 - c0
    cdef int64_t step = g.dil * g.sc, jump = g.s * g.sc, off = (c0 * g.s - g.p) * g.sc
    cdef int64_t sc = g.sc
    cdef Py_ssize_t ncol = (n - 1) * g.s + g.k
    cdef Acc t
    cdef const T* q0 = r0 + off
    cdef const T* q1 = r1 + off
    cdef const T* q2 = r2 + off
    cdef const T* q3 = r3 + off
    cdef Acc* a = acc + c0
    if step == 1 and jump == 2 and g.k == 2:
        if nr == 4:
            for i in range(n):
                a[i] += (sum2(q0, i, a) + sum2(q1, i, a)) + (sum2(q2, i, a) + sum2(q3, i, a))
        elif nr == 3:
            for i in range(n):
                a[i] += (sum2(q0, i, a) + sum2(q1, i, a)) + sum2(q2, i, a)
        elif nr == 2:
            for i in range(n):
                a[i] += sum2(q0, i, a) + sum2(q1, i, a)
        else:
            for i in range(n):
                a[i] += sum2(q0, i, a)
    elif step == 1 and jump == 2 and g.k == 3:
        if nr == 4:
            for i in range(n):
                a[i] += (sum3(q0, i, a) + sum3(q1, i, a)) + (sum3(q2, i, a) + sum3(q3, i, a))
        elif nr == 3:
            for i in range(n):
                a[i] += (sum3(q0, i, a) + sum3(q1, i, a)) + sum3(q2, i, a)
        elif nr == 2:
            for i in range(n):
                a[i] += sum3(q0, i, a) + sum3(q1, i, a)
        else:
            for i in range(n):
                a[i] += sum3(q0, i, a)
    elif columns_first(g) and n > 0:
        # Column sums associated as the rows above, whatever the memory layout.
        if nr == 4:
            if sc == 1:
                for c in range(ncol):
                    col[c] = (<Acc>q0[c] + <Acc>q1[c]) + (<Acc>q2[c] + <Acc>q3[c])
            else:
                for c in range(ncol):
                    col[c] = ((<Acc>q0[c * sc] + <Acc>q1[c * sc])
                              + (<Acc>q2[c * sc] + <Acc>q3[c * sc]))
        elif nr == 3:
            for c in range(ncol):
                col[c] = (<Acc>q0[c * sc] + <Acc>q1[c * sc]) + <Acc>q2[c * sc]
        elif nr == 2:
            if sc == 1:
                for c in range(ncol):
                    col[c] = <Acc>q0[c] + <Acc>q1[c]
            else:
                for c in range(ncol):
                    col[c] = <Acc>q0[c * sc] + <Acc>q1[c * sc]
        else:
            for c in range(ncol):
                col[c] = <Acc>q0[c * sc]
        for i in range(n):
            t = col[i * g.s]
            for j in range(1, g.k):
                t += col[i * g.s + j]
            a[i] += t
    else:
        # Associated exactly as the loops above, so float sums do not depend on
        # the memory layout.
        for i in range(n):
            if nr == 4:
                a[i] += ((sumk(q0 + i * jump, g.k, step, a)
                          + sumk(q1 + i * jump, g.k, step, a))
                         + (sumk(q2 + i * jump, g.k, step, a)
                            + sumk(q3 + i * jump, g.k, step, a)))
            elif nr == 3:
                a[i] += ((sumk(q0 + i * jump, g.k, step, a)
                          + sumk(q1 + i * jump, g.k, step, a))
                         + sumk(q2 + i * jump, g.k, step, a))
            elif nr == 2:
                a[i] += (sumk(q0 + i * jump, g.k, step, a)
                         + sumk(q1 + i * jump, g.k, step, a))
            else:
                a[i] += sumk(q0 + i * jump, g.k, step, a)


cdef inline void put_mean(T* o, Acc s, int sh, Acc half, double scale) noexcept nogil:
    """``o[0] = s / 2**sh``: an exact scaling for floats, a shift rounding half to
    even for integers (a mean of T values needs no saturation)."""
    cdef Acc odd, biased
    if Acc is double:
        o[0] = <T>((<Acc>0 + s) * scale)
    else:
        # Each step stored back in Acc (no overflow: see the Acc limits), so the
        # vectoriser keeps uint16 lanes instead of widening to int.
        odd = <Acc>((s & (half + half + 2)) != 0)
        biased = <Acc>(s + half)
        biased = <Acc>(biased + odd)
        o[0] = <T>(biased >> sh)


cdef bint means_direct(const Geom* g, const T* r0, const T* r1, const T* r2,
                       const T* r3, int nr, T* ot, Py_ssize_t c0, Py_ssize_t c1,
                       Py_ssize_t ahead, Acc* kind) noexcept nogil:
    """Interior means ``[c0, c1)`` of a 2-wide, stride-2 window over ``nr`` of 1, 2 or 4 rows
    (2x2, 2x2x2, ...), summed and written in one pass without an accumulator row.

    False where the window is not of that shape; the accumulator path then runs.
    The sums are associated as in :func:`rows_direct`, so both paths agree bitwise.
    ``ahead``: how far on the float32 SIMD loop prefetches (0: the caller does).
    """
    cdef Py_ssize_t i, n = c1 - c0
    cdef int sh = log2_exact(nr * g.k)
    cdef int64_t off = (c0 * g.s - g.p) * g.sc
    cdef double scale = 1.0 / (nr * g.k)
    cdef Acc half = 0
    cdef const T* q0 = r0 + off
    cdef const T* q1 = r1 + off
    cdef const T* q2 = r2 + off
    cdef const T* q3 = r3 + off
    cdef T* o = ot + c0
    cdef const float* q[4]
    if Acc is fp_i128:
        return False
    if not adjacent_pairs(g) or sh < 0 or nr == 3:
        return False
    if Acc is not double:
        half = (<Acc>1 << (sh - 1)) - 1
    i = 0
    if T is float and Acc is double and nr != 1:
        q[0] = q0
        q[1] = q1
        q[2] = q2
        q[3] = q3
        i = fp_sum2x2_f32(q, nr, o, n, scale, ahead)
    if nr == 4:
        for i in range(i, n):
            put_mean(o + i, (sum2(q0, i, kind) + sum2(q1, i, kind))
                     + (sum2(q2, i, kind) + sum2(q3, i, kind)), sh, half, scale)
    elif nr == 2:
        if T is uint8_t and Acc is uint16_t:
            i = fp_mean2x2_u8(q0, q1, o, n)
        for i in range(i, n):
            put_mean(o + i, sum2(q0, i, kind) + sum2(q1, i, kind), sh, half, scale)
    else:
        for i in range(n):
            put_mean(o + i, sum2(q0, i, kind), sh, half, scale)
    return True


cdef bint sums_direct(const Geom* g, const T* r0, const T* r1, const T* r2,
                      const T* r3, int nr, float* ot, Py_ssize_t c0,
                      Py_ssize_t c1, Py_ssize_t ahead) noexcept nogil:
    """Interior float32 sums ``[c0, c1)`` of 2x2 (``nr`` 2) or 2x2x2 (``nr`` 4)
    windows of uint8 or float32 rows, written in one pass (a pyramid's level sums).

    False where the window is not of that shape; the accumulator path then runs.
    Associated as :func:`rows_direct` and converted as :func:`store_row`, so both
    paths agree bitwise.
    """
    cdef Py_ssize_t i = 0, n = c1 - c0
    cdef int64_t off = (c0 * g.s - g.p) * g.sc
    cdef const T* q[4]
    cdef float* o = ot + c0
    cdef double a
    if not (T is uint8_t or T is float):
        return False
    if not adjacent_pairs(g) or (nr != 2 and nr != 4):
        return False
    q[0] = r0 + off
    q[1] = r1 + off
    q[2] = r2 + off
    q[3] = r3 + off
    if T is uint8_t:
        i = fp_sum2x2_u8_f32(<const uint8_t**>q, nr, o, n)
    else:
        i = fp_sum2x2_f32(<const float**>q, nr, o, n, 1.0, ahead)
    for i in range(i, n):
        a = (<double>q[0][2 * i] + <double>q[0][2 * i + 1]) + (
            <double>q[1][2 * i] + <double>q[1][2 * i + 1])
        if nr == 4:
            a = a + ((<double>q[2][2 * i] + <double>q[2][2 * i + 1]) + (
                <double>q[3][2 * i] + <double>q[3][2 * i + 1]))
        o[i] = <float>(0.0 + a)    # as an accumulator cleared to 0: no -0.0
    return True


cdef inline void store_one(char* op, Py_ssize_t w, int64_t os, int code, Acc s,
                           int64_t n, int64_t divisor, bint average, bint fp_round,
                           bint has_nd, T nd) noexcept nogil:
    """Write the sum ``s`` of ``n`` samples (or its mean) as output element ``w``."""
    cdef int64_t den
    cdef double f
    cdef fp_i128 q
    if n == 0:
        store_missing(op, w, os, code, has_nd, nd)
        return
    den = divisor if divisor != 0 else n
    if Acc is double or code == OUT_FLOAT32 or code == OUT_FLOAT64:
        f = (<double>s) / den if average else <double>s
        if code == OUT_FLOAT32:
            (<float*>op)[w * os] = <float>f
        elif code == OUT_FLOAT64:
            (<double*>op)[w * os] = f
        else:
            (<T*>op)[w * os] = <T>f
        return
    if not average:
        q = s
    elif fp_round:
        q = <fp_i128>round_half_even((<double>s) / den)
    else:
        q = div_round_even(s, den)
    if code == OUT_INT64:
        (<int64_t*>op)[w * os] = saturate(q, <int64_t>0)
    elif code == OUT_UINT64:
        (<uint64_t*>op)[w * os] = saturate(q, <uint64_t>0)
    else:
        (<T*>op)[w * os] = saturate(q, nd)


cdef inline int log2_exact(int64_t n) noexcept nogil:
    """``log2(n)`` when ``n`` is a power of two, else -1."""
    cdef int sh = 0
    if n <= 0 or (n & (n - 1)) != 0:
        return -1
    while (<int64_t>1 << sh) != n:
        sh += 1
    return sh


cdef void store_row(const Geom* g, char* op, int64_t os, int code, const Acc* acc,
                    const int64_t* cnt, bint dynamic, int64_t nrows,
                    const int64_t* colcount, int64_t divisor, bint average,
                    bint fp_round, bint has_nd, T nd, bint interior_done) noexcept nogil:
    """Write a row of sums (or means) as the output's dtype (``code``); with
    ``interior_done``, only the edge outputs outside ``[lo, hi)``.

    The interior of a plain average, where every window has ``nrows * k`` samples,
    takes loops without per-element dispatch: a multiply (floats) or a shift
    (integers) when that count is a power of two, a vectorised division else.
    """
    cdef Py_ssize_t w, lo = 0, hi = 0
    cdef int64_t den = nrows * g.k
    if interior_done:
        lo, hi = g.lo, g.hi
    cdef int sh = log2_exact(den)
    cdef double scale = 1.0 / <double>den, fden = <double>den
    cdef Acc half
    cdef T* ot = <T*>op
    if (not interior_done and not dynamic and average and divisor == 0
            and code == OUT_SAME and os == 1):
        lo, hi = g.lo, g.hi
        if T is float or T is double:
            if sh >= 0:
                for w in range(lo, hi):
                    ot[w] = <T>(acc[w] * scale)
            else:
                for w in range(lo, hi):
                    ot[w] = <T>(acc[w] / fden)
        elif Acc is not double:
            # A mean of T values lies in T's range: no saturation needed.
            if sh > 0:
                half = (<Acc>1 << (sh - 1)) - 1
                for w in range(lo, hi):
                    ot[w] = <T>((acc[w] + half + ((acc[w] >> sh) & 1)) >> sh)
            elif sh == 0:
                for w in range(lo, hi):
                    ot[w] = <T>acc[w]
            elif fp_round:
                for w in range(lo, hi):
                    ot[w] = <T>round_half_even(<double>acc[w] / fden)
            else:
                lo = hi = 0
    if (not interior_done and not dynamic and not average and os == 1
            and Acc is not fp_i128):
        # Plain sums (the levels of a pyramid): a conversion per element.
        lo, hi = g.lo, g.hi
        if code == OUT_FLOAT32:
            for w in range(lo, hi):
                (<float*>op)[w] = <float><double>acc[w]
        elif code == OUT_FLOAT64:
            for w in range(lo, hi):
                (<double*>op)[w] = <double>acc[w]
        elif code == OUT_SAME and (T is float or T is double):
            for w in range(lo, hi):
                ot[w] = <T><double>acc[w]
        else:
            lo = hi = 0
    for w in range(lo):
        store_one(op, w, os, code, acc[w], cnt[w] if dynamic else nrows * colcount[w],
                  divisor, average, fp_round, has_nd, nd)
    for w in range(hi, g.W):
        store_one(op, w, os, code, acc[w], cnt[w] if dynamic else nrows * colcount[w],
                  divisor, average, fp_round, has_nd, nd)


cdef void sums_by_columns(const Geom* g, const T* xb, const int64_t* roff,
                          Py_ssize_t nrows, Acc* col, Acc* acc) noexcept nogil:
    """The window sums of one output row of given windows (adaptive, fractional;
    no interior, no cval), column first: each input column summed down the
    window rows, four rows at a time as :func:`rows_direct` adds them, then each
    window's columns in order.  The rows stream through vector lanes; through
    the tables, a sum took one serial add per sample (2x PyTorch's time on
    non-divisible adaptive windows)."""
    cdef Py_ssize_t n = g.in_len[g.d], c, r, w, j
    cdef int64_t sc = g.sc, e
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef const T* p0
    cdef const T* p1
    cdef const T* p2
    cdef const T* p3
    cdef Acc s
    for c in range(n):
        col[c] = 0
    for r in range(0, nrows - 3, 4):
        p0 = xb + roff[r]
        p1 = xb + roff[r + 1]
        p2 = xb + roff[r + 2]
        p3 = xb + roff[r + 3]
        if sc == 1:
            for c in range(n):
                col[c] += (<Acc>p0[c] + <Acc>p1[c]) + (<Acc>p2[c] + <Acc>p3[c])
        else:
            for c in range(n):
                col[c] += ((<Acc>p0[c * sc] + <Acc>p1[c * sc])
                           + (<Acc>p2[c * sc] + <Acc>p3[c * sc]))
    r = nrows - nrows % 4
    if nrows - r == 3:
        p0 = xb + roff[r]
        p1 = xb + roff[r + 1]
        p2 = xb + roff[r + 2]
        for c in range(n):
            col[c] += (<Acc>p0[c * sc] + <Acc>p1[c * sc]) + <Acc>p2[c * sc]
    elif nrows - r == 2:
        p0 = xb + roff[r]
        p1 = xb + roff[r + 1]
        for c in range(n):
            col[c] += <Acc>p0[c * sc] + <Acc>p1[c * sc]
    elif nrows - r == 1:
        p0 = xb + roff[r]
        for c in range(n):
            col[c] += <Acc>p0[c * sc]
    for w in range(g.W):
        s = 0
        for j in range(g.k):
            e = tab[w * g.k + j]
            if e != EXCLUDED:
                s += col[e]
        acc[w] = s


cdef int engine(const Geom* g, const T* x, char* out, int code, bint average,
                int64_t divisor, const int64_t* colcount, bint omit, bint has_nd, T nd,
                T cval, bint fp_round, bint given_last, int nthreads,
                Acc* kind) noexcept nogil:
    """Pool every output row; returns -1 when the scratch memory is not there.
    ``given_last``: the last axis' windows are given (``AxisWindows.given``)."""
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, b, orow, r, w, nrows
    cdef Py_ssize_t W = g.W
    cdef Py_ssize_t chunk = max(1, total // (8 * nthreads))
    cdef bint dynamic = omit or has_nd
    cdef Acc* acc
    cdef int64_t* cnt
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef char* rcv
    cdef int64_t oo, io, n, den
    cdef int64_t itemsize = 8 if (code == OUT_INT64 or code == OUT_UINT64 or
                                  code == OUT_FLOAT64) else (
                                  4 if code == OUT_FLOAT32 else sizeof(T))
    cdef const T* xb
    cdef char* op
    cdef const T** batch
    cdef Py_ssize_t nb, ndata, c0, c1, blk = block_len(g, sizeof(T))
    cdef bint done, fused, fused_sums, pre_clear
    cdef Py_ssize_t stream
    cdef RowScratch sc
    # Given windows without an interior (adaptive, fractional) are summed column
    # first, in a row of column sums per thread after its row scratch.
    # Interior passes of contiguous windows use it too (rows_direct), for a block.
    cdef bint by_columns = given_last and g.lo == g.hi and not dynamic
    cdef Py_ssize_t col_len = max(g.in_len[g.d] if by_columns else 0,
                                  (blk - 1) * g.s + g.k
                                  if columns_first(g) else 0)
    cdef Py_ssize_t col_bytes = (col_len * sizeof(Acc) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t per_thread = scratch_size(g, sizeof(Acc)) + col_bytes
    cdef Acc* cols
    # The fused one-pass loops' conditions (below) that hold for every row, where a
    # row is one block with no edge windows.
    cdef bint short_plain = (W <= blk and g.lo == 0 and g.hi == W and not dynamic
                             and g.out_stride[g.d] == 1 and (
                                 (average and divisor == 0 and code == OUT_SAME)
                                 or (not average and ((T is uint8_t and code == OUT_FLOAT32)
                                                      or (T is float and code == OUT_SAME)))))
    # They prefetch their rows ahead (short_rows_ahead), or stream them (pair_stream).
    # Means of 2-D windows two rows tall at stride 2, no padding along the rows
    # (2x2 of NCHW maps): output row o reads input rows 2o and 2o + 1, so even
    # the row lists are skipped (about 10% of the time of 112-wide maps).
    cdef bint row_pairs = short_plain and average and plain_row_pairs(g)
    cdef int64_t ahead = short_rows_ahead(g, sizeof(T))
    cdef int64_t pair[2]
    cdef char* scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    if scratch == NULL:
        return -1
    pair[0] = 0   # a row pair's offsets from its first row
    pair[1] = g.in_stride[1]
    with parallel(num_threads=nthreads):
        sc = scratch_at(scratch + threadid() * per_thread, g, sizeof(Acc))
        acc = <Acc*>sc.acc
        cnt = sc.aux
        roff = sc.roff
        rflat = sc.rflat
        rcv = sc.rcv
        batch = <const T**>sc.rows
        cols = <Acc*>(scratch + (threadid() + 1) * per_thread - col_bytes)
        # Dynamic chunks: each output row is written by exactly one iteration, so
        # the result does not depend on which thread ran it, and a core busy with
        # another process does not hold the whole call back.
        for t in prange(total, schedule="dynamic", chunksize=chunk):
            b = t // g.nrows_out
            orow = t - b * g.nrows_out
            if row_pairs:
                xb = x + b * g.in_stride[0] + 2 * orow * g.in_stride[1]
                # Float32 rows streamed: 0.74-0.82x the time of prefetching them a few
                # output rows ahead, 112-wide maps at one thread (A/B).
                stream = pair_stream(g, 2, x)
                if not stream:
                    prefetch_rows(g, xb, pair, 2, ahead)
                if means_direct(g, xb, xb + g.in_stride[1], xb, xb, 2,
                                <T*>(out + (b * g.out_stride[0] + orow * g.out_stride[1])
                                     * itemsize), 0, W, stream, acc):
                    continue
            # Assigned in the loop body so that Cython makes them thread-private
            # (collect_rows writes them through pointers, which it cannot see).
            oo = 0
            io = 0
            nrows = collect_rows(g, orow, roff, rflat, rcv, &oo, &io)
            xb = x + b * g.in_stride[0]
            op = out + (b * g.out_stride[0] + oo) * itemsize
            if by_columns:
                sums_by_columns(g, xb, roff, nrows, cols, acc)
                store_row(g, op, g.out_stride[g.d], code, acc, cnt, False, nrows,
                          colcount, divisor, average, fp_round, has_nd, nd, False)
                continue
            # Short rows of one block (NCHW feature maps) with every window whole:
            # straight to the one-pass loop, since the bookkeeping below costs
            # as much as the row's arithmetic there.
            if short_plain and nrows <= 4 and nrows != 3:
                done = True
                for r in range(nrows):
                    done = done and not rcv[r]
                if done:
                    for w in range(4):
                        batch[w] = xb + roff[w if w < nrows else 0]
                    stream = pair_stream(g, nrows, x)
                    if not stream:
                        prefetch_rows(g, xb, roff, nrows, ahead)
                    if average:
                        done = means_direct(g, batch[0], batch[1], batch[2], batch[3],
                                            nrows, <T*>op, 0, W, stream, acc)
                    else:
                        done = sums_direct(g, batch[0], batch[1], batch[2], batch[3],
                                           nrows, <float*>op, 0, W, stream)
                    if done:
                        continue
            # Only what is read later is cleared: the counts when they are
            # counted, the interior sums block by block below.
            if dynamic:
                for w in range(W):
                    cnt[w] = 0
            for w in range(g.lo):
                acc[w] = 0
            for w in range(g.hi, W):
                acc[w] = 0
            # Interior sums that the tables add to (counted or cval rows) are
            # cleared now; the others block by block, before the direct loops.
            pre_clear = dynamic
            for r in range(nrows):
                pre_clear = pre_clear or rcv[r]
            if pre_clear:
                for w in range(g.lo, g.hi):
                    acc[w] = 0
            # Edges and cval rows through the tables; the data rows' offsets are
            # gathered (in ``rflat``, unused here) for the direct loops.
            ndata = 0
            for r in range(nrows):
                if dynamic or rcv[r]:
                    row_tables(g, xb + roff[r], rcv[r], cval, 0, W, acc, cnt,
                               dynamic, omit, has_nd, nd)
                else:
                    row_tables(g, xb + roff[r], False, cval, 0, g.lo, acc, cnt,
                               False, omit, has_nd, nd)
                    row_tables(g, xb + roff[r], False, cval, g.hi, W, acc, cnt,
                               False, omit, has_nd, nd)
                    rflat[ndata] = roff[r]
                    ndata = ndata + 1
            # A plain average of at most four rows is written in one pass.
            fused = (ndata == nrows and nrows <= 4 and average and divisor == 0
                     and code == OUT_SAME and g.out_stride[g.d] == 1)
            # So are the float32 sums of 2x2(x2) windows of uint8 or float32.
            # (the whole window in one batch of rows: 2 rows, or 4 of 2x2x2)
            fused_sums = (ndata == nrows and (nrows == 2 or nrows == 4)
                          and not average and not dynamic
                          and g.out_stride[g.d] == 1
                          and ((T is uint8_t and code == OUT_FLOAT32)
                               or (T is float and code == OUT_SAME)))
            done = False
            # Float32 2x2 and 2x2x2 windows in one pass over the row, the SIMD loop
            # prefetching as it goes.
            stream = pair_stream(g, nrows, x) if fused or fused_sums else 0
            # Interior, block by block with the next block prefetched; rows are
            # added four at a time, in row order, so the float rounding does not
            # depend on the thread count.
            c0 = g.lo
            while ndata and c0 < g.hi:
                c1 = g.hi if stream else min(c0 + blk, g.hi)
                if not stream:
                    prefetch_block(g, xb, rflat, ndata, c1, min(c1 + blk, g.hi))
                for r in range(0, ndata, 4):
                    nb = min(4, ndata - r)
                    for w in range(4):
                        batch[w] = xb + rflat[r + (w if w < nb else 0)]
                    if fused:
                        done = means_direct(g, batch[0], batch[1], batch[2], batch[3],
                                            nb, <T*>op, c0, c1, stream, acc)
                        fused = done
                    elif fused_sums:
                        done = sums_direct(g, batch[0], batch[1], batch[2], batch[3],
                                           nb, <float*>op, c0, c1, stream)
                        fused_sums = done
                    if not done and r == 0 and not pre_clear:
                        for w in range(c0, c1):
                            acc[w] = 0
                    if not done:
                        rows_direct(g, batch[0], batch[1], batch[2], batch[3], nb, acc,
                                    c0, c1, cols)
                c0 = c1
            store_row(g, op, g.out_stride[g.d], code, acc, cnt, dynamic, nrows,
                      colcount, divisor, average, fp_round, has_nd, nd, done)
    free(scratch)
    return 0


def sums(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray out, int code, bint average,
         int64_t divisor, const int64_t[::1] colcount, const int64_t[::1] tables,
         const int64_t[::1] tab_off, const int64_t[::1] width,
         const int64_t[::1] out_len, const int64_t[::1] interior, bint omit,
         object nodata, object cval, int nthreads):
    """Sum (or average) pool ``x`` (batch, *pooled) into ``out``.

    ``code`` says what ``out`` holds (an OutCode); ``divisor`` 0 means the window's
    count; ``colcount`` is the number of samples per output of the last axis.
    Inputs are trusted: fastpool._pool validates them.
    """
    cdef Geom g = make_geom(x, out, None, tables, tab_off, width, out_len, interior)
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None
    cdef const T* xp = <const T*>cnp.PyArray_DATA(x)
    cdef char* op = <char*>cnp.PyArray_DATA(out)
    cdef const int64_t* cc = &colcount[0]
    # Small integers are averaged in double: exact while |sum| < 2**51, and the
    # division vectorises where an integer division would not.
    cdef bint fp_round = (T is not float and T is not double and T is not int64_t
                          and T is not uint64_t and g.max_rows * g.k < (1 << 18))
    cdef bint narrow = sizeof(T) <= 2
    cdef bint given_last = interior.shape[0] > 6 and interior[6] != 0
    cdef int rc
    with nogil:
        if T is float or T is double:
            rc = engine(&g, xp, op, code, average, divisor, cc, omit, has_nd, nd, cv,
                        fp_round, given_last, nthreads, <double*>NULL)
        elif T is int64_t or T is uint64_t:
            rc = engine(&g, xp, op, code, average, divisor, cc, omit, has_nd, nd, cv,
                        fp_round, given_last, nthreads, <fp_i128*>NULL)
        elif T is uint8_t and g.max_rows * g.k <= 256:
            rc = engine(&g, xp, op, code, average, divisor, cc, omit, has_nd, nd, cv,
                        fp_round, given_last, nthreads, <uint16_t*>NULL)
        elif narrow and g.max_rows * g.k <= (1 << 15):
            rc = engine(&g, xp, op, code, average, divisor, cc, omit, has_nd, nd, cv,
                        fp_round, given_last, nthreads, <int32_t*>NULL)
        else:
            rc = engine(&g, xp, op, code, average, divisor, cc, omit, has_nd, nd, cv,
                        fp_round, given_last, nthreads, <int64_t*>NULL)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread row buffers")


ctypedef fused Sums:
    float
    double


def means_of_sums(const T[:] dtype_tag, const Sums[:, ::1] sums, cnp.ndarray out,
                  const double[::1] row_count, const double[::1] col_count,
                  const double[::1] row_scale, const float[::1] col_scale,
                  int nthreads):
    """``out[r, c] = sums[r, c] / (row_count[r] * col_count[c])``, rounded half to
    even for integer ``out`` (the dtype of ``dtype_tag``; C-contiguous, the shape of
    ``sums``).  The sums are exact integers or float sums; the counts are exact.

    ``row_scale[r]``, where not 0, and ``col_scale`` (or None) are the counts'
    inverses when those are powers of two: for float32 sums into integers of up to
    16 bits a float32 multiply by them is exact and replaces the division.
    """
    cdef Py_ssize_t rows = sums.shape[0], W = sums.shape[1], r, c
    cdef T* op = <T*>cnp.PyArray_DATA(out)
    cdef T* o
    cdef const Sums* sp
    cdef double dr
    cdef float sr
    cdef const float* cs = &col_scale[0] if col_scale is not None else NULL
    if rows == 0 or W == 0:
        return
    with nogil:
        for r in prange(rows, schedule="static", num_threads=nthreads):
            o = op + r * W
            sp = &sums[r, 0]
            dr = row_count[r]
            sr = <float>row_scale[r]
            if Sums is float and cs != NULL and sr != 0:
                if T is uint8_t:
                    fp_means_f32_u8(sp, o, W, sr, cs)
                    continue
                elif T is int8_t:
                    fp_means_f32_i8(sp, o, W, sr, cs)
                    continue
                elif T is uint16_t:
                    fp_means_f32_u16(sp, o, W, sr, cs)
                    continue
                elif T is int16_t:
                    fp_means_f32_i16(sp, o, W, sr, cs)
                    continue
            for c in range(W):
                o[c] = to_mean((<double>sp[c]) / (dr * col_count[c]), o)


cdef inline T to_mean(double q, T* kind) noexcept nogil:
    """A mean as ``T``: rounded half to even for integers (a mean of ``T`` values
    is in range), through int32 where that holds every value, which vectorises."""
    if T is float or T is double:
        return <T>q
    elif T is uint8_t or T is int8_t or T is uint16_t or T is int16_t or T is int32_t:
        return <T><int32_t>round_half_even(q)
    else:
        return <T>round_half_even(q)
