/* Small C pieces the Cython kernels share. */
#ifndef FASTPOOL_H
#define FASTPOOL_H

/* A 128-bit accumulator keeps sums of 64-bit integers exact. */
typedef __int128 fp_i128;

#ifdef _OPENMP
#include <omp.h>
static int fp_openmp_enabled(void) { return 1; }
static int fp_max_threads(void) { return omp_get_max_threads(); }
#else
static int fp_openmp_enabled(void) { return 0; }
static int fp_max_threads(void) { return 1; }
#endif

#endif
