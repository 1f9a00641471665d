# The same kernels as _grad.pyx, compiled with -mavx2 (see setup.py); fastpool
# loads this module instead where the CPU has AVX2.  Results are bitwise the same:
# the build allows no FMA contraction and no reassociation.
include "_grad.pyx"
