"""Gradients of the pooling methods (vector-Jacobian products), by gathering.

Two kernels over the shared geometry:

``window_stats``
    One scalar pass over each window's valid samples (in C order, as the
    forward kernels see them) that writes what a window's derivative needs: the
    flat input index of a selected sample, or per-window numbers (valid count,
    weight sum, log-sum-exp, mean, ...).  Random methods replay the forward draw
    from the same per-window stream.
``gather``
    Every input cell sums the contributions of the windows that read it, walking
    per-axis lists of (window, tap) pairs built from the geometry tables; so a
    cell an extension mode copies into a window gets that sample's gradient, no
    thread ever writes another's cell (no atomics), and each cell's sum runs in
    one fixed order: the result is the same for every thread count.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free
from libc.string cimport memmove, memset
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.math cimport NAN, INFINITY, sqrt, exp, log, pow

cimport numpy as cnp
import numpy as np

from ._common cimport (EXCLUDED, MAX_DIMS, aligned_alloc, Dir, Geom, MaxTag, MinTag,
                       NanTag, OmitTag, PropTag, T, block_len, collect_rows, fp_uniform,
                       first_taps_stride2, fp_exp, make_geom, prefetch_rows, select,
                       short_rows_ahead, window_samples)

cnp.import_array()


cpdef enum Stat:
    S_LOCATE = 0   # sel: the first valid sample equal to the target (NaN matches NaN)
    S_COUNT = 1    # a: the number of valid samples
    S_WSUM = 2     # a: the valid samples' weight sum; NaN where a NaN propagates
    S_SOFTMAX = 3  # a: log-sum-exp of the logits (beta*x, or the logits array);
                   # b: the softmax-weighted mean of x
    S_SQUARES = 4  # a: sum x; b: sum x**2 / sum x (0 for an all-zero window)
    S_STOCH = 5    # sel: the replayed draw; a: 0, or NaN where a NaN propagates
    S_MAXSEL = 6   # sel: the first valid maximum; a: the valid count (NaN: NaN)
    S_MIXED = 7    # max chosen: sel as S_MAXSEL, a = 0; mean chosen: sel -1, a = count
    S_DPP = 8      # a: weight sum, b: mean, c: result, d: K (see dpp_factor)
    S_ARGMAX = 9   # sel: the first maximum (max_pool's rule: the first NaN under
    S_ARGMIN = 10  # 'propagate'), or minimum


cpdef enum Kind:
    K_LINEAR = 0   # cell factor * sum g[o] * tap weight
    K_AFFINE = 1   # sum g[o] * (2x - b[o])                    (stochastic, inference)
    K_EXP = 2      # sum g[o] * exp(l - b[o]) * (1 + beta * (x - c[o]))   (soft, LIP)
    K_DPP = 3      # sum g[o] * (alpha + rho(x-b) + (x-c) rho'(x-b) - d)


cpdef enum Disjoint:
    D_EXTREMUM = 0     # max (min) pooling's: all to the first extremum
    D_LINEAR = 1       # ``gout`` (a mean's per-window factor) to every element
    D_SOFT = 2         # SoftPool's (windows of up to SOFT_WINDOW samples)


cpdef enum Cell:
    C_ONE = 0      # no cell factor
    C_WEIGHT = 1   # the weights array
    C_POWER = 2    # x ** (p - 1)  (Lp)


cdef struct Params:
    int stat
    int kind
    int cell
    double beta, alpha, lam, p1, neg_p1
    bint asymmetric
    bint soft                 # logits are beta * x (else the weights array)
    bint weights_in, weights_f32
    const double* kernel      # fixed tap weights (C order over the window), or NULL
    uint64_t key


# Detail-preserving pooling's epsilon, as in the forward kernel.
cdef double DPP_EPS2 = 1e-6


cdef inline double rho(double d, const Params* sp) noexcept nogil:
    """DPP's weight term of a difference from the window mean, minus alpha."""
    cdef double r
    if sp.asymmetric and d < 0.0:
        d = 0.0
    r = d * d + DPP_EPS2
    if sp.lam == 1.0:
        return sqrt(r)
    if sp.lam == 2.0:
        return r
    if sp.lam == 0.0:
        return 1.0
    return pow(r, 0.5 * sp.lam)


cdef inline double rho_prime(double d, const Params* sp) noexcept nogil:
    cdef double r
    if sp.asymmetric and d < 0.0:
        return 0.0
    r = d * d + DPP_EPS2
    if sp.lam == 1.0:
        return d / sqrt(r)
    if sp.lam == 2.0:
        return 2.0 * d
    if sp.lam == 0.0:
        return 0.0
    return sp.lam * d * pow(r, 0.5 * sp.lam - 1.0)


cdef inline double signed_pow(double x, double p, double negative) noexcept nogil:
    """C's pow: ``negative`` is the sign of an odd/even integer power, else NaN.
    The small integer powers of Lp's common ``p`` (2, 3, 4) by multiplication."""
    if p == 1.0:
        return x
    if p == 2.0:
        return x * x
    if p == 3.0:
        return x * x * x
    if x < 0.0:
        return pow(-x, p) * negative
    return pow(x, p)


# --------------------------------------------------------------------------- stats

cdef void one_window(const Params* sp, Py_ssize_t n, const double* V, const double* Wt,
                     const T* Tv, const int64_t* F, bint nan_window, T target,
                     double u, int64_t* sel, double* res) noexcept nogil:
    """The statistics of one window from its ``n`` valid samples (see Stat)."""
    cdef Py_ssize_t s
    cdef double a = 0.0, b = 0.0, c = 0.0, m, e, run, thr, mean, out
    cdef bint target_nan
    cdef T best
    sel[0] = -1
    res[0] = 0.0
    res[1] = 0.0
    res[2] = 0.0
    res[3] = 0.0
    if sp.stat == S_LOCATE:
        target_nan = target != target
        for s in range(n):
            if Tv[s] == target or (target_nan and Tv[s] != Tv[s]):
                sel[0] = F[s]
                return
        return
    if sp.stat == S_COUNT:
        res[0] = <double>n
        return
    if sp.stat == S_ARGMAX or sp.stat == S_ARGMIN:
        if n == 0:
            return
        best = Tv[0]
        sel[0] = F[0]
        for s in range(1, n):
            if replaces(Tv[s], best, sp.stat == S_ARGMIN, False):
                best = Tv[s]
                sel[0] = F[s]
        return
    if nan_window:
        # The forward result is NaN: so is the derivative of every sample.
        res[0] = NAN
        res[1] = NAN
        res[2] = NAN
        res[3] = NAN
        return
    if sp.stat == S_WSUM:
        for s in range(n):
            a += Wt[s]
        res[0] = a
    elif sp.stat == S_SOFTMAX:
        m = -INFINITY
        for s in range(n):
            e = sp.beta * V[s] if sp.soft else Wt[s]
            if e > m:
                m = e
        for s in range(n):
            e = exp((sp.beta * V[s] if sp.soft else Wt[s]) - m)
            a += e
            b += e * V[s]
        res[0] = m + log(a)
        res[1] = b / a
    elif sp.stat == S_SQUARES:
        for s in range(n):
            a += V[s]
            b += V[s] * V[s]
        res[0] = a
        res[1] = b / a if a != 0.0 else 0.0
    elif sp.stat == S_STOCH:
        # The forward draw: the first sample whose running sum passes u * total.
        for s in range(n):
            a += V[s]
        if a == 0.0:
            return
        thr = u * a
        run = 0.0
        sel[0] = F[n - 1]
        for s in range(n):
            run += V[s]
            if run > thr or run == INFINITY:
                sel[0] = F[s]
                return
    elif sp.stat == S_MAXSEL or sp.stat == S_MIXED:
        m = -INFINITY
        for s in range(n):
            if V[s] > m:
                m = V[s]
        if sp.stat == S_MIXED and u >= 0.5:
            res[0] = <double>n
            return
        for s in range(n):
            if V[s] == m:
                sel[0] = F[s]
                break
        if sp.stat == S_MAXSEL:
            res[0] = <double>n
    elif sp.stat == S_DPP:
        mean = 0.0
        for s in range(n):
            mean += V[s]
        mean = mean / n
        for s in range(n):
            e = sp.alpha + rho(V[s] - mean, sp)
            a += e
            b += e * V[s]
        out = b / a
        for s in range(n):
            c += (V[s] - out) * rho_prime(V[s] - mean, sp)
        res[0] = a
        res[1] = mean
        res[2] = out
        res[3] = c / n


cdef inline bint replaces(T v, T best, bint is_min, bint omit) noexcept nogil:
    """Whether sample ``v`` takes the running extremum ``best`` from an earlier
    one: strictly better, or the first NaN (under 'omit', the first number)."""
    if T is float or T is double:
        if omit:
            return (v < best if is_min else v > best) | ((best != best) & (v == v))
        return (v < best if is_min else v > best) | ((v != v) & (best == best))
    return v < best if is_min else v > best


cdef int stats_engine(const Geom* g, const Params* sp, const T* x, const char* wts,
                      const T* target, int64_t* sel, double* A, double* B, double* C,
                      double* D, int64_t id0, bint omit, bint has_nd, T nd, T cval,
                      int nthreads) noexcept nogil:
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, bi, orow, w, n, nrows
    cdef Py_ssize_t window = g.max_rows * g.k
    cdef int64_t oo, io, at, os = g.out_stride[g.d]
    cdef Py_ssize_t wbytes = 4 if sp.weights_f32 else 8
    cdef Py_ssize_t vb = ((max(window, 1) * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t rb = ((max(g.max_rows, 1) * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t per_thread = 4 * vb + 4 * rb + 128 + 64 * 16
    cdef char* scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    cdef bint extremum = sp.stat == S_ARGMAX or sp.stat == S_ARGMIN
    cdef Py_ssize_t lo, hi, nl, i
    cdef T* LM
    cdef int32_t* LT
    cdef Py_ssize_t r
    cdef char* mine
    cdef double* V
    cdef double* Wt
    cdef T* Tv
    cdef int64_t* F
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef int64_t* rpos
    cdef char* rcv
    cdef double* res
    cdef int64_t* chosen
    cdef bint saw_nan
    cdef double u
    cdef T tv
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        V = <double*>mine
        Wt = <double*>(mine + vb)
        Tv = <T*>(mine + 2 * vb)
        F = <int64_t*>(mine + 3 * vb)
        roff = <int64_t*>(mine + 4 * vb)
        rflat = <int64_t*>(mine + 4 * vb + rb)
        rpos = <int64_t*>(mine + 4 * vb + 2 * rb)
        rcv = mine + 4 * vb + 3 * rb
        res = <double*>(mine + 4 * vb + 4 * rb)
        chosen = <int64_t*>(mine + 4 * vb + 4 * rb + 64)
        LM = <T*>(mine + 4 * vb + 4 * rb + 128)
        LT = <int32_t*>(mine + 4 * vb + 4 * rb + 128 + 64 * 8)
        for t in prange(total, schedule="dynamic"):
            bi = t // g.nrows_out
            orow = t - bi * g.nrows_out
            oo = 0
            io = 0
            nrows = collect_rows(g, orow, roff, rflat, rcv, &oo, &io, rpos)
            lo = 0
            hi = 0
            if extremum and not has_nd and nrows == g.max_rows:
                lo = g.lo
                hi = g.hi
                for w in range(nrows):
                    if rcv[w]:
                        hi = lo
                # each tap's flat input index, less the window's start (F is
                # free until the table path below)
                for r in range(nrows):
                    for i in range(g.k):
                        F[r * g.k + i] = rflat[r] * g.in_len[g.d] + i * g.dil - g.p
                w = lo
                while w < hi:
                    nl = min(<Py_ssize_t>64, hi - w)
                    first_extremum_taps(g, x + bi * g.in_stride[0], roff, nrows, w,
                                        nl, sp.stat == S_ARGMIN, omit, LM, LT)
                    for i in range(nl):
                        sel[bi * g.out_stride[0] + oo + (w + i) * os] = (
                            F[LT[i]] + (w + i) * g.s)
                    w = w + nl
            w = -1
            while True:
                w = next_edge_window(w, lo, hi)
                if w >= g.W:
                    break
                saw_nan = False
                n = window_samples(g, w, nrows, roff, rflat, rpos, rcv,
                                   x + bi * g.in_stride[0],
                                   (wts + bi * g.in_stride[0] * wbytes
                                    if wts != NULL else NULL), sp.weights_f32,
                                   sp.kernel, V, Wt, Tv, F, omit, has_nd, nd, cval,
                                   &saw_nan)
                at = bi * g.out_stride[0] + oo + w * os
                tv = target[at] if target != NULL else 0
                u = 0.0
                if sp.stat == S_STOCH or sp.stat == S_MIXED:
                    u = fp_uniform(sp.key, <unsigned long long>(
                        id0 + bi * g.idx_stride[0] + io + w * g.idx_stride[g.d]))
                one_window(sp, n, V, Wt, Tv, F, saw_nan and not omit, tv, u, chosen,
                           res)
                if sel != NULL:
                    sel[at] = chosen[0]
                if A != NULL:
                    A[at] = res[0]
                if B != NULL:
                    B[at] = res[1]
                if C != NULL:
                    C[at] = res[2]
                if D != NULL:
                    D[at] = res[3]
    free(scratch)
    return 0


cdef inline void* _ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef Params make_params(object weights, object kernel, double beta, double alpha,
                        double lam, bint asymmetric, bint soft):
    """The method parameters both kernels share.  ``kernel``: a C-contiguous
    float64 array of tap weights (kept alive by the caller), or None."""
    cdef Params sp
    sp.stat = 0
    sp.kind = K_LINEAR
    sp.cell = C_ONE
    sp.beta = beta
    sp.alpha = alpha
    sp.lam = lam
    sp.p1 = 0.0
    sp.neg_p1 = 0.0
    sp.asymmetric = asymmetric
    sp.soft = soft
    sp.key = 0
    sp.weights_in = weights is not None
    sp.weights_f32 = weights is not None and weights.dtype.itemsize == 4
    sp.kernel = <const double*>_ptr(kernel)
    return sp


def window_stats(const T[:] dtype_tag, cnp.ndarray x, object weights, object target,
                 object sel, object a, object b, object c, object d, int64_t id0,
                 const int64_t[::1] tables, const int64_t[::1] tab_off,
                 const int64_t[::1] width, const int64_t[::1] out_len,
                 const int64_t[::1] interior, int stat, double beta=1.0,
                 double alpha=0.0, double lam=1.0, bint asymmetric=False,
                 bint soft=False, object key=None, object kernel=None,
                 bint omit=False, object nodata=None, object cval=0, int nthreads=1,
                 cnp.ndarray counter=None):
    """Per-window statistics of ``x`` (batch, *pooled) for the gradients.

    ``sel`` (int64) and ``a``..``d`` (float64) are output views of one layout
    (C-contiguous arrays of the result's shape, viewed alike), any of them None;
    ``target`` (``T``, same layout) holds the values S_LOCATE looks for.
    ``counter``: a view of the same layout whose element strides are the random
    stream's counter steps (never read), ``id0`` the counter of its first element,
    as the forward kernel counts them.
    """
    cdef cnp.ndarray ref = next(v for v in (sel, a, b, c, d) if v is not None)
    cdef Geom g = make_geom(x, ref, counter, tables, tab_off, width, out_len, interior)
    cdef Params sp = make_params(weights, kernel, beta, alpha, lam, asymmetric, soft)
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef int rc
    sp.stat = stat
    sp.key = key if key is not None else 0
    cdef bint has_nd = nodata is not None
    cdef const char* wp = <const char*>_ptr(weights)
    cdef const T* tp = <const T*>_ptr(target)
    cdef int64_t* selp = <int64_t*>_ptr(sel)
    cdef double* ap = <double*>_ptr(a)
    cdef double* bp = <double*>_ptr(b)
    cdef double* cp = <double*>_ptr(c)
    cdef double* dp = <double*>_ptr(d)
    with nogil:
        rc = stats_engine(&g, &sp, <const T*>cnp.PyArray_DATA(x), wp, tp, selp, ap,
                          bp, cp, dp, id0, omit, has_nd, nd, cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")


# --------------------------------------------------------------------------- gather

ctypedef fused F:
    float
    double


cdef struct Lists:
    # Per pooled axis a: for input index i, the pairs (window o, tap k) that read
    # it are entries ptr[i] .. ptr[i+1] - 1 of (eo, ek, ef); ef marks the first
    # pair of each window (a selected cell counts once per window).  The sample
    # tables of the geometry (fastpool._geometry) walk a window's taps.
    const int64_t* ptr
    const int64_t* ptr_off
    const int64_t* eo
    const int64_t* ek
    const int64_t* ef
    const int64_t* ent_off
    const int64_t* tables
    const int64_t* tab_off
    # The last axis' (cell, window, tap, first) of the windows outside its
    # interior only, sorted by cell.
    const int64_t* edge_cell
    const int64_t* edge_o
    const int64_t* edge_k
    const int64_t* edge_f
    int64_t n_edge


cdef struct Arrays:
    int64_t d, nbatch
    int64_t n[MAX_DIMS]         # input length of each pooled axis ([0]: batch)
    int64_t xs[MAX_DIMS]        # element strides of x, dx, weights, window arrays
    int64_t dxs[MAX_DIMS]
    int64_t ws[MAX_DIMS]
    int64_t os[MAX_DIMS]
    int64_t width[MAX_DIMS]     # window taps per pooled axis ([1..d])
    int64_t tapstride[MAX_DIMS]
    int64_t maxlist             # the longest product list over the first d-1 axes
    int64_t chunk               # cells of the last axis per task
    # The last axis' interior windows [lo, hi): samples o*s - p + j*dil (geometry)
    int64_t lo, hi, s, p, dil, W


cdef inline double cell_term(const Params* sp, double x, double wv, double go,
                             const double* B, const double* C, const double* D,
                             int64_t off) noexcept nogil:
    """One window's contribution to a cell of value ``x`` (weight or logit ``wv``)
    for the non-linear kinds."""
    cdef double dlt
    if sp.kind == K_AFFINE:
        return go * (2.0 * x - B[off])
    if sp.kind == K_EXP:
        if sp.beta != 0.0:
            return go * exp(wv - B[off]) * (1.0 + sp.beta * (x - C[off]))
        return go * exp(wv - B[off])
    dlt = x - B[off]
    return go * (sp.alpha + rho(dlt, sp) + (x - C[off]) * rho_prime(dlt, sp) - D[off])


cdef inline bint same_value(T v, T t) noexcept nogil:
    """Equal, or both NaN (a NaN result is the window's first NaN)."""
    return v == t or (v != v and t != t)


cdef bint earlier_equal(const Arrays* ar, const Lists* L, const T* xb,
                        const int64_t* oa, const int64_t* ka, T t, bint omit,
                        bint has_nd, T nd, T cval) noexcept nogil:
    """Whether a valid sample before tap ``ka`` (C order) of the window ``oa``
    equals ``t``: then that sample, not the one at ``ka``, is the selected one."""
    cdef int64_t j[MAX_DIMS]
    cdef int64_t d = ar.d, a, e, off
    cdef bint cv, skip, at_end
    cdef T v
    for a in range(d):
        j[a] = 0
    while True:
        at_end = True
        for a in range(d):
            if j[a] != ka[a]:
                at_end = False
                break
        if at_end:
            return False
        off = 0
        cv = False
        skip = False
        for a in range(d):
            e = L.tables[L.tab_off[a] + oa[a] * ar.width[a + 1] + j[a]]
            if e == EXCLUDED:
                skip = True
                break
            if e < EXCLUDED:
                cv = True
                e = -2 - e
            off += e * ar.xs[a + 1]
        if not skip:
            v = cval if cv else xb[off]
            if not ((has_nd and v == nd) or (omit and v != v)) and same_value(v, t):
                return True
        a = d - 1
        while a >= 0:
            j[a] += 1
            if j[a] < ar.width[a + 1]:
                break
            j[a] = 0
            a -= 1


cdef void gather_row(const Arrays* ar, const Lists* L, const Params* sp, const T* xb,
                     const T* xr, const char* wr, F* dxr, const double* G,
                     const double* H, const T* tgt,
                     const double* B, const double* C, const double* D,
                     const int64_t* QO, const int64_t* QK, const int64_t* QA,
                     Py_ssize_t nq, int64_t c0, int64_t c1, bint omit, bint has_nd,
                     T nd, T cval, int64_t* oa, int64_t* ka) noexcept nogil:
    """Cells ``[c0, c1)`` of one input row (``xr``, ``dxr``, ``wr`` point at the
    row; window arrays at the batch item), element by element through the last
    axis' lists: the non-linear kinds, and selections found by value (``H`` to
    the first valid sample equal to ``tgt``).  ``QO/QK/QA``: the ``nq`` windows
    of the first d-1 axes reading the row (offset, flat tap, and the per-axis
    window and tap indices)."""
    # Everything the loop reads, as locals: through the structs every load
    # would repeat after each store to dx (the pointers may alias).
    cdef int64_t d = ar.d, nr = ar.d - 1
    cdef int64_t osl = ar.os[d], xsl = ar.xs[d], dxsl = ar.dxs[d], wsl = ar.ws[d]
    cdef const int64_t* lp = L.ptr + L.ptr_off[d - 1]
    cdef const int64_t* eoL = L.eo + L.ent_off[d - 1]
    cdef const int64_t* ekL = L.ek + L.ent_off[d - 1]
    cdef int kind = sp.kind, cellk = sp.cell
    cdef const double* kern = sp.kernel
    cdef bint linear = kind == K_LINEAR, soft = sp.soft and kind == K_EXP
    cdef bint need_x = omit or has_nd or not linear or cellk == C_POWER or tgt != NULL
    cdef bint wf32 = sp.weights_f32
    cdef double beta = sp.beta, p1 = sp.p1, neg_p1 = sp.neg_p1
    cdef int64_t c, e, q, off, ol, kl, a, e0, e1
    cdef double acc, accs, xv = 0.0, wv = 0.0, cf
    cdef T tv = 0
    for c in range(c0, c1):
        acc = 0.0
        accs = 0.0
        if need_x:
            tv = xr[c * xsl]
            xv = <double>tv
            if (has_nd and tv == nd) or (omit and tv != tv):
                dxr[c * dxsl] = 0
                continue
        if wr != NULL:
            wv = ((<const float*>wr)[c * wsl] if wf32
                  else (<const double*>wr)[c * wsl])
        if soft:
            wv = beta * xv
        e0 = lp[c]
        e1 = lp[c + 1]
        for e in range(e0, e1):
            ol = eoL[e] * osl
            kl = ekL[e]
            for q in range(nq):
                off = QO[q] + ol
                if G != NULL:
                    if not linear:
                        acc += cell_term(sp, xv, wv, G[off], B, C, D, off)
                    elif kern != NULL:
                        acc += G[off] * kern[QK[q] + kl]
                    else:
                        acc += G[off]
                if H != NULL and same_value(tv, tgt[off]):
                    for a in range(nr):
                        oa[a] = QA[q * 2 * nr + a]
                        ka[a] = QA[q * 2 * nr + nr + a]
                    oa[nr] = eoL[e]
                    ka[nr] = kl
                    if not earlier_equal(ar, L, xb, oa, ka, tgt[off], omit, has_nd,
                                         nd, cval):
                        accs += H[off]
        if linear and acc != 0.0 and cellk != C_ONE:
            if cellk == C_WEIGHT:
                cf = wv
            else:
                cf = signed_pow(xv, p1, neg_p1)
            acc = acc * cf
        dxr[c * dxsl] = <F>(acc + accs)


cdef void spread_row(const Arrays* ar, const Lists* L, const Params* sp,
                     const T* xr, const char* wr, F* dxr, const double* G,
                     const double* H, const int64_t* sel, const int64_t* QO,
                     const int64_t* QK, const int64_t* QF, Py_ssize_t nq,
                     int64_t rflat, int64_t c0, int64_t c1, bint omit, bint has_nd,
                     T nd, double* buf, double* bufs) noexcept nogil:
    """:func:`gather_row` for the linear and index-selection terms, window by
    window along the last axis: each window of the row's windows adds its factor
    to the cells it reads in a row buffer this task owns (regular loops, no
    per-cell lists), in a fixed order (row window, tap, window), so the sums do
    not depend on the threads either."""
    cdef int64_t d = ar.d, osl = ar.os[ar.d], nl = ar.n[ar.d], k = ar.width[ar.d]
    cdef int64_t st = ar.s, pad = ar.p, dil = ar.dil, lo = ar.lo, hi = ar.hi
    cdef int64_t n = c1 - c0, q, j, o, o0, o1, e, e0, e1, c, base
    cdef const double* kern = sp.kernel
    cdef const double* Gq
    cdef const int64_t* Sq
    cdef double wj, cf
    cdef int cellk = sp.cell
    cdef bint wf32 = sp.weights_f32, inside
    cdef T tv
    for c in range(n):
        buf[c] = 0.0
        bufs[c] = 0.0
    # the first edge entry of a cell in [c0, c1)
    e0 = 0
    e1 = L.n_edge
    while e0 < e1:
        e = (e0 + e1) // 2
        if L.edge_cell[e] < c0:
            e0 = e + 1
        else:
            e1 = e
    if G != NULL:
        for q in range(nq):
            Gq = G + QO[q]
            for j in range(k):
                wj = kern[QK[q] + j] if kern != NULL else 1.0
                # interior windows whose tap j lands in [c0, c1)
                base = pad - j * dil
                o0 = max(lo, (c0 + base + st - 1) // st) if c0 + base >= 0 else lo
                o1 = min(hi, (c1 - 1 + base) // st + 1) if c1 - 1 + base >= 0 else lo
                if kern != NULL:
                    for o in range(o0, o1):
                        buf[o * st - base - c0] += Gq[o * osl] * wj
                else:
                    for o in range(o0, o1):
                        buf[o * st - base - c0] += Gq[o * osl]
            # the other windows (padding, copies, irregular windows) by list
            e = e0
            while e < L.n_edge and L.edge_cell[e] < c1:
                buf[L.edge_cell[e] - c0] += Gq[L.edge_o[e] * osl] * (
                    kern[QK[q] + L.edge_k[e]] if kern != NULL else 1.0)
                e += 1
    if H != NULL:
        # the interior windows that read a cell of [c0, c1) (only they can pick
        # one); the others by list below
        o0 = max(lo, (c0 + pad - (k - 1) * dil + st - 1) // st
                 if c0 + pad - (k - 1) * dil >= 0 else 0)
        o1 = min(hi, (c1 - 1 + pad) // st + 1)
        for q in range(nq):
            if not QF[q]:
                continue
            Sq = sel + QO[q]
            Gq = H + QO[q]
            base = rflat * nl + c0
            for o in range(o0, o1):
                # branch-free: whether a window's pick lies in this row is a
                # coin flip for the branch predictor
                e = Sq[o * osl] - base
                inside = (e >= 0) & (e < n)
                bufs[e if inside else 0] += Gq[o * osl] if inside else 0.0
            e = e0
            while e < L.n_edge and L.edge_cell[e] < c1:
                if L.edge_f[e] and Sq[L.edge_o[e] * osl] == base + L.edge_cell[e] - c0:
                    bufs[L.edge_cell[e] - c0] += Gq[L.edge_o[e] * osl]
                e += 1
    for c in range(n):
        cf = buf[c]
        if omit or has_nd or cellk != C_ONE:
            tv = xr[(c0 + c) * ar.xs[d]]
            if (has_nd and tv == nd) or (omit and tv != tv):
                dxr[(c0 + c) * ar.dxs[d]] = 0
                continue
            if cf != 0.0 and cellk == C_WEIGHT:
                cf = cf * ((<const float*>wr)[(c0 + c) * ar.ws[d]] if wf32
                           else (<const double*>wr)[(c0 + c) * ar.ws[d]])
            elif cf != 0.0 and cellk == C_POWER:
                cf = cf * signed_pow(<double>tv, sp.p1, sp.neg_p1)
        dxr[(c0 + c) * ar.dxs[d]] = <F>(cf + bufs[c])


cdef int gather_engine(const Arrays* ar, const Lists* L, const Params* sp, const T* x,
                       const char* wts, F* dx, const double* G, const double* H,
                       const int64_t* sel, const T* tgt, const double* B,
                       const double* C, const double* D, bint omit, bint has_nd, T nd,
                       T cval, int nthreads) noexcept nogil:
    cdef int64_t d = ar.d, nr = ar.d - 1, nl = ar.n[ar.d]
    cdef int64_t nrows = 1, nchunks, total, t, bi, r, rest, ch, c0, c1, a
    cdef int64_t xo, dxo, wo, ob, rflat, e, nq
    # Per-thread: arrays declared here would be shared by the whole team.
    cdef int64_t* idx
    cdef int64_t* pos
    cdef int64_t qo, qk, qf
    cdef bint empty
    cdef const int64_t* lp
    cdef Py_ssize_t qb = ((ar.maxlist * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t qab = ((ar.maxlist * 16 * max(nr, 1)) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t cb = ar.chunk * 8
    cdef Py_ssize_t per_thread = 3 * qb + qab + 4 * MAX_DIMS * 8 + 2 * cb
    # Linear and index-selection terms go window by window (spread_row).
    cdef bint spread = (sp.kind == K_LINEAR and tgt == NULL
                        and (H == NULL or sel != NULL))
    cdef double* buf
    cdef char* scratch
    cdef char* mine
    cdef int64_t* QO
    cdef int64_t* QK
    cdef int64_t* QF
    cdef int64_t* QA
    cdef int64_t* oa
    cdef int64_t* ka
    cdef int64_t wbytes = 4 if sp.weights_f32 else 8
    for a in range(1, d):
        nrows *= ar.n[a]
    nchunks = (nl + ar.chunk - 1) // ar.chunk
    total = ar.nbatch * nrows * nchunks
    scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        QO = <int64_t*>mine
        QK = <int64_t*>(mine + qb)
        QF = <int64_t*>(mine + 2 * qb)
        QA = <int64_t*>(mine + 3 * qb)
        oa = <int64_t*>(mine + 3 * qb + qab)
        ka = oa + MAX_DIMS
        idx = oa + 2 * MAX_DIMS
        pos = oa + 3 * MAX_DIMS
        buf = <double*>(mine + 3 * qb + qab + 4 * MAX_DIMS * 8)
        for t in prange(total, schedule="static"):
            bi = t // (nrows * nchunks)
            rest = t - bi * nrows * nchunks
            r = rest // nchunks
            ch = rest - r * nchunks
            c0 = ch * ar.chunk
            c1 = min(c0 + ar.chunk, nl)
            # The input row: indices on the first d-1 pooled axes.
            xo = bi * ar.xs[0]
            dxo = bi * ar.dxs[0]
            wo = bi * ar.ws[0]
            ob = bi * ar.os[0]
            rflat = 0
            rest = r
            for a in range(d - 1, 0, -1):
                idx[a] = rest % ar.n[a]
                rest = rest // ar.n[a]
            empty = False
            for a in range(1, d):
                xo = xo + idx[a] * ar.xs[a]
                dxo = dxo + idx[a] * ar.dxs[a]
                wo = wo + idx[a] * ar.ws[a]
                rflat = rflat * ar.n[a] + idx[a]
                lp = L.ptr + L.ptr_off[a - 1]
                if lp[idx[a] + 1] == lp[idx[a]]:
                    empty = True
            # The windows that read this row: the product of the axes' lists.
            nq = 0
            if not empty:
                for a in range(1, d):
                    lp = L.ptr + L.ptr_off[a - 1]
                    pos[a] = lp[idx[a]]
                while True:
                    qo = 0
                    qk = 0
                    qf = 1
                    for a in range(1, d):
                        e = L.ent_off[a - 1] + pos[a]
                        qo = qo + L.eo[e] * ar.os[a]
                        qk = qk + L.ek[e] * ar.tapstride[a]
                        qf = qf & L.ef[e]
                        QA[nq * 2 * nr + a - 1] = L.eo[e]
                        QA[nq * 2 * nr + nr + a - 1] = L.ek[e]
                    QO[nq] = qo
                    QK[nq] = qk
                    QF[nq] = qf
                    nq = nq + 1
                    a = d - 1
                    while a >= 1:
                        lp = L.ptr + L.ptr_off[a - 1]
                        pos[a] = pos[a] + 1
                        if pos[a] < lp[idx[a] + 1]:
                            break
                        pos[a] = lp[idx[a]]
                        a = a - 1
                    if a < 1:
                        break
            if spread:
                spread_row(ar, L, sp, x + xo,
                           wts + wo * wbytes if wts != NULL else NULL, dx + dxo,
                           G + ob if G != NULL else NULL,
                           H + ob if H != NULL else NULL,
                           sel + ob if sel != NULL else NULL, QO, QK, QF, nq, rflat,
                           c0, c1, omit, has_nd, nd, buf, buf + ar.chunk)
                continue
            gather_row(ar, L, sp, x + bi * ar.xs[0], x + xo,
                       wts + wo * wbytes if wts != NULL else NULL, dx + dxo,
                       G + ob if G != NULL else NULL, H + ob if H != NULL else NULL,
                       tgt + ob if tgt != NULL else NULL,
                       B + ob if B != NULL else NULL, C + ob if C != NULL else NULL,
                       D + ob if D != NULL else NULL, QO, QK, QA, nq, c0, c1, omit,
                       has_nd, nd, cval, oa, ka)
    free(scratch)
    return 0


def gather(const T[:] dtype_tag, cnp.ndarray x, object weights, cnp.ndarray dx,
           object g_lin, object g_sel, object sel, object target, object b, object c,
           object d, const int64_t[::1] ptr, const int64_t[::1] ptr_off,
           const int64_t[::1] eo, const int64_t[::1] ek, const int64_t[::1] ef,
           const int64_t[::1] ent_off, const int64_t[::1] widths, int64_t maxlist,
           const int64_t[::1] edge_cell, const int64_t[::1] edge_o,
           const int64_t[::1] edge_k, const int64_t[::1] edge_f,
           const int64_t[::1] tables, const int64_t[::1] tab_off,
           const int64_t[::1] out_len, const int64_t[::1] interior, int kind,
           int cell=C_ONE, double beta=0.0, double alpha=0.0, double lam=1.0,
           double p1=0.0, double neg_p1=0.0, bint asymmetric=False, bint soft=False,
           object kernel=None, bint omit=False, object nodata=None, object cval=0,
           int nthreads=1):
    """``dx`` (batch, *pooled; float32 or float64) from the window arrays.

    ``g_lin``: per-window factors of the kind's term (None: no such term);
    ``g_sel``: per-window gradients sent to one selected sample, named by
    ``sel`` (flat input indices) or found as the first valid sample equal to
    ``target`` (``T``); ``b``..``d``: the kind's per-window statistics.  All
    window arrays are views of one layout (element strides); ``x`` and
    ``weights`` share one layout.
    """
    cdef Arrays ar
    cdef Lists L
    cdef Params sp
    cdef cnp.ndarray ref = next(v for v in (g_lin, g_sel, sel, target, b, c, d)
                                if v is not None)
    cdef Py_ssize_t a
    cdef int64_t span = 1
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef int rc
    ar.d = x.ndim - 1
    ar.nbatch = x.shape[0]
    for a in range(x.ndim):
        ar.n[a] = x.shape[a]
        ar.xs[a] = x.strides[a] // x.itemsize
        ar.dxs[a] = dx.strides[a] // dx.itemsize
        ar.ws[a] = weights.strides[a] // weights.itemsize if weights is not None else 0
        ar.os[a] = ref.strides[a] // ref.itemsize
    for a in range(ar.d, 0, -1):
        ar.width[a] = widths[a - 1]
        ar.tapstride[a] = span
        span *= widths[a - 1]
    ar.maxlist = max(maxlist, 1)
    ar.chunk = 4096
    ar.lo = interior[0]
    ar.hi = interior[1]
    ar.s = interior[2]
    ar.p = interior[3]
    ar.dil = interior[4]
    ar.W = out_len[ar.d - 1]
    L.ptr = &ptr[0]
    L.ptr_off = &ptr_off[0]
    L.eo = &eo[0] if eo.shape[0] else NULL
    L.ek = &ek[0] if ek.shape[0] else NULL
    L.ef = &ef[0] if ef.shape[0] else NULL
    L.ent_off = &ent_off[0]
    L.tables = &tables[0]
    L.tab_off = &tab_off[0]
    L.n_edge = edge_cell.shape[0]
    L.edge_cell = &edge_cell[0] if L.n_edge else NULL
    L.edge_o = &edge_o[0] if L.n_edge else NULL
    L.edge_k = &edge_k[0] if L.n_edge else NULL
    L.edge_f = &edge_f[0] if L.n_edge else NULL
    sp = make_params(weights, kernel, beta, alpha, lam, asymmetric, soft)
    sp.kind = kind
    sp.cell = cell
    sp.p1 = p1
    sp.neg_p1 = neg_p1
    cdef bint dx_f32 = dx.dtype.itemsize == 4, has_nd = nodata is not None
    cdef const char* wp = <const char*>_ptr(weights)
    cdef const double* gl = <const double*>_ptr(g_lin)
    cdef const double* gs = <const double*>_ptr(g_sel)
    cdef const int64_t* selp = <const int64_t*>_ptr(sel)
    cdef const T* tp = <const T*>_ptr(target)
    cdef const double* bp = <const double*>_ptr(b)
    cdef const double* cp = <const double*>_ptr(c)
    cdef const double* dp = <const double*>_ptr(d)
    cdef const T* xp = <const T*>cnp.PyArray_DATA(x)
    cdef void* dxp = cnp.PyArray_DATA(dx)
    with nogil:
        if dx_f32:
            rc = gather_engine(&ar, &L, &sp, xp, wp, <float*>dxp, gl, gs, selp, tp,
                               bp, cp, dp, omit, has_nd, nd, cv, nthreads)
        else:
            rc = gather_engine(&ar, &L, &sp, xp, wp, <double*>dxp, gl, gs, selp, tp,
                               bp, cp, dp, omit, has_nd, nd, cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")


# --------------------------------------------------------------------------- disjoint

cdef void extremum_taps_as(const Geom* g, const T* xb, const int64_t* roff,
                           Py_ssize_t nrows, Py_ssize_t c0, Py_ssize_t nl, T* M,
                           int32_t* S, Dir dtag, NanTag ntag) noexcept nogil:
    """:func:`first_extremum_taps` with the direction and NaN policy fixed at
    compile time: one simple loop per tap, so it vectorises."""
    cdef int64_t step = g.s * g.sc
    cdef Py_ssize_t r, j, i
    cdef int32_t tap
    cdef const T* p
    cdef T v
    cdef bint hit
    for r in range(nrows):
        for j in range(g.k):
            p = xb + roff[r] + (c0 * g.s - g.p + j * g.dil) * g.sc
            tap = <int32_t>(r * g.k + j)
            if tap == 0:
                for i in range(nl):
                    M[i] = p[i * step]
                    S[i] = 0
                continue
            for i in range(nl):
                v = p[i * step]
                hit = replaces(v, M[i], Dir is MinTag, NanTag is OmitTag)
                M[i] = select(hit, v, M[i])
                S[i] = tap if hit else S[i]


cdef extern from "_fastpool.h":
    void fp_extremum_blocks_f32(const float* p0, const float* p1, float* q0, float* q1,
                                const float* g, Py_ssize_t n, bint is_min,
                                bint omit) noexcept nogil
    void fp_extremum_blocks_f64(const double* p0, const double* p1, double* q0,
                                double* q1, const double* g, Py_ssize_t n, bint is_min,
                                bint omit) noexcept nogil
    void fp_soft_blocks_f32(const float* p0, const float* p1, float* q0, float* q1,
                            const float* g, Py_ssize_t n, double beta) noexcept nogil
    void fp_soft_blocks_f64(const double* p0, const double* p1, double* q0, double* q1,
                            const double* g, Py_ssize_t n, double beta) noexcept nogil
    void fp_pair_stores_f32(float* q, const int32_t* taps, const float* g, Py_ssize_t n,
                            int32_t tap) noexcept nogil
    void fp_pair_stores_f64(double* q, const int32_t* taps, const double* g,
                            Py_ssize_t n, int32_t tap) noexcept nogil


cdef inline bint first_taps_fast(const Geom* g, const T* xb, const int64_t* roff,
                                 Py_ssize_t nrows, Py_ssize_t c0, Py_ssize_t nl,
                                 bint is_min, bint omit, int32_t* S) noexcept nogil:
    """:func:`first_extremum_taps` by :func:`first_taps_stride2` (3x3, 2x2 and
    2x2x2 windows at stride 2 along contiguous float rows); False (nothing done)
    for the others."""
    cdef const T* P[4]
    cdef Py_ssize_t r
    if g.s != 2 or g.dil != 1 or g.sc != 1 or nrows > 4:
        return False
    for r in range(nrows):
        P[r] = xb + roff[r] + (c0 * 2 - g.p)
    return first_taps_stride2(P, g.k, nrows, nl, is_min, omit, S)


cdef inline void extremum_blocks(const T* p0, const T* p1, F* q0, F* q1, const F* GL,
                                 Py_ssize_t nl, bint is_min, bint omit) noexcept nogil:
    """2x2 blocks of two contiguous rows: each block's gradient to its first
    extremum, 0 to the other three, in one vectorised loop (float and double
    input, gradient of the same type)."""
    if T is float and F is float:
        fp_extremum_blocks_f32(p0, p1, q0, q1, GL, nl, is_min, omit)
    elif T is double and F is double:
        fp_extremum_blocks_f64(p0, p1, q0, q1, GL, nl, is_min, omit)


cdef inline void pair_stores(F* q, const int32_t* S, const F* GL, Py_ssize_t nl,
                             int32_t tap) noexcept nogil:
    """``q[2i]`` gets ``GL[i]`` where ``S[i]`` is ``tap``, ``q[2i + 1]`` where it
    is ``tap + 1``, 0 elsewhere."""
    if F is float:
        fp_pair_stores_f32(q, S, GL, nl, tap)
    else:
        fp_pair_stores_f64(q, S, GL, nl, tap)


cdef void first_extremum_taps(const Geom* g, const T* xb, const int64_t* roff,
                              Py_ssize_t nrows, Py_ssize_t c0, Py_ssize_t nl,
                              bint is_min, bint omit, T* M, int32_t* S) noexcept nogil:
    """The tap (``r * k + j``) of the first extremum of the interior windows
    ``[c0, c0 + nl)``, read directly, lanes across the windows."""
    cdef MaxTag mx
    cdef MinTag mn
    cdef PropTag prop
    cdef OmitTag om
    if is_min and omit:
        extremum_taps_as(g, xb, roff, nrows, c0, nl, M, S, mn, om)
    elif is_min:
        extremum_taps_as(g, xb, roff, nrows, c0, nl, M, S, mn, prop)
    elif omit:
        extremum_taps_as(g, xb, roff, nrows, c0, nl, M, S, mx, om)
    else:
        extremum_taps_as(g, xb, roff, nrows, c0, nl, M, S, mx, prop)


cdef bint first_extremum_at(const Geom* g, const T* xb, const int64_t* roff,
                            const char* rcv, Py_ssize_t nrows, Py_ssize_t w,
                            bint is_min, bint omit, T cval, Py_ssize_t* best_r,
                            Py_ssize_t* best_j) noexcept nogil:
    """The window row ``best_r`` and tap ``best_j`` of window ``w``'s first
    extremum, through the tables (any window); False where there is none that
    receives a gradient: all samples missing, or a cval sample wins."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1] + w * g.k
    cdef Py_ssize_t r, j
    cdef int64_t e
    cdef T v, best = 0
    cdef bint have = False, best_cval = False, is_cval
    for r in range(nrows):
        for j in range(g.k):
            e = tab[j]
            if e == EXCLUDED:
                continue
            is_cval = e < EXCLUDED or rcv[r]
            if e < EXCLUDED:
                e = -2 - e
            v = cval if is_cval else xb[roff[r] + e * g.sc]
            if omit and v != v:
                continue
            if not have or replaces(v, best, is_min, False):
                have = True
                best = v
                best_r[0] = r
                best_j[0] = j
                best_cval = is_cval
    return have and not best_cval


cdef inline Py_ssize_t next_edge_window(Py_ssize_t w, Py_ssize_t lo,
                                        Py_ssize_t hi) noexcept nogil:
    """The window after ``w`` outside the interior ``[lo, hi)``: the loops over
    them jump the interior (a skipped iteration still cost the pointer updates
    the compiler hoisted, 6 cycles a window)."""
    w = w + 1
    return hi if lo <= w < hi else w


cdef inline double grad_at(const char* gb, bint g32, int64_t i,
                           double divide) noexcept nogil:
    """Element ``i`` of ``grad_output``, held as float32 (``g32``) or float64:
    float32 gradients of float32 input are read as they are, not copied.  A
    ``divide`` other than 0 divides it (in float64): a mean's share without a
    full-size array of shares."""
    cdef double v = (<const float*>gb)[i] if g32 else (<const double*>gb)[i]
    return v / divide if divide != 0.0 else v


cdef inline void load_grads(const char* gb, bint g32, int64_t os, Py_ssize_t n,
                            double divide, F* out) noexcept nogil:
    """``n`` gradients ``os`` elements apart (see :func:`grad_at`), the tests
    out of the loops."""
    cdef Py_ssize_t i
    if divide != 0.0:
        if g32:
            for i in range(n):
                out[i] = <F>(<double>(<const float*>gb)[i * os] / divide)
        else:
            for i in range(n):
                out[i] = <F>((<const double*>gb)[i * os] / divide)
    elif g32:
        for i in range(n):
            out[i] = <F>(<const float*>gb)[i * os]
    else:
        for i in range(n):
            out[i] = <F>(<const double*>gb)[i * os]


cdef void disjoint_row(const Geom* g, const T* xb, F* db, const char* gb, bint g32,
                       double divide,
                       const int64_t* roff, const int64_t* droff, int64_t dsc,
                       const char* rcv, Py_ssize_t nrows,
                       bint linear, bint is_min, bint omit, T cval, T* M, int32_t* S,
                       F* GL) noexcept nogil:
    """One output row of windows that share no input element: each window writes
    its own elements: with ``linear`` its factor to every element (a mean's
    share), else the gradient at its first extremum and 0 elsewhere."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef int64_t os = g.out_stride[g.d], st = g.s, sc = g.sc, dil = g.dil, pad = g.p
    cdef int64_t step = g.s * g.sc
    cdef Py_ssize_t w, r, j, i, nl, lo = g.lo, hi = g.hi, best_r, best_j
    cdef int64_t e, pos
    cdef int32_t tap
    cdef T v, best
    cdef bint any_cval = False, have, best_cval, is_cval
    cdef double gv
    cdef F* q
    cdef int64_t dstep = g.s * dsc
    cdef bint pairs = g.k == 2 and g.s == 2 and g.dil == 1 and g.sc == 1 and dsc == 1
    # Local lanes: the compiler can see that the stores to ``db`` do not touch
    # them (through the scratch pointers it could not, and did not vectorise).
    cdef F GLl[64]
    cdef int32_t Sl[64]
    cdef T Ml[64]
    for r in range(nrows):
        any_cval = any_cval or rcv[r]
    if any_cval or nrows != g.max_rows:
        lo = 0
        hi = 0
    w = lo
    while w < hi:
        nl = min(<Py_ssize_t>64, hi - w)
        load_grads(gb + (w * os << (2 if g32 else 3)), g32, os, nl, divide, GLl)
        if linear and pairs:
            for r in range(nrows):
                q = db + droff[r] + (w * st - pad)
                for i in range(nl):
                    q[2 * i] = GLl[i]
                    q[2 * i + 1] = GLl[i]
            w = w + nl
            continue
        if linear:
            for r in range(nrows):
                for j in range(g.k):
                    q = db + droff[r] + (w * st - pad + j * dil) * dsc
                    for i in range(nl):
                        q[i * dstep] = GLl[i]
            w = w + nl
            continue
        if pairs and nrows == 2 and ((T is float and F is float)
                                     or (T is double and F is double)):
            extremum_blocks(xb + roff[0] + (w * st - pad), xb + roff[1] + (w * st - pad),
                            db + droff[0] + (w * st - pad), db + droff[1] + (w * st - pad),
                            GLl, nl, is_min, omit)
            w = w + nl
            continue
        if pairs and ((T is float and F is float) or (T is double and F is double)) \
                and first_taps_fast(g, xb, roff, nrows, w, nl, is_min, omit, Sl):
            for r in range(nrows):
                pair_stores(db + droff[r] + (w * st - pad), Sl, GLl, nl, <int32_t>(2 * r))
            w = w + nl
            continue
        first_extremum_taps(g, xb, roff, nrows, w, nl, is_min, omit, Ml, Sl)
        if omit:
            for i in range(nl):
                if Ml[i] != Ml[i]:
                    GLl[i] = 0   # an all-NaN window under 'omit' sends nothing
        if pairs:
            # 2-wide blocks of contiguous rows: both elements of a window in one
            # store, not every other element in two passes over the row.
            for r in range(nrows):
                q = db + droff[r] + (w * st - pad)
                tap = <int32_t>(2 * r)
                for i in range(nl):
                    q[2 * i] = GLl[i] if Sl[i] == tap else 0
                    q[2 * i + 1] = GLl[i] if Sl[i] == tap + 1 else 0
            w = w + nl
            continue
        for r in range(nrows):
            for j in range(g.k):
                q = db + droff[r] + (w * st - pad + j * dil) * dsc
                tap = <int32_t>(r * g.k + j)
                for i in range(nl):
                    q[i * dstep] = GLl[i] if Sl[i] == tap else 0
        w = w + nl
    w = -1
    while True:
        w = next_edge_window(w, lo, hi)
        if w >= g.W:
            break
        gv = grad_at(gb, g32, w * os, divide)
        if linear:
            for r in range(nrows):
                if rcv[r]:
                    continue
                for j in range(g.k):
                    e = tab[w * g.k + j]
                    if e >= 0:
                        db[droff[r] + e * dsc] = <F>gv
            continue
        if not first_extremum_at(g, xb, roff, rcv, nrows, w, is_min, omit, cval,
                                 &best_r, &best_j):
            best_r = -1
        for r in range(nrows):
            if rcv[r]:
                continue
            for j in range(g.k):
                e = tab[w * g.k + j]
                if e < 0:
                    continue
                db[droff[r] + e * dsc] = <F>(gv if (r == best_r and j == best_j)
                                             else 0.0)


cdef enum:
    SOFT_WINDOW = 64   # the largest window the one-pass SoftPool gradient holds


cdef void disjoint_soft_row(const Geom* g, const T* xb, F* db, const char* gb, bint g32,
                            const int64_t* roff, const int64_t* droff, int64_t dsc,
                            const char* rcv, Py_ssize_t nrows,
                            double beta, T cval) noexcept nogil:
    """SoftPool's gradient for one output row of windows that share no element:
    each window's exponentials are taken once (shifted by its largest logit) and
    its elements receive ``g * e_i / E * (1 + beta * (x_i - out))``; a window
    holding a NaN sends NaN to each of them.  2x2 blocks of contiguous rows go
    through one vectorised loop that computes the same."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef int64_t os = g.out_stride[g.d], sc = g.sc, e
    cdef Py_ssize_t w, r, j, i, n, lo = g.lo, hi = g.hi
    cdef double V[SOFT_WINDOW]
    cdef double X[SOFT_WINDOW]
    cdef int64_t OFF[SOFT_WINDOW]
    cdef double m, total, out, gv, v
    cdef bint is_cval, nan
    cdef bint blocks = (nrows == 2 and not rcv[0] and not rcv[1] and g.k == 2
                        and g.s == 2 and g.dil == 1 and sc == 1 and dsc == 1
                        and os == 1 and hi > lo
                        and ((T is float and F is float and g32)
                             or (T is double and F is double and not g32)))
    if blocks:
        if T is float and F is float:
            fp_soft_blocks_f32(xb + roff[0] + (lo * 2 - g.p), xb + roff[1] + (lo * 2 - g.p),
                               db + droff[0] + (lo * 2 - g.p),
                               db + droff[1] + (lo * 2 - g.p),
                               <const float*>gb + lo, hi - lo, beta)
        elif T is double and F is double:
            fp_soft_blocks_f64(xb + roff[0] + (lo * 2 - g.p), xb + roff[1] + (lo * 2 - g.p),
                               db + droff[0] + (lo * 2 - g.p),
                               db + droff[1] + (lo * 2 - g.p),
                               <const double*>gb + lo, hi - lo, beta)
    else:
        lo = 0
        hi = 0
    w = -1
    while True:
        w = next_edge_window(w, lo, hi)
        if w >= g.W:
            break
        n = 0
        nan = False
        m = -INFINITY
        for r in range(nrows):
            for j in range(g.k):
                e = tab[w * g.k + j]
                if e == EXCLUDED:
                    continue
                is_cval = e < EXCLUDED or rcv[r]
                if e < EXCLUDED:
                    e = -2 - e
                v = <double>(cval if is_cval else xb[roff[r] + e * sc])
                nan = nan or v != v
                X[n] = v
                OFF[n] = -1 if is_cval else droff[r] + e * dsc
                m = max(m, beta * v)
                n += 1
        total = 0.0
        out = 0.0
        for i in range(n):
            V[i] = fp_exp(beta * X[i] - m)
            total += V[i]
            out += V[i] * X[i]
        out = out / total
        gv = grad_at(gb, g32, w * os, 0.0) / total
        for i in range(n):
            if OFF[i] >= 0:
                db[OFF[i]] = <F>(NAN if nan else gv * V[i] * (1.0 + beta * (X[i] - out)))


cdef int disjoint_engine(const Geom* g, const Geom* gd, const T* x, F* dx,
                         const char* gout, bint g32, double divide, int mode,
                         bint is_min, bint omit, double beta, T cval,
                         int nthreads) noexcept nogil:
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, bi, orow, nrows
    cdef int64_t oo, io, oo2, io2
    cdef int gshift = 2 if g32 else 3
    cdef Py_ssize_t rb = ((max(g.max_rows, 1) * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t per_thread = 4 * rb + 64 * 24
    cdef char* scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    cdef char* mine
    cdef int64_t* roff
    cdef int64_t* droff
    cdef int64_t* rflat
    cdef char* rcv
    cdef T* LM
    cdef int32_t* LS
    cdef F* GL
    # Max, min and SoftPool over short rows (NCHW maps) ask for the rows a few
    # output rows on (see overlap_engine): 2x2 max 0.6-0.9x the time with, at 1
    # and 2 threads (the less where other calls had evicted the input); the
    # means, which do not read it, gained nothing.
    cdef bint short_rows = (mode != D_LINEAR and g.sc == 1
                            and g.W <= block_len(g, sizeof(T)))
    cdef int64_t ahead = short_rows_ahead(g, sizeof(T))
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        roff = <int64_t*>mine
        rflat = <int64_t*>(mine + rb)
        rcv = mine + 2 * rb
        droff = <int64_t*>(mine + 3 * rb)
        LM = <T*>(mine + 4 * rb)
        LS = <int32_t*>(mine + 4 * rb + 64 * 8)
        GL = <F*>(mine + 4 * rb + 64 * 16)
        for t in prange(total, schedule="static"):
            bi = t // g.nrows_out
            orow = t - bi * g.nrows_out
            oo = 0
            io = 0
            oo2 = 0
            io2 = 0
            nrows = collect_rows(g, orow, roff, rflat, rcv, &oo, &io)
            # the same rows' offsets in dx (its own strides)
            collect_rows(gd, orow, droff, rflat, rcv, &oo2, &io2)
            if short_rows:
                prefetch_rows(g, x + bi * g.in_stride[0], roff, nrows, ahead)
            if mode == D_SOFT:
                disjoint_soft_row(g, x + bi * g.in_stride[0], dx + bi * gd.in_stride[0],
                                  gout + ((bi * g.out_stride[0] + oo) << gshift), g32,
                                  roff, droff, gd.sc, rcv, nrows, beta, cval)
                continue
            disjoint_row(g, x + bi * g.in_stride[0], dx + bi * gd.in_stride[0],
                         gout + ((bi * g.out_stride[0] + oo) << gshift), g32, divide,
                         roff, droff, gd.sc, rcv, nrows, mode == D_LINEAR, is_min, omit, cval, LM, LS, GL)
    free(scratch)
    return 0


# --------------------------------------------------------------------------- overlap

cdef enum:
    BAND_BYTES = 262144   # a task's float64 accumulator rows: a share of L2
    ROLL_BYTES = 24576    # the rows a rolling accumulator holds: a share of L1
    STREAM_BYTES = 16777216   # results from this size on bypass the caches


cdef extern from "_fastpool.h":
    void fp_round_row_f32(float* q, const double* a, Py_ssize_t n,
                          bint stream) noexcept nogil
    void fp_round_row_f64(double* q, const double* a, Py_ssize_t n,
                          bint stream) noexcept nogil
    void fp_stream_fence() noexcept nogil


cdef inline void round_row(F* q, const double* a, Py_ssize_t n, bint stream) noexcept nogil:
    """``q[i] = <F>a[i]`` for a contiguous row (see fp_round_row_f32)."""
    if F is float:
        fp_round_row_f32(q, a, n, stream)
    else:
        fp_round_row_f64(q, a, n, stream)


cdef inline void linear_taps3_s2(double* q, const double* GL, Py_ssize_t n) noexcept nogil:
    """The linear gradient's adds for one accumulator row of 3-wide windows at
    stride 2 (``q``: cell 0 of window 0; window i covers ``q[2i]``, ``q[2i + 1]``,
    ``q[2i + 2]``): the three tap passes ``q[2i + j] += GL[i]`` (j = 0, 1, 2, in
    that order) fused into one sweep over cell pairs.  Each cell receives its
    terms in the order of the passes (at an even cell j = 0 before j = 2; the
    boundary cells ``q[0]`` and ``q[2n]`` one term each), so the sums are bitwise
    those of the passes, but the sweep vectorises where the passes' strided
    read-modify-writes did not."""
    cdef Py_ssize_t i
    cdef double a
    if n <= 0:
        return
    q[0] += GL[0]
    q[1] += GL[0]
    for i in range(1, n):
        a = q[2 * i] + GL[i]
        q[2 * i] = a + GL[i - 1]
        q[2 * i + 1] += GL[i]
    q[2 * n] += GL[n - 1]


cdef void overlap_row(const Geom* g, const T* xb, const char* gb, bint g32, double divide,
                      double rcount, const double* ccount,
                      const int64_t* roff, const int64_t* rflat, const char* rcv,
                      Py_ssize_t nrows, int64_t r0, int64_t r1, double* acc,
                      int64_t accw, int64_t* tap_off, char* tap_in, bint linear,
                      bint is_min, bint omit, T cval, T* M, int32_t* S,
                      double* GL) noexcept nogil:
    """Adds the gradient of each window of one output row (2-D pooling) to the
    cell of its first extremum (with ``linear``, its factor to each of its
    cells), where that cell lies in the input rows ``[r0, r1)`` (``acc``: those
    rows, ``accw`` cells each): the interior windows, then the others in order."""
    cdef double* q
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1]
    cdef int64_t os = g.out_stride[g.d], st = g.s, row
    cdef int gshift = 2 if g32 else 3
    cdef Py_ssize_t w, r, j, i, nl, lo = g.lo, hi = g.hi
    cdef bint any_cval = False
    cdef int32_t tap
    for r in range(nrows):
        any_cval = any_cval or rcv[r]
        row = rflat[r] - r0
        for j in range(g.k):
            # the interior windows' taps: accumulator offset less the window's start
            tap_in[r * g.k + j] = (not rcv[r]) and 0 <= row < r1 - r0
            tap_off[r * g.k + j] = row * accw + j * g.dil - g.p
    # A cval row among the window rows: every window through the tables, the
    # interior ones first all the same, in the order of the gather path (the
    # same sums where an edge window and an interior one pick the same cell).
    w = lo
    while any_cval and w < hi:
        overlap_window(g, xb, gb, g32, divide, rcount, ccount, roff, rflat, rcv, nrows,
                       w, r0, r1, acc, accw, linear, is_min, omit, cval)
        w = w + 1
    while w < hi:
        nl = min(<Py_ssize_t>64, hi - w)
        load_grads(gb + ((w * os) << gshift), g32, os, nl, divide, GL)
        if ccount != NULL:
            for i in range(nl):
                GL[i] = GL[i] / (rcount * ccount[w + i])
        if linear:
            if g.k == 3 and st == 2 and g.dil == 1:
                for r in range(nrows):
                    if tap_in[r * 3]:   # a row's three taps are in or out together
                        linear_taps3_s2(acc + tap_off[r * 3] + w * 2, GL, nl)
                w = w + nl
                continue
            for tap in range(nrows * g.k):
                if tap_in[tap]:
                    q = acc + tap_off[tap] + w * st
                    for i in range(nl):
                        q[i * st] += GL[i]
            w = w + nl
            continue
        if not first_taps_fast(g, xb, roff, nrows, w, nl, is_min, omit, S):
            first_extremum_taps(g, xb, roff, nrows, w, nl, is_min, omit, M, S)
            if omit:
                for i in range(nl):
                    if M[i] != M[i]:
                        S[i] = -1   # an all-NaN window under 'omit' sends nothing
        for i in range(nl):
            tap = S[i]
            if tap >= 0 and tap_in[tap]:
                acc[tap_off[tap] + (w + i) * st] += GL[i]
        w = w + nl
    # then the other windows, in the order of the gather path (the same sums)
    w = -1
    while True:
        w = next_edge_window(w, lo, hi)
        if w >= g.W:
            break
        overlap_window(g, xb, gb, g32, divide, rcount, ccount, roff, rflat, rcv, nrows,
                       w, r0, r1, acc, accw, linear, is_min, omit, cval)


cdef inline void overlap_window(const Geom* g, const T* xb, const char* gb, bint g32,
                                double divide, double rcount, const double* ccount,
                                const int64_t* roff, const int64_t* rflat,
                                const char* rcv, Py_ssize_t nrows, Py_ssize_t w,
                                int64_t r0, int64_t r1, double* acc, int64_t accw,
                                bint linear, bint is_min, bint omit,
                                T cval) noexcept nogil:
    """:func:`overlap_row` for one window through the tables (padding, copies)."""
    cdef const int64_t* tab = g.tables + g.tab_off[g.d - 1] + w * g.k
    cdef Py_ssize_t best_r = 0, best_j = 0, r, j
    cdef int64_t row, e
    cdef double gv
    if linear:
        gv = grad_at(gb, g32, w * g.out_stride[g.d], divide)
        if ccount != NULL:
            gv = gv / (rcount * ccount[w])
        for r in range(nrows):
            row = rflat[r] - r0
            if rcv[r] or not (0 <= row < r1 - r0):
                continue
            for j in range(g.k):
                e = tab[j]
                if e >= 0:   # not excluded, not cval
                    acc[row * accw + e] += gv
        return
    if not first_extremum_at(g, xb, roff, rcv, nrows, w, is_min, omit, cval,
                             &best_r, &best_j):
        return
    row = rflat[best_r] - r0
    if 0 <= row < r1 - r0:
        acc[row * accw + g.tables[g.tab_off[g.d - 1] + w * g.k + best_j]] += grad_at(
            gb, g32, w * g.out_stride[g.d], 0.0)


cdef void write_rows(const Geom* g, const Geom* gd, const T* x, F* dx, Py_ssize_t bi,
                     const double* a, int64_t step, int64_t ra, int64_t rb, bint power,
                     double p1, double neg_p1, bint stream) noexcept nogil:
    """Rows ``[ra, rb)`` of batch item ``bi`` of ``dx`` from the sums ``a``, one
    row of ``g.in_len[2]`` every ``step`` (0: the same row for each)."""
    cdef int64_t n2 = g.in_len[2], r, c
    cdef const double* ar
    cdef const T* xr
    cdef F* q
    cdef double v
    for r in range(ra, rb):
        q = dx + bi * gd.in_stride[0] + r * gd.in_stride[1]
        ar = a + (r - ra) * step
        if power:
            # Lp's cell factor x ** (p - 1), where a window sends anything
            xr = x + bi * g.in_stride[0] + r * g.in_stride[1]
            for c in range(n2):
                v = ar[c]
                if v != 0.0:
                    v = v * signed_pow(<double>xr[c * g.sc], p1, neg_p1)
                q[c * gd.sc] = <F>v
        elif gd.sc == 1:
            round_row(q, ar, n2, stream)
        else:
            for c in range(n2):
                q[c * gd.sc] = <F>ar[c]


cdef inline void flush_rows(const Geom* g, const Geom* gd, const T* x, F* dx,
                            Py_ssize_t bi, const double* acc, const double* zrow,
                            int64_t base, int64_t ra, int64_t live_to, int64_t rb,
                            bint power, double p1, double neg_p1,
                            bint stream) noexcept nogil:
    """Rows ``[ra, rb)`` of a rolling accumulator written out: those below
    ``live_to`` from ``acc`` (row ``base`` first), the others (no window read
    them) from the zero row."""
    cdef int64_t n2 = g.in_len[2], m = min(rb, live_to)
    if m > ra:
        write_rows(g, gd, x, dx, bi, acc + (ra - base) * n2, n2, ra, m, power, p1,
                   neg_p1, stream)
    if rb > max(ra, m):
        write_rows(g, gd, x, dx, bi, zrow, 0, max(ra, m), rb, power, p1, neg_p1, stream)


cdef int overlap_engine(const Geom* g, const Geom* gd, const T* x, F* dx,
                        const char* gout, bint g32, double divide,
                        const double* rowcnt, const double* colcnt, bint linear,
                        bint power, double p1, double neg_p1,
                        bint is_min, bint omit, T cval, int nthreads) noexcept nogil:
    cdef int64_t n1 = g.in_len[1], n2 = g.in_len[2], out1 = g.out_len[0]
    cdef int64_t k1 = g.width[0]
    cdef int64_t band = max(<int64_t>1, min(n1, BAND_BYTES // max(n2 * 8, <int64_t>1)))
    cdef int64_t nbands = (n1 + band - 1) // band, b, o, j, e, r0, r1, r, c
    cdef Py_ssize_t total = g.nbatch * nbands, t, bi, nrows
    cdef int64_t oo, io
    cdef int gshift = 2 if g32 else 3
    # a result larger than the caches is written past them
    cdef bint stream = g.nbatch * n1 * n2 * <int64_t>sizeof(F) >= STREAM_BYTES
    # Max and min over short rows (NCHW maps) ask for the rows a few output
    # rows on, as the forward engines do: with only the hardware prefetcher the
    # loads of the window search waited (0.85x the time with, at 1 and 2
    # threads).  The means add every tap and gained nothing (1.05x).
    cdef bint short_rows = (not linear and g.sc == 1
                            and g.W <= block_len(g, sizeof(T)))
    cdef int64_t ahead = short_rows_ahead(g, sizeof(T))
    cdef const int64_t* tab0 = g.tables + g.tab_off[0]
    cdef Py_ssize_t ntaps = max(g.max_rows, 1) * g.k
    cdef Py_ssize_t ab
    cdef Py_ssize_t rb = ((max(g.max_rows, 1) * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t tb = ((ntaps * 8) + 63) & ~(<Py_ssize_t>63)
    cdef Py_ssize_t per_thread
    cdef int64_t* span = <int64_t*>aligned_alloc(64, nbands * 16 + out1 * 16 + 64)
    cdef int64_t* reach
    cdef int64_t ring = 0, ring_need = 0, last_lo = -1
    cdef int64_t base, done_to, live_to, lo, hi
    cdef bint rolling = True
    cdef double* zrow
    cdef char* scratch
    cdef char* mine
    cdef double* acc
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef char* rcv
    cdef int64_t* tap_off
    cdef char* tap_in
    cdef T* LM
    cdef int32_t* LS
    cdef double* GL
    cdef bint touch
    if span == NULL:
        return -1
    # The input rows each output row reads ([reach[2o], reach[2o + 1]], -1 for
    # none).  Where the first of them only moves down the image (every mode but
    # a copy that reads far away: 'wrap'), a row is final once the output rows
    # pass it: it is written out then, and the accumulator holds the few rows in
    # between (rolling, in L1) instead of the whole band (in L2): 0.93-0.96x the
    # time of 3x3/2 max and mean gradients of NCHW maps (A/B in one process).
    reach = span + 2 * nbands
    for o in range(out1):
        lo = -1
        hi = -1
        for j in range(k1):
            e = tab0[o * k1 + j]
            if e >= 0:
                lo = e if lo < 0 else min(lo, e)
                hi = max(hi, e)
        reach[2 * o] = lo
        reach[2 * o + 1] = hi
        if lo >= 0:
            rolling = rolling and lo >= last_lo
            ring_need = max(ring_need, hi - lo + 1)
            last_lo = lo
    ring = max(ring_need + 4, ROLL_BYTES // max(n2 * 8, <int64_t>1))
    rolling = rolling and ring < band
    ab = ((((ring + 1) if rolling else band) * n2 * 8) + 63) & ~(<Py_ssize_t>63)
    per_thread = ab + 3 * rb + 2 * tb + 64 * 20
    scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    if scratch == NULL:
        free(span)
        return -1
    # The output rows whose windows read each band: [span[2b], span[2b + 1]]
    # (a copy mode's edge rows may read far away, so from the tables).
    for b in range(nbands):
        span[2 * b] = out1
        span[2 * b + 1] = -1
    for o in range(out1):
        for j in range(k1):
            e = tab0[o * k1 + j]
            if e < 0:
                continue   # excluded, or cval: sends nothing
            b = e // band
            span[2 * b] = min(span[2 * b], o)
            span[2 * b + 1] = max(span[2 * b + 1], o)
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        acc = <double*>mine
        roff = <int64_t*>(mine + ab)
        rflat = <int64_t*>(mine + ab + rb)
        rcv = mine + ab + 2 * rb
        tap_off = <int64_t*>(mine + ab + 3 * rb)
        tap_in = mine + ab + 3 * rb + tb
        LM = <T*>(mine + ab + 3 * rb + 2 * tb)
        LS = <int32_t*>(mine + ab + 3 * rb + 2 * tb + 64 * 8)
        GL = <double*>(mine + ab + 3 * rb + 2 * tb + 64 * 12)
        zrow = acc + ring * n2 if rolling else acc   # rolling: rows no window reads
        if rolling:
            memset(zrow, 0, n2 * 8)
        for t in prange(total, schedule="static"):
            bi = t // nbands
            b = t - bi * nbands
            r0 = b * band
            r1 = min(r0 + band, n1)
            # rolling: acc row i is input row base + i; rows [done_to, live_to)
            # are accumulating; those below done_to are written out
            base = r0
            done_to = r0
            live_to = r0
            if not rolling:
                for c in range((r1 - r0) * n2):
                    acc[c] = 0.0
            for o in range(span[2 * b], span[2 * b + 1] + 1):
                oo = 0
                io = 0
                nrows = collect_rows(g, o, roff, rflat, rcv, &oo, &io)
                touch = False
                for r in range(nrows):
                    touch = touch or (not rcv[r] and r0 <= rflat[r] < r1)
                if not touch:
                    continue
                if rolling:
                    lo = max(r0, reach[2 * o])
                    hi = min(r1 - 1, reach[2 * o + 1])
                    if lo > done_to:
                        flush_rows(g, gd, x, dx, bi, acc, zrow, base, done_to, live_to,
                                   lo, power, p1, neg_p1, stream)
                        done_to = lo
                        live_to = max(live_to, lo)
                    if hi >= base + ring:
                        memmove(acc, acc + (done_to - base) * n2,
                                (live_to - done_to) * n2 * 8)
                        base = done_to
                    if hi >= live_to:
                        memset(acc + (live_to - base) * n2, 0, (hi + 1 - live_to) * n2 * 8)
                        live_to = hi + 1
                if short_rows:
                    prefetch_rows(g, x + bi * g.in_stride[0], roff, nrows, ahead)
                overlap_row(g, x + bi * g.in_stride[0],
                            gout + ((bi * g.out_stride[0] + oo) << gshift), g32,
                            divide, rowcnt[o] if rowcnt != NULL else 1.0, colcnt,
                            roff, rflat, rcv, nrows, base,
                            min(base + ring, r1) if rolling else r1, acc, n2, tap_off,
                            tap_in, linear, is_min, omit, cval, LM, LS, GL)
            if rolling:
                flush_rows(g, gd, x, dx, bi, acc, zrow, base, done_to, live_to, r1,
                           power, p1, neg_p1, stream)
            else:
                write_rows(g, gd, x, dx, bi, acc, n2, r0, r1, power, p1, neg_p1, stream)
        # each thread's streamed stores are visible before the call returns
        fp_stream_fence()
    free(scratch)
    free(span)
    return 0


def overlap(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray dx, cnp.ndarray gout,
            const int64_t[::1] tables, const int64_t[::1] tab_off,
            const int64_t[::1] width, const int64_t[::1] out_len,
            const int64_t[::1] interior, bint linear=False, bint is_min=False,
            bint omit=False, object cval=0, double divide=0.0, object counts=None,
            object power=None, int nthreads=1):
    """Max (min) pooling's gradient over two pooled axes whose windows overlap,
    in one pass: each task owns a band of input rows (accumulated in float64),
    finds the first extremum of every window reading it, and adds the window's
    gradient there, windows in order; so every cell's sum runs in one order
    for every thread count.  With ``linear``, ``gout`` holds each window's
    factor (a mean's share), added to every cell it reads; or, with ``divide``
    other than 0, ``gout / divide`` is; or with ``counts`` (the windows' valid
    samples along each axis, float64), ``gout / (counts[0][o] * counts[1][w])``.
    ``power``: ``(p1, neg_p1)`` multiplies each cell's sum by ``x ** p1`` (Lp's
    cell factor; ``neg_p1``: see :func:`signed_pow`).  ``x``, ``dx``:
    (batch, rows, columns) views; ``gout``: float64, or float32 where ``dx`` is."""
    if x.ndim != 3:
        raise ValueError("fastpool: overlap takes two pooled axes")
    cdef Geom g = make_geom(x, gout, None, tables, tab_off, width, out_len, interior)
    cdef Geom gd = make_geom(dx, gout, None, tables, tab_off, width, out_len, interior)
    cdef T cv = cval
    cdef const T* xp = <const T*>cnp.PyArray_DATA(x)
    cdef const char* gp = <const char*>cnp.PyArray_DATA(gout)
    cdef void* dxp = cnp.PyArray_DATA(dx)
    cdef bint f32 = dx.dtype.itemsize == 4
    cdef bint g32 = check_grads(gout, f32)
    cdef const double[::1] rows_n, cols_n
    cdef const double* rowcnt = NULL
    cdef const double* colcnt = NULL
    cdef bint has_power = power is not None
    cdef double p1 = power[0] if has_power else 0.0
    cdef double neg_p1 = power[1] if has_power else 0.0
    cdef int rc
    if counts is not None:
        rows_n, cols_n = counts
        if rows_n.shape[0] != g.out_len[0] or cols_n.shape[0] != g.W:
            raise ValueError("fastpool: counts do not match the windows")
        rowcnt = &rows_n[0]
        colcnt = &cols_n[0]
    with nogil:
        if f32:
            rc = overlap_engine(&g, &gd, xp, <float*>dxp, gp, g32, divide, rowcnt,
                                colcnt, linear, has_power, p1, neg_p1, is_min, omit,
                                cv, nthreads)
        else:
            rc = overlap_engine(&g, &gd, xp, <double*>dxp, gp, g32, divide, rowcnt,
                                colcnt, linear, has_power, p1, neg_p1, is_min, omit,
                                cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")


cdef bint check_grads(cnp.ndarray gout, bint f32) except -1:
    """Whether ``gout`` is float32 (allowed only where the gradient is)."""
    if gout.dtype == np.float64:
        return False
    if gout.dtype == np.float32 and f32:
        return True
    raise TypeError(f"fastpool: grad_output as {gout.dtype} for a "
                    f"{'float32' if f32 else 'float64'} gradient")


def disjoint(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray dx, cnp.ndarray gout,
             const int64_t[::1] tables, const int64_t[::1] tab_off,
             const int64_t[::1] width, const int64_t[::1] out_len,
             const int64_t[::1] interior, int mode, bint is_min=False,
             bint omit=False, double beta=1.0, object cval=0, double divide=0.0,
             int nthreads=1):
    """Gradients where no two windows share an input element, window by window,
    each writing only its own elements (see Disjoint); elements outside every
    window are left as they are.  ``gout``: float64, or float32 where ``dx`` is;
    for D_LINEAR, divided by ``divide`` where that is not 0."""
    cdef Geom g = make_geom(x, gout, None, tables, tab_off, width, out_len, interior)
    cdef Geom gd = make_geom(dx, gout, None, tables, tab_off, width, out_len, interior)
    cdef T cv = cval
    cdef const T* xp = <const T*>cnp.PyArray_DATA(x)
    cdef const char* gp = <const char*>cnp.PyArray_DATA(gout)
    cdef void* dxp = cnp.PyArray_DATA(dx)
    cdef bint f32 = dx.dtype.itemsize == 4
    cdef bint g32 = check_grads(gout, f32)
    cdef int rc
    with nogil:
        if f32:
            rc = disjoint_engine(&g, &gd, xp, <float*>dxp, gp, g32, divide, mode, is_min,
                                 omit, beta, cv, nthreads)
        else:
            rc = disjoint_engine(&g, &gd, xp, <double*>dxp, gp, g32, divide, mode, is_min,
                                 omit, beta, cv, nthreads)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")
