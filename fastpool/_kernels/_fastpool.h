/* Small C pieces the Cython kernels share. */
#ifndef FASTPOOL_H
#define FASTPOOL_H

#include <stddef.h>
#include <string.h>
#include <math.h>

/* A 128-bit accumulator keeps sums of 64-bit integers exact. */
typedef __int128 fp_i128;

/* Inlined even into large loop bodies: a call per element would stop the
   vectoriser (gcc otherwise gives up inlining fp_exp/fp_log in big kernels). */
#if defined(__GNUC__)
#define FP_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FP_ALWAYS_INLINE inline
#endif

/* A C conditional expression: Cython emits if/else statements, which gcc does
   not always turn into branch-free selects inside vectorised loops. */
#define FP_SELECT(c, x, y) ((c) ? (x) : (y))

/* Running max/min of floats, 'propagate' (NaN wins, as np.max) and 'omit' (NaN
   loses unless the running value is NaN).  Written in C: gcc vectorises these
   expressions, but not the control flow Cython generates for them. */
#define FP_EXTREMA(T, S) \
static inline T fp_max_prop_##S(T a, T v) { return (v > a || v != v) ? v : a; } \
static inline T fp_min_prop_##S(T a, T v) { return (v < a || v != v) ? v : a; } \
static inline T fp_max_omit_##S(T a, T v) { return (v > a || a != a) ? v : a; } \
static inline T fp_min_omit_##S(T a, T v) { return (v < a || a != a) ? v : a; }
FP_EXTREMA(float, f32)
FP_EXTREMA(double, f64)

/* Max (min) pooling's gradient over 2x2 blocks of two contiguous rows (p0, p1;
   results q0, q1; g[i] the gradient of block i): the block's first extremum in C
   order (the first NaN under 'propagate'; under 'omit' NaN is skipped and an
   all-NaN block sends nothing) gets g[i], the other three 0.  The first sample
   equal to the extremum is that sample.  The gradient goes out through bit
   masks, not selects: gcc's jump threading turned the selects into branches
   and the loop did not vectorise (Cython's control flow did not either). */
#if defined(__GNUC__)
typedef unsigned int __attribute__((may_alias)) fp_bits32;
typedef unsigned long long __attribute__((may_alias)) fp_bits64;
#else
typedef unsigned int fp_bits32;
typedef unsigned long long fp_bits64;
#endif
#define FP_BLOCK_LOOP(T, U, EXT, NANHIT)                                      \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        T a = p0[2 * i], b = p0[2 * i + 1], c = p1[2 * i], d = p1[2 * i + 1]; \
        T m = EXT(a, b);                                                      \
        m = EXT(m, c);                                                        \
        m = EXT(m, d);                                                        \
        U ea = -(U)((a == m) | NANHIT(a)), eb = -(U)((b == m) | NANHIT(b));   \
        U ec = -(U)((c == m) | NANHIT(c)), ed = -(U)((d == m) | NANHIT(d));   \
        U gv = gb[i];                                                         \
        o0[2 * i] = gv & ea;                                                  \
        o0[2 * i + 1] = gv & eb & ~ea;                                        \
        o1[2 * i] = gv & ec & ~(ea | eb);                                     \
        o1[2 * i + 1] = gv & ed & ~(ea | eb | ec);                            \
    }
#define FP_NAN_HIT(v) ((v) != (v))
#define FP_NO_HIT(v) 0
/* fp_max_prop & co. with | for ||: no control flow in the loop */
#define FP_BMAX_PROP(a, v) ((((v) > (a)) | ((v) != (v))) ? (v) : (a))
#define FP_BMIN_PROP(a, v) ((((v) < (a)) | ((v) != (v))) ? (v) : (a))
#define FP_BMAX_OMIT(a, v) ((((v) > (a)) | ((a) != (a))) ? (v) : (a))
#define FP_BMIN_OMIT(a, v) ((((v) < (a)) | ((a) != (a))) ? (v) : (a))
#define FP_EXTREMUM_BLOCKS(T, U, S)                                           \
static inline void fp_extremum_blocks_##S(                                    \
        const T* restrict p0, const T* restrict p1, T* restrict q0,           \
        T* restrict q1, const T* restrict g, ptrdiff_t n, int is_min,         \
        int omit) {                                                           \
    U* restrict o0 = (U*)q0;                                                  \
    U* restrict o1 = (U*)q1;                                                  \
    const U* restrict gb = (const U*)g;                                       \
    if (is_min && omit) { FP_BLOCK_LOOP(T, U, FP_BMIN_OMIT, FP_NO_HIT) }      \
    else if (is_min) { FP_BLOCK_LOOP(T, U, FP_BMIN_PROP, FP_NAN_HIT) }        \
    else if (omit) { FP_BLOCK_LOOP(T, U, FP_BMAX_OMIT, FP_NO_HIT) }           \
    else { FP_BLOCK_LOOP(T, U, FP_BMAX_PROP, FP_NAN_HIT) }                    \
}
FP_EXTREMUM_BLOCKS(float, fp_bits32, f32)
FP_EXTREMUM_BLOCKS(double, fp_bits64, f64)

/* The tap (r * K + j) of the first extremum of windows of K taps on R rows
   (rows[r][2 * i + j]: a stride of 2 along contiguous rows), as above; -1 where
   no sample receives the gradient (an all-NaN window under 'omit'). */
#define FP_TAPS_LOOP(T, K, R, EXT, NANHIT)                                    \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        T v[K * R];                                                           \
        for (int r = 0; r < R; r++)                                           \
            for (int j = 0; j < K; j++) v[r * K + j] = p[r][2 * i + j];       \
        T m = v[0];                                                           \
        for (int t = 1; t < K * R; t++) m = EXT(m, v[t]);                     \
        unsigned int found = 0, s = 0;                                        \
        for (int t = 0; t < K * R; t++) {                                     \
            unsigned int e = -(unsigned int)((v[t] == m) | NANHIT(v[t]));     \
            s |= e & ~found & (unsigned int)t;                                \
            found |= e;                                                       \
        }                                                                     \
        taps[i] = (int)(s | ~found);                                          \
    }
/* Without NaN the first extremum is a running one with a strict comparison,
   a third of the work; whether a NaN was there is told by each window's sum
   (NaN also for inf - inf: then the NaN-aware loop runs, as for a NaN). */
#define FP_TAPS_PLAIN_LOOP(T, K, R, BETTER)                                   \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        T v[K * R];                                                           \
        for (int r = 0; r < R; r++)                                           \
            for (int j = 0; j < K; j++) v[r * K + j] = p[r][2 * i + j];       \
        T m = v[0], sum = v[0];                                               \
        unsigned int s = 0;                                                   \
        for (int t = 1; t < K * R; t++) {                                     \
            unsigned int h = -(unsigned int)(v[t] BETTER m);                  \
            s = (s & ~h) | ((unsigned int)t & h);                             \
            m = v[t] BETTER m ? v[t] : m;                                     \
            sum += v[t];                                                      \
        }                                                                     \
        taps[i] = (int)s;                                                     \
        nan |= (unsigned int)(sum != sum);                                    \
    }
/* 3x3 windows share columns: each column's extremum over the three rows, and
   the first row that holds it, are found once for the two windows that read
   the column.  A window's first tap in C order is then the least r * 3 + j over
   its columns that hold the window's extremum (a column's earlier rows hold
   less): the same taps in 0.60-0.66x the time.  NaN shows in the column sums. */
#define FP_TAPS_COLUMN_BLOCK 64
#define FP_TAPS_PLAIN_COLUMNS(T, K, R, BETTER)                                \
    for (ptrdiff_t b = 0; b < n; b += FP_TAPS_COLUMN_BLOCK) {                 \
        T cm[2 * FP_TAPS_COLUMN_BLOCK + 1];                                   \
        int cr[2 * FP_TAPS_COLUMN_BLOCK + 1];                                 \
        ptrdiff_t m = n - b < FP_TAPS_COLUMN_BLOCK ? n - b : FP_TAPS_COLUMN_BLOCK; \
        const T* a0 = p[0] + 2 * b;                                           \
        const T* a1 = p[1] + 2 * b;                                           \
        const T* a2 = p[2] + 2 * b;                                           \
        for (ptrdiff_t c = 0; c < 2 * m + 1; c++) {                           \
            T v0 = a0[c], v1 = a1[c], v2 = a2[c];                             \
            int h1 = v1 BETTER v0;                                            \
            T e = h1 ? v1 : v0;                                               \
            int h2 = v2 BETTER e;                                             \
            cm[c] = h2 ? v2 : e;                                              \
            cr[c] = h2 ? 2 * K : (h1 ? K : 0);                                \
            T sum = (v0 + v1) + v2;                                           \
            nan |= (unsigned int)(sum != sum);                                \
        }                                                                     \
        for (ptrdiff_t i = 0; i < m; i++) {                                   \
            T e0 = cm[2 * i], e1 = cm[2 * i + 1], e2 = cm[2 * i + 2];         \
            T w = e1 BETTER e0 ? e1 : e0;                                     \
            w = e2 BETTER w ? e2 : w;                                         \
            int t0 = e0 == w ? cr[2 * i] : K * R;                             \
            int t1 = e1 == w ? cr[2 * i + 1] + 1 : K * R;                     \
            int t2 = e2 == w ? cr[2 * i + 2] + 2 : K * R;                     \
            int t = t0 < t1 ? t0 : t1;                                        \
            taps[b + i] = t < t2 ? t : t2;                                    \
        }                                                                     \
    }
#define FP_FIRST_TAPS(T, S, K, R, PLAIN)                                      \
static inline void fp_first_taps_##K##x##R##_##S(                             \
        const T* const* rows, int* restrict taps, ptrdiff_t n, int is_min,    \
        int omit) {                                                           \
    const T* p[R];                                                            \
    unsigned int nan = 0;                                                     \
    for (int r = 0; r < R; r++) p[r] = rows[r];                               \
    if (!omit) {                                                              \
        if (is_min) { PLAIN(T, K, R, <) }                                     \
        else { PLAIN(T, K, R, >) }                                            \
        if (!nan) return;                                                     \
    }                                                                         \
    if (is_min && omit) { FP_TAPS_LOOP(T, K, R, FP_BMIN_OMIT, FP_NO_HIT) }    \
    else if (is_min) { FP_TAPS_LOOP(T, K, R, FP_BMIN_PROP, FP_NAN_HIT) }      \
    else if (omit) { FP_TAPS_LOOP(T, K, R, FP_BMAX_OMIT, FP_NO_HIT) }         \
    else { FP_TAPS_LOOP(T, K, R, FP_BMAX_PROP, FP_NAN_HIT) }                  \
}
FP_FIRST_TAPS(float, f32, 2, 2, FP_TAPS_PLAIN_LOOP)
FP_FIRST_TAPS(double, f64, 2, 2, FP_TAPS_PLAIN_LOOP)
FP_FIRST_TAPS(float, f32, 3, 3, FP_TAPS_PLAIN_COLUMNS)
FP_FIRST_TAPS(double, f64, 3, 3, FP_TAPS_PLAIN_COLUMNS)
FP_FIRST_TAPS(float, f32, 2, 4, FP_TAPS_PLAIN_LOOP)
FP_FIRST_TAPS(double, f64, 2, 4, FP_TAPS_PLAIN_LOOP)

/* q[2i] = g[i] where taps[i] == tap, q[2i + 1] = g[i] where it is tap + 1, 0
   elsewhere: a row of 2-wide blocks' gradients from their taps. */
#define FP_PAIR_STORES(T, U, S)                                               \
static inline void fp_pair_stores_##S(T* restrict q, const int* restrict taps, \
                                      const T* restrict g, ptrdiff_t n,        \
                                      int tap) {                               \
    U* restrict o = (U*)q;                                                    \
    const U* restrict gb = (const U*)g;                                       \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        o[2 * i] = gb[i] & -(U)(taps[i] == tap);                              \
        o[2 * i + 1] = gb[i] & -(U)(taps[i] == tap + 1);                      \
    }                                                                         \
}
FP_PAIR_STORES(float, fp_bits32, f32)
FP_PAIR_STORES(double, fp_bits64, f64)

/* Whether a or b is NaN, in one unordered comparison. */
#define FP_UNORDERED(a, b) __builtin_isunordered(a, b)

/* A software prefetch that gcc keeps: a helper whose only effect is
   __builtin_prefetch is taken for a pure function and its calls deleted. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FP_PREFETCH(p) __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char*)(p)))
#elif defined(__GNUC__)
#define FP_PREFETCH(p) do { __builtin_prefetch(p); __asm__ __volatile__("" : : "r"(p)); } while (0)
#else
#define FP_PREFETCH(p) ((void)(p))
#endif

/* Bytes ahead of its reads that a contiguous reduction prefetches: the hardware
   prefetcher alone left one core's global float32 sum at NumPy's speed, 10% under
   this. */
#define FP_STREAM_AHEAD 2048

/* exp(x) for doubles without a libm call, so that loops over many values
   vectorise (glibc's exp is a call per value; the kernels that use this are
   built with -fno-trapping-math, which lets gcc if-convert the clamps).
   Cody-Waite reduction to |r| <= ln2/2, a degree-13 Taylor polynomial (within 1
   ulp), and 2**k applied as two factors so that subnormal results are right.
   NaN gives NaN, +inf (and anything above ~709.8) inf, -inf (and below ~-745.2)
   0.  Only IEEE adds and multiplies: every build gives the same bits. */
static FP_ALWAYS_INLINE double fp_exp(double x) {
    const double shift = 6755399441055744.0;           /* 2**52 + 2**51 */
    const double log2e = 1.4426950408889634;
    const double ln2_hi = 0.6931471803691238;           /* 33 bits: k*ln2_hi exact */
    const double ln2_lo = 1.9082149292705877e-10;
    double kd, k, r, p, s1, s2;
    long long ki, k1, k2, b1, b2;
    x = x < -746.0 ? -746.0 : x;
    x = x > 710.0 ? 710.0 : x;
    kd = x * log2e + shift;
    k = kd - shift;
    r = (x - k * ln2_hi) - k * ln2_lo;
    p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    memcpy(&ki, &kd, 8);
    ki -= 0x4338000000000000LL;                         /* the bits of shift */
    k1 = ki >> 1;
    k2 = ki - k1;
    b1 = (k1 + 1023) << 52;
    b2 = (k2 + 1023) << 52;
    memcpy(&s1, &b1, 8);
    memcpy(&s2, &b2, 8);
    return (p * s1) * s2;
}

/* SoftPool's gradient over 2x2 blocks of two contiguous rows (as
   fp_extremum_blocks): each sample gets g * e / E * (1 + beta * (x - out)),
   e = exp(beta * x - max beta * x), in the order and arithmetic of the kernels'
   general loop; a block holding a NaN sends NaN (the bits of NAN) to all four.
   Branch-free, so that it vectorises. */
#define FP_SOFT_BLOCKS(T, U, S)                                               \
static inline void fp_soft_blocks_##S(                                        \
        const T* restrict p0, const T* restrict p1, T* restrict q0,           \
        T* restrict q1, const T* restrict g, ptrdiff_t n, double beta) {      \
    U* restrict o0 = (U*)q0;                                                  \
    U* restrict o1 = (U*)q1;                                                  \
    T nan_value = (T)NAN;                                                     \
    U nan_bits;                                                               \
    memcpy(&nan_bits, &nan_value, sizeof(U));                                 \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        double x[4] = {p0[2 * i], p0[2 * i + 1], p1[2 * i], p1[2 * i + 1]};   \
        double m = -INFINITY, total = 0.0, out = 0.0, e[4];                   \
        U res[4], nan = 0;                                                    \
        for (int j = 0; j < 4; j++) {                                         \
            double l = beta * x[j];                                           \
            m = l > m ? l : m;                                                \
            nan |= (U)(x[j] != x[j]);                                         \
        }                                                                     \
        nan = -nan;                                                           \
        for (int j = 0; j < 4; j++) {                                         \
            e[j] = fp_exp(beta * x[j] - m);                                   \
            total += e[j];                                                    \
            out += e[j] * x[j];                                               \
        }                                                                     \
        out = out / total;                                                    \
        double gv = (double)g[i] / total;                                     \
        for (int j = 0; j < 4; j++) {                                         \
            T v = (T)(gv * e[j] * (1.0 + beta * (x[j] - out)));               \
            memcpy(&res[j], &v, sizeof(U));                                   \
            res[j] = (res[j] & ~nan) | (nan_bits & nan);                      \
        }                                                                     \
        o0[2 * i] = res[0];                                                   \
        o0[2 * i + 1] = res[1];                                               \
        o1[2 * i] = res[2];                                                   \
        o1[2 * i + 1] = res[3];                                               \
    }                                                                         \
}
FP_SOFT_BLOCKS(float, fp_bits32, f32)
FP_SOFT_BLOCKS(double, fp_bits64, f64)

/* log(x) for doubles, vectorisable like fp_exp: x = m * 2**e with m in
   [sqrt(1/2), sqrt(2)), log(m) = 2*atanh(s), s = (m-1)/(m+1), |s| < 0.172, by its
   odd series to s**23 (within 1 ulp).  0 gives -inf, a negative value or NaN
   NaN, inf inf; subnormals are scaled first. */
static FP_ALWAYS_INLINE double fp_log(double x) {
    const double ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    const double two52 = 4503599627370496.0;
    double m, s, z, q, e, y = x;
    long long bits, eb;
    int tiny = x < 2.2250738585072014e-308;
    y = tiny ? x * 18014398509481984.0 : x;             /* 2**54 */
    memcpy(&bits, &y, 8);
    /* The exponent field as a double without an int64 -> double conversion
       (AVX2 has none): its bits placed in the mantissa of 2**52. */
    eb = ((bits >> 52) & 0x7FF) | 0x4330000000000000LL;
    memcpy(&e, &eb, 8);
    e = e - two52 - 1023.0;
    bits = (bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL;
    memcpy(&m, &bits, 8);                              /* [1, 2) */
    e = m > 1.4142135623730951 ? e + 1.0 : e;
    m = m > 1.4142135623730951 ? m * 0.5 : m;
    e = tiny ? e - 54.0 : e;
    s = (m - 1.0) / (m + 1.0);
    z = s * s;
    q = 1.0 / 23.0;
    q = q * z + 1.0 / 21.0;
    q = q * z + 1.0 / 19.0;
    q = q * z + 1.0 / 17.0;
    q = q * z + 1.0 / 15.0;
    q = q * z + 1.0 / 13.0;
    q = q * z + 1.0 / 11.0;
    q = q * z + 1.0 / 9.0;
    q = q * z + 1.0 / 7.0;
    q = q * z + 1.0 / 5.0;
    q = q * z + 1.0 / 3.0;
    q = q * z + 1.0;
    y = (e * ln2_hi + 2.0 * s * q) + e * ln2_lo;
    y = x == 0.0 ? -HUGE_VAL : y;
    y = x < 0.0 ? NAN : y;
    y = x == HUGE_VAL ? HUGE_VAL : y;
    return x != x ? x : y;
}

/* x**p for p > 0 as exp(p*log|x|), vectorisable.  `negative` is the factor of a
   negative x: -1 or 1 for an odd or even integer p, NaN otherwise (C's pow). */
static FP_ALWAYS_INLINE double fp_pow(double x, double p, double negative) {
    double r = fp_exp(p * fp_log(x < 0.0 ? -x : x));
    return x < 0.0 ? r * negative : r;
}

/* The cube root of x >= 0, vectorisable (libm's cbrt is a call): x = t * 8**q
   with t in [1, 8), t**(-1/3) by a fit and division-free Newton steps, cbrt(t)
   from it and one Newton step for the last bits (within 4 ulp), times 2**q.
   0 gives 0, inf inf, NaN NaN. */
static FP_ALWAYS_INLINE double fp_cbrt(double x) {
    const double two52 = 4503599627370496.0, shift = 6755399441055744.0;
    double y, e, m, q, r, t, f;
    long long bits, eb, fb;
    int tiny = x < 2.2250738585072014e-308;
    y = tiny ? x * 18014398509481984.0 : x;             /* 2**54 */
    memcpy(&bits, &y, 8);
    eb = ((bits >> 52) & 0x7FF) | 0x4330000000000000LL; /* exponent, as in fp_log */
    memcpy(&e, &eb, 8);
    e = e - two52 - 1023.0 - (tiny ? 54.0 : 0.0);
    bits = (bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL;
    memcpy(&m, &bits, 8);                               /* [1, 2) */
    /* q = floor(e / 3): (e + 3072) / 3 is within 1e-12 of an integer or of a
       third past one */
    q = (((e + 3072.0) * (1.0 / 3.0) - 1.0 / 3.0) + shift) - shift - 1024.0;
    r = e - 3.0 * q;                                    /* 0, 1 or 2 */
    t = m * (1.0 + r + 0.5 * r * (r - 1.0));            /* m * 2**r, in [1, 8) */
    /* y = t**(-1/3): a cubic fit (2%), then four division-free Newton steps
       y *= (4 - t*y**3) / 3 (quadratic convergence); cbrt(t) = t * y * y. */
    y = -0.002446097202036569;
    y = y * t + 0.04448933413208107;
    y = y * t - 0.2917453998407263;
    y = y * t + 1.2316372054254847;
    y = y * (4.0 - t * (y * y * y)) * (1.0 / 3.0);
    y = y * (4.0 - t * (y * y * y)) * (1.0 / 3.0);
    y = y * (4.0 - t * (y * y * y)) * (1.0 / 3.0);
    y = y * (4.0 - t * (y * y * y)) * (1.0 / 3.0);
    y = (t * y) * y;
    y = y - (y * y * y - t) * (1.0 / 3.0) / (y * y);    /* the last bits */
    memcpy(&fb, &(double){q + 1023.0 + two52}, 8);      /* 2**q from its bits */
    fb = fb << 52;
    memcpy(&f, &fb, 8);
    y = y * f;
    y = x == 0.0 ? 0.0 : y;
    y = x == HUGE_VAL ? HUGE_VAL : y;
    return x != x ? x : y;
}

/* The uniform number in [0, 1) of window `counter` of the stream `key`: splitmix64
   of the state key + (counter + 1) * golden gamma (documented in semantics §9). */
static FP_ALWAYS_INLINE double fp_uniform(unsigned long long key, unsigned long long counter) {
    unsigned long long z = key + (counter + 1ULL) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Whether the running CPU has AVX2 (the kernels built with -mavx2 need it). */
static int fp_cpu_has_avx2(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
#else
    return 0;
#endif
}

/* Whether the running CPU has AVX-512 F, BW, DQ and VL. */
static int fp_cpu_has_avx512(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

#ifdef _OPENMP
#include <omp.h>
static int fp_openmp_enabled(void) { return 1; }
static int fp_max_threads(void) { return omp_get_max_threads(); }
#else
static int fp_openmp_enabled(void) { return 0; }
static int fp_max_threads(void) { return 1; }
#endif

/* 2x2 means of uint8 rows q0 and q1 (adjacent byte pairs) into o[0, n), rounded
   half to even; returns how many it wrote (a multiple of 32, 0 without AVX2).
   gcc's own vectorisation of this loop deinterleaves bytes with shuffles; pmaddubsw
   adds the pairs in one instruction, and the loop then runs at memory speed. */
#if defined(__AVX2__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* Whether the AVX-512 loops may run: the CPU has AVX-512 F/BW/DQ/VL and
   FASTPOOL_SIMD does not ask for "avx2" (or "baseline").  Decided once; a race
   between threads on the first calls writes the same value. */
static int fp_use_avx512(void) {
    static int use = -1;
    if (use < 0) {
        const char* env = getenv("FASTPOOL_SIMD");
        use = !(env && (strcmp(env, "avx2") == 0 || strcmp(env, "baseline") == 0))
              && fp_cpu_has_avx512();
    }
    return use;
}

/* fp_sum2x2_f32 of two rows with 512-bit vectors: eight outputs a step, the even
   and odd doubles separated by permutes (the same sums in the same order, so the
   same bits). */
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
static ptrdiff_t fp_sum2x2_f32_avx512(const float* q0, const float* q1, float* o,
                                      ptrdiff_t n, double scale, ptrdiff_t ahead) {
    const __m512d s = _mm512_set1_pd(scale);
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (ahead) {
            FP_PREFETCH((const char*)(q0 + 2 * i) + ahead);
            FP_PREFETCH((const char*)(q1 + 2 * i) + ahead);
        }
        __m512 a = _mm512_loadu_ps(q0 + 2 * i);
        __m512 b = _mm512_loadu_ps(q1 + 2 * i);
        __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
        __m512d a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
        __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(b));
        __m512d b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1));
        __m512d pa = _mm512_add_pd(_mm512_permutex2var_pd(a0, even, a1),
                                   _mm512_permutex2var_pd(a0, odd, a1));
        __m512d pb = _mm512_add_pd(_mm512_permutex2var_pd(b0, even, b1),
                                   _mm512_permutex2var_pd(b0, odd, b1));
        __m512d m = _mm512_add_pd(_mm512_setzero_pd(), _mm512_add_pd(pa, pb));
        _mm256_storeu_ps(o + i, _mm512_cvtpd_ps(_mm512_mul_pd(m, s)));
    }
    return i;
}

/* Medians of the 3x3 windows, stride 2, of float32 rows q0..q2 into o[0, n), 16
   outputs a step; returns how many it wrote (it leaves at least one to the caller,
   so that no load passes the last column a window needs).  The network is the
   Cython median9's, comparator for comparator: min(a, b) there is b < a ? b : a,
   which is vminps(b, a) (the same operand wins on ties, so the same zero sign).
   Windows with NaN get NaN and set *any_nan. */
#define FP_MIN(a, b) _mm512_min_ps(b, a)
#define FP_MAX(a, b) _mm512_max_ps(b, a)
#define FP_MED3(x, y, z) FP_MAX(FP_MIN(x, y), FP_MIN(FP_MAX(x, y), z))
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
static ptrdiff_t fp_median3x3_f32_avx512(const float* q0, const float* q1, const float* q2,
                                         float* o, ptrdiff_t n, int* any_nan) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
                                           24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23,
                                          25, 27, 29, 31);
    const __m512 qnan = _mm512_set1_ps(__builtin_nanf(""));
    const float* rows[3] = {q0, q1, q2};
    ptrdiff_t i = 0;
    for (; i + 16 < n; i += 16) {
        __m512 c0[3], c1[3], c2[3];
        __mmask16 nan = 0;
        for (int r = 0; r < 3; r++) {
            const float* q = rows[r] + 2 * i;
            __m512 a = _mm512_loadu_ps(q), b = _mm512_loadu_ps(q + 16);
            __m512 c = _mm512_loadu_ps(q + 2), d = _mm512_loadu_ps(q + 18);
            c0[r] = _mm512_permutex2var_ps(a, even, b);
            c1[r] = _mm512_permutex2var_ps(a, odd, b);
            c2[r] = _mm512_permutex2var_ps(c, even, d);
            nan |= _mm512_cmp_ps_mask(c0[r], c1[r], _CMP_UNORD_Q)
                   | _mm512_cmp_ps_mask(c2[r], c2[r], _CMP_UNORD_Q);
        }
        __m512 l0 = FP_MIN(c0[0], c0[1]), h0 = FP_MAX(c0[0], c0[1]);
        __m512 l1 = FP_MIN(c1[0], c1[1]), h1 = FP_MAX(c1[0], c1[1]);
        __m512 l2 = FP_MIN(c2[0], c2[1]), h2 = FP_MAX(c2[0], c2[1]);
        __m512 lo0 = FP_MIN(l0, c0[2]), mi0 = FP_MAX(l0, FP_MIN(h0, c0[2])), hi0 = FP_MAX(h0, c0[2]);
        __m512 lo1 = FP_MIN(l1, c1[2]), mi1 = FP_MAX(l1, FP_MIN(h1, c1[2])), hi1 = FP_MAX(h1, c1[2]);
        __m512 lo2 = FP_MIN(l2, c2[2]), mi2 = FP_MAX(l2, FP_MIN(h2, c2[2])), hi2 = FP_MAX(h2, c2[2]);
        __m512 res = FP_MED3(FP_MAX(FP_MAX(lo0, lo1), lo2), FP_MED3(mi0, mi1, mi2),
                             FP_MIN(FP_MIN(hi0, hi1), hi2));
        if (nan) {
            res = _mm512_mask_mov_ps(res, nan, qnan);
            *any_nan = 1;
        }
        _mm512_storeu_ps(o + i, res);
    }
    return i;
}
#undef FP_MIN
#undef FP_MAX
#undef FP_MED3

/* fp_mean2x2_u8 with 512-bit vectors: 64 outputs a step. */
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
static ptrdiff_t fp_mean2x2_u8_avx512(const unsigned char* q0, const unsigned char* q1,
                                      unsigned char* o, ptrdiff_t n) {
    const __m512i ones8 = _mm512_set1_epi8(1);
    const __m512i ones16 = _mm512_set1_epi16(1);
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    ptrdiff_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i s0 = _mm512_add_epi16(
            _mm512_maddubs_epi16(_mm512_loadu_si512((const void*)(q0 + 2 * i)), ones8),
            _mm512_maddubs_epi16(_mm512_loadu_si512((const void*)(q1 + 2 * i)), ones8));
        __m512i s1 = _mm512_add_epi16(
            _mm512_maddubs_epi16(_mm512_loadu_si512((const void*)(q0 + 2 * i + 64)), ones8),
            _mm512_maddubs_epi16(_mm512_loadu_si512((const void*)(q1 + 2 * i + 64)), ones8));
        s0 = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(s0, ones16),
                               _mm512_and_si512(_mm512_srli_epi16(s0, 2), ones16)), 2);
        s1 = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(s1, ones16),
                               _mm512_and_si512(_mm512_srli_epi16(s1, 2), ones16)), 2);
        _mm512_storeu_si512((void*)(o + i),
                            _mm512_permutexvar_epi64(order, _mm512_packus_epi16(s0, s1)));
    }
    return i;
}

static inline ptrdiff_t fp_mean2x2_u8(const unsigned char* q0, const unsigned char* q1,
                                      unsigned char* o, ptrdiff_t n) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    ptrdiff_t i = 0;
    if (fp_use_avx512())
        i = fp_mean2x2_u8_avx512(q0, q1, o, n);
    for (; i + 32 <= n; i += 32) {
        __m256i s0 = _mm256_add_epi16(
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i*)(q0 + 2 * i)), ones8),
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i*)(q1 + 2 * i)), ones8));
        __m256i s1 = _mm256_add_epi16(
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i*)(q0 + 2 * i + 32)), ones8),
            _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i*)(q1 + 2 * i + 32)), ones8));
        /* (s + 1 + ((s >> 2) & 1)) >> 2: s / 4 rounded half to even */
        s0 = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(s0, ones16),
                               _mm256_and_si256(_mm256_srli_epi16(s0, 2), ones16)), 2);
        s1 = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(s1, ones16),
                               _mm256_and_si256(_mm256_srli_epi16(s1, 2), ones16)), 2);
        /* packus interleaves the 128-bit lanes of s0 and s1; put them back in order */
        _mm256_storeu_si256((__m256i*)(o + i),
                            _mm256_permute4x64_epi64(_mm256_packus_epi16(s0, s1), 0xD8));
    }
    return i;
}

/* Window sums of 2 (or 4) rows of 2 adjacent uint8 (2x2, 2x2x2 windows) into
   float32 o[0, n): pmaddubsw pairs, int16 row sums (at most 2040), converted
   exactly; returns how many it wrote (a multiple of 16). */
static inline ptrdiff_t fp_sum2x2_u8_f32(const unsigned char* const* rows, int nr,
                                         float* o, ptrdiff_t n) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i s = _mm256_maddubs_epi16(
            _mm256_loadu_si256((const __m256i*)(rows[0] + 2 * i)), ones8);
        for (int r = 1; r < nr; r++)
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(
                _mm256_loadu_si256((const __m256i*)(rows[r] + 2 * i)), ones8));
        _mm256_storeu_ps(o + i, _mm256_cvtepi32_ps(
            _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s))));
        _mm256_storeu_ps(o + i + 8, _mm256_cvtepi32_ps(
            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1))));
    }
    return i;
}

/* The streaming 2x2 and 2x2x2 loops below ask for their rows FP_STREAM_AHEAD
   bytes on as they go, one prefetch per row per 64 bytes read, instead of in
   bursts a block ahead: with four rows in flight (2x2x2) neither the hardware
   prefetcher alone nor the bursts kept up (2.5x slower on an AMD EPYC, where
   2 KiB ran best among 0.5-6 KiB). */
static FP_ALWAYS_INLINE void fp_stream_prefetch(const float* const* rows, int nr,
                                                ptrdiff_t at, ptrdiff_t ahead) {
    if (ahead)
        for (int r = 0; r < nr; r++)
            FP_PREFETCH((const char*)(rows[r] + at) + ahead);
}

/* The pair sums x[2i] + x[2i+1] in double of 8 outputs of a float32 row: *lo
   holds outputs 0 1 4 5, *hi 2 3 6 7 (the lanes fp_store8_f32 puts back). */
static FP_ALWAYS_INLINE void fp_pairs8_f32(const float* q, __m256d* lo, __m256d* hi) {
    __m256 a = _mm256_loadu_ps(q), b = _mm256_loadu_ps(q + 8);
    __m256 e = _mm256_shuffle_ps(a, b, 0x88), d = _mm256_shuffle_ps(a, b, 0xDD);
    *lo = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                        _mm256_cvtps_pd(_mm256_castps256_ps128(d)));
    *hi = _mm256_add_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)),
                        _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)));
}

static FP_ALWAYS_INLINE void fp_store8_f32(float* o, __m256d lo, __m256d hi) {
    __m256 r = _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
    _mm256_storeu_ps(o, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(r), 0xD8)));
}

static FP_ALWAYS_INLINE ptrdiff_t fp_sum2x2_f32_rows(const float* const* rows, int nr,
                                                     float* o, ptrdiff_t n, double scale,
                                                     ptrdiff_t ahead) {
    const __m256d s = _mm256_set1_pd(scale);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d lo[4], hi[4];
        fp_stream_prefetch(rows, nr, 2 * i, ahead);
        for (int r = 0; r < nr; r++)
            fp_pairs8_f32(rows[r] + 2 * i, &lo[r], &hi[r]);
        __m256d ml = _mm256_add_pd(lo[0], lo[1]), mh = _mm256_add_pd(hi[0], hi[1]);
        if (nr == 4) {
            ml = _mm256_add_pd(ml, _mm256_add_pd(lo[2], lo[3]));
            mh = _mm256_add_pd(mh, _mm256_add_pd(hi[2], hi[3]));
        }
        /* 0 + sum, as a sum that starts from a cleared accumulator: -0.0 windows
           give +0.0 on every path */
        ml = _mm256_add_pd(_mm256_setzero_pd(), ml);
        mh = _mm256_add_pd(_mm256_setzero_pd(), mh);
        fp_store8_f32(o + i, _mm256_mul_pd(ml, s), _mm256_mul_pd(mh, s));
    }
    return i;
}

/* Sums of 2x2 (nr 2) or 2x2x2 (nr 4) windows of float32 rows (2 adjacent values
   per row) times `scale` (1 for sums, 1/4 or 1/8 for means: exact in double), into
   float32 o[0, n).  In double and associated as the portable loops ((a + b) +
   (c + d) per 2x2, the two halves of a 2x2x2 added last, then to 0), rounded
   once, so every path gives the same bits.  Prefetches `ahead` bytes on
   (FP_STREAM_AHEAD, or 0 where the caller prefetches).  Returns how many it
   wrote (a multiple of 8). */
static inline ptrdiff_t fp_sum2x2_f32(const float* const* rows, int nr, float* o,
                                      ptrdiff_t n, double scale, ptrdiff_t ahead) {
    if (nr == 2 && fp_use_avx512())
        return fp_sum2x2_f32_avx512(rows[0], rows[1], o, n, scale, ahead);
    /* nr a constant in each call, so the row loops unroll */
    return nr == 4 ? fp_sum2x2_f32_rows(rows, 4, o, n, scale, ahead)
                   : fp_sum2x2_f32_rows(rows, 2, o, n, scale, ahead);
}

/* pick(a, v) of the extremum kernels, 8 lanes: v where it beats a ('propagate':
   or is NaN; 'omit': or a is NaN), else a; ties keep a. */
static FP_ALWAYS_INLINE __m256 fp_pick8_f32(__m256 a, __m256 v, int is_min, int omit) {
    __m256 better = is_min ? _mm256_cmp_ps(v, a, _CMP_LT_OQ) : _mm256_cmp_ps(v, a, _CMP_GT_OQ);
    __m256 nan = omit ? _mm256_cmp_ps(a, a, _CMP_UNORD_Q) : _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    return _mm256_blendv_ps(a, v, _mm256_or_ps(better, nan));
}

/* pick(x[2i], x[2i+1]) of 8 outputs of a float32 row, in lanes 0 1 4 5 2 3 6 7. */
static FP_ALWAYS_INLINE __m256 fp_pairs8_pick_f32(const float* q, int is_min, int omit) {
    __m256 a = _mm256_loadu_ps(q), b = _mm256_loadu_ps(q + 8);
    return fp_pick8_f32(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xDD),
                        is_min, omit);
}

static FP_ALWAYS_INLINE ptrdiff_t fp_extrema2x2_f32_rows(const float* const* rows, int nr,
                                                         float* o, ptrdiff_t n, ptrdiff_t ahead,
                                                         int is_min, int omit) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        fp_stream_prefetch(rows, nr, 2 * i, ahead);
        __m256 m = fp_pick8_f32(fp_pairs8_pick_f32(rows[0] + 2 * i, is_min, omit),
                                fp_pairs8_pick_f32(rows[1] + 2 * i, is_min, omit),
                                is_min, omit);
        if (nr == 4)
            m = fp_pick8_f32(m, fp_pick8_f32(fp_pairs8_pick_f32(rows[2] + 2 * i, is_min, omit),
                                             fp_pairs8_pick_f32(rows[3] + 2 * i, is_min, omit),
                                             is_min, omit), is_min, omit);
        _mm256_storeu_ps(o + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m),
                                                                       0xD8)));
    }
    return i;
}

/* Max (min) of 2x2 (nr 2) or 2x2x2 (nr 4) windows of float32 rows into o[0, n),
   picked in the portable loops' order (each row's pair, then the rows' pair
   results, the two halves of a 2x2x2 last), so the same value wins, -0.0 and NaN
   payloads included.  Prefetches as fp_sum2x2_f32.  Returns how many it wrote (a
   multiple of 8). */
static inline ptrdiff_t fp_extrema2x2_f32(const float* q0, const float* q1,
                                          const float* q2, const float* q3, int nr,
                                          float* o, ptrdiff_t n, ptrdiff_t ahead,
                                          int is_min, int omit) {
    const float* rows[4] = {q0, q1, q2, q3};
    /* every flag a constant in each call: branch-free loops */
#define FP_EXTREMA2X2_CASE(NR, MIN, OMIT) \
    if (nr == NR && is_min == MIN && omit == OMIT) \
        return fp_extrema2x2_f32_rows(rows, NR, o, n, ahead, MIN, OMIT);
    FP_EXTREMA2X2_CASE(2, 0, 0) FP_EXTREMA2X2_CASE(2, 0, 1)
    FP_EXTREMA2X2_CASE(2, 1, 0) FP_EXTREMA2X2_CASE(2, 1, 1)
    FP_EXTREMA2X2_CASE(4, 0, 0) FP_EXTREMA2X2_CASE(4, 0, 1)
    FP_EXTREMA2X2_CASE(4, 1, 0) FP_EXTREMA2X2_CASE(4, 1, 1)
#undef FP_EXTREMA2X2_CASE
    return 0;
}

/* fp_median3x3_f32_avx512 where the CPU has AVX-512, else nothing (returns 0). */
static inline ptrdiff_t fp_median3x3_f32(const float* q0, const float* q1, const float* q2,
                                         float* o, ptrdiff_t n, int* any_nan) {
    return fp_use_avx512() ? fp_median3x3_f32_avx512(q0, q1, q2, o, n, any_nan) : 0;
}
#else
static inline ptrdiff_t fp_median3x3_f32(const float* q0, const float* q1, const float* q2,
                                         float* o, ptrdiff_t n, int* any_nan) {
    (void)q0; (void)q1; (void)q2; (void)o; (void)n; (void)any_nan;
    return 0;
}
static inline ptrdiff_t fp_mean2x2_u8(const unsigned char* q0, const unsigned char* q1,
                                      unsigned char* o, ptrdiff_t n) {
    (void)q0; (void)q1; (void)o; (void)n;
    return 0;
}
static inline ptrdiff_t fp_sum2x2_u8_f32(const unsigned char* const* rows, int nr,
                                         float* o, ptrdiff_t n) {
    (void)rows; (void)nr; (void)o; (void)n;
    return 0;
}
static inline ptrdiff_t fp_sum2x2_f32(const float* const* rows, int nr, float* o,
                                      ptrdiff_t n, double scale, ptrdiff_t ahead) {
    (void)rows; (void)nr; (void)o; (void)n; (void)scale; (void)ahead;
    return 0;
}
static inline ptrdiff_t fp_extrema2x2_f32(const float* q0, const float* q1,
                                          const float* q2, const float* q3, int nr,
                                          float* o, ptrdiff_t n, ptrdiff_t ahead,
                                          int is_min, int omit) {
    (void)q0; (void)q1; (void)q2; (void)q3; (void)nr; (void)o; (void)n; (void)ahead;
    (void)is_min; (void)omit;
    return 0;
}
#endif

/* Eight running extrema of floats over `blocks` groups of 8 consecutive values
   (lane j sees p[8*i + j]), and per-lane NaN counts: a compare and a blend per
   vector.  A NaN never replaces a lane value; the caller applies the NaN counts.
   Written with vector extensions: gcc does not vectorise the lane loop Cython
   generates.  Exact, so every build gives the same bits. */
typedef float fp_v8f __attribute__((vector_size(32)));
typedef int fp_v8i __attribute__((vector_size(32)));
typedef double fp_v8d __attribute__((vector_size(64)));
typedef long long fp_v8l __attribute__((vector_size(64)));

#if defined(__AVX2__)
/* The same with vmaxps/vminps: max(v, m) returns m where v is NaN or equal to m,
   exactly the blend below, in one instruction; NaNs are flagged by an unordered
   compare.  On one core the compare-and-blend loop was compute-bound. */
#define FP_LANE_EXTREMUM_AVX(T, S, VT, W, LOADU, STOREU, OP, UNORD, OR, ZERO, MASK)  \
static inline void fp_lanes_##S(const T* p, ptrdiff_t blocks, T* lanes, int* nans) { \
    VT m[4][8 / W], n[8 / W], v;                                                   \
    ptrdiff_t i, k, h;                                                             \
    for (h = 0; h < 8 / W; h++) {                                                  \
        n[h] = ZERO();                                                             \
        for (k = 0; k < 4; k++) m[k][h] = LOADU(lanes + W * h);                    \
    }                                                                              \
    for (i = 0; i + 4 <= blocks; i += 4) {                                         \
        for (k = 0; k < (ptrdiff_t)(32 * sizeof(T)); k += 64)                      \
            FP_PREFETCH((const char*)(p + 8 * i) + FP_STREAM_AHEAD + k);           \
        for (k = 0; k < 4; k++) {                                                  \
            for (h = 0; h < 8 / W; h++) {                                          \
                v = LOADU(p + 8 * (i + k) + W * h);                                \
                m[k][h] = OP(v, m[k][h]);                                          \
                n[h] = OR(n[h], UNORD(v));                                         \
            }                                                                      \
        }                                                                          \
    }                                                                              \
    for (; i < blocks; i++) {                                                      \
        for (h = 0; h < 8 / W; h++) {                                              \
            v = LOADU(p + 8 * i + W * h);                                          \
            m[0][h] = OP(v, m[0][h]);                                              \
            n[h] = OR(n[h], UNORD(v));                                             \
        }                                                                          \
    }                                                                              \
    for (h = 0; h < 8 / W; h++) {                                                  \
        for (k = 1; k < 4; k++) m[0][h] = OP(m[k][h], m[0][h]);                    \
        STOREU(lanes + W * h, m[0][h]);                                            \
        int mask = MASK(n[h]);                                                     \
        for (k = 0; k < W; k++) nans[W * h + k] += (mask >> k) & 1;                \
    }                                                                              \
}
#define FP_UNORD_PS(v) _mm256_cmp_ps(v, v, _CMP_UNORD_Q)
#define FP_UNORD_PD(v) _mm256_cmp_pd(v, v, _CMP_UNORD_Q)
FP_LANE_EXTREMUM_AVX(float, max_f32, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
                     _mm256_max_ps, FP_UNORD_PS, _mm256_or_ps, _mm256_setzero_ps,
                     _mm256_movemask_ps)
FP_LANE_EXTREMUM_AVX(float, min_f32, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
                     _mm256_min_ps, FP_UNORD_PS, _mm256_or_ps, _mm256_setzero_ps,
                     _mm256_movemask_ps)
FP_LANE_EXTREMUM_AVX(double, max_f64, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
                     _mm256_max_pd, FP_UNORD_PD, _mm256_or_pd, _mm256_setzero_pd,
                     _mm256_movemask_pd)
FP_LANE_EXTREMUM_AVX(double, min_f64, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd,
                     _mm256_min_pd, FP_UNORD_PD, _mm256_or_pd, _mm256_setzero_pd,
                     _mm256_movemask_pd)
#else
#define FP_LANE_EXTREMUM(T, S, VT, VI, CMP)                                        \
static inline void fp_lanes_##S(const T* p, ptrdiff_t blocks, T* lanes, int* nans) { \
    VT m[4], v;                                                                    \
    VI mask, nn[4] = {{0}};                                                        \
    ptrdiff_t i, k;                                                                \
    for (k = 0; k < 4; k++) memcpy(&m[k], lanes, sizeof m[k]);                      \
    /* Four independent chains: a compare-and-blend chain alone waits on its      \
       latency.  An extremum does not depend on the grouping. */                  \
    for (i = 0; i + 4 <= blocks; i += 4) {                                         \
        for (k = 0; k < (ptrdiff_t)(32 * sizeof(T)); k += 64)                      \
            FP_PREFETCH((const char*)(p + 8 * i) + FP_STREAM_AHEAD + k);           \
        for (k = 0; k < 4; k++) {                                                  \
            memcpy(&v, p + 8 * (i + k), sizeof v);                                 \
            mask = (VI)(v CMP m[k]);                                               \
            m[k] = (VT)(((VI)v & mask) | ((VI)m[k] & ~mask));                      \
            nn[k] -= (VI)(v != v);                                                 \
        }                                                                          \
    }                                                                              \
    for (; i < blocks; i++) {                                                      \
        memcpy(&v, p + 8 * i, sizeof v);                                           \
        mask = (VI)(v CMP m[0]);                                                   \
        m[0] = (VT)(((VI)v & mask) | ((VI)m[0] & ~mask));                          \
        nn[0] -= (VI)(v != v);                                                     \
    }                                                                              \
    for (k = 1; k < 4; k++) {                                                      \
        mask = (VI)(m[k] CMP m[0]);                                                \
        m[0] = (VT)(((VI)m[k] & mask) | ((VI)m[0] & ~mask));                       \
        nn[0] += nn[k];                                                            \
    }                                                                              \
    memcpy(lanes, &m[0], sizeof m[0]);                                             \
    for (k = 0; k < 8; k++) nans[k] += (int)nn[0][k];                              \
}
FP_LANE_EXTREMUM(float, max_f32, fp_v8f, fp_v8i, >)
FP_LANE_EXTREMUM(float, min_f32, fp_v8f, fp_v8i, <)
FP_LANE_EXTREMUM(double, max_f64, fp_v8d, fp_v8l, >)
FP_LANE_EXTREMUM(double, min_f64, fp_v8d, fp_v8l, <)
#endif

/* 64 running extrema of bytes over `blocks` groups of 64 (lane j sees
   p[64*i + j]): a vector instruction a 32 bytes, prefetched as the float loops.
   With `has_nd`, bytes equal to `nd` are missing: they take the extremum's
   identity `worst` instead, and *missing counts them (a valid byte equal to
   `worst` is counted as valid, so a block whose count is 0 is the only one that
   has no extremum).  One loop per case, so the plain one stays two loads and
   two max a group. */
#if defined(__AVX2__)
#define FP_BYTE_LANE_LOOP(OP, MASKED)                                              \
    for (ptrdiff_t i = 0; i < blocks; i++) {                                       \
        FP_PREFETCH((const char*)(p + 64 * i) + FP_STREAM_AHEAD);                  \
        __m256i u = _mm256_loadu_si256((const __m256i*)(p + 64 * i));              \
        __m256i v = _mm256_loadu_si256((const __m256i*)(p + 64 * i + 32));         \
        if (MASKED) {                                                              \
            __m256i eu = _mm256_cmpeq_epi8(u, ndv);                                \
            __m256i ev = _mm256_cmpeq_epi8(v, ndv);                                \
            u = _mm256_blendv_epi8(u, wv, eu);                                     \
            v = _mm256_blendv_epi8(v, wv, ev);                                     \
            gone += __builtin_popcount((unsigned)_mm256_movemask_epi8(eu))         \
                  + __builtin_popcount((unsigned)_mm256_movemask_epi8(ev));        \
        }                                                                          \
        a = OP(a, u);                                                              \
        b = OP(b, v);                                                              \
    }
#define FP_BYTE_LANES(T, S, OP)                                                     \
static inline void fp_byte_lanes_##S(const T* p, ptrdiff_t blocks, int has_nd, T nd, \
                                     T worst, T* lanes, long long* missing) {       \
    __m256i a = _mm256_loadu_si256((const __m256i*)lanes);                         \
    __m256i b = _mm256_loadu_si256((const __m256i*)(lanes + 32));                  \
    const __m256i ndv = _mm256_set1_epi8((char)nd);                                \
    const __m256i wv = _mm256_set1_epi8((char)worst);                              \
    long long gone = 0;                                                            \
    if (has_nd) {                                                                  \
        FP_BYTE_LANE_LOOP(OP, 1)                                                   \
    } else {                                                                       \
        FP_BYTE_LANE_LOOP(OP, 0)                                                   \
    }                                                                              \
    _mm256_storeu_si256((__m256i*)lanes, a);                                       \
    _mm256_storeu_si256((__m256i*)(lanes + 32), b);                                \
    *missing += gone;                                                              \
}
FP_BYTE_LANES(unsigned char, max_u8, _mm256_max_epu8)
FP_BYTE_LANES(unsigned char, min_u8, _mm256_min_epu8)
FP_BYTE_LANES(signed char, max_i8, _mm256_max_epi8)
FP_BYTE_LANES(signed char, min_i8, _mm256_min_epi8)
#else
#define FP_BYTE_LANES(T, S, CMP)                                                    \
static inline void fp_byte_lanes_##S(const T* p, ptrdiff_t blocks, int has_nd, T nd, \
                                     T worst, T* lanes, long long* missing) {       \
    for (ptrdiff_t i = 0; i < blocks; i++)                                         \
        for (int j = 0; j < 64; j++) {                                             \
            T v = p[64 * i + j];                                                   \
            int gone = has_nd && v == nd;                                          \
            v = gone ? worst : v;                                                  \
            lanes[j] = v CMP lanes[j] ? v : lanes[j];                              \
            *missing += gone;                                                      \
        }                                                                          \
}
FP_BYTE_LANES(unsigned char, max_u8, >)
FP_BYTE_LANES(unsigned char, min_u8, <)
FP_BYTE_LANES(signed char, max_i8, >)
FP_BYTE_LANES(signed char, min_i8, <)
#endif

/* Sums of one-byte integers over `blocks` groups of 32 bytes, those equal to
   `nd` left out (with `has_nd`) and counted in *missing: psadbw adds eight
   bytes at a time into 64-bit lanes, so the loop runs at memory speed (integer
   sums are exact in any order).  int8 is summed offset by 128 (x ^ 0x80), a
   missing byte as 128, and the offset taken off at the end. */
#if defined(__AVX2__)
#define FP_BYTE_SUM_STEP(u, acc, MASKED)                                           \
    {                                                                              \
        if (MASKED) {                                                              \
            __m256i e = _mm256_cmpeq_epi8(u, ndv);                                 \
            u = _mm256_blendv_epi8(_mm256_xor_si256(u, flip), flip, e);            \
            gone += __builtin_popcount((unsigned)_mm256_movemask_epi8(e));         \
        } else {                                                                   \
            u = _mm256_xor_si256(u, flip);                                         \
        }                                                                          \
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(u, zero));                     \
    }
/* One loop per case (with and without nodata): 64 bytes a step, prefetched. */
#define FP_BYTE_SUM_LOOP(MASKED)                                                   \
    for (; i + 2 <= blocks; i += 2) {                                              \
        FP_PREFETCH((const char*)(p + 32 * i) + FP_STREAM_AHEAD);                  \
        __m256i u = _mm256_loadu_si256((const __m256i*)(p + 32 * i));              \
        __m256i v = _mm256_loadu_si256((const __m256i*)(p + 32 * i + 32));         \
        FP_BYTE_SUM_STEP(u, acc0, MASKED)                                          \
        FP_BYTE_SUM_STEP(v, acc1, MASKED)                                          \
    }                                                                              \
    for (; i < blocks; i++) {                                                      \
        __m256i u = _mm256_loadu_si256((const __m256i*)(p + 32 * i));              \
        FP_BYTE_SUM_STEP(u, acc0, MASKED)                                          \
    }
#define FP_BYTE_SUMS(T, S, SIGNED)                                                  \
static inline void fp_byte_sums_##S(const T* p, ptrdiff_t blocks, int has_nd, T nd,  \
                                    long long* sum, long long* missing) {          \
    const __m256i zero = _mm256_setzero_si256();                                   \
    const __m256i ndv = _mm256_set1_epi8((char)nd);                                \
    const __m256i flip = _mm256_set1_epi8(SIGNED ? (char)0x80 : 0);                \
    __m256i acc0 = zero, acc1 = zero;                                              \
    long long gone = 0;                                                            \
    ptrdiff_t i = 0;                                                               \
    if (has_nd) {                                                                  \
        FP_BYTE_SUM_LOOP(1)                                                        \
    } else {                                                                       \
        FP_BYTE_SUM_LOOP(0)                                                        \
    }                                                                              \
    long long t[4];                                                                \
    _mm256_storeu_si256((__m256i*)t, _mm256_add_epi64(acc0, acc1));                \
    *sum += t[0] + t[1] + t[2] + t[3] - (SIGNED ? 128LL * 32 * blocks : 0);        \
    *missing += gone;                                                              \
}
#else
#define FP_BYTE_SUMS(T, S, SIGNED)                                                  \
static inline void fp_byte_sums_##S(const T* p, ptrdiff_t blocks, int has_nd, T nd,  \
                                    long long* sum, long long* missing) {          \
    long long total = 0, gone = 0;                                                 \
    for (ptrdiff_t i = 0; i < 32 * blocks; i++) {                                  \
        int out = has_nd && p[i] == nd;                                            \
        total += out ? 0 : p[i];                                                   \
        gone += out;                                                               \
    }                                                                              \
    *sum += total;                                                                 \
    *missing += gone;                                                              \
}
#endif
FP_BYTE_SUMS(unsigned char, u8, 0)
FP_BYTE_SUMS(signed char, i8, 1)

/* The lane loops above where some elements are missing: NaN under 'omit'
   (`omit`), or equal to `nd` (`has_nd`).  A missing element takes no part in
   the extremum, adds +0.0 to its sum lane (which leaves it as it was: lanes
   start at +0.0), and is not counted.  A kept NaN (under 'propagate') never
   replaces a lane value and is counted in `nans`.  Sum lane j adds element j of
   every group of 16 in order, as the scalar loop, so the bits are its bits; an
   extremum does not depend on the grouping.  Written with AVX2 intrinsics:
   gcc lowers vectors wider than the machine's through the stack. */
#if defined(__AVX2__)
#define FP_MISSING_PS(v, om, hm, ndv)                                              \
    _mm256_or_ps(_mm256_and_ps(om, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)),             \
                 _mm256_and_ps(hm, _mm256_cmp_ps(v, ndv, _CMP_EQ_OQ)))
#define FP_MISSING_PD(v, om, hm, ndv)                                              \
    _mm256_or_pd(_mm256_and_pd(om, _mm256_cmp_pd(v, v, _CMP_UNORD_Q)),             \
                 _mm256_and_pd(hm, _mm256_cmp_pd(v, ndv, _CMP_EQ_OQ)))

#define FP_MASKED_LANE_STEP(M, q, OP)                                              \
    v = _mm256_loadu_ps(q);                                                        \
    gone = FP_MISSING_PS(v, om, hm, ndv);                                          \
    /* OP(v, m) keeps m where v is NaN (or equal): a kept NaN never wins */        \
    M = OP(_mm256_blendv_ps(v, worst, gone), M);                                   \
    cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_xor_ps(gone, ones)));   \
    nn = _mm256_sub_epi32(nn, _mm256_castps_si256(                                 \
        _mm256_andnot_ps(gone, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))));

/* f32: 8 lanes, one vector; two chains of groups (merged at the end). */
#define FP_MASKED_LANES_F32(S, OP, WORST)                                            \
static inline void fp_masked_lanes_##S(const float* p, ptrdiff_t blocks, int omit,  \
                                       int has_nd, float nd, float* lanes,          \
                                       int* counts, int* nans) {                    \
    const __m256 om = _mm256_castsi256_ps(_mm256_set1_epi32(omit ? -1 : 0));       \
    const __m256 hm = _mm256_castsi256_ps(_mm256_set1_epi32(has_nd ? -1 : 0));     \
    const __m256 ndv = _mm256_set1_ps(nd), worst = _mm256_set1_ps(WORST);          \
    const __m256 ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));                \
    __m256 m[2], v, gone;                                                          \
    __m256i cnt = _mm256_setzero_si256(), nn = _mm256_setzero_si256();             \
    ptrdiff_t i;                                                                   \
    int k;                                                                         \
    m[0] = m[1] = _mm256_loadu_ps(lanes);                                          \
    for (i = 0; i + 2 <= blocks; i += 2) {                                         \
        FP_PREFETCH((const char*)(p + 8 * i) + FP_STREAM_AHEAD);                   \
        FP_MASKED_LANE_STEP(m[0], p + 8 * i, OP)                                   \
        FP_MASKED_LANE_STEP(m[1], p + 8 * i + 8, OP)                               \
    }                                                                              \
    if (i < blocks) { FP_MASKED_LANE_STEP(m[0], p + 8 * i, OP) }                   \
    _mm256_storeu_ps(lanes, OP(m[1], m[0]));                                       \
    int c[8], n[8];                                                                \
    _mm256_storeu_si256((__m256i*)c, cnt);                                         \
    _mm256_storeu_si256((__m256i*)n, nn);                                          \
    for (k = 0; k < 8; k++) { counts[k] += c[k]; nans[k] += n[k]; }                \
}
FP_MASKED_LANES_F32(max_f32, _mm256_max_ps, -INFINITY)
FP_MASKED_LANES_F32(min_f32, _mm256_min_ps, INFINITY)

/* f64: 8 lanes, two vectors. */
#define FP_MASKED_LANES_F64(S, OP, WORST)                                            \
static inline void fp_masked_lanes_##S(const double* p, ptrdiff_t blocks, int omit, \
                                       int has_nd, double nd, double* lanes,        \
                                       int* counts, int* nans) {                    \
    const __m256d om = _mm256_castsi256_pd(_mm256_set1_epi64x(omit ? -1 : 0));     \
    const __m256d hm = _mm256_castsi256_pd(_mm256_set1_epi64x(has_nd ? -1 : 0));   \
    const __m256d ndv = _mm256_set1_pd(nd), worst = _mm256_set1_pd(WORST);         \
    const __m256d ones = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));              \
    __m256d m[2], v, gone;                                                         \
    __m256i cnt[2], nn[2];                                                         \
    ptrdiff_t i;                                                                   \
    int h, k;                                                                      \
    for (h = 0; h < 2; h++) {                                                      \
        m[h] = _mm256_loadu_pd(lanes + 4 * h);                                     \
        cnt[h] = nn[h] = _mm256_setzero_si256();                                   \
    }                                                                              \
    for (i = 0; i < blocks; i++) {                                                 \
        FP_PREFETCH((const char*)(p + 8 * i) + FP_STREAM_AHEAD);                   \
        for (h = 0; h < 2; h++) {                                                  \
            v = _mm256_loadu_pd(p + 8 * i + 4 * h);                                \
            gone = FP_MISSING_PD(v, om, hm, ndv);                                  \
            m[h] = OP(_mm256_blendv_pd(v, worst, gone), m[h]);                     \
            cnt[h] = _mm256_sub_epi64(cnt[h],                                      \
                                      _mm256_castpd_si256(_mm256_xor_pd(gone, ones))); \
            nn[h] = _mm256_sub_epi64(nn[h], _mm256_castpd_si256(_mm256_andnot_pd(   \
                gone, _mm256_cmp_pd(v, v, _CMP_UNORD_Q))));                        \
        }                                                                          \
    }                                                                              \
    for (h = 0; h < 2; h++) {                                                      \
        long long c[4], n[4];                                                      \
        _mm256_storeu_pd(lanes + 4 * h, m[h]);                                     \
        _mm256_storeu_si256((__m256i*)c, cnt[h]);                                  \
        _mm256_storeu_si256((__m256i*)n, nn[h]);                                   \
        for (k = 0; k < 4; k++) {                                                  \
            counts[4 * h + k] += (int)c[k];                                        \
            nans[4 * h + k] += (int)n[k];                                          \
        }                                                                          \
    }                                                                              \
}
FP_MASKED_LANES_F64(max_f64, _mm256_max_pd, -INFINITY)
FP_MASKED_LANES_F64(min_f64, _mm256_min_pd, INFINITY)

/* Sums: 16 float64 lanes in four vectors; a group of 16 elements a step. */
static inline void fp_masked_sums_f32(const float* p, ptrdiff_t blocks, int omit,
                                      int has_nd, float nd, double* sums, int* counts) {
    const __m256 om = _mm256_castsi256_ps(_mm256_set1_epi32(omit ? -1 : 0));
    const __m256 hm = _mm256_castsi256_ps(_mm256_set1_epi32(has_nd ? -1 : 0));
    const __m256 ndv = _mm256_set1_ps(nd);
    __m256d acc[4];
    __m256i cnt[2];
    __m256 v, gone;
    ptrdiff_t i;
    int h, k;
    for (h = 0; h < 4; h++) acc[h] = _mm256_loadu_pd(sums + 4 * h);
    cnt[0] = cnt[1] = _mm256_setzero_si256();
    for (i = 0; i < blocks; i++) {
        FP_PREFETCH((const char*)(p + 16 * i) + FP_STREAM_AHEAD);
        for (h = 0; h < 2; h++) {
            v = _mm256_loadu_ps(p + 16 * i + 8 * h);
            gone = FP_MISSING_PS(v, om, hm, ndv);
            v = _mm256_andnot_ps(gone, v);
            acc[2 * h] = _mm256_add_pd(acc[2 * h],
                                       _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            acc[2 * h + 1] = _mm256_add_pd(acc[2 * h + 1],
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
            cnt[h] = _mm256_add_epi32(cnt[h], _mm256_add_epi32(
                _mm256_castps_si256(gone), _mm256_set1_epi32(1)));
        }
    }
    for (h = 0; h < 4; h++) _mm256_storeu_pd(sums + 4 * h, acc[h]);
    for (h = 0; h < 2; h++) {
        int c[8];
        _mm256_storeu_si256((__m256i*)c, cnt[h]);
        for (k = 0; k < 8; k++) counts[8 * h + k] += c[k];
    }
}

static inline void fp_masked_sums_f64(const double* p, ptrdiff_t blocks, int omit,
                                      int has_nd, double nd, double* sums, int* counts) {
    const __m256d om = _mm256_castsi256_pd(_mm256_set1_epi64x(omit ? -1 : 0));
    const __m256d hm = _mm256_castsi256_pd(_mm256_set1_epi64x(has_nd ? -1 : 0));
    const __m256d ndv = _mm256_set1_pd(nd);
    __m256d acc[4], v, gone;
    __m256i cnt[4];
    ptrdiff_t i;
    int h, k;
    for (h = 0; h < 4; h++) {
        acc[h] = _mm256_loadu_pd(sums + 4 * h);
        cnt[h] = _mm256_setzero_si256();
    }
    for (i = 0; i < blocks; i++) {
        FP_PREFETCH((const char*)(p + 16 * i) + FP_STREAM_AHEAD);
        FP_PREFETCH((const char*)(p + 16 * i) + FP_STREAM_AHEAD + 64);
        for (h = 0; h < 4; h++) {
            v = _mm256_loadu_pd(p + 16 * i + 4 * h);
            gone = FP_MISSING_PD(v, om, hm, ndv);
            acc[h] = _mm256_add_pd(acc[h], _mm256_andnot_pd(gone, v));
            cnt[h] = _mm256_add_epi64(cnt[h], _mm256_add_epi64(
                _mm256_castpd_si256(gone), _mm256_set1_epi64x(1)));
        }
    }
    for (h = 0; h < 4; h++) {
        long long c[4];
        _mm256_storeu_pd(sums + 4 * h, acc[h]);
        _mm256_storeu_si256((__m256i*)c, cnt[h]);
        for (k = 0; k < 4; k++) counts[4 * h + k] += (int)c[k];
    }
}
#else
/* Portable builds: the same lanes, scalar. */
#define FP_MASKED_LANES(T, S, CMP)                                                 \
static inline void fp_masked_lanes_##S(const T* p, ptrdiff_t blocks, int omit,      \
                                       int has_nd, T nd, T* lanes, int* counts,     \
                                       int* nans) {                                 \
    for (ptrdiff_t i = 0; i < blocks; i++) {                                       \
        for (int j = 0; j < 8; j++) {                                              \
            T v = p[8 * i + j];                                                    \
            int ok = !((omit & (v != v)) | (has_nd & (v == nd)));                  \
            if (ok && v CMP lanes[j]) lanes[j] = v;                                \
            counts[j] += ok;                                                       \
            nans[j] += ok & (v != v);                                              \
        }                                                                          \
    }                                                                              \
}
FP_MASKED_LANES(float, max_f32, >)
FP_MASKED_LANES(float, min_f32, <)
FP_MASKED_LANES(double, max_f64, >)
FP_MASKED_LANES(double, min_f64, <)

#define FP_MASKED_SUMS(T, S)                                                        \
static inline void fp_masked_sums_##S(const T* p, ptrdiff_t blocks, int omit,       \
                                      int has_nd, T nd, double* sums, int* counts) { \
    for (ptrdiff_t i = 0; i < blocks; i++) {                                       \
        for (int j = 0; j < 16; j++) {                                             \
            T v = p[16 * i + j];                                                   \
            int ok = !((omit & (v != v)) | (has_nd & (v == nd)));                  \
            sums[j] += (double)(ok ? v : (T)0);                                    \
            counts[j] += ok;                                                       \
        }                                                                          \
    }                                                                              \
}
FP_MASKED_SUMS(float, f32)
FP_MASKED_SUMS(double, f64)
#endif

/* Means of exact float32 window sums s[0, n) whose counts are powers of two:
   s * scale (exact: the sums are integers below 2**24, scale a power of two),
   rounded half to even by adding and subtracting 1.5 * 2**23 (exact for
   |q| < 2**22), stored as an integer type.  All in float32: eight lanes a step. */
#define FP_MEANS_F32(T, S)                                                          \
static inline void fp_means_f32_##S(const float* s, T* o, ptrdiff_t n,             \
                                    float row_scale, const float* col_scale) {     \
    const float magic = 12582912.0f;                                               \
    for (ptrdiff_t i = 0; i < n; i++) {                                            \
        float q = s[i] * (row_scale * col_scale[i]);                               \
        o[i] = (T)(int)((q + magic) - magic);                                      \
    }                                                                              \
}
FP_MEANS_F32(unsigned char, u8)
FP_MEANS_F32(signed char, i8)
FP_MEANS_F32(unsigned short, u16)
FP_MEANS_F32(short, i16)

/* float64 accumulators rounded into a gradient row q[0, n): with ``stream``,
   through non-temporal stores (AVX2 builds), which skip reading the
   destination's lines into the cache first: a large result written once is
   then one pass over memory, not two.  Same values either way; the caller
   fences (fp_stream_fence) before another thread may read q. */
static inline void fp_round_row_f32(float* q, const double* a, ptrdiff_t n, int stream) {
    ptrdiff_t i = 0;
#if defined(__AVX2__)
    if (stream) {
        for (; i < n && (((size_t)(q + i)) & 31); i++) q[i] = (float)a[i];
        for (; i + 8 <= n; i += 8) {
            __m128 lo = _mm256_cvtpd_ps(_mm256_loadu_pd(a + i));
            __m128 hi = _mm256_cvtpd_ps(_mm256_loadu_pd(a + i + 4));
            _mm256_stream_ps(q + i, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
        }
    }
#else
    (void)stream;
#endif
    for (; i < n; i++) q[i] = (float)a[i];
}
static inline void fp_round_row_f64(double* q, const double* a, ptrdiff_t n, int stream) {
    ptrdiff_t i = 0;
#if defined(__AVX2__)
    if (stream) {
        for (; i < n && (((size_t)(q + i)) & 31); i++) q[i] = a[i];
        for (; i + 4 <= n; i += 4) _mm256_stream_pd(q + i, _mm256_loadu_pd(a + i));
    }
#else
    (void)stream;
#endif
    for (; i < n; i++) q[i] = a[i];
}
static inline void fp_stream_fence(void) {
#if defined(__AVX2__)
    _mm_sfence();
#endif
}

#endif
