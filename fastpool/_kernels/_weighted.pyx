"""The weighted and random family over the shared geometry: Lp, SoftPool,
stochastic, mixed, avg+max, weighted / LIP, detail-preserving, fixed window
weights (blur) and generic pooling.

Every method reduces a window's valid samples in float64.  Two paths share the
reducers: full interior windows are gathered sample-major for up to LANES outputs
at once, so that each reducer's loops run across outputs and vectorise (exp
included, see fp_exp); edges, cval rows, missing values and windows too large for
the lanes go through a scalar path that gathers one output's valid samples.
Selections (stochastic training, the max of a random mixed window) write the
chosen input value itself, so integers stay exact.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.math cimport NAN, INFINITY, sqrt, rint

cimport numpy as cnp
import numpy as np

from ._common cimport (EXCLUDED, aligned_alloc, Geom, T, collect_rows, fp_cbrt, fp_exp,
                       fp_log, fp_pow, fp_uniform, highest, lowest, make_geom, select,
                       window_samples)

cnp.import_array()

cpdef enum Method:
    M_LP = 0
    M_LP_AVG = 1
    M_SOFT = 2
    M_STOCH_TRAIN = 3
    M_STOCH_EVAL = 4
    M_MIXED = 5
    M_MIXED_RANDOM = 6
    M_AVGMAX = 7
    M_WEIGHTED = 8
    M_LIP = 9
    M_DPP = 10
    M_GENERIC = 11

cdef enum:
    LANES = 64
    # Larger windows take the scalar path (the lanes would need n * LANES doubles).
    MAX_LANE_WINDOW = 256

ctypedef int (*generic_fn)(double*, Py_ssize_t, double*, void*) noexcept nogil

cdef struct Spec:
    int method
    double p, inv_p, beta, alpha, lam
    double neg_p, neg_inv_p  # fp_pow's factor for a negative base, x**p and x**(1/p)
    bint asymmetric
    bint bounded             # the input's dtype holds no magnitude in (0, 1e-70) or
                             # (1e70, inf): float32 and integers of up to 32 bits
    bint random
    uint64_t key
    bint weights_in          # the weights (or logits) are a second input array,
    bint weights_f32         # of float32 (else float64)
    const double* kernel     # fixed weights per window position (C order), or NULL
    generic_fn fn
    void* user_data

# Detail-preserving pooling's epsilon (Saeedan et al.).
cdef double DPP_EPS = 1e-3


# --------------------------------------------------------------------------- reducers

cdef inline double vmax(double a, double v) noexcept nogil:
    # NaN never wins (NaN windows are handled before the reducers).
    return select(v > a, v, a)


cdef void window_max(const double* V, Py_ssize_t n, Py_ssize_t st, Py_ssize_t nl,
                     double* m) noexcept nogil:
    cdef Py_ssize_t s, i
    cdef const double* v
    for i in range(nl):
        m[i] = -INFINITY
    for s in range(n):
        v = V + s * st
        for i in range(nl):
            m[i] = vmax(m[i], v[i])


cdef void window_sum(const double* V, Py_ssize_t n, Py_ssize_t st, Py_ssize_t nl,
                     double* a) noexcept nogil:
    cdef Py_ssize_t s, i
    cdef const double* v
    for i in range(nl):
        a[i] = 0.0
    for s in range(n):
        v = V + s * st
        for i in range(nl):
            a[i] += v[i]


cdef void weighted_mean(const double* V, const double* Wt, Py_ssize_t n, Py_ssize_t st,
                        Py_ssize_t nl, double* res, double* sw) noexcept nogil:
    """``res = sum(w*v) / sum(w)`` per lane."""
    cdef Py_ssize_t s, i
    cdef const double* v
    cdef const double* w
    for i in range(nl):
        res[i] = 0.0
        sw[i] = 0.0
    for s in range(n):
        v = V + s * st
        w = Wt + s * st
        for i in range(nl):
            res[i] += w[i] * v[i]
            sw[i] += w[i]
    for i in range(nl):
        res[i] = res[i] / sw[i]


cdef void softmax_mean(const double* V, const double* Wt, Py_ssize_t n, Py_ssize_t st,
                       Py_ssize_t nl, double* res, double* m, double* se) noexcept nogil:
    """``res = sum(e*v) / sum(e)`` with ``e = exp(l - max l)`` of the logits ``l`` in
    ``Wt``: every exponent is at most 0, so no finite logit overflows."""
    cdef Py_ssize_t s, i
    cdef const double* v
    cdef const double* w
    cdef double e
    window_max(Wt, n, st, nl, m)
    for i in range(nl):
        res[i] = 0.0
        se[i] = 0.0
    for s in range(n):
        v = V + s * st
        w = Wt + s * st
        for i in range(nl):
            e = fp_exp(w[i] - m[i])
            res[i] += e * v[i]
            se[i] += e
    for i in range(nl):
        res[i] = res[i] / se[i]


cdef inline double small_power(double x, double p) noexcept nogil:
    """``x**p`` for p of 2, 3 or 4, by products."""
    if p == 2.0:
        return x * x
    elif p == 3.0:
        return (x * x) * x
    return (x * x) * (x * x)


cdef void window_max_abs(const double* V, Py_ssize_t n, Py_ssize_t st, Py_ssize_t nl,
                         double* m) noexcept nogil:
    cdef Py_ssize_t s, i
    cdef const double* v
    for i in range(nl):
        m[i] = 0.0
    for s in range(n):
        v = V + s * st
        for i in range(nl):
            m[i] = vmax(m[i], select(v[i] < 0.0, -v[i], v[i]))


cdef inline double scale_back(double m) noexcept nogil:
    """The factor put back after the root: the window's largest magnitude, or 1
    where the values were not scaled (all zero, or an infinity)."""
    return select((m > 0.0) & (m < INFINITY), m, 1.0)


cdef void power_sums(const double* V, double* Wt, Py_ssize_t n, Py_ssize_t st,
                     Py_ssize_t nl, double p, double neg_p, const double* m,
                     double* out) noexcept nogil:
    """``out = sum((x/m)**p)`` per lane, ``m`` the window's largest magnitude
    (values not scaled where :func:`scale_back` gives 1), so that no power
    overflows or underflows.  ``Wt`` is scratch."""
    cdef Py_ssize_t s, i
    cdef const double* v
    cdef double* w
    cdef double x, e
    for i in range(nl):
        out[i] = 0.0
    for s in range(n):
        v = V + s * st
        w = Wt + s * st
        # The reciprocal scale is recomputed, not stored: one division per
        # sample is cheaper than another scratch row here.
        if p == 2.0 or p == 3.0 or p == 4.0:
            for i in range(nl):
                x = v[i] / scale_back(m[i])
                out[i] += small_power(x, p)
        else:
            # x**p = exp(p*log|x|) in two loops: one loop body with both inlined
            # is too large for the registers (30% slower).
            for i in range(nl):
                x = v[i] / scale_back(m[i])
                w[i] = p * fp_log(select(x < 0.0, -x, x))
            for i in range(nl):
                e = fp_exp(w[i])
                out[i] += select(v[i] < 0.0, e * neg_p, e)


cdef void argmax_first(const double* V, Py_ssize_t n, Py_ssize_t st, Py_ssize_t nl,
                       const double* m, int64_t* sel) noexcept nogil:
    """The first sample equal to the lane's max ``m``."""
    cdef Py_ssize_t s, i
    cdef const double* v
    for i in range(nl):
        sel[i] = -1
    for s in range(n - 1, -1, -1):
        v = V + s * st
        for i in range(nl):
            sel[i] = select(v[i] == m[i], <int64_t>s, sel[i])


cdef void lp_root(const Spec* sp, Py_ssize_t n, Py_ssize_t nl, double* res,
                  const double* b, double* a) noexcept nogil:
    """Lp's value from the power sums ``res`` of ``n`` samples scaled by ``1/b``:
    ``(res [/ n])**(1/p) * b`` per lane; ``a`` is scratch."""
    cdef Py_ssize_t i
    cdef double e, p = sp.p, inv_p = sp.inv_p, neg_inv_p = sp.neg_inv_p
    if sp.method == M_LP_AVG:
        for i in range(nl):
            res[i] = res[i] / n
    if p == 2.0:
        for i in range(nl):
            res[i] = sqrt(res[i]) * b[i]
    elif p == 3.0:
        for i in range(nl):
            e = fp_cbrt(select(res[i] < 0.0, -res[i], res[i])) * b[i]
            res[i] = select(res[i] < 0.0, e * neg_inv_p, e)
    elif p != 1.0:
        # The root in two loops, as in power_sums.
        for i in range(nl):
            a[i] = inv_p * fp_log(select(res[i] < 0.0, -res[i], res[i]))
        for i in range(nl):
            e = fp_exp(a[i]) * b[i]
            res[i] = select(res[i] < 0.0, e * neg_inv_p, e)


cdef inline bint unscaled_powers(const Spec* sp) noexcept nogil:
    """Lp whose power sums need no scaling: p of 2, 3 or 4 of a bounded dtype
    (no window is redone scaled, see :func:`reduce`)."""
    return ((sp.method == M_LP or sp.method == M_LP_AVG) and sp.bounded
            and (sp.p == 2.0 or sp.p == 3.0 or sp.p == 4.0))


cdef void reduce(const Spec* sp, double* V, double* Wt, Py_ssize_t n, Py_ssize_t st,
                 Py_ssize_t nl, const double* u, double* res, int64_t* sel,
                 double* a, double* b, double* c) noexcept nogil:
    """The method's value of each of ``nl`` windows of ``n`` samples ``V[s*st + i]``
    (weights or logits in ``Wt``) into ``res``; a selecting method also sets
    ``sel[i]``, the chosen sample, and the value is then that sample's.  ``u``: the
    windows' uniform numbers; ``a``, ``b``, ``c``: LANES doubles of scratch."""
    cdef Py_ssize_t s, i
    cdef double* v
    cdef double* w
    # Parameters as locals: read through ``sp`` inside a loop they would be
    # reloaded after every store (aliasing), which stops the vectoriser.
    cdef double x, d, e, p = sp.p, beta = sp.beta, alpha = sp.alpha
    cdef double neg_p = sp.neg_p, inv_p = sp.inv_p, neg_inv_p = sp.neg_inv_p
    cdef double lam = sp.lam, half_lam = 0.5 * sp.lam
    cdef double eps2 = DPP_EPS * DPP_EPS
    cdef bint hit, redo, keep_below = not sp.asymmetric
    cdef int m = sp.method
    for i in range(nl):
        sel[i] = -1
    if m == M_LP or m == M_LP_AVG:
        if unscaled_powers(sp):
            # No window of these inputs is redone below (their magnitudes lie in
            # [1e-70, 1e70], or are 0 or infinite, where the scaled sums are
            # these), so no maximum is tracked: 1.3x faster.
            for i in range(nl):
                res[i] = 0.0
                b[i] = 1.0
            for s in range(n):
                v = V + s * st
                for i in range(nl):
                    res[i] += small_power(v[i], p)
        elif p == 2.0 or p == 3.0 or p == 4.0:
            # Small integer powers first unscaled, tracking each window's
            # largest magnitude; only windows where x**p could leave the normal
            # range are redone scaled (the same per-window rule on every path).
            for i in range(nl):
                res[i] = 0.0
                b[i] = 0.0
            for s in range(n):
                v = V + s * st
                for i in range(nl):
                    x = v[i]
                    b[i] = vmax(b[i], select(x < 0.0, -x, x))
                    res[i] += small_power(x, p)
            redo = False
            for i in range(nl):
                hit = (b[i] == 0.0) | ((b[i] >= 1e-70) & (b[i] <= 1e70))
                a[i] = select(hit, 0.0, 1.0)
                redo = redo | (not hit)
            if redo:
                power_sums(V, Wt, n, st, nl, p, neg_p, b, c)
                for i in range(nl):
                    res[i] = select(a[i] != 0.0, c[i], res[i])
                    b[i] = select(a[i] != 0.0, scale_back(b[i]), 1.0)
            else:
                for i in range(nl):
                    b[i] = 1.0
        elif p != 1.0:
            window_max_abs(V, n, st, nl, b)
            power_sums(V, Wt, n, st, nl, p, neg_p, b, res)
            for i in range(nl):
                b[i] = scale_back(b[i])
        else:
            window_sum(V, n, st, nl, res)
        lp_root(sp, n, nl, res, b, a)
    elif m == M_SOFT:
        # SoftPool is LIP with the logits beta*x.
        for s in range(n):
            v = V + s * st
            w = Wt + s * st
            for i in range(nl):
                w[i] = beta * v[i]
        softmax_mean(V, Wt, n, st, nl, res, a, b)
    elif m == M_STOCH_EVAL:
        for i in range(nl):
            res[i] = 0.0
            a[i] = 0.0
        for s in range(n):
            v = V + s * st
            for i in range(nl):
                a[i] += v[i]
                res[i] += v[i] * v[i]
        for i in range(nl):
            res[i] = res[i] / a[i] if a[i] != 0.0 else 0.0
    elif m == M_STOCH_TRAIN:
        # The first sample whose running sum passes u * total; ``a`` marks the
        # windows already decided (all-zero windows from the start: value 0).
        window_sum(V, n, st, nl, a)
        for i in range(nl):
            b[i] = u[i] * a[i]
            sel[i] = n - 1 if a[i] != 0.0 else -1
            a[i] = 1.0 if a[i] == 0.0 else 0.0
            res[i] = 0.0
        for s in range(n):
            v = V + s * st
            for i in range(nl):
                res[i] += v[i]
                # (an infinite value takes the draw: the running sum is inf)
                hit = ((res[i] > b[i]) | (res[i] == INFINITY)) & (a[i] == 0.0)
                sel[i] = select(hit, <int64_t>s, sel[i])
                a[i] = select(hit, 1.0, a[i])
    elif m == M_MIXED or m == M_AVGMAX or m == M_MIXED_RANDOM:
        window_max(V, n, st, nl, a)
        window_sum(V, n, st, nl, b)
        for i in range(nl):
            b[i] = b[i] / n
        if m == M_MIXED:
            for i in range(nl):
                res[i] = alpha * a[i] + (1.0 - alpha) * b[i]
        elif m == M_AVGMAX:
            for i in range(nl):
                res[i] = 0.5 * (a[i] + b[i])
        else:
            argmax_first(V, n, st, nl, a, sel)
            for i in range(nl):
                res[i] = b[i]
                if u[i] >= 0.5:
                    sel[i] = -1
    elif m == M_WEIGHTED:
        weighted_mean(V, Wt, n, st, nl, res, a)
    elif m == M_LIP:
        softmax_mean(V, Wt, n, st, nl, res, a, b)
    elif m == M_DPP:
        window_sum(V, n, st, nl, b)
        for i in range(nl):
            b[i] = b[i] / n
        for s in range(n):
            v = V + s * st
            w = Wt + s * st
            for i in range(nl):
                d = v[i] - b[i]
                d = select((d > 0.0) | keep_below, d, 0.0)
                w[i] = d * d + eps2
            if lam == 1.0:
                for i in range(nl):
                    w[i] = alpha + sqrt(w[i])
            elif lam == 2.0:
                for i in range(nl):
                    w[i] = alpha + w[i]
            elif lam == 0.0:
                for i in range(nl):
                    w[i] = alpha + 1.0
            else:
                for i in range(nl):
                    w[i] = alpha + fp_pow(w[i], half_lam, NAN)
        weighted_mean(V, Wt, n, st, nl, res, a)


# --------------------------------------------------------------------------- output

cdef inline T to_dtype(double r, T kind, int* err) noexcept nogil:
    """``r`` as ``T``: rounded half to even and saturated for integers (a NaN
    sets ``err``: an integer cannot hold it)."""
    if T is float or T is double:
        return <T>r
    elif r != r:
        err[0] = 1
        return 0
    r = rint(r)
    if T is uint64_t:
        if r <= 0.0:
            return 0
        if r >= 18446744073709551616.0:
            return <T>0xFFFFFFFFFFFFFFFF
        return <T>r
    elif T is int64_t:
        if r >= 9223372036854775808.0:
            return <T>0x7FFFFFFFFFFFFFFF
        if r < -9223372036854775808.0:
            return <T>(-0x7FFFFFFFFFFFFFFF - 1)
        return <T>r
    else:
        if r <= <double>lowest(kind):
            return lowest(kind)
        if r >= <double>highest(kind):
            return highest(kind)
        return <T>r


cdef inline void put(char* op, Py_ssize_t at, bint as_double, double r, T kind,
                     int* err) noexcept nogil:
    if as_double:
        (<double*>op)[at] = r
    else:
        (<T*>op)[at] = to_dtype(r, kind, err)


cdef inline void put_value(char* op, Py_ssize_t at, bint as_double, T v) noexcept nogil:
    """An input value chosen by a selecting method, exactly."""
    if as_double:
        (<double*>op)[at] = <double>v
    else:
        (<T*>op)[at] = v


# --------------------------------------------------------------------------- gathers

cdef struct Row:
    # The window rows of one output row and where its outputs go.
    const int64_t* roff
    const int64_t* rpos
    const char* rcv
    Py_ssize_t nrows
    const char* xb           # the batch item's input (T), weights (double)
    const char* wb           # the batch item's weights (float32 or float64)
    char* op                 # the output row; element w at op + w*os
    int64_t id0              # random-stream counter of output 0 of the row
    int64_t cs               # counter step between outputs of the row


cdef inline Py_ssize_t gather_column(const Geom* g, const Spec* sp, const Row* row,
                                     Py_ssize_t w, double* V, double* Wt, T* Tv,
                                     bint omit, bint has_nd, T nd, T cval,
                                     bint* saw_nan) noexcept nogil:
    """The valid samples of output ``w`` (values, their weights, and the values as
    ``T``); returns how many.  ``saw_nan``: the window held a NaN (kept out only
    under 'omit')."""
    return window_samples(g, w, row.nrows, row.roff, NULL, row.rpos, row.rcv,
                          <const T*>row.xb, row.wb if sp.weights_in else NULL,
                          sp.weights_f32, sp.kernel, V, Wt, Tv, NULL, omit, has_nd, nd,
                          cval, saw_nan)


cdef void scalar_column(const Geom* g, const Spec* sp, const Row* row, Py_ssize_t w,
                        int64_t os, bint as_double, double* V, double* Wt, T* Tv,
                        double* scratch, int64_t* sel, bint omit, bint has_nd, T nd,
                        T cval, int* err) noexcept nogil:
    """One output through the scalar path."""
    cdef bint saw_nan = False
    cdef Py_ssize_t n = gather_column(g, sp, row, w, V, Wt, Tv, omit, has_nd, nd, cval,
                                      &saw_nan)
    cdef double u = 0.0, r = 0.0
    if saw_nan and not omit:
        put(row.op, w * os, as_double, NAN, nd, err)
        return
    if n == 0:
        # Only missing samples: nodata if there is one, else (all NaN) NaN.
        if has_nd:
            put_value(row.op, w * os, as_double, nd)
        else:
            put(row.op, w * os, as_double, NAN, nd, err)
        return
    if sp.method == M_GENERIC:
        if sp.fn(V, n, &r, sp.user_data) == 0:
            err[1] = 1
        put(row.op, w * os, as_double, r, nd, err)
        return
    if sp.random:
        u = fp_uniform(sp.key, <unsigned long long>(row.id0 + w * row.cs))
    reduce(sp, V, Wt, n, 1, 1, &u, scratch, sel, scratch + 1, scratch + 2, scratch + 3)
    if sel[0] >= 0:
        put_value(row.op, w * os, as_double, Tv[sel[0]])
    else:
        put(row.op, w * os, as_double, scratch[0], nd, err)


cdef inline bint load_span(const T* src, int64_t step, Py_ssize_t span, double* xr,
                           bint has_nd, T nd) noexcept nogil:
    """One window row's span ``src[c * step]``, ``c < span``, as doubles into
    ``xr``; True where it holds a NaN or nodata."""
    cdef Py_ssize_t c
    cdef bint bad = False
    for c in range(span):
        xr[c] = <double>src[c * step]
    if T is float or T is double:
        for c in range(span):
            bad = bad | (xr[c] != xr[c])
    if has_nd:
        for c in range(span):
            bad = bad | (src[c * step] == nd)
    return bad


cdef bint softmax_spans(const Geom* g, const Spec* sp, const Row* row, Py_ssize_t c0,
                        Py_ssize_t nl, double* X, double* E, double* res, double* se,
                        char* flags, bint has_nd, T nd) noexcept nogil:
    """SoftPool / LIP means of the overlapping interior windows ``[c0, c0 + nl)``
    with each input cell's exponential taken once, not once per window that
    holds it: the logits of each window row's span are shifted by the block's
    largest logit, which cancels in the ratio like a window's own maximum does.
    A window whose logits all lie far below that (exponentials near underflow)
    is flagged for the scalar path, which shifts by the window's own maximum.
    False (nothing done) when the span does not fit or holds NaN or nodata."""
    cdef const T* xb = <const T*>row.xb
    cdef Py_ssize_t span = (nl - 1) * g.s + (g.k - 1) * g.dil + 1
    cdef Py_ssize_t r, j, i, c
    cdef int64_t base, jump = g.s
    cdef double M = -INFINITY, beta = sp.beta, e
    cdef double part[8]
    cdef Py_ssize_t q
    cdef bint bad = False
    cdef double* xr
    cdef double* er
    if span > g.k * LANES:
        return False
    for q in range(8):
        part[q] = -INFINITY
    for r in range(row.nrows):
        base = row.roff[r] + (c0 * g.s - g.p) * g.sc
        xr = X + r * span
        er = E + r * span
        bad = load_span(xb + base, g.sc, span, xr, has_nd, nd) or bad
        if sp.method == M_SOFT:
            for c in range(span):
                er[c] = beta * xr[c]
        elif sp.weights_f32:
            for c in range(span):
                er[c] = <double>(<const float*>row.wb)[base + c * g.sc]
        else:
            for c in range(span):
                er[c] = (<const double*>row.wb)[base + c * g.sc]
        # Eight running maxima: one would wait on itself at every step.
        c = 0
        while c + 8 <= span:
            for q in range(8):
                part[q] = vmax(part[q], er[c + q])
            c += 8
        for c in range(c, span):
            part[0] = vmax(part[0], er[c])
    for q in range(8):
        M = vmax(M, part[q])
    if bad:
        return False
    for r in range(row.nrows):
        er = E + r * span
        for c in range(span):
            er[c] = fp_exp(er[c] - M)
    for i in range(nl):
        res[i] = 0.0
        se[i] = 0.0
    for r in range(row.nrows):
        for j in range(g.k):
            xr = X + r * span + j * g.dil
            er = E + r * span + j * g.dil
            if jump == 2:
                for i in range(nl):
                    e = er[2 * i]
                    res[i] += e * xr[2 * i]
                    se[i] += e
            else:
                for i in range(nl):
                    e = er[i * jump]
                    res[i] += e * xr[i * jump]
                    se[i] += e
    for i in range(nl):
        # exp(m_w - M) >= 1e-250 while the window's maximum is within ~575 of M
        flags[i] = se[i] < 1e-250
        res[i] = res[i] / se[i]
    return True


cdef bint power_spans(const Geom* g, const Spec* sp, const Row* row, Py_ssize_t c0,
                      Py_ssize_t nl, double* X, double* res, bint has_nd,
                      T nd) noexcept nogil:
    """The unscaled power sums (see :func:`unscaled_powers`) of the interior
    windows ``[c0, c0 + nl)`` with each input cell's power taken once, not once
    per window that holds it (2.25 times at 3x3/2); added in the order of
    :func:`reduce`, so the sums are the same.  False (nothing done) when the
    span does not fit or holds NaN or nodata."""
    cdef const T* xb = <const T*>row.xb
    cdef Py_ssize_t span = (nl - 1) * g.s + (g.k - 1) * g.dil + 1
    cdef Py_ssize_t r, j, i, c
    cdef int64_t base, jump = g.s
    cdef double p = sp.p
    cdef bint bad = False
    cdef double* xr
    if span > g.k * LANES:
        return False
    for r in range(row.nrows):
        base = row.roff[r] + (c0 * g.s - g.p) * g.sc
        xr = X + r * span
        bad = load_span(xb + base, g.sc, span, xr, has_nd, nd) or bad
        for c in range(span):
            xr[c] = small_power(xr[c], p)
    if bad:
        return False
    for i in range(nl):
        res[i] = 0.0
    for r in range(row.nrows):
        for j in range(g.k):
            xr = X + r * span + j * g.dil
            if jump == 2:
                for i in range(nl):
                    res[i] += xr[2 * i]
            else:
                for i in range(nl):
                    res[i] += xr[i * jump]
    return True


cdef void lanes_block(const Geom* g, const Spec* sp, const Row* row, Py_ssize_t c0,
                      Py_ssize_t nl, int64_t os, bint as_double, double* L, double* LW,
                      double* u, double* res, int64_t* sel, double* a, double* b,
                      char* flags, bint has_nd, T nd, int* err) noexcept nogil:
    """Interior outputs ``[c0, c0 + nl)`` (full windows, no cval rows) by lanes;
    windows with a NaN or nodata are flagged for the scalar path."""
    cdef const T* xb = <const T*>row.xb
    cdef Py_ssize_t r, j, i
    if ((sp.method == M_SOFT or sp.method == M_LIP) and g.k * g.dil > g.s
            and softmax_spans(g, sp, row, c0, nl, L, LW, res, a, flags, has_nd, nd)):
        for i in range(nl):
            sel[i] = -1
    elif (unscaled_powers(sp) and g.k * g.dil > g.s
            and power_spans(g, sp, row, c0, nl, L, res, has_nd, nd)):
        for i in range(nl):
            sel[i] = -1
            flags[i] = 0
            b[i] = 1.0
        lp_root(sp, g.max_rows * g.k, nl, res, b, a)
    else:
        gather_lanes(g, sp, row, c0, nl, L, LW, flags, has_nd, nd)
        if sp.random:
            for i in range(nl):
                u[i] = fp_uniform(sp.key, <unsigned long long>(row.id0 + (c0 + i) * row.cs))
        reduce(sp, L, LW, g.max_rows * g.k, LANES, nl, u, res, sel, a, b, b + LANES)
    for i in range(nl):
        if flags[i]:
            continue        # redone by the scalar path (NaN or nodata)
        if sel[i] >= 0:
            # The chosen sample, read again from the input: exact for every dtype.
            r = sel[i] // g.k
            j = sel[i] - r * g.k
            put_value(row.op, (c0 + i) * os, as_double,
                      xb[row.roff[r] + ((c0 + i) * g.s - g.p + j * g.dil) * g.sc])
        else:
            put(row.op, (c0 + i) * os, as_double, res[i], nd, err)


cdef void gather_lanes(const Geom* g, const Spec* sp, const Row* row, Py_ssize_t c0,
                       Py_ssize_t nl, double* L, double* LW, char* flags, bint has_nd,
                       T nd) noexcept nogil:
    """The samples of interior outputs ``[c0, c0 + nl)`` sample-major into ``L``
    (their weights into ``LW``); ``flags``: windows with a NaN or nodata."""
    cdef const T* xb = <const T*>row.xb
    cdef Py_ssize_t r, j, i, s = 0
    cdef int64_t jump = g.s * g.sc, at
    cdef const T* src
    cdef const double* wsrc
    cdef const float* fsrc
    cdef double* dst
    cdef double* wdst
    cdef double kw
    for i in range(nl):
        flags[i] = 0
    for r in range(row.nrows):
        for j in range(g.k):
            at = row.roff[r] + (c0 * g.s - g.p + j * g.dil) * g.sc
            src = xb + at
            dst = L + s * LANES
            if jump == 1:
                for i in range(nl):
                    dst[i] = <double>src[i]
            elif jump == 2:
                for i in range(nl):
                    dst[i] = <double>src[2 * i]
            else:
                for i in range(nl):
                    dst[i] = <double>src[i * jump]
            if T is float or T is double:
                for i in range(nl):
                    flags[i] = flags[i] | (dst[i] != dst[i])
            if has_nd:
                for i in range(nl):
                    flags[i] = flags[i] | (src[i * jump] == nd)
            wdst = LW + s * LANES
            if sp.weights_in and sp.weights_f32:
                fsrc = <const float*>row.wb + at
                for i in range(nl):
                    wdst[i] = <double>fsrc[i * jump]
            elif sp.weights_in:
                wsrc = <const double*>row.wb + at
                for i in range(nl):
                    wdst[i] = wsrc[i * jump]
            elif sp.kernel != NULL:
                kw = sp.kernel[row.rpos[r] * g.k + j]
                for i in range(nl):
                    wdst[i] = kw
            s += 1


# --------------------------------------------------------------------------- engine

cdef inline Py_ssize_t lines(Py_ssize_t nbytes) noexcept nogil:
    return (nbytes + 63) & ~(<Py_ssize_t>63)


cdef int engine(const Geom* g, const Spec* sp, const T* x, const char* wts,
                char* out, bint as_double, int64_t id0, bint omit, bint has_nd, T nd,
                T cval, int nthreads, int* err) noexcept nogil:
    """Pool every output row; returns -1 when the scratch memory is not there."""
    cdef Py_ssize_t total = g.nbatch * g.nrows_out, t, bi, orow, w, c0, nl
    cdef Py_ssize_t W = g.W, window = g.max_rows * g.k
    cdef Py_ssize_t chunk = max(1, total // (8 * nthreads))
    cdef int64_t oo, io, os = g.out_stride[g.d]
    cdef Py_ssize_t itemsize = 8 if as_double else sizeof(T)
    cdef bint lanes = window <= MAX_LANE_WINDOW and sp.method != M_GENERIC
    cdef bint direct
    cdef Row* row
    cdef char* mine
    cdef double* L
    cdef double* LW
    cdef double* small
    cdef int64_t* sel
    cdef T* Tv
    cdef int64_t* roff
    cdef int64_t* rflat
    cdef int64_t* rpos
    cdef char* rcv
    cdef char* flags
    # Per thread: values and weights (lanes: n * LANES; scalar: one window), five
    # LANES rows of doubles (uniforms, results, three scratch), selections, the
    # window's T values, the window rows, and the lane flags.
    cdef Py_ssize_t vbytes = lines(max(window * (LANES if lanes else 1), 4) * 8)
    cdef Py_ssize_t small_at = 2 * vbytes
    cdef Py_ssize_t sel_at = small_at + 5 * LANES * 8
    cdef Py_ssize_t tv_at = sel_at + LANES * 8
    cdef Py_ssize_t roff_at = tv_at + lines(window * sizeof(T))
    cdef Py_ssize_t rcv_at = roff_at + 3 * lines(g.max_rows * 8)
    cdef Py_ssize_t flags_at = rcv_at + lines(g.max_rows)
    cdef Py_ssize_t row_at = flags_at + lines(LANES)
    cdef Py_ssize_t per_thread = row_at + lines(sizeof(Row))
    cdef char* scratch = <char*>aligned_alloc(64, per_thread * nthreads)
    if scratch == NULL:
        return -1
    with parallel(num_threads=nthreads):
        mine = scratch + threadid() * per_thread
        # In the thread's scratch: a struct variable whose fields are assigned
        # in the loop would be shared between the threads.
        row = <Row*>(mine + row_at)
        L = <double*>mine
        LW = <double*>(mine + vbytes)
        small = <double*>(mine + small_at)
        sel = <int64_t*>(mine + sel_at)
        Tv = <T*>(mine + tv_at)
        roff = <int64_t*>(mine + roff_at)
        rflat = roff + lines(g.max_rows * 8) // 8
        rpos = rflat + lines(g.max_rows * 8) // 8
        rcv = mine + rcv_at
        flags = mine + flags_at
        for t in prange(total, schedule="dynamic", chunksize=chunk):
            bi = t // g.nrows_out
            orow = t - bi * g.nrows_out
            oo = 0
            io = 0
            row[0].nrows = collect_rows(g, orow, roff, rflat, rcv, &oo, &io, rpos)
            row[0].roff = roff
            row[0].rpos = rpos
            row[0].rcv = rcv
            row[0].xb = <const char*>(x + bi * g.in_stride[0])
            row[0].wb = (wts + bi * g.in_stride[0] * (4 if sp.weights_f32 else 8)
                      if wts != NULL else NULL)
            row[0].op = out + (bi * g.out_stride[0] + oo) * itemsize
            row[0].id0 = id0 + bi * g.idx_stride[0] + io
            row[0].cs = g.idx_stride[g.d]
            direct = lanes and row[0].nrows == g.max_rows
            for w in range(row[0].nrows):
                direct = direct and not rcv[w]
            if not direct:
                for w in range(W):
                    scalar_column(g, sp, row, w, os, as_double, L, LW, Tv, small, sel,
                                  omit, has_nd, nd, cval, err)
                continue
            for w in range(g.lo):
                scalar_column(g, sp, row, w, os, as_double, L, LW, Tv, small, sel,
                              omit, has_nd, nd, cval, err)
            for w in range(g.hi, W):
                scalar_column(g, sp, row, w, os, as_double, L, LW, Tv, small, sel,
                              omit, has_nd, nd, cval, err)
            c0 = g.lo
            while c0 < g.hi:
                nl = min(<Py_ssize_t>LANES, g.hi - c0)
                lanes_block(g, sp, row, c0, nl, os, as_double, L, LW, small,
                            small + LANES, sel, small + 2 * LANES, small + 3 * LANES,
                            flags, has_nd, nd, err)
                for w in range(nl):
                    if flags[w]:
                        scalar_column(g, sp, row, c0 + w, os, as_double, L, LW, Tv,
                                      small, sel, omit, has_nd, nd, cval, err)
                c0 = c0 + nl
    free(scratch)
    return 0


cdef double _negative_factor(double p):
    """C's pow of a negative base: the sign of an integer power, else NaN."""
    if abs(p) < 2.0**53 and p == <double><int64_t>p:
        return -1.0 if (<int64_t>p) % 2 else 1.0
    return NAN


def pool(const T[:] dtype_tag, cnp.ndarray x, object weights, cnp.ndarray out,
         bint as_double, int64_t id0, const int64_t[::1] tables,
         const int64_t[::1] tab_off, const int64_t[::1] width,
         const int64_t[::1] out_len, const int64_t[::1] interior, int method,
         double p=1.0, double beta=1.0, double alpha=0.0, double lam=1.0,
         bint asymmetric=False, object key=None, object kernel=None,
         object function=None, bint omit=False, object nodata=None,
         object cval=0, int nthreads=1, cnp.ndarray counter=None):
    """Pool ``x`` (batch, *pooled) into ``out`` (``T``, or float64 with
    ``as_double``) by ``method``.

    ``weights``: a float32 or float64 array with ``x``'s element strides (weights
    or logits),
    or None; ``kernel``: C-contiguous float64 weights per window position, or
    None; ``key``: the random stream's key; ``counter``: a (batch, *pooled) view
    whose element strides are the random counter's steps (never read: a chunk of
    a larger result counts its windows by their place in the whole), with
    ``id0`` the counter of its first element; ``function``: ``(pointer, user_data)`` of
    a generic C callable as ints.  Returns the error bits: 1, a NaN met an
    integer output; 2, the generic callable reported an error.
    Inputs are trusted: fastpool._weighted validates them.
    """
    cdef Geom g = make_geom(x, out, counter, tables, tab_off, width, out_len, interior)
    cdef Spec sp
    cdef const double[::1] kview
    sp.method = method
    sp.p = p
    sp.inv_p = 1.0 / p
    sp.neg_p = _negative_factor(p)
    sp.neg_inv_p = _negative_factor(sp.inv_p)
    sp.beta = beta
    sp.alpha = alpha
    sp.lam = lam
    sp.asymmetric = asymmetric
    sp.bounded = not (T is double or T is int64_t or T is uint64_t)
    sp.random = key is not None
    sp.key = key if key is not None else 0
    sp.weights_in = weights is not None
    sp.weights_f32 = weights is not None and weights.dtype.itemsize == 4
    sp.kernel = NULL
    if kernel is not None:
        kview = kernel
        sp.kernel = &kview[0]
    sp.fn = NULL
    sp.user_data = NULL
    if function is not None:
        sp.fn = <generic_fn><size_t>function[0]
        sp.user_data = <void*><size_t>function[1]
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None
    cdef const char* wp = NULL
    cdef int err[2]
    cdef int rc
    err[0] = 0
    err[1] = 0
    if weights is not None:
        wp = <const char*>cnp.PyArray_DATA(weights)
    with nogil:
        rc = engine(&g, &sp, <const T*>cnp.PyArray_DATA(x), wp,
                    <char*>cnp.PyArray_DATA(out), as_double, id0, omit, has_nd, nd, cv,
                    nthreads, err)
    if rc:
        raise MemoryError("fastpool: no memory for the per-thread buffers")
    return err[0] | (err[1] << 1)


def generic_python(const T[:] dtype_tag, cnp.ndarray x, cnp.ndarray out,
                   bint as_double, const int64_t[::1] tables,
                   const int64_t[::1] tab_off, const int64_t[::1] width,
                   const int64_t[::1] out_len, const int64_t[::1] interior,
                   object function, bint omit, object nodata, object cval):
    """``function(values)`` for every window, serially and holding the GIL.
    Returns the error bits (1: NaN into an integer output)."""
    cdef Geom g = make_geom(x, out, None, tables, tab_off, width, out_len, interior)
    cdef Spec sp
    cdef T nd = nodata if nodata is not None else 0
    cdef T cv = cval
    cdef bint has_nd = nodata is not None, saw_nan
    cdef Py_ssize_t window = g.max_rows * g.k, bi, orow, w, n
    cdef int64_t oo, io, os = g.out_stride[g.d]
    cdef Py_ssize_t itemsize = 8 if as_double else sizeof(T)
    cdef double[::1] V = np.empty(max(window, 1))
    cdef T[::1] Tv = np.empty(max(window, 1), dtype=np.asarray(dtype_tag).dtype)
    cdef int64_t[::1] roff = np.empty(g.max_rows, dtype=np.int64)
    cdef int64_t[::1] rflat = np.empty(g.max_rows, dtype=np.int64)
    cdef char[::1] rcv = np.empty(g.max_rows, dtype=np.int8)
    cdef Row row
    cdef int err[2]
    err[0] = 0
    err[1] = 0
    sp.weights_in = False
    sp.kernel = NULL
    for bi in range(g.nbatch):
        for orow in range(g.nrows_out):
            oo = 0
            io = 0
            row.nrows = collect_rows(&g, orow, &roff[0], &rflat[0], &rcv[0], &oo, &io)
            row.roff = &roff[0]
            row.rpos = NULL
            row.rcv = &rcv[0]
            row.xb = <const char*>(<const T*>cnp.PyArray_DATA(x) + bi * g.in_stride[0])
            row.wb = NULL
            row.op = <char*>cnp.PyArray_DATA(out) + (bi * g.out_stride[0] + oo) * itemsize
            for w in range(g.W):
                saw_nan = False
                n = gather_column(&g, &sp, &row, w, &V[0], NULL, &Tv[0], omit, has_nd,
                                  nd, cv, &saw_nan)
                if saw_nan and not omit:
                    put(row.op, w * os, as_double, NAN, nd, err)
                elif n == 0:
                    if has_nd:
                        put_value(row.op, w * os, as_double, nd)
                    else:
                        put(row.op, w * os, as_double, NAN, nd, err)
                else:
                    put(row.op, w * os, as_double,
                        float(function(np.array(V[:n]))), nd, err)
    return err[0]
