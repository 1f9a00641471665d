/* Small C pieces the Cython kernels share. */
#ifndef FASTPOOL_H
#define FASTPOOL_H

/* A 128-bit accumulator keeps sums of 64-bit integers exact. */
typedef __int128 fp_i128;

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

/* A software prefetch that gcc keeps: a helper whose only effect is
   __builtin_prefetch is taken for a pure function and its calls deleted. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FP_PREFETCH(p) __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char*)(p)))
#elif defined(__GNUC__)
#define FP_PREFETCH(p) do { __builtin_prefetch(p); __asm__ __volatile__("" : : "r"(p)); } while (0)
#else
#define FP_PREFETCH(p) ((void)(p))
#endif

/* Whether the running CPU has AVX2 (the kernels built with -mavx2 need it). */
static int fp_cpu_has_avx2(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
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

#endif
