# Shared by every kernel family: fused types, the geometry a kernel receives, the
# walk over a window's rows, and the integer rounding/saturation helpers.

from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                          uint32_t, uint64_t, INT8_MIN, INT8_MAX, INT16_MIN, INT16_MAX,
                          INT32_MIN, INT32_MAX, INT64_MAX, INT64_MIN, UINT8_MAX,
                          UINT16_MAX, UINT32_MAX, UINT64_MAX)
from libc.math cimport INFINITY
cimport numpy as cnp

cdef extern from "<stdlib.h>" nogil:
    void* aligned_alloc(size_t alignment, size_t size)

cdef extern from "_fastpool.h":
    void fp_prefetch "FP_PREFETCH" (const void* address) noexcept nogil
    int FP_STREAM_AHEAD

# Vectorisable float64 elementary functions, and the per-window random stream
# (splitmix64 keyed by the seed and the window's flat index; docs/semantics.md
# §9): every kernel that draws or exponentiates uses these.
cdef extern from "_fastpool.h":
    double fp_exp(double) noexcept nogil
    double fp_log(double) noexcept nogil
    double fp_cbrt(double) noexcept nogil
    double fp_pow(double x, double p, double negative) noexcept nogil
    double fp_uniform(unsigned long long key, unsigned long long counter) noexcept nogil

cdef extern from "_fastpool.h":
    # Cython only needs to know it is an integer; C sees __int128.
    ctypedef long long fp_i128
    uint8_t _sel_u8 "FP_SELECT" (bint, uint8_t, uint8_t) noexcept nogil
    uint16_t _sel_u16 "FP_SELECT" (bint, uint16_t, uint16_t) noexcept nogil
    uint32_t _sel_u32 "FP_SELECT" (bint, uint32_t, uint32_t) noexcept nogil
    uint64_t _sel_u64 "FP_SELECT" (bint, uint64_t, uint64_t) noexcept nogil
    int8_t _sel_i8 "FP_SELECT" (bint, int8_t, int8_t) noexcept nogil
    int16_t _sel_i16 "FP_SELECT" (bint, int16_t, int16_t) noexcept nogil
    int32_t _sel_i32 "FP_SELECT" (bint, int32_t, int32_t) noexcept nogil
    int64_t _sel_i64 "FP_SELECT" (bint, int64_t, int64_t) noexcept nogil
    float _sel_f32 "FP_SELECT" (bint, float, float) noexcept nogil
    double _sel_f64 "FP_SELECT" (bint, double, double) noexcept nogil
    float fp_max_prop_f32(float, float) noexcept nogil
    float fp_min_prop_f32(float, float) noexcept nogil
    float fp_max_omit_f32(float, float) noexcept nogil
    float fp_min_omit_f32(float, float) noexcept nogil
    double fp_max_prop_f64(double, double) noexcept nogil
    double fp_min_prop_f64(double, double) noexcept nogil
    double fp_max_omit_f64(double, double) noexcept nogil
    double fp_min_omit_f64(double, double) noexcept nogil

ctypedef fused T:
    uint8_t
    uint16_t
    uint32_t
    uint64_t
    int8_t
    int16_t
    int32_t
    int64_t
    float
    double

# Compile-time direction of an extremum kernel.
cdef struct MaxTag:
    char _unused
cdef struct MinTag:
    char _unused
ctypedef fused Dir:
    MaxTag
    MinTag

# Compile-time NaN policy and first-pass flag of the direct loops: runtime flags
# there keep gcc from vectorising once the loop body is too big to inline.
cdef struct PropTag:
    char _unused
cdef struct OmitTag:
    char _unused
ctypedef fused NanTag:
    PropTag
    OmitTag
cdef struct InitTag:
    char _unused
cdef struct FoldTag:
    char _unused
ctypedef fused PassTag:
    InitTag
    FoldTag

# Accumulator of the sum family: double for floats; uint16 for uint8 in windows
# of up to 256 samples (8 lanes per SSE register); int32 for 8- and 16-bit
# integers in windows of up to 2**15 samples, int64 for the other integers up to
# 32 bits, 128 bits for 64-bit integers (exact sums, saturated on output).
ctypedef fused Acc:
    double
    uint16_t
    int32_t
    int64_t
    fp_i128

cdef enum:
    MAX_DIMS = 64
    EXCLUDED = -1


cdef struct Geom:
    # Input viewed as (batch, *pooled); output as (batch, *pooled_out).
    Py_ssize_t d            # number of pooled axes
    Py_ssize_t nbatch
    Py_ssize_t nrows_out    # output rows per batch item: prod(out_len[:d-1])
    Py_ssize_t W            # output length of the last pooled axis
    Py_ssize_t max_rows     # window rows: prod(width[:d-1])
    const int64_t* tables   # per-axis sample tables, see fastpool._geometry
    const int64_t* tab_off
    const int64_t* width
    const int64_t* out_len
    int64_t in_len[MAX_DIMS]
    int64_t in_stride[MAX_DIMS]    # elements; [0] is the batch axis
    int64_t out_stride[MAX_DIMS]
    int64_t idx_stride[MAX_DIMS]
    # Interior of the last axis: outputs [lo, hi) read start + j*dil, j < k.
    int64_t lo, hi, s, p, dil, k, sc
    # Elements between the windows of consecutive output rows (0: unknown).
    int64_t row_step
    # Windows that differ per batch item (fractional pooling; NULL: shared): item
    # b reads the tables at tables + plane[b * plane_stride] * tab_plane.
    const int64_t* plane
    int64_t plane_stride, tab_plane


cdef inline Geom make_geom(cnp.ndarray x, cnp.ndarray out, cnp.ndarray idx,
                           const int64_t[::1] tables, const int64_t[::1] tab_off,
                           const int64_t[::1] width, const int64_t[::1] out_len,
                           const int64_t[::1] interior):
    """Geometry of one kernel call; ``x``/``out``/``idx`` are (batch, *pooled) views."""
    cdef Geom g
    cdef Py_ssize_t a
    g.d = x.ndim - 1
    g.nbatch = x.shape[0]
    g.tables = &tables[0]
    g.tab_off = &tab_off[0]
    g.width = &width[0]
    g.out_len = &out_len[0]
    g.nrows_out = 1
    g.max_rows = 1
    for a in range(g.d - 1):
        g.nrows_out *= out_len[a]
        g.max_rows *= width[a]
    g.W = out_len[g.d - 1]
    for a in range(g.d + 1):
        g.in_len[a] = x.shape[a]
        g.in_stride[a] = x.strides[a] // x.itemsize
        g.out_stride[a] = out.strides[a] // out.itemsize
        g.idx_stride[a] = idx.strides[a] // idx.itemsize if idx is not None else 0
    g.lo = interior[0]
    g.hi = interior[1]
    g.s = interior[2]
    g.p = interior[3]
    g.dil = interior[4]
    g.k = width[g.d - 1]
    g.sc = g.in_stride[g.d]
    g.row_step = interior[5] * g.in_stride[g.d - 1] if g.d > 1 else 0
    g.plane = NULL
    g.plane_stride = 0
    g.tab_plane = 0
    return g


cdef inline Py_ssize_t collect_rows(const Geom* g, Py_ssize_t orow,
                                    int64_t* row_off, int64_t* row_flat,
                                    char* row_cval, int64_t* out_off,
                                    int64_t* idx_off,
                                    int64_t* row_pos=NULL) noexcept nogil:
    """The window rows of output row ``orow`` (flat over the first d-1 output axes).

    A row is one combination of samples on the first d-1 pooled axes.  Writes, for
    each row that is part of the window (in C order): its element offset, its flat
    index over the first d-1 input axes, and whether it holds cval; with
    ``row_pos``, also its position among the window's rows (flat, C order), for
    methods whose window has fixed weights.  Also stores the output row's element
    offsets (without the batch term) in ``out_off`` and ``idx_off`` (the index
    array's).
    """
    cdef int64_t o[MAX_DIMS]
    cdef int64_t j[MAX_DIMS]
    cdef Py_ssize_t a, n = 0, nd = g.d - 1
    cdef int64_t rest = orow, e, off, flat, oo = 0, io = 0, pos = 0
    cdef char cv, skip
    cdef const int64_t* tab
    if nd == 1:
        # 2-D pooling, the common case: the rows are one table row, no odometer.
        out_off[0] = orow * g.out_stride[1]
        idx_off[0] = orow * g.idx_stride[1]
        tab = g.tables + g.tab_off[0] + orow * g.width[0]
        for a in range(g.width[0]):
            e = tab[a]
            if e == EXCLUDED:
                continue
            cv = e < EXCLUDED
            if cv:
                e = -2 - e
            row_off[n] = e * g.in_stride[1]
            row_flat[n] = e
            row_cval[n] = cv
            if row_pos != NULL:
                row_pos[n] = a
            n += 1
        return n
    for a in range(nd - 1, -1, -1):
        o[a] = rest % g.out_len[a]
        rest = rest // g.out_len[a]
        j[a] = 0
        oo += o[a] * g.out_stride[a + 1]
        io += o[a] * g.idx_stride[a + 1]
    out_off[0] = oo
    idx_off[0] = io
    while True:
        off = 0
        flat = 0
        cv = 0
        skip = 0
        for a in range(nd):
            e = g.tables[g.tab_off[a] + o[a] * g.width[a] + j[a]]
            if e == EXCLUDED:
                skip = 1
                break
            if e < EXCLUDED:
                cv = 1
                e = -2 - e
            off += e * g.in_stride[a + 1]
            flat = flat * g.in_len[a + 1] + e
        if not skip:
            row_off[n] = off
            row_flat[n] = flat
            row_cval[n] = cv
            if row_pos != NULL:
                row_pos[n] = pos
            n += 1
        pos += 1
        # odometer, last axis fastest
        a = nd - 1
        while a >= 0:
            j[a] += 1
            if j[a] < g.width[a]:
                break
            j[a] = 0
            a -= 1
        if a < 0:
            break
    return n


cdef inline fp_i128 div_round_even(fp_i128 s, int64_t den) noexcept nogil:
    """``s / den`` rounded to nearest, ties to even (``den != 0``)."""
    cdef fp_i128 q, r, twice
    if den < 0:
        s = -s
        den = -den
    q = s / den
    r = s - q * den
    if r < 0:
        r = -r
    twice = 2 * r
    if twice > den or (twice == den and (q & 1)):
        q = q + 1 if s >= 0 else q - 1
    return q


cdef inline T saturate(fp_i128 v, T kind) noexcept nogil:
    """``v`` clipped to the range of the integer type ``T`` (``kind`` only selects it)."""
    cdef fp_i128 lo, hi
    if T is uint8_t:
        lo, hi = 0, 255
    elif T is uint16_t:
        lo, hi = 0, 65535
    elif T is uint32_t:
        lo, hi = 0, 4294967295
    elif T is uint64_t:
        lo, hi = 0, ((<fp_i128>1) << 64) - 1
    elif T is int8_t:
        lo, hi = -128, 127
    elif T is int16_t:
        lo, hi = -32768, 32767
    elif T is int32_t:
        lo, hi = -2147483648, 2147483647
    else:
        lo, hi = INT64_MIN, INT64_MAX
    if v < lo:
        return <T>lo
    if v > hi:
        return <T>hi
    return <T>v


cdef inline double round_half_even(double x) noexcept nogil:
    """Nearest integer, ties to even, for ``|x| < 2**51`` (inlined; libm's rint is a call)."""
    cdef double magic = 6755399441055744.0  # 2**52 + 2**51: its ulp is 1
    return (x + magic) - magic


cdef inline T lowest(T kind) noexcept nogil:
    """The smallest value of ``T`` (-inf for floats)."""
    if T is float or T is double:
        return -INFINITY
    elif T is int8_t:
        return INT8_MIN
    elif T is int16_t:
        return INT16_MIN
    elif T is int32_t:
        return INT32_MIN
    elif T is int64_t:
        return INT64_MIN
    else:
        return 0


cdef inline T highest(T kind) noexcept nogil:
    """The largest value of ``T`` (inf for floats)."""
    if T is float or T is double:
        return INFINITY
    elif T is int8_t:
        return INT8_MAX
    elif T is int16_t:
        return INT16_MAX
    elif T is int32_t:
        return INT32_MAX
    elif T is int64_t:
        return INT64_MAX
    elif T is uint8_t:
        return UINT8_MAX
    elif T is uint16_t:
        return UINT16_MAX
    elif T is uint32_t:
        return UINT32_MAX
    else:
        return UINT64_MAX


cdef extern from "_fastpool.h":
    void fp_first_taps_2x2_f32(const float* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil
    void fp_first_taps_2x2_f64(const double* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil
    void fp_first_taps_3x3_f32(const float* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil
    void fp_first_taps_3x3_f64(const double* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil
    void fp_first_taps_2x4_f32(const float* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil
    void fp_first_taps_2x4_f64(const double* const* rows, int32_t* taps, Py_ssize_t n,
                               bint is_min, bint omit) noexcept nogil


cdef inline bint first_taps_stride2(const T* const* rows, Py_ssize_t k, Py_ssize_t nrows,
                                    Py_ssize_t n, bint is_min, bint omit,
                                    int32_t* taps) noexcept nogil:
    """The tap (``r * k + j``) of the first extremum (the first NaN under
    'propagate') of ``n`` windows of ``k`` samples on each of ``nrows`` rows,
    ``rows[r][2 * i + j]`` (stride 2 along contiguous float rows), in one
    vectorised loop; -1 for an all-NaN window under 'omit'.  For 2x2, 3x3 and
    2x2x2 windows; False (nothing done) for the others."""
    if not (T is float or T is double):
        return False
    if k == 3 and nrows == 3:
        if T is float:
            fp_first_taps_3x3_f32(rows, taps, n, is_min, omit)
        else:
            fp_first_taps_3x3_f64(rows, taps, n, is_min, omit)
    elif k == 2 and nrows == 2:
        if T is float:
            fp_first_taps_2x2_f32(rows, taps, n, is_min, omit)
        else:
            fp_first_taps_2x2_f64(rows, taps, n, is_min, omit)
    elif k == 2 and nrows == 4:
        if T is float:
            fp_first_taps_2x4_f32(rows, taps, n, is_min, omit)
        else:
            fp_first_taps_2x4_f64(rows, taps, n, is_min, omit)
    else:
        return False
    return True


cdef inline T select(bint c, T x, T y) noexcept nogil:
    """``x if c else y`` as a C conditional expression (branch-free in loops)."""
    if T is uint8_t:
        return _sel_u8(c, x, y)
    elif T is uint16_t:
        return _sel_u16(c, x, y)
    elif T is uint32_t:
        return _sel_u32(c, x, y)
    elif T is uint64_t:
        return _sel_u64(c, x, y)
    elif T is int8_t:
        return _sel_i8(c, x, y)
    elif T is int16_t:
        return _sel_i16(c, x, y)
    elif T is int32_t:
        return _sel_i32(c, x, y)
    elif T is int64_t:
        return _sel_i64(c, x, y)
    elif T is float:
        return _sel_f32(c, x, y)
    else:
        return _sel_f64(c, x, y)


cdef struct RowScratch:
    # One thread's working memory for one output row at a time.
    void* acc          # W accumulators
    int64_t* aux       # W int64: argmax indices or sample counts
    int64_t* roff      # per window row: element offset
    int64_t* rflat     # per window row: flat index over the first d-1 axes
    const void** rows  # up to 4 row pointers batched for a direct pass
    char* rcv          # per window row: holds cval


cdef inline Py_ssize_t _lines(Py_ssize_t nbytes) noexcept nogil:
    """``nbytes`` rounded up to whole 64-byte lines (alignment, no false sharing)."""
    return (nbytes + 63) & ~(<Py_ssize_t>63)


cdef inline Py_ssize_t scratch_size(const Geom* g, Py_ssize_t acc_item) noexcept nogil:
    """Bytes of one thread's :struct:`RowScratch`."""
    return (_lines(g.W * acc_item) + _lines(g.W * 8) + 2 * _lines(g.max_rows * 8)
            + _lines(4 * sizeof(void*)) + _lines(g.max_rows))


cdef inline RowScratch scratch_at(char* base, const Geom* g,
                                  Py_ssize_t acc_item) noexcept nogil:
    """Carve one thread's scratch out of ``base`` (64-byte aligned by the caller)."""
    cdef RowScratch s
    s.acc = base
    base += _lines(g.W * acc_item)
    s.aux = <int64_t*>base
    base += _lines(g.W * 8)
    s.roff = <int64_t*>base
    base += _lines(g.max_rows * 8)
    s.rflat = <int64_t*>base
    base += _lines(g.max_rows * 8)
    s.rows = <const void**>base
    base += _lines(4 * sizeof(void*))
    s.rcv = base
    return s


cdef inline Py_ssize_t block_len(const Geom* g, Py_ssize_t itemsize) noexcept nogil:
    """Interior outputs per block of a direct loop: about 1 KiB of each input row."""
    cdef Py_ssize_t per_output = g.s * g.sc * itemsize
    return max(16, 1024 // max(1, per_output))


cdef inline bint adjacent_pairs(const Geom* g) noexcept nogil:
    """Whether each window row is two adjacent samples, the next window's two
    right after (2x2, 2x2x2 windows of a contiguous last axis): the layout of
    the SIMD pair loops in ``_fastpool.h``."""
    return g.k == 2 and g.dil * g.sc == 1 and g.s * g.sc == 2


cdef inline Py_ssize_t pair_stream(const Geom* g, Py_ssize_t nrows, const T* kind) noexcept nogil:
    """How far on the float32 2x2 and 2x2x2 SIMD loops prefetch their rows as they
    go (``fp_sum2x2_f32``, ``fp_extrema2x2_f32``): ``FP_STREAM_AHEAD`` bytes where
    they apply (float32 :func:`adjacent_pairs` of 2 or 4 rows), else 0 (the
    caller prefetches).  A row streamed this way took 0.4-0.6x the time of the
    engines' blocks with the next block prefetched (2x2x2 of 512-wide rows, AMD
    EPYC)."""
    if T is float:
        if adjacent_pairs(g) and (nrows == 2 or nrows == 4):
            return FP_STREAM_AHEAD
    return 0


cdef inline bint columns_first(const Geom* g) noexcept nogil:
    """Whether the sum and extremum kernels reduce a pass of interior window rows
    column first (the columns' sums or extrema, then each window's columns):
    windows of contiguous samples that touch or overlap, other than the 2x2,
    3x3 (stride 2) and 3x3 (stride 3) windows their literal loops spell out.
    Decided by the geometry alone, so the bits do not depend on the layout."""
    return (g.dil == 1 and g.s <= g.k
            and not ((g.s == 2 and g.k <= 3) or (g.s == 3 and g.k == 3)))


cdef inline bint plain_row_pairs(const Geom* g) noexcept nogil:
    """Whether output row ``o`` of 2-D pooling reads input rows ``2o`` and
    ``2o + 1`` and no others (no padding, copies or cval rows)."""
    cdef const int64_t* tab = g.tables + g.tab_off[0]
    cdef Py_ssize_t o
    if g.d != 2 or g.width[0] != 2 or g.plane != NULL:
        return False
    for o in range(g.out_len[0]):
        if tab[2 * o] != 2 * o or tab[2 * o + 1] != 2 * o + 1:
            return False
    return True


cdef inline int64_t short_rows_ahead(const Geom* g, Py_ssize_t itemsize) noexcept nogil:
    """How far ahead (in elements) :func:`prefetch_rows` asks for the rows of a
    short output row (one block, NCHW feature maps): about 3 KiB, three output
    rows of 2x2 windows of 112-wide float maps (one row ahead ran 8-10% slower);
    the hardware prefetcher does not run that far ahead of short rows."""
    cdef int64_t row_bytes = g.W * g.s * g.sc * itemsize
    return g.row_step * max(1, min(16, 3072 // max(1, 2 * row_bytes)))


cdef inline void prefetch_rows(const Geom* g, const T* xb, const int64_t* roff,
                               Py_ssize_t nrows, int64_t ahead) noexcept nogil:
    """Ask for the input of a short output row ``ahead`` elements on, each of
    its window rows (see :func:`short_rows_ahead`)."""
    cdef int64_t row_bytes = g.W * g.s * g.sc * sizeof(T)
    cdef const char* p
    cdef const char* e
    cdef Py_ssize_t r
    for r in range(nrows):
        p = <const char*>(xb + roff[r] + ahead)
        e = p + row_bytes
        while p < e:
            fp_prefetch(p)
            p = p + 64


cdef inline void prefetch_block(const Geom* g, const T* xb, const int64_t* roff,
                                Py_ssize_t nrows, Py_ssize_t c0,
                                Py_ssize_t c1) noexcept nogil:
    """Ask for the input of interior outputs ``[c0, c1)`` of every window row.

    Issued one block ahead: with several rows in flight the hardware prefetcher
    alone leaves the loads waiting (2x2 float means ran at half the bandwidth).
    """
    cdef Py_ssize_t r
    cdef const char* p
    cdef const char* e
    if g.sc != 1:
        return
    if c0 >= c1:
        # Past the row's end: the first block of the next output row, so short
        # rows (NCHW feature maps) are covered too.  Prefetches never fault.
        if g.row_step == 0:
            return
        xb = xb + g.row_step
        c0 = g.lo
        c1 = min(g.hi, g.lo + block_len(g, sizeof(T)))
        # Not for tall windows (16x16 of NCHW maps): a burst of more than 64
        # prefetches stalls the loads it should feed (1.3x slower), and the
        # window rows are read in order anyway.
        if nrows * (c1 - c0) * g.s * sizeof(T) > 4096:
            return
    for r in range(nrows):
        p = <const char*>(xb + roff[r] + (c0 * g.s - g.p))
        e = <const char*>(xb + roff[r] + ((c1 - 1) * g.s - g.p + (g.k - 1) * g.dil))
        while p <= e:
            fp_prefetch(p)
            p += 64
        fp_prefetch(e)


cdef inline Py_ssize_t window_samples(const Geom* g, Py_ssize_t w, Py_ssize_t nrows,
                                      const int64_t* roff, const int64_t* rflat,
                                      const int64_t* rpos, const char* rcv,
                                      const T* xb, const char* wb, bint weights_f32,
                                      const double* kernel, double* V, double* Wt,
                                      T* Tv, int64_t* F, bint omit, bint has_nd, T nd,
                                      T cval, bint* saw_nan) noexcept nogil:
    """The valid samples of output ``w`` of an output row (its window rows from
    :func:`collect_rows`), in C order: values as double (``V``) and as ``T``
    (``Tv``), their weights (``Wt``: from the weights array ``wb`` (float32 with
    ``weights_f32``, else float64) read at the sample's cell, or the fixed
    ``kernel`` weight of its window position; neither when both are NULL), and
    with ``F`` the flat input index each reads (-1 for cval).  Missing samples
    (nodata; NaN under ``omit``) are left out.  Returns how many; ``saw_nan``:
    the window held a NaN."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1] + w * g.k
    cdef Py_ssize_t r, j, n = 0
    cdef int64_t e, cell
    cdef T v
    cdef bint is_cval
    for r in range(nrows):
        for j in range(g.k):
            e = tab[j]
            if e == EXCLUDED:
                continue
            is_cval = e < EXCLUDED or rcv[r]
            if e < EXCLUDED:
                e = -2 - e
            cell = roff[r] + e * g.sc
            v = cval if is_cval else xb[cell]
            if has_nd and v == nd:
                continue
            if v != v:
                saw_nan[0] = True
                if omit:
                    continue
            V[n] = <double>v
            Tv[n] = v
            if F != NULL:
                F[n] = -1 if is_cval else rflat[r] * g.in_len[g.d] + e
            if wb != NULL:
                Wt[n] = ((<const float*>wb)[cell] if weights_f32
                         else (<const double*>wb)[cell])
            elif kernel != NULL:
                Wt[n] = kernel[rpos[r] * g.k + j]
            n += 1
    return n
