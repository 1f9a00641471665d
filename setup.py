"""Build fastpool's Cython kernels with -O3 and OpenMP (serial fallback with a warning).

Environment switches:
  FASTPOOL_DEBUG=1     bounds checking and wraparound on, -O0 -g (debug builds)
  FASTPOOL_NO_OPENMP=1 build without OpenMP even where the compiler has it
  FASTPOOL_SANITIZE=1  AddressSanitizer and UndefinedBehaviorSanitizer, -O1 -g; run
                       Python with the ASan runtime preloaded (docs/reliability.md)
"""
import os
import platform
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTPOOL_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("FASTPOOL_SANITIZE", "") not in ("", "0")
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
              "-fno-omit-frame-pointer"]

# One directives dict for every extension.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "freethreading_compatible": True,
}

EXTENSIONS = ["_openmp", "_extremum", "_sums", "_order", "_unpool", "_weighted", "_global",
              "_grad"]
# Also built with -mavx2 as <name>_avx2 (chosen at import where the CPU has AVX2).
# No -mfma: contracting a*b+c would change float results between the builds.
AVX2_EXTENSIONS = ["_extremum", "_sums", "_order", "_weighted", "_global", "_grad"]
# For the float64 reducers of the weighted family (and their gradients): no FP
# exception traps and no errno, so gcc may evaluate both arms of a select (the
# clamps of fp_exp) and inline sqrt, and the loops vectorise.  Neither changes a
# single result bit.
QUIET_MATH = ["-fno-trapping-math", "-fno-math-errno"]
QUIET_MODULES = ("_weighted", "_global", "_grad")
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _has_openmp(compiler):
    """Compile and link a tiny OpenMP program; True when that works."""
    if os.environ.get("FASTPOOL_NO_OPENMP", "") not in ("", "0"):
        return False
    code = textwrap.dedent("""
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return n > 0 ? 0 : 1;
        }
    """)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        # The extensions are independent: compile them side by side.
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        openmp = self.compiler.compiler_type != "msvc" and _has_openmp(self.compiler)
        if not openmp:
            warnings.warn("fastpool: no OpenMP found; building SERIAL kernels "
                          "(fastpool.openmp_enabled() will be False)")
        # Release builds drop the debug information Python's CFLAGS ask for: it
        # took a sixth of the compile time of these large generated files.
        opt = (["-O0", "-g"] if DEBUG else ["-O1", "-g"] + SANITIZERS if SANITIZE
               else ["-O3", "-g0"])
        for ext in self.extensions:
            simd = ["-mavx2"] if ext.name.endswith("_avx2") else []
            extra = QUIET_MATH if ext.name.split(".")[-1].startswith(QUIET_MODULES) else []
            ext.extra_compile_args = opt + simd + extra + (["-fopenmp"] if openmp else [])
            ext.extra_link_args = ((["-fopenmp"] if openmp else [])
                                   + (SANITIZERS if SANITIZE else []))
        super().build_extensions()


extensions = [
    Extension(
        f"fastpool._kernels.{name}",
        [f"fastpool/_kernels/{name}.pyx"],
        include_dirs=[np.get_include(), "fastpool/_kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # Rebuild when the shared C header changes (setuptools tracks only sources).
        depends=["fastpool/_kernels/_fastpool.h"],
    )
    for name in EXTENSIONS + ([f"{n}_avx2" for n in AVX2_EXTENSIONS] if X86 else [])
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES,
                          nthreads=os.cpu_count() or 1),
    cmdclass={"build_ext": BuildExt},
)
