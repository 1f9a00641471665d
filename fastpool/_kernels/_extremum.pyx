"""Max and min pooling, with argmax/argmin, over the shared geometry.

One engine for both directions (a compile-time tag) and every dtype.  Each output
row (one output position on all pooled axes but the last) is reduced window row by
window row into a per-thread buffer of the row's outputs, so the inner loops run
along contiguous memory.  Interior columns of rows without cval, nodata or index
tracking take a direct loop; everything else goes through the sample tables.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free
from libc.stdint cimport int32_t, int64_t

cimport numpy as cnp

from ._common cimport (EXCLUDED, aligned_alloc, columns_first, pair_stream, Dir, FoldTag, Geom, InitTag, MaxTag, MinTag, NanTag,
                       first_taps_stride2,
                       OmitTag, PassTag, PropTag, RowScratch, T, block_len, collect_rows,
                       prefetch_block, prefetch_rows, short_rows_ahead,
                       scratch_at, scratch_size,
                       fp_max_omit_f32, fp_max_omit_f64, fp_max_prop_f32, fp_max_prop_f64,
                       fp_min_omit_f32, fp_min_omit_f64, fp_min_prop_f32, fp_min_prop_f64,
                       make_geom, select)

cnp.import_array()

cdef extern from "_fastpool.h":
    Py_ssize_t fp_extrema2x2_f32(const float* q0, const float* q1, const float* q2,
                                 const float* q3, int nr, float* o, Py_ssize_t n,
                                 Py_ssize_t ahead, int is_min, int omit) noexcept nogil


cdef enum:
    FOLD_OUTPUTS = 32  # windows folded side by side by fold2_many


cdef inline bint better(T v, T a, Dir tag) noexcept nogil:
    """``v`` strictly beats ``a`` (so ties keep the first in C order)."""
    if Dir is MaxTag:
        return v > a
    else:
        return v < a


cdef inline T pick(T a, T v, bint omit, Dir tag) noexcept nogil:
    """Running extremum.  'propagate': NaN wins and sticks (np.max); 'omit': NaN
    loses unless the running value is NaN itself."""
    if T is float:
        if Dir is MaxTag:
            return fp_max_omit_f32(a, v) if omit else fp_max_prop_f32(a, v)
        else:
            return fp_min_omit_f32(a, v) if omit else fp_min_prop_f32(a, v)
    elif T is double:
        if Dir is MaxTag:
            return fp_max_omit_f64(a, v) if omit else fp_max_prop_f64(a, v)
        else:
            return fp_min_omit_f64(a, v) if omit else fp_min_prop_f64(a, v)
    else:
        return select(better(v, a, tag), v, a)


cdef inline void take(T* acc, int64_t* idx, T v, int64_t fi, bint omit,
                      Dir tag) noexcept nogil:
    """Running extremum with its index; ``idx < 0`` means no sample yet."""
    cdef T a
    if idx[0] < 0:
        acc[0] = v
        idx[0] = fi
        return
    a = acc[0]
    if better(v, a, tag) or (
            (a != a and v == v) if omit else (v != v and a == a)):
        acc[0] = v
        idx[0] = fi


cdef void row_tables(const Geom* g, const T* rp, int64_t rflat, bint cval_row, T cval,
                     Py_ssize_t c0, Py_ssize_t c1, T* acc, int64_t* idx, bint omit,
                     bint has_nd, T nd, Dir tag) noexcept nogil:
    """Fold one window row into outputs ``[c0, c1)`` through the sample table."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef int64_t nlast = g.in_len[g.d], e, fi
    cdef Py_ssize_t w, j
    cdef T v
    for w in range(c0, c1):
        for j in range(g.k):
            e = tab[w * g.k + j]
            if e == EXCLUDED:
                continue
            if e < EXCLUDED:
                e = -2 - e
                v = cval
            elif cval_row:
                v = cval
            else:
                v = rp[e * g.sc]
            fi = rflat * nlast + e
            if has_nd and v == nd:
                if idx[w] == -1:
                    idx[w] = -2 - fi  # reported if the window holds only nodata
                continue
            take(&acc[w], &idx[w], v, fi, omit, tag)


cdef inline T pick_ct(T a, T v, NanTag policy, Dir tag) noexcept nogil:
    """:func:`pick` with the NaN policy fixed at compile time."""
    return pick(a, v, NanTag is OmitTag, tag)


cdef inline T fold2(const T* q0, const T* q1, Py_ssize_t k, int64_t step,
                    NanTag policy, Dir tag) noexcept nogil:
    """Extremum of ``k`` samples ``step`` apart in each of two rows."""
    cdef Py_ssize_t j
    cdef T m = pick_ct(q0[0], q1[0], policy, tag)
    for j in range(1, k):
        m = pick_ct(m, pick_ct(q0[j * step], q1[j * step], policy, tag), policy, tag)
    return m


cdef void fold2_many(const T* q0, const T* q1, Py_ssize_t n, int64_t jump, Py_ssize_t k,
                     int64_t step, T* m, NanTag policy, Dir tag) noexcept nogil:
    """:func:`fold2` of ``n`` windows ``jump`` apart into ``m``, sample by sample
    across the windows: the same picks in the same order per window, but ``n``
    independent chains instead of one (16x16 max pooling ran 4x faster)."""
    cdef Py_ssize_t i, j
    for i in range(n):
        m[i] = pick_ct(q0[i * jump], q1[i * jump], policy, tag)
    for j in range(1, k):
        for i in range(n):
            m[i] = pick_ct(m[i], pick_ct(q0[i * jump + j * step], q1[i * jump + j * step],
                                         policy, tag), policy, tag)


cdef void fold_columns(const T* q0, const T* q1, const T* q2, const T* q3,
                       Py_ssize_t ncol, int64_t sc, T* col, NanTag policy,
                       Dir tag) noexcept nogil:
    """``col[c]``: the extremum of column ``c`` (``sc`` apart) of four rows."""
    cdef Py_ssize_t c
    if sc == 1:
        for c in range(ncol):
            col[c] = pick_ct(pick_ct(q0[c], q1[c], policy, tag),
                             pick_ct(q2[c], q3[c], policy, tag), policy, tag)
    else:
        for c in range(ncol):
            col[c] = pick_ct(pick_ct(q0[c * sc], q1[c * sc], policy, tag),
                             pick_ct(q2[c * sc], q3[c * sc], policy, tag), policy, tag)


cdef inline void fold_windows(const T* col, Py_ssize_t n, int64_t s, Py_ssize_t k,
                              T* a, PassTag first, NanTag policy,
                              Dir tag) noexcept nogil:
    """Fold the column extrema of ``n`` windows of ``k`` columns ``s`` apart into
    ``a``: the windows of contiguous samples that no literal loop above takes,
    whose rows :func:`fold_columns` folded in vector lanes."""
    cdef Py_ssize_t i, j
    cdef T m
    for i in range(n):
        m = col[i * s]
        for j in range(1, k):
            m = pick_ct(m, col[i * s + j], policy, tag)
        if PassTag is InitTag:
            a[i] = m
        else:
            a[i] = pick_ct(a[i], m, policy, tag)


cdef void rows_direct_as(const Geom* g, const T* r0, const T* r1, T* acc,
                         Py_ssize_t c0, Py_ssize_t c1, T* col, PassTag first,
                         NanTag policy, Dir tag) noexcept nogil:
    # Every flag is a compile-time tag, so each loop compiles branch-free and
    # vectorises; two rows per pass halve the passes over the accumulators.
    cdef Py_ssize_t i, n = c1 - c0
    cdef int64_t step = g.dil * g.sc, jump = g.s * g.sc, off = (c0 * g.s - g.p) * g.sc
    cdef const T* q0 = r0 + off
    cdef const T* q1 = r1 + off
    cdef T* a = acc + c0
    cdef T m
    cdef T t0[FOLD_OUTPUTS]
    cdef Py_ssize_t i0, nb
    if step == 1 and jump == 2 and g.k == 2:
        for i in range(n):
            m = pick_ct(pick_ct(q0[2 * i], q0[2 * i + 1], policy, tag),
                        pick_ct(q1[2 * i], q1[2 * i + 1], policy, tag), policy, tag)
            if PassTag is InitTag:
                a[i] = m
            else:
                a[i] = pick_ct(a[i], m, policy, tag)
    elif step == 1 and jump == 2 and g.k == 3:
        for i in range(n):
            m = pick_ct(pick_ct(pick_ct(q0[2 * i], q0[2 * i + 1], policy, tag),
                                pick_ct(q1[2 * i], q1[2 * i + 1], policy, tag),
                                policy, tag),
                        pick_ct(q0[2 * i + 2], q1[2 * i + 2], policy, tag), policy, tag)
            if PassTag is InitTag:
                a[i] = m
            else:
                a[i] = pick_ct(a[i], m, policy, tag)
    elif step == 1 and jump == 3 and g.k == 3:
        for i in range(n):
            m = pick_ct(pick_ct(pick_ct(q0[3 * i], q0[3 * i + 1], policy, tag),
                                pick_ct(q1[3 * i], q1[3 * i + 1], policy, tag),
                                policy, tag),
                        pick_ct(q0[3 * i + 2], q1[3 * i + 2], policy, tag), policy, tag)
            if PassTag is InitTag:
                a[i] = m
            else:
                a[i] = pick_ct(a[i], m, policy, tag)
    elif columns_first(g) and n > 0:
        fold_columns(q0, q1, q1, q1, (n - 1) * g.s + g.k, g.sc, col, policy, tag)
        fold_windows(col, n, g.s, g.k, a, first, policy, tag)
    else:
        i0 = 0
        while i0 < n:
            nb = min(<Py_ssize_t>FOLD_OUTPUTS, n - i0)
            fold2_many(q0 + i0 * jump, q1 + i0 * jump, nb, jump, g.k, step, t0, policy,
                       tag)
            for i in range(nb):
                if PassTag is InitTag:
                    a[i0 + i] = t0[i]
                else:
                    a[i0 + i] = pick_ct(a[i0 + i], t0[i], policy, tag)
            i0 += nb


cdef void rows4_direct_as(const Geom* g, const T* r0, const T* r1, const T* r2,
                          const T* r3, T* acc, Py_ssize_t c0, Py_ssize_t c1, T* col,
                          PassTag first, NanTag policy, Dir tag) noexcept nogil:
    # Four rows per pass (3x3 and 2x2x2 windows): one sweep over the output row.
    cdef Py_ssize_t i, n = c1 - c0
    cdef int64_t step = g.dil * g.sc, jump = g.s * g.sc, off = (c0 * g.s - g.p) * g.sc
    cdef const T* q0 = r0 + off
    cdef const T* q1 = r1 + off
    cdef const T* q2 = r2 + off
    cdef const T* q3 = r3 + off
    cdef T* a = acc + c0
    cdef T m
    cdef T t0[FOLD_OUTPUTS]
    cdef T t1[FOLD_OUTPUTS]
    cdef Py_ssize_t i0, nb
    if step == 1 and jump == 2 and g.k == 2:
        for i in range(n):
            m = pick_ct(pick_ct(pick_ct(q0[2 * i], q0[2 * i + 1], policy, tag),
                                pick_ct(q1[2 * i], q1[2 * i + 1], policy, tag),
                                policy, tag),
                        pick_ct(pick_ct(q2[2 * i], q2[2 * i + 1], policy, tag),
                                pick_ct(q3[2 * i], q3[2 * i + 1], policy, tag),
                                policy, tag), policy, tag)
            if PassTag is InitTag:
                a[i] = m
            else:
                a[i] = pick_ct(a[i], m, policy, tag)
    elif step == 1 and jump == 2 and g.k == 3:
        for i in range(n):
            m = pick_ct(pick_ct(pick_ct(pick_ct(q0[2 * i], q0[2 * i + 1], policy, tag),
                                        q0[2 * i + 2], policy, tag),
                                pick_ct(pick_ct(q1[2 * i], q1[2 * i + 1], policy, tag),
                                        q1[2 * i + 2], policy, tag), policy, tag),
                        pick_ct(pick_ct(pick_ct(q2[2 * i], q2[2 * i + 1], policy, tag),
                                        q2[2 * i + 2], policy, tag),
                                pick_ct(pick_ct(q3[2 * i], q3[2 * i + 1], policy, tag),
                                        q3[2 * i + 2], policy, tag), policy, tag),
                        policy, tag)
            if PassTag is InitTag:
                a[i] = m
            else:
                a[i] = pick_ct(a[i], m, policy, tag)
    elif columns_first(g) and n > 0:
        fold_columns(q0, q1, q2, q3, (n - 1) * g.s + g.k, g.sc, col, policy, tag)
        fold_windows(col, n, g.s, g.k, a, first, policy, tag)
    else:
        i0 = 0
        while i0 < n:
            nb = min(<Py_ssize_t>FOLD_OUTPUTS, n - i0)
            fold2_many(q0 + i0 * jump, q1 + i0 * jump, nb, jump, g.k, step, t0, policy,
                       tag)
            fold2_many(q2 + i0 * jump, q3 + i0 * jump, nb, jump, g.k, step, t1, policy,
                       tag)
            for i in range(nb):
                m = pick_ct(t0[i], t1[i], policy, tag)
                if PassTag is InitTag:
                    a[i0 + i] = m
                else:
                    a[i0 + i] = pick_ct(a[i0 + i], m, policy, tag)
            i0 += nb


cdef void rows_direct(const Geom* g, const T* xb, const int64_t* roff, Py_ssize_t nr,
                      T* acc, Py_ssize_t c0, Py_ssize_t c1, T* col, bint init, bint omit,
                      Dir tag) noexcept nogil:
    """Fold ``nr`` (1 to 4) data rows at ``xb + roff[:nr]`` into the interior
    outputs ``[c0, c1)``, no tables: two- or four-row loops, chosen by compile-time
    tags.  A short pass repeats its last row: an extremum is idempotent.
    """
    cdef const T* r0 = xb + roff[0]
    cdef const T* r1 = xb + roff[1 if nr > 1 else 0]
    cdef const T* r2 = xb + roff[2 if nr > 2 else nr - 1]
    cdef const T* r3 = xb + roff[3 if nr > 3 else nr - 1]
    cdef InitTag first
    cdef FoldTag later
    cdef PropTag prop
    cdef OmitTag omitted
    if nr <= 2:
        if omit:
            if init:
                rows_direct_as(g, r0, r1, acc, c0, c1, col, first, omitted, tag)
            else:
                rows_direct_as(g, r0, r1, acc, c0, c1, col, later, omitted, tag)
        elif init:
            rows_direct_as(g, r0, r1, acc, c0, c1, col, first, prop, tag)
        else:
            rows_direct_as(g, r0, r1, acc, c0, c1, col, later, prop, tag)
    elif omit:
        if init:
            rows4_direct_as(g, r0, r1, r2, r3, acc, c0, c1, col, first, omitted, tag)
        else:
            rows4_direct_as(g, r0, r1, r2, r3, acc, c0, c1, col, later, omitted, tag)
    elif init:
        rows4_direct_as(g, r0, r1, r2, r3, acc, c0, c1, col, first, prop, tag)
    else:
        rows4_direct_as(g, r0, r1, r2, r3, acc, c0, c1, col, later, prop, tag)


cdef void extrema_by_columns_as(const Geom* g, const T* xb, const int64_t* roff,
                                Py_ssize_t nrows, T* col, T* acc, NanTag policy,
                                Dir tag) noexcept nogil:
    cdef Py_ssize_t n = g.in_len[g.d], c, r, w, j
    cdef int64_t sc = g.sc, e
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef const T* p0 = xb + roff[0]
    cdef const T* p1
    cdef T m
    if sc == 1:
        for c in range(n):
            col[c] = p0[c]
    else:
        for c in range(n):
            col[c] = p0[c * sc]
    for r in range(1, nrows, 2):
        p0 = xb + roff[r]
        p1 = xb + roff[r + 1 if r + 1 < nrows else r]
        if sc == 1:
            for c in range(n):
                col[c] = pick_ct(col[c], pick_ct(p0[c], p1[c], policy, tag), policy, tag)
        else:
            for c in range(n):
                col[c] = pick_ct(col[c], pick_ct(p0[c * sc], p1[c * sc], policy, tag),
                                 policy, tag)
    for w in range(g.W):
        m = col[tab[w * g.k]]
        for j in range(1, g.k):
            e = tab[w * g.k + j]
            if e != EXCLUDED:
                m = pick_ct(m, col[e], policy, tag)
        acc[w] = m


cdef void extrema_by_columns(const Geom* g, const T* xb, const int64_t* roff,
                             Py_ssize_t nrows, T* col, T* acc, bint omit,
                             Dir tag) noexcept nogil:
    """The extrema of one output row of given windows (adaptive, fractional; no
    interior, cval, nodata or indices), column first: each input column folded
    down the window rows, two rows a pass, then each window's columns.  The rows
    stream through vector lanes, where the tables took a compare per sample
    (1.9x PyTorch's time on non-divisible adaptive windows).  Which of tied
    ``-0.0`` and ``0.0`` is kept follows this order, as in the direct loops."""
    cdef PropTag prop
    cdef OmitTag omitted
    if omit:
        extrema_by_columns_as(g, xb, roff, nrows, col, acc, omitted, tag)
    else:
        extrema_by_columns_as(g, xb, roff, nrows, col, acc, prop, tag)


cdef bint indexed_interior(const Geom* g, const T* xb, const int64_t* roff,
                           const int64_t* rflat, Py_ssize_t nrows, T* acc, int64_t* idx,
                           bint omit, Dir tag) noexcept nogil:
    """The interior windows' extremum and its index, found in one vectorised loop
    (the first extremum in C order, the first NaN under 'propagate'; an all-NaN
    window under 'omit' reports its first sample, as :func:`take` does) for 2x2,
    3x3 and 2x2x2 windows at stride 2 along contiguous float rows; False (nothing
    done) for the others."""
    cdef int32_t S[64]
    cdef const T* P[4]
    cdef int64_t off[12]
    cdef int32_t tap_row[12]
    cdef Py_ssize_t w, i, nl, r, j, k = g.k
    cdef int32_t tap
    cdef bint is_min = Dir is MinTag
    if g.s != 2 or g.dil != 1 or g.sc != 1 or g.hi <= g.lo:
        return False
    if nrows * k > 12:
        return False
    for r in range(nrows):
        for j in range(k):
            tap_row[r * k + j] = <int32_t>r
            off[r * k + j] = rflat[r] * g.in_len[g.d] + j - g.p
    w = g.lo
    while w < g.hi:
        nl = min(<Py_ssize_t>64, g.hi - w)
        for r in range(nrows):
            P[r] = xb + roff[r] + (w * 2 - g.p)
        if not first_taps_stride2(P, k, nrows, nl, is_min, omit, S):
            return False   # not 2x2, 3x3 or 2x2x2: before any window is written
        for i in range(nl):
            tap = S[i] if S[i] >= 0 else 0
            r = tap_row[tap]
            acc[w + i] = P[r][2 * i + tap - r * k]
            idx[w + i] = off[tap] + (w + i) * 2
        w = w + nl
    return True


cdef int engine(const Geom* g, const T* x, T* out, int64_t* iout, bint want_idx,
                bint omit, bint has_nd, T nd, T cval, bint given_last, int nthreads,
                Dir tag) noexcept nogil:
    """Pool every output row; returns -1 when the scratch memory is not there.
    ``given_last``: the last axis' windows are given (``AxisWindows.given``)."""
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, b, orow, r, w, nrows
    cdef Py_ssize_t W = g.W
    cdef Py_ssize_t chunk = max(1, total // (8 * nthreads))
    cdef T* buf
    cdef T* acc
    cdef int64_t* idx
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef char* rcv
    cdef int64_t oo, io, os = g.out_stride[g.d]
    cdef bint direct, any_cval, edges, short
    cdef Py_ssize_t stream
    cdef const T* xb
    cdef const T* xr
    cdef T* op
    cdef int64_t* ip
    cdef RowScratch sc
    cdef Py_ssize_t c0, c1, blk = block_len(g, sizeof(T))
    cdef int64_t ahead = short_rows_ahead(g, sizeof(T))
    # Given windows without an interior (adaptive, fractional) fold column first,
    # in a row of column extrema per thread after its row scratch.
    # Interior passes of contiguous windows use it too (rows_direct), for a block
    # or a short row.
    cdef bint by_columns = given_last and g.lo == g.hi and not (want_idx or has_nd)
    cdef Py_ssize_t col_len = max(g.in_len[g.d] if by_columns else 0,
                                  (max(blk, W) - 1) * g.s + g.k
                                  if columns_first(g) else 0)
    cdef Py_ssize_t col_bytes = (col_len * sizeof(T) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t per_thread = scratch_size(g, sizeof(T)) + col_bytes
    cdef T* cols
    cdef Py_ssize_t geom_size = (sizeof(Geom) + 63) & ~(<Py_ssize_t>63)
    cdef char* scratch = <char*>aligned_alloc(64, (per_thread + geom_size) * nthreads)
    cdef Geom* own
    cdef const Geom* gp
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        sc = scratch_at(scratch + threadid() * per_thread, g, sizeof(T))
        # Per-item windows: each thread re-points its own copy of the geometry.
        own = <Geom*>(scratch + nthreads * per_thread + threadid() * geom_size)
        own[0] = g[0]
        buf = <T*>sc.acc
        idx = sc.aux
        roff = sc.roff
        rflat = sc.rflat
        rcv = sc.rcv
        cols = <T*>(scratch + (threadid() + 1) * per_thread - col_bytes)
        # Dynamic chunks: each output row is written by exactly one iteration, so
        # the result does not depend on which thread ran it, and a core busy with
        # another process does not hold the whole call back.
        for t in prange(total, schedule="dynamic", chunksize=chunk):
            b = t // g.nrows_out
            orow = t - b * g.nrows_out
            gp = g
            if g.plane != NULL:
                own.tables = g.tables + g.plane[b * g.plane_stride] * g.tab_plane
                gp = own
            # Assigned in the loop body so that Cython makes them thread-private
            # (collect_rows writes them through pointers, which it cannot see).
            oo = 0
            io = 0
            nrows = collect_rows(gp, orow, roff, rflat, rcv, &oo, &io)
            xb = x + b * gp.in_stride[0]
            op = out + b * gp.out_stride[0] + oo
            any_cval = False
            for r in range(nrows):
                any_cval = any_cval or rcv[r]
            # Index tracking, nodata and cval rows need the per-sample path.
            direct = not (want_idx or has_nd or any_cval)
            # A contiguous output row is its own accumulator.
            acc = op if (direct and os == 1) else buf
            if direct and by_columns and nrows > 0:
                extrema_by_columns(gp, xb, roff, nrows, cols, acc, omit, tag)
                if acc != op:
                    for w in range(W):
                        op[w * os] = acc[w]
                continue
            # Rows of interior windows only (NCHW maps) skip the edge bookkeeping:
            # for 112-wide maps it took a tenth of the time.
            edges = gp.lo > 0 or gp.hi < W
            if edges or not direct:
                for w in range(W):
                    idx[w] = -1
            if direct:
                for r in range(nrows if edges else 0):
                    row_tables(gp, xb + roff[r], rflat[r], False, cval, 0, gp.lo,
                               acc, idx, omit, False, nd, tag)
                    row_tables(gp, xb + roff[r], rflat[r], False, cval, gp.hi, W,
                               acc, idx, omit, False, nd, tag)
                # Interior, block by block with the next block prefetched, up to
                # four rows per pass; a short row (NCHW maps) in one block, its
                # rows a few output rows ahead prefetched.  Float32 2x2 and 2x2x2
                # windows of longer rows stream through a SIMD loop that
                # prefetches as it goes (the few outputs it leaves go as a short
                # row); for short rows that was no faster (A/B, 112-wide maps).
                short = not edges and W <= blk
                c0 = 0 if short else gp.lo
                stream = 0 if short else pair_stream(gp, nrows, x)
                if T is float:
                    if stream:
                        xr = xb + 2 * c0 - gp.p
                        c0 = c0 + fp_extrema2x2_f32(
                            xr + roff[0], xr + roff[1], xr + roff[2 if nrows == 4 else 0],
                            xr + roff[3 if nrows == 4 else 0], nrows, acc + c0, gp.hi - c0,
                            stream, Dir is MinTag, omit)
                if short or stream:
                    if short:
                        prefetch_rows(gp, xb, roff, nrows, ahead)
                    for r in range(0, nrows, 4):
                        rows_direct(gp, xb, roff + r, min(4, nrows - r), acc, c0, gp.hi,
                                    cols, r == 0, omit, tag)
                    c0 = gp.hi
                while c0 < gp.hi:
                    c1 = min(c0 + blk, gp.hi)
                    prefetch_block(gp, xb, roff, nrows, c1, min(c1 + blk, gp.hi))
                    for r in range(0, nrows, 4):
                        rows_direct(gp, xb, roff + r, min(4, nrows - r), acc, c0, c1,
                                    cols, r == 0, omit, tag)
                    c0 = c1
            elif (want_idx and not has_nd and not any_cval
                  and indexed_interior(gp, xb, roff, rflat, nrows, acc, idx, omit, tag)):
                for r in range(nrows):
                    row_tables(gp, xb + roff[r], rflat[r], False, cval, 0, gp.lo,
                               acc, idx, omit, False, nd, tag)
                    row_tables(gp, xb + roff[r], rflat[r], False, cval, gp.hi, W,
                               acc, idx, omit, False, nd, tag)
            else:
                for r in range(nrows):
                    row_tables(gp, xb + roff[r], rflat[r], rcv[r], cval, 0, W,
                               acc, idx, omit, has_nd, nd, tag)
            if has_nd:
                # Only nodata (and, under 'omit', NaN) in the window: nodata.
                for w in range(W):
                    if idx[w] < 0:
                        acc[w] = nd
                        idx[w] = -2 - idx[w]
                    elif omit and acc[w] != acc[w]:
                        acc[w] = nd
            if acc != op:
                for w in range(W):
                    op[w * os] = acc[w]
            if want_idx:
                ip = iout + b * gp.idx_stride[0] + io
                for w in range(W):
                    ip[w * gp.idx_stride[gp.d]] = idx[w]
    free(scratch)
    return 0


def extremum(const T[:] dtype_tag, bint is_min, cnp.ndarray x, cnp.ndarray out,
             cnp.ndarray idx, const int64_t[::1] tables, const int64_t[::1] tab_off,
             const int64_t[::1] width, const int64_t[::1] out_len,
             const int64_t[::1] interior, bint omit, object nodata, object cval,
             int nthreads, const int64_t[:] plane=None, int64_t tab_plane=0):
    """Max (or min) pool ``x`` (batch, *pooled) into ``out`` (and ``idx``, or None).

    ``dtype_tag`` is an empty array of ``x``'s dtype that selects the
    specialisation.  ``plane`` (one per batch item) and ``tab_plane``: batch item
    ``b`` reads the tables ``plane[b] * tab_plane`` entries on (windows that differ
    per item).  Inputs are trusted: fastpool._pool validates them.
    """
    cdef Geom g = make_geom(x, out, idx, tables, tab_off, width, out_len, interior)
    if plane is not None:
        g.plane = &plane[0]
        g.plane_stride = plane.strides[0] // 8
        g.tab_plane = tab_plane
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None
    cdef bint want_idx = idx is not None
    cdef bint given_last = interior.shape[0] > 6 and interior[6] != 0
    cdef const T* xp = <const T*>cnp.PyArray_DATA(x)
    cdef T* op = <T*>cnp.PyArray_DATA(out)
    cdef int64_t* ip = <int64_t*>cnp.PyArray_DATA(idx) if want_idx else NULL
    cdef MaxTag mx
    cdef MinTag mn
    cdef int rc
    with nogil:
        if is_min:
            rc = engine(&g, xp, op, ip, want_idx, omit, has_nd, nd, cv, given_last, nthreads, mn)
        else:
            rc = engine(&g, xp, op, ip, want_idx, omit, has_nd, nd, cv, given_last, nthreads, mx)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread row buffers")
