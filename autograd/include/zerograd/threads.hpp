#pragma once
/// @file
/// One setting for every thread zerograd uses: OpenBLAS's and our own loops;
/// and which BLAS and SIMD kernels run them.
#include <string>

namespace zg {

/// Threads for BLAS and zerograd's parallel kernels; n <= 0 means one per
/// core. Default: one per core. Safe to call while other threads compute:
/// a loop already running finishes on the old workers, one starting at that
/// moment may run on the calling thread alone; results are the same.
/// Each change keeps a few hundred bytes of the old pool for good.
void set_num_threads(int n);
int num_threads();  ///< the current setting, the number of threads a loop may use

/// The BLAS library and the kernel set it runs on this CPU, for logs and
/// benchmarks, such as "OpenBLAS 0.3.21 ... core Haswell (OPENBLAS_CORETYPE=Haswell)".
/// Results can differ in the last bits between kernels (docs/details.md, Determinism).
std::string blas_info();

/// The instruction set zerograd's own SIMD kernels (softmax rows, GELU,
/// LayerNorm, pooling, ...) run with in this process: "avx2", or the
/// baseline the library was compiled for ("sse4.2" in the package). Chosen
/// once, by CPU, capped by the environment variable ZEROGRAD_MAX_ISA
/// (sse4.2 or baseline, avx2, avx512, native; unset means native); throws
/// zg::Error on another value. OpenBLAS, oneDNN and libxsmm choose their
/// own kernels by their own variables.
std::string simd_isa();

}  // namespace zg
