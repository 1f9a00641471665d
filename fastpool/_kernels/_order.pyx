"""Order statistics (rank, median, percentile) and mode pooling over the shared geometry.

The traversal is the extremum family's: one output row per iteration, its window
rows from :func:`collect_rows`.  Each output is a *selection*, so values never pass
through another type and every dtype stays exact.

Three ways to reduce a window, fastest first:

* register networks for the windows users run most on 2-D rows (2x2 rank of 4,
  3x3 median, 2x2 mode): min/max and compare/select across output columns, which
  the compiler vectorises;
* *lanes* for any other full interior window of up to ``MAX_LANE_WINDOW`` samples:
  the window samples of up to ``LANES`` neighbouring outputs are gathered into a
  transposed block (sample-major), then a comparator network (computed in Python:
  Batcher's sort, pruned to the comparators the wanted rank depends on) or the
  mode counting runs across the block, again vectorised across outputs;
* a scalar path for everything else (edge windows, cval rows, nodata, windows with
  NaN under 'omit', big windows): gather the window's valid samples, then
  introselect (rank) or sort and count runs (mode).

NaN: the fast paths flag NaN per output; under 'propagate' a flagged output is NaN,
under 'omit' it is recomputed by the scalar path.

Mode runs on integer keys: float input is viewed by the caller as signed integers
of the same width and ``key_mask`` turns those bits into keys that order like the
floats (-0.0 below +0.0, bitwise equality).  The transform is its own inverse.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free
from libc.string cimport memset
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.math cimport NAN

cimport numpy as cnp

from ._common cimport (EXCLUDED, aligned_alloc, Geom, T, collect_rows, highest,
                       lowest, make_geom, select)

cnp.import_array()

cdef extern from "_fastpool.h":
    bint unordered_f32 "FP_UNORDERED" (float, float) noexcept nogil
    bint unordered_f64 "FP_UNORDERED" (double, double) noexcept nogil
    Py_ssize_t fp_median3x3_f32(const float* q0, const float* q1, const float* q2,
                                float* o, Py_ssize_t n, int* any_nan) noexcept nogil

cdef enum:
    LANES = 64
    MAX_LANE_WINDOW = 64
    MODE_COUNT_WINDOW = 8   # mode by pairwise comparisons up to here, sort above
    MODE_HIST_WINDOW = 64   # 8- and 16-bit mode by counting above this many values
    SMALL_SORT = 24         # insertion sort below this many values

# Which order statistic a rank kernel computes.
cpdef enum RankKind:
    RANK_FIXED = 0
    RANK_MEDIAN = 1
    RANK_PERCENTILE = 2


cdef struct RankSpec:
    int kind
    int64_t rank
    double percentile


cdef inline Py_ssize_t rank_of(const RankSpec* s, Py_ssize_t n) noexcept nogil:
    """The rank wanted from ``n`` values (scipy.ndimage's rules), clamped to them."""
    cdef int64_t r
    if s.kind == RANK_MEDIAN:
        r = n // 2
    elif s.kind == RANK_PERCENTILE:
        r = n - 1 if s.percentile >= 100.0 else <int64_t>(<double>n * s.percentile / 100.0)
    else:
        r = s.rank if s.rank >= 0 else n + s.rank
    if r < 0:
        r = 0
    if r > n - 1:
        r = n - 1
    return r


cdef inline T tmin(T a, T b) noexcept nogil:
    return select(b < a, b, a)


cdef inline T tmax(T a, T b) noexcept nogil:
    return select(a < b, b, a)


cdef inline T med3(T a, T b, T c) noexcept nogil:
    return tmax(tmin(a, b), tmin(tmax(a, b), c))


cdef inline bint is_nan(T v) noexcept nogil:
    if T is float or T is double:
        return v != v
    else:
        return False


# --------------------------------------------------------------------------- keys

cdef inline T flip(T v, T key_mask) noexcept nogil:
    """Float bits <-> ordered integer keys (``key_mask`` 0: the identity)."""
    if T is int32_t:
        return v ^ ((v >> 31) & key_mask)
    elif T is int64_t:
        return v ^ ((v >> 63) & key_mask)
    else:
        return v


cdef struct KeyInfo:
    # Keys above ``nan_hi`` or below ``nan_lo`` are NaN (for integer input the
    # bounds are the type's range: nothing is).
    int64_t mask
    int64_t nan_lo
    int64_t nan_hi
    int64_t nd_alt   # a second nodata key: the other zero of a float zero nodata


cdef inline bint key_is_nan(T k, const KeyInfo* ki) noexcept nogil:
    if T is int32_t or T is int64_t:
        return (k > <T>ki.nan_hi) | (k < <T>ki.nan_lo)
    else:
        return False


# --------------------------------------------------------------------------- scalar

cdef inline void swap(T* v, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef T t = v[i]
    v[i] = v[j]
    v[j] = t


cdef void insertion_sort(T* v, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef T t
    for i in range(1, n):
        t = v[i]
        j = i - 1
        while j >= 0 and t < v[j]:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = t


cdef void sift_down(T* v, Py_ssize_t root, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t child
    while True:
        child = 2 * root + 1
        if child >= n:
            return
        if child + 1 < n and v[child] < v[child + 1]:
            child += 1
        if not (v[root] < v[child]):
            return
        swap(v, root, child)
        root = child


cdef void heap_sort(T* v, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n // 2 - 1, -1, -1):
        sift_down(v, i, n)
    for i in range(n - 1, 0, -1):
        swap(v, 0, i)
        sift_down(v, 0, i)


cdef void sort_values(T* v, Py_ssize_t n) noexcept nogil:
    if n < SMALL_SORT:
        insertion_sort(v, n)
    else:
        heap_sort(v, n)


cdef T select_rank(T* v, Py_ssize_t n, Py_ssize_t r) noexcept nogil:
    """The value of rank ``r`` of ``v[:n]`` (NaN-free), reordering ``v``.

    Introselect: Hoare partitions around a median of three, with a heap sort of
    what is left once the partitions stop shrinking fast enough (O(n log n)
    worst case, no recursion).
    """
    cdef Py_ssize_t lo = 0, hi = n - 1, i, j, mid, depth = 8
    cdef Py_ssize_t m = n
    cdef T pivot
    while m > 1:
        depth += 2
        m >>= 1
    while hi > lo:
        if hi - lo < SMALL_SORT:
            insertion_sort(v + lo, hi - lo + 1)
            break
        if depth == 0:
            heap_sort(v + lo, hi - lo + 1)
            break
        depth -= 1
        mid = lo + (hi - lo) // 2
        if v[mid] < v[lo]:
            swap(v, mid, lo)
        if v[hi] < v[lo]:
            swap(v, hi, lo)
        if v[hi] < v[mid]:
            swap(v, hi, mid)
        pivot = v[mid]
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while pivot < v[j]:
                j -= 1
            if i <= j:
                swap(v, i, j)
                i += 1
                j -= 1
        if r <= j:
            hi = j
        elif r >= i:
            lo = i
        else:
            break
    return v[r]


cdef T mode_of_sorted(const T* v, Py_ssize_t n) noexcept nogil:
    """Most frequent value of sorted ``v[:n]``; the first (smallest) on ties."""
    cdef Py_ssize_t j, run = 1, best_run = 1
    cdef T best = v[0]
    for j in range(1, n):
        run = run + 1 if v[j] == v[j - 1] else 1
        if run > best_run:
            best_run = run
            best = v[j]
    return best


cdef inline Py_ssize_t bin_of(T v) noexcept nogil:
    """The counting bin of an 8- or 16-bit value, in the values' order."""
    if T is uint8_t or T is uint16_t:
        return <Py_ssize_t>v
    elif T is int8_t:
        return <Py_ssize_t>(<uint8_t>v ^ 0x80)
    elif T is int16_t:
        return <Py_ssize_t>(<uint16_t>v ^ 0x8000)
    else:
        return 0


cdef T mode_by_counts(const T* v, Py_ssize_t n, int32_t* hist) noexcept nogil:
    """Most frequent value of ``v[:n]``, the smallest on ties, by counting into
    ``hist`` (one bin per value of an 8- or 16-bit type, all zero, and left so):
    linear in ``n`` where sorting is not."""
    cdef Py_ssize_t j
    cdef int32_t c, best_count = 0
    cdef T best = v[0]
    for j in range(n):
        hist[bin_of(v[j])] += 1
    for j in range(n):
        c = hist[bin_of(v[j])]
        if c > best_count or (c == best_count and v[j] < best):
            best_count = c
            best = v[j]
    for j in range(n):
        hist[bin_of(v[j])] = 0
    return best


cdef T mode_by_hash(const T* v, Py_ssize_t n, T* keys, int32_t* counts) noexcept nogil:
    """Most frequent value of ``v[:n]``, the smallest on ties, by counting in an
    open-addressing table (``keys``, ``counts``: at least ``2 * n`` slots rounded
    up to a power of two, ``counts`` all zero, and left so): linear in ``n``."""
    cdef Py_ssize_t size = 1, j, i
    cdef int bits = 0
    cdef int32_t best_count = 0
    cdef T best = v[0]
    while size < 2 * n:
        size <<= 1
        bits += 1
    cdef uint64_t mask = <uint64_t>size - 1
    for j in range(n):
        i = <Py_ssize_t>(((<uint64_t>v[j]) * 0x9E3779B97F4A7C15ULL) >> (64 - bits)) \
            if bits else 0
        while counts[i] != 0 and keys[i] != v[j]:
            i = <Py_ssize_t>((<uint64_t>i + 1) & mask)
        keys[i] = v[j]
        counts[i] += 1
    for i in range(size):
        if counts[i] > best_count or (counts[i] == best_count and counts[i] != 0
                                      and keys[i] < best):
            best_count = counts[i]
            best = keys[i]
    memset(counts, 0, size * sizeof(int32_t))
    return best


cdef Py_ssize_t gather(const Geom* g, const T* xb, const int64_t* roff,
                       const char* rcv, Py_ssize_t nrows, Py_ssize_t w, T* vals,
                       bint omit, bint has_nd, T nd, T cval, bint* saw_nan,
                       const KeyInfo* ki) noexcept nogil:
    """The valid samples of output column ``w`` into ``vals`` (keys when ``ki``);
    returns how many.  ``saw_nan``: a NaN was in the window (kept unless 'omit')."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1] + w * g.k
    cdef Py_ssize_t r, j, n = 0
    cdef int64_t e
    cdef T v
    cdef bint nan
    for r in range(nrows):
        for j in range(g.k):
            e = tab[j]
            if e == EXCLUDED:
                continue
            if e < EXCLUDED or rcv[r]:
                v = cval
            else:
                v = xb[roff[r] + e * g.sc]
            if has_nd and (v == nd or (ki != NULL and v == <T>ki.nd_alt)):
                continue
            if ki != NULL:
                v = flip(v, <T>ki.mask)
                nan = key_is_nan(v, ki)
            else:
                nan = is_nan(v)
            if nan:
                saw_nan[0] = True
                if omit:
                    continue
            vals[n] = v
            n += 1
    return n


cdef T nan_value(T kind, const KeyInfo* ki) noexcept nogil:
    """A NaN of the result type (for keys: a quiet NaN's bits)."""
    if T is float or T is double:
        return NAN
    elif T is int32_t:
        return <T>0x7FC00000 if ki != NULL and ki.mask != 0 else 0
    elif T is int64_t:
        return <T>0x7FF8000000000000 if ki != NULL and ki.mask != 0 else 0
    else:
        return 0


cdef void scalar_column(const Geom* g, const T* xb, const int64_t* roff,
                        const char* rcv, Py_ssize_t nrows, Py_ssize_t w, T* vals,
                        T* op, int64_t os, const RankSpec* spec, bint omit,
                        bint has_nd, T nd, T cval, const KeyInfo* ki,
                        int32_t* hist, T* hkeys) noexcept nogil:
    """One output by the scalar path: rank (``ki`` NULL) or mode (``ki`` set;
    ``hist``: the thread's zeroed counts for windows too large to sort fast, or
    NULL: one bin per value for 8- and 16-bit input, else a hash table's counts
    whose keys are ``hkeys``)."""
    cdef bint saw_nan = False
    cdef Py_ssize_t n = gather(g, xb, roff, rcv, nrows, w, vals, omit, has_nd, nd, cval,
                               &saw_nan, ki)
    cdef T res
    if saw_nan and not omit:
        res = nan_value(cval, ki)
        op[w * os] = res
        return
    if n == 0:
        # Only missing samples: nodata if there is one, else (all NaN) NaN.
        op[w * os] = nd if has_nd else nan_value(cval, ki)
        return
    if ki == NULL:
        res = select_rank(vals, n, rank_of(spec, n))
    elif hist != NULL and n > MODE_HIST_WINDOW:
        if T is uint8_t or T is int8_t or T is uint16_t or T is int16_t:
            res = mode_by_counts(vals, n, hist)
        else:
            res = flip(mode_by_hash(vals, n, hkeys, hist), <T>ki.mask)
    else:
        sort_values(vals, n)
        res = flip(mode_of_sorted(vals, n), <T>ki.mask)
    op[w * os] = res


# --------------------------------------------------------------------------- registers

# The rank taken from four values, as a compile-time tag: a runtime rank in the
# loop body keeps gcc from vectorising the float loops.
cdef struct Rank0:
    char _unused
cdef struct Rank1:
    char _unused
cdef struct Rank2:
    char _unused
cdef struct Rank3:
    char _unused
ctypedef fused RankOf4:
    Rank0
    Rank1
    Rank2
    Rank3


cdef inline T rank4(T a, T b, T c, T d, RankOf4 rank) noexcept nogil:
    """Rank ``rank`` of four values: at most six min/max."""
    cdef T lo1 = tmin(a, b), hi1 = tmax(a, b), lo2 = tmin(c, d), hi2 = tmax(c, d)
    if RankOf4 is Rank0:
        return tmin(lo1, lo2)
    elif RankOf4 is Rank1:
        return tmin(tmax(lo1, lo2), tmin(hi1, hi2))
    elif RankOf4 is Rank2:
        return tmax(tmax(lo1, lo2), tmin(hi1, hi2))
    else:
        return tmax(hi1, hi2)


cdef inline bint either_nan(T a, T b) noexcept nogil:
    if T is float:
        return unordered_f32(a, b)
    elif T is double:
        return unordered_f64(a, b)
    else:
        return False


cdef inline bint nan4(T a, T b, T c, T d) noexcept nogil:
    return either_nan(a, b) | either_nan(c, d)


cdef bint rank2x2_as(const T* q0, const T* q1, int64_t jump, T* op, int64_t os,
                     Py_ssize_t n, RankOf4 rank) noexcept nogil:
    cdef Py_ssize_t i
    cdef T a, b, c, d, res
    cdef bint nan, any_nan = False
    cdef T qnan = nan_value(<T>0, NULL)
    if jump == 2 and os == 1:
        for i in range(n):
            a = q0[2 * i]
            b = q0[2 * i + 1]
            c = q1[2 * i]
            d = q1[2 * i + 1]
            res = rank4(a, b, c, d, rank)
            if T is float or T is double:
                nan = nan4(a, b, c, d)
                any_nan = any_nan | nan
                res = select(nan, qnan, res)
            op[i] = res
    else:
        for i in range(n):
            a = q0[i * jump]
            b = q0[i * jump + 1]
            c = q1[i * jump]
            d = q1[i * jump + 1]
            res = rank4(a, b, c, d, rank)
            if T is float or T is double:
                nan = nan4(a, b, c, d)
                any_nan = any_nan | nan
                res = select(nan, qnan, res)
            op[i * os] = res
    return any_nan


cdef bint rank2x2_row(const T* q0, const T* q1, int64_t jump, Py_ssize_t r, T* op,
                      int64_t os, Py_ssize_t n) noexcept nogil:
    """Rank ``r`` of each 2x2 window of rows ``q0``/``q1`` into ``op[:n]``; returns
    whether a window held NaN (its output is then NaN)."""
    cdef Rank0 r0
    cdef Rank1 r1
    cdef Rank2 r2
    cdef Rank3 r3
    if r == 0:
        return rank2x2_as(q0, q1, jump, op, os, n, r0)
    elif r == 1:
        return rank2x2_as(q0, q1, jump, op, os, n, r1)
    elif r == 2:
        return rank2x2_as(q0, q1, jump, op, os, n, r2)
    else:
        return rank2x2_as(q0, q1, jump, op, os, n, r3)


cdef inline T median9(const T* q0, const T* q1, const T* q2, int64_t o) noexcept nogil:
    """Median of the 3x3 window whose top-left sample is at offset ``o``: sort each
    column, then the median of (max of lows, median of middles, min of highs)."""
    cdef T a0 = q0[o], b0 = q1[o], c0 = q2[o]
    cdef T a1 = q0[o + 1], b1 = q1[o + 1], c1 = q2[o + 1]
    cdef T a2 = q0[o + 2], b2 = q1[o + 2], c2 = q2[o + 2]
    cdef T l0 = tmin(a0, b0), h0 = tmax(a0, b0)
    cdef T l1 = tmin(a1, b1), h1 = tmax(a1, b1)
    cdef T l2 = tmin(a2, b2), h2 = tmax(a2, b2)
    # column i sorted: (min(l, c), med(l, h, c), max(h, c)) with l <= h
    cdef T lo0 = tmin(l0, c0), mi0 = tmax(l0, tmin(h0, c0)), hi0 = tmax(h0, c0)
    cdef T lo1 = tmin(l1, c1), mi1 = tmax(l1, tmin(h1, c1)), hi1 = tmax(h1, c1)
    cdef T lo2 = tmin(l2, c2), mi2 = tmax(l2, tmin(h2, c2)), hi2 = tmax(h2, c2)
    return med3(tmax(tmax(lo0, lo1), lo2), med3(mi0, mi1, mi2),
                tmin(tmin(hi0, hi1), hi2))


cdef inline bint nan9(const T* q0, const T* q1, const T* q2, int64_t o) noexcept nogil:
    return (nan4(q0[o], q0[o + 1], q0[o + 2], q1[o]) | nan4(q1[o + 1], q1[o + 2], q2[o],
            q2[o + 1]) | either_nan(q2[o + 2], q2[o + 2]))


cdef bint median3x3_row(const T* q0, const T* q1, const T* q2, int64_t jump, T* op,
                        int64_t os, Py_ssize_t n) noexcept nogil:
    """Median of each 3x3 window (columns adjacent) into ``op[:n]``; returns whether
    a window held NaN (its output is then NaN)."""
    cdef Py_ssize_t i
    cdef T res
    cdef bint nan, any_nan = False
    cdef T qnan = nan_value(<T>0, NULL)
    cdef int nan_seen = 0
    if jump == 2 and os == 1:
        i = 0
        if T is float:
            i = fp_median3x3_f32(q0, q1, q2, op, n, &nan_seen)
            any_nan = nan_seen != 0
        for i in range(i, n):
            res = median9(q0, q1, q2, 2 * i)
            if T is float or T is double:
                nan = nan9(q0, q1, q2, 2 * i)
                any_nan = any_nan | nan
                res = select(nan, qnan, res)
            op[i] = res
    else:
        for i in range(n):
            res = median9(q0, q1, q2, i * jump)
            if T is float or T is double:
                nan = nan9(q0, q1, q2, i * jump)
                any_nan = any_nan | nan
                res = select(nan, qnan, res)
            op[i * os] = res
    return any_nan


# Whether a mode register path skips a nodata value, as a compile-time tag (a
# runtime flag in the loop body costs the common case its speed).
cdef struct NoNodata:
    char _unused
cdef struct WithNodata:
    char _unused
ctypedef fused NodataTag:
    NoNodata
    WithNodata


cdef inline T better_mode(T best, T bc, T v, T c) noexcept nogil:
    """Whether value ``v`` seen ``c`` times beats ``best`` seen ``bc`` times."""
    return (c > bc) | ((c == bc) & (v < best))


cdef inline T mode4(T a, T b, T c, T d, T z, NodataTag tag) noexcept nogil:
    """Mode of four keys, ties to the smallest, without counting: with no equal pair
    every value is a mode (take the smallest); otherwise the modes are among the
    values that have an equal partner (one pair, two pairs, a triple or all four),
    and the smallest of those is the answer in every case.  ``WithNodata``: values
    equal to ``z`` are not counted, and a window of only ``z`` gives ``z``."""
    cdef bint va = True, vb = True, vc = True, vd = True
    if NodataTag is WithNodata:
        va = a != z
        vb = b != z
        vc = c != z
        vd = d != z
    cdef bint ab = (a == b) & va, ac = (a == c) & va, ad = (a == d) & va
    cdef bint bc = (b == c) & vb, bd = (b == d) & vb, cd = (c == d) & vc
    cdef T top = highest(a)
    cdef T paired = tmin(tmin(select(ab | ac | ad, a, top), select(ab | bc | bd, b, top)),
                         tmin(select(ac | bc | cd, c, top), select(ad | bd | cd, d, top)))
    cdef T single
    if NodataTag is WithNodata:
        single = tmin(tmin(select(va, a, top), select(vb, b, top)),
                      tmin(select(vc, c, top), select(vd, d, top)))
        single = select(va | vb | vc | vd, single, z)
    else:
        single = tmin(tmin(a, b), tmin(c, d))
    return select(ab | ac | ad | bc | bd | cd, paired, single)


cdef bint mode2x2_as(const T* q0, const T* q1, int64_t jump, T* op, int64_t os,
                     Py_ssize_t n, const KeyInfo* ki, T z, NodataTag tag) noexcept nogil:
    cdef Py_ssize_t i
    cdef T a, b, c, d, res
    cdef KeyInfo kl = ki[0]   # a local copy: stores to op cannot alias it
    cdef T m = <T>ki.mask
    cdef T qnan = nan_value(<T>0, ki)
    cdef bint nan, any_nan = False
    if jump == 2 and os == 1 and m == 0:
        for i in range(n):
            op[i] = mode4(q0[2 * i], q0[2 * i + 1], q1[2 * i], q1[2 * i + 1], z, tag)
        return False
    z = flip(z, m)
    for i in range(n):
        a = flip(q0[i * jump], m)
        b = flip(q0[i * jump + 1], m)
        c = flip(q1[i * jump], m)
        d = flip(q1[i * jump + 1], m)
        res = flip(mode4(a, b, c, d, z, tag), m)
        if T is int32_t or T is int64_t:
            nan = (key_is_nan(a, &kl) | key_is_nan(b, &kl) | key_is_nan(c, &kl)
                   | key_is_nan(d, &kl))
            any_nan = any_nan | nan
            res = select(nan, qnan, res)
        op[i * os] = res
    return any_nan


cdef bint mode2x2_row(const T* q0, const T* q1, int64_t jump, T* op, int64_t os,
                      Py_ssize_t n, const KeyInfo* ki, bint has_nd, T nd) noexcept nogil:
    """Mode of each 2x2 window into ``op[:n]``, ``nd`` (the raw nodata value) not
    counted when ``has_nd``; returns whether a window held NaN (its output is then
    NaN)."""
    cdef NoNodata plain
    cdef WithNodata sparse
    if has_nd:
        return mode2x2_as(q0, q1, jump, op, os, n, ki, nd, sparse)
    return mode2x2_as(q0, q1, jump, op, os, n, ki, nd, plain)


cdef inline T mode8(T v0, T v1, T v2, T v3, T v4, T v5, T v6, T v7, T z,
                   NodataTag tag) noexcept nogil:
    """Mode of eight keys by pairwise counts (no sort), ties to the smallest.
    Written out in full: gcc vectorises straight-line code across outputs, not the
    nested loops it would have to unroll first.  ``WithNodata``: values equal to
    ``z`` count 0 (a window of only ``z`` gives ``z``)."""
    cdef T e, best, bc, better
    cdef T c0 = 1, c1 = 1, c2 = 1, c3 = 1, c4 = 1, c5 = 1, c6 = 1, c7 = 1
    if NodataTag is WithNodata:
        c0 = v0 != z
        c1 = v1 != z
        c2 = v2 != z
        c3 = v3 != z
        c4 = v4 != z
        c5 = v5 != z
        c6 = v6 != z
        c7 = v7 != z
    if NodataTag is WithNodata:
        e = (v0 == v1) & (v0 != z)
    else:
        e = v0 == v1
    c0 = c0 + e
    c1 = c1 + e
    if NodataTag is WithNodata:
        e = (v0 == v2) & (v0 != z)
    else:
        e = v0 == v2
    c0 = c0 + e
    c2 = c2 + e
    if NodataTag is WithNodata:
        e = (v0 == v3) & (v0 != z)
    else:
        e = v0 == v3
    c0 = c0 + e
    c3 = c3 + e
    if NodataTag is WithNodata:
        e = (v0 == v4) & (v0 != z)
    else:
        e = v0 == v4
    c0 = c0 + e
    c4 = c4 + e
    if NodataTag is WithNodata:
        e = (v0 == v5) & (v0 != z)
    else:
        e = v0 == v5
    c0 = c0 + e
    c5 = c5 + e
    if NodataTag is WithNodata:
        e = (v0 == v6) & (v0 != z)
    else:
        e = v0 == v6
    c0 = c0 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v0 == v7) & (v0 != z)
    else:
        e = v0 == v7
    c0 = c0 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v1 == v2) & (v1 != z)
    else:
        e = v1 == v2
    c1 = c1 + e
    c2 = c2 + e
    if NodataTag is WithNodata:
        e = (v1 == v3) & (v1 != z)
    else:
        e = v1 == v3
    c1 = c1 + e
    c3 = c3 + e
    if NodataTag is WithNodata:
        e = (v1 == v4) & (v1 != z)
    else:
        e = v1 == v4
    c1 = c1 + e
    c4 = c4 + e
    if NodataTag is WithNodata:
        e = (v1 == v5) & (v1 != z)
    else:
        e = v1 == v5
    c1 = c1 + e
    c5 = c5 + e
    if NodataTag is WithNodata:
        e = (v1 == v6) & (v1 != z)
    else:
        e = v1 == v6
    c1 = c1 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v1 == v7) & (v1 != z)
    else:
        e = v1 == v7
    c1 = c1 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v2 == v3) & (v2 != z)
    else:
        e = v2 == v3
    c2 = c2 + e
    c3 = c3 + e
    if NodataTag is WithNodata:
        e = (v2 == v4) & (v2 != z)
    else:
        e = v2 == v4
    c2 = c2 + e
    c4 = c4 + e
    if NodataTag is WithNodata:
        e = (v2 == v5) & (v2 != z)
    else:
        e = v2 == v5
    c2 = c2 + e
    c5 = c5 + e
    if NodataTag is WithNodata:
        e = (v2 == v6) & (v2 != z)
    else:
        e = v2 == v6
    c2 = c2 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v2 == v7) & (v2 != z)
    else:
        e = v2 == v7
    c2 = c2 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v3 == v4) & (v3 != z)
    else:
        e = v3 == v4
    c3 = c3 + e
    c4 = c4 + e
    if NodataTag is WithNodata:
        e = (v3 == v5) & (v3 != z)
    else:
        e = v3 == v5
    c3 = c3 + e
    c5 = c5 + e
    if NodataTag is WithNodata:
        e = (v3 == v6) & (v3 != z)
    else:
        e = v3 == v6
    c3 = c3 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v3 == v7) & (v3 != z)
    else:
        e = v3 == v7
    c3 = c3 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v4 == v5) & (v4 != z)
    else:
        e = v4 == v5
    c4 = c4 + e
    c5 = c5 + e
    if NodataTag is WithNodata:
        e = (v4 == v6) & (v4 != z)
    else:
        e = v4 == v6
    c4 = c4 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v4 == v7) & (v4 != z)
    else:
        e = v4 == v7
    c4 = c4 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v5 == v6) & (v5 != z)
    else:
        e = v5 == v6
    c5 = c5 + e
    c6 = c6 + e
    if NodataTag is WithNodata:
        e = (v5 == v7) & (v5 != z)
    else:
        e = v5 == v7
    c5 = c5 + e
    c7 = c7 + e
    if NodataTag is WithNodata:
        e = (v6 == v7) & (v6 != z)
    else:
        e = v6 == v7
    c6 = c6 + e
    c7 = c7 + e
    # Nodata: start from (z, count 0), so z stays only if nothing else is there.
    if NodataTag is WithNodata:
        best = z
        bc = 0
        better = better_mode(best, bc, v0, c0)
        best = select(better != 0, v0, best)
        bc = select(better != 0, c0, bc)
    else:
        best = v0
        bc = c0
    better = better_mode(best, bc, v1, c1)
    best = select(better != 0, v1, best)
    bc = select(better != 0, c1, bc)
    better = better_mode(best, bc, v2, c2)
    best = select(better != 0, v2, best)
    bc = select(better != 0, c2, bc)
    better = better_mode(best, bc, v3, c3)
    best = select(better != 0, v3, best)
    bc = select(better != 0, c3, bc)
    better = better_mode(best, bc, v4, c4)
    best = select(better != 0, v4, best)
    bc = select(better != 0, c4, bc)
    better = better_mode(best, bc, v5, c5)
    best = select(better != 0, v5, best)
    bc = select(better != 0, c5, bc)
    better = better_mode(best, bc, v6, c6)
    best = select(better != 0, v6, best)
    bc = select(better != 0, c6, bc)
    better = better_mode(best, bc, v7, c7)
    best = select(better != 0, v7, best)
    return best


cdef bint mode2x2x2_as(const T* q0, const T* q1, const T* q2, const T* q3,
                       int64_t jump, T* op, int64_t os, Py_ssize_t n,
                       const KeyInfo* ki, T z, NodataTag tag) noexcept nogil:
    cdef Py_ssize_t i
    cdef T v[8]
    cdef T res
    cdef KeyInfo kl = ki[0]   # a local copy: stores to op cannot alias it
    cdef T m = <T>ki.mask
    cdef T qnan = nan_value(<T>0, ki)
    cdef bint nan, any_nan = False
    if jump == 2 and os == 1 and m == 0:
        for i in range(n):
            op[i] = mode8(q0[2 * i], q0[2 * i + 1], q1[2 * i], q1[2 * i + 1],
                          q2[2 * i], q2[2 * i + 1], q3[2 * i], q3[2 * i + 1], z, tag)
        return False
    z = flip(z, m)
    for i in range(n):
        v[0] = flip(q0[i * jump], m)
        v[1] = flip(q0[i * jump + 1], m)
        v[2] = flip(q1[i * jump], m)
        v[3] = flip(q1[i * jump + 1], m)
        v[4] = flip(q2[i * jump], m)
        v[5] = flip(q2[i * jump + 1], m)
        v[6] = flip(q3[i * jump], m)
        v[7] = flip(q3[i * jump + 1], m)
        res = flip(mode8(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], z, tag), m)
        if T is int32_t or T is int64_t:
            nan = (key_is_nan(v[0], &kl) | key_is_nan(v[1], &kl) | key_is_nan(v[2], &kl)
                   | key_is_nan(v[3], &kl) | key_is_nan(v[4], &kl) | key_is_nan(v[5], &kl)
                   | key_is_nan(v[6], &kl) | key_is_nan(v[7], &kl))
            any_nan = any_nan | nan
            res = select(nan, qnan, res)
        op[i * os] = res
    return any_nan


cdef bint mode2x2x2_row(const T* q0, const T* q1, const T* q2, const T* q3,
                        int64_t jump, T* op, int64_t os, Py_ssize_t n,
                        const KeyInfo* ki, bint has_nd, T nd) noexcept nogil:
    """Mode of each window of four rows by two columns (2x2x2 volumes) into
    ``op[:n]``, ``nd`` not counted when ``has_nd``; returns whether a window held
    NaN (its output is then NaN)."""
    cdef NoNodata plain
    cdef WithNodata sparse
    if has_nd:
        return mode2x2x2_as(q0, q1, q2, q3, jump, op, os, n, ki, nd, sparse)
    return mode2x2x2_as(q0, q1, q2, q3, jump, op, os, n, ki, nd, plain)


# --------------------------------------------------------------------------- lanes

cdef void lanes_gather(const Geom* g, const T* xb, const int64_t* roff,
                       Py_ssize_t nrows, Py_ssize_t c0, Py_ssize_t nl, T* L,
                       const KeyInfo* ki) noexcept nogil:
    """Samples of interior outputs ``[c0, c0 + nl)`` into ``L`` (sample-major).
    The usual steps between windows are literal so that the copies vectorise."""
    cdef Py_ssize_t r, j, i, s = 0
    cdef int64_t jump = g.s * g.sc
    cdef const T* src
    cdef T* dst
    cdef T m = <T>ki.mask if ki != NULL else 0
    for r in range(nrows):
        for j in range(g.k):
            src = xb + roff[r] + (c0 * g.s - g.p + j * g.dil) * g.sc
            dst = L + s * LANES
            if m != 0:
                for i in range(nl):
                    dst[i] = flip(src[i * jump], m)
            elif jump == 1:
                for i in range(nl):
                    dst[i] = src[i]
            elif jump == 2:
                for i in range(nl):
                    dst[i] = src[2 * i]
            elif jump == 3:
                for i in range(nl):
                    dst[i] = src[3 * i]
            elif jump == 4:
                for i in range(nl):
                    dst[i] = src[4 * i]
            else:
                for i in range(nl):
                    dst[i] = src[i * jump]
            s += 1


cdef void lanes_nan(const T* L, Py_ssize_t n, Py_ssize_t nl, char* flags,
                    const KeyInfo* ki) noexcept nogil:
    """``flags[i]``: output ``i`` of the block has a NaN among its ``n`` samples."""
    cdef Py_ssize_t s, i
    for i in range(nl):
        flags[i] = 0
    if T is float or T is double:
        for s in range(n):
            for i in range(nl):
                flags[i] = flags[i] | (L[s * LANES + i] != L[s * LANES + i])
    elif T is int32_t or T is int64_t:
        if ki != NULL and ki.mask != 0:
            for s in range(n):
                for i in range(nl):
                    flags[i] = flags[i] | key_is_nan(L[s * LANES + i], ki)


cdef void lanes_network(T* L, const int32_t* pairs, Py_ssize_t npairs,
                        Py_ssize_t nl) noexcept nogil:
    """Apply the comparator network ``pairs`` to every lane."""
    cdef Py_ssize_t c, i
    cdef T* a
    cdef T* b
    cdef T lo, hi
    for c in range(npairs):
        a = L + pairs[2 * c] * LANES
        b = L + pairs[2 * c + 1] * LANES
        for i in range(nl):
            lo = tmin(a[i], b[i])
            hi = tmax(a[i], b[i])
            a[i] = lo
            b[i] = hi


cdef void lanes_mode(T* L, T* cnt, Py_ssize_t n, const int32_t* pairs,
                     Py_ssize_t npairs, Py_ssize_t nl) noexcept nogil:
    """Mode of every lane into ``L[:nl]`` (row 0), ties to the smallest.  Small
    windows count equal pairs; larger ones sort (``pairs``) and count runs."""
    cdef Py_ssize_t s, t, i
    cdef T* best = L
    cdef T* bc = cnt
    cdef T* run = cnt + LANES
    cdef T e, v, c, better
    if n <= MODE_COUNT_WINDOW:
        for s in range(n):
            for i in range(nl):
                cnt[s * LANES + i] = 0
        for s in range(n):
            for t in range(s + 1, n):
                for i in range(nl):
                    e = L[s * LANES + i] == L[t * LANES + i]
                    cnt[s * LANES + i] = cnt[s * LANES + i] + e
                    cnt[t * LANES + i] = cnt[t * LANES + i] + e
        for s in range(1, n):
            for i in range(nl):
                v = L[s * LANES + i]
                c = cnt[s * LANES + i]
                better = better_mode(best[i], bc[i], v, c)
                best[i] = select(better != 0, v, best[i])
                bc[i] = select(better != 0, c, bc[i])
        return
    lanes_network(L, pairs, npairs, nl)
    for i in range(nl):
        bc[i] = 1
        run[i] = 1
    for s in range(1, n):
        for i in range(nl):
            v = L[s * LANES + i]
            c = select(v == L[(s - 1) * LANES + i], run[i] + 1, <T>1)
            run[i] = c
            better = c > bc[i]
            best[i] = select(better != 0, v, best[i])
            bc[i] = select(better != 0, c, bc[i])


# --------------------------------------------------------------------------- engine

cdef inline Py_ssize_t lines(Py_ssize_t nbytes) noexcept nogil:
    """``nbytes`` rounded up to whole 64-byte lines."""
    return (nbytes + 63) & ~(<Py_ssize_t>63)


cdef struct Plan:
    # What the fast paths of one call can do (decided once, before the rows).
    int fast          # 0 none, 1 registers 2x2, 2 registers 3x3 median, 3 lanes,
                      # 4 registers mode of four rows of two
    Py_ssize_t n      # samples of a full window
    Py_ssize_t r      # rank of a full window (rank kernels)
    const int32_t* pairs
    Py_ssize_t npairs


cdef void lanes_row(const Geom* g, const T* xb, const int64_t* roff, const char* rcv,
                    Py_ssize_t nrows, T* op, int64_t os, const Plan* plan,
                    const RankSpec* spec, const KeyInfo* ki, bint omit, T nd, T cval,
                    T* L, T* cnt, T* vals, char* flags) noexcept nogil:
    """The interior outputs of one row (full windows, no nodata) by lanes: blocks of
    up to LANES outputs, their samples gathered sample-major, then the network (or
    the mode's counts) across the block; NaN windows as ``nan_policy`` says."""
    cdef Py_ssize_t c0 = g.lo, nl, i
    while c0 < g.hi:
        nl = min(<Py_ssize_t>LANES, g.hi - c0)
        lanes_gather(g, xb, roff, nrows, c0, nl, L, ki)
        lanes_nan(L, plan.n, nl, flags, ki)
        if ki == NULL:
            lanes_network(L, plan.pairs, plan.npairs, nl)
            for i in range(nl):
                op[(c0 + i) * os] = L[plan.r * LANES + i]
        else:
            lanes_mode(L, cnt, plan.n, plan.pairs, plan.npairs, nl)
            for i in range(nl):
                op[(c0 + i) * os] = flip(L[i], <T>ki.mask)
        for i in range(nl):
            if flags[i]:
                if omit:
                    scalar_column(g, xb, roff, rcv, nrows, c0 + i, vals, op, os, spec,
                                  omit, False, nd, cval, ki, NULL, NULL)
                else:
                    op[(c0 + i) * os] = nan_value(cval, ki)
        c0 = c0 + nl


cdef bint registers_row(const Geom* g, const T* xb, const int64_t* roff, T* op,
                        int64_t os, const Plan* plan, const KeyInfo* ki, bint has_nd,
                        T nd) noexcept nogil:
    """The interior outputs of one row by the register path ``plan.fast`` (rows
    contiguous; nodata only for mode); returns whether a window held NaN (its
    output is then NaN)."""
    cdef int64_t at = (g.lo * g.s - g.p) * g.sc, jump = g.s * g.sc
    cdef Py_ssize_t n = g.hi - g.lo
    cdef T* o = op + g.lo * os
    if n <= 0:
        return False
    if ki != NULL and plan.fast == 4:
        return mode2x2x2_row(xb + roff[0] + at, xb + roff[1] + at, xb + roff[2] + at,
                             xb + roff[3] + at, jump, o, os, n, ki, has_nd, nd)
    elif ki != NULL:
        return mode2x2_row(xb + roff[0] + at, xb + roff[1] + at, jump, o, os, n, ki,
                           has_nd, nd)
    elif plan.fast == 1:
        return rank2x2_row(xb + roff[0] + at, xb + roff[1] + at, jump, plan.r, o, os, n)
    else:
        return median3x3_row(xb + roff[0] + at, xb + roff[1] + at, xb + roff[2] + at,
                             jump, o, os, n)


cdef int engine(const Geom* g, const T* x, T* out, const RankSpec* spec,
                const KeyInfo* ki, const Plan* plan, bint omit, bint has_nd, T nd,
                T cval, int nthreads) noexcept nogil:
    """Pool every output row; ``ki`` NULL: rank kernel, else mode kernel.  Returns
    -1 when the scratch memory is not there."""
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, b, orow, r, w, nrows
    cdef Py_ssize_t W = g.W, window = g.max_rows * g.k
    cdef Py_ssize_t chunk = max(1, total // (8 * nthreads))
    cdef int64_t oo, io, os = g.out_stride[g.d]
    cdef const T* xb
    cdef T* op
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef char* rcv
    cdef char* flags
    cdef T* vals
    cdef T* L
    cdef T* cnt
    cdef char* mine
    cdef bint direct
    # The mode register paths skip one nodata value (not the two zeros of a float
    # zero nodata); everything else with nodata takes the scalar path.
    cdef bint sparse_ok = (ki != NULL and (plan.fast == 1 or plan.fast == 4)
                           and (not has_nd or <T>ki.nd_alt == nd))
    # One block per thread: lanes and their counts, the window's values, the
    # window rows and the NaN flags of a lane block.
    cdef Py_ssize_t lane_bytes = lines((plan.n if plan.fast == 3 else 0) * LANES * sizeof(T))
    cdef Py_ssize_t vals_at = 2 * lane_bytes
    cdef Py_ssize_t roff_at = vals_at + lines(window * sizeof(T))
    cdef Py_ssize_t rcv_at = roff_at + 2 * lines(g.max_rows * 8)
    cdef Py_ssize_t flags_at = rcv_at + lines(g.max_rows)
    cdef Py_ssize_t hist_at = flags_at + lines(LANES)
    # Counting bins for the mode of 8- and 16-bit windows too large to sort fast.
    # (8- and 16-bit: a bin per value; wider: a hash table of 2 * window slots
    # or more, a power of two.)
    cdef Py_ssize_t bins = 0, slots = 1
    if ki != NULL and window > MODE_HIST_WINDOW:
        if T is uint8_t or T is int8_t or T is uint16_t or T is int16_t:
            bins = 1 << (8 * sizeof(T))
        else:
            while slots < 2 * window:
                slots <<= 1
            bins = slots
    cdef Py_ssize_t hkeys_at = hist_at + lines(bins * 4)
    cdef Py_ssize_t per_thread = hkeys_at + lines(bins * sizeof(T))
    cdef int32_t* hist
    cdef T* hkeys
    cdef char* scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        hist = <int32_t*>(mine + hist_at) if bins else NULL
        hkeys = <T*>(mine + hkeys_at)
        if bins:
            memset(hist, 0, bins * 4)
        L = <T*>mine
        cnt = <T*>(mine + lane_bytes)
        vals = <T*>(mine + vals_at)
        roff = <int64_t*>(mine + roff_at)
        rflat = roff + lines(g.max_rows * 8) // 8
        rcv = mine + rcv_at
        flags = mine + flags_at
        for t in prange(total, schedule="dynamic", chunksize=chunk):
            b = t // g.nrows_out
            orow = t - b * g.nrows_out
            oo = 0
            io = 0
            nrows = collect_rows(g, orow, roff, rflat, rcv, &oo, &io)
            xb = x + b * g.in_stride[0]
            op = out + b * g.out_stride[0] + oo
            direct = plan.fast != 0 and nrows == g.max_rows and (not has_nd or sparse_ok)
            for r in range(nrows):
                direct = direct and not rcv[r]
            if not direct:
                for w in range(W):
                    scalar_column(g, xb, roff, rcv, nrows, w, vals, op, os, spec, omit,
                                  has_nd, nd, cval, ki, hist, hkeys)
                continue
            for w in range(g.lo):
                scalar_column(g, xb, roff, rcv, nrows, w, vals, op, os, spec, omit,
                              has_nd, nd, cval, ki, hist, hkeys)
            for w in range(g.hi, W):
                scalar_column(g, xb, roff, rcv, nrows, w, vals, op, os, spec, omit,
                              has_nd, nd, cval, ki, hist, hkeys)
            if plan.fast == 3:
                lanes_row(g, xb, roff, rcv, nrows, op, os, plan, spec, ki, omit, nd,
                          cval, L, cnt, vals, flags)
            elif registers_row(g, xb, roff, op, os, plan, ki, has_nd, nd) and omit:
                # Rare: redo the row's interior, the scalar path skips the NaNs.
                for w in range(g.lo, g.hi):
                    scalar_column(g, xb, roff, rcv, nrows, w, vals, op, os, spec, omit,
                                  has_nd, nd, cval, ki, hist, hkeys)
    free(scratch)
    return 0


cdef inline Plan make_plan(const Geom* g, int fast, bint lanes, Py_ssize_t r,
                           const int32_t[::1] pairs) noexcept:
    """The fast path of this call: the caller's register path where the last axis
    is contiguous (the register loops read neighbours at +1), else the lanes where
    the window is small enough for them (``lanes``), else none."""
    cdef Plan p
    p.fast = fast if g.sc == 1 else 0
    if p.fast == 0 and lanes:
        p.fast = 3
    p.n = g.max_rows * g.k
    p.r = r
    p.pairs = &pairs[0] if pairs.shape[0] else NULL
    p.npairs = pairs.shape[0] // 2
    return p


def rank(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray out,
         const int64_t[::1] tables, const int64_t[::1] tab_off,
         const int64_t[::1] width, const int64_t[::1] out_len,
         const int64_t[::1] interior, int kind, int64_t rank_value, double percentile,
         int fast, bint lanes, Py_ssize_t full_rank, const int32_t[::1] pairs, bint omit,
         object nodata, object cval, int nthreads):
    """Order statistic of each window of ``x`` (batch, *pooled) into ``out``.

    ``fast`` names the register path the caller found applicable to full interior
    windows (0 none, 1 2x2, 2 3x3 median); ``lanes``: the window is small enough for
    the lanes, with the comparator network ``pairs``; ``full_rank`` is the rank of a
    full window.
    Inputs are trusted: fastpool._order validates them.
    """
    cdef Geom g = make_geom(x, out, None, tables, tab_off, width, out_len, interior)
    cdef RankSpec spec
    spec.kind = kind
    spec.rank = rank_value
    spec.percentile = percentile
    cdef Plan plan = make_plan(&g, fast, lanes, full_rank, pairs)
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None
    cdef int rc
    with nogil:
        rc = engine(&g, <const T*>cnp.PyArray_DATA(x), <T*>cnp.PyArray_DATA(out), &spec,
                    NULL, &plan, omit, has_nd, nd, cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")


def mode(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray out,
         const int64_t[::1] tables, const int64_t[::1] tab_off,
         const int64_t[::1] width, const int64_t[::1] out_len,
         const int64_t[::1] interior, bint float_keys, int fast, bint lanes,
         const int32_t[::1] pairs, bint omit, object nodata, object nodata_alt,
         object cval, int nthreads):
    """Most frequent value of each window of ``x`` (batch, *pooled) into ``out``.

    Integer dtypes only; float input comes as signed integers of its width with
    ``float_keys`` set (``nodata``/``cval`` as their bits; ``nodata_alt`` the bits
    of the other zero when ``nodata`` is a zero, since -0.0 == 0.0 is nodata too).
    ``fast``: 0 none, 1 2x2 registers, 4 registers for four rows of two (2x2x2);
    ``lanes``: small enough for the lanes (``pairs`` sorts a full window).
    """
    cdef Geom g = make_geom(x, out, None, tables, tab_off, width, out_len, interior)
    cdef RankSpec spec
    cdef KeyInfo ki
    cdef Plan plan = make_plan(&g, fast, lanes, 0, pairs)
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None
    cdef int rc
    ki.mask = 0
    ki.nd_alt = <int64_t>(nodata_alt if nodata_alt is not None else nd)
    # No key is NaN unless the keys are floats' (only int32/int64 keys are checked).
    ki.nan_lo = <int64_t>lowest(<T>0)
    ki.nan_hi = <int64_t>highest(<T>0)
    if float_keys:
        if T is int32_t:
            ki.mask = 0x7FFFFFFF
            ki.nan_hi = 0x7F800000
            ki.nan_lo = -0x7F800001   # the key of -inf, as int32
        elif T is int64_t:
            ki.mask = 0x7FFFFFFFFFFFFFFF
            ki.nan_hi = 0x7FF0000000000000
            ki.nan_lo = -0x7FF0000000000001
        else:
            raise TypeError("float keys need int32 or int64")
    if T is float or T is double:
        raise TypeError("mode kernels take integer keys")
    with nogil:
        rc = engine(&g, <const T*>cnp.PyArray_DATA(x), <T*>cnp.PyArray_DATA(out), &spec,
                    &ki, &plan, omit, has_nd, nd, cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")
