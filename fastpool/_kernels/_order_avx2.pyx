# The same kernels as _order.pyx, compiled with -mavx2 (see setup.py); fastpool
# loads this module instead where the CPU has AVX2.  Selections compare and copy
# values, so both builds give the same bits.
include "_order.pyx"
